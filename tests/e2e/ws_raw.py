"""A WebSocket client on a raw socket, for what a well-behaved client library cannot do: send exact
frame bytes (malformed ones included), never answer pings, stop reading. The handshake is checked
against RFC 6455 (the accept key); frames from the server are read one at a time, as they came."""
import base64
import hashlib
import os
import socket
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
OP_NAMES = {OP_CONT: "cont", OP_TEXT: "text", OP_BINARY: "binary", OP_CLOSE: "close", OP_PING: "ping",
            OP_PONG: "pong"}


def handshake_request(path="/echo", host="x", key=None, extra=b""):
    key = key or base64.b64encode(os.urandom(16))
    return (b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
            % (path.encode(), host.encode(), key, extra)), key


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def frame(opcode, payload=b"", fin=True, mask=b"\x00\x00\x00\x00", rsv=0):
    """One frame's bytes. mask=None sends it unmasked (a protocol error from a client)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if any(mask) else payload
    return head + mask + masked


def header(head, name):
    """The value of header `name` (lower-case bytes) in a response head, or None."""
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class Closed(Exception):
    """The server closed the TCP connection (EOF or reset) before the frame was whole."""


class RawWebSocket:
    """One client connection: connect(), then send frames and read the server's."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""

    @classmethod
    def connect(cls, server, path="/echo", timeout=5.0, extra=b"", rcvbuf=None):
        sock = socket.create_connection((server.host, server.port), timeout=timeout)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        ws = cls(sock)
        request, key = handshake_request(path, extra=extra)
        sock.sendall(request)
        head = ws.read_head()
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert header(head, b"sec-websocket-accept") == accept_key(key), head
        return ws

    def read_head(self):
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        return head + b"\r\n\r\n"

    def _fill(self):
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            raise Closed()
        self.buffer += data

    def _take(self, n):
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def send(self, data):
        self.sock.sendall(data)

    def send_text(self, text):
        self.send(frame(OP_TEXT, text.encode()))

    def read_frame(self):
        """(fin, opcode, payload) of the next frame; server frames must not be masked."""
        b0, b1 = self._take(2)
        assert not b1 & 0x80, "a masked frame from the server"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._take(n)

    def read_message(self):
        """The next data message as (opcode, payload), fragments joined; pings are answered
        unless they are to be ignored (the caller reads frames itself then)."""
        opcode, parts = None, []
        while True:
            fin, op, payload = self.read_frame()
            if op == OP_PING:
                self.send(frame(OP_PONG, payload))
                continue
            if op == OP_CLOSE:
                raise AssertionError("closed: %r" % (close_code(payload),))
            opcode = op if opcode is None else opcode
            parts.append(payload)
            if fin:
                return opcode, b"".join(parts)

    def read_until_close(self, answer_pings=False):
        """Every frame up to and with the server's close frame: ([(name, payload)...], code, reason)."""
        frames = []
        while True:
            fin, op, payload = self.read_frame()
            if op == OP_CLOSE:
                code, reason = close_code(payload)
                return frames, code, reason
            if op == OP_PING and answer_pings:
                self.send(frame(OP_PONG, payload))
            frames.append((OP_NAMES.get(op, op), payload))

    def closed_by_peer(self):
        """True once the server has closed the TCP connection (after its close frame)."""
        try:
            while True:
                self._fill()
        except Closed:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def close_code(payload):
    """(code, reason) of a close frame's payload: 1005 for none (RFC 6455 7.1.5), None if broken."""
    if not payload:
        return 1005, b""
    if len(payload) < 2:
        return None, payload
    return struct.unpack("!H", payload[:2])[0], payload[2:]
