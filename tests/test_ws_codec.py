"""The sans-IO WebSocket codec: handshake, permessage-deflate, framing, violations, closing.

Known vectors come from RFC 6455 (1.3, 5.7) and RFC 7692 (7.2.3); interoperability is
checked against the `websockets` package's own sans-IO client and server.
"""
import tracemalloc
import zlib

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory)
from websockets.frames import Opcode
from websockets.headers import parse_extension
from websockets.http11 import Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from pixie_web import (
    BinaryMessage, CloseReceived, DeflateParameters, HTTPError, Ping, Pong, TextMessage,
    WebSocketConnection, WebSocketProtocolError, WebSocketState, check_handshake,
    negotiate_deflate, websocket_accept_key, websocket_frame)

MASK = b"\x37\xfa\x21\x3d"
TAKEOVER = DeflateParameters(False, False, None, None)
NO_TAKEOVER = DeflateParameters(True, True, None, None)
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


class FieldList:
    """The header interface check_handshake reads: getall(lower-case name)."""

    def __init__(self, pairs):
        self.pairs = [(name.lower(), value) for name, value in pairs]

    def getall(self, name):
        return [value for key, value in self.pairs if key == name]


def handshake_fields(**changes):
    """A valid handshake's header fields; a keyword replaces (None: removes) one field."""
    fields = {"Host": "example.com", "Upgrade": "websocket", "Connection": "Upgrade",
              "Sec-WebSocket-Key": RFC_KEY, "Sec-WebSocket-Version": "13"}
    for name, value in changes.items():
        fields[name.replace("_", "-")] = value
    return FieldList([(name, value) for name, value in fields.items() if value is not None])


def client_frame(opcode, payload, fin=True, rsv1=False, mask=MASK):
    """A frame as a client sends it: masked."""
    return websocket_frame(opcode, payload, fin, rsv1, mask)


def receive_in_chunks(connection, data, cuts):
    """Feed ``data`` cut at the offsets ``cuts``; all the events, in order."""
    events = []
    start = 0
    for end in sorted(set(cuts)) + [len(data)]:
        events += connection.receive(data[start:end])
        start = end
    return events


def compress_message(compressor, data):
    """A message's payload compressed as RFC 7692 7.2.1 says, by an independent encoder."""
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def unmasked_payload(frame):
    """The payload of one small masked frame (length < 126)."""
    assert frame[1] & 0x80
    mask, payload = frame[2:6], frame[6:]
    return bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


# ---- handshake -------------------------------------------------------------------------------

