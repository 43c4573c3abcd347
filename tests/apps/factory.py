"""App factory fixture: served as `factory:create_app('hi')`."""


def create_app(greeting):
    body = ("%s from factory\n" % greeting).encode()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app
