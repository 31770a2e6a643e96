"""WebSockets on the wire (SPEC 13): the built-in server, both event loops, raw sockets.

Every test talks to a real server process (tests/apps/ws_app.py) through ``Client``: the
handshake is written by hand (and read once with h11), frames are built with
``pixie_web.websocket_frame`` and masked as a client must, and what the server sends is read
by the small frame parser below, not by pixie_web's own codec. Each protocol rule of SPEC 13
has its test: the close code the server sends, then the TCP close, then another client is
still served. The codec itself is unit-tested in test_ws_codec.py.
"""
import base64
import hashlib
import json
import os
import signal
import socket
import sys
import time
import uuid
import zlib
from collections import namedtuple

import h11
import pytest

from pixie_web import websocket_frame
from tests.support import ROOT, ChildServer, Client, child_env, free_port, wait_for

APP = "tests.apps.ws_app:app"
ORIGINS_APP = "tests.apps.ws_app:origins_app"
MAX_MESSAGE = 1024          # app's max_ws_message_size
CLOSE_TIMEOUT = 1.0         # app's ws_close_timeout
SHUTDOWN_TIMEOUT = 3.0      # app's shutdown_timeout
KEY = "dGhlIHNhbXBsZSBub25jZQ=="            # RFC 6455 1.3 ...
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="     # ... and its answer
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
RSV1, RSV2, RSV3 = 0x40, 0x20, 0x10
DEFLATE_TAIL = b"\x00\x00\xff\xff"


# ---- The client end ---------------------------------------------------------------------------

def upgrade_request(path="/echo", method="GET", version="HTTP/1.1", fields=None, extra=()):
    """A handshake request; ``fields`` replace (None: remove) the usual header fields,
    ``extra`` (name, value) pairs are added after them."""
    usual = {"Host": "a", "Upgrade": "websocket", "Connection": "Upgrade",
             "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13"}
    usual.update(fields or {})
    lines = [f"{method} {path} {version}"]
    lines += [f"{name}: {value}" for name, value in usual.items() if value is not None]
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def client_frame(opcode, payload, fin=True, rsv=0, masked=True):
    """A frame as a client sends it (masked, with a fresh key), or unmasked; ``rsv``: the
    reserved bits to set."""
    frame = websocket_frame(opcode, payload, fin, False, os.urandom(4) if masked else None)
    return bytes([frame[0] | rsv]) + frame[1:]


def close_payload(code, reason=b""):
    return code.to_bytes(2, "big") + reason


Frame = namedtuple("Frame", "fin rsv opcode payload")


def parse_frame(data):
    """``(Frame, rest)`` for the server's frame at the start of ``data``, None while it is
    incomplete. A server never masks (RFC 6455 5.1)."""
    if len(data) < 2:
        return None
    first, second = data[0], data[1]
    assert not second & 0x80, f"the server masked a frame: {data[:40]!r}"
    length, start = second & 0x7F, 2
    if length >= 126:
        start += 2 if length == 126 else 8
        if len(data) < start:
            return None
        length = int.from_bytes(data[2:start], "big")
    if len(data) < start + length:
        return None
    frame = Frame(bool(first & 0x80), first & 0x70, first & 0x0F, data[start:start + length])
    return frame, data[start + length:]


class Peer:
    """The client end of one WebSocket: a ``Client`` past its 101 (``reply``), which sends
    masked frames and reads the server's frames with ``parse_frame``."""

    def __init__(self, client, reply):
        self.client = client
        self.reply = reply
        self.pending, client.buffer = client.buffer, b""

    def send(self, *frames):
        self.client.send(b"".join(frames))

    def frame(self, timeout=5.0):
        """The server's next frame; None once it has closed the connection."""
        deadline = time.monotonic() + timeout
        while True:
            parsed = parse_frame(self.pending)
            if parsed is not None:
                frame, self.pending = parsed
                return frame
            if self.client.eof:
                assert not self.pending, f"the connection closed mid-frame: {self.pending!r}"
                return None
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no frame from the server within {timeout}s"
            self.pending += self.client.read_some(remaining)

    def message(self, timeout=5.0):
        """The next data frame's payload (text decoded); fails on anything else."""
        frame = self.frame(timeout)
        assert frame is not None and frame.fin and frame.opcode in (TEXT, BINARY), frame
        return frame.payload.decode("utf-8") if frame.opcode == TEXT else frame.payload

    def close_frame(self, timeout=5.0):
        """``(code or None, reason, frames before it)``: read up to the server's close."""
        before = []
        while True:
            frame = self.frame(timeout)
            assert frame is not None, f"the server closed without a close frame after {before}"
            if frame.opcode == CLOSE:
                assert frame.fin and not frame.rsv, frame
                payload = frame.payload
                assert len(payload) != 1, f"a close frame with a 1-byte payload: {payload!r}"
                code = int.from_bytes(payload[:2], "big") if payload else None
                return code, payload[2:].decode("utf-8"), before
            before.append(frame)

    def closed_within(self, seconds):
        """True once the server closed TCP (within ``seconds``) having sent nothing more, and
        with a FIN, not a reset."""
        closed = self.client.closed_within(seconds)
        assert not self.client.buffer and not self.pending, (
            f"the server sent more after its close frame: {self.client.buffer[:80]!r}")
        assert not self.client.was_reset, "the server reset the connection instead of closing it"
        return closed

    def close(self):
        self.client.close()


