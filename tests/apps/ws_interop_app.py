"""The app of tests/test_websocket_interop.py: the same WebSocket handlers served by the
built-in server, uvicorn, hypercorn and the TestClient.

``/echo`` echoes; ``/chat/<room>`` prefixes the room and shows the query, a cookie and the
negotiated subprotocol; ``/info`` sends what the handshake asked for; ``/close/<code:int>``
closes with that code; ``/refuse`` raises HTTPError(403, ...) before accepting; ``/fib/<n>``
computes in the pool through in_pool (``/slow`` spins the CPU there for a second) and
``/pid`` answers the pool worker's pid; ``/broken`` raises after accepting.
"""
import os
import time

from pixie_web import App, HTTPError, Router, in_pool

app = App()
api = Router(prefix="/api")


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return os.getpid()


def pid():
    return os.getpid()


def fail():
    raise ValueError("from the worker")


@app.websocket("/echo")
async def echo(request, ws):
    async for message in ws:
        await ws.send(message)


@app.websocket("/chat/<room>", name="chat", subprotocols=["chat.v2", "chat.v1"])
async def chat(request, ws, room):
    await ws.accept()
    await ws.send_json({"room": room, "q": request.query.get("q"),
                        "cookie": request.cookies.get("who"), "subprotocol": ws.subprotocol})
    async for message in ws:
        await ws.send(f"{room}: {message}")


@app.websocket("/close/<code:int>")
async def close_with(request, ws, code):
    await ws.accept()
    await ws.close(code, "bye")


@app.websocket("/refuse")
async def refuse(request, ws):
    raise HTTPError(403, "not you")


@app.websocket("/broken")
async def broken(request, ws):
    await ws.accept()
    raise RuntimeError("a bug after the handshake")


@app.websocket("/pool")
async def pool(request, ws):
    async for message in ws:
        if message == "pid":
            await ws.send(str(await in_pool(pid)))
        elif message == "slow":
            await ws.send(str(await in_pool(spin, 1.0)))
        elif message == "fail":
            try:
                await app.in_pool(fail)
            except ValueError as error:
                await ws.send(f"ValueError: {error}")
        elif message == "lambda":
            try:
                await in_pool(lambda: 1)
            except TypeError:
                await ws.send("TypeError")
        else:
            await ws.send(str(await in_pool(fib, int(message))))


@app.route("/fib/<n:int>")
async def fib_page(request, n):
    return {"fib": await in_pool(fib, n)}


@api.websocket("/echo")
async def api_echo(request, ws):
    async for message in ws:
        await ws.send(f"api: {message}")


app.mount("/v1", api)
