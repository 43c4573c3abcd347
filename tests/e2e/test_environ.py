"""PEP 3333 environ as the app sees it, read back from the probe app's /environ route."""
import hashlib
import json

from conftest import raw


def environ_of(server, request_bytes):
    with raw(server) as c:
        c.send(request_bytes)
        r = c.response()
    assert r.status == 200, (r.status, r.body[:500])
    return json.loads(r.body)


def test_request_method_path_and_query(server):
    env = environ_of(server, b"GET /environ?a=1&b=two%20x HTTP/1.1\r\nHost: example.test\r\n\r\n")
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/environ"
    # QUERY_STRING stays percent-encoded, exactly as sent.
    assert env["QUERY_STRING"] == "a=1&b=two%20x"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_query_string_empty_when_absent(server):
    env = environ_of(server, b"GET /environ HTTP/1.1\r\nHost: x\r\n\r\n")
    assert env.get("QUERY_STRING", "") == ""


def test_path_info_is_percent_decoded_latin1(server):
    # PEP 3333: PATH_INFO is the decoded bytes as latin-1 ("native string"), so UTF-8 é -> 'Ã©'.
    status, _, body = server.get("/caf%C3%A9")
    assert status == 200
    assert body.decode("utf-8").startswith("probe GET /caf\u00c3\u00a9"), body


def test_path_info_decodes_slash_and_space(server):
    status, _, body = server.get("/a%20b/c")
    assert status == 200
    assert body.startswith(b"probe GET /a b/c"), body


def test_post_content_type_length_and_body(server):
    payload = b"name=value&x=%01"
    env = environ_of(server, b"POST /environ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
    assert env["REQUEST_METHOD"] == "POST"
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == str(len(payload))
    assert env["_body"] == payload.decode("latin-1")
    assert env["_body_sha256"] == hashlib.sha256(payload).hexdigest()
    # CGI names, not HTTP_ ones, for these two.
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env


def test_server_name_port_and_remote(server):
    with raw(server) as c:
        c.send(b"GET /environ HTTP/1.1\r\nHost: example.test:%d\r\n\r\n" % server.port)
        r = c.response()
        local_port = c.sock.getsockname()[1]
    env = json.loads(r.body)
    assert env["SERVER_NAME"] in ("example.test", "127.0.0.1")
    assert env["SERVER_PORT"] == str(server.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(local_port)


def test_http_headers_mapped(server):
    env = environ_of(server, b"GET /environ HTTP/1.1\r\nHost: h.test\r\nUser-Agent: probe-ua/1\r\n"
                             b"X-Custom-Thing: some value\r\nAccept: */*\r\n\r\n")
    assert env["HTTP_HOST"] == "h.test"
    assert env["HTTP_USER_AGENT"] == "probe-ua/1"
    assert env["HTTP_X_CUSTOM_THING"] == "some value"
    assert env["HTTP_ACCEPT"] == "*/*"


def test_repeated_headers_joined_with_comma(server):
    env = environ_of(server, b"GET /environ HTTP/1.1\r\nHost: x\r\nX-Multi: one\r\nX-Multi: two\r\n"
                             b"X-Multi: three\r\n\r\n")
    assert env["HTTP_X_MULTI"] == "one, two, three"


def test_header_with_underscore_is_dropped(server):
    # X_Forwarded_For would map to the same key as X-Forwarded-For: spoofing risk, so it is dropped.
    env = environ_of(server, b"GET /environ HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\n"
                             b"X-Plain: kept\r\n\r\n")
    assert env["HTTP_X_PLAIN"] == "kept"
    assert "HTTP_X_FORWARDED_FOR" not in env
    assert not any("6.6.6.6" in str(v) for v in env.values())


def test_wsgi_keys(server):
    env = environ_of(server, b"GET /environ HTTP/1.1\r\nHost: x\r\n\r\n")
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    # -w 1 with one thread by default: neither multithreaded nor multiprocess.
    assert env["wsgi.multithread"] is False
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert "wsgi.input" in env and "wsgi.errors" in env
    assert set(env["_input_has"]) == {"read", "readline", "readlines", "__iter__"}
    assert set(env["_errors_has"]) == {"write", "writelines", "flush"}
    assert env["_file_wrapper_callable"] is True


def test_multiprocess_and_multithread_flags(start_server):
    s = start_server("probe:app", "--threads", "2", workers=2)
    env = s.get_json("/environ")
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is True


def test_http10_request_environ(server):
    with raw(server) as c:
        c.send(b"GET /environ?q=1 HTTP/1.0\r\n\r\n")
        data = c.read_until_close()
    body = data.split(b"\r\n\r\n", 1)[1]
    env = json.loads(body)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert env["QUERY_STRING"] == "q=1"
