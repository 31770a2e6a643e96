"""Real-server apps for tests/test_routing.py and tests/test_handlers.py.

``app``: ordinary routes, streamed responses, errors, header echoes.
``slash_app``: ``App(redirect_slashes=True)`` with a plain and a slashed route.
``catch_all_slash_app``: ``redirect_slashes=True`` with a root-level path wildcard,
the shape that turns ``//evil.example`` into an open redirect (class D11 of SECURITY.md).
"""
import asyncio

from pixie_web import App, Response, redirect

app = App()


@app.route("/text")
def text(request):
    return "hello wire"


@app.route("/num/<n:int>")
def num(request, n):
    return {"n": n, "type": type(n).__name__}


@app.route("/gen")
def gen(request):
    yield "first,"
    yield b"second,"
    yield "third-\u00e9"


@app.route("/gen-fails")
def gen_fails(request):
    yield "partial,"
    raise RuntimeError("generator-secret-17")


# An async generator that stops at a gate until /open-gate/<token> is requested,
# so a test can see the first chunk arrive before the generator has finished.
_gates = {}


def _gate(token):
    return _gates.setdefault(token, asyncio.Event())


@app.route("/gated/<token>")
async def gated(request, token):
    async def chunks():
        yield b"before-gate;"
        try:
            await asyncio.wait_for(_gate(token).wait(), 5)
            yield b"after-gate"
        except asyncio.TimeoutError:
            yield b"gate-timeout"
    return chunks()


@app.route("/open-gate/<token>")
async def open_gate(request, token):
    _gate(token).set()
    return "opened"


@app.route("/file-object")
def file_object(request):
    return open(__file__, "rb")


@app.route("/boom")
def boom(request):
    raise RuntimeError("secret-detail-4711")


@app.route("/echo-header")
def echo_header(request):
    response = Response("ok")
    response.headers["X-Echo"] = request.query.get("v", "")
    return response


@app.route("/echo-redirect")
def echo_redirect(request):
    redirect(request.query.get("to", "/"))


@app.route("/echo-cookie")
def echo_cookie(request):
    response = Response("ok")
    response.set_cookie("c", request.query.get("v", ""))
    return response


@app.route("/two-cookies")
def two_cookies(request):
    response = Response("ok")
    response.set_cookie("first", "1")
    response.set_cookie("second", "2")
    return response


slash_app = App(redirect_slashes=True)


@slash_app.route("/a")
def slash_a(request):
    return "slash app a"


@slash_app.route("/b/")
def slash_b(request):
    return "slash app b"


catch_all_slash_app = App(redirect_slashes=True)


@catch_all_slash_app.route("/<rest:path>/")
def catch_all_slashed(request, rest):
    return "slashed:" + rest
