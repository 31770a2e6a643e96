"""Protocol odds and ends the main HTTP/1.1 tests leave out, on both parser paths.

- A request with more than one Content-Type field is refused with 400 whatever its framing
  (no body, Content-Length, chunked, HTTP/1.0), every time it is sent, and also when it comes
  second on a keep-alive connection; no handler runs for it.
- CONNECT with an authority-form target gets 501 and the connection closes, also when it
  follows a served request on the same connection.
- Wildcard values that do not convert (too many digits for an int, a float that overflows)
  are 400 without closing a keep-alive connection; the requests after them are served.

Raw sockets against tests/apps/protocol_app.py, whose ``GET /count`` says how many other
handlers have run, so a test can prove that a refused request reached none.
"""
import re
import time

import pytest

from tests.support import PROTOCOL_APP, calls, raw_exchange, status_of

TIMEOUT = 5.0          # seconds raw_exchange waits for more bytes when the server keeps it open
MAX_REQUEST_LINE = 32768
GOOD = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
GOOD_LAST = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def servers(shared_server):
    # a long request line, so 5,000 digits fit even when every one is percent-encoded
    return lambda mode: shared_server(PROTOCOL_APP, mode, max_request_line=MAX_REQUEST_LINE)


@pytest.fixture
def server(servers, parser_mode):
    return servers(parser_mode)


def statuses(answer):
    """The status codes of the responses in ``answer``, in order (the protocol app's bodies
    never contain a status line)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)]


def exchange_until_closed(port, payload):
    """Send ``payload``; return the answer and whether the server closed the connection
    (rather than leaving it open until the TIMEOUT)."""
    started = time.monotonic()
    answer = raw_exchange(port, payload, timeout=TIMEOUT)
    return answer, time.monotonic() - started < TIMEOUT * 0.8


TWO_CONTENT_TYPES = {
    "get-no-body": b"GET / HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
                   b"Content-Type: text/plain\r\n\r\n",
    "apart-and-upper-case": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\n"
                            b"Content-Length: 2\r\nCONTENT-TYPE: a/b\r\n\r\nok",
    "chunked": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
               b"Transfer-Encoding: chunked\r\ncontent-type: application/json\r\n\r\n"
               b"2\r\nok\r\n0\r\n\r\n",
    "http-1.0": b"POST /echo HTTP/1.0\r\nContent-Type: application/json\r\nContent-Type:\r\n"
                b"Content-Length: 2\r\n\r\nok",
}


@pytest.mark.parametrize("request_bytes", TWO_CONTENT_TYPES.values(), ids=TWO_CONTENT_TYPES.keys())
def test_two_content_type_fields_are_400_whatever_the_framing_every_time(server, request_bytes):
    before = calls(server.port)
    for _ in range(2):           # the second time the same header section may come from a cache
        answer, closed = exchange_until_closed(server.port, request_bytes)
        assert statuses(answer) == [400], answer[:300]
        assert closed, "the connection stayed open after a refused request"
    assert calls(server.port) == before


def test_two_content_type_fields_after_a_served_request_on_the_same_connection(server):
    before = calls(server.port)
    answer, closed = exchange_until_closed(server.port, GOOD + TWO_CONTENT_TYPES["get-no-body"]
                                           + GOOD_LAST)
    assert statuses(answer) == [200, 400], answer[:600]
    assert closed
    assert calls(server.port) == before + 1           # only the first GET / ran


def test_connect_after_a_served_request_is_501_and_closes(server):
    before = calls(server.port)
    answer, closed = exchange_until_closed(
        server.port, GOOD + b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        + GOOD_LAST)
    assert statuses(answer) == [200, 501], answer[:600]
    assert closed, "the connection stayed open after CONNECT"
    assert calls(server.port) == before + 1
    assert status_of(raw_exchange(server.port, GOOD_LAST)) == 200      # and it still serves


@pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/1.1"])
def test_connect_with_a_body_is_501_and_the_body_is_never_read_as_a_request(server, version):
    before = calls(server.port)
    answer, closed = exchange_until_closed(
        server.port, b"CONNECT example.com:443 " + version + b"\r\nHost: example.com:443\r\n"
        b"Content-Length: %d\r\n\r\n" % len(GOOD) + GOOD)
    assert statuses(answer) == [501], answer[:600]
    assert closed
    assert calls(server.port) == before


def test_wildcard_values_that_do_not_convert_leave_the_connection_serving(server):
    before = calls(server.port)
    answer, closed = exchange_until_closed(
        server.port, GOOD
        + b"GET /n/" + b"5" * 5000 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
        + b"GET /n/" + b"%35" * 5000 + b" HTTP/1.1\r\nHost: a\r\n\r\n"      # the same, encoded
        + b"GET /f/" + b"9" * 400 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
        + b"GET /f/" + b"9" * 400 + b".0 HTTP/1.1\r\nHost: a\r\n\r\n"
        + GOOD_LAST)
    assert statuses(answer) == [200, 400, 400, 400, 400, 200], answer[:900]
    assert closed                        # by the last request's Connection: close
    assert calls(server.port) == before + 2       # the two GET /: no wildcard handler ran
    assert b"inf" not in answer
