#pragma once
// The app call a middleware asks for after answering a request itself
// (RequestContext::request_background_refresh(): the cache, serving a stale copy within
// stale-while-revalidate). The request is copied as a plain GET; a context of its own, marked as
// a refresh, takes the asking middleware's state (the cache's lock); the chain's request hooks run
// on it; once the app has answered, the response hooks run over the whole answer on an I/O thread,
// so compression compresses it and the cache stores it and lets the lock go, as for a miss.
// It owns everything it needs: the connection that asked may be gone long before. Destroyed
// without completing (a dropped call, a stopped I/O thread), its states go with it, the lock too.
#include <cstddef>

#include "http/request.hpp"
#include "middleware/middleware.hpp"
#include "server/refresh_sink.hpp"

namespace gantry {

class Pipeline;

class BackgroundRefresh {
public:
    // `answered`: the context whose middleware answered and asked for the refresh (on its I/O thread).
    BackgroundRefresh(const Pipeline& pipeline, RequestContext& answered);
    BackgroundRefresh(const BackgroundRefresh&) = delete;
    BackgroundRefresh& operator=(const BackgroundRefresh&) = delete;

    // Runs the chain's request hooks. False when there is nothing to ask the app: a middleware
    // answered the refresh, or would wait (no connection is there to wait).
    bool start();
    // The request for the app call (a copy: the response hooks still read this one).
    HttpRequest app_request() const;
    // On an I/O thread, with the app's answer: a whole answer with a status below 500 goes through
    // the response hooks (and may be stored); a stream, an error or a failure is dropped, and the
    // stale copy stays until the next refresh.
    void complete(RefreshAnswer answer);

    const HttpRequest& request() const { return request_; }

    // The copy of a request a refresh makes: GET, no body, none of the conditional or range
    // headers (the stored copy must be the whole page, not a 304 or a part of it).
    static HttpRequest refresh_request(const HttpRequest& request);

private:
    const Pipeline& pipeline_;
    HttpRequest request_;
    RequestContext ctx_;
    std::size_t entered_ = 0;
};

}  // namespace gantry
