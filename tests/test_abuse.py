"""Abuse tests against a real server process, and response-side safety on the wire.

Each abuse test attacks a server started from tests/apps/abuse_app.py (limits set through
``run()`` keyword arguments), and ends by checking that the server still answers a normal
request promptly.  Attack ids (F1, A14, C5, ...) are the advisory classes of SECURITY.md.

Bounds are generous on purpose: the tests prove that a limit or a timeout acts (the socket
is closed, the status is refused, the time grows linearly), not how fast this machine is.
Linear-time checks compare n and 10*n.  Every loop is bounded in count and in time.
"""
import re
import resource
import threading
import time
from urllib.parse import urljoin, urlsplit

import pytest

from tests.support import (HAVE_ACCELERATORS, Client, cpu_seconds, raw_exchange, split_reply,
                           status_and_body, status_of)

APP = "tests.apps.abuse_app:app"
REDIRECTING = "tests.apps.abuse_app:redirecting"
GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


# ---- helpers -----------------------------------------------------------------------------------

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+) kB", status.read()).group(1))


def ask(port, path=b"/", timeout=5.0):
    """One ``GET path`` on a fresh connection: ``(status, body, seconds)``."""
    started = time.monotonic()
    data = raw_exchange(port, b"GET " + path + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                        timeout=timeout)
    return (*status_and_body(data), time.monotonic() - started)


def assert_still_serving(server, within=2.0):
    assert server.alive(), server.output()[-2000:]
    status, body, seconds = ask(server.port)
    assert (status, body) == (200, b"ok")
    assert seconds < within, f"a normal request took {seconds:.2f}s after the attack"


def post(port, path, headers, body, timeout=30.0):
    """One request with a body; ``(status, response body, seconds)``."""
    head = b"POST " + path + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + headers + b"\r\n"
    started = time.monotonic()
    data = raw_exchange(port, head + body, timeout=timeout)
    return (*status_and_body(data), time.monotonic() - started)


class LatencyProbe(threading.Thread):
    """Asks ``GET /`` every ``interval`` seconds while an attack runs; keeps the worst time."""

    def __init__(self, port, interval=0.2):
        super().__init__(daemon=True)
        self.port, self.interval = port, interval
        self.stop_event = threading.Event()
        self.results = []

    def run(self):
        while not self.stop_event.is_set():
            self.results.append(ask(self.port, timeout=10.0))
            self.stop_event.wait(self.interval)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop_event.set()
        self.join(15.0)

    def check(self, within):
        assert self.results, "the probe never got an answer"
        assert all((status, body) == (200, b"ok") for status, body, _ in self.results), self.results
        worst = max(seconds for _, _, seconds in self.results)
        assert worst < within, f"a normal client waited {worst:.2f}s during the attack"


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}: cannot open enough sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))   # the server inherits it


# ---- F1: slowloris ----------------------------------------------------------------------------

def test_500_slowloris_sockets_are_dropped_while_normal_clients_are_served(server_factory, parser_mode):
    # F1: microdot#99, Sanic REQUEST_TIMEOUT -- the header deadline is total, not per read
    server = server_factory(APP, pure=parser_mode == "pure", header_timeout=1.0)
    clients = []
    try:
        for _ in range(500):
            client = Client(server.port, timeout=5.0)
            clients.append(client)
            client.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-a: ")
        opened = time.monotonic()
        still_open = set(clients)
        with LatencyProbe(server.port) as probe:
            while still_open and time.monotonic() - opened < 8.0:
                for client in list(still_open):
                    if not client.nudge(b"b"):          # one more byte, every ~0.25 s
                        still_open.discard(client)
                time.sleep(0.25)
            closed_after = time.monotonic() - opened
        assert not still_open, f"{len(still_open)} slowloris sockets still open after 8 s"
        assert closed_after < 5.0, f"the 1 s header deadline took {closed_after:.1f}s to act"
        probe.check(within=2.5)
    finally:
        for client in clients:
            client.close()
    assert_still_serving(server)


# ---- F4: 10,000 idle keep-alive connections ----------------------------------------------------

IDLE_CONNECTIONS = 10_000


