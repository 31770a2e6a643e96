"""App for test_request.py, test_testclient.py and test_cli.py: it echoes what the request object exposes.

Every handler is module-level so pool workers (and ``python -m pixie_web``) can import it by name.
"""
import hashlib
import os

from pixie_web import App, ProcessType, Response, RouteType, proc_env

# Small limits so the tests stay fast; a large header section so the cookie-timing test (G2)
# is not cut short by the header limit.
MAX_BODY_SIZE = 1024 * 1024
MAX_QUERY_PARAMS = 100

app = App(max_body_size=MAX_BODY_SIZE, max_query_params=MAX_QUERY_PARAMS,
          max_header_bytes=1024 * 1024)

ECHO_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "PURGE")
BOOM_MESSAGE = "secret-boom-message-42"

LIFECYCLE = []   # what the startup/shutdown hooks saw, in order


def _attempt(read):
    """Read one attribute; an exception becomes a readable string so one broken attribute
    does not hide the others."""
    try:
        return read()
    except Exception as error:  # noqa: BLE001 - reported to the test, not swallowed silently
        return f"ERROR {type(error).__name__}: {error}"


def _describe(request):
    return {
        "method": _attempt(lambda: request.method),
        "verb": _attempt(lambda: request.verb),
        "path": _attempt(lambda: request.path),
        "raw_path": _attempt(lambda: request.raw_path),
        "query_string": _attempt(lambda: request.query_string),
        "scheme": _attempt(lambda: request.scheme),
        "host": _attempt(lambda: request.host),
        "url": _attempt(lambda: request.url),
        "remote_addr": _attempt(lambda: request.remote_addr),
        "http_version": _attempt(lambda: request.http_version),
        "protocol": _attempt(lambda: request.protocol),
        "content_type": _attempt(lambda: request.content_type),
        "content_length": _attempt(lambda: request.content_length),
        "route_path": _attempt(lambda: request.route.path),
        "route_name": _attempt(lambda: request.route.name),
        "app_is_app": _attempt(lambda: request.app is app),
        "state_is_dict": _attempt(lambda: isinstance(request.state, dict)),
        "state_from_hook": _attempt(lambda: request.state.get("before_request_ran")),
        "x_test": _attempt(lambda: [request.headers.get("x-test"), request.headers.get("X-TEST"),
                                    request.headers["X-Test"] if "x-TeSt" in request.headers
                                    else None]),
        "x_multi": _attempt(lambda: request.headers.getall("X-Multi")),
        "x_multi_last": _attempt(lambda: request.headers.get("x-multi")),
    }


@app.before_request
def mark_state(request):
    request.state["before_request_ran"] = "yes"


@app.on_startup
def record_startup(started_app):
    LIFECYCLE.append(("startup", started_app is app))


@app.on_shutdown
async def record_shutdown(stopped_app):
    LIFECYCLE.append(("shutdown", stopped_app is app))


@app.route("/echo", methods=ECHO_METHODS, name="echo")
def echo(request):
    return _describe(request)


@app.route("/echo/<rest:path>", methods=ECHO_METHODS, name="echo_path")
def echo_path(request, rest):
    return _describe(request)


@app.route("/query")
def query(request):
    q = request.query
    return {
        "get_a": q.get("a"),
        "index_a": q["a"] if "a" in q else None,
        "getall_a": q.getall("a"),
        "getlist_a": q.getlist("a"),
        "get_missing": q.get("zz", "fallback"),
        "in_a": "a" in q,
        "in_missing": "zz" in q,
        "items": [[key, value] for key, value in q.items()],
        "keys": list(q.keys()),
    }


@app.route("/cookies")
def cookies(request):
    return {
        "cookies": dict(request.cookies),
        "get_a": request.get_cookie("a"),
        "get_missing": request.get_cookie("zz", "fallback"),
    }


@app.route("/body", methods=("POST", "PUT"))
def body(request):
    data = request.body
    return {
        "is_bytes": isinstance(data, bytes),
        "length": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "hex": data.hex() if len(data) <= 4096 else None,
        "raw_data_equal": request.raw_data == data,
    }


@app.route("/text", methods=("POST",))
def text(request):
    return {"text": request.text}


@app.route("/json", methods=("POST",))
def json_body(request):
    return {"json": request.json}


@app.route("/form", methods=("POST",))
def form(request):
    fields = request.form
    return {"items": [[key, value] for key, value in fields.items()],
            "getall_a": fields.getall("a"), "b": fields.get("b"),
            "content_type": request.content_type}


@app.route("/params", methods=("GET", "POST"))
def params(request):
    merged = request.params
    return {"q": merged.get("q"), "getall_a": merged.getall("a"),
            "form_has_q": "q" in request.form}


@app.route("/stream", methods=("POST",), stream_body=True)
async def stream(request):
    digest = hashlib.sha256()
    length = chunks = 0
    async for chunk in request.stream():
        digest.update(chunk)
        length += len(chunk)
        chunks += 1
    return {"length": length, "chunks": chunks, "sha256": digest.hexdigest()}


@app.route("/pool/echo", RouteType.pool, methods=("GET", "POST"))
def pool_echo(request):
    return {
        "in_pool": proc_env.proc_type == ProcessType.pool,
        "pid": os.getpid(),
        "method": request.method,
        "getall_a": request.query.getall("a"),
        "body": request.body.decode("utf-8"),
        "x_test": request.headers.get("x-test"),
        "cookie_c": request.cookies.get("c"),
    }


@app.route("/setcookie/<name>/<value>")
def set_cookie(request, name, value):
    response = Response("set")
    response.set_cookie(name, value)
    return response


@app.route("/delcookie/<name>")
def delete_cookie(request, name):
    response = Response("deleted")
    response.delete_cookie(name)
    return response


@app.route("/boom")
def boom(request):
    raise RuntimeError(BOOM_MESSAGE)


@app.route("/bad-header")
def bad_header(request):
    response = Response("never sent")
    response.headers["X-Bad"] = "a\r\nInjected: 1"
    return response
