"""The sans-IO HTTP/1.1 connection and the dispatch core, without sockets or an event loop.

``HTTP11Connection`` takes bytes and gives events (RequestHead, Data, END_OF_MESSAGE, a
ProtocolError); ``serialize_head`` writes every response head; ``App.route_request`` and
``App.dispatch`` are the one way into the app for every front end. The wire-level behaviour is
tested through real sockets elsewhere (test_http11, test_differential, test_fuzz); this module
pins the pieces' own contracts.
"""
import asyncio
import socket

import pytest
from hypothesis import given, settings, strategies as st

import pixie_web
from pixie_web import (App, END_OF_MESSAGE, Data, HTTP11Connection, ReadState,
                       RequestHead, Response, TestClient, serialize_head, to_response)

LIMITS = App(max_body_size=64)


def connection():
    return HTTP11Connection(LIMITS, head_cache={})


def all_events(pieces, max_heads=32):
    """Feed ``pieces`` one by one; every event, with Data merged into one bytes per body."""
    conn = connection()
    events = []
    for piece in pieces:
        conn.receive_data(piece)
        while True:
            batch = conn.next_events(max_heads)
            events.extend(batch)
            if not batch or conn.state is not ReadState.BODY or not conn.buffer:
                break
    return conn, summarise(events)


def summarise(events):
    summary, body = [], None
    for event in events:
        if isinstance(event, RequestHead):
            summary.append(("head", event.method, event.path, event.query_string,
                            event.http_version, tuple(event.header_pairs)))
            body = b""
        elif isinstance(event, Data):
            body += event.data
        elif event is END_OF_MESSAGE:
            summary.append(("end", body))
        else:
            summary.append(("error", event.status))
    return summary


GET = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n"
POST_LENGTH = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
POST_CHUNKED = (b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: t\r\n\r\n")


def test_a_head_without_a_body_is_a_request_head_then_the_end_of_the_message():
    conn, events = all_events([GET])
    assert events == [("head", "GET", "/a", "b=1", "1.1", (("host", "x"),)), ("end", b"")]
    assert conn.state is ReadState.AWAIT_HEAD and not conn.buffer


@pytest.mark.parametrize("request_bytes", [GET, POST_LENGTH, POST_CHUNKED, GET + POST_CHUNKED + GET],
                         ids=["get", "content-length", "chunked", "pipelined"])
def test_the_events_do_not_depend_on_how_the_bytes_are_split(request_bytes):
    _, whole = all_events([request_bytes])
    _, byte_by_byte = all_events([request_bytes[i:i + 1] for i in range(len(request_bytes))])
    assert byte_by_byte == whole
    assert [event[0] for event in whole].count("end") == request_bytes.count(b"HTTP/1.1")
    if request_bytes in (POST_LENGTH, POST_CHUNKED):
        assert whole[-1] == ("end", b"hello")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([GET, POST_LENGTH, POST_CHUNKED]), min_size=1, max_size=4),
       st.lists(st.integers(1, 400), max_size=6))
def test_receive_with_its_one_head_fast_path_gives_what_the_buffer_gives(requests, cuts):
    data = b"".join(requests)
    pieces, start = [], 0
    for cut in sorted(set(cuts)):
        if start < cut < len(data):
            pieces.append(data[start:cut])
            start = cut
    pieces.append(data[start:])
    fast, events = connection(), []
    for piece in pieces:
        batch = fast.receive(piece, 32)
        while True:
            events.extend(batch)
            if not batch or fast.state is not ReadState.BODY or not fast.buffer:
                break
            batch = fast.next_events(32)
    assert summarise(events) == all_events(pieces)[1]


