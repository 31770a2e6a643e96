"""aiohttp's own server (C parser from the wheel) on uvloop."""
import uvloop
from aiohttp import web

from common import BACKLOG, HOST, JSON_BODY, KEEPALIVE, PLAINTEXT, PORT


async def plaintext(request):
    return web.Response(text=PLAINTEXT)


async def json_endpoint(request):
    return web.json_response(JSON_BODY)


async def user(request):
    return web.json_response({"id": int(request.match_info["id"])})


app = web.Application()
app.router.add_get("/", plaintext)
app.router.add_get("/json", json_endpoint)
app.router.add_get(r"/user/{id:\d+}", user)

if __name__ == "__main__":
    web.run_app(app, host=HOST, port=PORT, access_log=None, print=None, backlog=BACKLOG,
                keepalive_timeout=KEEPALIVE, loop=uvloop.new_event_loop())