def test_accept_key_of_the_rfc_example():
    assert websocket_accept_key(RFC_KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_a_valid_handshake_gives_key_subprotocols_and_extension_offers():
    fields = handshake_fields(
        Upgrade="WebSocket", Connection="keep-alive, UPGRADE", Sec_WebSocket_Key=f" {RFC_KEY}")
    fields.pairs += [("sec-websocket-protocol", "chat, , superchat"),
                     ("sec-websocket-protocol", "v2.json"),
                     ("sec-websocket-extensions",
                      'permessage-deflate; client_max_window_bits="10" ;'
                      " server_no_context_takeover, x-webkit-deflate-frame"),
                     ("sec-websocket-extensions", "Permessage-Deflate")]
    offer = check_handshake("GET", "1.1", fields)
    assert offer.key == RFC_KEY
    assert offer.subprotocols == ["chat", "superchat", "v2.json"]
    assert offer.extensions == [
        ("permessage-deflate", [("client_max_window_bits", "10"),
                                ("server_no_context_takeover", None)]),
        ("x-webkit-deflate-frame", []),
        ("permessage-deflate", [])]


@pytest.mark.parametrize("method, version, changes, status, header", [
    ("GET", "1.1", {"Upgrade": None}, 426, ("Upgrade", "websocket")),
    ("GET", "1.1", {"Upgrade": "h2c"}, 426, ("Upgrade", "websocket")),
    ("GET", "1.1", {"Connection": "keep-alive"}, 426, ("Upgrade", "websocket")),
    ("GET", "1.1", {"Connection": "upgraded"}, 426, ("Upgrade", "websocket")),
    ("GET", "1.0", {}, 426, ("Upgrade", "websocket")),
    ("POST", "1.1", {}, 400, None),
    ("GET", "1.1", {"Sec-WebSocket-Version": "8"}, 426, ("Sec-WebSocket-Version", "13")),
    ("GET", "1.1", {"Sec-WebSocket-Version": "13, 8"}, 426, ("Sec-WebSocket-Version", "13")),
    ("GET", "1.1", {"Sec-WebSocket-Version": None}, 426, ("Sec-WebSocket-Version", "13")),
    ("GET", "1.1", {"Sec-WebSocket-Key": None}, 400, None),
    ("GET", "1.1", {"Sec-WebSocket-Key": "AAAAAAAAAAAAAAAAAAAA"}, 400, None),      # 15 bytes
    ("GET", "1.1", {"Sec-WebSocket-Key": "AAAAAAAAAAAAAAAAAAAAAAAAAA=="}, 400, None),  # 19
    ("GET", "1.1", {"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ"}, 400, None),  # no padding
    ("GET", "1.1", {"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=!"}, 400, None),
    ("GET", "1.1", {"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZé=="}, 400, None),
    ("GET", "1.1", {"Sec-WebSocket-Protocol": "chat, super chat"}, 400, None),
    ("GET", "1.1", {"Sec-WebSocket-Extensions": "permessage-deflate;"}, 400, None),
    ("GET", "1.1", {"Sec-WebSocket-Extensions": "permessage-deflate; a=b c"}, 400, None),
    ("GET", "1.1", {"Sec-WebSocket-Extensions": 'permessage-deflate; a="1 2"'}, 400, None),
    ("GET", "1.1", {"Sec-WebSocket-Extensions": "per message"}, 400, None),
])
def test_a_refused_handshake_raises_its_status_and_headers(method, version, changes, status,
                                                          header):
    with pytest.raises(HTTPError) as caught:
        check_handshake(method, version, handshake_fields(**changes))
    assert caught.value.status == status
    assert caught.value.body
    if header is None:
        assert not caught.value.headers
    else:
        assert caught.value.headers == dict([header])


def test_two_keys_are_refused():
    fields = handshake_fields()
    fields.pairs.append(("sec-websocket-key", RFC_KEY))
    with pytest.raises(HTTPError) as caught:
        check_handshake("GET", "1.1", fields)
    assert caught.value.status == 400


@given(st.lists(st.tuples(st.sampled_from(["upgrade", "connection", "sec-websocket-key",
                                            "sec-websocket-version", "sec-websocket-protocol",
                                            "sec-websocket-extensions"]),
                          st.text(max_size=40))),
       st.sampled_from(["GET", "POST"]), st.sampled_from(["1.0", "1.1"]))
def test_any_handshake_gives_an_offer_or_an_http_error(pairs, method, version):
    try:
        offer = check_handshake(method, version, FieldList(pairs))
    except HTTPError as error:
        assert error.status in (400, 426)
    else:
        assert len(offer.key) == 24
        negotiate_deflate(offer.extensions)


# ---- permessage-deflate negotiation ----------------------------------------------------------

def offers(value):
    fields = handshake_fields(Sec_WebSocket_Extensions=value)
    return check_handshake("GET", "1.1", fields).extensions


@pytest.mark.parametrize("value, answer, parameters", [
    ("permessage-deflate", "permessage-deflate", (False, False, None, None)),
    ("permessage-deflate; client_max_window_bits", "permessage-deflate",
     (False, False, None, None)),
    ("permessage-deflate; server_no_context_takeover; client_no_context_takeover",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
     (True, True, None, None)),
    ("permessage-deflate; server_max_window_bits=10; client_max_window_bits=12",
     "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12",
     (False, False, 10, 12)),
    ('permessage-deflate; server_max_window_bits="8"',
     "permessage-deflate; server_max_window_bits=8", (False, False, 8, None)),
    ("x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover",
     "permessage-deflate; client_no_context_takeover", (False, True, None, None)),
    ("permessage-deflate; server_max_window_bits=7, permessage-deflate; mystery,"
     " permessage-deflate; server_max_window_bits=15",
     "permessage-deflate; server_max_window_bits=15", (False, False, 15, None)),
])
def test_the_first_acceptable_offer_is_granted(value, answer, parameters):
    assert negotiate_deflate(offers(value)) == (answer, DeflateParameters(*parameters))


@pytest.mark.parametrize("value", [
    "permessage-deflate; mystery",
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
    "permessage-deflate; server_no_context_takeover=1",
    "permessage-deflate; client_no_context_takeover=true",
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits=08",
    "permessage-deflate; server_max_window_bits=+9",
    "permessage-deflate; client_max_window_bits=7",
    "permessage-deflate; client_max_window_bits=abc",
    "x-webkit-deflate-frame",
])
def test_malformed_or_other_offers_are_declined(value):
    assert negotiate_deflate(offers(value)) == (None, None)


def test_compression_can_be_turned_off():
    assert negotiate_deflate(offers("permessage-deflate"), enabled=False) == (None, None)


# ---- interoperability with the websockets package --------------------------------------------

def websockets_handshake(factory, subprotocols=None, choose=None):
    """A websockets client offered ``factory``, answered with check_handshake,
    negotiate_deflate and websocket_accept_key: the client and our server connection."""
    client = ClientProtocol(parse_uri("ws://example.com/chat"), extensions=[factory],
                            subprotocols=subprotocols)
    client.send_request(client.connect())
    head = b"".join(client.data_to_send()).decode("latin-1")
    request_line, *lines = head.split("\r\n\r\n")[0].split("\r\n")
    method, _, version = request_line.split(" ")
    fields = FieldList(line.split(": ", 1) for line in lines)
    offer = check_handshake(method, version.removeprefix("HTTP/"), fields)
    answer, parameters = negotiate_deflate(offer.extensions)
    fields = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
              ("Sec-WebSocket-Accept", websocket_accept_key(offer.key)),
              ("Sec-WebSocket-Protocol", choose), ("Sec-WebSocket-Extensions", answer)]
    lines = "".join(f"{name}: {value}\r\n" for name, value in fields if value is not None)
    client.receive_data(f"HTTP/1.1 101 Switching Protocols\r\n{lines}\r\n".encode())
    [response] = client.events_received()
    assert isinstance(response, Response) and client.handshake_exc is None
    assert client.state is State.OPEN
    return client, WebSocketConnection(deflate=parameters), offer


