"""A tour of pixie_web: run ``python demo.py`` and open http://127.0.0.1:8000.

Every page says what it shows and which API does it: the four route types, routing,
streaming, errors and hooks, templates, forms and uploads, cookies and sessions, static
files, background and periodic tasks, metrics, WebSockets (a chat), typed parameters with
their OpenAPI docs, and the operations side (several processes, reload, debug timing).

    python demo.py                      # serve on 127.0.0.1:8000 (``run`` is the default)
    python demo.py run --processes 2    # two serving processes under a supervisor
    python demo.py run --reload --debug # restart on edits; Server-Timing on responses
    python demo.py routes               # the route table
    python demo.py hello Ada --shout    # a command of this app (@app.command)
"""
import asyncio
import datetime
import html
import os
import time
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pixie_web import (App, Metrics, Param, Response, RouteType, Sessions,
                       abort, in_pool, proc_env, redirect, static_file, template)

app = App(title="pixie_web demo", slow_handler_threshold=1.0)
app.install(Sessions(os.environ.get("DEMO_SECRET", "demo-secret-change-me")))
app.install(Metrics())
HERE = os.path.dirname(os.path.abspath(__file__))


def slow_fib(n):
    """Deliberately slow: CPU-bound work is what pool routes are for."""
    return n if n < 2 else slow_fib(n - 1) + slow_fib(n - 2)


# ---- the pages' frame ----------------------------------------------------------------------

LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} - pixie_web tour</title>
<style>
body{font-family:system-ui,sans-serif;max-width:46rem;margin:1.5rem auto;padding:0 1rem;
line-height:1.5;color:#1d1d1f}
code,pre{background:#f3f3f3;border-radius:3px}code{padding:.1rem .3rem}
pre{padding:.6rem;overflow-x:auto}h2{margin-top:1.6rem;font-size:1.1rem}
li{margin:.25rem 0}.what{color:#555}input,button{font:inherit;padding:.2rem .4rem}
#log{border:1px solid #ccc;min-height:6rem;padding:.5rem;white-space:pre-wrap}
</style></head><body>
<p><a href="/">&larr; tour</a></p>
<h1>{{ title }}</h1>
<p class="what">{{ what }}</p>
{{! body }}
</body></html>"""


def page(title, what, body):
    """One page of the tour: a title, what it shows, and its body (HTML)."""
    return template(LAYOUT, title=title, what=what, body=body)


INDEX = """
<h2>Route types: how a handler runs</h2><ul>
<li><a href="/hello/world">/hello/world</a> &mdash; <code>sync</code>, on the event loop</li>
<li><a href="/user/42">/user/42</a> &mdash; <code>asnc</code>, JSON from an
<code>async def</code></li>
<li><a href="/sleep">/sleep</a> &mdash; <code>thread</code>, a blocking call in the thread
pool</li>
<li><a href="/fib/27">/fib/27</a> &mdash; <code>pool</code>, CPU-bound work in a worker
process</li>
</ul>
<h2>Responses</h2><ul>
<li><a href="/count/5">/count/5</a> &mdash; a generator streamed chunk by chunk</li>
<li><a href="/pool-stream/4">/pool-stream/4</a> &mdash; streamed back from a worker process</li>
<li><a href="/headers">/headers</a> &mdash; the request headers as JSON</li>
<li><a href="/go-home">/go-home</a> &mdash; a redirect</li>
<li><a href="/teapot">/teapot</a> &mdash; <code>abort(418)</code></li>
<li><a href="/missing">/missing</a> &mdash; the custom 404 page</li>
<li><a href="/boom">/boom</a> &mdash; an unhandled exception (a generic 500)</li>
</ul>
<h2>Web pages</h2><ul>
<li><a href="/template">/template</a> &mdash; the template engine</li>
<li><a href="/form">/form</a> &mdash; a form with validation, and a file upload</li>
<li><a href="/visits">/visits</a> &mdash; a session and a cookie</li>
<li><a href="/source">/source</a> &mdash; a static file (this demo's source)</li>
</ul>
<h2>Live</h2><ul>
<li><a href="/chat">/chat</a> &mdash; a WebSocket chat; CPU work through <code>in_pool</code></li>
<li><a href="/tasks">/tasks</a> &mdash; background and periodic tasks</li>
<li><a href="/metrics">/metrics</a> &mdash; Prometheus metrics</li>
</ul>
<h2>APIs</h2><ul>
<li><a href="/api">/api</a> &mdash; typed parameters, 422 errors, dataclass bodies</li>
<li><a href="/docs">/docs</a> &mdash; the OpenAPI docs page
(<a href="/openapi.json">/openapi.json</a>)</li>
</ul>
<h2>Running it</h2><ul>
<li><a href="/operations">/operations</a> &mdash; processes, reload, the command line,
debug timing</li>
</ul>"""


@app.route("/")
def index(request):
    return page("pixie_web tour", "Each link shows one thing pixie_web does; each page says "
                "which API does it.", INDEX)


@app.route("/hello/<name>")
def hello(request, name):
    return page(f"Hello, {name}!", "A sync route: a plain def runs on the event loop; "
                "<name> in the path becomes its argument.",
                f"<p>Served on the event loop by pid {os.getpid()}.</p>")


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



# ---- templates, forms, uploads, sessions, static files ------------------------------------

@app.route("/template")
def templated(request):
    source = """<p>Hello {{ name }}! Escaped by default: {{ risky }}</p>
<ul>
% for planet in planets:
  <li>{{ planet }}</li>
% end
</ul>"""
    body = template(source, name="visitor", risky="<script>alert(1)</script>",
                    planets=["Mercury", "Venus", "Earth"])
    return page("Templates", "template(source, **variables) renders SimpleTemplate syntax: "
                "{{ }} escapes, % lines are Python.",
                body + "<h2>The source</h2><pre>" + html.escape(source) + "</pre>")


FORM = """<form method="post" action="/form">
<p><label>Name <input name="name" value="{{ name }}"></label></p>
<p><label>Age <input name="age" value="{{ age }}" inputmode="numeric"></label></p>
<p><button>Send</button></p></form>
% for message in errors:
<p style="color:#b00">{{ message }}</p>
% end
<h2>Upload a file</h2>
<form method="post" action="/upload" enctype="multipart/form-data">
<p><input type="file" name="file"> <button>Upload</button></p></form>"""


@app.route("/form", methods=["GET", "POST"])
def form(request):
    name, age, errors = request.form.get("name", ""), request.form.get("age", ""), []
    if request.method == "POST":
        if not name.strip():
            errors.append("Name is required.")
        if not age.isdigit() or not 0 < int(age) < 150:
            errors.append("Age must be a whole number between 1 and 149.")
        if not errors:
            return page("Thanks", "The form was valid.", f"<p>Hello {html.escape(name)}, "
                        f"{int(age)}.</p><p><a href='/form'>Again</a></p>")
    return Response(page("Forms", "request.form reads urlencoded and multipart forms; an "
                         "invalid one is shown again with its errors (status 400).",
                         template(FORM, name=name, age=age, errors=errors)),
                    400 if errors else 200)


@app.post("/upload")
def upload(request):
    upload = request.files.get("file")
    if upload is None:
        abort(400, "no file was sent")
    return page("Upload", "request.files holds FileUpload objects; large ones are spooled "
                "to disk as they arrive.",
                f"<p>{html.escape(upload.filename or '(no name)')}: {upload.size} bytes.</p>")


@app.route("/visits")
def visits(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    response = Response(page(
        "Sessions and cookies", "The Sessions component signs its cookie; request.session "
        "is a dict saved when changed. The last-visit cookie is a plain one.",
        f"<p>You have seen this page {request.session['visits']} time(s) in this session."
        f"</p><p>Last visit (plain cookie): "
        f"{html.escape(request.cookies.get('last_visit', 'never'))}</p>"))
    response.set_cookie("last_visit", datetime.datetime.now().strftime("%H:%M:%S"))
    return response


@app.route("/source")
def source(request):
    return static_file("demo.py", root=HERE, mimetype="text/plain; charset=utf-8")


# ---- tasks, metrics -------------------------------------------------------------------------

RECENT = []         # what the background tasks did, newest first
TICKS = {"count": 0, "last": None}


def remember(what):
    RECENT.insert(0, f"{time.strftime('%H:%M:%S')} {what}")
    del RECENT[10:]


@app.every(5.0)
def tick():
    TICKS["count"] += 1
    TICKS["last"] = time.strftime("%H:%M:%S")


@app.route("/tasks", methods=["GET", "POST"])
def tasks(request):
    if request.method == "POST":
        request.add_task(remember, "a task started after its response was sent")
        app.add_task(asyncio.sleep, 0.5)
        redirect("/tasks")
    items = "".join(f"<li>{html.escape(line)}</li>" for line in RECENT) or "<li>none yet</li>"
    return page("Background and periodic tasks",
                "request.add_task runs after the response is sent; app.add_task any time "
                "(with retries and a timeout); @app.every(5.0) runs on a timer.",
                f"<form method='post'><button>Schedule a task</button></form>"
                f"<ul>{items}</ul><p>The periodic task has run {TICKS['count']} time(s), "
                f"last at {TICKS['last'] or 'not yet'}.</p>")


# ---- WebSockets -----------------------------------------------------------------------------

CHAT = """<p><input id="text" placeholder="Say something, or 'fib 25'" size="30">
<button id="send">Send</button></p>
<div id="log"></div>
<script>
const log = document.getElementById("log");
const socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://")
                             + location.host + "/ws/chat/lobby");
socket.onmessage = (event) => { log.textContent += event.data + "\\n"; };
socket.onopen = () => { log.textContent += "(connected)\\n"; };
socket.onclose = (event) => { log.textContent += "(closed " + event.code + ")\\n"; };
function send() {
  const text = document.getElementById("text");
  if (text.value) { socket.send(text.value); text.value = ""; }
}
document.getElementById("send").onclick = send;
document.getElementById("text").onkeydown = (event) => { if (event.key === "Enter") send(); };
</script>"""
ROOMS = {}          # room -> the open sockets in it


@app.route("/chat")
def chat_page(request):
    return page("WebSocket chat", "@app.websocket handlers get a ws to iterate and send on; "
                "open this page in two windows. 'fib N' runs in the process pool with "
                "await in_pool(...), so the socket never stalls.", CHAT)


@app.websocket("/ws/chat/<room>")
async def chat(request, ws, room):
    members = ROOMS.setdefault(room, set())
    members.add(ws)
    try:
        async for message in ws:
            if isinstance(message, str) and message.startswith("fib "):
                n = min(int(message[4:]) if message[4:].isdigit() else 20, 30)
                text = f"fib({n}) = {await in_pool(slow_fib, n)} (from a worker process)"
            else:
                text = f"{room}: {message}"
            for member in list(members):
                if not member.closed:
                    await member.send(text)
    finally:
        members.discard(ws)


# ---- typed parameters -----------------------------------------------------------------------

@dataclass
class Item:
    name: str
    qty: Annotated[int, Param(ge=1, le=1000)] = 1
    tags: list[str] = field(default_factory=list)


ITEMS = [Item("widget", 3, ["blue"])]


@app.get("/api/items")
def list_items(request, limit: Annotated[int, Param(ge=1, le=100)] = 10,
               tag: str | None = None,
               order: Literal["name", "qty"] = "name") -> list[Item]:
    """List the items, optionally of one tag."""
    found = [item for item in ITEMS if tag is None or tag in item.tags]
    return sorted(found, key=lambda item: getattr(item, order))[:limit]


@app.post("/api/items")
def add_item(request, item: Item) -> Item:
    """Add an item (a JSON body; invalid ones get 422)."""
    ITEMS.append(item)
    return item


@app.route("/api")
def api_page(request):
    return page("Typed parameters", "Handler parameters are bound by their annotations: "
                "converted, checked, and every error listed in a 422.", """
<ul>
<li><a href="/api/items?limit=5&amp;order=qty">/api/items?limit=5&amp;order=qty</a>
&mdash; valid</li>
<li><a href="/api/items?limit=500&amp;order=price">/api/items?limit=500&amp;order=price</a>
&mdash; two errors, one 422</li>
<li><a href="/docs">/docs</a> &mdash; the OpenAPI document, as a page</li>
</ul>
<pre>@dataclass
class Item:
    name: str
    qty: Annotated[int, Param(ge=1, le=1000)] = 1
    tags: list[str] = field(default_factory=list)

@app.post("/api/items")
def add_item(request, item: Item) -&gt; Item:
    ...</pre>
<p>Try: <code>curl -X POST localhost:8000/api/items -H 'Content-Type: application/json'
-d '{"name": "bolt", "qty": 0}'</code></p>""")


# ---- operations -----------------------------------------------------------------------------

@app.route("/operations")
def operations(request):
    return page("Running it", "The same script, run in the ways a deployment needs.", f"""
<p>This page was served by process {os.getpid()}.</p>
<pre>python demo.py run --processes 2     # two processes on one port (SIGHUP: replace them)
python demo.py run --reload          # restart when a .py file or template changes
python demo.py run --debug           # tracebacks, and Server-Timing on every response
python demo.py routes                # the route table
python demo.py hello Ada --shout     # this app's own command</pre>
<p>Handlers slower than a second are logged (<code>App(slow_handler_threshold=1.0)</code>);
in debug mode, open your browser's developer tools to see each response's
<code>Server-Timing</code>: parse, queue, handler, write.</p>""")


@app.command("hello")
def greet(name: str, shout: bool = False):
    """Greet NAME from the command line."""
    greeting = f"Hello, {name}!"
    return greeting.upper() if shout else greeting


if __name__ == "__main__":
    app.cli()