def open_idle_connections(port, count, batch=500, deadline=60.0):
    """``count`` connections that each made one request and read its answer, kept open
    (opened ``batch`` at a time, all the batch's requests sent before its answers are read)."""
    clients, started = [], time.monotonic()
    try:
        while len(clients) < count:
            assert time.monotonic() - started < deadline, "opening connections took too long"
            fresh = []
            for _ in range(min(batch, count - len(clients))):
                client = Client(port, timeout=10.0)
                clients.append(client)
                client.send(GET)
                fresh.append(client)
            for client in fresh:
                assert time.monotonic() - started < deadline, "answers took too long"
                reply = client.reply()          # fails if the server closed the connection
                assert reply.status_line.startswith(b"HTTP/1.1 200 ") and reply.body == b"ok", reply
                assert not client.buffer, f"more than one answer to one request: {client.buffer!r}"
    except BaseException:
        for client in clients:
            client.close()
        raise
    return clients


def test_ten_thousand_idle_keep_alive_connections_cost_bounded_memory(server_factory, parser_mode):
    # F4 (uvicorn --limit-concurrency); the issue asks for the memory per connection
    raise_fd_limit(IDLE_CONNECTIONS + 1000)      # per process: the test and the server
    server = server_factory(APP, pure=parser_mode == "pure", keepalive_timeout=120.0,
                            header_timeout=120.0)
    for _ in range(20):                             # warm up allocations and code paths
        assert ask(server.port)[0] == 200
    before = rss_kib(server.pid)
    clients = open_idle_connections(server.port, IDLE_CONNECTIONS)
    try:
        time.sleep(0.5)
        after = rss_kib(server.pid)
        per_connection = (after - before) * 1024 / IDLE_CONNECTIONS
        print(f"\n[{parser_mode}] server RSS {before} KiB -> {after} KiB with {IDLE_CONNECTIONS} "
              f"idle keep-alive connections: {per_connection:.0f} bytes per connection")
        assert per_connection < 64 * 1024
        status, body, seconds = ask(server.port)
        assert (status, body) == (200, b"ok") and seconds < 2.0, seconds
        assert sum(client.closed_now() for client in clients) == 0   # idle, not dropped
    finally:
        for client in clients:
            client.close()
    assert_still_serving(server)


# ---- A16: pipelining without reading ----------------------------------------------------------

def test_client_pipelining_thousands_of_requests_without_reading(server_factory, parser_mode):
    # A16: aiohttp CVE-2026-54273 -- the server must stop reading, not buffer every answer
    server = server_factory(APP, pure=parser_mode == "pure")
    before = rss_kib(server.pid)
    flood = Client(server.port, rcvbuf=4096)
    # 1,000,000 requests (31 MB) for 4 MiB answers: far more than kernel buffers hold
    requests = b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n" * 1_000_000
    try:
        with LatencyProbe(server.port) as probe:
            sent = flood.push(requests, seconds=4.0)
        growth_mib = (rss_kib(server.pid) - before) / 1024
        print(f"\n[{parser_mode}] {sent // 30} pipelined requests written; server RSS grew {growth_mib:.0f} MiB")
        assert sent < len(requests), "the server read every request of a client that never reads"
        assert growth_mib < 256, f"server memory grew {growth_mib:.0f} MiB"
        probe.check(within=2.0)
    finally:
        flood.close()
    assert_still_serving(server)


# ---- F5: half-closed sockets ----------------------------------------------------------------

@pytest.mark.parametrize("sent, expected", [
    (GET, (200,)),                                                           # whole request
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-a: b", (None, 400)),                   # head cut short
    (b"POST /drain HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", (400,)),  # body cut short
], ids=["after-request", "mid-head", "mid-body"])
def test_half_closed_sockets_are_answered_and_released_without_spinning(server_factory, parser_mode,
                                                                        sent, expected):
    # F5: waitress CVE-2024-49769 (busy loop on a half-open socket)
    server = server_factory(APP, pure=parser_mode == "pure", header_timeout=30.0, body_timeout=30.0)
    clients = []
    try:
        for _ in range(200):
            client = Client(server.port, timeout=5.0)
            client.send(sent)
            client.shutdown_write()
            clients.append(client)
        cpu_before, started = cpu_seconds(server.pid), time.monotonic()
        for client in clients:                     # each is answered (or not) and closed
            data, closed = client.read_until_close()
            assert closed and not client.was_reset, "a half-closed socket was not closed"
            assert status_of(data) in expected, data[:200]
        assert time.monotonic() - started < 5.0, "half-closed sockets waited for a timeout"
        time.sleep(1.0)
        cpu_used = cpu_seconds(server.pid) - cpu_before
        assert cpu_used < 0.8, f"the server burnt {cpu_used:.2f}s of CPU after the half-closes"
    finally:
        for client in clients:
            client.close()
    assert_still_serving(server)