# Long-range repeats: a compressor that ignored a small window would refer past it.
BLOCK = bytes(range(256)) * 2 + b"pixie" * 80
INTEROP_MESSAGES = ["Hello", "Hello", "", "é" * 700, BLOCK.hex(), BLOCK.hex()]


@pytest.mark.parametrize("options", [
    {},
    {"client_max_window_bits": True},
    {"server_no_context_takeover": True},
    {"client_no_context_takeover": True},
    {"server_max_window_bits": 8},
    {"server_max_window_bits": 9, "client_max_window_bits": 9},
    {"server_max_window_bits": 10, "client_max_window_bits": 12,
     "server_no_context_takeover": True, "client_no_context_takeover": True},
])
def test_deflate_interoperates_with_websockets_client(options):
    client, server, _ = websockets_handshake(ClientPerMessageDeflateFactory(**options))
    assert [extension.name for extension in client.extensions] == ["permessage-deflate"]
    for text in INTEROP_MESSAGES:
        client.send_text(text.encode())
        client.send_binary(BLOCK)
        assert server.receive(b"".join(client.data_to_send())) == [
            TextMessage(text), BinaryMessage(BLOCK)]
        client.receive_data(server.send_text(text) + server.send_bytes(BLOCK))
        frames = client.events_received()
        assert [(frame.opcode, frame.data) for frame in frames] == [
            (Opcode.TEXT, text.encode()), (Opcode.BINARY, BLOCK)]
    assert client.state is State.OPEN


def test_websockets_client_gets_the_chosen_subprotocol_and_closes_cleanly():
    client, server, offer = websockets_handshake(
        ClientPerMessageDeflateFactory(), subprotocols=["chat", "superchat"],
        choose="superchat")
    assert offer.subprotocols == ["chat", "superchat"]
    assert client.subprotocol == "superchat"
    client.send_close(1001, "going away")
    assert server.receive(b"".join(client.data_to_send())) == [
        CloseReceived(1001, "going away")]
    client.receive_data(server.send_close())
    assert client.close_rcvd.code == 1001 and client.close_sent.code == 1001
    assert server.state is WebSocketState.CLOSED


