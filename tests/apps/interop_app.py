"""One app for every front end: the built-in server, ASGI servers (uvicorn, hypercorn) and,
later, WSGI servers. Each route exercises one thing a deployment must keep working.

INTEROP_MARKS (a directory): the startup and shutdown hooks write "started" / "stopped" there;
a stream closed early writes "stream-closed". INTEROP_FAIL_STARTUP=1 makes startup fail.
"""
import asyncio
import os
import time

from pixie_web import (ACCELERATORS, App, HTTPError, RouteType, Sessions, proc_env,
                       static_file)

app = App(max_body_size=1024 * 1024)
app.install(Sessions(secret="interop-secret-0123456789abcdef"))
MARKS = os.environ.get("INTEROP_MARKS", "")
STATIC_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs")


def mark(name, text="1"):
    if MARKS:
        with open(os.path.join(MARKS, name), "w") as file:
            file.write(text)


@app.on_startup
def started(app):
    if os.environ.get("INTEROP_FAIL_STARTUP"):
        raise RuntimeError("the database is not reachable")
    mark("started", str(os.getpid()))


@app.on_shutdown
def stopped(app):
    mark("stopped", str(os.getpid()))


@app.route("/")
def hello(request):
    return "Hello, interop!"


@app.route("/user/<id:int>")
async def user(request, id):
    return {"id": id, "scheme": request.scheme}


@app.route("/server-pid")
def server_pid(request):
    return {"pid": os.getpid()}


@app.route("/accelerators")
def accelerators(request):
    return ACCELERATORS


@app.route("/segment/<value>")
def segment(request, value):
    return {"value": value, "path": request.path}


@app.post("/json")
def echo_json(request):
    return {"got": request.json}


@app.post("/upload")
def upload(request):
    upload = request.files["file"]
    return {"name": upload.filename, "size": len(upload.read()), "field": request.form["note"]}


@app.post("/stream-in", stream_body=True)
async def stream_in(request):
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
    return {"received": total}


@app.route("/stream-out")
def stream_out(request):
    def chunks():
        try:
            for number in range(int(request.query.get("count", "3"))):
                yield f"chunk {number}\n"
                time.sleep(float(request.query.get("pause", "0")))
        finally:
            mark("stream-closed")
    return chunks()


@app.route("/astream")
async def async_stream(request):
    async def chunks():
        for number in range(3):
            await asyncio.sleep(0)
            yield f"async {number}\n"
    return chunks()


@app.route("/slow", timeout=0.3)
async def slow(request):
    await asyncio.sleep(5)
    return "too late"


@app.route("/nothing")
def nothing(request):
    return None


@app.route("/teapot-bytes")
def teapot_bytes(request):
    return b"\x00\x01", 418, {"X-Kind": "bytes"}


def square(request, n):
    return {"square": n * n, "in_pool": proc_env.proc_type.value == "pool", "pid": os.getpid()}


app.route("/pool/<n:int>", RouteType.pool)(square)


def pool_stream(request, n):
    for number in range(n):
        yield f"{number}:{os.getpid()}\n"


app.route("/pool-stream/<n:int>", RouteType.pool)(pool_stream)


def pool_slow(request):
    time.sleep(5)
    return "too late"


def pool_crash(request):
    os._exit(3)


app.route("/pool-slow", RouteType.pool, timeout=0.5)(pool_slow)
app.route("/pool-crash", RouteType.pool)(pool_crash)


@app.route("/thread", RouteType.thread)
def in_thread(request):
    time.sleep(0.01)
    return {"thread": True}


@app.route("/fail")
def fail(request):
    raise HTTPError(418, "no coffee here")


@app.error(418)
def teapot(request, error):
    return {"error": "teapot", "detail": str(error.body)}


@app.route("/session")
def session_count(request):
    request.session["count"] = request.session.get("count", 0) + 1
    return {"count": request.session["count"]}


@app.route("/whoami")
def whoami(request):
    return {"remote_addr": request.remote_addr, "scheme": request.scheme,
            "host": request.host, "url": request.url}


@app.route("/static/<name>")
def static(request, name):
    return static_file(name, STATIC_ROOT)


wsgi = app.wsgi       # for WSGI servers that take module:name (gunicorn, granian --interface wsgi)
