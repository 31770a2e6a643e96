"""The app of tests/test_websocket.py: WebSocket routes for real clients (the `websockets`
package, ASGI servers, the TestClient, Chromium).

``/`` is a page whose script echoes a message through ``/echo`` and shows what the handshake
negotiated; ``/echo`` echoes; ``/json`` answers each JSON message with ``{"got": value}``;
``/chat/<room>`` (subprotocols chat.v2, chat.v1) first sends what the handler sees of the
handshake (room, query, cookies, subprotocols, the offered extensions), then echoes with the
room as a prefix; ``/close/<code:int>`` closes with that code; ``/refuse`` raises
HTTPError(401) before accepting; ``/broken`` raises after accepting; ``/origin`` accepts
https://good.example only; ``/started`` sends the pids the startup hook recorded.

``/pool`` runs commands through in_pool (``pid``, ``app-pid``, ``spin SECONDS``, ``fib N``,
``fail``, ``timeout``, ``lambda``, ``nested``) and answers each with JSON: ``{"ok": result}``
or ``{"error": "TypeName", "message": ...}``, with ``elapsed`` (seconds) and ``server`` (the
pid of the process running the handler); ``GET /fib/<n:int>`` uses
in_pool from an ordinary async HTTP handler. ``GET /login?as=NAME`` sets the cookie who=NAME.

A Router (prefix /api) is mounted at /v1 and an App at /admin, each with a WebSocket route.
"""
import os
import time

from pixie_web import App, HTTPError, Response, Router, in_pool

app = App()
STARTED = []


@app.on_startup
def started(app):
    STARTED.append(os.getpid())


# ---- functions the pool workers run (module level: workers import them by name) ----

def worker_pid():
    return os.getpid()


def spin(seconds):
    """Keep a CPU busy for ``seconds``; the worker's pid."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return os.getpid()


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def fail():
    raise ValueError("bad input, said the worker")


def _nested_in_pool():
    def nested():
        return 1
    return in_pool(nested)


POOL_COMMANDS = {
    "pid": lambda argument: in_pool(worker_pid),
    "app-pid": lambda argument: app.in_pool(worker_pid),
    "spin": lambda argument: in_pool(spin, float(argument)),
    "fib": lambda argument: in_pool(fib, int(argument)),
    "fail": lambda argument: in_pool(fail),
    "timeout": lambda argument: in_pool(spin, 3.0, timeout=0.3),
    "lambda": lambda argument: in_pool(lambda: 1),
    "nested": lambda argument: _nested_in_pool(),
}


# ---- routes ----

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>WebSocket echo</title>
<style>body { font: 20px sans-serif; margin: 2em; } p { margin: .4em 0; }</style></head>
<body><h1>WebSocket echo</h1>
<p id="status">connecting</p>
<p>echo: <b id="echo"></b></p>
<p>big echo: <b id="big"></b></p>
<p>negotiated: <b id="extensions"></b></p>
<p>offered by the browser: <b id="offered"></b></p>
<script>
const big = "compressible text, again and again. ".repeat(8000);
const ws = new WebSocket("ws://" + location.host + "/echo");
let step = 0;
ws.onopen = () => {
  document.getElementById("status").textContent = "open";
  document.getElementById("extensions").textContent = ws.extensions;
  ws.send("hello from chromium");
};
ws.onmessage = (event) => {
  if (step++ === 0) {
    document.getElementById("echo").textContent = event.data;
    ws.send(big);
  } else {
    document.getElementById("big").textContent =
      (event.data === big ? "identical, " : "DIFFERENT, ") + event.data.length + " characters";
    ws.close(1000);
  }
};
ws.onclose = (event) => {
  document.getElementById("status").textContent = "closed " + event.code;
};
const chat = new WebSocket("ws://" + location.host + "/chat/browser");
chat.onmessage = (event) => {
  document.getElementById("offered").textContent = JSON.parse(event.data).extensions;
  chat.close(1000);
};
</script></body></html>
"""


@app.route("/")
def page(request):
    return PAGE


@app.websocket("/echo")
async def echo(request, ws):
    async for message in ws:
        await ws.send(message)


@app.websocket("/json")
async def json_echo(request, ws):
    while True:                         # until receive_json raises WebSocketClosed
        value = await ws.receive_json()
        await ws.send_json({"got": value})


@app.websocket("/chat/<room>", name="chat", subprotocols=["chat.v2", "chat.v1"])
async def chat(request, ws, room):
    await ws.accept()
    await ws.send_json({
        "room": room, "q": request.query.getall("q"), "cookies": dict(request.cookies),
        "subprotocol": ws.subprotocol, "offered": ws.subprotocols,
        "extensions": request.headers.get("sec-websocket-extensions"),
        "same_request": ws.request is request})
    async for message in ws:
        await ws.send(f"{room}: {message}")


@app.websocket("/close/<code:int>")
async def close_with(request, ws, code):
    await ws.accept()
    await ws.close(code, "closing on purpose")


@app.websocket("/refuse")
async def refuse(request, ws):
    raise HTTPError(401, "who are you?")


@app.websocket("/broken")
async def broken(request, ws):
    await ws.accept()
    raise RuntimeError("a bug after the handshake")


@app.websocket("/origin", origins=["https://good.example"])
async def origin_checked(request, ws):
    await ws.send(f"welcome, {request.headers.get('origin')}")


@app.websocket("/started")
async def started_pids(request, ws):
    await ws.send_json({"started": STARTED, "pid": os.getpid()})


@app.websocket("/pool")
async def pool(request, ws):
    async for message in ws:
        command, _, argument = message.partition(" ")
        began = time.monotonic()
        try:
            reply = {"ok": await POOL_COMMANDS[command](argument)}
        except Exception as error:          # the worker's error, raised here
            reply = {"error": type(error).__name__, "message": str(error)}
        reply["elapsed"] = time.monotonic() - began
        reply["server"] = os.getpid()
        await ws.send_json(reply)


@app.route("/login")
def login(request):
    response = Response("signed in")
    response.set_cookie("who", request.query.get("as", "ada"))
    return response


@app.route("/fib/<n:int>")
async def fib_page(request, n):
    return {"fib": await in_pool(fib, n), "worker": await in_pool(worker_pid),
            "server": os.getpid()}


api = Router(prefix="/api")


@api.websocket("/echo/<name>", name="api_echo")
async def api_echo(request, ws, name):
    async for message in ws:
        await ws.send(f"{name} via {request.path}: {message}")


admin = App()


@admin.websocket("/live", name="admin_live")
async def admin_live(request, ws):
    await ws.send_json({"path": request.path})


app.mount("/v1", api)
app.mount("/admin", admin)