@pytest.mark.parametrize("options", [
    {},
    {"server_no_context_takeover": True, "client_no_context_takeover": True},
    {"server_max_window_bits": 10, "client_max_window_bits": 9},
])
def test_client_mode_interoperates_with_websockets_server(options):
    server = ServerProtocol(extensions=[ServerPerMessageDeflateFactory(**options)])
    server.receive_data(
        b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade"
        b"\r\nSec-WebSocket-Key: " + RFC_KEY.encode() + b"\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
    [request] = server.events_received()
    response = server.accept(request)
    server.send_response(response)
    assert b"".join(server.data_to_send()).startswith(b"HTTP/1.1 101 ")
    [answer] = parse_extension(response.headers["Sec-WebSocket-Extensions"])
    # The server's answer, read with the same rules, gives the parameters both ends use.
    _, parameters = negotiate_deflate([(answer[0], list(answer[1]))])
    assert parameters is not None
    client = WebSocketConnection(deflate=parameters, client=True)
    for text in INTEROP_MESSAGES:
        server.receive_data(client.send_text(text) + client.send_bytes(BLOCK))
        assert [(frame.opcode, frame.data) for frame in server.events_received()] == [
            (Opcode.TEXT, text.encode()), (Opcode.BINARY, BLOCK)]
        server.send_text(text.encode())
        server.send_binary(BLOCK)
        data = b"".join(server.data_to_send())
        if text:
            assert data[0] & 0x40           # compressed
        assert client.receive(data) == [TextMessage(text), BinaryMessage(BLOCK)]


# ---- framing ---------------------------------------------------------------------------------

# RFC 6455 5.7: (opcode, payload, fin, mask, the frame's bytes)
RFC_6455_FRAMES = [
    (1, b"Hello", True, None, "81 05 48 65 6c 6c 6f"),
    (1, b"Hello", True, MASK, "81 85 37 fa 21 3d 7f 9f 4d 51 58"),
    (1, b"Hel", False, None, "01 03 48 65 6c"),
    (0, b"lo", True, None, "80 02 6c 6f"),
    (9, b"Hello", True, None, "89 05 48 65 6c 6c 6f"),
    (10, b"Hello", True, MASK, "8a 85 37 fa 21 3d 7f 9f 4d 51 58"),
]


@pytest.mark.parametrize("opcode, payload, fin, mask, expected", RFC_6455_FRAMES)
def test_websocket_frame_writes_the_rfc_examples(opcode, payload, fin, mask, expected):
    assert websocket_frame(opcode, payload, fin, mask=mask) == bytes.fromhex(expected)


def test_the_rfc_examples_are_read():
    unmasked = bytes.fromhex(
        "81 05 48 65 6c 6c 6f 01 03 48 65 6c 89 05 48 65 6c 6c 6f 80 02 6c 6f")
    assert WebSocketConnection(client=True).receive(unmasked) == [
        TextMessage("Hello"), Ping(b"Hello"), TextMessage("Hello")]
    masked = bytes.fromhex("81 85 37 fa 21 3d 7f 9f 4d 51 58 8a 85 37 fa 21 3d 7f 9f 4d 51 58")
    assert WebSocketConnection().receive(masked) == [TextMessage("Hello"), Pong(b"Hello")]


@pytest.mark.parametrize("length, header", [
    (125, "82 7d"), (126, "82 7e 00 7e"), (65535, "82 7e ff ff"),
    (65536, "82 7f 00 00 00 00 00 01 00 00"),
])
def test_length_encodings(length, header):
    payload = bytes(range(256)) * (length // 256) + bytes(length % 256)
    frame = websocket_frame(2, payload)
    assert frame == bytes.fromhex(header) + payload
    assert WebSocketConnection(client=True).receive(frame) == [BinaryMessage(payload)]
    masked = websocket_frame(2, payload, mask=MASK)
    assert masked[1] & 0x80 and masked[len(header) // 3 + 1:][:4] == MASK
    assert WebSocketConnection().receive(masked) == [BinaryMessage(payload)]


def test_a_length_in_a_longer_form_than_needed_is_accepted():
    frame = bytes.fromhex("81 fe 00 05") + MASK + client_frame(1, b"Hello")[6:]
    assert WebSocketConnection().receive(frame) == [TextMessage("Hello")]


def test_control_frames_may_come_between_fragments():
    data = (client_frame(2, b"ab", fin=False) + client_frame(9, b"ping")
            + client_frame(0, b"cd", fin=False) + client_frame(10, b"")
            + client_frame(0, b"ef"))
    assert WebSocketConnection().receive(data) == [
        Ping(b"ping"), Pong(b""), BinaryMessage(b"abcdef")]


def test_client_mode_masks_every_frame_with_a_fresh_mask():
    client = WebSocketConnection(client=True)
    frames = [client.send_text("Hello"), client.send_text("Hello"), client.send_ping(b"x"),
              client.send_close()]
    assert all(frame[1] & 0x80 for frame in frames)
    assert frames[0][2:6] != frames[1][2:6]
    server = WebSocketConnection()
    assert server.receive(b"".join(frames)) == [
        TextMessage("Hello"), TextMessage("Hello"), Ping(b"x"), CloseReceived(1000, "")]


# ---- protocol violations, each with its close code -------------------------------------------

VIOLATIONS = {
    "unmasked client frame": (None, websocket_frame(1, b"Hello"), 1002),
    "RSV1 without deflate": (None, client_frame(1, b"Hello", rsv1=True), 1002),
    "RSV2": (TAKEOVER, bytes([0xA1, 0x80]) + MASK, 1002),
    "RSV3": (TAKEOVER, bytes([0x91, 0x80]) + MASK, 1002),
    "RSV1 on a continuation": (
        TAKEOVER, client_frame(1, b"\xf2\x48", fin=False, rsv1=True)
        + client_frame(0, b"\xcd\xc9\xc9\x07\x00", rsv1=True), 1002),
    "RSV1 on a control frame": (TAKEOVER, client_frame(9, b"", rsv1=True), 1002),
    "opcode 3": (None, client_frame(3, b""), 1002),
    "opcode 7": (None, client_frame(7, b""), 1002),
    "opcode 11": (None, client_frame(11, b""), 1002),
    "opcode 15": (None, client_frame(15, b""), 1002),
    "ping over 125 bytes": (None, bytes([0x89, 0xFE, 0x00, 126]) + MASK, 1002),
    "close over 125 bytes": (None, bytes([0x88, 0xFE, 0x00, 126]) + MASK, 1002),
    "fragmented ping": (None, client_frame(9, b"x", fin=False), 1002),
    "continuation without a message": (None, client_frame(0, b"x"), 1002),
    "text inside a fragmented message": (
        None, client_frame(1, b"a", fin=False) + client_frame(1, b"b"), 1002),
    "binary inside a fragmented message": (
        None, client_frame(2, b"a", fin=False) + client_frame(2, b"b"), 1002),
    "length with its top bit set": (
        None, bytes([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 5]) + MASK, 1002),
    "1-byte close payload": (None, client_frame(8, b"\x03"), 1002),
    "invalid UTF-8 text": (None, client_frame(1, b"caf\xe9"), 1007),
    "surrogate in UTF-8 text": (None, client_frame(1, b"\xed\xa0\x80"), 1007),
    "invalid UTF-8 close reason": (None, client_frame(8, b"\x03\xe8caf\xe9"), 1007),
    "invalid compressed data": (TAKEOVER, client_frame(1, b"\xff\xff\xff", rsv1=True), 1007),
}


@pytest.mark.parametrize("deflate, data, code", VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_each_violation_gets_its_close_code(deflate, data, code):
    connection = WebSocketConnection(deflate=deflate)
    events = connection.receive(data)
    assert isinstance(events[-1], WebSocketProtocolError)
    assert events[-1].code == code and events[-1].reason
    assert connection.state is WebSocketState.CLOSING
    assert connection.receive(client_frame(1, b"more")) == []
    close = connection.send_close()
    assert close[:4] == bytes([0x88, len(close) - 2]) + code.to_bytes(2, "big")
    assert close[4:].decode() == events[-1].reason
    assert connection.state is WebSocketState.CLOSED


def test_a_masked_server_frame_is_refused_in_client_mode():
    [error] = WebSocketConnection(client=True).receive(client_frame(1, b"Hello"))
    assert isinstance(error, WebSocketProtocolError) and error.code == 1002


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000,
                                  65535])
def test_an_invalid_close_code_is_a_protocol_error(code):
    [error] = WebSocketConnection().receive(client_frame(8, code.to_bytes(2, "big")))
    assert isinstance(error, WebSocketProtocolError) and error.code == 1002


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                  1013, 1014, 3000, 4999])
def test_a_valid_close_code_is_received_and_echoed(code):
    connection = WebSocketConnection()
    payload = code.to_bytes(2, "big") + "ça".encode()
    assert connection.receive(client_frame(8, payload)) == [CloseReceived(code, "ça")]
    assert connection.send_close() == bytes([0x88, 2]) + code.to_bytes(2, "big")


