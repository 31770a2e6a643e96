"""WebSockets through real clients: the `websockets` package against every front end (the
built-in server in both builds, uvicorn with its default, websockets and wsproto protocols,
hypercorn), in_pool from WebSocket and HTTP handlers, the TestClient, and a page in headless
Chromium.  The app is tests/apps/ws_clients_app.py.

Every server runs on 127.0.0.1 and a free port and is stopped by pid with the pool workers
it started; every conversation has a deadline.
"""
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pixie_web import HTTPError, TestClient, WebSocketClosed
from tests.apps import ws_clients_app
from tests.browser_tools import browser_unavailable_reason, launch_chromium
from tests.support import (HAVE_ACCELERATORS, ROOT, ChildServer, child_env, cpu_seconds,
                           descendants_of, free_port, wait_for)

APP = "tests.apps.ws_clients_app:app"
UVICORN = [sys.executable, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--log-level", "warning"]
ASGI_SERVERS = {
    "uvicorn": lambda port: UVICORN + ["--port", str(port)],      # its default: websockets-sansio
    "uvicorn-websockets": lambda port: UVICORN + ["--port", str(port), "--ws", "websockets"],
    "uvicorn-wsproto": lambda port: UVICORN + ["--port", str(port), "--ws", "wsproto"],
    "hypercorn": lambda port: [sys.executable, "-m", "hypercorn", APP, "--bind",
                               f"127.0.0.1:{port}", "--log-level", "warning"],
}
FRONT_ENDS = ["builtin-pure", "builtin-accelerated", *ASGI_SERVERS]

TEXT_200K = ("héllo wörld ✓ " * 15_000)[:170_000]        # 200 KiB and more in UTF-8
BINARY_200K = random.Random(6455).randbytes(200 * 1024)   # incompressible
COMPRESSIBLE = "compressible text, again and again. " * 8000
MESSAGES = ["héllo ✓", b"\x00\xff\x10", "", b"", TEXT_200K, BINARY_200K, COMPRESSIBLE]


def run(coroutine, timeout=30.0):
    """Run one client conversation, bounded in time."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def ws_url(server, path):
    return f"ws://127.0.0.1:{server.port}{path}"


@pytest.fixture(scope="module", params=FRONT_ENDS)
def front_end(request, shared_server):
    """The app served by one front end; ``.name`` says which."""
    name = request.param
    if name.startswith("builtin"):
        server = shared_server(APP, name.split("-")[1], workers=1)
        server.name = name
        yield server
        return
    if name == "uvicorn-wsproto":
        pytest.importorskip("wsproto", reason="wsproto is not installed: uvicorn --ws wsproto")
    port = free_port()
    server = ChildServer(ASGI_SERVERS[name](port), port, child_env(False), cwd=ROOT)
    server.name = name
    yield server
    server.stop_with_children()


@pytest.fixture
def builtin(shared_server, parser_mode):
    """The app on the built-in server, in each parser mode."""
    return shared_server(APP, parser_mode, workers=1)


class CountingProxy:
    """A TCP relay from a port of its own to ``port``, counting the bytes that pass each way
    on each connection and keeping its request head: what a WebSocket costs on the wire."""

    def __init__(self, port, lifetime=60.0):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.connections = []           # {"head": bytes, "up": int, "down": int}
        self.deadline = time.monotonic() + lifetime
        self._sockets = []
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stopped.is_set() and time.monotonic() < self.deadline:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            self._sockets += [client, upstream]
            record = {"head": b"", "up": 0, "down": 0}
            self.connections.append(record)
            for source, sink, way in ((client, upstream, "up"), (upstream, client, "down")):
                threading.Thread(target=self._pump, args=(source, sink, record, way),
                                 daemon=True).start()

    def _pump(self, source, sink, record, way):
        source.settimeout(0.2)
        try:
            while not self._stopped.is_set() and time.monotonic() < self.deadline:
                try:
                    data = source.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                if way == "up" and b"\r\n\r\n" not in record["head"]:
                    record["head"] += data[:8192]
                record[way] += len(data)
                sink.sendall(data)
        except OSError:
            pass

    def connection_to(self, path):
        """The record of the connection whose request went to ``path``."""
        found = [record for record in self.connections
                 if record["head"].startswith(f"GET {path} ".encode())]
        assert len(found) == 1, f"connections to {path}: {self.connections}"
        return found[0]

    def close(self):
        self._stopped.set()
        self.listener.close()
        for sock in self._sockets:
            sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


# ---- the websockets package against every front end ----------------------------------------

@pytest.mark.parametrize("compression", ["deflate", None])
def test_text_and_binary_messages_up_to_200_kib_round_trip(front_end, compression):
    async def talk():
        async with websockets.connect(ws_url(front_end, "/echo"), compression=compression,
                                      max_size=2 ** 21) as ws:
            echoed = []
            for message in MESSAGES:
                await ws.send(message)
                echoed.append(await ws.recv())
            return (ws.response.headers.get("Sec-WebSocket-Extensions"),
                    [type(extension).__name__ for extension in ws.protocol.extensions], echoed)
    answer, extensions, echoed = run(talk())
    assert len(TEXT_200K.encode()) >= 200 * 1024
    assert [type(message) for message in echoed] == [type(message) for message in MESSAGES]
    assert echoed == MESSAGES
    if compression is None:
        assert (answer, extensions) == (None, [])
    else:
        assert answer is not None and answer.startswith("permessage-deflate"), answer
        assert extensions == ["PerMessageDeflate"]


def test_a_burst_of_1000_messages_arrives_whole_and_in_order(front_end):
    messages = [f"{index}:" + "x" * (index % 700) for index in range(1000)]

    async def talk():
        async with websockets.connect(ws_url(front_end, "/echo")) as ws:
            async def send_all():
                for message in messages:
                    await ws.send(message)
            sender = asyncio.create_task(send_all())    # read while sending: no deadlock
            received = [await ws.recv() for _ in messages]
            await sender
            return received
    assert run(talk()) == messages


def test_json_messages_in_text_or_binary_get_json_text_answers(front_end):
    value = {"a": [1, 2.5, None, True], "é": "✓", "nested": {"n": -3}}

    async def talk():
        async with websockets.connect(ws_url(front_end, "/json")) as ws:
            await ws.send(json.dumps(value))
            as_text = await ws.recv()
            await ws.send(json.dumps(value).encode())       # receive_json takes binary too
            from_binary = await ws.recv()
            return as_text, from_binary
    as_text, from_binary = run(talk())
    assert isinstance(as_text, str) and isinstance(from_binary, str)     # text messages
    assert json.loads(as_text) == json.loads(from_binary) == {"got": value}


@pytest.mark.parametrize("offers, chosen", [
    (["chat.v1", "chat.v2"], "chat.v2"),        # the route's preference among those offered
    (["chat.v1"], "chat.v1"),
    (["other", "chat.v1"], "chat.v1"),
    (["other"], None),
    (None, None),
])
def test_the_handler_sees_wildcards_query_cookies_and_the_chosen_subprotocol(front_end,
                                                                             offers, chosen):
    async def talk():
        async with websockets.connect(ws_url(front_end, "/chat/lobby%20one?q=1&q=two"),
                                      subprotocols=offers,
                                      additional_headers={"Cookie": "who=ada; theme=dark"}) as ws:
            seen = json.loads(await ws.recv())
            await ws.send("hi")
            return ws.subprotocol, ws.response.headers.get("Sec-WebSocket-Protocol"), seen, \
                await ws.recv()
    subprotocol, answered, seen, echoed = run(talk())
    assert subprotocol == answered == chosen
    # uvicorn's wsproto protocol passes on only the headers wsproto leaves as "extra"
    offered = None if front_end.name == "uvicorn-wsproto" else \
        "permessage-deflate; client_max_window_bits"
    assert seen == {"room": "lobby one", "q": ["1", "two"],
                    "cookies": {"who": "ada", "theme": "dark"}, "subprotocol": chosen,
                    "offered": offers or [], "extensions": offered, "same_request": True}
    assert echoed == "lobby one: hi"


def test_websocket_routes_of_a_mounted_router_and_app(front_end):
    async def talk():
        async with websockets.connect(ws_url(front_end, "/v1/api/echo/ada")) as ws:
            await ws.send("hi")
            routed = await ws.recv()
        async with websockets.connect(ws_url(front_end, "/admin/live")) as ws:
            live = json.loads(await ws.recv())
        return routed, live
    assert run(talk()) == ("ada via /v1/api/echo/ada: hi", {"path": "/admin/live"})


@pytest.mark.parametrize("path, code, reason", [("/close/4001", 4001, "closing on purpose"),
                                                ("/close/1000", 1000, "closing on purpose"),
                                                ("/broken", 1011, "")])
def test_the_handlers_close_code_reaches_the_client(front_end, path, code, reason):
    async def talk():
        async with websockets.connect(ws_url(front_end, path)) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd.code, closed.value.rcvd.reason
    assert run(talk()) == (code, reason)


@pytest.mark.parametrize("path, status, text", [("/refuse", 401, "who are you?"),
                                                ("/nowhere", 404, None)])
def test_a_refused_handshake_gets_the_real_http_status(front_end, path, status, text):
    # Every ASGI server here offers the websocket.http.response extension: the handler's
    # answer, not a bare 403.
    async def talk():
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(ws_url(front_end, path)):
                pass
        return refused.value.response
    response = run(talk())
    assert response.status_code == status
    if text is not None:
        assert text in response.body.decode(), response.body


def test_the_startup_hook_ran_once_in_the_serving_process(front_end):
    async def talk():
        async with websockets.connect(ws_url(front_end, "/started")) as ws:
            return json.loads(await ws.recv())
    seen = run(talk())
    assert seen["started"] == [seen["pid"]]
    assert seen["pid"] == front_end.pid or seen["pid"] in descendants_of(front_end.pid)


# ---- in_pool from WebSocket and HTTP handlers -----------------------------------------------

async def pool_call(ws, command):
    await ws.send(command)
    return json.loads(await ws.recv())


def assert_ran_in_the_pool(front_end, worker, server):
    """``worker`` (a pid in_pool reported) is a pool worker of ``server`` (the pid of the
    process running the handler)."""
    if front_end.name == "hypercorn":
        # hypercorn runs the app in a daemonic process, which cannot start processes: in_pool
        # falls back to the thread pool, as documented, and says so in the log
        assert worker == server
        assert "cannot start worker processes (it is daemonic)" in front_end.output()
    else:
        assert worker != server and worker in descendants_of(server), (worker, server)


def test_in_pool_works_in_a_worker_while_this_and_other_sockets_stay_responsive(front_end):
    clock = time.monotonic

    async def talk():
        async with websockets.connect(ws_url(front_end, "/pool")) as busy, \
                websockets.connect(ws_url(front_end, "/echo")) as other:
            first = await pool_call(busy, "pid")             # the pool is up
            cpu_before = cpu_seconds(first["server"])
            await busy.send("spin 1.0")                      # a second of CPU in a worker
            started = clock()
            await asyncio.sleep(0.1)
            pings, pongs = [], []
            for index in range(4):                           # during the second of CPU
                began = clock()
                await other.send(f"ping {index}")
                assert await asyncio.wait_for(other.recv(), 2) == f"ping {index}"
                pings.append(clock() - began)
                began = clock()
                await asyncio.wait_for(await busy.ping(), 2)  # the busy socket's own pong
                pongs.append(clock() - began)
                await asyncio.sleep(0.1)
            answered_by = clock() - started
            spun = json.loads(await asyncio.wait_for(busy.recv(), 10))
            spun_in = clock() - started
            return first, spun, pings, pongs, answered_by, spun_in, \
                cpu_seconds(first["server"]) - cpu_before
    first, spun, pings, pongs, answered_by, spun_in, server_cpu = run(talk())
    assert answered_by < spun_in and spun_in >= 0.95, (answered_by, spun_in)  # while it spun
    assert max(pings) < 0.2, f"the other socket waited {pings}"
    assert max(pongs) < 0.2, f"the busy socket's pongs waited {pongs}"
    for reply in (first, spun):
        assert_ran_in_the_pool(front_end, reply["ok"], reply["server"])
    if front_end.name != "hypercorn":
        assert server_cpu < 0.5, f"the server itself used {server_cpu:.2f} s of CPU"


def test_in_pool_errors_and_timeouts_are_raised_in_the_handler(front_end):
    async def talk():
        async with websockets.connect(ws_url(front_end, "/pool")) as ws:
            replies = {"pid": await pool_call(ws, "pid")}          # the pool is up
            before = descendants_of(replies["pid"]["server"])
            for command in ("fail", "lambda", "nested", "timeout", "fib 20", "app-pid"):
                replies[command] = await pool_call(ws, command)
            return replies, before
    replies, before = run(talk())
    assert (replies["fail"]["error"], replies["fail"]["message"]) == \
        ("ValueError", "bad input, said the worker")
    for command in ("lambda", "nested"):
        assert replies[command]["error"] == "TypeError"
        assert "module-level function" in replies[command]["message"]
    assert replies["timeout"]["error"] == "TimeoutError"
    assert 0.25 < replies["timeout"]["elapsed"] < 2.0, replies["timeout"]   # not the 3 s spin
    assert replies["fib 20"]["ok"] == 6765          # the pool still works after the timeout
    assert_ran_in_the_pool(front_end, replies["app-pid"]["ok"], replies["app-pid"]["server"])
    if front_end.name != "hypercorn":
        # the worker that timed out was replaced: one of the processes of before is gone
        server = replies["pid"]["server"]
        assert wait_for(lambda: set(before) - set(descendants_of(server))), before


def test_in_pool_from_an_ordinary_async_http_handler(front_end):
    for _ in range(3):                  # the first call may start the pool; the others not
        response = requests.get(f"http://127.0.0.1:{front_end.port}/fib/20", timeout=10)
        assert response.status_code == 200, response.text
        reply = response.json()
        assert reply["fib"] == 6765
        assert_ran_in_the_pool(front_end, reply["worker"], reply["server"])


# ---- the built-in server: compression on the wire ------------------------------------------

@pytest.mark.parametrize("compression", ["deflate", None])
def test_permessage_deflate_shrinks_messages_on_the_wire_both_ways(builtin, compression):
    with CountingProxy(builtin.port) as proxy:
        async def talk():
            async with websockets.connect(f"ws://127.0.0.1:{proxy.port}/echo",
                                          compression=compression) as ws:
                for _ in range(3):              # the context carries over between messages
                    await ws.send(COMPRESSIBLE)
                    assert await ws.recv() == COMPRESSIBLE
        run(talk())
        record = proxy.connection_to("/echo")
    size = 3 * len(COMPRESSIBLE)
    if compression is None:
        assert record["up"] > size and record["down"] > size, record
    else:
        assert record["up"] < size / 20 and record["down"] < size / 20, record


# ---- routes, url_for and the CLI -----------------------------------------------------------

def test_routes_and_url_for_know_websocket_routes_mounted_ones_too():
    app = ws_clients_app.app
    listed = {(route.method, route.path) for route in app.routes()}
    assert {("WEBSOCKET", "/chat/<room>"), ("WEBSOCKET", "/v1/api/echo/<name>"),
            ("WEBSOCKET", "/admin/live"), ("GET", "/")} <= listed
    assert ("GET", "/chat/<room>") not in listed
    assert app.url_for("chat", room="lobby one") == "/chat/lobby%20one"
    assert app.url_for("chat", room="x", q="1") == "/chat/x?q=1"
    assert app.url_for("api_echo", name="ada") == "/v1/api/echo/ada"
    assert app.url_for("admin_live") == "/admin/live"


def test_the_routes_command_lists_websocket_routes():
    listing = subprocess.run([sys.executable, "-m", "pixie_web", "routes", APP], cwd=ROOT,
                             env=child_env(True), capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert ["WEBSOCKET", "/chat/<room>", "asnc", "chat"] in rows, listing.stdout
    assert ["WEBSOCKET", "/v1/api/echo/<name>", "asnc", "api_echo"] in rows, listing.stdout
    assert ["GET", "/", "sync", "page"] in rows, listing.stdout


# ---- the TestClient ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    with TestClient(ws_clients_app.app, workers=1) as client:
        yield client


def test_testclient_the_startup_hooks_ran_in_this_process(client):
    with client.websocket_connect("/started") as ws:
        seen = ws.receive_json()
    assert seen["pid"] in seen["started"] and seen["pid"] in ws_clients_app.STARTED


def test_testclient_echoes_text_binary_and_json(client):
    with client.websocket_connect("/echo") as ws:
        assert (ws.subprotocol, ws.extensions) == (None, None)
        for message in MESSAGES:
            (ws.send_text if isinstance(message, str) else ws.send_bytes)(message)
            echoed = ws.receive()
            assert type(echoed) is type(message) and echoed == message
        ws.send_text("text")
        with pytest.raises(TypeError):
            ws.receive_bytes()
    with client.websocket_connect("/json") as ws:
        ws.send_json({"a": [1, None, "é"]})
        assert ws.receive_json() == {"got": {"a": [1, None, "é"]}}
        ws.send_bytes(b'{"binary": true}')
        assert json.loads(ws.receive_text()) == {"got": {"binary": True}}   # a text answer


@pytest.mark.parametrize("offers, chosen", [(["chat.v1"], "chat.v1"),
                                            (["chat.v1", "chat.v2"], "chat.v2"),
                                            (["other"], None), (None, None)])
def test_testclient_subprotocols(client, offers, chosen):
    with client.websocket_connect("/chat/room", subprotocols=offers) as ws:
        assert ws.subprotocol == chosen
        seen = ws.receive_json()
    assert (seen["subprotocol"], seen["offered"]) == (chosen, offers or [])


@pytest.mark.parametrize("origin, allowed", [("https://good.example", True),
                                             ("https://evil.example", False),
                                             (None, False)])
def test_testclient_headers_reach_the_origin_check(client, origin, allowed):
    headers = {"Origin": origin} if origin else {}
    if allowed:
        with client.websocket_connect("/origin", headers=headers) as ws:
            assert ws.receive_text() == "welcome, https://good.example"
    else:
        with pytest.raises(HTTPError) as refused:
            client.websocket_connect("/origin", headers=headers)
        assert refused.value.status == 403


@pytest.mark.parametrize("path, status, text", [("/refuse", 401, "who are you?"),
                                                ("/nowhere", 404, "")])
def test_testclient_a_refusal_raises_httperror_with_its_status(client, path, status, text):
    with pytest.raises(HTTPError) as refused:
        client.websocket_connect(path)
    assert refused.value.status == status and text in refused.value.body


@pytest.mark.parametrize("path, code, reason", [("/close/4003", 4003, "closing on purpose"),
                                                ("/broken", 1011, "")])
def test_testclient_the_servers_close_code_is_raised_by_receive(client, path, code, reason):
    with client.websocket_connect(path) as ws:
        with pytest.raises(WebSocketClosed) as closed:
            ws.receive()
        assert (closed.value.code, closed.value.reason) == (code, reason)
        with pytest.raises(WebSocketClosed):        # and again: it stays closed
            ws.receive()


def test_testclient_permessage_deflate_round_trips(client):
    with client.websocket_connect(
            "/echo", headers={"Sec-WebSocket-Extensions": "permessage-deflate"}) as ws:
        assert ws.extensions is not None and ws.extensions.startswith("permessage-deflate")
        for message in [COMPRESSIBLE, BINARY_200K, "", COMPRESSIBLE, "é" * 1000]:
            (ws.send_text if isinstance(message, str) else ws.send_bytes)(message)
            assert ws.receive() == message


def test_testclient_cookies_of_the_jar_reach_the_handler(client):
    assert client.get("/login?as=grace").status == 200
    try:
        with client.websocket_connect("/chat/room") as ws:
            assert ws.receive_json()["cookies"] == {"who": "grace"}
    finally:
        client.cookies.clear()


def test_testclient_in_pool_from_a_websocket_handler(client):
    with client.websocket_connect("/pool") as ws:
        ws.send_text("fib 15")
        assert ws.receive_json()["ok"] == 610
        ws.send_text("pid")
        worker = ws.receive_json()["ok"]
    assert worker != os.getpid() and worker in descendants_of(os.getpid())


# ---- a page in headless Chromium -----------------------------------------------------------

BROWSER_MISSING = browser_unavailable_reason()


@pytest.mark.skipif(BROWSER_MISSING is not None, reason=str(BROWSER_MISSING))
def test_chromium_echoes_through_the_page_with_permessage_deflate(shared_server, tmp_path):
    from playwright.sync_api import sync_playwright
    server = shared_server(APP, "accelerated" if HAVE_ACCELERATORS else "pure", workers=1)
    with CountingProxy(server.port) as proxy, sync_playwright() as playwright:
        context = launch_chromium(playwright, str(tmp_path / "profile"),
                                  viewport={"width": 900, "height": 420})
        try:
            page = context.new_page()
            problems = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"http://127.0.0.1:{proxy.port}/", timeout=15_000)
            page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('closed')"
                " && document.getElementById('offered').textContent !== ''", timeout=15_000)
            shown = {name: page.inner_text(f"#{name}")
                     for name in ("status", "echo", "big", "extensions", "offered")}
            page.screenshot(path=str(tmp_path / "websocket-echo.png"))
            page.screenshot(path="/tmp/websocket-echo.png")     # a copy to look at
        finally:
            context.close()
        record = proxy.connection_to("/echo")
    assert problems == []
    assert shown["echo"] == "hello from chromium"
    assert shown["big"] == f"identical, {len(COMPRESSIBLE)} characters"
    assert shown["status"] == "closed 1000"
    assert shown["extensions"].startswith("permessage-deflate"), shown
    assert shown["offered"].startswith("permessage-deflate"), shown
    # the big message went compressed both ways: far fewer bytes than characters
    assert record["up"] < len(COMPRESSIBLE) / 20 and record["down"] < len(COMPRESSIBLE) / 20, \
        record
    assert (tmp_path / "websocket-echo.png").stat().st_size > 1000
