"""The dispatcher and the process pool: pool routes, their snapshots, timeouts, crashes, streams.

Most tests run the app of ``tests/apps/pool_app.py`` in a real server process
with ``workers=2``; a few go through ``TestClient``.  Process trees are read
from ``/proc`` (no psutil).  Every process a server started is killed by pid when
the server is stopped (at the end of its test, or of the session for the shared one), so
a hung pool worker cannot outlive it.
"""
import concurrent.futures
import hashlib
import json
import os
import signal
import time
from collections import namedtuple
from urllib.parse import quote

import pytest
import requests

from pixie_web import App, RouteType, TestClient
from tests.apps import pool_app
from tests.support import (HAVE_ACCELERATORS, Client, dechunk, descendants_of, kill_all, proc_stat,
                           split_reply, survivors)

POOL_APP = "tests.apps.pool_app:app"
# Tests that are not about the parser run once, on the accelerated path when it is installed.
DEFAULT_PURE = not HAVE_ACCELERATORS
REQUEST_TIMEOUT = 15.0

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"),
                                reason="needs /proc to inspect the server's process tree")


# ---- process-tree helpers ----------------------------------------------------------------------

def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    assert predicate(), message


# ---- fixtures ----------------------------------------------------------------------------------

@pytest.fixture
def start_server(server_factory):
    """A pool_app server of the test's own (server_factory, which stops it by pid with every
    process it started, a hung pool worker included)."""
    def start(target=POOL_APP, pure=DEFAULT_PURE, **run_kwargs):
        return server_factory(target, pure=pure, **run_kwargs)
    return start


@pytest.fixture
def pool_server(shared_server):
    """The long-lived pool_app server (workers=2) of a parser mode, for tests that leave it intact."""
    return lambda mode: shared_server(POOL_APP, mode, workers=2)


@pytest.fixture
def wire(pool_server, parser_mode):
    return pool_server(parser_mode)


@pytest.fixture
def default_server(pool_server):
    return pool_server("pure" if DEFAULT_PURE else "accelerated")


@pytest.fixture(scope="module")
def test_client():
    with TestClient(pool_app.app) as client:
        yield client


Result = namedtuple("Result", "status headers body")


@pytest.fixture(params=["pure", "accelerated", "testclient"])
def call(request, pool_server):
    """call(method, path, **kw) -> Result, over the wire (both parsers) or through TestClient."""
    if request.param == "testclient":
        client = request.getfixturevalue("test_client")

        def via_client(method, path, **kw):
            response = client.request(method, path, **kw)
            return Result(response.status, response.headers, response.body)

        return via_client
    server = pool_server(request.param)

    def via_wire(method, path, **kw):
        response = requests.request(method, server.url + path, timeout=REQUEST_TIMEOUT,
                                    allow_redirects=False, **kw)
        return Result(response.status_code, response.headers, response.content)

    return via_wire


def get_json(server, path, **kw):
    response = requests.get(server.url + path, timeout=REQUEST_TIMEOUT, **kw)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return response.json()


def warm_pool(server, count=2):
    """Make sure the (possibly lazily started) pool has answered ``count`` concurrent requests."""
    with concurrent.futures.ThreadPoolExecutor(count) as executor:
        results = list(executor.map(lambda n: get_json(server, f"/pool/square/{n}"), range(count)))
    assert [r["square"] for r in results] == [n * n for n in range(count)]
    return results


def sum_of_squares(n):
    return (n - 1) * n * (2 * n - 1) // 6


# ---- where handlers run ------------------------------------------------------------------------

def test_pool_route_runs_in_a_child_worker_process(wire):
    info = get_json(wire, "/pool/info")
    assert info["is_pool"] is True and info["is_main"] is False
    assert info["pid"] != wire.pid
    assert info["pid"] in descendants_of(wire.pid), "the pool worker is not a descendant of the server"


@pytest.mark.parametrize("path", ["/sync/info", "/thread/info"])
def test_sync_and_thread_routes_run_in_the_main_process(wire, path):
    info = get_json(wire, path)
    assert info["is_main"] is True and info["is_pool"] is False
    assert info["pid"] == wire.pid


