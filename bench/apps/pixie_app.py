"""pixie_web, written as its README shows. PIXIE_WEB_PURE=1 selects the stdlib-only build;
otherwise uvloop, httptools and ujson are used when installed."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from common import HOST, JSON_BODY, KEEPALIVE, PLAINTEXT, PORT  # noqa: E402
from pixie_web import App, Response  # noqa: E402

app = App()


@app.route("/")
def plaintext(request):
    return Response(PLAINTEXT, content_type="text/plain")


@app.route("/json")
def json_endpoint(request):
    return JSON_BODY


@app.route("/user/<id:int>")
async def user(request, id):
    return {"id": id}


if __name__ == "__main__":
    app.run(host=HOST, port=PORT, workers=0, access_log=False, keepalive_timeout=KEEPALIVE)
