"""WebSockets with real clients and servers: the `websockets` package against the built-in
server (with and without compression), the same handlers under uvicorn and hypercorn (the
ASGI `websocket` scope), the TestClient through the real handshake and codec, in_pool from
a WebSocket handler, and the router features WebSocket routes share."""
import asyncio
import json
import subprocess
import sys

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pixie_web import HTTPError, TestClient, WebSocketClosed
from tests.apps import ws_interop_app
from tests.support import ROOT, ChildServer, child_env, descendants_of, free_port

APP = "tests.apps.ws_interop_app:app"
SERVERS = {
    "builtin": lambda port: [sys.executable, "-m", "pixie_web", APP, "--port", str(port),
                             "--workers", "1", "--no-access-log"],
    "builtin-pure": lambda port: [sys.executable, "-m", "pixie_web", APP, "--port",
                                  str(port), "--workers", "1", "--no-access-log"],
    "uvicorn-websockets": lambda port: [sys.executable, "-m", "uvicorn", APP, "--port",
                                        str(port), "--ws", "websockets", "--log-level",
                                        "warning"],
    "uvicorn-wsproto": lambda port: [sys.executable, "-m", "uvicorn", APP, "--port",
                                     str(port), "--ws", "wsproto", "--log-level", "warning"],
    "hypercorn": lambda port: [sys.executable, "-m", "hypercorn", APP, "--bind",
                               f"127.0.0.1:{port}", "--log-level", "warning"],
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request):
    if request.param == "uvicorn-wsproto":
        pytest.importorskip("wsproto", reason="wsproto is not installed: uvicorn --ws wsproto")
    port = free_port()
    server = ChildServer(SERVERS[request.param](port), port,
                         child_env(request.param == "builtin-pure"), cwd=ROOT)
    server.name = request.param
    yield server
    server.stop_with_children()


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def test_echo_text_binary_large_and_a_burst(server):
    async def talk():
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/echo",
                                      max_size=2 ** 22) as ws:
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff" * 100_000)
            assert await ws.recv() == b"\x00\xff" * 100_000
            for index in range(1000):
                await ws.send(str(index))
            assert [await ws.recv() for _ in range(1000)] == [str(i) for i in range(1000)]
    run(talk())


@pytest.mark.parametrize("compression", ["deflate", None])
def test_compression_is_negotiated_when_offered(server, compression):
    async def talk():
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/echo",
                                      compression=compression) as ws:
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
            message = "compressible " * 2000
            await ws.send(message)
            assert await ws.recv() == message
            return extensions
    extensions = run(talk())
    if compression is None:
        assert extensions is None
    else:
        assert extensions is not None and extensions.startswith("permessage-deflate")


def test_request_data_subprotocol_and_wildcards_reach_the_handler(server):
    async def talk():
        async with websockets.connect(
                f"ws://127.0.0.1:{server.port}/chat/lobby?q=42", subprotocols=["chat.v1",
                                                                             "chat.v2"],
                additional_headers={"Cookie": "who=ada"}) as ws:
            first = await ws.recv()
            await ws.send("hi")
            return ws.subprotocol, first, await ws.recv()
    subprotocol, first, echoed = run(talk())
    assert isinstance(first, str)         # send_json sends a text message
    first = json.loads(first)
    assert subprotocol == "chat.v2"       # the route's preference, among those offered
    assert first == {"room": "lobby", "q": "42", "cookie": "ada", "subprotocol": "chat.v2"}
    assert echoed == "lobby: hi"


def test_the_handlers_close_code_reaches_the_client(server):
    async def talk():
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/close/4001") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd.code, closed.value.rcvd.reason
    assert run(talk()) == (4001, "bye")


def test_a_handler_raising_after_the_handshake_closes_with_1011(server):
    async def talk():
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/broken") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd.code
    assert run(talk()) == 1011


@pytest.mark.parametrize("path, statuses", [("/refuse", {403}), ("/nowhere", {403, 404})])
def test_a_refused_handshake_gets_an_http_status(server, path, statuses):
    async def talk():
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(f"ws://127.0.0.1:{server.port}{path}"):
                pass
        return refused.value.response.status_code
    status = run(talk())
    if server.name.startswith("builtin"):
        assert status == {"/refuse": 403, "/nowhere": 404}[path]   # the real answer
    else:
        assert status in statuses