def test_reset_during_a_large_response_does_not_disturb_the_server(server_factory, parser_mode):
    # F5: RST while the server is writing 4 MiB
    server = server_factory(APP, pure=parser_mode == "pure")
    for _ in range(50):
        client = Client(server.port, timeout=5.0)
        client.send(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        client.read_some()
        client.reset()                              # abortive close: RST
    assert_still_serving(server)


# ---- F3: a body trickled at 1 byte per second ---------------------------------------------------

def test_body_trickled_at_one_byte_per_second_hits_the_body_timeout(server_factory, parser_mode):
    # F3: slow POST
    server = server_factory(APP, pure=parser_mode == "pure", body_timeout=1.5)
    with Client(server.port, timeout=5.0) as client:
        client.send(b"POST /drain HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
        started, closed_after = time.monotonic(), None
        while closed_after is None and time.monotonic() - started < 8.0:
            if not client.nudge(b"x") or client.closed_within(1.0):     # 1 byte per second
                closed_after = time.monotonic() - started
        data = client.buffer
    assert closed_after is not None, "a body trickled at 1 B/s was still being read after 8 s"
    assert closed_after < 4.5, f"the 1.5 s body deadline took {closed_after:.1f}s"
    assert status_of(data) in (None, 408), data[:200]
    assert_still_serving(server)


# ---- A14: 250,000 one-byte chunks ---------------------------------------------------------------

def chunked_upload(port, count):
    body = b"1\r\nx\r\n" * count + b"0\r\n\r\n"
    return post(port, b"/drain", b"Transfer-Encoding: chunked\r\n", body, timeout=60.0)


def test_250000_one_byte_chunks_are_decoded_in_linear_time_without_stalling_others(server_factory, parser_mode):
    # A14: aiohttp CVE-2025-69229 (O(n^2) chunk list); "ChunkLoris" (per-chunk CPU cost)
    server = server_factory(APP, pure=parser_mode == "pure")
    chunked_upload(server.port, 2_500)                         # warm-up
    small = min(chunked_upload(server.port, 25_000)[2] for _ in range(2))
    with LatencyProbe(server.port, interval=0.05) as probe:
        status, body, large = chunked_upload(server.port, 250_000)
    assert (status, body) == (200, b"250000")
    print(f"\n[{parser_mode}] 25,000 chunks {small:.2f}s; 250,000 chunks {large:.2f}s")
    assert large < 30 * small, f"25k chunks {small:.2f}s, 250k chunks {large:.2f}s: not linear"
    probe.check(within=2.5)
    assert_still_serving(server)


# ---- H3: 100,000 query parameters -------------------------------------------------------------

def test_100000_query_parameters_are_refused_fast(server_factory, parser_mode):
    # H3: CPython parse_qsl(max_num_fields); the request line limit is raised so that the
    # parameter limit (1000) is what refuses the request
    server = server_factory(APP, pure=parser_mode == "pure", max_request_line=1 << 20)

    def timed(count):
        best = None
        for _ in range(2):
            status, _, seconds = ask(server.port, b"/query?" + b"&".join([b"a=1"] * count))
            assert status == 400
            best = seconds if best is None else min(best, seconds)
        return best
    assert ask(server.port, b"/query?" + b"&".join([b"a=1"] * 1000))[:2] == (200, b"1000")
    small, large = timed(10_000), timed(100_000)
    assert large < 30 * small, f"10k params {small:.3f}s, 100k params {large:.3f}s"
    assert_still_serving(server)


def test_100000_form_fields_are_refused_with_413(server_factory, parser_mode):
    # H3 for urlencoded bodies
    server = server_factory(APP, pure=parser_mode == "pure")
    body = b"&".join([b"a=1"] * 100_000)
    status, _, _ = post(server.port, b"/form", b"Content-Type: application/x-www-form-urlencoded\r\n"
                        b"Content-Length: %d\r\n" % len(body), body)
    assert status == 413
    assert_still_serving(server)


# ---- G2: a 20,000-backslash cookie --------------------------------------------------------------

def test_20000_backslash_cookie_is_unquoted_in_linear_time(server_factory, parser_mode):
    # G2: CPython CVE-2024-7592, tornado CVE-2024-52804 (quadratic backslash unquoting)
    server = server_factory(APP, pure=parser_mode == "pure", max_header_bytes=1 << 20)

    def timed(backslashes):
        best = None
        for _ in range(3):
            started = time.monotonic()
            data = raw_exchange(server.port, b'GET /cookie HTTP/1.1\r\nHost: a\r\nConnection: close\r\n'
                                b'Cookie: a="' + b"\\" * backslashes + b'"\r\n\r\n', timeout=30.0)
            seconds = time.monotonic() - started
            assert status_and_body(data) == (200, b"%d" % (backslashes // 2))
            best = seconds if best is None else min(best, seconds)
        return best
    small, large = timed(20_000), timed(200_000)
    assert large < 30 * small, f"20k backslashes {small:.3f}s, 200k {large:.3f}s"
    assert_still_serving(server)


# ---- E11: JSON nested 100,000 deep --------------------------------------------------------------

@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                                  b"[" * 100_000], ids=["arrays", "objects", "unclosed"])
def test_json_nested_100000_deep_is_refused_with_400(server_factory, parser_mode, body):
    # E11: bottle MEMFILE_MAX / RecursionError in the JSON parser
    server = server_factory(APP, pure=parser_mode == "pure")
    status, reply, seconds = post(server.port, b"/json", b"Content-Type: application/json\r\n"
                                  b"Content-Length: %d\r\n" % len(body), body)
    assert status == 400, reply[:200]
    assert seconds < 5.0
    assert_still_serving(server)


# ---- Response-side safety on the wire (4-C, D11) ------------------------------------------------

CONTROL_INJECTIONS = ["%0d%0aSet-Cookie:%20pwned=1", "%0aSet-Cookie:%20pwned=1",
                      "%0dSet-Cookie:%20pwned=1", "a%00b", "a%1b[31m", "a%7f", "a%0bb"]
# Not control characters, but must not become one on the wire: U+0085 (NEL) and U+010D U+010A,
# whose low bytes are CR LF (the "Unicode response splitting" of servers that truncate to 8 bits)
UNICODE_INJECTIONS = ["a%c2%85Set-Cookie:%20pwned=1", "%c4%8d%c4%8aSet-Cookie:%20pwned=1"]
INJECTIONS = CONTROL_INJECTIONS + UNICODE_INJECTIONS


MODE = "accelerated" if HAVE_ACCELERATORS else "pure"


@pytest.fixture
def injection_server(shared_server):
    return shared_server(APP, MODE)


@pytest.fixture
def redirecting_server(shared_server):
    return shared_server(REDIRECTING, MODE)


@pytest.mark.parametrize("injection", INJECTIONS)
@pytest.mark.parametrize("path", ["/header?v=", "/redirect?to=/", "/redirect-response?to=/",
                                  "/error-header?v=", "/tuple-header?v=", "/cookie-set?value=",
                                  "/cookie-set?value=x&path=/", "/cookie-set?value=x&domain=d",
                                  "/header-name?n=X"])
def test_request_data_cannot_inject_into_response_headers(injection_server, path, injection):
    # C1: bottle CVE-2016-9964, uvicorn CVE-2020-7695, gunicorn CVE-2018-1000164;
    # C3: microdot 2.6.1/2.6.2 cookies; C6: header names
    data = raw_exchange(injection_server.port, f"GET {path}{injection} HTTP/1.1\r\nHost: a\r\n"
                        "Connection: close\r\n\r\n".encode())
    assert status_of(data) in (200, 303, 400, 500), data[:300]
    head = split_reply(data).head
    lines = head.split(b"\r\n")
    assert all(re.fullmatch(rb"[\x20-\x7e\x80-\xff]*", line) for line in lines), head
    assert all(re.fullmatch(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+: .*", line) for line in lines[1:]), head
    assert not any(line.lower().startswith(b"set-cookie: pwned") for line in lines), head
    assert not re.search(rb"[\r\n]", head.replace(b"\r\n", b"")), head    # no bare CR or LF
    if injection in CONTROL_INJECTIONS:          # refused where it was set: a 500
        assert status_of(data) == 500


@pytest.mark.parametrize("status", ["1000", "99", "0", "-1", "12345"])
def test_status_from_request_data_cannot_break_the_status_line(injection_server, status):
    # C2: the status line is "HTTP/1.1 <3 digits> <reason>"
    data = raw_exchange(injection_server.port, f"GET /status?s={status} HTTP/1.1\r\nHost: a\r\n"
                        "Connection: close\r\n\r\n".encode())
    status_line = data.split(b"\r\n", 1)[0]
    assert re.fullmatch(rb"HTTP/1\.1 [1-9][0-9][0-9] [\x20-\x7e]+", status_line), status_line


@pytest.mark.parametrize("name, expected", [
    ("evil%0d%0aX-Injected:%201.txt", None),
    ('a%22b%5c.txt', None),
    ("%c3%a9t%c3%a9%0a.pdf", "filename*=UTF-8''%C3%A9t%C3%A9%0A.pdf"),
])
def test_download_name_from_request_data_cannot_break_content_disposition(injection_server, name, expected):
    # C4: aiohttp CVE-2026-34514 / CVE-2026-50269
    data = raw_exchange(injection_server.port, f"GET /download?name={name} HTTP/1.1\r\nHost: a\r\n"
                        "Connection: close\r\n\r\n".encode())
    assert status_of(data) == 200, data[:300]
    lines = split_reply(data).head.split(b"\r\n")
    dispositions = [line for line in lines if line.lower().startswith(b"content-disposition:")]
    assert len(dispositions) == 1 and not any(line.lower().startswith(b"x-injected") for line in lines)
    value = dispositions[0].split(b": ", 1)[1].decode("latin-1")
    assert re.fullmatch(r'attachment; filename="[\x20\x21\x23-\x5b\x5d-\x7e]*"'
                        r"(; filename\*=UTF-8''[A-Za-z0-9%._~-]*)?", value), value
    if expected:
        assert value.endswith(expected)
    assert data.endswith(b"report\n")


@pytest.mark.parametrize("target", [b"//evil.example", b"///evil.example", b"//evil.example/%2e%2e",
                                    b"/\\evil.example", b"/\\/evil.example", b"//evil.example?x=1",
                                    b"http://a//evil.example", b"/%2fevil.example"])
def test_redirect_slashes_never_redirects_to_another_host(redirecting_server, target):
    # D11: CPython CVE-2021-28861, tornado CVE-2023-28370, aiohttp GHSA-v6wp-4m6f-gcjg
    server = redirecting_server
    data = raw_exchange(server.port, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    status = status_of(data)
    assert status in (308, 400, 404), data[:300]
    if status == 308:
        location = re.search(rb"\r\nLocation: ([^\r\n]*)", data).group(1).decode()
        assert re.match(r"/(?![/\\])", location), location
        resolved = urlsplit(urljoin("http://a/x/y", location))
        assert (resolved.scheme, resolved.netloc) == ("http", "a"), location
        follow = raw_exchange(server.port, f"GET {location} HTTP/1.1\r\nHost: a\r\n"
                              "Connection: close\r\n\r\n".encode())
        assert status_of(follow) == 200                  # and the redirect leads somewhere real


FORGERIES = [
    b"/echo?q=%0d%0a127.0.0.1%20-%20-%20[x]%20%22GET%20/admin%22%20200",   # CRLF in the query
    b"/echo?q=%0a%1b[2J",                                                  # LF, ESC
    b"/echo?q=\\x1b\\n",                                                   # escapes, spelled out
    b"/echo/%1b[31mred%0aFAKE%20LOG%20LINE",                               # refused: 400
    b"/%c2%85FAKE",                                                        # NEL (C1) in the path
    b"/%e2%80%a8FAKE",                                                     # U+2028 in the path
    b"/boom/%c2%9b31m%e2%80%a8FAKE",                                       # CSI, U+2028: a 500
]


def test_log_lines_cannot_be_forged_from_request_data(server_factory, parser_mode):
    # C5: uvicorn log injection (CVE-2020-7694); CWE-117 -- one line per request, no raw
    # control characters (C0 or C1) or Unicode line separators from the request
    server = server_factory(APP, pure=parser_mode == "pure", access_log=True)
    statuses = []
    for target in FORGERIES:
        data = raw_exchange(server.port, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        statuses.append(status_of(data))
    assert statuses == [200, 200, 200, 400, 404, 404, 500]
    assert_still_serving(server)
    output = server.stop()
    access_lines = [line for line in output.split("\n") if re.search(r'" \d{3} \d+ ', line)]
    # one line per dispatched request (a request refused by the parser may or may not be logged)
    assert len(FORGERIES) <= len(access_lines) <= len(FORGERIES) + 1, output
    for line in output.split("\n"):
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]", line), repr(line)
        assert not line.lstrip().startswith(("FAKE", "127.0.0.1 - - [x]")), repr(line)
    assert len(output.splitlines()) == len(output.split("\n")) - output.endswith("\n"), \
        "a log line contains a character that line splitters treat as a line break"
