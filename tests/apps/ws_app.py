"""The app of tests/test_websocket_protocol.py: WebSocket routes for the wire-level tests.

``app`` keeps its limits small so the tests stay fast: a message is at most 1024 bytes, the
server waits 1 s for the peer's close after its own, and a graceful stop waits 3 s.
``origins_app`` allows WebSockets from one origin only (``App(websocket_origins=...)``).

A ``before_request`` hook answers 409 when the request has ``X-Refuse-Hook``; a middleware
answers 451 when it has ``X-Refuse-Middleware``, else notes the path and query of every
request it sees (``GET /seen`` lists them). ``$WS_MARKS`` (a directory): ``/marked?token=T``
writes the file T there once its receive loop has ended.
"""
import asyncio
import os

from pixie_web import App, HTTPError, Response

app = App(max_ws_message_size=1024, ws_close_timeout=1.0, shutdown_timeout=3.0)
origins_app = App(websocket_origins=["https://allowed.example"])
SEEN = []


async def echo(request, ws):
    async for message in ws:
        await ws.send(message)


app.websocket("/echo")(echo)
origins_app.websocket("/echo")(echo)


@origins_app.route("/")
def origins_home(request):
    return "home"


@app.before_request
def refuse_when_asked(request):
    if "x-refuse-hook" in request.headers:
        return Response("refused by the hook", 409)
    return None


@app.middleware
async def note_requests(request, call_next):
    if "x-refuse-middleware" in request.headers:
        return Response("refused by the middleware", 451)
    SEEN.append(request.path + "?" + request.query_string)
    del SEEN[:-200]
    return await call_next(request)


@app.route("/seen")
def seen(request):
    return {"seen": SEEN}


@app.route("/hello")
def hello(request):
    return "hello over HTTP"


@app.route("/both")
def both_http(request):
    return "both: the HTTP route"


@app.websocket("/both")
async def both_websocket(request, ws):
    await ws.send("both: the WebSocket route")
    await echo(request, ws)


@app.websocket("/sub", subprotocols=["chat.v2", "chat.v1"])
async def subprotocols(request, ws):
    await ws.accept()
    await ws.send_json({"chosen": ws.subprotocol, "offered": ws.subprotocols})
    await echo(request, ws)


@app.websocket("/sub-unoffered")
async def subprotocol_not_offered(request, ws):
    await ws.accept(subprotocol="never-offered")
    await echo(request, ws)


@app.websocket("/sub-retry")
async def subprotocol_retried(request, ws):
    try:
        await ws.accept(subprotocol="never-offered")
    except ValueError:
        await ws.accept()           # the handshake is still pending: accept without one
    await ws.send("accepted after the ValueError")
    await echo(request, ws)


@app.websocket("/origin", origins=["https://good.example", "http://localhost:8000"])
async def origin_checked(request, ws):
    await echo(request, ws)


@app.websocket("/teapot")
async def teapot(request, ws):
    raise HTTPError(418, "no tea over WebSocket")


@app.websocket("/refuse")
async def refuse(request, ws):
    return None                       # never accepted: 403


@app.websocket("/close-first")
async def close_before_accept(request, ws):
    await ws.close()                  # before the handshake: a refusal, 403


@app.websocket("/server-close")
async def server_close(request, ws):
    await ws.accept()
    await ws.close(4000, "bye")


@app.websocket("/return")
async def returns(request, ws):
    await ws.send("returning now")


@app.websocket("/raise")
async def raises(request, ws):
    await ws.send("about to fail")
    raise RuntimeError("the secret detail of a WebSocket failure")


@app.websocket("/sink")
async def sink(request, ws):
    async for message in ws:
        pass


@app.websocket("/never-reads")
async def never_reads(request, ws):
    await ws.accept()
    for _ in range(50):               # 2.5 s (then a close 1000), less if the peer goes
        if ws.closed:
            return
        await asyncio.sleep(0.05)


@app.websocket("/slow-accept")
async def slow_accept(request, ws):
    await asyncio.sleep(0.3)          # frames sent early arrive before the 101 is written
    await echo(request, ws)


@app.websocket("/marked")
async def marked(request, ws):
    async for message in ws:
        await ws.send(message)
    with open(os.path.join(os.environ["WS_MARKS"], request.query["token"]), "w") as file:
        file.write(f"loop ended, close code {ws.close_code}")