def test_a_head_that_announces_a_body_ends_the_batch_so_the_front_end_can_refuse_it():
    conn = connection()
    conn.receive_data(POST_LENGTH + GET)
    first = conn.next_events(32)
    assert [type(event) for event in first] == [RequestHead]
    assert conn.state is ReadState.BODY
    conn.skip_body()
    assert conn.state is ReadState.CLOSED
    assert conn.next_events(32) == []          # neither the body nor the next head is read
    conn.receive_data(GET)
    assert conn.next_events(32) == [] and not conn.buffer


def test_max_heads_holds_pipelined_heads_back_until_asked_again():
    conn = connection()
    conn.receive_data(GET * 3)
    assert summarise(conn.next_events(2)) == [summarise([conn.read_head(GET[:-4])])[0], ("end", b"")] * 2
    assert conn.buffer                             # the third head waits
    assert len(conn.next_events(0)) == 0
    assert [type(event) for event in conn.next_events(5)] == [RequestHead, type(END_OF_MESSAGE)]


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET / HTTP/1.1\r\n\r\n", 400),                                        # no Host
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n", 413),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nHost: y\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400),
], ids=["no-host", "version", "chunk-over-max-body", "chunk-without-crlf", "host-trailer", "bare-lf"])
def test_a_protocol_error_is_the_last_event_and_closes_reading(request_bytes, status):
    conn, events = all_events([request_bytes + GET])
    assert events[-1] == ("error", status)
    assert conn.state is ReadState.CLOSED
    conn.receive_data(GET)
    assert conn.next_events(32) == []


def test_the_read_state_changes_only_along_its_table():
    conn = connection()
    conn._goto(ReadState.BODY)
    with pytest.raises(RuntimeError, match="BODY -> ReadState.BODY"):
        conn._goto(ReadState.BODY)                  # a second body needs a head first
    conn._goto(ReadState.AWAIT_HEAD)
    conn._goto(ReadState.CLOSED)
    for state in (ReadState.AWAIT_HEAD, ReadState.BODY):
        with pytest.raises(RuntimeError, match="illegal"):
            conn._goto(state)                       # CLOSED is final
    assert set(pixie_web._TRANSITIONS) == set(ReadState)
    for state, targets in pixie_web._TRANSITIONS.items():   # the table is what the docs say
        for target in targets:
            assert f"{state.name}" in ReadState.__doc__ and f"{target.name}" in ReadState.__doc__


# ---- serialize_head: every writer's one head serialiser -------------------------------------

def head_lines(head):
    lines = head.decode("latin-1").split("\r\n")
    return [line for line in lines if line and not line.startswith("Date: ")]


@pytest.mark.parametrize("value", ["<p>hi</p>", b"\x00\x01", {"a": [1, 2]}, [1]],
                         ids=["str", "bytes", "dict", "list"])
def test_the_fast_case_writes_what_the_general_case_writes(value):
    fast = to_response(value)
    general = Response(fast.body, 200, headers={"X-Force": "general"},
                       content_type=fast.content_type)
    del general.headers["X-Force"]                 # same response, through the general path
    for version, keep_alive in (("1.1", True), ("1.1", False), ("1.0", True), ("1.0", False)):
        fast_head, fast_body, fast_keep = serialize_head(fast, version, keep_alive)
        slow_head, slow_body, slow_keep = serialize_head(general, version, keep_alive)
        assert head_lines(fast_head) == head_lines(slow_head)
        assert (fast_body, fast_keep) == (slow_body, slow_keep)
        assert b"\r\nDate: " in fast_head and fast_head.endswith(b"\r\n\r\n")


def test_a_streamed_body_is_chunked_in_http11_and_closes_the_connection_in_http10():
    streamed = Response(iter([b"a"]))
    head, body, keep_alive = serialize_head(streamed, "1.1", True)
    assert body is None and keep_alive and "Transfer-Encoding: chunked" in head_lines(head)
    head, body, keep_alive = serialize_head(streamed, "1.0", True)
    assert body is None and not keep_alive and "Connection: close" in head_lines(head)


