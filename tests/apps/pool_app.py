"""Apps for tests/test_pool.py: process-pool routes and the dispatcher.

Every handler is a module-level function, so pool workers (spawn, forkserver
or fork) can import it by name.  Handlers that need a scratch directory get
it from the query string (``dir=``); handlers that would be dangerous in the
main process (``os._exit``, SIGKILL) refuse to run there.
"""
import asyncio
import hashlib
import os
import signal
import threading
import time

from pixie_web import (
    App,
    HTTPError,
    JSONResponse,
    ProcessType,
    Response,
    RouteType,
    abort,
    proc_env,
    redirect,
)

app = App()


# ---- helpers (plain functions, not routes) ----

def _where():
    """Which process and thread a handler runs in."""
    return {
        "pid": os.getpid(),
        "thread": threading.current_thread().name,
        "is_pool": proc_env.proc_type == ProcessType.pool,
        "is_main": proc_env.proc_type == ProcessType.main,
        "niceness": os.nice(0),
    }


def _scratch(request, name):
    return os.path.join(request.query.get("dir"), name)


def _burn(request):
    """Burn CPU for ``seconds`` while computing a checkable result."""
    seconds = float(request.query.get("seconds", "1.0"))
    n = int(request.query.get("n", "1000"))
    marker = request.query.get("marker")
    if marker:
        with open(marker, "w") as handle:
            handle.write(str(os.getpid()))
    deadline = time.monotonic() + seconds
    rounds = 0
    while True:
        total = sum(i * i for i in range(n))
        rounds += 1
        if time.monotonic() >= deadline:
            break
    return {"n": n, "sum_squares": total, "rounds": rounds, "pid": os.getpid()}


# ---- where handlers run ----

@app.route("/ping", RouteType.asnc)
async def ping(request):
    return "pong"


@app.route("/pool/info", RouteType.pool)
def pool_info(request):
    return _where()


@app.route("/sync/info", RouteType.sync)
def sync_info(request):
    return _where()


@app.route("/thread/info", RouteType.thread)
def thread_info(request):
    return _where()


@app.route("/pool/square/<n:int>", RouteType.pool)
def pool_square(request, n):
    return {"n": n, "square": n * n, "pid": os.getpid()}


# ---- CPU work: pool vs. event loop ----

@app.route("/burn/pool", RouteType.pool)
def burn_pool(request):
    return _burn(request)


@app.route("/burn/sync", RouteType.sync)
def burn_sync(request):
    return _burn(request)


# ---- request data crossing the process boundary ----

@app.route("/pool/echo/<word>/<num:int>", RouteType.pool, methods=("GET", "DELETE"))
def pool_echo(request, word, num):
    return {
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path,
        "query_string": request.query_string,
        "query_a": request.query.getall("a"),
        "query_b": request.query.get("b"),
        "header": request.headers.get("X-Token"),
        "word": word,
        "num": num,
        "num_type": type(num).__name__,
        "is_pool": proc_env.proc_type == ProcessType.pool,
    }


@app.route("/pool/remote", RouteType.pool)
def pool_remote(request):
    return {"remote_addr": request.remote_addr}


@app.route("/pool/body", RouteType.pool, methods=("POST", "PUT"))
def pool_body(request):
    body = request.body
    return {
        "method": request.method,
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "content_type": request.content_type,
    }


@app.route("/pool/form", RouteType.pool, methods=("POST",))
def pool_form(request):
    return {
        "name": request.form.get("name"),
        "tags": request.form.getall("tag"),
        "param_q": request.params.get("q"),
    }


@app.route("/pool/upload", RouteType.pool, methods=("POST",))
def pool_upload(request):
    upload = request.files.get("up")
    data = upload.file.read()
    return {
        "field": request.form.get("note"),
        "filename": upload.filename,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


# ---- return values ----

@app.route("/pool/ret/<kind>", RouteType.pool)
def pool_returns(request, kind):
    if kind == "str":
        return "<p>héllo from the pool</p>"
    if kind == "bytes":
        return bytes(range(256))
    if kind == "dict":
        return {"answer": 42, "nested": {"list": [1, 2, 3]}}
    if kind == "list":
        return [1, "two", 3.0]
    if kind == "none":
        return None
    if kind == "response":
        response = Response("made in pool", status=201, headers={"X-Made": "pool"},
                            content_type="text/plain")
        response.set_cookie("flavour", "oat")
        return response
    if kind == "jsonresponse":
        return JSONResponse({"ok": True}, status=207)
    if kind == "tuple2":
        return ("two-tuple", 202)
    if kind == "tuple3":
        return ("three-tuple", 203, {"X-Tuple": "three"})
    if kind == "httperror":
        raise HTTPError(409, "conflict in pool")
    if kind == "abort":
        abort(403, "forbidden in pool")
    if kind == "redirect":
        redirect("/elsewhere")
    if kind == "exception":
        raise RuntimeError("secret-internal-detail")
    return ("unknown kind", 400)


# ---- streaming generators ----

@app.route("/pool/stream/gated", RouteType.pool)
def pool_stream_gated(request):
    """Yield one chunk, then wait (bounded) for the test's release file."""
    release = _scratch(request, "release")

    def chunks():
        yield "first;"
        deadline = time.monotonic() + 20.0
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.02)
        yield "second;"
        yield "third"

    return chunks()


