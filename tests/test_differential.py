"""Differential tests: the pure-Python and the httptools (llhttp) request-head paths must
accept and refuse exactly the same bytes, with the same parsed result or the same error.

aiohttp's threat model lists "C parser <-> pure-Python divergence" as a risk of its own:
CVE-2023-47641, CVE-2023-47627, CVE-2024-23829, CVE-2024-52304 and CVE-2025-53643 were all
in one of its two parsers only (the DIV class of SECURITY.md).  Here both paths are fed the same
generated heads -- valid pieces mixed with the mutations those advisories used -- in
process through ``pixie_web.parse_request_head``, and whole requests (head and body) are fed
to two real servers, one per path, whose answers must be byte-identical (Date aside).

Where llhttp itself refuses a header section, both pixie_web paths must refuse it too
("the stricter behaviour wins on both paths").
"""
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import pixie_web
from tests.support import (HAVE_ACCELERATORS, Client, RandomPicker, chunked_bodies, request_head,
                           request_heads)

try:
    import httptools
except ImportError:          # pragma: no cover - depends on the environment
    httptools = None

needs_httptools = pytest.mark.skipif(httptools is None,
                                     reason="httptools not installed: no second parser to compare")

MAX_REQUEST_LINE = 8190
MAX_HEADER_COUNT = 100

# ---- In-process: parse_request_head on both paths -------------------------------------------

def parse(head, parse_lines):
    """What a path makes of a head: the parsed fields, or the refusal (status, message)."""
    try:
        result = pixie_web.parse_request_head(head, MAX_REQUEST_LINE, MAX_HEADER_COUNT, parse_lines)
    except pixie_web.ProtocolError as error:
        return ("refused", error.status, error.message)
    return ("accepted", result.method, result.raw_target, result.http_version,
            list(result.header_pairs), result.content_length, result.chunked, result.keep_alive,
            result.expect_continue, result.host)


def both(head):
    pure = parse(head, pixie_web._parse_header_lines_pure)
    accelerated = parse(head, pixie_web._parse_header_lines_httptools)
    return pure, accelerated


KNOWN_ATTACK_HEADS = {
    # id: (head, expected status) -- the ids of SECURITY.md's advisory classes
    "A1-cl-and-te": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked", 400),
    "A2-two-cl": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 2", 400),
    "A3-cl-list": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5", 400),
    "A4-cl-plus": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1", 400),
    "A4-cl-underscore": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0_1", 400),
    "A4-cl-arabic-indic": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \xd9\xa1", 400),
    "A5-cl-5000-digits": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"9" * 5000, 400),
    "A6-xchunked": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked", 501),
    "A6-chunked-identity": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity", 501),
    "A6-te-twice": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked", 501),
    "A7-trailing-comma": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,", 400),
    "A7-cr-in-te": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \rchunked", 400),
    "A7-space-before-colon": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked", 400),
    "A7-vt-after-te": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x0b", 400),
    "A8-te-in-http10": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked", 400),
    "B1-bare-lf": (b"GET / HTTP/1.1\nHost: a", 400),
    "B2-bare-cr-in-value": (b"GET / HTTP/1.1\r\nHost: a\r\nX-Abc: \rxTransfer-Encoding: chunked", 400),
    "B3-bel-in-value": (b"GET / HTTP/1.1\r\nHost: a\r\nX-Value: plain\x07injected", 400),
    "B3-nul-in-name": (b"GET / HTTP/1.1\r\nHost: a\r\nba\x00z: bar", 400),
    "B4-obs-fold": (b"GET / HTTP/1.1\r\nHost: a\r\nLong: one\r\n two", 400),
    "B6-non-token-name": (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Encoding?: x", 400),
    "B6-empty-name": (b"GET / HTTP/1.1\r\nHost: a\r\n: x", 400),
    "B6-non-ascii-name": (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length\xc3\x9f: 3", 400),
    "B8-http2": (b"GET / HTTP/2.0\r\nHost: a", 505),
    "B8-math-digit-version": (b"GET / HTTP/1.\xf0\x9d\x9f\x99\r\nHost: a", 400),
    "B10-two-hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: evil.example", 400),
    "B10-two-content-types": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\ncontent-type: c/d", 400),
    "B10-host-with-path": (b"GET / HTTP/1.1\r\nHost: a/admin?x=", 400),
    "B10-no-host": (b"GET / HTTP/1.1\r\nX: y", 400),
    "B12-expect-other": (b"POST / HTTP/1.1\r\nHost: a\r\nExpect: foo", 417),
}


@needs_httptools
@pytest.mark.parametrize("name", sorted(KNOWN_ATTACK_HEADS))
def test_known_attack_heads_are_refused_identically_by_both_paths(name):
    head, status = KNOWN_ATTACK_HEADS[name]
    pure, accelerated = both(head)
    assert pure == accelerated
    assert pure[:2] == ("refused", status)


@needs_httptools
def test_underscore_header_names_are_ordinary_headers_on_both_paths():
    # B7: gunicorn 040 / chunked_07 -- never map "_" to "-"
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent_Length: -1E23"
    pure, accelerated = both(head)
    assert pure == accelerated
    assert pure[0] == "accepted"
    assert (pure[5], pure[6]) == (None, False)      # no Content-Length, not chunked


@needs_httptools
@settings(max_examples=400, deadline=None)
@given(request_heads())
@example(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked")
@example(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: upgrade\r\nContent-Length: 5")
@example(b"GET / HTTP/1.1\r\nHost: a\r\nX:\t\tv\t")
def test_pure_and_httptools_paths_agree_on_generated_heads(head):
    pure, accelerated = both(head)
    assert pure == accelerated


@needs_httptools
@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=8))
def test_pure_and_httptools_paths_agree_on_arbitrary_header_bytes(lines):
    head = b"\r\n".join([b"GET / HTTP/1.1", b"Host: a"] + lines)
    pure, accelerated = both(head)
    assert pure == accelerated


