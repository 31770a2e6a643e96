"""HTTP/1.1 limits, timeouts and floods on the wire.

Limits are enforced on buffered bytes even when the client trickles one byte
per send (B9); short configured timeouts close slow or idle connections
(F1-F3); a client that pipelines thousands of requests and never reads is
bounded and does not starve others (A16).  Every test runs on the pure-Python
and the accelerated path (``parser_mode``).  Ids are the advisory classes of SECURITY.md.
"""
import time

import pytest

from tests.support import (ECHO_CHUNKED, ECHO_CL, PROTOCOL_APP as APP, Client, calls, exchange,
                           parse_all)

MAX_BODY = 65536          # max_body_size of the shared server (small, for speed)


@pytest.fixture
def server(parser_mode, shared_server):
    """Default limits, except a small max_body_size so the body tests stay fast."""
    return shared_server(APP, parser_mode, max_body_size=MAX_BODY)


@pytest.fixture
def slow_server(parser_mode, shared_server):
    """Short timeouts: 0.5 s for the head, the body and keep-alive idling."""
    return shared_server(APP, parser_mode, header_timeout=0.5, body_timeout=0.5,
                         keepalive_timeout=0.5)


def assert_limit_rejected(port, payload, status, trickled=False):
    """``status`` with Connection: close, the connection closes, no handler runs."""
    before = calls(port)
    with Client(port, timeout=10.0, nodelay=trickled) as client:
        if trickled:
            client.trickle(payload)
        else:
            client.send_ignoring_close(payload)
        data, closed = client.read_until_close(5.0)
    replies, rest = parse_all(data, eof=closed)
    assert replies, f"no response (closed={closed})"
    assert replies[0].status == status, data[:300]
    assert len(replies) == 1 and not rest, data[:600]
    assert (replies[0].header("connection") or "").lower() == "close"
    assert closed
    assert calls(port) == before


def ok(port, payload):
    """Send ``payload`` (which ends with Connection: close) and return the single reply."""
    data, closed = exchange(port, payload, timeout=10.0)
    replies, rest = parse_all(data, eof=closed)
    assert len(replies) == 1 and not rest, data[:300]
    return replies[0]


def headers_payload(header_lines, path=b"/"):
    return b"GET " + path + b" HTTP/1.1\r\nHost: a\r\n" + b"".join(header_lines) + b"Connection: close\r\n\r\n"


# ---- Head limits (B9) ---------------------------------------------------------------------------

@pytest.mark.parametrize("trickled", [False, True], ids=["one-write", "one-byte-per-send"])
def test_request_line_longer_than_the_limit_is_414(server, trickled):
    # B9: gunicorn limit; aiohttp CVE-2026-54277 (limit bypassed by small TCP segments)
    payload = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    assert_limit_rejected(server.port, payload, 414, trickled)