def answer(port, request, timeout=5.0):
    """``(Reply, Client)``: the server's answer to ``request`` on a new connection."""
    client = Client(port, timeout=timeout)
    client.send(request)
    return client.reply(), client


def refused(port, request):
    """The server's answer to a handshake it must refuse: not a 101, nothing after it."""
    reply, client = answer(port, request)
    client.close()
    assert reply.status != 101, reply
    assert reply.header("sec-websocket-accept") is None, reply
    return reply


def open_websocket(port, path="/echo", fields=None, extra=(), first=b"", rcvbuf=None):
    """A Peer on ``path`` after a successful handshake (``first``: bytes sent in the same
    packet as the handshake)."""
    client = Client(port, timeout=5.0, rcvbuf=rcvbuf)
    client.send(upgrade_request(path, fields=fields, extra=extra) + first)
    reply = client.reply()
    assert reply.status == 101, reply
    assert reply.header("sec-websocket-accept") == ACCEPT, reply
    return Peer(client, reply)


def assert_echo(port, path="/echo", text="still here"):
    """A fresh WebSocket on ``path`` echoes a text and a binary message and closes cleanly."""
    peer = open_websocket(port, path)
    peer.send(client_frame(TEXT, text.encode()), client_frame(BINARY, b"\x00\xff"))
    assert peer.message() == text
    assert peer.message() == b"\x00\xff"
    peer.send(client_frame(CLOSE, close_payload(1000)))
    assert peer.close_frame()[:2] == (1000, "")
    assert peer.closed_within(3)
    peer.close()