def _llhttp_refuses(lines):
    """Does llhttp itself refuse these header lines (behind a request line it knows)?

    Trailing spaces and tabs are dropped first: they are legal OWS that pixie_web strips
    (and that some llhttp versions refuse after some field values).
    """
    parser = httptools.HttpRequestParser(object())
    try:
        parser.feed_data(b"GET / HTTP/1.1\r\n"
                         + b"".join(line.rstrip(b" \t") + b"\r\n" for line in lines) + b"\r\n")
    except httptools.HttpParserUpgrade:
        return False
    except httptools.HttpParserError:
        return True
    return False


def _check_llhttp_refusal_wins(head):
    lines = head.split(b"\r\n")
    if not (lines[0].endswith(b"HTTP/1.1") and pixie_web._REQUEST_LINE_RE.fullmatch(lines[0])):
        return False
    if b"\n" in b"".join(lines) or b"\r" in b"".join(lines) or not _llhttp_refuses(lines[1:]):
        return False
    pure, accelerated = both(head)
    assert pure[0] == accelerated[0] == "refused", (head, pure, accelerated)
    return True


@needs_httptools
@settings(max_examples=300, deadline=None)
@given(request_heads(valid_request_line_weight=1000))
def test_a_header_section_llhttp_refuses_is_refused_by_both_paths(head):
    # "Where they cannot agree, the stricter behaviour wins on both paths."
    _check_llhttp_refusal_wins(head)


BULK_HEADS = 50_000


@needs_httptools
def test_pure_and_httptools_paths_agree_on_a_bulk_random_corpus():
    # The same grammar drawn from a seeded generator: many more inputs per second than
    # hypothesis can produce (the hypothesis tests above shrink what they find).
    pick = RandomPicker(20240611)
    outcomes = {"accepted": 0, "refused": 0}
    llhttp_refusals = 0
    for _ in range(BULK_HEADS):
        head = request_head(pick, valid_request_line_weight=pick.choice([1, 4, 1000]))
        pure, accelerated = both(head)
        assert pure == accelerated, head
        outcomes[pure[0]] += 1
        llhttp_refusals += _check_llhttp_refusal_wins(head)
    # the corpus exercises both outcomes and llhttp's own refusals, not one side only
    assert min(outcomes.values()) > BULK_HEADS // 20, outcomes
    assert llhttp_refusals > 100


# ---- On the wire: the same requests to a pure server and an accelerated one -----------------

APP = "tests.apps.abuse_app:app"
FOLLOWER = b"GET /echo?follower HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
WIRE_LIMITS = dict(header_timeout=0.4, body_timeout=0.4, keepalive_timeout=0.4,
                   max_body_size=4096)


@pytest.fixture(scope="module")
def server_pair(shared_server):
    """The abuse app with short limits, on the pure path and on the accelerated one."""
    if not HAVE_ACCELERATORS:
        pytest.skip("uvloop/httptools not installed: no accelerated server to compare")
    return [shared_server(APP, mode, **WIRE_LIMITS) for mode in ("pure", "accelerated")]


def wire_exchange(port, payload):
    """Send ``payload`` in one write and read until the server closes (3 s at most)."""
    with Client(port, timeout=3.0) as client:
        client.send(payload)
        data, closed = client.read_until_close()
    ending = b"" if closed and not client.was_reset else b"<no close>"
    return re.sub(rb"\r\nDate: [^\r\n]*", b"", data + ending)


@st.composite
def wire_requests(draw):
    if draw(st.booleans()):             # a clean head, so that bodies get decoded and compared
        head = draw(st.sampled_from([b"POST /echo HTTP/1.1\r\nHost: a", b"PUT /echo?x=1 HTTP/1.1\r\nHost: a",
                                     b"POST /echo HTTP/1.0", b"FOO /echo HTTP/1.1\r\nHost: a"]))
        head += b"".join(draw(st.lists(st.sampled_from([
            b"\r\nX-A: 1", b"\r\nConnection: keep-alive", b"\r\nExpect: 100-continue",
            b"\r\nCookie: a=1", b"\r\nContent-Type: text/plain"]), max_size=3)))
    else:
        head = draw(request_heads(valid_request_line_weight=8))
    body = b""
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    if framing == "length":
        payload = draw(st.binary(max_size=30))
        head += b"\r\nContent-Length: %d" % len(payload)
        body = payload
    elif framing == "chunked":
        head += b"\r\nTransfer-Encoding: chunked"
        body = draw(chunked_bodies())
    return head + b"\r\n\r\n" + body + FOLLOWER


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wire_requests())
@example(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"3\r\nxxx__1a\r\n0\r\n\r\n" + FOLLOWER)                                  # A11
@example(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
         + FOLLOWER)                                                            # A2
@example(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"5;a\nb\r\nhello\r\n0\r\n\r\n" + FOLLOWER)                                   # A10
@example(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"2\r\nhi\r\n0\r\nX-T: a\r\n\r\n" + FOLLOWER)                                 # A13 legal
def test_pure_and_accelerated_servers_answer_identically(server_pair, payload):
    pure_server, accelerated_server = server_pair
    pure = wire_exchange(pure_server.port, payload)
    accelerated = wire_exchange(accelerated_server.port, payload)
    assert pure == accelerated
    assert b"HTTP/1.1 500 " not in pure
    assert pure_server.alive() and accelerated_server.alive()
