"""A tour of pixie_web: run ``python demo.py`` and open http://127.0.0.1:8000.

Every page says what it shows, which API does it, and shows its own code: the four route
types, routing and url_for, JSON, streaming, redirects, errors, hooks, middleware and a
component, templates, forms and uploads, cookies and sessions, static files, background and
periodic tasks, metrics, WebSockets (a chat), typed parameters with their OpenAPI docs, and
the operations side (several processes, reload, debug timing, the command line).

    python demo.py                      # serve on 127.0.0.1:8000 (``run`` is the default)
    python demo.py run --processes 2    # two serving processes under a supervisor
    python demo.py run --reload --debug # restart on edits; Server-Timing on responses
    python demo.py routes               # the route table
    python demo.py hello Ada --shout    # a command of this app (@app.command)
"""
import asyncio
import collections
import datetime
import html
import inspect
import itertools
import os
import textwrap
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pixie_web import (App, CookieStore, HTTPError, Metrics, Param, Response, RouteType,
                       Sessions, abort, in_pool, proc_env, redirect, static_file, template,
                       view)

app = App(title="pixie_web demo", slow_handler_threshold=0.1)   # /sleep is slower
app.install(Sessions(os.environ.get("DEMO_SECRET", "demo-secret-change-me"),
                     store=CookieStore()))
app.install(Metrics())
HERE = os.path.dirname(os.path.abspath(__file__))


def slow_fib(n):
    """Deliberately slow: CPU-bound work is what pool routes are for."""
    return n if n < 2 else slow_fib(n - 1) + slow_fib(n - 2)


# ---- the pages' frame -----------------------------------------------------------------------

LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} - pixie_web tour</title>
<link rel="icon" href="data:,">
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:50rem;margin:0 auto;
padding:.5rem 1rem 2rem;color:#1d1d1f}
a{color:#2647c8}nav{font-size:.9rem;margin:.5rem 0}h1{font-size:1.6rem;margin:.5rem 0}
h2{font-size:1.1rem;margin:1.4rem 0 .4rem}li{margin:.3rem 0}ul{padding-left:1.2rem}
.what{background:#f1f4ff;border-left:4px solid #3d5afe;padding:.5rem .8rem;margin:0 0 1rem}
code,pre{font-size:.85rem;background:#f3f3f3;border-radius:4px}code{padding:.05rem .25rem}
pre{font-size:.8rem;line-height:1.35;padding:.6rem .8rem;overflow-x:auto}
pre code{font-size:inherit;padding:0;background:none}
.topics{columns:20rem 2;column-gap:2.5rem}.topics>div{break-inside:avoid}
.error{color:#b00020}.swatch{height:5rem;border-radius:6px;border:1px solid #ccc}
input,button{font:inherit;padding:.25rem .5rem;margin:.1rem 0;max-width:100%}
#log{border:1px solid #ccc;border-radius:4px;min-height:6rem;padding:.5rem;
white-space:pre-wrap}
</style></head><body>
% if back:
<nav><a href="/">&larr; the whole tour</a></nav>
% end
<h1>{{ title }}</h1>
<p class="what">{{! what }}</p>
{{! body }}
% if code:
<h2>The code</h2>
<pre><code>{{ code }}</code></pre>
% end
</body></html>"""


def code_of(*objects):
    """The source of these functions or classes, as this file has it."""
    return "\n\n".join(textwrap.dedent(inspect.getsource(obj)).strip() for obj in objects)


def page(title, what, body, code=(), back=True):
    """One page of the tour: a title, what it shows (HTML), its body (HTML), and the
    source of the functions that make it."""
    return template(LAYOUT, title=title, what=what, body=body, code=code_of(*code),
                    back=back)


# ---- the index ------------------------------------------------------------------------------

INDEX = """<div class="topics">
<div><h2>Route types: how a handler runs</h2><ul>
<li><a href="/hello/world">/hello/world</a> &mdash; <code>sync</code>: a plain <code>def</code>
on the event loop</li>
<li><a href="/user/42">/user/42</a> &mdash; <code>asnc</code>: an <code>async def</code>,
awaited on the loop</li>
<li><a href="/sleep">/sleep</a> &mdash; <code>thread</code>: a blocking call in the thread
pool</li>
<li><a href="/fib/27">/fib/27</a> &mdash; <code>pool</code>: CPU-bound work in a worker
process</li>
</ul></div>
<div><h2>Routing</h2><ul>
<li><a href="/routing">/routing</a> &mdash; wildcards, the <code>int</code>,
<code>float</code>, <code>path</code> and <code>re</code> filters, and
<code>url_for</code></li>
</ul></div>
<div><h2>Responses</h2><ul>
<li><a href="/headers">/headers</a> &mdash; a returned <code>dict</code> is JSON (here: your
request's headers)</li>
<li><a href="/count/5">/count/5</a> &mdash; an async generator, streamed chunk by chunk</li>
<li><a href="/pool-stream/4">/pool-stream/4</a> &mdash; a generator in a worker process,
streamed back</li>
<li><a href="/go-home">/go-home</a> &mdash; <code>redirect(app.url_for("index"))</code></li>
<li><a href="/source">/source</a> &mdash; <code>static_file</code>: this demo's source, with
ETag and ranges</li>
</ul></div>
<div><h2>Errors</h2><ul>
<li><a href="/teapot">/teapot</a> &mdash; <code>abort(418, text)</code></li>
<li><a href="/http-error">/http-error</a> &mdash; <code>raise HTTPError(422, {...})</code>, a
JSON error</li>
<li><a href="/missing">/missing</a> &mdash; a custom 404 page,
<code>@app.error(404)</code></li>
<li><a href="/boom">/boom</a> &mdash; an unhandled exception: a generic 500, the traceback in
the log</li>
</ul></div>
<div><h2>Around every request</h2><ul>
<li><a href="/hooks">/hooks</a> &mdash; <code>before_request</code>,
<code>after_request</code>, middleware and a component</li>
</ul></div>
<div><h2>Web pages</h2><ul>
<li><a href="/template">/template</a> &mdash; <code>template()</code> and
<code>@view</code></li>
<li><a href="/form">/form</a> &mdash; a POST form with validation, a GET search, a file
upload</li>
<li><a href="/visits">/visits</a> &mdash; a session (the <code>Sessions</code> component) and a
cookie</li>
</ul></div>
<div><h2>Live</h2><ul>
<li><a href="/chat">/chat</a> &mdash; a WebSocket chat; CPU work through
<code>in_pool</code></li>
<li><a href="/tasks">/tasks</a> &mdash; background tasks and a periodic one</li>
<li><a href="/metrics">/metrics</a> &mdash; Prometheus metrics, <code>Metrics()</code></li>
</ul></div>
<div><h2>APIs</h2><ul>
<li><a href="/api">/api</a> &mdash; typed parameters, 422 errors, dataclass bodies</li>
<li><a href="/docs">/docs</a> &mdash; the OpenAPI docs page
(<a href="/openapi.json">/openapi.json</a>)</li>
</ul></div>
<div><h2>Running it</h2><ul>
<li><a href="/operations">/operations</a> &mdash; processes, reload, debug timing, this
script's own commands</li>
</ul></div>
</div>"""


@app.route("/")
def index(request):
    return page("pixie_web tour", "Each link shows one thing pixie_web does; each page says "
                "which API does it and shows its code.", INDEX, back=False)


# ---- route types ----------------------------------------------------------------------------

GREETINGS = {"en": "Hello", "fr": "Bonjour", "de": "Hallo"}


def where(route_type, about):
    """What the route-type pages answer: how the handler ran, in which process and thread."""
    return {"route_type": route_type, "process": proc_env.proc_type.name, "pid": os.getpid(),
            "thread": threading.current_thread().name, "about": about}


@app.route("/hello/<name>")
def hello(request, name):
    greeting = GREETINGS.get(request.query.get("lang", "en"), "Hello")
    return page(f"{greeting}, {name}!", "A <code>sync</code> route: a plain <code>def</code>, "
                "run on the event loop (keep it quick). The <code>&lt;name&gt;</code> "
                "wildcard is its argument; <code>?lang=fr</code> is read from "
                "<code>request.query</code>.",
                f"<p>Served by the {proc_env.proc_type.name} process, pid {os.getpid()}, on "
                f"its {threading.current_thread().name}.</p>",
                code=[hello])


@app.route("/user/<id:int>")
async def user(request, id):
    await asyncio.sleep(0)      # where an async database call would be
    return {"id": id, "name": f"user {id}", **where(
        "asnc", "an async def handler, awaited on the event loop; its dict is sent as JSON")}


@app.route("/sleep", RouteType.thread)
def sleepy(request):
    time.sleep(0.2)   # blocking, but only this thread waits
    return {"slept": 0.2, **where(
        "thread", "RouteType.thread: a plain def run in the thread pool, so it may block")}


@app.route("/fib/<n:int>", RouteType.pool, timeout=20)
def fib(request, n):
    if n > 32:
        abort(400, "n must be at most 32")
    started = time.perf_counter()
    value = slow_fib(n)
    return {"n": n, "fib": value, "seconds": round(time.perf_counter() - started, 3), **where(
        "pool", "RouteType.pool: CPU-bound work in a worker process (another pid), so the "
        "event loop stays free")}


# ---- routing: wildcards, filters, url_for ---------------------------------------------------

@app.get("/price/<amount:float>")
def price(request, amount):
    return {"amount": amount, "with_vat": round(amount * 1.2, 2)}


@app.get("/files/<path:path>")
def files(request, path):
    return {"path": path, "segments": path.split("/")}


@app.get("/color/<rgb:re:[0-9a-fA-F]{6}>")
def color(request, rgb):
    return page(f"Colour #{rgb}", "The <code>re:</code> filter: only six hex digits match "
                "this route; anything else is a 404.",
                f'<div class="swatch" style="background:#{rgb}"></div>', code=[color])


#: What /routing builds with url_for: (what it shows, route name, parameters).
URL_EXAMPLES = [
    ("one segment, percent-encoded", "hello", {"name": "Ada Lovelace"}),
    ("a slash inside a segment stays encoded", "hello", {"name": "AC/DC"}),
    ("extra parameters become the query string", "hello", {"name": "Ada", "lang": "fr"}),
    ("int: digits only, passed as an int", "user", {"id": 7}),
    ("float: passed as a float", "price", {"amount": 9.5}),
    ("path: may contain slashes", "files", {"path": "docs/guide/intro.txt"}),
    ("re: a regular expression of your own", "color", {"rgb": "3d5afe"}),
]


@app.route("/routing")
def routing(request):
    patterns = {route.name: route.path for route in app.routes()}
    items = []
    for note, name, params in URL_EXAMPLES:
        url = app.url_for(name, **params)
        call = f"app.url_for({name!r}, " + ", ".join(
            f"{key}={value!r}" for key, value in params.items()) + ")"
        items.append(f"<li><code>{html.escape(patterns[name])}</code> &mdash; {note}<br>"
                     f"<code>{html.escape(call)}</code> &rarr; "
                     f'<a href="{html.escape(url)}">{html.escape(url)}</a></li>')
    return page("Routing", "Wildcards in a path become the handler's arguments; a filter "
                "(<code>int</code>, <code>float</code>, <code>path</code>, "
                "<code>re:REGEX</code>) says what matches and converts it. "
                "<code>app.url_for(name, **params)</code> builds a route's URL.",
                "<ul>" + "".join(items) + "</ul><p><code>/user/abc</code> matches no route "
                "(a 404); a value that matches but does not convert (an <code>int</code> of "
                "5,000 digits) is a 400.</p>", code=[price, files])


# ---- responses ------------------------------------------------------------------------------

@app.route("/headers")
def headers(request):
    return dict(request.headers.items())


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


@app.route("/go-home")
def go_home(request):
    redirect(app.url_for("index"))        # raises: ends the request from anywhere


@app.route("/source")
def source(request):
    return static_file("demo.py", root=HERE, mimetype="text/plain; charset=utf-8")


# ---- errors ---------------------------------------------------------------------------------

@app.route("/teapot")
def teapot(request):
    abort(418, "I'm a teapot, not a coffee machine.")


@app.route("/http-error")
def http_error(request):
    raise HTTPError(422, {"error": "an HTTPError's body may be anything a handler returns",
                          "status": 422})


@app.route("/boom")
def boom(request):
    raise RuntimeError("boom: this traceback goes to the server log, and to the page with "
                       "--debug")


@app.error(404)
def not_found(request, error):
    return page("Not found", "<code>@app.error(404)</code> made this page; what it returns "
                "keeps the error's status. Without it, a 404 is plain text.",
                f"<p>Nothing at <code>{html.escape(request.path)}</code>.</p>",
                code=[not_found])


# ---- around every request: hooks, middleware, a component -----------------------------------

class RequestCounter:
    """A component: an object with some of name, setup, startup, shutdown and middleware,
    given to app.install()."""
    name = "counter"

    def __init__(self):
        self.started = None
        self.statuses = collections.Counter()

    def startup(self, app):
        self.started = time.strftime("%H:%M:%S")

    async def middleware(self, request, call_next):
        response = await call_next(request)
        self.statuses[response.status] += 1
        return response


COUNTER = app.install(RequestCounter())


@app.before_request
def guard_admin(request):
    if request.path == "/admin" and request.query.get("key") != "demo":
        return page("Keep out", "A <code>before_request</code> hook answered instead of the "
                    "handler: it returned something other than None.",
                    '<p>Try <a href="/admin?key=demo">/admin?key=demo</a>.</p>'), 401
    request.state["guard"] = "let through"


@app.after_request
def add_powered_by(request, response):
    response.headers["X-Powered-By"] = "pixie_web"


@app.middleware
async def time_handler(request, call_next):
    started = time.perf_counter()
    response = await call_next(request)
    response.headers["X-Handler-Time"] = f"{(time.perf_counter() - started) * 1000:.2f}ms"
    return response


@app.route("/admin")
def admin(request):
    return page("Admin", "The <code>before_request</code> hook let this request through and "
                "left a note in <code>request.state</code>.",
                f"<p>request.state: <code>{html.escape(repr(request.state))}</code></p>")


@app.route("/hooks")
def hooks(request):
    statuses = ", ".join(f"{status}: {number}"
                         for status, number in sorted(COUNTER.statuses.items()))
    return page("Hooks, middleware, a component", "<code>@app.before_request</code> may "
                "answer instead of the handler, <code>@app.after_request</code> may change "
                "every response, <code>@app.middleware</code> wraps the call, and "
                "<code>app.install(component)</code> adds all of that in one object.", f"""
<ul><li><a href="/admin">/admin</a> &mdash; refused by the before_request hook (401)</li>
<li><a href="/admin?key=demo">/admin?key=demo</a> &mdash; let through</li></ul>
<p>The component, <code>COUNTER = app.install(RequestCounter())</code>, saw the server
start at {COUNTER.started} and has counted these responses by status:
{statuses or "none yet"}.</p>
<p><code>curl -i {html.escape(request.url)}</code> shows <code>X-Powered-By</code> (the
after_request hook) and <code>X-Handler-Time</code> (the middleware).</p>""",
                code=[guard_admin, add_powered_by, time_handler, RequestCounter])


# ---- templates ------------------------------------------------------------------------------

PLANETS = """<p>Hello {{ name }}! Escaped by default: {{ risky }}</p>
<ul>
% for planet in planets:
  <li>{{ planet }}{{ " (you are here)" if planet == "Earth" else "" }}</li>
% end
</ul>"""


@app.route("/template")
@view(LAYOUT, title="Templates", back=True, what="<code>template(source_or_name, "
      "**variables)</code> renders SimpleTemplate syntax: <code>{{ }}</code> escapes, "
      "<code>%</code> lines are Python. <code>@view(template)</code> renders the dict a "
      "handler returns: this whole page is one.")
def templated(request):
    body = template(PLANETS, name="visitor", risky="<script>alert(1)</script>",
                    planets=["Mercury", "Venus", "Earth", "Mars"])
    return {"body": body + "<h2>The template</h2><pre>" + html.escape(PLANETS) + "</pre>",
            "code": code_of(templated)}


# ---- forms and uploads ----------------------------------------------------------------------

FORM = """<form method="post" action="/form">
% for message in errors:
<p class="error">{{ message }}</p>
% end
<p><label>Name <input name="name" value="{{ name }}"></label></p>
<p><label>Age <input name="age" value="{{ age }}" inputmode="numeric"></label></p>
<p><button>Send</button></p></form>
<h2>Search the routes (a GET form)</h2>
<form method="get" action="/search">
<p><input name="q" placeholder="fib" aria-label="search"> <button>Search</button>
(or <a href="/search?q=fib">/search?q=fib</a>)</p></form>
<h2>Upload a file</h2>
<form method="post" action="/upload" enctype="multipart/form-data">
<p><input type="file" name="file" aria-label="file"> <button>Upload</button></p></form>"""


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
                        f'{int(age)}.</p><p><a href="/form">Again</a></p>')
    return page("Forms", "<code>request.form</code> reads urlencoded and multipart forms, "
                "<code>request.query</code> a GET form, <code>request.files</code> the "
                "uploads. An invalid form is shown again with its errors, status 400.",
                template(FORM, name=name, age=age, errors=errors),
                code=[form, upload]), 400 if errors else 200


@app.get("/search")
def search(request):
    query = request.query.get("q", "").strip().lower()
    found = [route for route in app.routes()
             if query and query in f"{route.path} {route.name}".lower()]
    items = "".join(f"<li><code>{route.method} {html.escape(route.path)}</code> "
                    f"({route.route_type.name})</li>" for route in found)
    return page("Search", "A GET form's fields arrive in <code>request.query</code>; "
                "<code>app.routes()</code> lists the routes.",
                f"<p>{len(found)} route(s) match <code>{html.escape(query)}</code>:</p>"
                f"<ul>{items}</ul>", code=[search])


@app.post("/upload")
def upload(request):
    upload = request.files.get("file")
    if upload is None:
        abort(400, "no file was sent")
    return page("Upload", "<code>request.files</code> holds FileUpload objects; large ones "
                "are spooled to disk as they arrive.",
                f"<p>{html.escape(upload.filename)}: {upload.size} bytes.</p>")


# ---- cookies and sessions -------------------------------------------------------------------

@app.route("/visits")
def visits(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    response = Response(page(
        "Sessions and cookies", "<code>app.install(Sessions(secret, store=CookieStore()))"
        "</code> gives each request a <code>request.session</code> dict, kept in a signed "
        "cookie and saved when changed. The last-visit cookie is a plain one, "
        "<code>response.set_cookie</code>.",
        f"<p>You have seen this page {request.session['visits']} time(s) in this session."
        f"</p><p>Last visit (plain cookie): "
        f"{html.escape(request.cookies.get('last_visit', 'never'))}</p>", code=[visits]))
    response.set_cookie("last_visit", datetime.datetime.now().strftime("%H:%M:%S"))
    return response


# ---- background and periodic tasks ----------------------------------------------------------

JOBS = []           # what /tasks scheduled, newest first
JOB_NUMBERS = itertools.count(1)
TICKS = {"count": 0, "last": None}


def slow_job(job):
    """A second of blocking work, like sending an e-mail (a sync task runs in a thread)."""
    time.sleep(1.0)
    job["done"] = time.strftime("%H:%M:%S")


def flaky_job(job):
    """Fails on its first attempt (a warning in the log), then succeeds on a retry."""
    job["attempts"] += 1
    if job["attempts"] == 1:
        raise ConnectionError("the first attempt fails on purpose: app.add_task retries it")
    job["done"] = time.strftime("%H:%M:%S")


@app.every(2.0)
def tick():
    TICKS["count"] += 1
    TICKS["last"] = time.strftime("%H:%M:%S")


TASKS = """<form method="post"><p>
<button name="kind" value="after">request.add_task: a one-second job</button>
<button name="kind" value="retry">app.add_task: fails once, then retries</button></p></form>
<ul>
% for job in jobs:
<li id="job-{{ job['number'] }}">job {{ job["number"] }} ({{ job["how"] }}): scheduled at
{{ job["scheduled"] }},
%   if job["done"]:
done at {{ job["done"] }}{{ f", on attempt {job['attempts']}" if job["attempts"] > 1 else "" }}
%   else:
running&hellip; reload this page in a second
%   end
</li>
% end
</ul>
<p>The periodic task has run {{ ticks["count"] }} time(s), last at
{{ ticks["last"] or "not yet" }}. <a href="/metrics">/metrics</a> counts the tasks in
<code>pixie_tasks_total</code>.</p>
<p>With <code>--processes N</code> each process keeps its own list, and the periodic task
runs in the first process only.</p>"""


@app.route("/tasks", methods=["GET", "POST"])
def tasks(request):
    if request.method == "POST":
        retried = request.form.get("kind") == "retry"
        job = {"number": next(JOB_NUMBERS), "scheduled": time.strftime("%H:%M:%S"),
               "how": "app.add_task" if retried else "request.add_task",
               "attempts": 0, "done": None}
        JOBS.insert(0, job)
        del JOBS[10:]
        if retried:
            app.add_task(flaky_job, job, retries=2, timeout=5)     # starts at once
        else:
            request.add_task(slow_job, job)         # starts once the response is sent
        redirect(app.url_for("tasks") + f"#job-{job['number']}")
    return page("Background and periodic tasks", "<code>request.add_task(f, ...)</code> "
                "starts once the response has been sent; <code>app.add_task(f, ..., "
                "retries=, timeout=)</code> starts at once; <code>@app.every(2.0)</code> "
                "runs on a timer.", template(TASKS, jobs=JOBS, ticks=TICKS),
                code=[tasks, slow_job, flaky_job, tick])


# ---- WebSockets -----------------------------------------------------------------------------

CHAT = """<p><input id="text" placeholder="Say something, or 'fib 25'" size="24"
aria-label="message"> <button id="send">Send</button></p>
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
    return page("WebSocket chat", "<code>@app.websocket</code> handlers get a ws to iterate "
                "and send on; open this page in two windows. 'fib N' runs in the process "
                "pool with <code>await in_pool(...)</code>, so the socket never stalls. "
                "(Rooms live in one process: under <code>--processes N</code>, a room is per "
                "process.)", CHAT,
                code=[chat])


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
                "converted, checked, and every error listed in a 422. The same annotations "
                "make the OpenAPI document.", """
<ul>
<li><a href="/api/items?limit=5&amp;order=qty">/api/items?limit=5&amp;order=qty</a>
&mdash; valid</li>
<li><a href="/api/items?limit=500&amp;order=price">/api/items?limit=500&amp;order=price</a>
&mdash; two errors, one 422</li>
<li><a href="/docs">/docs</a> &mdash; the OpenAPI document, as a page</li>
</ul>
<p>Try: <code>curl -X POST localhost:8000/api/items -H 'Content-Type: application/json'
-d '{"name": "bolt", "qty": 0}'</code></p>""", code=[Item, list_items, add_item])


# ---- running it -----------------------------------------------------------------------------

@app.route("/operations")
def operations(request):
    debug = ("Debug mode is <strong>on</strong>: this response carries a "
             "<code>Server-Timing</code> header (see your browser's developer tools, "
             "Network tab) and a 500 page shows its traceback." if app.debug else
             "Debug mode is <strong>off</strong>: start with <code>--debug</code> to get a "
             "<code>Server-Timing</code> header on every response and tracebacks in 500 "
             "pages.")
    return page("Running it", "The same script, run in the ways a deployment needs; "
                "<code>app.cli()</code> gives it a command line.", f"""
<p>This page was served by process {os.getpid()}. {debug}</p>
<pre># two processes on one port (SIGHUP replaces them one by one)
python demo.py run --processes 2
# restart when a .py file or a template changes
python demo.py run --reload
# tracebacks in 500 pages, Server-Timing on every response
python demo.py run --debug
# the route table, and every option
python demo.py routes
python demo.py --help
# this app's own command, an @app.command()
python demo.py hello Ada --shout</pre>
<p>Handlers slower than {app.slow_handler_threshold:g} s are logged with their route
(<code>App(slow_handler_threshold=0.1)</code>): <a href="/sleep">/sleep</a>, which sleeps for
0.2 s, is. The Server-Timing header splits a response's time into parse, queue, handler and
write.</p>""",
                code=[greet])


@app.command("hello")
def greet(name: str, shout: bool = False):
    """Greet NAME from the command line."""
    greeting = f"Hello, {name}!"
    return greeting.upper() if shout else greeting


if __name__ == "__main__":
    app.cli()