@pytest.mark.parametrize("start_method", ["spawn", "forkserver", "fork"])
def test_pool_works_with_start_method(start_server, start_method):
    server = start_server(workers=2, start_method=start_method)
    info = get_json(server, "/pool/info")
    assert info["is_pool"] is True and info["is_main"] is False
    assert info["pid"] != server.pid
    assert info["pid"] in descendants_of(server.pid)
    # The worker was made by the requested start method: spawn runs a fresh interpreter
    # (multiprocessing.spawn on its command line); forkserver workers are forked by the fork server.
    if start_method == "spawn":
        assert "multiprocessing.spawn" in _cmdline(info["pid"])
    elif start_method == "forkserver":
        assert "multiprocessing.forkserver" in _cmdline(proc_stat(info["pid"])[1])
    else:   # fork: a copy of the server itself
        assert proc_stat(info["pid"])[1] == server.pid
    assert get_json(server, "/sync/info")["is_main"] is True
    with concurrent.futures.ThreadPoolExecutor(4) as executor:
        results = list(executor.map(lambda n: get_json(server, f"/pool/square/{n}"), range(10, 18)))
    assert [(r["n"], r["square"]) for r in results] == [(n, n * n) for n in range(10, 18)]
    assert all(r["pid"] != server.pid for r in results)


# ---- isolation: CPU work in the pool leaves the event loop free ----------------------------------

def test_cpu_bound_pool_requests_do_not_stall_async_routes(default_server, tmp_path):
    server = default_server
    warm_pool(server)
    sizes = [3000, 3001]
    markers = [tmp_path / f"burn-{i}" for i in range(2)]
    finished_at = {}

    def burn(i):
        response = requests.get(server.url + "/burn/pool", timeout=30, params={
            "seconds": "2.0", "n": str(sizes[i]), "marker": str(markers[i])})
        finished_at[i] = time.monotonic()
        return response

    latencies = []
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        futures = [executor.submit(burn, i) for i in range(2)]
        wait_for(lambda: all(m.exists() for m in markers), 15, "the pool burns did not start")
        for _ in range(5):
            started = time.monotonic()
            pong = requests.get(server.url + "/ping", timeout=REQUEST_TIMEOUT)
            latencies.append(time.monotonic() - started)
            assert pong.status_code == 200 and pong.text == "pong"
            time.sleep(0.05)
        pings_done = time.monotonic()
        results = [future.result(timeout=30) for future in futures]

    assert pings_done < min(finished_at.values()), "pings were not measured while the pool was busy"
    assert max(latencies) < 0.5, f"async route stalled by pool work: {latencies}"
    bodies = [r.json() for r in results]
    assert [r.status_code for r in results] == [200, 200]
    assert [b["sum_squares"] for b in bodies] == [sum_of_squares(n) for n in sizes]
    assert all(b["pid"] != server.pid for b in bodies)
    assert bodies[0]["pid"] != bodies[1]["pid"], "the two burns did not run on two workers"


def test_same_cpu_work_in_a_sync_route_does_stall_async_routes(default_server, tmp_path):
    # The contrast that makes the test above meaningful: the same work on the loop blocks it.
    server = default_server
    marker = tmp_path / "burn-sync"
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        future = executor.submit(requests.get, server.url + "/burn/sync", timeout=30, params={
            "seconds": "1.5", "n": "3000", "marker": str(marker)})
        wait_for(marker.exists, 15, "the sync burn did not start")
        started = time.monotonic()
        pong = requests.get(server.url + "/ping", timeout=30)
        latency = time.monotonic() - started
        burn = future.result(timeout=30)
    assert pong.status_code == 200
    assert burn.status_code == 200 and burn.json()["sum_squares"] == sum_of_squares(3000)
    assert burn.json()["pid"] == server.pid
    assert latency > 0.5, f"a sync CPU burn should block the loop, ping took only {latency:.3f}s"


# ---- request data crosses the process boundary ---------------------------------------------------

def test_request_line_query_headers_and_path_params_reach_pool_handler(call):
    result = call("GET", "/pool/echo/caf%C3%A9/42?a=1&a=2&b=x%20y", headers={"X-Token": "tok-123"})
    assert result.status == 200, result.body[:300]
    data = json.loads(result.body)
    assert data == {
        "method": "GET",
        "path": "/pool/echo/café/42",
        "raw_path": "/pool/echo/caf%C3%A9/42",
        "query_string": "a=1&a=2&b=x%20y",
        "query_a": ["1", "2"],
        "query_b": "x y",
        "header": "tok-123",
        "word": "café",
        "num": 42,
        "num_type": "int",
        "is_pool": True,
    }


