"""Falcon's ASGI app, served by uvicorn (--loop uvloop --http httptools, see run.py)."""
import falcon
import falcon.asgi

from common import JSON_BODY, PLAINTEXT


class PlainText:
    async def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = PLAINTEXT


class Json:
    async def on_get(self, req, resp):
        resp.media = JSON_BODY


class User:
    async def on_get(self, req, resp, id):
        resp.media = {"id": id}


app = falcon.asgi.App()
app.add_route("/", PlainText())
app.add_route("/json", Json())
app.add_route("/user/{id:int}", User())
