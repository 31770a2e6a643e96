"""HTTP/1.1 on the wire: keep-alive, pipelining, HTTP/1.0, chunked bodies,
streaming, Expect, HEAD, and strict rejection of malformed or smuggling requests.

Every test talks to a real server process over raw sockets and runs twice: on
the pure-Python path and on the accelerated one (uvloop + ujson), through
the ``parser_mode`` fixture.  Attack ids (A1..A16, B1..B13, F5) refer to
the advisory classes of SECURITY.md.

Each attack test checks two things: the client gets the expected 4xx/5xx with
``Connection: close`` and the connection closes, AND no handler ran — the app's
``GET /count`` (asked on a fresh connection before and after) must not move.
Every attack payload is followed, in the same write, by a smuggled
``GET /admin`` that must never be answered or dispatched (A15).

Limits, timeouts and floods live in test_http11_limits.py.
"""
import email.utils
import os
import re
import time
from datetime import datetime, timezone

import h11
import pytest

from tests.support import (ECHO_CHUNKED, ECHO_CL, FOLLOWER, PROTOCOL_APP, Client, assert_rejected,
                           calls, cpu_seconds, exchange, parse_all, split_reply)

APP = PROTOCOL_APP
MAX_BODY = 65536          # max_body_size of the shared server (small, for speed)
HOST = b"Host: a\r\n"


# ---- The shared server -------------------------------------------------------------------------

@pytest.fixture
def server(parser_mode, shared_server):
    """The protocol app with default limits except max_body_size=MAX_BODY, shared per mode."""
    return shared_server(APP, parser_mode, max_body_size=MAX_BODY)


# ---- Keep-alive, pipelining, Connection, Date ---------------------------------------------------

def test_keep_alive_serves_several_requests_on_one_connection(server):
    with Client(server.port) as client:
        for _ in range(3):
            client.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            reply = client.reply()
            assert reply.status == 200 and reply.body == b"Hello, World!"
            assert (reply.header("connection") or "").lower() != "close"
        client.send(ECHO_CL % 4 + b"ping")
        assert client.reply().body == b"ping"