def test_a_frame_over_the_limit_is_refused_from_its_header_alone():
    connection = WebSocketConnection(max_message_size=1000)
    [error] = connection.receive(bytes([0x82, 0xFE]) + (1001).to_bytes(2, "big") + MASK)
    assert isinstance(error, WebSocketProtocolError) and error.code == 1009


def test_fragments_adding_up_over_the_limit_are_refused_at_the_crossing_header():
    connection = WebSocketConnection(max_message_size=1000)
    assert connection.receive(client_frame(2, bytes(600), fin=False)) == []
    [error] = connection.receive(bytes([0x80, 0xFE]) + (401).to_bytes(2, "big") + MASK)
    assert error.code == 1009


def test_a_message_of_exactly_the_limit_is_accepted_in_fragments():
    connection = WebSocketConnection(max_message_size=1000)
    data = client_frame(1, b"a" * 600, fin=False) + client_frame(0, b"b" * 400)
    assert connection.receive(data) == [TextMessage("a" * 600 + "b" * 400)]


@pytest.mark.parametrize("size, accepted", [(1000, True), (1001, False)])
def test_the_limit_applies_to_inflated_size(size, accepted):
    connection = WebSocketConnection(max_message_size=1000, deflate=TAKEOVER)
    data = compress_message(zlib.compressobj(wbits=-15), b"z" * size)
    [event] = connection.receive(client_frame(2, data, rsv1=True))
    if accepted:
        assert event == BinaryMessage(b"z" * size)
    else:
        assert isinstance(event, WebSocketProtocolError) and event.code == 1009


