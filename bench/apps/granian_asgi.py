"""A raw ASGI app (no framework) served by granian (Rust HTTP server, uvloop)."""
import json

from common import JSON_BODY, PLAINTEXT

TEXT_HEADERS = [(b"content-type", b"text/plain")]
JSON_HEADERS = [(b"content-type", b"application/json")]


async def app(scope, receive, send):
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    path = scope["path"]
    status, headers = 200, JSON_HEADERS
    if path == "/":
        body, headers = PLAINTEXT.encode(), TEXT_HEADERS
    elif path == "/json":
        body = json.dumps(JSON_BODY).encode()
    elif path.startswith("/user/") and path[6:].isdigit():
        body = json.dumps({"id": int(path[6:])}).encode()
    else:
        status, body, headers = 404, b"Not Found", TEXT_HEADERS
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