def test_in_pool_runs_in_a_worker_while_other_sockets_stay_responsive(server):
    async def talk():
        url = f"ws://127.0.0.1:{server.port}"
        async with websockets.connect(url + "/pool") as busy, \
                websockets.connect(url + "/echo") as other:
            await busy.send("pid")
            worker = int(await busy.recv())
            await busy.send("slow")                 # a second of CPU in a worker
            await asyncio.sleep(0.1)
            started = asyncio.get_running_loop().time()
            await other.send("ping")
            assert await other.recv() == "ping"
            answered_in = asyncio.get_running_loop().time() - started
            assert int(await busy.recv()) != 0
            await busy.send("20")
            assert await busy.recv() == "6765"
            await busy.send("fail")
            assert await busy.recv() == "ValueError: from the worker"
            await busy.send("lambda")
            assert await busy.recv() == "TypeError"
            return worker, answered_in
    worker, answered_in = run(talk())
    assert answered_in < 0.3, f"the other socket waited {answered_in:.2f}s"
    assert worker != server.pid
    if server.name.startswith("builtin"):
        assert worker in descendants_of(server.pid)


def test_a_websocket_route_mounted_under_a_prefix(server):
    async def talk():
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/v1/api/echo") as ws:
            await ws.send("x")
            return await ws.recv()
    assert run(talk()) == "api: x"


def test_routes_and_url_for_know_websocket_routes():
    app = ws_interop_app.app
    methods = {(route.method, route.path) for route in app.routes()}
    assert ("WEBSOCKET", "/chat/<room>") in methods and ("WEBSOCKET", "/v1/api/echo") in methods
    assert app.url_for("chat", room="lobby") == "/chat/lobby"
    listing = subprocess.run([sys.executable, "-m", "pixie_web", "routes", APP], cwd=ROOT,
                             env=child_env(True), capture_output=True, text=True, timeout=30)
    assert any(line.split()[:2] == ["WEBSOCKET", "/chat/<room>"]
               for line in listing.stdout.splitlines()), listing.stdout


def test_in_pool_from_an_http_handler_too():
    with TestClient(ws_interop_app.app, workers=1) as client:
        assert client.get("/fib/15").json() == {"fib": 610}


# ---- the TestClient: the real handshake and codec --------------------------------------------

@pytest.fixture(scope="module")
def client():
    with TestClient(ws_interop_app.app, workers=1) as client:
        yield client


def test_testclient_echo_json_and_binary(client):
    with client.websocket_connect("/echo") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "hi"
        ws.send_bytes(b"\x01\x02")
        assert ws.receive_bytes() == b"\x01\x02"
        ws.send_json({"a": [1, 2]})
        assert ws.receive_json() == {"a": [1, 2]}


def test_testclient_subprotocols_cookies_and_query(client):
    client.cookies["who"] = "grace"
    try:
        with client.websocket_connect("/chat/room1?q=7", subprotocols=["chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1"
            assert ws.receive_json() == {"room": "room1", "q": "7", "cookie": "grace",
                                         "subprotocol": "chat.v1"}
    finally:
        client.cookies.pop("who")


def test_testclient_refusal_raises_http_error(client):
    with pytest.raises(HTTPError) as refused:
        client.websocket_connect("/refuse")
    assert refused.value.status == 403 and "not you" in refused.value.body


def test_testclient_sees_close_codes(client):
    with client.websocket_connect("/close/4002") as ws:
        with pytest.raises(WebSocketClosed) as closed:
            ws.receive()
    assert (closed.value.code, closed.value.reason) == (4002, "bye")
    with client.websocket_connect("/broken") as ws:
        with pytest.raises(WebSocketClosed) as closed:
            ws.receive()
    assert closed.value.code == 1011


def test_testclient_with_permessage_deflate(client):
    with client.websocket_connect(
            "/echo", headers={"Sec-WebSocket-Extensions": "permessage-deflate"}) as ws:
        assert ws.extensions == "permessage-deflate"
        for _ in range(3):                      # with the context carried over
            ws.send_text("again and again " * 100)
            assert ws.receive_text() == "again and again " * 100


def test_testclient_in_pool(client):
    with client.websocket_connect("/pool") as ws:
        ws.send_text("15")
        assert ws.receive_text() == "610"