@pytest.mark.parametrize("limit", [2 ** 63 - 1, 2 ** 63, 2 ** 80])
def test_a_limit_beyond_any_size_inflates_normally(limit):
    server = WebSocketConnection(deflate=TAKEOVER)
    client = WebSocketConnection(limit, TAKEOVER, client=True)
    assert client.receive(server.send_text("Hello" * 100)) == [TextMessage("Hello" * 100)]


def test_a_zip_bomb_is_refused_without_inflating_it():
    limit = 64 * 1024
    bomb = compress_message(zlib.compressobj(wbits=-15), bytes(32 * 1024 * 1024))
    assert len(bomb) < limit
    frame = client_frame(2, bomb, rsv1=True)
    connection = WebSocketConnection(max_message_size=limit, deflate=TAKEOVER)
    tracemalloc.start()
    try:
        events = connection.receive(frame)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(events[-1], WebSocketProtocolError) and events[-1].code == 1009
    assert peak < 1024 * 1024          # inflating it all would take 32 MiB


def test_a_compressed_frame_far_over_the_limit_is_refused_from_its_header_alone():
    connection = WebSocketConnection(max_message_size=1000, deflate=TAKEOVER)
    [error] = connection.receive(bytes([0xC2, 0xFE]) + (5000).to_bytes(2, "big") + MASK)
    assert error.code == 1009


# ---- UTF-8, checked as fragments arrive ------------------------------------------------------

def test_invalid_utf8_is_refused_in_the_first_fragment_before_the_rest_arrives():
    connection = WebSocketConnection()
    [error] = connection.receive(client_frame(1, b"ok \xf4\x90 more", fin=False))
    assert error.code == 1007


def test_a_character_split_across_fragments_is_accepted():
    snake = "🐍".encode()
    data = (client_frame(1, b"py" + snake[:1], fin=False)
            + client_frame(0, snake[1:3], fin=False) + client_frame(0, snake[3:] + b"!"))
    assert WebSocketConnection().receive(data) == [TextMessage("py🐍!")]


def test_a_character_cut_short_at_the_end_of_a_message_is_refused():
    data = client_frame(1, b"py", fin=False) + client_frame(0, "🐍".encode()[:3])
    [error] = WebSocketConnection().receive(data)
    assert error.code == 1007


def test_invalid_utf8_in_a_compressed_fragment_is_refused_before_the_rest_arrives():
    compressor = zlib.compressobj(wbits=-15)
    first = compressor.compress(b"ok \xc0 more") + compressor.flush(zlib.Z_SYNC_FLUSH)
    [error] = WebSocketConnection(deflate=TAKEOVER).receive(
        client_frame(1, first, fin=False, rsv1=True))
    assert error.code == 1007


# ---- permessage-deflate: RFC 7692 vectors, context takeover ----------------------------------

@pytest.mark.parametrize("frames", [
    "c1 07 f2 48 cd c9 c9 07 00",                                  # 7.2.3.1
    "41 03 f2 48 cd 80 04 c9 c9 07 00",                            # 7.2.3.1, fragmented
    "c1 0b 00 05 00 fa ff 48 65 6c 6c 6f 00",                      # 7.2.3.3, stored block
    "c1 08 f3 48 cd c9 c9 07 00 00",                               # 7.2.3.4, BFINAL set
    "c1 0d f2 48 05 00 00 00 ff ff ca c9 c9 07 00",                # 7.2.3.5, two blocks
])
def test_rfc_7692_examples_are_read(frames):
    client = WebSocketConnection(deflate=TAKEOVER, client=True)
    data = bytes.fromhex(frames)
    assert client.receive(data) == [TextMessage("Hello")]
    assert client.receive(data[:2] + data[2:]) == [TextMessage("Hello")]   # and once more


