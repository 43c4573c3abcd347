"""The compression middleware against the real binary: every rule, decoded by Python's own gzip and
Debian's brotli and zstandard modules to exactly the original bytes."""
import gzip
import os
import socket
import sys
import time
import zlib

import brotli
import pytest
import zstandard

from conftest import APPS, IO_TIMEOUT, raw

sys.path.insert(0, APPS)
from compress_app import noise, page  # noqa: E402  (the bodies the app sends)


def decode(coding, data):
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "br":
        return brotli.decompress(data)
    if coding == "zstd":
        # Frame after frame, as urllib3 and browsers do (BREACH mitigation adds a skippable frame).
        out = b""
        while data:
            d = zstandard.ZstdDecompressor().decompressobj()
            out += d.decompress(data)
            data = d.unused_data
        return out
    assert coding is None, coding
    return data


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import ServerFactory
    factory = ServerFactory(tmp_path_factory)
    yield factory("compress_app:app", "--middleware", "timing,compress", workers=1)
    factory.teardown()


def get(server, path, accept="gzip", method="GET", extra=None):
    headers = dict(extra or {})
    if accept is not None:
        headers["Accept-Encoding"] = accept
    conn = server.http()
    try:
        conn.request(method, path.replace(" ", "%20"), headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


# ---- codings and negotiation -------------------------------------------------------------------

@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_whole_body_decodes_to_exactly_the_original(server, coding):
    status, h, body = get(server, "/html?size=40000", accept=coding)
    assert status == 200
    assert h["content-encoding"] == coding
    assert int(h["content-length"]) == len(body) < 40000 // 5
    assert decode(coding, body) == page(40000)
    assert h["vary"] == "Accept-Encoding"


@pytest.mark.parametrize("accept,expected", [
    ("gzip, deflate, br, zstd", "br"),          # the server's preference breaks ties
    ("gzip, zstd", "zstd"),
    ("br;q=0.2, gzip;q=0.9", "gzip"),            # q-values first
    ("*", "br"),
    ("*;q=0.5, gzip", "gzip"),
    ("identity;q=0, gzip", "gzip"),
    ("identity;q=0, zstd;q=0.3, br;q=0", "zstd"),
    ("identity;q=0", None),                      # nothing acceptable: identity all the same (RFC 9110 allows it)
    ("gzip;q=0", None),                          # Django's regex takes this as a yes
    ("GZIP;Q=0", None),
    ("br;q=0, gzip;q=0, zstd;q=0", None),
    ("*;q=0", None),
    ("deflate", None),
    ("identity", None),
    ("gzip;q=1.5", None),                        # malformed: identity, never an error
    ("gzip;;q=", None),
    (",,,", None),
    ("x-gzip", "gzip"),
])
def test_accept_encoding_negotiation(server, accept, expected):
    status, h, body = get(server, "/html?size=5000", accept=accept)
    assert status == 200
    assert h.get("content-encoding") == expected
    assert decode(expected, body) == page(5000)
    assert h["vary"] == "Accept-Encoding"


def test_no_accept_encoding_still_gets_vary(server):
    status, h, body = get(server, "/html?size=5000", accept=None)
    assert "content-encoding" not in h and body == page(5000)
    assert h["vary"] == "Accept-Encoding"  # a downstream cache must not serve this to a gzip client


def test_preference_and_levels_are_configurable(start_server, tmp_path):
    conf = tmp_path / "gantry.toml"
    conf.write_text('[[middleware]]\nname = "compress"\nprefer = "gzip,zstd"\ngzip_level = 1\nmin_length = 100\n'
                    'types = ["text/*"]\n')
    server = start_server("compress_app:app", "-c", str(conf))
    _, h, body = get(server, "/html?size=40000", accept="br, zstd, gzip")
    assert h["content-encoding"] == "gzip" and gzip.decompress(body) == page(40000)
    _, h9, body9 = get(start_server("compress_app:app", "--middleware", "compress"), "/html?size=40000")
    assert len(body) > len(body9)  # level 1 against the default 6
    _, h, _ = get(server, "/html?size=150")
    assert h["content-encoding"] == "gzip"  # min_length 100 (the default 200 would refuse it)
    _, h, _ = get(server, "/html?size=5000&type=application/json")
    assert "content-encoding" not in h  # types: text/* only


@pytest.mark.parametrize("option", ["nonesuch = 1", "gzip_level = 13", "prefer = \"gzip,lzma\"", "min_length = -5",
                                    "br_level = \"high\"", "breach_mitigation = \"perhaps\""])
def test_bad_option_is_a_start_up_error(start_server, tmp_path, option):
    conf = tmp_path / "gantry.toml"
    conf.write_text('[[middleware]]\nname = "compress"\n%s\n' % option)
    server = start_server("compress_app:app", "-c", str(conf), wait=False)
    assert server.wait(timeout=IO_TIMEOUT) != 0
    assert "compress" in server.stderr()


# ---- the rules ----------------------------------------------------------------------------------

def test_short_bodies_are_not_compressed(server):
    _, h, body = get(server, "/html?size=199")
    assert "content-encoding" not in h and "vary" not in h and body == page(199)
    _, h, body = get(server, "/html?size=200")
    assert h["content-encoding"] == "gzip" and gzip.decompress(body) == page(200)


def test_already_encoded_is_left_alone(server):
    _, h, body = get(server, "/html?size=5000&h=Content-Encoding:identity")
    assert h["content-encoding"] == "identity" and body == page(5000) and "vary" not in h


def test_no_transform_is_honoured(server):
    _, h, body = get(server, "/html?size=5000&h=Cache-Control:public, no-transform")
    assert "content-encoding" not in h and body == page(5000)


@pytest.mark.parametrize("ctype,compressed", [
    ("text/html; charset=utf-8", True), ("text/css", True), ("application/json", True),
    ("application/javascript", True), ("image/svg+xml", True), ("application/wasm", True),
    ("application/ld+json", True), ("application/xml", True),
    ("image/png", False), ("application/octet-stream", False), ("application/zip", False), ("font/woff2", False),
])
def test_only_compressible_types(server, ctype, compressed):
    _, h, body = get(server, "/html?size=5000&type=" + ctype.replace(" ", "%20").replace("+", "%2B"))
    assert ("content-encoding" in h) == compressed, h
    assert decode(h.get("content-encoding"), body) == page(5000)


def test_incompressible_body_is_sent_as_is(server):
    _, h, body = get(server, "/html?size=5000&noise=1&h=ETag:\"n1\"")
    assert "content-encoding" not in h and body == noise(5000)
    assert h["etag"] == '"n1"' and h["content-length"] == "5000"
    assert h["vary"] == "Accept-Encoding"  # another client's coding could still have differed


def test_vary_is_merged(server):
    _, h, _ = get(server, "/html?size=5000&h=Vary:Cookie")
    assert h["vary"] == "Cookie, Accept-Encoding"
    _, h, _ = get(server, "/html?size=5000&h=Vary:Cookie, accept-encoding")
    assert h["vary"] == "Cookie, accept-encoding"
    _, h, _ = get(server, "/html?size=5000&h=Vary:*")
    assert h["vary"] == "*"
    _, h, _ = get(server, "/html?size=5000&h=Vary:Cookie", accept=None)
    assert h["vary"] == "Cookie, Accept-Encoding"


def test_strong_etag_turns_weak_weak_stays(server):
    _, h, _ = get(server, '/html?size=5000&h=ETag:"v1"')
    assert h["etag"] == 'W/"v1"'
    _, h, _ = get(server, '/html?size=5000&h=ETag:W/"v1"')
    assert h["etag"] == 'W/"v1"'
    _, h, _ = get(server, '/html?size=5000&h=ETag:"v1"', accept=None)
    assert h["etag"] == '"v1"'


def test_bodyless_and_partial_statuses_are_left_alone(server):
    _, h, body = get(server, "/html?size=5000&status=206%20Partial%20Content&h=Content-Range:bytes 0-4999/9000")
    assert "content-encoding" not in h and body == page(5000)
    status, h, body = get(server, "/html?size=0&status=304%20Not%20Modified")
    assert status == 304 and "content-encoding" not in h


def test_head_gets_the_headers_get_gets(server):
    _, get_h, get_body = get(server, '/html?size=40000&h=ETag:"e"')
    status, head_h, head_body = get(server, '/html?size=40000&h=ETag:"e"', method="HEAD")
    assert status == 200 and head_body == b""
    for name in ("content-encoding", "vary", "content-length", "etag", "content-type"):
        assert head_h[name] == get_h[name], name
    assert int(head_h["content-length"]) == len(get_body)
    # A streamed response: HEAD gets GET's headers too (no length, the coding, Vary).
    path = "/stream?n=400&size=3000&length=%d" % len(_stream_expected(400, 3000))
    _, sget, _ = get(server, path)
    _, shead, _ = get(server, path, method="HEAD")
    assert sget["content-encoding"] == shead["content-encoding"] == "gzip"
    assert "content-length" not in sget and "content-length" not in shead


def test_http10_whole_and_stream(server):
    for path, expected in (("/html?size=5000", page(5000)),
                           ("/stream?n=3&size=300", b"".join(b"<!-- chunk %d -->" % i + page(300) for i in range(3)))):
        with raw(server) as conn:
            conn.send(b"GET " + path.encode() + b" HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
            data = conn.read_until_close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"Content-Encoding: gzip" in head
        assert b"Transfer-Encoding" not in head  # HTTP/1.0: a stream ends with the close
        assert gzip.decompress(body) == expected


# ---- streams --------------------------------------------------------------------------------------

def _stream_expected(n, size):
    return b"".join(b"<!-- chunk %d -->" % i + page(size) for i in range(n))


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_stream_decodes_and_drops_the_apps_content_length(server, coding):
    # Over 1 MiB with a Content-Length: the server streams it (smaller ones it collects whole).
    expected = _stream_expected(400, 3000)
    _, h, body = get(server, "/stream?n=400&size=3000&length=%d" % len(expected), accept=coding)
    assert h["content-encoding"] == coding and "content-length" not in h
    assert h["transfer-encoding"] == "chunked"
    assert decode(coding, body) == expected
    _, h, body = get(server, "/stream?n=400&size=3000&length=%d" % len(expected), accept=None)
    assert h["content-length"] == str(len(expected)) and body == expected


def _read_chunk(f):
    """One chunk of a chunked body from the raw socket file: its data (b"" for the last)."""
    size = int(f.readline().split(b";")[0], 16)
    data = f.read(size)
    assert f.readline() == b"\r\n"
    return data


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_stream_arrives_in_pieces_each_decodable_at_once(server, coding):
    """The app sleeps 0.4 s between chunks: each compressed piece must arrive, and decode to its
    chunk, before the app has even produced the next one."""
    n, delay = 4, 0.4
    with raw(server, timeout=IO_TIMEOUT) as conn:
        conn.send(b"GET /stream?n=%d&size=500&delay=%s HTTP/1.1\r\nHost: t\r\nAccept-Encoding: %s\r\n\r\n"
                  % (n, str(delay).encode(), coding.encode()))
        f = conn.file
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += f.readline()
        assert b"Content-Encoding: " + coding.encode() in head
        if coding == "gzip":
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "br":
            d = brotli.Decompressor()
        else:
            d = zstandard.ZstdDecompressor().decompressobj()
        got = b""
        arrivals = []
        for i in range(n):
            want = _stream_expected(i + 1, 500)
            while len(got) < len(want):
                piece = _read_chunk(f)
                assert piece, "stream ended early"
                got += d.process(piece) if coding == "br" else d.decompress(piece)
            arrivals.append(time.monotonic())
            assert got == want  # this chunk decoded in full before the next was even made
        # Then the end of the compressed stream and the last chunk.
        while True:
            piece = _read_chunk(f)
            if not piece:
                break
            got += d.process(piece) if coding == "br" else d.decompress(piece)
        assert got == _stream_expected(n, 500)
        assert d.is_finished() if coding == "br" else d.eof
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    # Pieces came apart, as the app made them (not all at the end).
    assert all(g > delay / 2 for g in gaps), gaps


def test_server_sent_events_stream_compressed(server):
    """Each event decodes on arrival, apart from the next (the app sleeps 0.5 s between them)."""
    with raw(server, timeout=IO_TIMEOUT) as conn:
        conn.send(b"GET /sse?n=3&delay=0.5 HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
        f = conn.file
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += f.readline()
        assert b"Content-Type: text/event-stream" in head and b"Content-Encoding: gzip" in head
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        events, arrivals, text = [], [], b""
        while True:
            piece = _read_chunk(f)
            if not piece:
                break
            text += d.decompress(piece)
            while b"\n\n" in text:
                event, _, text = text.partition(b"\n\n")
                events.append(event + b"\n\n")
                arrivals.append(time.monotonic())
        assert events == [b"event: tick\ndata: {\"i\": %d}\n\n" % i for i in range(3)]
        assert text == b"" and d.eof
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert all(g > 0.25 for g in gaps), gaps  # not held back and sent together at the end


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_file_wrapper_body_is_compressed_not_sent_raw(server, tmp_path, coding):
    path = tmp_path / "big.txt"
    content = page(300_000)  # several 64 KiB pieces
    path.write_bytes(content)
    _, h, body = get(server, "/file?path=%s" % path, accept=coding)
    assert h["content-encoding"] == coding and "content-length" not in h
    assert decode(coding, body) == content
    # No Accept-Encoding: the file goes out raw with its own length (sendfile).
    _, h, body = get(server, "/file?path=%s" % path, accept=None)
    assert "content-encoding" not in h and h["content-length"] == str(len(content)) and body == content
    # A type not worth compressing: raw too.
    _, h, body = get(server, "/file?path=%s&type=application/octet-stream" % path, accept=coding)
    assert "content-encoding" not in h and body == content


def test_keep_alive_survives_compressed_streams(server):
    with raw(server) as conn:
        for i in range(3):
            conn.send(b"GET /stream?n=3&size=400 HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
            r = conn.response()
            assert r.getheader("Content-Encoding") == "gzip"
            assert gzip.decompress(r.body) == _stream_expected(3, 400)
            conn.send(b"GET /html?size=3000 HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br\r\n\r\n")
            r = conn.response()
            assert brotli.decompress(r.body) == page(3000)


def test_breach_mitigation_varies_the_length(start_server, tmp_path):
    conf = tmp_path / "gantry.toml"
    conf.write_text('[[middleware]]\nname = "compress"\nbreach_mitigation = true\n')
    server = start_server("compress_app:app", "-c", str(conf))
    sizes = set()
    for _ in range(10):
        _, h, body = get(server, "/html?size=5000")
        assert gzip.decompress(body) == page(5000)
        sizes.add(len(body))
        _, h, body = get(server, "/html?size=5000", accept="zstd")
        assert decode("zstd", body) == page(5000)
    assert len(sizes) > 3
    _, h, body = get(server, "/stream?n=4&size=300")
    assert gzip.decompress(body) == _stream_expected(4, 300)


def test_not_in_the_default_chain(start_server):
    server = start_server("compress_app:app")
    _, h, body = get(server, "/html?size=5000")
    assert "content-encoding" not in h and "vary" not in h and body == page(5000)


# ---- the Django demo's benchmark page ------------------------------------------------------------

DEMO = os.path.join(os.path.dirname(APPS), os.pardir, "examples", "django_demo")


def test_demo_big_page_compressed_by_gantry_or_by_django(start_server):
    """/big-page/ (bench/e2e/compress_compare.py): gantry's compress middleware, and the
    DJANGO_GZIP=1 switch that puts Django's GZipMiddleware in front instead."""
    sys.path.insert(0, os.path.join(DEMO, "shop"))
    from big_page import PAGE
    demo = os.path.abspath(DEMO)
    ours = start_server("demo.wsgi:application", "--chdir", demo, "--middleware", "timing,compress")
    _, h, body = get(ours, "/big-page/", accept="gzip, br")
    assert h["content-encoding"] == "br" and brotli.decompress(body) == PAGE
    django = start_server("demo.wsgi:application", "--chdir", demo, env={"DJANGO_GZIP": "1"})
    _, h, django_body = get(django, "/big-page/", accept="gzip")
    assert h["content-encoding"] == "gzip" and gzip.decompress(django_body) == PAGE
    _, h, body = get(ours, "/big-page/", accept="gzip")
    assert gzip.decompress(body) == PAGE
    # gantry's default level (libdeflate 5) is chosen to stay within ~10% of zlib 6 (Django's).
    assert len(body) <= 1.1 * len(django_body)


def test_client_gone_mid_compressed_stream_then_serving_goes_on(server):
    """A client leaving mid-stream frees its compressor (back to the pool, reset for the next)."""
    for coding in ("gzip", "br", "zstd"):
        with raw(server) as conn:
            conn.send(b"GET /stream?n=50&size=2000&delay=0.02 HTTP/1.1\r\nHost: t\r\nAccept-Encoding: %s\r\n\r\n"
                      % coding.encode())
            assert conn.file.readline().startswith(b"HTTP/1.1 200")
        # The next streams on the same worker decode cleanly: the pooled state was reset.
        _, h, body = get(server, "/stream?n=3&size=400&delay=0.01", accept=coding)
        assert h["content-encoding"] == coding and decode(coding, body) == _stream_expected(3, 400)
