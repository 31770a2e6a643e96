"""Sanic in a single process (uvloop when installed, its own httptools-based server)."""
from sanic import Sanic
from sanic.response import json, text

from common import BACKLOG, HOST, JSON_BODY, KEEPALIVE, PLAINTEXT, PORT

app = Sanic("bench")
app.config.ACCESS_LOG = False
app.config.KEEP_ALIVE_TIMEOUT = KEEPALIVE


@app.get("/")
async def plaintext(request):
    return text(PLAINTEXT)


@app.get("/json")
async def json_endpoint(request):
    return json(JSON_BODY)


@app.get("/user/<id:int>")
async def user(request, id):
    return json({"id": id})


if __name__ == "__main__":
    app.run(host=HOST, port=PORT, single_process=True, access_log=False, motd=False,
            backlog=BACKLOG)