def test_rfc_7692_context_takeover_example_is_read_and_written():
    messages = bytes.fromhex("c1 07 f2 48 cd c9 c9 07 00 c1 05 f2 00 11 00 00")
    client = WebSocketConnection(deflate=TAKEOVER, client=True)
    assert client.receive(messages) == [TextMessage("Hello"), TextMessage("Hello")]
    server = WebSocketConnection(deflate=TAKEOVER)
    assert server.send_text("Hello") + server.send_text("Hello") == messages


def test_server_no_context_takeover_compresses_each_message_afresh():
    server = WebSocketConnection(deflate=DeflateParameters(True, False, None, None))
    first, second = server.send_text("Hello"), server.send_text("Hello")
    assert first == second == bytes.fromhex("c1 07 f2 48 cd c9 c9 07 00")
    fresh_decoder = WebSocketConnection(deflate=NO_TAKEOVER, client=True)
    assert fresh_decoder.receive(first + second) == [TextMessage("Hello")] * 2


def test_client_no_context_takeover_is_honoured_by_the_client_end():
    client = WebSocketConnection(deflate=DeflateParameters(False, True, None, None),
                                 client=True)
    first, second = client.send_text("Hello"), client.send_text("Hello")
    assert unmasked_payload(first) == unmasked_payload(second) == bytes.fromhex(
        "f2 48 cd c9 c9 07 00")
    keeping = WebSocketConnection(deflate=TAKEOVER, client=True)
    keeping.send_text("Hello")
    assert unmasked_payload(keeping.send_text("Hello")) == bytes.fromhex("f2 00 11 00 00")


def test_client_no_context_takeover_makes_the_server_inflate_each_message_afresh():
    # The second frame refers back to the first message (RFC 7692 7.2.3.2): a client that
    # promised no context takeover may not send it.
    second = client_frame(1, bytes.fromhex("f2 00 11 00 00"), rsv1=True)
    first = client_frame(1, bytes.fromhex("f2 48 cd c9 c9 07 00"), rsv1=True)
    assert WebSocketConnection(deflate=TAKEOVER).receive(first + second) == [
        TextMessage("Hello"), TextMessage("Hello")]
    promised = WebSocketConnection(deflate=DeflateParameters(False, True, None, None))
    hello, error = promised.receive(first + second)
    assert hello == TextMessage("Hello") and error.code == 1007


def test_an_uncompressed_message_is_accepted_when_deflate_was_negotiated():
    connection = WebSocketConnection(deflate=TAKEOVER)
    assert connection.receive(client_frame(1, b"plain")) == [TextMessage("plain")]


def test_an_empty_message_round_trips_compressed():
    server = WebSocketConnection(deflate=TAKEOVER)
    client = WebSocketConnection(deflate=TAKEOVER, client=True)
    assert server.receive(client.send_bytes(b"") + client.send_text("")) == [
        BinaryMessage(b""), TextMessage("")]
    assert client.receive(server.send_text("") + server.send_text("x")) == [
        TextMessage(""), TextMessage("x")]


# ---- the closing handshake -------------------------------------------------------------------

def test_after_our_close_messages_still_arrive_until_the_peers_close():
    server = WebSocketConnection()
    assert server.send_close(1001, "bye") == bytes.fromhex("88 05 03 e9") + b"bye"
    assert server.state is WebSocketState.CLOSING
    events = server.receive(client_frame(1, b"late") + client_frame(8, b"\x03\xe9")
                            + client_frame(1, b"after the close"))
    assert events == [TextMessage("late"), CloseReceived(1001, "")]
    assert server.state is WebSocketState.CLOSED
    assert server.receive(client_frame(1, b"more")) == []


def test_the_peers_close_is_echoed():
    server = WebSocketConnection()
    assert server.receive(client_frame(8, b"\x0f\xa0why")) == [CloseReceived(4000, "why")]
    assert server.state is WebSocketState.CLOSING
    assert server.send_close() == bytes.fromhex("88 02 0f a0")
    assert server.state is WebSocketState.CLOSED


def test_a_close_without_a_code_reads_1005_and_is_echoed_empty():
    server = WebSocketConnection()
    assert server.receive(client_frame(8, b"")) == [CloseReceived(1005, "")]
    assert server.send_close() == bytes.fromhex("88 00")


def test_nothing_is_sent_after_the_close():
    connection = WebSocketConnection()
    connection.send_close()
    for send in (lambda: connection.send_text("x"), lambda: connection.send_bytes(b"x"),
                 lambda: connection.send_ping(), lambda: connection.send_pong(),
                 lambda: connection.send_close()):
        with pytest.raises(RuntimeError):
            send()


