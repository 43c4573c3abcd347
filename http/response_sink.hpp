#pragma once
// Where the application side sends a response. Implemented by the HTTP session; called from a
// Python executor thread. No Python types cross this interface.
//
// Contract, per request, exactly one of:
//   send_whole(head, body)                          - the whole response at once (the common case)
//   start_stream(head), then write_chunk/send_file any number of times, then finish_stream()
//   fail()                                          - the app broke; before a head: the session
//                                                     answers 500; after: it closes the connection
// The application side reaches these only through a ResponseHandle (http/response_handle.hpp),
// which makes the contract hold by construction: they are protected here.
// Calls that can block (write_chunk, send_file: bounded buffer, waiting for the socket) must be
// made with the GIL released. They return false once the client is gone: stop producing, but
// still finish the stream (and call the iterable's close()).
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "http/app_breakdown.hpp"
#include "http/request.hpp"
#include "http/response_head.hpp"

namespace gantry {

class ResponseSink {
public:
    virtual ~ResponseSink() = default;

    // The app did not finish within --timeout (called by the worker's watchdog, from any thread):
    // the client gets a 504 (or, after the head, a close) at once, and whatever the stuck app
    // sends later is dropped.
    virtual void fail_timeout() { fail(); }

    // True once the client disconnected (or the connection failed); cheap, lock-free.
    virtual bool client_gone() const = 0;
    // True once the client has closed its side while the app runs (EOF: it left, or half-closed
    // and still reads). The response may still be written; an app that waits for more input
    // (ASGI receive()) is told the client went away. `notify` is called once, from the
    // connection's thread, when that happens (at once if it has).
    virtual bool peer_closed() const { return client_gone(); }
    virtual void on_peer_closed(std::function<void()> notify) {}

    // A Python thread has taken the call and is about to build the environ: the wait for a Python
    // thread ends here and the app's time begins (it ends with the final call below).
    virtual void app_started() {}
    // --timing full: the breakdown inside the app, given before the final call below.
    virtual void app_breakdown(AppBreakdown breakdown) {}

protected:
    friend class ResponseHandle;
    friend class ResponseStream;

    virtual void send_whole(ResponseHead head, std::string body) = 0;

    virtual void start_stream(ResponseHead head) = 0;
    virtual bool write_chunk(std::string data) = 0;
    // For a producer that must never block (the ASGI event loop): `data` is queued whatever the
    // buffer holds, at once. True: there is room for more. False: the buffer is full or the
    // client gone (client_gone() tells which); when full, `on_space` is called once, from the
    // connection's thread, as soon as there is room again or the client is gone. A sink that
    // cannot do better blocks here as write_chunk does, and returns true.
    virtual bool write_chunk_nowait(std::string data, std::function<void()> on_space) {
        write_chunk(std::move(data));
        return !client_gone();
    }
    // send_file, the same way (the file counts at most one buffer's worth; fd is taken in every case).
    virtual bool send_file_nowait(int fd, off_t offset, std::size_t count, std::function<void()> on_space) {
        send_file(fd, offset, count);
        return !client_gone();
    }
    // Sends [offset, offset+count) of the file with sendfile(2); takes ownership of fd.
    virtual bool send_file(int fd, off_t offset, std::size_t count) = 0;
    virtual void finish_stream() = 0;
    // The end with trailer fields (ASGI's http.response.trailers): sent after the last chunk when
    // the response is chunked, dropped otherwise. A sink without trailers just finishes.
    virtual void finish_stream_with_trailers(std::vector<HttpHeader> trailers) { finish_stream(); }

    virtual void fail() = 0;
};

}  // namespace gantry
