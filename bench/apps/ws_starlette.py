"""WebSocket echo in Starlette, served by uvicorn (see ws_echo.py for its options)."""
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute


async def echo(websocket):
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message["bytes"])


app = Starlette(routes=[WebSocketRoute("/echo", echo)])
