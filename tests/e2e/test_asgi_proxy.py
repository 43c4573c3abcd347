"""Proxy headers for ASGI apps, as for WSGI (test_cli.py): X-Forwarded-For and -Proto from a peer in
--forwarded-allow-ips set the scope's client and scheme; from any other peer they change nothing."""
import json

from conftest import raw

PROXY_HEADERS = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


def test_forwarded_headers_from_a_trusted_proxy_set_client_and_scheme(start_server):
    s = start_server("asgi_probe:app", "--forwarded-allow-ips", "127.0.0.1")
    scope = s.get_json("/scope", headers=PROXY_HEADERS)
    assert scope["scheme"] == "https"
    assert scope["client"][0] == "203.0.113.7"


def test_forwarded_headers_from_an_untrusted_peer_change_nothing(start_server):
    s = start_server("asgi_probe:app", "--forwarded-allow-ips", "127.0.0.1")
    with raw(s, source=("127.0.0.2", 0)) as c:
        c.send(b"GET /scope HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n\r\n")
        r = c.response()
    assert r.status == 200
    scope = json.loads(r.body)
    assert scope["client"][0] == "127.0.0.2" and scope["scheme"] == "http"