@app.route("/pool/stream/endless", RouteType.pool)
def pool_stream_endless(request):
    """Tick for up to 30 s; the finally block records how the generator ended."""
    marker = _scratch(request, "ended")

    def chunks():
        reason = "finished"
        try:
            for i in range(600):
                yield f"tick {i}\n"
                time.sleep(0.05)
        except GeneratorExit:
            reason = "closed"
            raise
        finally:
            with open(marker + ".tmp", "w") as handle:
                handle.write(reason)
            os.replace(marker + ".tmp", marker)

    return chunks()


# ---- timeouts ----

@app.route("/slow/asnc-route-timeout", RouteType.asnc, timeout=0.5)
async def slow_asnc_route_timeout(request):
    await asyncio.sleep(30)
    return "too late"


@app.route("/slow/thread-route-timeout", RouteType.thread, timeout=0.5)
def slow_thread_route_timeout(request):
    time.sleep(3)
    return "too late"


@app.route("/pool/hang", RouteType.pool, timeout=0.5)
def pool_hang(request):
    directory = request.query.get("dir")
    if directory:
        with open(os.path.join(directory, f"hang-{os.getpid()}"), "w") as handle:
            handle.write(str(os.getpid()))
    time.sleep(1000)
    return "too late"


@app.route("/pool/sleep", RouteType.pool)
def pool_sleep(request):
    """Sleep ?s= seconds (at most 5), then say which worker did it."""
    time.sleep(min(5.0, float(request.query.get("s", "1"))))
    return {"pid": os.getpid()}


# These have no per-route timeout: only App/run handler_timeout bounds them.

@app.route("/slow/asnc", RouteType.asnc)
async def slow_asnc(request):
    await asyncio.sleep(30)
    return "too late"


@app.route("/slow/thread", RouteType.thread)
def slow_thread(request):
    time.sleep(3)
    return "too late"


@app.route("/slow/pool", RouteType.pool)
def slow_pool(request):
    time.sleep(1000)
    return "too late"


@app.route("/fast/thread", RouteType.thread)
def fast_thread(request):
    return "thread ok"


# ---- crashes ----

@app.route("/pool/crash/exit", RouteType.pool)
def pool_crash_exit(request):
    if proc_env.proc_type != ProcessType.pool:
        return ("refusing to os._exit outside a pool worker", 418)
    os._exit(1)


@app.route("/pool/crash/sigkill", RouteType.pool)
def pool_crash_sigkill(request):
    if proc_env.proc_type != ProcessType.pool:
        return ("refusing to SIGKILL outside a pool worker", 418)
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)
    return "still alive?"


# ---- an app without pool routes ----

nopool_app = App()


@nopool_app.route("/")
def nopool_index(request):
    return "no pool here"


@nopool_app.route("/thread", RouteType.thread)
def nopool_thread(request):
    return "thread here"


@nopool_app.route("/async", RouteType.asnc)
async def nopool_async(request):
    return "async here"


# ---- an app whose pool handler worker processes cannot import by name ----

def _shadow(func):
    """Applied outside @route: the module attribute then names the wrapper, not the handler."""
    def wrapper(request, **params):
        return func(request, **params)
    return wrapper


unpicklable_app = App()


@_shadow
@unpicklable_app.route("/shadowed", RouteType.pool)
def shadowed(request):
    return "unreachable"


# ---- run(executor=...) through tests/serve.py, which only passes JSON ----

class _RunWithExecutor:
    """A serve.py target whose run() supplies an executor object to app.run()."""

    def __init__(self, kind):
        self.kind = kind

    def run(self, **options):
        import concurrent.futures
        import multiprocessing

        if self.kind == "thread":
            executor = concurrent.futures.ThreadPoolExecutor(
                2, thread_name_prefix="pixie-run-executor")
        else:
            executor = concurrent.futures.ProcessPoolExecutor(
                2, mp_context=multiprocessing.get_context("spawn"))
        with executor:
            app.run(executor=executor, **options)


thread_executor_launcher = _RunWithExecutor("thread")
process_executor_launcher = _RunWithExecutor("process")