def test_framing_headers_set_by_a_handler_are_replaced_by_the_serialiser():
    response = Response(b"abc", headers={"Content-Length": "99", "Transfer-Encoding": "gzip",
                                         "Connection": "close"})
    head, _, keep_alive = serialize_head(response, "1.1", True)
    lines = head_lines(head)
    assert "Content-Length: 3" in lines and "Content-Length: 99" not in lines
    assert not any(line.startswith("Transfer-Encoding") for line in lines)
    assert keep_alive is False and lines.count("Connection: close") == 1


# ---- the dispatch core ---------------------------------------------------------------------

def routed(app, method, path, body=b""):
    request = pixie_web.Request(method, path, path, "", "1.1", (("host", "x"),), body, app=app)
    app.route_request(request, path, len(body) or None)
    return request


def test_dispatch_answers_a_plain_route_at_once_and_hands_waiting_work_back_as_a_coroutine():
    app = App()
    app.get("/now")(lambda request: {"now": True})

    @app.get("/later")
    async def later(request):
        await asyncio.sleep(0)
        return "later"

    now = app.dispatch(routed(app, "GET", "/now"))
    assert isinstance(now, Response) and now.body == b'{"now":true}'
    pending = app.dispatch(routed(app, "GET", "/later"))
    assert asyncio.iscoroutine(pending)
    assert asyncio.run(pending).body == b"later"


def test_routing_outcomes_are_decided_when_the_head_arrives():
    app = App(max_body_size=10)
    app.post("/upload")(lambda request: "stored")
    assert routed(app, "GET", "/nowhere")._routing_outcome.status == 404
    assert routed(app, "GET", "/upload")._routing_outcome.status == 405
    too_big = routed(app, "POST", "/upload", b"x" * 11)
    assert too_big._routing_outcome.status == 413
    response = asyncio.run(app.dispatch(too_big))
    assert response.status == 413


def test_each_route_s_work_is_composed_once_and_again_only_when_routes_or_hooks_change(
        monkeypatch):
    composed = []
    original = App._compose_route
    monkeypatch.setattr(App, "_compose_route",
                        lambda self, route, run: composed.append(route) or original(self, route, run))
    app = App()
    app.get("/a")(lambda request: "a")
    with TestClient(app) as client:
        for _ in range(5):
            assert client.get("/a").text == "a"
        first = len(composed)
        assert first >= 1
        assert client.get("/a").text == "a" and len(composed) == first      # not per request
        app.before_request(lambda request: None)
        assert client.get("/a").text == "a" and len(composed) > first       # hooks changed
        second = len(composed)
        app.get("/b")(lambda request: "b")
        assert client.get("/b").text == "b" and len(composed) > second      # routes changed


# ---- what crosses into a pool worker ----------------------------------------------------------

def test_a_request_snapshot_is_named_and_versioned():
    request = routed(App(), "GET", "/x")
    snapshot = request._snapshot()
    assert snapshot.version == pixie_web._SNAPSHOT_VERSION
    copy = pixie_web.Request._from_snapshot(snapshot)
    assert (copy.method, copy.path, list(copy.headers.items())) == ("GET", "/x", [("host", "x")])
    with pytest.raises(RuntimeError, match="same pixie_web.py"):
        pixie_web.Request._from_snapshot(snapshot._replace(version=snapshot.version + 1))


def test_pool_frames_carry_large_payloads_in_pieces():
    ours, theirs = socket.socketpair()
    payload = bytes(range(256)) * 4000              # 1 MB: more than one recv
    with ours, theirs:
        ours.setblocking(True)
        import threading
        sender = threading.Thread(target=ours.sendall, args=(pixie_web._frame(payload) * 2,))
        sender.start()
        assert pixie_web._recv_frame(theirs) == payload
        assert pixie_web._recv_frame(theirs) == payload
        sender.join()
        ours.close()
        with pytest.raises(EOFError):
            pixie_web._recv_frame(theirs)