@pytest.mark.parametrize("code, reason", [
    (1005, ""), (1006, ""), (999, ""), (2000, ""), (5000, ""), (1000, "x" * 124),
    (1000, "é" * 62),
])
def test_send_close_refuses_what_cannot_be_sent(code, reason):
    connection = WebSocketConnection()
    with pytest.raises(ValueError):
        connection.send_close(code, reason)
    assert connection.state is WebSocketState.OPEN
    assert connection.send_close(1000, "x" * 123)[:4] == bytes.fromhex("88 7d 03 e8")


def test_pings_carry_at_most_125_bytes():
    connection = WebSocketConnection()
    assert connection.send_ping(b"p" * 125) == bytes.fromhex("89 7d") + b"p" * 125
    with pytest.raises(ValueError):
        connection.send_pong(b"p" * 126)


# ---- properties ------------------------------------------------------------------------------

message_strategy = st.one_of(st.text(max_size=300).map(lambda text: (True, text)),
                             st.binary(max_size=300).map(lambda data: (False, data)))
deflate_strategy = st.sampled_from([None, TAKEOVER, NO_TAKEOVER,
                                    DeflateParameters(False, False, 9, 10)])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(message_strategy, max_size=8), deflate_strategy, st.data())
def test_any_fragmentation_masking_and_chunking_gives_the_messages(messages, deflate, data):
    compressor = zlib.compressobj(wbits=-15)
    stream, expected = [], []
    for is_text, content in messages:
        payload = content.encode() if is_text else content
        compressed = deflate is not None and data.draw(st.booleans())
        if compressed:
            if deflate.client_no_context_takeover:
                compressor = zlib.compressobj(wbits=-15)
            payload = compress_message(compressor, payload)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(payload)), max_size=4)))
        pieces = [payload[start:end] for start, end in zip([0] + cuts, cuts + [len(payload)])]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            opcode = 0 if index else (1 if is_text else 2)
            stream.append(client_frame(opcode, piece, last, compressed and not index,
                                       data.draw(st.binary(min_size=4, max_size=4))))
            if not last and data.draw(st.booleans()):
                stream.append(client_frame(9, b"between"))
                expected.append(Ping(b"between"))
        expected.append(TextMessage(content) if is_text else BinaryMessage(content))
    stream = b"".join(stream)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    connection = WebSocketConnection(deflate=deflate)
    assert receive_in_chunks(connection, stream, cuts) == expected
    assert connection.state is WebSocketState.OPEN


@settings(max_examples=200, deadline=None)
@given(st.lists(message_strategy, max_size=8), deflate_strategy, st.data())
def test_whatever_the_server_sends_the_client_end_reads(messages, deflate, data):
    server = WebSocketConnection(deflate=deflate)
    stream = b"".join(server.send_text(content) if is_text else server.send_bytes(content)
                      for is_text, content in messages)
    client = WebSocketConnection(deflate=deflate, client=True)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    assert receive_in_chunks(client, stream, cuts) == [
        TextMessage(content) if is_text else BinaryMessage(content)
        for is_text, content in messages]


EVENT_TYPES = (TextMessage, BinaryMessage, Ping, Pong)


def check_events(connection, events):
    """Only events; at most one that ends reading, and nothing read after it."""
    for index, event in enumerate(events):
        if isinstance(event, (CloseReceived, WebSocketProtocolError)):
            assert index == len(events) - 1
            assert connection.state is WebSocketState.CLOSING
            assert connection.receive(b"\x81\x80" + MASK) == []
            if isinstance(event, WebSocketProtocolError):
                assert event.code in (1002, 1007, 1009)
            assert connection.send_close()[0] == 0x88
            return
        assert isinstance(event, EVENT_TYPES)


def raw_frame(first, masked, payload, mask):
    """A frame whose first byte (FIN, RSV bits, opcode) is ``first``, whatever it says."""
    return bytes([first]) + websocket_frame(0, payload, mask=mask if masked else None)[1:]


random_frame = st.builds(raw_frame, st.integers(0, 255), st.booleans(), st.binary(max_size=200),
                         st.binary(min_size=4, max_size=4))


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.lists(random_frame, max_size=8).map(b"".join)),
       deflate_strategy, st.booleans(), st.data())
def test_any_bytes_give_events_and_at_most_one_ending(stream, deflate, client, data):
    connection = WebSocketConnection(max_message_size=300, deflate=deflate, client=client)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6))
    check_events(connection, receive_in_chunks(connection, stream, cuts))