def test_other_methods_reach_pool_handler(call):
    result = call("DELETE", "/pool/echo/thing/7")
    assert result.status == 200
    data = json.loads(result.body)
    assert (data["method"], data["word"], data["num"]) == ("DELETE", "thing", 7)


def test_request_body_reaches_pool_handler(call):
    body = bytes(range(256)) * 64
    result = call("POST", "/pool/body", data=body, headers={"Content-Type": "application/x-custom"})
    assert result.status == 200, result.body[:300]
    assert json.loads(result.body) == {
        "method": "POST",
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "content_type": "application/x-custom",
    }


def test_urlencoded_form_reaches_pool_handler(call):
    result = call("POST", "/pool/form?q=search", data=b"name=J%C3%BCrgen&tag=a&tag=b",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert result.status == 200, result.body[:300]
    assert json.loads(result.body) == {"name": "Jürgen", "tags": ["a", "b"], "param_q": "search"}


def test_multipart_upload_reaches_pool_handler(call):
    payload = os.urandom(3000)
    result = call("POST", "/pool/upload", data={"note": "hello"},
                  files={"up": ("report.bin", payload, "application/octet-stream")})
    assert result.status == 200, result.body[:300]
    assert json.loads(result.body) == {
        "field": "hello", "filename": "report.bin", "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }


def test_remote_address_reaches_pool_handler(wire):
    assert get_json(wire, "/pool/remote") == {"remote_addr": "127.0.0.1"}


# ---- return values of pool handlers ------------------------------------------------------------

ABSENT = object()
# kind, status, content-type prefix ("" = not checked, ABSENT = must be absent),
# body (bytes: equal; dict/list: equal as JSON; str: contained), extra headers (value contained)
RETURN_CASES = [
    ("str", 200, "text/html; charset=utf-8", "<p>héllo from the pool</p>".encode(), {}),
    ("bytes", 200, "application/octet-stream", bytes(range(256)), {}),
    ("dict", 200, "application/json", {"answer": 42, "nested": {"list": [1, 2, 3]}}, {}),
    ("list", 200, "application/json", [1, "two", 3.0], {}),
    ("none", 204, ABSENT, b"", {}),
    ("response", 201, "text/plain", b"made in pool", {"X-Made": "pool", "Set-Cookie": "flavour=oat"}),
    ("jsonresponse", 207, "application/json", {"ok": True}, {}),
    ("tuple2", 202, "", b"two-tuple", {}),
    ("tuple3", 203, "", b"three-tuple", {"X-Tuple": "three"}),
    ("httperror", 409, "", "conflict in pool", {}),
    ("abort", 403, "", "forbidden in pool", {}),
    ("redirect", 303, "", None, {"Location": "/elsewhere"}),
]


@pytest.mark.parametrize("kind,status,content_type,body,headers", RETURN_CASES,
                         ids=[case[0] for case in RETURN_CASES])
def test_pool_handler_return_value(call, kind, status, content_type, body, headers):
    result = call("GET", f"/pool/ret/{kind}")
    assert result.status == status, result.body[:300]
    actual_type = result.headers.get("Content-Type")
    if content_type is ABSENT:
        assert actual_type is None
    elif content_type:
        assert actual_type is not None
        assert actual_type.replace(" ", "").lower().startswith(content_type.replace(" ", "").lower())
    if isinstance(body, bytes):
        assert result.body == body
    elif isinstance(body, (dict, list)):
        assert json.loads(result.body) == body
    elif isinstance(body, str):
        assert body in result.body.decode("utf-8", "replace")
    for name, value in headers.items():
        assert value in (result.headers.get(name) or ""), (name, result.headers.get(name))


def test_pool_handler_exception_in_debug_mode_shows_the_workers_traceback():
    app = App(debug=True)
    app.route("/pool/ret/<kind>", RouteType.pool)(pool_app.pool_returns)
    with TestClient(app) as client:
        result = client.get("/pool/ret/exception")
    assert result.status == 500
    # The frame of the handler as it ran in the worker, with its source line.
    assert 'in pool_returns' in result.text
    assert 'raise RuntimeError("secret-internal-detail")' in result.text


def test_pool_handler_exception_gives_generic_500(call):
    result = call("GET", "/pool/ret/exception")
    assert result.status == 500
    text = result.body.decode("utf-8", "replace")
    assert text.splitlines()[0] == "500 Internal Server Error"
    assert "secret-internal-detail" not in text and "Traceback" not in text


# ---- generators streamed back from the pool -----------------------------------------------------

def get_request(path):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()


def test_pool_generator_streams_each_chunk_as_it_is_yielded(wire, tmp_path):
    # The generator cannot yield its second chunk until the test creates the release file,
    # so receiving the first chunk before that proves the response is streamed.
    with Client(wire.port, timeout=5) as client:
        client.send(get_request("/pool/stream/gated?dir=" + quote(str(tmp_path))))
        received = client.read_until(b"first;", timeout=8)
        assert b"first;" in received, f"first chunk not streamed before the generator finished: {received!r}"
        assert b"second;" not in received
        (tmp_path / "release").write_text("go")
        received += client.read_until(None, timeout=15)
    reply = split_reply(received)
    assert reply.head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding: chunked" in reply.head.lower()
    assert dechunk(reply.body) == b"first;second;third"


def test_client_disconnect_closes_pool_generator(wire, tmp_path):
    # Left alone the generator would tick for 30 s and record "finished".
    ended = tmp_path / "ended"
    with Client(wire.port, timeout=5) as client:
        client.send(get_request("/pool/stream/endless?dir=" + quote(str(tmp_path))))
        received = client.read_until(b"tick 1\n", timeout=8)
        assert b"tick 1\n" in received, received
    wait_for(ended.exists, 10, "the generator's finally block did not run within 10 s of the disconnect")
    assert ended.read_text() == "closed"
    assert get_json(wire, "/pool/square/5")["square"] == 25


# ---- timeouts ----------------------------------------------------------------------------------

def test_route_timeout_gives_503_for_asnc_thread_and_pool_routes(start_server):
    server = start_server(workers=2)
    statuses = {}
    for kind, path in [("asnc", "/slow/asnc-route-timeout"), ("thread", "/slow/thread-route-timeout"),
                       ("pool", "/pool/hang")]:
        statuses[kind] = requests.get(server.url + path, timeout=REQUEST_TIMEOUT).status_code
    assert statuses == {"asnc": 503, "thread": 503, "pool": 503}
    assert requests.get(server.url + "/ping", timeout=REQUEST_TIMEOUT).text == "pong"
    assert server.alive()


def test_app_handler_timeout_gives_503_for_asnc_thread_and_pool_routes(start_server):
    server = start_server(workers=2, handler_timeout=0.5)
    statuses = {}
    for kind, path in [("asnc", "/slow/asnc"), ("thread", "/slow/thread"), ("pool", "/slow/pool")]:
        statuses[kind] = requests.get(server.url + path, timeout=REQUEST_TIMEOUT).status_code
    assert statuses == {"asnc": 503, "thread": 503, "pool": 503}
    assert requests.get(server.url + "/ping", timeout=REQUEST_TIMEOUT).text == "pong"
    assert requests.get(server.url + "/fast/thread", timeout=REQUEST_TIMEOUT).text == "thread ok"
    assert server.alive()


def test_app_handler_timeout_applies_through_testclient():
    app = App(handler_timeout=0.5)
    app.route("/slow", RouteType.asnc)(pool_app.slow_asnc)
    app.route("/fast", RouteType.asnc)(pool_app.ping)
    with TestClient(app) as client:
        started = time.monotonic()
        assert client.get("/slow").status == 503
        assert time.monotonic() - started < 10
        assert client.get("/fast").text == "pong"


def test_hung_pool_handlers_do_not_clog_the_pool(start_server):
    server = start_server(workers=2)
    warm_pool(server)
    # More hung requests than workers, each cut off by the route's timeout=0.5.
    for _ in range(3):
        assert requests.get(server.url + "/pool/hang", timeout=REQUEST_TIMEOUT).status_code == 503
    response = requests.get(server.url + "/pool/square/11", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200 and response.json()["square"] == 121


def test_hung_pool_worker_process_is_recycled(start_server, tmp_path):
    server = start_server(workers=2)
    warm_pool(server)
    response = requests.get(server.url + "/pool/hang", params={"dir": str(tmp_path)}, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 503
    pid_files = list(tmp_path.glob("hang-*"))
    assert len(pid_files) == 1
    hung_pid = int(pid_files[0].read_text())
    assert hung_pid != server.pid
    wait_for(lambda: hung_pid not in descendants_of(server.pid), 10,
             f"hung worker {hung_pid} still running 10 s after its request timed out")
    assert get_json(server, "/pool/square/3")["square"] == 9


@pytest.mark.parametrize("pure", [True, False], ids=["pure", "accelerated"])
def test_timed_out_call_recycles_only_its_own_worker(start_server, tmp_path, pure):
    server = start_server(workers=2, pure=pure)
    warm_pool(server)
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        sleeper = executor.submit(requests.get, server.url + "/pool/sleep?s=1.5",
                                  timeout=REQUEST_TIMEOUT)
        time.sleep(0.2)     # the sleeper holds one worker; the hung call takes the other
        hung = requests.get(server.url + "/pool/hang", params={"dir": str(tmp_path)},
                            timeout=REQUEST_TIMEOUT)
        slept = sleeper.result()
    assert hung.status_code == 503
    assert slept.status_code == 200
    sleeper_pid = slept.json()["pid"]
    (hung_file,) = tmp_path.glob("hang-*")
    hung_pid = int(hung_file.read_text())
    assert hung_pid != sleeper_pid
    # Two workers serve again: the sleeper's, which was not recycled with the hung one,
    # and a new one in place of the hung worker.
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        pids = {result["pid"] for result in executor.map(
            lambda _: get_json(server, "/pool/sleep?s=0.3"), range(4))}
    assert sleeper_pid in pids and len(pids) == 2 and hung_pid not in pids
    wait_for(lambda: hung_pid not in descendants_of(server.pid), 10,
             f"hung worker {hung_pid} still running 10 s after its call timed out")


def test_call_that_times_out_while_queued_kills_no_worker(start_server):
    server = start_server(workers=1)
    warm_pool(server)
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        sleeper = executor.submit(requests.get, server.url + "/pool/sleep?s=1.5",
                                  timeout=REQUEST_TIMEOUT)
        time.sleep(0.2)
        started = time.monotonic()
        queued = requests.get(server.url + "/pool/hang", timeout=REQUEST_TIMEOUT)
        waited = time.monotonic() - started
        slept = sleeper.result()
    assert queued.status_code == 503 and waited < 1.2, (queued.status_code, waited)
    assert slept.status_code == 200
    # The one worker finished the sleeper, never ran the abandoned call, and still serves.
    assert get_json(server, "/pool/sleep?s=0")["pid"] == slept.json()["pid"]


# ---- crash recovery ----------------------------------------------------------------------------

@pytest.mark.parametrize("pure", [True, False], ids=["pure", "accelerated"])
@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_pool_worker_crash_fails_only_its_request(start_server, how, pure):
    server = start_server(workers=2, pure=pure)
    warm_pool(server)
    crashed = requests.get(server.url + f"/pool/crash/{how}", timeout=REQUEST_TIMEOUT)
    assert crashed.status_code in (500, 503), crashed.text[:300]
    assert server.alive()
    info = get_json(server, "/pool/info")
    assert info["is_pool"] is True and info["pid"] != server.pid
    assert get_json(server, "/pool/square/6")["square"] == 36
    assert requests.get(server.url + "/ping", timeout=REQUEST_TIMEOUT).text == "pong"
    assert server.alive()


def zombie_children_of(pid):
    zombies = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat and stat[0] == "Z" and stat[1] == pid:
                zombies.append(int(entry))
    return zombies


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_dead_and_recycled_workers_are_reaped(start_server, start_method):
    # With spawn and fork the workers are the server's own children: each one that dies or
    # is killed must be waited for, or it stays behind as a zombie.
    server = start_server(workers=2, start_method=start_method)
    warm_pool(server)
    assert requests.get(server.url + "/pool/crash/sigkill", timeout=REQUEST_TIMEOUT).status_code == 503
    assert requests.get(server.url + "/pool/crash/exit", timeout=REQUEST_TIMEOUT).status_code == 503
    assert requests.get(server.url + "/pool/hang", timeout=REQUEST_TIMEOUT).status_code == 503
    assert get_json(server, "/pool/square/9")["square"] == 81
    wait_for(lambda: not zombie_children_of(server.pid), 10,
             f"zombie pool workers left: {zombie_children_of(server.pid)}")


# ---- pool size, lifecycle, external executors ----------------------------------------------------

def test_workers_zero_runs_pool_routes_in_a_thread_of_the_main_process(start_server):
    server = start_server(workers=0)
    info = get_json(server, "/pool/info")
    assert info["is_main"] is True and info["is_pool"] is False
    assert info["pid"] == server.pid
    assert info["thread"] != "MainThread"
    assert get_json(server, "/pool/square/4")["square"] == 16
    assert descendants_of(server.pid) == {}
    output = server.stop_with_children().lower()
    assert any(word in output for word in ("pool", "worker")), f"no start-up warning: {output!r}"


def test_no_pool_processes_when_app_has_no_pool_routes(start_server):
    server = start_server("tests.apps.pool_app:nopool_app", workers=2)
    for path, text in [("/", "no pool here"), ("/thread", "thread here"), ("/async", "async here")]:
        assert requests.get(server.url + path, timeout=REQUEST_TIMEOUT).text == text
    assert descendants_of(server.pid) == {}


@pytest.mark.parametrize("how, start_method", [
    ("SIGTERM", None),                 # a graceful stop closes the pool
    ("SIGKILL", "forkserver"),         # no shutdown code runs: the workers see their pipe close
    ("SIGKILL", "spawn"),
    ("SIGKILL", "fork"),
])
def test_pool_workers_stop_with_the_server(start_server, how, start_method):
    server = start_server(workers=2, start_method=start_method)
    worker_pids = {result["pid"] for result in warm_pool(server)}
    family = descendants_of(server.pid)
    assert worker_pids and worker_pids <= set(family)
    os.kill(server.pid, getattr(signal, how))
    server.process.wait(timeout=15)
    deadline = time.monotonic() + 10
    while survivors(family) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = survivors(family)
    kill_all(family)
    assert left == {}, f"processes left running after the server stopped: {sorted(left)}"


def test_pool_handler_that_workers_cannot_import_fails_at_start_up(start_server):
    # The route's handler is hidden behind a decorator applied outside @route, so
    # "tests.apps.pool_app.shadowed" names a different object: pickling by reference fails.
    with pytest.raises(RuntimeError, match="server exited early") as error:
        start_server("tests.apps.pool_app:unpicklable_app", workers=2)
    assert "TypeError" in str(error.value)
    assert "/shadowed" in str(error.value)


def test_app_executor_runs_pool_routes():
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="pixie-app-executor") as executor:
        app = App(executor=executor)
        app.route("/info", RouteType.pool)(pool_app.pool_info)
        app.route("/square/<n:int>", RouteType.pool)(pool_app.pool_square)
        with TestClient(app) as client:
            info = client.get("/info")
            square = client.get("/square/13")
    assert info.status == 200 and info.json()["thread"].startswith("pixie-app-executor")
    assert square.status == 200 and square.json()["square"] == 169


def test_run_executor_thread_pool_runs_pool_routes(start_server):
    server = start_server("tests.apps.pool_app:thread_executor_launcher")
    info = get_json(server, "/pool/info")
    assert info["thread"].startswith("pixie-run-executor")
    assert info["pid"] == server.pid
    assert get_json(server, "/pool/square/8")["square"] == 64
    # the supplied executor IS the pool: no worker processes of the framework's own
    assert descendants_of(server.pid) == {}


def test_run_executor_process_pool_runs_pool_routes(start_server):
    server = start_server("tests.apps.pool_app:process_executor_launcher")
    result = get_json(server, "/pool/square/9")
    assert result["square"] == 81
    assert result["pid"] != server.pid and result["pid"] in descendants_of(server.pid)


# ---- decoration-time checks --------------------------------------------------------------------

def _make_closure():
    greeting = "hi"

    def handler(request):
        return greeting

    return handler


def _make_nested():
    def handler(request):
        return "nested"

    return handler


async def _async_handler(request):
    return "async"


@pytest.mark.parametrize("handler", [
    pytest.param(lambda request: "lambda", id="lambda"),
    pytest.param(_make_closure(), id="closure"),
    pytest.param(_make_nested(), id="nested"),
    pytest.param(_async_handler, id="async-def"),
])
def test_pool_route_refuses_non_importable_or_async_handler(handler):
    app = App()
    with pytest.raises(TypeError) as error:
        app.route("/x", RouteType.pool)(handler)
    message = str(error.value).lower()
    assert any(word in message for word in ("pool", "module", "import", "pickl", "async")), message
    assert not any(route.path == "/x" for route in app.routes())


def test_pool_route_accepts_module_level_function():
    app = App()
    app.route("/ok/<n:int>", RouteType.pool)(pool_app.pool_square)
    routes = [route for route in app.routes() if route.path == "/ok/<n:int>"]
    assert [(route.method, route.route_type) for route in routes] == [("GET", RouteType.pool)]
