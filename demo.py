"""A tour of pixie_web: run ``python demo.py`` and open http://127.0.0.1:8000.

Every route type (sync, asnc, thread, pool), JSON, path wildcards, streaming,
redirects, error pages and hooks, each one link away from the index page.
"""
import asyncio
import html
import os
import time

from pixie_web import App, HTTPError, Response, RouteType, abort, proc_env, redirect

app = App()


def slow_fib(n):
    """Deliberately slow: CPU-bound work is what pool routes are for."""
    return n if n < 2 else slow_fib(n - 1) + slow_fib(n - 2)


INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pixie_web tour</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;
line-height:1.5}code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}
li{margin:.3rem 0}</style></head><body>
<h1>pixie_web tour</h1>
<p>Each route below runs in a different way. Watch the process id change for pool routes.</p>
<ul>
<li><a href="/hello/world">/hello/world</a> — <code>sync</code>, on the event loop</li>
<li><a href="/user/42">/user/42</a> — <code>asnc</code>, JSON from an <code>async def</code></li>
<li><a href="/sleep">/sleep</a> — <code>thread</code>, a blocking call in the thread pool</li>
<li><a href="/fib/27">/fib/27</a> — <code>pool</code>, CPU-bound work in a worker process</li>
<li><a href="/count/5">/count/5</a> — a generator streamed chunk by chunk</li>
<li><a href="/pool-stream/4">/pool-stream/4</a> — a generator streamed back from a worker process</li>
<li><a href="/headers">/headers</a> — the request headers as JSON</li>
<li><a href="/go-home">/go-home</a> — a redirect</li>
<li><a href="/teapot">/teapot</a> — <code>abort(418)</code></li>
<li><a href="/missing">/missing</a> — the custom 404 page</li>
<li><a href="/boom">/boom</a> — an unhandled exception (generic 500; run with --debug for the traceback)</li>
</ul></body></html>"""


@app.route("/")
def index(request):
    return INDEX


@app.route("/hello/<name>")
def hello(request, name):
    return f"<h1>Hello, {name}!</h1><p>Served on the event loop by pid {os.getpid()}.</p>"


@app.route("/user/<id:int>")
async def user(request, id):
    await asyncio.sleep(0)
    return {"id": id, "name": f"user {id}", "process": proc_env.proc_type.name}


@app.route("/sleep", RouteType.thread)
def sleepy(request):
    time.sleep(0.2)   # blocking, but only this thread waits
    return {"slept": 0.2, "process": proc_env.proc_type.name}


@app.route("/fib/<n:int>", RouteType.pool, timeout=20)
def fib(request, n):
    if n > 32:
        abort(400, "n must be at most 32")
    started = time.perf_counter()
    value = slow_fib(n)
    return {"n": n, "fib": value, "pid": os.getpid(), "process": proc_env.proc_type.name,
            "seconds": round(time.perf_counter() - started, 3)}


@app.route("/count/<n:int>")
async def count(request, n):
    for i in range(1, min(n, 20) + 1):
        yield f"{i}\n"
        await asyncio.sleep(0.2)


@app.route("/pool-stream/<n:int>", RouteType.pool)
def pool_stream(request, n):
    for i in range(1, min(n, 20) + 1):
        yield f"chunk {i} from worker pid {os.getpid()}\n"
        time.sleep(0.2)


@app.route("/headers")
def headers(request):
    return dict(request.headers.items())


@app.route("/go-home")
def go_home(request):
    redirect("/")


@app.route("/teapot")
def teapot(request):
    abort(418, "I'm a teapot, not a coffee machine.")


@app.route("/boom")
def boom(request):
    raise RuntimeError("this message stays in the server log")


@app.error(404)
def not_found(request, error):
    page = (f"<h1>Nothing at <code>{html.escape(request.path)}</code></h1>"
            "<p><a href='/'>Back to the tour</a></p>")
    return Response(page, 404, content_type="text/html; charset=utf-8")


@app.after_request
def add_powered_by(request, response):
    response.headers["X-Powered-By"] = "pixie_web"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8000, workers=2)
