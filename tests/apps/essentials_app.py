"""Apps for the web-essentials tests: test_forms, test_cookies, test_static, test_sessions.

Every handler is module-level so pool workers can import it by name.  Three apps live here:

- ``app``: forms/uploads (sync, thread and pool routes) and cookies;
- ``static_app``: ``app.static`` and ``static_file``/``cached_file`` routes over the directory
  named by the environment variable ``ESSENTIALS_STATIC_ROOT`` (the tests build it in a tmp dir);
- ``session_app``: sessions in the SQLite database named by ``ESSENTIALS_SESSION_DB``
  (a MemoryStore when it is not set, so importing this module never creates files).
"""
import hashlib
import os

from pixie_web import (App, MemoryStore, Response, RouteType, Sessions, SQLiteStore, cached_file,
                       proc_env, static_file)

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
COOKIE_SECRET = "essentials-cookie-secret"
SESSION_SECRET = "essentials-session-secret"

# ---- forms ------------------------------------------------------------------------------------

# A large header section so the cookie-timing test (G2) and the Content-Type parameter test (E5)
# are not cut short by the header limit.
app = App(max_header_bytes=1024 * 1024)


def describe_upload(request):
    """Fields and, for each upload, its names, size and SHA-256 (read back from ``.file``)."""
    files = []
    for field, upload in request.files.items():
        digest = hashlib.sha256()
        upload.file.seek(0)
        for block in iter(lambda: upload.file.read(1024 * 1024), b""):
            digest.update(block)
        files.append({"field": field, "filename": upload.filename,
                      "raw_filename": upload.raw_filename, "content_type": upload.content_type,
                      "size": upload.size, "sha256": digest.hexdigest()})
    return {"form": [[key, value] for key, value in request.form.items()], "files": files,
            "proc_type": proc_env.proc_type.name}


app.route("/upload/sync", RouteType.sync, methods="POST")(describe_upload)
app.route("/upload/thread", RouteType.thread, methods="POST")(describe_upload)
app.route("/upload/pool", RouteType.pool, methods="POST")(describe_upload)


def make_form_app(**limits):
    """A fresh app with the given parsing limits and the upload route (for TestClient)."""
    form_app = App(**limits)
    form_app.route("/upload", RouteType.sync, methods="POST")(describe_upload)
    return form_app


# ---- cookies ----------------------------------------------------------------------------------

@app.get("/cookies/echo")
def echo_cookies(request):
    return dict(request.cookies)


@app.get("/cookies/defaults")
def cookie_defaults(request):
    response = Response("ok")
    response.set_cookie("plain", "value")
    return response


@app.get("/cookies/attributes")
def cookie_attributes(request):
    response = Response("ok")
    response.set_cookie("aged", "1", max_age=60)
    response.set_cookie("expiring", "2", expires=0)
    response.set_cookie("scoped", "3", path="/account", domain="example.com")
    response.set_cookie("secure", "4", secure=True, httponly=False, samesite="Strict")
    response.set_cookie("crosssite", "5", secure=True, samesite="None")
    response.set_cookie("nosamesite", "6", samesite=None)
    return response


@app.get("/cookies/delete")
def cookie_delete(request):
    response = Response("ok")
    response.delete_cookie("gone", path="/account")
    return response


@app.get("/cookies/reflect")
def cookie_reflect(request):
    """Sets a cookie from query values (as careless code would): injection must not pass."""
    query = request.query
    response = Response("ok")
    response.set_cookie(query.get("name", "reflected"), query.get("value", "v"),
                        path=query.get("path", "/"), domain=query.get("domain"))
    return response


@app.get("/cookies/sign")
def cookie_sign(request):
    max_age = request.query.get("max_age")
    response = Response("ok")
    response.set_cookie("signed", {"user": "ünïcode", "roles": [1, 2, 3], "admin": False},
                        secret=COOKIE_SECRET, max_age=int(max_age) if max_age else None)
    return response


@app.get("/cookies/signed/<name>")
def cookie_signed_value(request, name):
    absent = "<absent>"
    return {"value": request.get_cookie(name, default=absent, secret=COOKIE_SECRET)}


# ---- static files -----------------------------------------------------------------------------

STATIC_ROOT = os.environ.get("ESSENTIALS_STATIC_ROOT", os.path.join(FIXTURES, "static"))

static_app = App(max_header_bytes=1024 * 1024)
static_app.static("/static", STATIC_ROOT)
static_app.static("/static-cached", STATIC_ROOT, cached=True)


@static_app.get("/plain/<path:path>")
def plain_file(request, path):
    return static_file(path, STATIC_ROOT)


@static_app.get("/typed/<path:path>")
def typed_file(request, path):
    return static_file(path, STATIC_ROOT, mimetype="text/x-custom")


@static_app.get("/download/<path:path>")
def download_file(request, path):
    return static_file(path, STATIC_ROOT, download=request.query.get("as") or True)


@static_app.get("/cached/<path:path>")
def cached(request, path):
    return cached_file(path, STATIC_ROOT)


@static_app.get("/follow/<path:path>")
def follow_symlinks(request, path):
    return static_file(path, STATIC_ROOT, follow_symlinks=True)


# ---- sessions ---------------------------------------------------------------------------------

def session_set(request):
    for key, value in request.query.items():
        request.session[key] = value
    return dict(request.session)


def session_get(request):
    return dict(request.session)


def session_flags(request):
    """What a handler sees before touching anything: id and modified flag."""
    return {"id": request.session.id, "modified": request.session.modified,
            "data": dict(request.session)}


def session_noop(request):
    return "this handler never touches the session"


def session_rotate(request):
    old = request.session.id
    request.session.rotate()
    return {"old": old, "new": request.session.id, "data": dict(request.session)}


def session_clear(request):
    request.session.clear()
    return dict(request.session)


def session_pool_write(request):
    """Runs in a pool worker: the session there is a read-only copy."""
    seen = dict(request.session)
    try:
        request.session["from_pool"] = "yes"
    except Exception as error:  # noqa: BLE001 - a refusal is allowed, the test checks the store
        return {"seen": seen, "write_error": type(error).__name__,
                "proc_type": proc_env.proc_type.name}
    return {"seen": seen, "write_error": None, "proc_type": proc_env.proc_type.name}


def add_session_routes(target, with_pool_route=False):
    """Register the session routes on ``target``; the pool route only when asked (it makes the
    app start a process pool)."""
    target.get("/session/set")(session_set)
    target.get("/session/get")(session_get)
    target.get("/session/flags")(session_flags)
    target.get("/session/noop")(session_noop)
    target.get("/session/rotate")(session_rotate)
    target.get("/session/clear")(session_clear)
    if with_pool_route:
        target.route("/session/pool-write", RouteType.pool)(session_pool_write)
    return target


SESSION_DB = os.environ.get("ESSENTIALS_SESSION_DB")

session_app = add_session_routes(App())
session_app.install(Sessions(SESSION_SECRET,
                             store=SQLiteStore(SESSION_DB) if SESSION_DB else MemoryStore()))