def test_request_line_within_the_limit_is_routed(server):
    reply = ok(server.port, b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert reply.status == 404


@pytest.mark.parametrize("lines, trickled", [
    ([b"X-Big: " + b"v" * 17000 + b"\r\n"], False),
    ([b"X-H%02d: %s\r\n" % (index, b"v" * 500) for index in range(40)], False),
    ([b"X-Big: " + b"v" * 17000 + b"\r\n"], True),
], ids=["one-big-value", "many-medium-headers", "one-big-value-trickled"])
def test_header_section_larger_than_the_limit_is_431(server, lines, trickled):
    # B9: a 9 KB+ field / big head, enforced on buffered bytes
    assert_limit_rejected(server.port, headers_payload(lines), 431, trickled)


def test_header_section_within_the_limit_is_accepted(server):
    lines = [b"X-H%02d: %s\r\n" % (index, b"v" * 1400) for index in range(10)]      # ~14.1 KB
    reply = ok(server.port, headers_payload(lines))
    assert (reply.status, reply.body) == (200, b"Hello, World!")


@pytest.mark.parametrize("total, trickled", [(101, False), (200, False), (200, True)],
                         ids=["101", "200", "200-trickled"])
def test_more_than_max_header_count_headers_is_431(server, total, trickled):
    # B9: gunicorn 100 fields; Host and Connection count as two of them
    lines = [b"X-H%03d: v\r\n" % index for index in range(total - 2)]
    assert_limit_rejected(server.port, headers_payload(lines), 431, trickled)


def test_exactly_max_header_count_headers_are_accepted(server):
    lines = [b"X-H%03d: v\r\n" % index for index in range(98)]       # + Host + Connection = 100
    reply = ok(server.port, headers_payload(lines))
    assert (reply.status, reply.body) == (200, b"Hello, World!")


def test_trailers_beyond_the_header_limits_are_431(server):
    # A13: aiohttp CVE-2026-22815 (unbounded trailers); trailers beyond the limits -> 431
    trailers = b"X-T: a\r\n" * 10000
    assert_limit_rejected(server.port, ECHO_CHUNKED + b"5\r\nhello\r\n0\r\n" + trailers + b"\r\n", 431)


# ---- Body limit ---------------------------------------------------------------------------------

@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_of_exactly_max_body_size_is_accepted(server, framing):
    body = bytes(range(256)) * (MAX_BODY // 256)
    if framing == "content-length":
        payload = ECHO_CL % len(body) + body
    else:
        payload = ECHO_CHUNKED + b"".join(b"1000\r\n" + body[offset:offset + 4096] + b"\r\n"
                                          for offset in range(0, len(body), 4096)) + b"0\r\n\r\n"
    with Client(server.port, timeout=10.0) as client:
        client.send(payload)
        reply = client.reply()
    assert reply.status == 200 and reply.body == body


def test_content_length_over_max_body_size_is_413_before_the_body_is_sent(server):
    # The body is never sent: the server must answer from the declared length alone, then close.
    assert_limit_rejected(server.port, ECHO_CL % (MAX_BODY + 1), 413)


def test_chunked_body_over_max_body_size_is_413(server):
    chunk = b"1000\r\n" + b"z" * 4096 + b"\r\n"
    assert_limit_rejected(server.port, ECHO_CHUNKED + chunk * 17 + b"0\r\n\r\n", 413)


def test_chunked_body_is_cut_off_as_soon_as_the_decoded_size_passes_the_limit(server):
    # The declared chunk is larger than the limit; only MAX_BODY + 1 bytes of it are ever sent.
    assert_limit_rejected(server.port, ECHO_CHUNKED + b"20000\r\n" + b"z" * (MAX_BODY + 1), 413)


def test_many_one_byte_chunks_are_decoded_in_bounded_time(server):
    # A14: aiohttp CVE-2025-69229 (O(n^2) on many chunks); "ChunkLoris"
    count = 60000
    payload = ECHO_CHUNKED + b"1\r\nx\r\n" * count + b"0\r\n\r\n"
    started = time.monotonic()
    with Client(server.port, timeout=30.0) as client:
        client.send(payload)
        reply = client.reply(timeout=30.0)
    elapsed = time.monotonic() - started
    assert reply.status == 200 and reply.body == b"x" * count
    assert elapsed < 20.0, f"{count} one-byte chunks took {elapsed:.1f}s"


def test_one_byte_chunks_past_max_body_size_are_413(server):
    # A14: the body limit applies to the decoded size
    assert_limit_rejected(server.port, ECHO_CHUNKED + b"1\r\nx\r\n" * (MAX_BODY + 10) + b"0\r\n\r\n", 413)


# ---- Linear-time header parsing (B13) -----------------------------------------------------------

@pytest.mark.parametrize("tail, status", [(b"x", 200), (b"\x01", 400)], ids=["valid", "invalid-end"])
def test_long_whitespace_alternation_in_a_value_is_parsed_in_bounded_time(server, tail, status):
    # B13: waitress CVE-2020-5236 (catastrophic backtracking in the header regex)
    payload = headers_payload([b"X-Ws: a" + b"\t " * 7000 + tail + b"\r\n"])
    started = time.monotonic()
    data, closed = exchange(server.port, payload, timeout=10.0)
    elapsed = time.monotonic() - started
    replies, _ = parse_all(data, eof=closed)
    assert replies and replies[0].status == status, data[:300]
    assert elapsed < 5.0, f"took {elapsed:.1f}s"


def test_one_header_name_repeated_up_to_the_count_limit_is_accepted(server):
    # B13: tornado CVE-2025-67725 (O(n^2) coalescing of a repeated header)
    reply = ok(server.port, headers_payload([b"X-Rep: " + b"r" * 100 + b"\r\n"] * 98))
    assert (reply.status, reply.body) == (200, b"Hello, World!")


def test_one_header_name_repeated_5000_times_is_431_in_bounded_time(server):
    # B13: tornado CVE-2025-67725
    started = time.monotonic()
    assert_limit_rejected(server.port, headers_payload([b"X-Rep: a\r\n"] * 5000), 431)
    assert time.monotonic() - started < 10.0


# ---- Timeouts (F1-F3) ---------------------------------------------------------------------------

def _assert_timeout_reply(client):
    """If anything was written before the close, it is a single 408."""
    replies, rest = parse_all(client.buffer, eof=True)
    assert [reply.status for reply in replies] in ([], [408]), client.buffer[:300]


def test_slowloris_head_is_closed_by_the_header_timeout_while_others_are_served(slow_server):
    # F1: microdot#99; Sanic REQUEST_TIMEOUT: the deadline is total, bytes keep arriving
    port = slow_server.port
    before = calls(port)
    clients = [Client(port, timeout=5.0, nodelay=True) for _ in range(5)]
    try:
        for client in clients:
            client.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-a: ")
        started = time.monotonic()
        closed_after, other_client = {}, None
        while len(closed_after) < len(clients) and time.monotonic() - started < 8.0:
            for index, client in enumerate(clients):
                if index in closed_after:
                    continue
                if not client.nudge(b"b"):              # one more byte every 0.1 s
                    closed_after[index] = time.monotonic() - started
            if other_client is None:
                ask_started = time.monotonic()
                data, closed = exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                other_client = (parse_all(data, eof=closed)[0], time.monotonic() - ask_started)
            time.sleep(0.1)
        assert len(closed_after) == len(clients), "slowloris connections still open after 8 s"
        assert max(closed_after.values()) < 5.0, closed_after
        for client in clients:
            _assert_timeout_reply(client)
    finally:
        for client in clients:
            client.close()
    replies, elapsed = other_client
    assert [(reply.status, reply.body) for reply in replies] == [(200, b"Hello, World!")]
    assert elapsed < 3.0
    assert calls(port) == before + 1                # only the other client's request ran


def test_idle_new_connection_is_closed_by_the_header_timeout(slow_server):
    # F1: an idle socket must not be held forever
    with Client(slow_server.port, timeout=6.0) as client:
        started = time.monotonic()
        data, closed = client.read_until_close(6.0)
    assert closed
    assert time.monotonic() - started < 5.0
    assert [reply.status for reply in parse_all(data)[0]] in ([], [408])


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_slow_body_is_closed_by_the_body_timeout(slow_server, framing):
    # F3: slow POST, the body trickled at 10 B/s
    port = slow_server.port
    before = calls(port)
    if framing == "content-length":
        head, drip = ECHO_CL % 1000 + b"x" * 10, b"x"
    else:
        head, drip = ECHO_CHUNKED + b"1\r\nx\r\n", b"1\r\nx\r\n"
    with Client(port, timeout=5.0, nodelay=True) as client:
        client.send(head)
        started, closed_after = time.monotonic(), None
        while time.monotonic() - started < 8.0:
            if not client.nudge(drip):
                closed_after = time.monotonic() - started
                break
            time.sleep(0.1)
        assert closed_after is not None, "slow body still being read after 8 s"
        assert closed_after < 5.0
        _assert_timeout_reply(client)
    assert calls(port) == before


def test_idle_keep_alive_connection_is_closed_silently(slow_server):
    # F2: uvicorn --timeout-keep-alive
    with Client(slow_server.port, timeout=6.0) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        reply = client.reply()
        assert (reply.status, reply.body) == (200, b"Hello, World!")
        started = time.monotonic()
        data, closed = client.read_until_close(6.0)
    assert closed and data == b""
    assert time.monotonic() - started < 5.0


def test_keep_alive_timeout_counts_from_the_last_response_and_never_closes_early(slow_server):
    # keepalive_timeout is 0.5 s: a request after 0.3 s of idling is served on the same
    # connection, and the close comes no sooner than 0.5 s after the last response.
    with Client(slow_server.port, timeout=6.0) as client:
        for pause in (0.3, 0.3, 0.0):
            client.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            reply = client.reply()
            assert (reply.status, reply.body) == (200, b"Hello, World!")
            time.sleep(pause)
        started = time.monotonic()
        data, closed = client.read_until_close(6.0)
        idle_for = time.monotonic() - started
    assert closed and data == b""
    assert 0.45 <= idle_for < 2.0, f"closed after {idle_for:.2f} s of idling"


# ---- Pipelining floods that never read (A16) ----------------------------------------------------

def other_client_is_served(port):
    started = time.monotonic()
    data, closed = exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=5.0)
    replies, _ = parse_all(data, eof=closed)
    assert [(reply.status, reply.body) for reply in replies] == [(200, b"Hello, World!")]
    return time.monotonic() - started


def test_ten_thousand_pipelined_requests_never_read_do_not_starve_other_clients(server_factory, parser_mode):
    # A16: aiohttp CVE-2026-54273 (GHSA-4fvr-rgm6-gqmc)
    server = server_factory(APP, pure=(parser_mode == "pure"))
    flood = Client(server.port, rcvbuf=4096)
    try:
        flood.push(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 10000, seconds=3.0)
        assert other_client_is_served(server.port) < 3.0
        assert server.alive()
    finally:
        flood.close()
    assert other_client_is_served(server.port) < 3.0


def test_pipelined_flood_never_read_stops_being_processed(server_factory, parser_mode):
    # A16: with 32 KiB responses the kernel buffers hold ~100 of them; a server that keeps
    # reading and dispatching would run all 3000 requests and buffer ~96 MB.
    server = server_factory(APP, pure=(parser_mode == "pure"))
    sent_requests = 3000
    before = calls(server.port)
    flood = Client(server.port, rcvbuf=4096)
    try:
        flood.push(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n" * sent_requests, seconds=3.0)
        assert other_client_is_served(server.port) < 3.0
        handled, deadline = calls(server.port), time.monotonic() + 6.0
        while time.monotonic() < deadline:              # wait until the server stops making progress
            time.sleep(0.3)
            now = calls(server.port)
            if now == handled:
                break
            handled = now
        dispatched = handled - before - 1               # minus the other client's request
        assert dispatched < sent_requests // 3, f"{dispatched} of {sent_requests} dispatched without reading"
    finally:
        flood.close()
    assert other_client_is_served(server.port) < 3.0