def test_pipelined_requests_are_answered_in_order(server):
    # The async handler finishes last but its response must come first.
    payload = (b"GET /async HTTP/1.1\r\nHost: a\r\n\r\n"
               + ECHO_CL % 5 + b"first"
               + b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n"
               + ECHO_CHUNKED + b"6\r\nsecond\r\n0\r\n\r\n"
               + b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    data, closed = exchange(server.port, payload)
    replies, rest = parse_all(data, eof=closed)
    assert [reply.body for reply in replies] == [
        b"async", b"first", b"onetwothree", b"second", b"Hello, World!"]
    assert all(reply.status == 200 for reply in replies)
    assert closed and not rest


def test_more_pipelined_requests_than_max_pipelined_are_all_answered_in_order(server):
    count = 80                      # max_pipelined defaults to 32: reading must pause and resume
    bodies = [b"request-%03d" % index for index in range(count)]
    payload = b"".join(ECHO_CL % len(body) + body for body in bodies)
    with Client(server.port) as client:
        client.send(payload)
        received = [client.reply().body for _ in range(count)]
    assert received == bodies


def test_http10_connection_closes_after_the_response_by_default(server):
    before = calls(server.port)
    data, closed = exchange(server.port, b"GET / HTTP/1.0\r\n\r\nGET /admin HTTP/1.0\r\n\r\n")
    replies, rest = parse_all(data, eof=closed)
    assert [reply.body for reply in replies] == [b"Hello, World!"]
    assert closed and not rest
    assert calls(server.port) == before + 1       # the second request was never dispatched


def test_http10_keep_alive_header_is_honoured(server):
    with Client(server.port) as client:
        client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = client.reply()
        assert first.status == 200 and first.body == b"Hello, World!"
        assert first.header("content-length") == "13"
        assert (first.header("connection") or "").lower() == "keep-alive"
        client.send(b"POST /echo HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
        second = client.reply()
        assert second.status == 200 and second.body == b"abc"
        data, closed = client.read_until_close()
        assert closed and data == b""        # no keep-alive asked the second time


@pytest.mark.parametrize("value", [b"close", b"Close", b"keep-alive, close"])
def test_connection_close_closes_after_the_response(server, value):
    before = calls(server.port)
    data, closed = exchange(server.port,
                            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: " + value + b"\r\n\r\n" + FOLLOWER)
    replies, rest = parse_all(data, eof=closed)
    assert [reply.body for reply in replies] == [b"Hello, World!"]
    assert (replies[0].header("connection") or "").lower() == "close"
    assert closed and not rest
    assert calls(server.port) == before + 1


IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct"
                         r"|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$")


@pytest.mark.parametrize("payload", [
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET /missing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",                       # 400: no Host
], ids=["200", "stream", "404", "http10", "400"])
def test_every_response_has_a_date_header(server, payload):
    data, closed = exchange(server.port, payload)
    replies, _ = parse_all(data, eof=closed)
    assert len(replies) == 1
    date = replies[0].header("date")
    assert date and IMF_FIXDATE.match(date), f"bad Date header {date!r}"
    sent = email.utils.parsedate_to_datetime(date)
    assert abs((datetime.now(timezone.utc) - sent).total_seconds()) < 60


def _date_of(reply):
    return email.utils.parsedate_to_datetime(reply.header("date"))


@pytest.mark.parametrize("path", ["/", "/missing"], ids=["fast-path", "rendered"])
def test_date_header_follows_the_clock_on_a_long_lived_connection(server, path):
    # The server refreshes its cached Date line every second; a stale line would repeat.
    with Client(server.port, timeout=5.0) as client:
        dates = []
        for pause in (1.2, 0.0):
            client.send(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path.encode())
            sent = _date_of(client.reply())
            dates.append(sent)
            now = datetime.now(timezone.utc)
            assert -1.5 < (now - sent).total_seconds() < 1.5, f"Date {sent} at {now}"
            time.sleep(pause)
    assert dates[1] > dates[0], f"the Date line did not advance: {dates}"


# ---- Chunked request bodies ---------------------------------------------------------------------

@pytest.mark.parametrize("chunked_body, expected", [
    (b"3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n", b"abcdefgh"),
    (b"A\r\n0123456789\r\n000b\r\nabcdefghijk\r\n0\r\n\r\n", b"0123456789abcdefghijk"),
    (b"0000000000000003\r\nabc\r\n0\r\n\r\n", b"abc"),                    # 16 hex digits
    (b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"\r\n\r\n"),                        # CRLF inside data
    (b"0\r\n\r\n", b""),
], ids=["plain", "hex-case-and-leading-zeros", "16-digits", "crlf-in-data", "empty"])
def test_chunked_request_body_is_decoded(server, chunked_body, expected):
    # The pipelined follower proves the body was consumed exactly.
    payload = ECHO_CHUNKED + chunked_body + b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    data, closed = exchange(server.port, payload)
    replies, rest = parse_all(data, eof=closed)
    assert [(reply.status, reply.body) for reply in replies] == [(200, expected), (200, b"Hello, World!")]
    assert not rest


@pytest.mark.parametrize("chunked_body", [
    b"3;foo\r\nabc\r\n0\r\n\r\n",
    b"3;foo=bar\r\nabc\r\n0\r\n\r\n",
    b'3;foo="quoted-value"\r\nabc\r\n0\r\n\r\n',
    b'3;a=1;b;c="x"\r\nabc\r\n0;last=yes\r\n\r\n',
], ids=["name", "name-token", "name-quoted", "several"])
def test_chunk_extensions_are_accepted_and_ignored(server, chunked_body):
    with Client(server.port) as client:
        client.send(ECHO_CHUNKED + chunked_body)
        reply = client.reply()
    assert reply.status == 200 and reply.body == b"abc"


@pytest.mark.parametrize("trailers", [
    b"X-T: a\r\n",                                  # A13: the legal form must keep working
    b"X-One: 1\r\nX-Two: 2\r\nExpires: never\r\n",
], ids=["one", "several"])
def test_trailers_are_accepted_and_ignored(server, trailers):
    payload = ECHO_CHUNKED + b"3\r\nabc\r\n0\r\n" + trailers + b"\r\n" + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    with Client(server.port) as client:
        client.send(payload)
        echo, follower = client.reply(), client.reply()
    assert (echo.status, echo.body) == (200, b"abc")
    assert (follower.status, follower.body) == (200, b"Hello, World!")


@pytest.mark.parametrize("value", [b"Chunked", b"CHUNKED", b"chunked \t"],
                         ids=["title-case", "upper-case", "trailing-ows"])
def test_transfer_encoding_chunked_is_case_insensitive_and_allows_trailing_whitespace(server, value):
    payload = (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + value
               + b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    with Client(server.port) as client:
        client.send(payload)
        reply = client.reply()
    assert (reply.status, reply.body) == (200, b"abc")


def test_content_length_with_surrounding_whitespace_is_accepted(server):
    with Client(server.port) as client:
        client.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \t3 \r\n\r\nabc")
        reply = client.reply()
    assert (reply.status, reply.body) == (200, b"abc")


# ---- Streaming responses ------------------------------------------------------------------------

def test_generator_response_is_streamed_chunked_on_http11(server):
    with Client(server.port) as client:
        client.send(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
        reply = client.reply()
        assert reply.status == 200
        assert (reply.header("transfer-encoding") or "").lower() == "chunked"
        assert reply.header("content-length") is None
        assert reply.body == b"onetwothree"
        client.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")       # still keep-alive
        assert client.reply().body == b"Hello, World!"


@pytest.mark.parametrize("extra", [b"", b"Connection: keep-alive\r\n"], ids=["plain", "keep-alive"])
def test_generator_response_on_http10_is_close_delimited(server, extra):
    data, closed = exchange(server.port, b"GET /stream HTTP/1.0\r\n" + extra + b"\r\n")
    assert closed, "an HTTP/1.0 stream can only end by closing the connection"
    reply = split_reply(data)
    assert b" 200 " in reply.status_line
    assert b"transfer-encoding" not in reply.head.lower()
    assert reply.body == b"onetwothree"


# ---- Expect: 100-continue (B12) -----------------------------------------------------------------

@pytest.mark.parametrize("framing, body", [
    (b"Content-Length: 5\r\n", b"hello"),
    (b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
], ids=["content-length", "chunked"])
def test_expect_100_continue_is_answered_before_the_body_is_sent(server, framing, body):
    with Client(server.port) as client:
        client.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n" + framing + b"\r\n")
        interim = client.reply(timeout=3.0)
        assert interim.status == 100
        client.send(body)
        final = client.reply()
    assert (final.status, final.body) == (200, b"hello")


@pytest.mark.parametrize("request_line, length, status", [
    (b"POST /nowhere HTTP/1.1", 5, 404),
    (b"PUT /echo HTTP/1.1", 5, 405),
    (b"POST /echo HTTP/1.1", MAX_BODY + 1, 413),
], ids=["404", "405", "413"])
def test_expect_100_continue_gets_the_final_status_when_the_body_would_not_be_read(
        server, request_line, length, status):
    # B12: 100 Continue only if the body will be read; the body is never sent here.
    before = calls(server.port)
    data, closed = exchange(server.port, request_line + b"\r\nHost: a\r\nExpect: 100-continue\r\n"
                            + b"Content-Length: %d\r\n\r\n" % length)
    replies, _ = parse_all(data, eof=closed)
    assert [reply.status for reply in replies] == [status], data[:300]
    assert closed
    assert calls(server.port) == before


@pytest.mark.parametrize("value", [b"foo", b"100-continue-please", b"200-ok"])
def test_expect_other_than_100_continue_is_417(server, value):
    # B12 (Sanic ExpectationFailed)
    before = calls(server.port)
    data, closed = exchange(server.port, b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: " + value
                            + b"\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    replies, _ = parse_all(data, eof=closed)
    assert replies and replies[0].status == 417, data[:300]
    assert calls(server.port) == before


# ---- HEAD ---------------------------------------------------------------------------------------

def test_head_has_the_get_headers_and_no_body(server):
    with Client(server.port) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
                    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        get, head, after = client.reply(), client.reply(head=True), client.reply()
    assert head.status == 200
    assert head.header("content-length") == get.header("content-length") == "13"
    assert head.header("content-type") == get.header("content-type")
    # Had HEAD carried a body, the next response would start with "Hello, World!".
    assert after.status_line.startswith(b"HTTP/1.1 200") and after.body == b"Hello, World!"


def test_head_of_a_streaming_route_sends_no_body(server):
    with Client(server.port) as client:
        client.send(b"HEAD /stream HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        head, after = client.reply(head=True), client.reply()
    assert head.status == 200
    assert after.status_line.startswith(b"HTTP/1.1 200") and after.body == b"Hello, World!"


# ---- A strict client (h11) accepts our responses ------------------------------------------------

def test_responses_are_valid_http11_for_a_strict_client(server):
    connection = h11.Connection(h11.CLIENT)
    # h11 is the response reader here: the client only carries its bytes
    with Client(server.port) as client:
        def round_trip(method, target, headers=(), body=None):
            out = connection.send(h11.Request(method=method, target=target,
                                              headers=[("Host", "a"), *headers]))
            if body is not None:
                out += connection.send(h11.Data(data=body))
            out += connection.send(h11.EndOfMessage())
            client.send(out)
            response, received = None, b""
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(client.read_some())
                elif isinstance(event, h11.Response):
                    response = event
                elif isinstance(event, h11.Data):
                    received += event.data
                elif isinstance(event, h11.EndOfMessage):
                    return response, received
                else:
                    raise AssertionError(f"unexpected h11 event {event!r}")

        def next_cycle():
            assert connection.our_state is h11.DONE and connection.their_state is h11.DONE
            connection.start_next_cycle()

        response, body = round_trip("GET", "/")
        assert (response.status_code, body) == (200, b"Hello, World!")
        assert dict(response.headers).get(b"date")
        next_cycle()
        response, body = round_trip("POST", "/echo", [("Transfer-Encoding", "chunked")], b"via h11")
        assert (response.status_code, body) == (200, b"via h11")
        next_cycle()
        response, body = round_trip("POST", "/echo", [("Content-Length", "3")], b"xyz")
        assert (response.status_code, body) == (200, b"xyz")
        next_cycle()
        response, body = round_trip("GET", "/stream")
        assert (response.status_code, body) == (200, b"onetwothree")
        next_cycle()
        response, body = round_trip("HEAD", "/")
        assert (response.status_code, body) == (200, b"")
        next_cycle()
        response, body = round_trip("GET", "/missing")
        assert response.status_code == 404
        next_cycle()
        response, body = round_trip("GET", "/", [("Connection", "close")])
        assert (response.status_code, body) == (200, b"Hello, World!")
        assert connection.their_state is h11.MUST_CLOSE


# ---- Request framing attacks (classes A) --------------------------------------------------------

@pytest.mark.parametrize("payload", [
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
], ids=["cl-then-te", "te-then-cl", "cl0-and-te"])
def test_content_length_with_transfer_encoding_is_rejected(server, payload):
    # A1: gunicorn rfc9112_smuggle_cl_te_chunked_01; aiohttp CVE-2023-47641
    assert_rejected(server.port, payload)


@pytest.mark.parametrize("lengths", [
    b"Content-Length: 3\r\nContent-Length: 2\r\n",
    b"Content-Length: 2\r\nContent-Length: 3\r\n",
    b"Content-Length: 3, 3\r\n",
    b"Content-Length: 3,3\r\n",
    b"Content-Length: 3, 2\r\n",
], ids=["3-then-2", "2-then-3", "list-3-3", "list-3,3", "list-3-2"])
def test_duplicate_or_list_content_length_is_rejected(server, lengths):
    # A2: waitress CVE-2019-16792; A3: gunicorn rfc9112_smuggle_cl_list_form_01
    assert_rejected(server.port, b"POST /echo HTTP/1.1\r\nHost: a\r\n" + lengths + b"\r\nabc")


@pytest.mark.parametrize("value", [
    b"+1", b"-1", b"-0", b"0_1", b"0x10", b"1E3", b"bla-bla", b"0 1", b"3 1", b"1.0", b"",
    "\u0661".encode(), "\U0001d7d9".encode(), "\uff11".encode(),
], ids=["plus", "minus", "minus-zero", "underscore", "hex", "exponent", "word", "0-space-1",
        "3-space-1", "decimal", "empty", "arabic-indic-1", "math-1", "fullwidth-1"])
def test_non_digit_content_length_is_rejected(server, value):
    # A4: waitress CVE-2022-24761; tornado GHSA-qppv-j76h-2rpx; aiohttp CVE-2025-69224 (Unicode \d)
    assert_rejected(server.port, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: " + value
                    + b"\r\n\r\nx")


def test_huge_content_length_is_rejected_without_crashing(server):
    # A5: h11 0.15.0 #181; CPython int max-str-digits (ValueError above 4300 digits)
    assert_rejected(server.port, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"9" * 5000
                    + b"\r\n\r\nx", statuses=(400, 413))


@pytest.mark.parametrize("codings", [
    b"Transfer-Encoding: xchunked\r\n",
    b"Transfer-Encoding: chunked, identity\r\n",
    b"Transfer-Encoding: identity, chunked, identity, chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked, chunked\r\n",
    b"Transfer-Encoding: identity\r\n",
    b"Transfer-Encoding: gzip\r\n",
], ids=["xchunked", "chunked-identity", "identity-chunked-x2", "gzip-chunked", "identity-then-chunked",
        "chunked-then-gzip", "chunked-twice", "chunked-chunked-list", "identity", "gzip"])
def test_transfer_encoding_other_than_exactly_chunked_is_501(server, codings):
    # A6: gunicorn CVE-2024-1135 / CVE-2024-6827; waitress CVE-2019-16786; aiohttp PR #12137
    assert_rejected(server.port, b"POST /echo HTTP/1.1\r\nHost: a\r\n" + codings
                    + b"\r\n3\r\nabc\r\n0\r\n\r\n", statuses=(501,))


@pytest.mark.parametrize("header, statuses", [
    (b"Transfer-Encoding: \rchunked\r\n", (400,)),
    (b"Transfer-Encoding : chunked\r\n", (400,)),
    (b"Transfer-Encoding: chunked\x0b\r\n", (400,)),
    (b"Transfer-Encoding: chunked\x00\r\n", (400,)),
    (b"Transfer-Encoding: \"chunked\"\r\n", (400, 501)),
    (b"Transfer-Encoding: chunked,\r\n", (400, 501)),
    (b"Transfer-Encoding: , chunked\r\n", (400, 501)),
    (b"Transfer-Encoding:\r\n", (400, 501)),
], ids=["cr-before", "space-before-colon", "vertical-tab", "nul", "quoted", "trailing-comma",
        "leading-comma", "empty"])
def test_malformed_transfer_encoding_is_rejected(server, header, statuses):
    # A7: tinyproxy#616; Go net/http#53188; sozu#726; tiny-http#173
    assert_rejected(server.port, b"POST /echo HTTP/1.1\r\nHost: a\r\n" + header
                    + b"\r\n3\r\nabc\r\n0\r\n\r\n", statuses=statuses)


@pytest.mark.parametrize("extra", [b"", b"Connection: keep-alive\r\n", b"Content-Length: 3\r\n"],
                         ids=["plain", "keep-alive", "with-content-length"])
def test_transfer_encoding_on_http10_is_rejected(server, extra):
    # A8: gunicorn chunked_05 and 22.0 ("chunked only used in exploits" on HTTP/1.0)
    assert_rejected(server.port, b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n" + extra
                    + b"\r\n3\r\nabc\r\n0\r\n\r\n")


@pytest.mark.parametrize("size_line", [
    b"6_0", b"+5", b"-5", b"0x5", b" 5", b"5 ", b"5\t", b"", b" ;foo=bar", b"5 ;a", b"9" * 100,
    b"0" * 16 + b"5", b"g", b"5;", b"5;=x", b"5;a=", b"5;a b", b'5;a="open', b"5;a=b=c", b"5,a",
], ids=["underscore", "plus", "minus", "0x", "leading-space", "trailing-space", "trailing-tab",
        "empty", "space-ext", "space-before-ext", "100-digits", "17-digits", "non-hex", "empty-ext",
        "ext-no-name", "ext-empty-value", "ext-space", "ext-open-quote", "ext-double-equals", "comma"])
def test_malformed_chunk_size_line_is_rejected(server, size_line):
    # A9: gunicorn chunked_01/09/10/12/13, rfc9112_chunked_size_{minus,plus}_sign_01;
    # waitress CVE-2022-24761; h11 hex-digit cap
    assert_rejected(server.port, ECHO_CHUNKED + size_line + b"\r\nhello\r\n0\r\n\r\n")


@pytest.mark.parametrize("chunked_body", [
    b"5;a\nb\r\nhello\r\n0\r\n\r\n",
    b"5\n;\r\nhello\r\n0\r\n\r\n",
    b"5;ext=val\rue\r\nhello\r\n0\r\n\r\n",
    b"5\nhello\r\n0\r\n\r\n",
    b"5\rhello\r\n0\r\n\r\n",
    b"5\r\nhello\r\n0\n\r\n",
], ids=["lf-in-ext", "lf-before-ext", "cr-in-ext-value", "lf-after-size", "cr-after-size",
        "lf-after-last-size"])
def test_bare_cr_or_lf_in_chunk_size_line_is_rejected(server, chunked_body):
    # A10: aiohttp CVE-2024-52304; gunicorn PR #3327, chunked_11/14; fasthttp#1899
    assert_rejected(server.port, ECHO_CHUNKED + chunked_body)


@pytest.mark.parametrize("chunked_body", [
    b"3\r\nxxx__1a\r\n" + b"y" * 26 + b"\r\n0\r\n\r\n",
    b"3\r\nxxx\r_1a\r\n" + b"y" * 26 + b"\r\n0\r\n\r\n",
    b"3\r\nxxx_\n1a\r\n" + b"y" * 26 + b"\r\n0\r\n\r\n",
    b"3\r\nxxx\n0\r\n\r\n",
    b"3\r\nxxxx\r\n0\r\n\r\n",
], ids=["two-wrong-bytes", "cr-then-wrong", "wrong-then-lf", "bare-lf", "data-longer-than-size"])
def test_chunk_data_not_followed_by_crlf_is_rejected(server, chunked_body):
    # A11: h11 CVE-2025-43859 (GHSA-vqfr-h8mv-ghfj): each of the two bytes is checked
    assert_rejected(server.port, ECHO_CHUNKED + chunked_body)


@pytest.mark.parametrize("ending", [b"0\r\nXX", b"0\r\n\rX"], ids=["XX", "cr-X"])
def test_bytes_other_than_crlf_after_the_last_chunk_are_rejected(server, ending):
    # A12: bun#29732 (two arbitrary bytes consumed as CRLF); the smuggled follower comes right after
    assert_rejected(server.port, ECHO_CHUNKED + b"5\r\nhello\r\n" + ending)


@pytest.mark.parametrize("ending", [b"0\r\n", b"0\r\n\r", b"0\r\nX-T: a\r\n"],
                         ids=["no-final-crlf", "lone-cr", "unterminated-trailers"])
def test_missing_final_crlf_then_eof_is_never_dispatched(server, ending):
    # A12: gunicorn rfc9112_chunked_missing_final_crlf_01
    before = calls(server.port)
    data, closed = exchange(server.port, ECHO_CHUNKED + b"5\r\nhello\r\n" + ending, shut_wr=True)
    replies, _ = parse_all(data, eof=closed)
    assert closed
    assert [reply.status for reply in replies] in ([], [400]), data[:300]
    assert calls(server.port) == before


@pytest.mark.parametrize("trailers", [
    b"Content-Length: 99\r\n",
    b"content-length: 5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Host: evil\r\n",
    b"Bad Name: x\r\n",
    b"X-T: a\r\n continued\r\n",
    b"X-T: a\nX-U: b\r\n",
    b"X-T: a\x01b\r\n",
    b": novalue\r\n",
], ids=["content-length", "content-length-lower", "transfer-encoding", "host", "bad-name", "obs-fold",
        "bare-lf", "ctl", "empty-name"])
def test_bad_trailers_are_rejected(server, trailers):
    # A13: aiohttp CVE-2025-53643; gunicorn rfc9110_trailer_forbidden_{cl,te,host}_01
    assert_rejected(server.port, ECHO_CHUNKED + b"5\r\nhello\r\n0\r\n" + trailers + b"\r\n")


@pytest.mark.parametrize("body_framing", ["content-length", "chunked"])
def test_unread_body_holding_a_request_is_never_dispatched(server, body_framing):
    # A15: werkzeug dev-server smuggling (unread body parsed as the next request); gunicorn 22.0
    smuggled = b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
    if body_framing == "content-length":
        head = b"POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
        body = smuggled
    else:
        head = b"POST /ignore HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    before = calls(server.port)
    data, closed = exchange(server.port, head + body
                            + b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    replies, rest = parse_all(data, eof=closed)
    assert [(reply.status, reply.body) for reply in replies] == [(200, b"ignored"), (200, b"Hello, World!")]
    assert not rest
    assert calls(server.port) == before + 2


@pytest.mark.parametrize("bad_request", [
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",
], ids=["duplicate-content-length", "bare-lf"])
def test_bad_request_after_a_good_one_in_the_same_write_stops_the_connection(server, bad_request):
    # A15: a framing error mid-pipeline: the request before it is answered, nothing after it is run
    before = calls(server.port)
    data, closed = exchange(server.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" + bad_request + FOLLOWER)
    replies, rest = parse_all(data, eof=closed)
    assert [reply.status for reply in replies] == [200, 400], data[:600]
    assert replies[0].body == b"Hello, World!"
    assert closed and not rest
    assert calls(server.port) == before + 1


# ---- Request line and header block attacks (classes B) ------------------------------------------

@pytest.mark.parametrize("payload", [
    b"GET / HTTP/1.1\nHost: a\n\n",
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nNewline: a\nGET /admin HTTP/1.1\r\n\r\n",
], ids=["all-lf", "request-line-lf", "header-lf", "final-lf", "embedded-request"])
def test_bare_lf_in_the_head_is_rejected(server, payload):
    # B1: waitress CVE-2019-16785; aiohttp test_reject_bare_lf_no_cross_request_leak
    assert_rejected(server.port, payload)


@pytest.mark.parametrize("header", [
    b"X-Abc: \rxTransfer-Encoding: chunked\r\n",
    b"X-Abc: a\r\r\n",
    b"X-Abc: a\rb\r\n",
], ids=["cr-then-te", "cr-before-crlf", "cr-inside"])
def test_bare_cr_in_a_header_value_is_rejected(server, header):
    # B2: aiohttp CVE-2023-37276 (llhttp CVE-2023-30589)
    assert_rejected(server.port, b"GET / HTTP/1.1\r\nHost: a\r\n" + header + b"\r\n")


@pytest.mark.parametrize("header", [
    b"X-Value: plain\x07injected\r\n",
    b"X-Value: a\x7fb\r\n",
    b"X-Value: a\x00b\r\n",
    b"X-Value: a\x1bb\r\n",
    b"X-Value: \x0b\r\n",
    b"ba\x00z: bar\r\n",
    b"X\x01Y: bar\r\n",
    b"X\x7f: bar\r\n",
], ids=["bel", "del", "nul", "esc", "vt", "nul-in-name", "ctl-in-name", "del-in-name"])
def test_control_bytes_in_header_names_or_values_are_rejected(server, header):
    # B3: gunicorn rfc9110_field_value_ctl_{bel,del}_01, 005; fasthttp#1794
    assert_rejected(server.port, b"GET / HTTP/1.1\r\nHost: a\r\n" + header + b"\r\n")


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\r\nHost: a\r\nLong: one\r\n two\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nLong: one\r\n\ttwo\r\n\r\n",
    b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
], ids=["space-fold", "tab-fold", "first-line-folded", "folded-te"])
def test_obs_fold_is_rejected(server, head):
    # B4: gunicorn obs_fold_01; aiohttp test_reject_obsolete_line_folding; waitress 1.4 (folded TE)
    assert_rejected(server.port, head)


@pytest.mark.parametrize("header", [
    b"Content-Length : 3\r\n",
    b"Content-Type : text/plain\r\nContent-Length: 3\r\n",
    b"X-Test\t: 1\r\nContent-Length: 3\r\n",
], ids=["content-length", "content-type", "tab"])
def test_whitespace_before_the_colon_is_rejected(server, header):
    # B5: gunicorn 020; waitress 1.4.0; RFC 9112 §5.1
    assert_rejected(server.port, b"POST /echo HTTP/1.1\r\n" + HOST + header + b"\r\nabc")


@pytest.mark.parametrize("header", [
    b"Content-Encoding?: x\r\n",
    b"Content-Length\xc3\x9f: 3\r\n",
    b": x\r\n",
    b"X Y: z\r\n",
    b'"X": y\r\n',
    b"X(Y): z\r\n",
    b"NoColonHere\r\n",
], ids=["question-mark", "non-ascii", "empty-name", "space-in-name", "quotes", "parens", "no-colon"])
def test_non_token_header_names_are_rejected(server, header):
    # B6: aiohttp CVE-2024-23829; gunicorn nonascii_01-04, 003b/003c
    assert_rejected(server.port, b"GET / HTTP/1.1\r\nHost: a\r\n" + header + b"\r\n")


@pytest.mark.parametrize("method", [
    b"bla:rgh", b"GET\x00PROXY", b"GET:", b"GET\xc3\x9f", b"GE(T", b'G"T', b"GET/", b"",
], ids=["colon", "nul", "trailing-colon", "non-ascii", "paren", "quote", "slash", "empty"])
def test_non_token_methods_are_rejected(server, method):
    # B6: gunicorn prefix_01/02/05
    assert_rejected(server.port, method + b" / HTTP/1.1\r\nHost: a\r\n\r\n")


@pytest.mark.parametrize("method", [b"FOO", b"get", b"PURGE"])
def test_unknown_token_methods_reach_the_router(server, method):
    # Any token is a method: the parser accepts it, the router answers 405 with Allow.
    data, closed = exchange(server.port, method + b" / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    replies, _ = parse_all(data, eof=closed)
    assert replies and replies[0].status == 405, data[:300]
    assert replies[0].header("allow") == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("header, body", [
    (b"Transfer_Encoding: chunked\r\nContent-Length: 7\r\n", b"0\r\n\r\nXY"),
    (b"Content_Length: 3\r\n", b""),
    (b"Content_Length: -1E23\r\n", b""),
], ids=["te-underscore", "cl-underscore", "cl-underscore-garbage"])
def test_underscore_header_names_are_not_framing_headers(server, header, body):
    # B7: gunicorn 040, chunked_07 (header_map): "_" is never read as "-"
    payload = (b"POST /echo HTTP/1.1\r\nHost: a\r\n" + header + b"\r\n" + body
               + b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    data, closed = exchange(server.port, payload)
    replies, rest = parse_all(data, eof=closed)
    assert replies and replies[0].status in (200, 400), data[:300]
    if replies[0].status == 200:          # accepted as an unknown header: framing from Content-Length only
        assert [(reply.status, reply.body) for reply in replies] == [(200, body), (200, b"Hello, World!")]
    else:
        assert len(replies) == 1 and closed
    assert not rest


@pytest.mark.parametrize("request_line", [
    b"GET HTTP/1.1",
    b"GET\n/\nHTTP/1.1",
    b"GET /foo FTP/1.1",
    b"GET / HTTP/111",
    b"GET / HTTP/0.99",
    b"GET / HTTP/1." + b"1" * 90,
    b"GET / HTTP/1.10",
    b"GET / http/1.1",
    b"GET / HTTP/1.1 ",
    b"GET  / HTTP/1.1",
    b"GET /  HTTP/1.1",
    b" GET / HTTP/1.1",
    b"GET\t/\tHTTP/1.1",
    b"GET /a b HTTP/1.1",
    b"GET * HTTP/1.1",
    b"GET example.com:443 HTTP/1.1",
    b"GET foo/bar HTTP/1.1",
    b"GET /\xc3\xa9 HTTP/1.1",
    b"GET /\x00 HTTP/1.1",
    b"GET /a\rb HTTP/1.1",
    b"GET /\x7f HTTP/1.1",
    b"GET /",
], ids=["no-target", "lf-separators", "ftp", "HTTP-111", "HTTP-0.99", "long-version", "HTTP-1.10",
        "lower-case-version", "trailing-space", "double-space-1", "double-space-2", "leading-space",
        "tabs", "space-in-target", "star-with-get", "authority-form", "relative",
        "raw-non-ascii", "nul", "bare-cr", "del", "no-version"])
def test_malformed_request_line_is_400(server, request_line):
    # B8: gunicorn 002/003/004/016/018, version_01/02, prefix_06, rfc9112_target_*;
    # aiohttp CVE-2024-23829; Sanic "URL may only contain US-ASCII"
    assert_rejected(server.port, request_line + b"\r\nHost: a\r\n\r\n")


def test_connect_is_not_implemented_and_closes(server):
    # a tunnel request (authority-form target) to a server that is no proxy: 501, then close
    assert_rejected(server.port, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
                    statuses=(501,))


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/1.2", b"HTTP/0.9", b"HTTP/3.0"])
def test_well_formed_unsupported_version_is_505(server, version):
    # B8: 505 for a well-formed but unsupported version
    assert_rejected(server.port, b"GET / " + version + b"\r\nHost: a\r\n\r\n", statuses=(505,))


def test_absolute_form_target_is_accepted(server):
    data, closed = exchange(server.port, b"GET http://a/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    replies, _ = parse_all(data, eof=closed)
    assert [(reply.status, reply.body) for reply in replies] == [(200, b"Hello, World!")]


def test_asterisk_target_is_accepted_with_options(server):
    # "*" is a valid target for OPTIONS only: the parser accepts it and the connection stays usable.
    with Client(server.port) as client:
        client.send(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        options, after = client.reply(), client.reply()
    assert options.status != 400 and options.status < 500, options
    assert (options.header("connection") or "").lower() != "close"
    assert (after.status, after.body) == (200, b"Hello, World!")


def test_path_whose_percent_decoding_is_not_utf8_is_400(server):
    before = calls(server.port)
    data, closed = exchange(server.port, b"GET /%ff HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    replies, _ = parse_all(data, eof=closed)
    assert replies and replies[0].status == 400, data[:300]
    assert calls(server.port) == before


@pytest.mark.parametrize("hosts", [
    b"",
    b"Host: a\r\nHost: evil.example\r\n",
    b"Host: a\r\nHost: a\r\n",
    b"Host: a/admin?x=\r\n",
    b"Host: a/b\r\n",
    b"Host: a#\r\n",
    b"Host: a?x\r\n",
    b"Host: a b\r\n",
    b"Host: a:port\r\n",
], ids=["missing", "duplicate", "duplicate-same", "path-and-query", "path", "fragment", "query", "space",
        "non-digit-port"])
def test_missing_duplicate_or_invalid_host_is_400(server, hosts):
    # B10: aiohttp CVE-2026-34525; gunicorn 042; Starlette CVE-2026-48710
    assert_rejected(server.port, b"GET / HTTP/1.1\r\n" + hosts + b"\r\n")


@pytest.mark.parametrize("lines", [
    b"Content-Type: text/plain\r\nContent-Type: application/json\r\n",
    b"Content-Type: application/json\r\ncontent-type: application/json\r\n",
], ids=["different", "same"])
def test_several_content_type_lines_are_400_and_nothing_runs(server, lines):
    # like a duplicate Host: two readers could take different types for one body
    body = b'{"a": 1}'
    assert_rejected(server.port, b"POST /echo HTTP/1.1\r\nHost: a\r\n" + lines
                    + b"Content-Length: %d\r\n\r\n" % len(body) + body)


@pytest.mark.parametrize("path", [
    b"/n/" + b"7" * 5000,                     # more digits than int() converts
    b"/n/-" + b"%37" * 1500 + b"7" * 2900,     # the same, partly percent-encoded
    b"/f/" + b"9" * 400,                      # a float that overflows to infinity
    b"/f/-" + b"9" * 400 + b".5",
], ids=["int-digits", "int-digits-encoded", "float-overflow", "float-overflow-negative"])
def test_wildcard_values_that_do_not_convert_are_400_and_the_connection_lives(server, path):
    before = calls(server.port)
    request = b"GET " + path + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    data, closed = exchange(server.port, request + b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                            timeout=5.0)
    replies, _ = parse_all(data, eof=closed)
    assert [reply.status for reply in replies] == [400, 200], data[:300]
    assert calls(server.port) == before + 1      # only GET / ran: the handler never saw it


@pytest.mark.parametrize("host", [b"example.com", b"127.0.0.1:8080", b"[::1]:8080", b"xn--bcher-kva.example"])
def test_valid_host_forms_are_accepted(server, host):
    data, closed = exchange(server.port, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    replies, _ = parse_all(data, eof=closed)
    assert [(reply.status, reply.body) for reply in replies] == [(200, b"Hello, World!")]


@pytest.mark.parametrize("header", [
    b"X-Text: caf\xe9 \xff\r\n",          # obs-text 0x80-0xFF is allowed
    b"X-Tab: a\tb\r\n",
    b"X-Empty:\r\n",
    b"X-Spaces:    padded   \r\n",
    b"X-Punct: !#$%&'*+-.^_`|~\"(),/:;<=>?@[\\]{}\r\n",
], ids=["obs-text", "htab", "empty", "ows", "punctuation"])
def test_legal_unusual_header_values_are_accepted(server, header):
    # The strictness above must not reject what the RFC allows (B3 "allowed bytes").
    data, closed = exchange(server.port, b"GET / HTTP/1.1\r\nHost: a\r\n" + header
                            + b"Connection: close\r\n\r\n")
    replies, _ = parse_all(data, eof=closed)
    assert [(reply.status, reply.body) for reply in replies] == [(200, b"Hello, World!")]


def test_duplicate_content_type_is_rejected_and_closed(server):
    # B11 (gunicorn 041): two Content-Type fields make the body's meaning ambiguous
    data, closed = exchange(server.port, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
                            b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    replies, _ = parse_all(data, eof=closed)
    assert [reply.status for reply in replies] == [400], data[:300]
    assert closed


# ---- Half-closed sockets (F5) -------------------------------------------------------------------

@pytest.mark.parametrize("partial", [
    b"GET / HTTP/1.1\r\nHost: a\r\n",
    b"GET / HT",
    ECHO_CL % 10 + b"abc",
    ECHO_CHUNKED + b"5\r\nhel",
], ids=["mid-head", "mid-request-line", "mid-body", "mid-chunk"])
def test_half_close_mid_request_is_not_dispatched_and_does_not_spin(server, partial):
    # F5: waitress CVE-2024-49769 (busy loop on a half-open socket)
    if not os.path.exists(f"/proc/{server.pid}/stat"):
        pytest.skip("needs Linux /proc to measure the server's CPU time")
    before = calls(server.port)
    with Client(server.port, timeout=3.0) as client:
        client.send(partial)
        client.shutdown_write()
        data, closed = client.read_until_close(3.0)
        cpu_start = cpu_seconds(server.pid)
        time.sleep(1.0)
        cpu_used = cpu_seconds(server.pid) - cpu_start
    replies, _ = parse_all(data, eof=closed)
    assert closed, "the server kept a half-closed connection with an incomplete request"
    assert [reply.status for reply in replies] in ([], [400]), data[:300]
    assert cpu_used < 0.5, f"server used {cpu_used:.2f}s CPU in 1s after a half-close"
    assert calls(server.port) == before


@pytest.mark.parametrize("path", [b"/", b"/async"])
def test_half_close_after_a_complete_request_still_gets_the_response(server, path):
    # F5: the client may stop sending once its request is out; the response must still arrive.
    data, closed = exchange(server.port, b"GET " + path + b" HTTP/1.1\r\nHost: a\r\n\r\n", shut_wr=True)
    replies, rest = parse_all(data, eof=closed)
    assert [reply.status for reply in replies] == [200], data[:300]
    assert closed and not rest