def assert_still_serving(port):
    """The server still answers HTTP and WebSockets on new connections."""
    reply, client = answer(port, b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
    client.close()
    assert (reply.status, reply.body) == (200, b"hello over HTTP"), reply
    assert_echo(port)


def assert_violation(port, frames, code, path="/echo", extensions=None):
    """``frames`` break a rule: the server answers with a close frame carrying ``code`` (and
    nothing else), closes TCP at once, and goes on serving others."""
    fields = {"Sec-WebSocket-Extensions": extensions} if extensions else None
    peer = open_websocket(port, path, fields=fields)
    peer.client.send_ignoring_close(b"".join(frames))
    received, _, before = peer.close_frame()
    assert received == code, f"close code {received}, expected {code}"
    assert before == [], f"the server sent frames before its close: {before}"
    assert peer.closed_within(2), "the server kept the TCP connection after a violation"
    peer.close()
    assert_still_serving(port)


def compress(data, compressor=None):
    """A message's payload compressed as RFC 7692 7.2.1 says (by zlib, not pixie_web)."""
    compressor = compressor or zlib.compressobj(wbits=-15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def rss_bytes(pid):
    """The resident memory of process ``pid`` (Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="session")
def marks(tmp_path_factory):
    """The directory where /marked writes a file once its handler's loop has ended."""
    return tmp_path_factory.mktemp("ws-marks")


@pytest.fixture
def server(shared_server, parser_mode, marks):
    """The WebSocket app's shared server in this parser mode."""
    return shared_server(APP, parser_mode, env={"WS_MARKS": str(marks)})


# ---- Handshake --------------------------------------------------------------------------------

def test_a_valid_handshake_gets_101_with_the_accept_key_and_then_echoes(server):
    reply, client = answer(server.port, upgrade_request())
    peer = Peer(client, reply)
    assert reply.status_line == b"HTTP/1.1 101 Switching Protocols"
    expected = base64.b64encode(hashlib.sha1(
        KEY.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
    assert reply.header("sec-websocket-accept") == expected == ACCEPT
    assert reply.header("upgrade").lower() == "websocket"
    assert reply.header("connection").lower() == "upgrade"
    assert reply.header("sec-websocket-protocol") is None      # none was offered
    assert reply.header("sec-websocket-extensions") is None
    assert reply.header("content-length") is None and reply.header("transfer-encoding") is None
    peer.send(client_frame(TEXT, "héllo".encode()))
    assert peer.message() == "héllo"
    peer.close()


@pytest.mark.parametrize("fields, extra", [
    ({"Connection": "keep-alive, Upgrade"}, []),               # what Firefox sends
    ({"Upgrade": "WebSocket", "Connection": "upgrade"}, []),   # tokens are case-insensitive
    ({"Sec-WebSocket-Key": " " + KEY + "\t"}, []),             # optional whitespace
    ({"Upgrade": "h2c, websocket"}, []),                       # one of the protocols offered
    ({"Upgrade": "h2c"}, [("Upgrade", "websocket")]),          # ... in two field lines
    ({"Connection": "keep-alive"}, [("Connection", "Upgrade")]),
], ids=["keep-alive-upgrade", "mixed-case", "key-with-whitespace", "upgrade-list",
        "two-upgrade-lines", "two-connection-lines"])
def test_handshake_variants_are_accepted(server, fields, extra):
    peer = open_websocket(server.port, fields=fields, extra=extra)
    peer.send(client_frame(TEXT, b"variant"))
    assert peer.message() == "variant"
    peer.close()


def test_h11_reads_the_101_as_a_switch_to_websocket(server):
    connection = h11.Connection(our_role=h11.CLIENT)
    data = connection.send(h11.Request(method="GET", target="/echo", headers=[
        ("Host", "a"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13")]))
    data += connection.send(h11.EndOfMessage())
    with Client(server.port) as client:
        client.send(data + client_frame(TEXT, b"after the switch"))
        event = h11.NEED_DATA
        for _ in range(50):
            event = connection.next_event()
            if event is not h11.NEED_DATA:
                break
            connection.receive_data(client.read_some(5.0))
        assert isinstance(event, h11.InformationalResponse), event
        assert event.status_code == 101
        headers = {name.lower(): value for name, value in event.headers}
        assert headers[b"upgrade"].lower() == b"websocket"
        assert headers[b"sec-websocket-accept"] == ACCEPT.encode()
        assert connection.our_state is h11.SWITCHED_PROTOCOL
        assert connection.next_event() is h11.PAUSED
        trailing, _ = connection.trailing_data
        peer = Peer(client, None)
        peer.pending = trailing
        assert peer.message() == "after the switch"


REFUSALS = [
    # (id, request, status, header that must be in the answer)
    ("version-8", upgrade_request(fields={"Sec-WebSocket-Version": "8"}), 426,
     ("sec-websocket-version", "13")),
    ("version-missing", upgrade_request(fields={"Sec-WebSocket-Version": None}), 426,
     ("sec-websocket-version", "13")),
    ("version-13-and-8", upgrade_request(extra=[("Sec-WebSocket-Version", "8")]), 426,
     ("sec-websocket-version", "13")),
    ("key-missing", upgrade_request(fields={"Sec-WebSocket-Key": None}), 400, None),
    ("key-not-base64", upgrade_request(fields={"Sec-WebSocket-Key": "not base64 at all!!"}),
     400, None),
    ("key-15-bytes", upgrade_request(
        fields={"Sec-WebSocket-Key": base64.b64encode(b"x" * 15).decode()}), 400, None),
    ("key-17-bytes", upgrade_request(
        fields={"Sec-WebSocket-Key": base64.b64encode(b"x" * 17).decode()}), 400, None),
    ("two-keys", upgrade_request(extra=[("Sec-WebSocket-Key", "AQIDBAUGBwgJCgsMDQ4PEA==")]),
     400, None),
    ("post", upgrade_request(method="POST", extra=[("Content-Length", "0")]), 400, None),
    ("get-with-a-body", upgrade_request(extra=[("Content-Length", "4")]) + b"body", 400, None),
    ("http-1.0", upgrade_request(version="HTTP/1.0"), 426, ("upgrade", "websocket")),
]


@pytest.mark.parametrize("request_bytes, status, header",
                         [case[1:] for case in REFUSALS], ids=[case[0] for case in REFUSALS])
def test_a_bad_handshake_is_refused_with_its_status(server, request_bytes, status, header):
    reply = refused(server.port, request_bytes)
    assert reply.status == status, reply
    if header is not None:
        assert reply.header(header[0]).lower() == header[1], reply
    assert_still_serving(server.port)


def test_a_plain_get_to_a_websocket_only_path_gets_426(server):
    reply = refused(server.port, b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.status == 426, reply
    assert reply.header("upgrade").lower() == "websocket"


def test_a_path_with_both_routes_answers_http_to_a_plain_get_and_upgrades_a_handshake(server):
    reply, client = answer(server.port, b"GET /both HTTP/1.1\r\nHost: a\r\n\r\n")
    client.close()
    assert (reply.status, reply.body) == (200, b"both: the HTTP route"), reply
    peer = open_websocket(server.port, "/both")
    assert peer.message() == "both: the WebSocket route"
    peer.send(client_frame(TEXT, b"and echoes"))
    assert peer.message() == "and echoes"
    peer.close()


@pytest.mark.parametrize("path, status, body", [
    ("/hello", 200, b"hello over HTTP"),
    ("/nowhere", 404, None),
])
def test_an_upgrade_to_a_path_without_a_websocket_route_gets_the_http_answer(
        server, path, status, body):
    reply, client = answer(server.port, upgrade_request(path))
    client.close()
    assert reply.status == status, reply
    assert reply.header("upgrade") is None and reply.header("sec-websocket-accept") is None
    if body is not None:
        assert reply.body == body


@pytest.mark.parametrize("origin, status", [
    (None, 403), ("https://evil.example", 403), ("null", 403), ("https://good.example.evil", 403),
    ("https://good.example", 101), ("http://localhost:8000", 101),
])
def test_a_routes_origins_are_enforced(server, origin, status):
    reply, client = answer(server.port, upgrade_request("/origin", fields={"Origin": origin}))
    client.close()
    assert reply.status == status, reply


@pytest.mark.parametrize("origin, status", [
    (None, 403), ("https://other.example", 403), ("https://allowed.example", 101),
])
def test_the_apps_websocket_origins_are_enforced(shared_server, origin, status):
    port = shared_server(ORIGINS_APP, "pure").port
    reply, client = answer(port, upgrade_request(fields={"Origin": origin}))
    if status == 101:
        peer = Peer(client, reply)
        peer.send(client_frame(TEXT, b"from an allowed origin"))
        assert peer.message() == "from an allowed origin"
    client.close()
    assert reply.status == status, reply
    plain, client = answer(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    client.close()
    assert (plain.status, plain.body) == (200, b"home")    # plain HTTP does not care


@pytest.mark.parametrize("offers, chosen", [
    (["chat.v1, chat.v2"], "chat.v2"),       # the route's order wins over the client's
    (["chat.v1", "chat.v2"], "chat.v2"),     # offers in two header lines count the same
    (["chat.v1"], "chat.v1"),
    (["other, chat.v1"], "chat.v1"),
    (["other"], None),                       # nothing in common: no header, still a 101
    ([], None),
])
def test_the_subprotocol_is_the_routes_first_that_the_client_offered(server, offers, chosen):
    peer = open_websocket(server.port, "/sub",
                          extra=[("Sec-WebSocket-Protocol", offer) for offer in offers])
    assert peer.reply.header("sec-websocket-protocol") == chosen
    first = json.loads(peer.message())
    assert first["chosen"] == chosen
    assert first["offered"] == [name.strip() for offer in offers for name in offer.split(",")]
    peer.close()


def test_accepting_a_subprotocol_the_client_did_not_offer_is_a_500_before_the_handshake(server):
    reply = refused(server.port, upgrade_request(
        "/sub-unoffered", extra=[("Sec-WebSocket-Protocol", "chat.v1")]))
    assert reply.status == 500, reply
    assert b"never-offered" not in reply.body            # nothing internal in the answer
    assert_still_serving(server.port)


def test_after_accepts_valueerror_the_handshake_can_still_complete(server):
    peer = open_websocket(server.port, "/sub-retry",
                          extra=[("Sec-WebSocket-Protocol", "chat.v1")])
    assert peer.reply.header("sec-websocket-protocol") is None
    assert peer.message() == "accepted after the ValueError"
    peer.close()


def test_a_before_request_hooks_response_is_the_answer_and_nothing_is_upgraded(server):
    reply = refused(server.port, upgrade_request(extra=[("X-Refuse-Hook", "1")]))
    assert (reply.status, reply.body) == (409, b"refused by the hook"), reply


def test_middleware_sees_the_handshake_and_can_refuse_it(server):
    token = uuid.uuid4().hex
    peer = open_websocket(server.port, f"/echo?probe={token}")
    peer.send(client_frame(TEXT, b"seen?"))
    assert peer.message() == "seen?"
    peer.close()
    reply, client = answer(server.port, b"GET /seen HTTP/1.1\r\nHost: a\r\n\r\n")
    client.close()
    assert f"/echo?probe={token}" in json.loads(reply.body)["seen"]
    refusal = refused(server.port, upgrade_request(extra=[("X-Refuse-Middleware", "1")]))
    assert (refusal.status, refusal.body) == (451, b"refused by the middleware"), refusal


def test_an_httperror_before_accept_is_the_http_answer(server):
    reply = refused(server.port, upgrade_request("/teapot"))
    assert reply.status == 418, reply
    assert b"no tea over WebSocket" in reply.body


@pytest.mark.parametrize("path", ["/refuse", "/close-first"])
def test_a_handler_that_never_accepts_refuses_with_403(server, path):
    reply = refused(server.port, upgrade_request(path))
    assert reply.status == 403, reply


# ---- Protocol violations: one test per rule, each the close code, the TCP close, and the
# ---- server still serving

def test_an_unmasked_client_frame_gets_1002(server):
    assert_violation(server.port, [client_frame(TEXT, b"in the clear", masked=False)], 1002)


@pytest.mark.parametrize("rsv", [RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3])
def test_reserved_bits_without_an_extension_get_1002(server, rsv):
    assert_violation(server.port, [client_frame(TEXT, b"reserved", rsv=rsv)], 1002)


@pytest.mark.parametrize("frames", [
    [client_frame(PING, b"x", rsv=RSV1)],                              # a control frame
    [client_frame(TEXT, compress(b"ab"), fin=False, rsv=RSV1),
     client_frame(CONTINUATION, compress(b"cd"), rsv=RSV1)],           # a continuation
    [client_frame(TEXT, b"x", rsv=RSV2)],                              # not deflate's bit
], ids=["ping", "continuation", "rsv2"])
def test_reserved_bits_deflate_does_not_allow_get_1002(server, frames):
    assert_violation(server.port, frames, 1002, extensions="permessage-deflate")


@pytest.mark.parametrize("opcode", [3, 7, 11, 15])
def test_an_unknown_opcode_gets_1002(server, opcode):
    assert_violation(server.port, [client_frame(opcode, b"what is this")], 1002)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_a_control_frame_over_125_bytes_gets_1002(server, opcode):
    payload = close_payload(1000, b"r" * 124) if opcode == CLOSE else b"p" * 126
    assert_violation(server.port, [client_frame(opcode, payload)], 1002)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_a_fragmented_control_frame_gets_1002(server, opcode):
    payload = close_payload(1000) if opcode == CLOSE else b"part"
    assert_violation(server.port, [client_frame(opcode, payload, fin=False)], 1002)


@pytest.mark.parametrize("fin", [True, False])
def test_a_continuation_without_a_start_gets_1002(server, fin):
    assert_violation(server.port, [client_frame(CONTINUATION, b"orphan", fin=fin)], 1002)


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_a_new_data_frame_inside_a_fragmented_message_gets_1002(server, opcode):
    assert_violation(server.port, [client_frame(TEXT, b"first half", fin=False),
                                   client_frame(opcode, b"intruder")], 1002)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_an_invalid_close_code_gets_1002(server, code):
    assert_violation(server.port, [client_frame(CLOSE, close_payload(code))], 1002)


def test_a_one_byte_close_payload_gets_1002(server):
    assert_violation(server.port, [client_frame(CLOSE, b"\x03")], 1002)


@pytest.mark.parametrize("payload", [b"\xff", b"ok \xc3\x28", b"\xed\xa0\x80",   # surrogate
                                     b"\xf4\x90\x80\x80", b"cut short \xe2\x82"],
                         ids=["ff", "bad-continuation", "surrogate", "over-max", "cut-short"])
def test_invalid_utf8_in_a_text_message_gets_1007(server, payload):
    assert_violation(server.port, [client_frame(TEXT, payload)], 1007)


@pytest.mark.parametrize("parts", [
    [b"euro \xe2\x82", b"A"],                   # a valid start, an invalid end
    [b"fine", b"\xff", b"more"],                # invalid in a middle fragment
    [b"euro \xe2", b"\x82"],                    # cut short at the end of the message
], ids=["split-invalid", "middle", "cut-short"])
def test_invalid_utf8_split_across_fragments_gets_1007(server, parts):
    frames = [client_frame(TEXT if index == 0 else CONTINUATION, part,
                           fin=index == len(parts) - 1) for index, part in enumerate(parts)]
    assert_violation(server.port, frames, 1007)


def test_a_valid_character_split_across_fragments_is_echoed(server):
    peer = open_websocket(server.port)
    peer.send(client_frame(TEXT, b"euro \xe2\x82", fin=False),
              client_frame(CONTINUATION, b"\xac!"))
    assert peer.message() == "euro €!"
    peer.close()


def test_invalid_utf8_in_a_close_reason_gets_1007(server):
    assert_violation(server.port, [client_frame(CLOSE, close_payload(1000, b"bye \xff"))], 1007)


def test_a_frame_over_the_limit_gets_1009_from_its_header_before_its_payload(server):
    peer = open_websocket(server.port)
    peer.send(client_frame(BINARY, b"m" * MAX_MESSAGE))          # exactly the limit: fine
    assert peer.message() == b"m" * MAX_MESSAGE
    header = client_frame(BINARY, b"b" * (MAX_MESSAGE + 1))[:8]  # 2 + 2 (length) + 4 (mask)
    peer.send(header)                                            # ... and no payload
    code, _, before = peer.close_frame(timeout=3)
    assert (code, before) == (1009, [])
    assert peer.closed_within(2)
    peer.close()
    assert_still_serving(server.port)


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_a_fragmented_message_over_the_limit_gets_1009(server, opcode):
    part = b"f" * 256
    frames = [client_frame(opcode if index == 0 else CONTINUATION, part, fin=index == 4)
              for index in range(5)]                             # 1280 bytes in all
    peer = open_websocket(server.port)
    peer.send(*frames[:4])                                       # 1024 so far: not yet over
    peer.send(client_frame(PING, b"still open?"))
    assert peer.frame() == Frame(True, 0, PONG, b"still open?")
    peer.close()
    assert_violation(server.port, frames, 1009)


def test_a_compressed_message_inflating_past_the_limit_gets_1009(server):
    peer = open_websocket(server.port, fields={"Sec-WebSocket-Extensions":
                                               "permessage-deflate; client_max_window_bits"})
    assert peer.reply.header("sec-websocket-extensions") == "permessage-deflate"
    message = b"compressed " * 90                                # 990 bytes: under the limit
    peer.send(client_frame(BINARY, compress(message), rsv=RSV1))
    frame = peer.frame()
    assert frame.opcode == BINARY and frame.rsv == RSV1          # the echo is compressed too
    assert zlib.decompressobj(-15).decompress(frame.payload + DEFLATE_TAIL) == message
    peer.close()
    bomb = compress(b"\x00" * (256 * 1024))                      # 256 KiB in about 260 bytes
    assert len(bomb) < MAX_MESSAGE
    assert_violation(server.port, [client_frame(BINARY, bomb, rsv=RSV1)], 1009,
                     extensions="permessage-deflate")


# ---- Closing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [1000, 1001, 3000, 4999])
def test_a_client_close_is_echoed_and_the_server_closes_tcp(server, code):
    peer = open_websocket(server.port)
    peer.send(client_frame(CLOSE, close_payload(code, b"done")))
    received, _, before = peer.close_frame()
    assert (received, before) == (code, [])
    assert peer.closed_within(2)
    peer.close()


def test_a_close_without_a_payload_is_answered_with_an_empty_close(server):
    peer = open_websocket(server.port)
    peer.send(client_frame(CLOSE, b""))
    assert peer.frame() == Frame(True, 0, CLOSE, b"")
    assert peer.closed_within(2)
    peer.close()


def test_the_handlers_close_is_sent_and_tcp_closes_after_ws_close_timeout(server):
    peer = open_websocket(server.port, "/server-close")
    assert peer.close_frame()[:2] == (4000, "bye")
    started = time.monotonic()
    assert peer.closed_within(CLOSE_TIMEOUT + 2), "the server never dropped a silent peer"
    waited = time.monotonic() - started
    assert waited >= CLOSE_TIMEOUT * 0.7, f"dropped after {waited:.2f}s, before ws_close_timeout"
    peer.close()


def test_a_peer_answering_the_handlers_close_is_disconnected_at_once(server):
    peer = open_websocket(server.port, "/server-close")
    assert peer.close_frame()[:2] == (4000, "bye")
    peer.send(client_frame(CLOSE, close_payload(4000)))
    started = time.monotonic()
    assert peer.closed_within(CLOSE_TIMEOUT * 0.7), "the server waited although the peer closed"
    assert time.monotonic() - started < CLOSE_TIMEOUT * 0.7
    peer.close()


def test_a_handler_that_returns_closes_with_1000(server):
    peer = open_websocket(server.port, "/return")
    code, _, before = peer.close_frame()
    assert code == 1000
    assert [frame.payload for frame in before] == [b"returning now"]
    peer.send(client_frame(CLOSE, close_payload(1000)))
    assert peer.closed_within(CLOSE_TIMEOUT * 0.7)
    peer.close()


def test_a_handler_that_raises_closes_with_1011_and_logs_the_traceback(parser_mode):
    port = free_port()
    server = ChildServer([sys.executable, os.path.join(ROOT, "tests", "serve.py"), APP,
                          str(port), json.dumps({"access_log": False})], port,
                         child_env(parser_mode == "pure"), separate_stderr=True)
    try:
        peer = open_websocket(port, "/raise")
        assert peer.frame() == Frame(True, 0, TEXT, b"about to fail")
        close = peer.frame()
        assert close == Frame(True, 0, CLOSE, close_payload(1011)), close   # no reason given
        peer.send(client_frame(CLOSE, close_payload(1011)))
        assert peer.closed_within(2)
        peer.close()
        assert_still_serving(port)
        assert wait_for(lambda: "the secret detail" in server.errors(), 5), server.errors()
    finally:
        server.stop()
    errors = server.errors()
    assert "Traceback" in errors
    assert "RuntimeError: the secret detail of a WebSocket failure" in errors
    assert "/raise" in errors


def test_pings_are_answered_with_a_pong_carrying_the_same_payload(server):
    peer = open_websocket(server.port)
    for payload in [b"", b"x", bytes(range(125))]:
        peer.send(client_frame(PING, payload))
        assert peer.frame() == Frame(True, 0, PONG, payload)
    peer.send(client_frame(TEXT, b"hel", fin=False), client_frame(PING, b"between"),
              client_frame(CONTINUATION, b"lo"))                # a ping inside a message
    assert peer.frame() == Frame(True, 0, PONG, b"between")
    assert peer.message() == "hello"
    peer.send(client_frame(PONG, b"unsolicited"))                # ignored, as RFC 6455 5.5.3
    peer.send(client_frame(TEXT, b"after"))
    assert peer.message() == "after"
    peer.close()


@pytest.fixture
def pinging_server(shared_server, parser_mode):
    """The app with server pings every 0.2 s and 0.3 s for each pong."""
    return shared_server(APP, parser_mode, ws_ping_interval=0.2, ws_ping_timeout=0.3)


def test_a_peer_that_answers_the_servers_pings_stays_connected(pinging_server):
    peer = open_websocket(pinging_server.port)
    pings, end = 0, time.monotonic() + 2.0
    while time.monotonic() < end:
        frame = peer.frame(timeout=1.5)
        assert frame is not None and frame.opcode == PING, f"not a ping: {frame}"
        pings += 1
        peer.send(client_frame(PONG, frame.payload))
    assert pings >= 4, f"only {pings} pings in 2 s at a 0.2 s interval"
    peer.send(client_frame(TEXT, b"still connected"))
    while (frame := peer.frame()).opcode == PING:
        peer.send(client_frame(PONG, frame.payload))
    assert (frame.opcode, frame.payload) == (TEXT, b"still connected")
    peer.close()


def test_a_peer_that_never_answers_the_servers_pings_is_dropped(pinging_server):
    started = time.monotonic()
    peer = open_websocket(pinging_server.port)
    code, _, before = peer.close_frame(timeout=3)
    assert code == 1011
    assert before and all(frame.opcode == PING for frame in before), before
    assert peer.closed_within(3)
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 0.2 + 0.3 + 1.5, f"dropped after {elapsed:.2f}s"
    peer.close()
    assert_still_serving(pinging_server.port)


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_a_peer_gone_without_a_close_ends_the_handlers_loop(server, marks, how):
    token = uuid.uuid4().hex
    peer = open_websocket(server.port, f"/marked?token={token}")
    peer.send(client_frame(TEXT, b"in the loop"))
    assert peer.message() == "in the loop"
    if how == "reset":
        peer.client.reset()
    else:
        peer.close()
    assert wait_for((marks / token).exists, 3), "the handler's loop did not end"
    assert wait_for(lambda: "1006" in (marks / token).read_text(), 1), (marks / token).read_text()
    assert_still_serving(server.port)


def test_http_timeouts_do_not_cut_an_idle_websocket(shared_server, parser_mode):
    port = shared_server(APP, parser_mode, header_timeout=0.2, body_timeout=0.2,
                         keepalive_timeout=0.2, handler_timeout=0.2).port
    peer = open_websocket(port)
    assert not peer.client.closed_within(1.0), "an idle WebSocket was closed"
    frame = client_frame(TEXT, b"a frame sent in two parts")
    peer.send(frame[:4])                                         # and one left half-sent
    assert not peer.client.closed_within(1.0), "a WebSocket was closed mid-frame"
    peer.send(frame[4:])
    assert peer.message() == "a frame sent in two parts"
    peer.close()


def test_a_peer_whose_pongs_wait_behind_a_slow_handler_is_not_dropped(pinging_server):
    # The handler reads nothing, so the server stops reading once 16 messages wait; the pongs
    # answering its pings then wait unread in the socket. The peer did answer: it must not
    # be dropped for the server's own slowness.
    peer = open_websocket(pinging_server.port, "/never-reads")
    peer.send(*[client_frame(TEXT, b"unread") for _ in range(40)])
    end = time.monotonic() + 1.5                                 # 3 times interval + timeout
    while time.monotonic() < end:
        frame = peer.frame(timeout=1.0)
        assert frame is not None and frame.opcode == PING, f"dropped: {frame}"
        peer.send(client_frame(PONG, frame.payload))
    peer.close()


# ---- Graceful shutdown -----------------------------------------------------------------------

def test_a_graceful_stop_closes_open_websockets_with_1001(server_factory, parser_mode, tmp_path):
    server = server_factory(APP, pure=parser_mode == "pure", env={"WS_MARKS": str(tmp_path)})
    answering = open_websocket(server.port, "/marked?token=answering")
    silent = open_websocket(server.port, "/marked?token=silent")
    for peer in (answering, silent):
        peer.send(client_frame(TEXT, b"in the loop"))
        assert peer.message() == "in the loop"
    started = time.monotonic()
    os.kill(server.pid, signal.SIGTERM)
    for peer in (answering, silent):
        assert peer.close_frame(timeout=SHUTDOWN_TIMEOUT)[0] == 1001
    answering.send(client_frame(CLOSE, close_payload(1001)))
    assert answering.closed_within(CLOSE_TIMEOUT * 0.7)
    assert silent.closed_within(SHUTDOWN_TIMEOUT + 2)   # dropped: it never answered
    server.process.wait(timeout=SHUTDOWN_TIMEOUT + 3)
    elapsed = time.monotonic() - started
    assert elapsed < SHUTDOWN_TIMEOUT + 1.5, f"the server took {elapsed:.1f}s to stop"
    assert server.process.returncode == 0, server.output()
    for token in ("answering", "silent"):
        assert (tmp_path / token).read_text().startswith("loop ended"), token
    answering.close()
    silent.close()


def test_a_websocket_accepted_during_a_graceful_stop_is_closed_with_1001(server_factory,
                                                                        parser_mode, tmp_path):
    server = server_factory(APP, pure=parser_mode == "pure", env={"WS_MARKS": str(tmp_path)})
    with Client(server.port, timeout=SHUTDOWN_TIMEOUT + 3) as client:
        client.send(upgrade_request("/slow-accept"))              # accepted 0.3 s from now
        assert not client.closed_within(0.1)
        started = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        reply = client.reply()
        if reply.status == 101:                  # else refused over HTTP: fine as well
            peer = Peer(client, reply)
            code, _, before = peer.close_frame(timeout=SHUTDOWN_TIMEOUT + 2)
            waited = time.monotonic() - started
            assert (code, before) == (1001, []), (code, before)
            assert waited < SHUTDOWN_TIMEOUT / 2, (
                f"the 1001 close came {waited:.1f}s after SIGTERM: not until the deadline?")
            peer.send(client_frame(CLOSE, close_payload(1001)))
            assert peer.closed_within(CLOSE_TIMEOUT)
        server.process.wait(timeout=SHUTDOWN_TIMEOUT + 3)
        assert server.process.returncode == 0, server.output()


# ---- Backpressure ------------------------------------------------------------------------------

FLOOD = client_frame(BINARY, b"f" * 1000) * (48 * 1024)          # about 48 MiB of messages
FLOOD_SIZE = len(FLOOD)


def test_a_client_that_never_reads_the_echoes_cannot_grow_the_server(server_factory,
                                                                     parser_mode):
    server = server_factory(APP, pure=parser_mode == "pure")
    peer = open_websocket(server.port, rcvbuf=64 * 1024)
    peer.send(client_frame(TEXT, b"warm up"))
    assert peer.message() == "warm up"
    before = rss_bytes(server.pid)
    sent = peer.client.push(FLOOD, 1.5)
    grown = rss_bytes(server.pid) - before
    assert sent < FLOOD_SIZE // 2, f"the server took {sent} bytes without being read"
    assert grown < 16 * 1024 * 1024, f"the server grew by {grown} bytes"
    peer.close()
    assert_still_serving(server.port)


def test_a_handler_that_does_not_read_pauses_reading(server_factory, parser_mode):
    server = server_factory(APP, pure=parser_mode == "pure")
    sink = open_websocket(server.port, "/sink")
    taken = sink.client.push(FLOOD, 10.0)                        # a reading handler takes it all
    assert taken == FLOOD_SIZE
    sink.close()
    peer = open_websocket(server.port, "/never-reads")
    before = rss_bytes(server.pid)
    sent = peer.client.push(FLOOD, 1.5)
    grown = rss_bytes(server.pid) - before
    assert sent < FLOOD_SIZE // 4, f"the server buffered {sent} bytes nobody read"
    assert grown < 16 * 1024 * 1024, f"the server grew by {grown} bytes"
    peer.close()
    assert_still_serving(server.port)


# ---- Bytes that arrive with the handshake ---------------------------------------------------

FIXED_MASK = b"\x11\x22\x33\x44"     # masks none of the bytes below into a CR or LF


@pytest.mark.parametrize("frames, expected", [
    ([websocket_frame(TEXT, b"pipelined", mask=FIXED_MASK),
      websocket_frame(BINARY, b"\x01\x02", mask=FIXED_MASK)], ["pipelined", b"\x01\x02"]),
    # a masking key of zeros leaves the payload as it is: here, a line feed
    ([websocket_frame(TEXT, b"line one\nline two\r\n\r\n", mask=bytes(4))],
     ["line one\nline two\r\n\r\n"]),
    # more than an HTTP request line may hold (8190 bytes)
    ([websocket_frame(BINARY, bytes([n]) * 1000, mask=FIXED_MASK) for n in range(9)],
     [bytes([n]) * 1000 for n in range(9)]),
], ids=["short", "line-feeds", "over-8-KB"])
def test_frames_sent_with_the_handshake_are_echoed(server, frames, expected):
    peer = open_websocket(server.port, first=b"".join(frames))
    assert [peer.message() for _ in expected] == expected
    peer.close()


def test_frames_arriving_before_the_101_are_kept_for_the_websocket(server):
    with Client(server.port, nodelay=True) as client:
        client.send(upgrade_request("/slow-accept"))       # the handler waits 0.3 s to accept
        client.send(websocket_frame(TEXT, b"early\r\nGET / HTTP/1.1\r\n\r\n", mask=bytes(4)))
        reply = client.reply()
        assert reply.status == 101, reply
        peer = Peer(client, reply)
        assert peer.message() == "early\r\nGET / HTTP/1.1\r\n\r\n"


def test_a_pong_is_sent_even_before_the_handler_echoes(server):
    first = client_frame(TEXT, b"pipelined") + client_frame(PING, b"p")
    peer = open_websocket(server.port, first=first)
    frames = [peer.frame() for _ in range(2)]
    # the pong is the server's own answer and may come before the handler's echo
    assert sorted(frames) == sorted([Frame(True, 0, PONG, b"p"),
                                     Frame(True, 0, TEXT, b"pipelined")])
    peer.close()


@pytest.mark.parametrize("split", [False, True], ids=["one-packet", "two-packets"])
def test_after_a_refused_handshake_http_goes_on(server, split):
    refusal = upgrade_request("/teapot")
    follower = b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
    with Client(server.port) as client:
        client.send(refusal if split else refusal + follower)
        assert client.reply().status == 418
        if split:
            client.send(follower)
        reply = client.reply()
        assert (reply.status, reply.body) == (200, b"hello over HTTP"), reply


def test_a_whole_conversation_in_one_packet_is_answered_and_closed(server):
    first = client_frame(TEXT, b"hello and bye") + client_frame(CLOSE, close_payload(1000))
    peer = open_websocket(server.port, first=first)
    code, _, before = peer.close_frame()
    assert code == 1000
    # The close may be answered before the handler echoes (RFC 6455 5.5.1: nothing follows
    # a close): the echo comes first or not at all.
    assert [frame.payload for frame in before] in ([], [b"hello and bye"]), before
    assert peer.closed_within(2)
    peer.close()
    assert_still_serving(server.port)


def test_a_frame_arriving_one_byte_at_a_time_is_echoed(server):
    peer = open_websocket(server.port)
    peer.client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    peer.client.trickle(client_frame(TEXT, b"slowly"))
    assert peer.message() == "slowly"
    peer.close()
