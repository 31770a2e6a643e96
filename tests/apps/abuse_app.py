"""App for the hardening tests (tests/test_abuse.py, tests/test_differential.py).

Handlers reflect what the parser made of a request (so two servers can be compared
byte for byte) and put request data where an attacker would like it to go: into
response headers, cookies, redirects, download names and the logs.
"""
import os
import tempfile

from pixie_web import (App, HTTPError, RedirectResponse, Response, redirect, static_file)

app = App()
redirecting = App(redirect_slashes=True)

DOWNLOAD_DIR = tempfile.mkdtemp(prefix="pixie-abuse-")
with open(os.path.join(DOWNLOAD_DIR, "report.txt"), "wb") as _file:
    _file.write(b"report\n")


@app.get("/")
def index(request):
    return "ok"


@app.route("/echo", methods=("GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "FOO"))
def echo(request):
    """Everything the parser produced, as a stable text (no JSON library in the way)."""
    return repr((request.method, request.raw_path, request.path, request.query_string,
                 request.http_version, request._header_pairs, bytes(request.body))).encode()


@app.get("/query")
def query(request):
    return str(len(request.query.items()))


@app.post("/form")
def form(request):
    return str(len(request.form.items()))


@app.get("/cookie")
def cookie(request):
    return str(len(request.cookies.get("a", "")))


@app.post("/json")
def json_body(request):
    data = request.json
    return type(data).__name__


@app.post("/drain")
def drain(request):
    return str(len(request.body))


BIG = b"b" * (4 * 1024 * 1024)


@app.get("/big")
def big(request):
    return BIG


# ---- response-side safety: request data pushed into the response head ----

@app.get("/header")
def header(request):
    return Response("x", headers={"X-Reflected": request.query.get("v", "")})


@app.get("/header-name")
def header_name(request):
    return Response("x", headers={request.query.get("n", "X"): "1"})


@app.get("/redirect")
def do_redirect(request):
    redirect(request.query.get("to", "/"))


@app.get("/redirect-response")
def redirect_response(request):
    return RedirectResponse(request.query.get("to", "/"))


@app.get("/error-header")
def error_header(request):
    raise HTTPError(400, "bad", {"X-Reason": request.query.get("v", "")})


@app.get("/tuple-header")
def tuple_header(request):
    return "x", 200, {"X-Reflected": request.query.get("v", "")}


@app.get("/status")
def status(request):
    return "x", int(request.query.get("s", "200"))


@app.get("/cookie-set")
def cookie_set(request):
    response = Response("x")
    response.set_cookie(request.query.get("name", "c"), request.query.get("value", ""),
                        path=request.query.get("path", "/"),
                        domain=request.query.get("domain") or None)
    return response


@app.get("/download")
def download(request):
    return static_file("report.txt", DOWNLOAD_DIR, download=request.query.get("name", True))


@app.get("/boom/<what>")
def boom(request, what):
    raise RuntimeError("boom")


# ---- redirect_slashes: a catch-all that ends with a slash ----

@redirecting.get("/<rest:path>/")
def with_slash(request, rest):
    return "slash"


@redirecting.get("/")
def redirecting_index(request):
    return "ok"
