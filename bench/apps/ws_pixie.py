"""WebSocket echo on pixie_web's built-in server (PIXIE_WEB_PURE chooses the build)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from pixie_web import App  # noqa: E402

app = App()


@app.websocket("/echo")
async def echo(request, ws):
    async for message in ws:
        await ws.send(message)


if __name__ == "__main__":
    app.run(port=int(os.environ["BENCH_PORT"]), workers=0, access_log=False)
