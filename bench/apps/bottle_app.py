"""bottle with its built-in server (wsgiref: stdlib, one thread, HTTP/1.0 so no keep-alive).

The only change from bottle's defaults is a listen backlog of 2048 instead of 5, so that
64 connecting clients are not dropped by the kernel."""
from wsgiref.simple_server import WSGIServer

import bottle

from common import BACKLOG, HOST, JSON_BODY, PLAINTEXT, PORT

app = bottle.Bottle()


@app.get("/")
def plaintext():
    bottle.response.content_type = "text/plain"
    return PLAINTEXT


@app.get("/json")
def json_endpoint():
    return JSON_BODY


@app.get("/user/<id:int>")
def user(id):
    return {"id": id}


class Server(WSGIServer):
    request_queue_size = BACKLOG


if __name__ == "__main__":
    bottle.run(app, server="wsgiref", host=HOST, port=PORT, quiet=True, server_class=Server)
