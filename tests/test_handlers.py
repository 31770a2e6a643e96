"""Handlers: every kind of return value, ending a request with
HTTPError/abort/redirect, error handlers, before/after-request hooks,
middleware, debug and production 500s, header and cookie safety, and the
Response API (headers, set_cookie, delete_cookie).

Return values are checked for the ``sync``, ``asnc`` and ``thread`` route types
(``pool`` has its own test file).  Most tests use ``TestClient``; the
``test_wire_*`` tests run ``tests/apps/handlers_app.py`` in a real server.
"""
import email.utils
import http.cookies
import json
import os
import time

import pytest

from pixie_web import (App, FileResponse, HTTPError, JSONResponse, RedirectResponse,
                       Response, RouteType, StreamResponse, TestClient, abort, redirect)
from tests.support import Client, dechunk, raw_exchange, split_reply, status_of

HANDLERS_APP = "tests.apps.handlers_app:app"
ROUTE_TYPES = ["sync", "asnc", "thread"]
CONTROL_CHARACTERS = ["\r", "\n", "\r\n", "\x00", "\x01", "\x0b", "\x1f", "\x7f"]


def add_handler(app, path, route_type, produce):
    """Register ``produce(request)`` as a handler of ``route_type`` (a name)."""
    if route_type == "asnc":
        async def handler(request):
            return produce(request)
    else:
        def handler(request):
            return produce(request)
    app.route(path, route_type=getattr(RouteType, route_type))(handler)


def call(route_type, produce, app=None, method="GET"):
    """Serve ``produce`` at /r with ``route_type`` and return the response to one request."""
    app = app or App()
    add_handler(app, "/r", route_type, produce)
    with TestClient(app) as client:
        return client.request(method, "/r")


def media_type(response):
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def assert_plain_text_error(response, first_line):
    content_type = response.headers.get("content-type", "").replace(" ", "").lower()
    assert content_type == "text/plain;charset=utf-8"
    assert response.text.splitlines()[0] == first_line


def assert_no_internals(body_text, *secrets):
    assert "Traceback" not in body_text
    assert ".py" not in body_text
    assert os.path.dirname(os.path.abspath(__file__)) not in body_text
    for secret in secrets:
        assert secret not in body_text


def cookie_parts(set_cookie_header):
    """(name, value, {attribute-name-lowercase: value}) of one Set-Cookie header."""
    first, *attributes = [part.strip() for part in set_cookie_header.split(";")]
    name, _, value = first.partition("=")
    parsed = {}
    for attribute in attributes:
        key, _, attribute_value = attribute.partition("=")
        parsed[key.strip().lower()] = attribute_value.strip()
    return name, value, parsed


# ---- Return values ----

@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_str_is_200_html_utf8(route_type):
    response = call(route_type, lambda request: "h\u00e9llo <b>")
    assert response.status == 200
    assert response.headers["content-type"].replace(" ", "").lower() == "text/html;charset=utf-8"
    assert response.body == "h\u00e9llo <b>".encode("utf-8")
    assert response.headers["content-length"] == str(len("h\u00e9llo <b>".encode("utf-8")))


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
@pytest.mark.parametrize("make", [bytes, bytearray, memoryview])
def test_bytes_like_is_200_octet_stream(route_type, make):
    data = b"\x00\x01raw\xff"
    response = call(route_type, lambda request: make(data))
    assert response.status == 200
    assert media_type(response) == "application/octet-stream"
    assert response.body == data
    assert response.headers["content-length"] == str(len(data))


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_bytes_keep_a_content_type_that_was_set(route_type):
    response = call(route_type, lambda request: Response(b"\x89PNG", content_type="image/png"))
    assert media_type(response) == "image/png"
    assert response.body == b"\x89PNG"


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
@pytest.mark.parametrize("value", [
    {"a": 1, "nested": {"list": [1, 2.5, None]}, "text": "\u00e9\u4e2d"},
    [1, "two", None, {"three": 3}],
    {},
    [],
], ids=["dict", "list", "empty-dict", "empty-list"])
def test_dict_and_list_are_200_json(route_type, value):
    response = call(route_type, lambda request: value)
    assert response.status == 200
    assert media_type(response) == "application/json"
    assert response.json() == value
    assert json.loads(response.body.decode("utf-8")) == value


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_none_is_204_without_body_or_content_type(route_type):
    response = call(route_type, lambda request: None)
    assert response.status == 204
    assert response.body == b""
    assert "content-type" not in response.headers


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_response_is_sent_as_built(route_type):
    def produce(request):
        return Response("made", status=201, headers={"X-Made": "yes"}, content_type="text/plain")

    response = call(route_type, produce)
    assert response.status == 201
    assert response.text == "made"
    assert response.headers["x-made"] == "yes"
    assert media_type(response) == "text/plain"


def test_response_defaults_to_200_and_empty_body():
    response = call("sync", lambda request: Response())
    assert response.status == 200
    assert response.body == b""


def test_response_code_is_an_alias_of_status():
    response = call("sync", lambda request: Response("accepted", code=202))
    assert response.status == 202
    assert response.text == "accepted"


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_json_response(route_type):
    def produce(request):
        return JSONResponse({"k": [1, "\u00e9"]}, status=201, headers={"X-J": "j"})

    response = call(route_type, produce)
    assert response.status == 201
    assert media_type(response) == "application/json"
    assert response.json() == {"k": [1, "\u00e9"]}
    assert response.headers["x-j"] == "j"


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_redirect_response_defaults_to_303(route_type):
    response = call(route_type, lambda request: RedirectResponse("/elsewhere?a=1"))
    assert response.status == 303
    assert response.headers["location"] == "/elsewhere?a=1"


def test_redirect_response_with_status():
    response = call("sync", lambda request: RedirectResponse("/moved", status=301))
    assert response.status == 301
    assert response.headers["location"] == "/moved"


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_file_response_sends_the_file(route_type, tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(b"file contents\n" * 100)
    response = call(route_type, lambda request: FileResponse(str(path)))
    assert response.status == 200
    assert response.body == b"file contents\n" * 100
    assert media_type(response) == "text/plain"


def test_file_response_download_sets_attachment_with_base_name(tmp_path):
    path = tmp_path / "report.txt"
    path.write_bytes(b"report")
    response = call("sync", lambda request: FileResponse(str(path), download=True))
    disposition = response.headers["content-disposition"]
    assert disposition.lower().startswith("attachment")
    assert "report.txt" in disposition
    assert str(tmp_path) not in disposition
    assert response.body == b"report"


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_stream_response_streams_the_iterable(route_type):
    def produce(request):
        return StreamResponse(iter([b"alpha,", "beta,", b"gamma"]), status=206,
                              content_type="text/csv", headers={"X-S": "s"})

    response = call(route_type, produce)
    assert response.status == 206
    assert response.body == b"alpha,beta,gamma"
    assert media_type(response) == "text/csv"
    assert response.headers["x-s"] == "s"


def test_stream_response_default_content_type_is_octet_stream():
    response = call("sync", lambda request: StreamResponse(iter([b"x"])))
    assert response.status == 200
    assert media_type(response) == "application/octet-stream"
    assert response.body == b"x"


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
@pytest.mark.parametrize("value, status, body", [
    (("created", 201), 201, b"created"),
    ((b"\x00raw", 202), 202, b"\x00raw"),
    (("", 404), 404, b""),
], ids=["str", "bytes", "empty"])
def test_body_status_tuple(route_type, value, status, body):
    response = call(route_type, lambda request: value)
    assert response.status == status
    assert response.body == body


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_dict_status_tuple_is_json_with_that_status(route_type):
    response = call(route_type, lambda request: ({"error": "gone"}, 410))
    assert response.status == 410
    assert media_type(response) == "application/json"
    assert response.json() == {"error": "gone"}


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_body_status_headers_tuple(route_type):
    def produce(request):
        return ("teapot", 418, {"X-Tea": "earl grey", "Content-Type": "text/plain"})

    response = call(route_type, produce)
    assert response.status == 418
    assert response.text == "teapot"
    assert response.headers["x-tea"] == "earl grey"
    assert media_type(response) == "text/plain"


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_generator_is_streamed(route_type):
    def produce(request):
        def chunks():
            yield "one,"
            yield b"two,"
            yield ""
            yield "thr\u00e9e"
        return chunks()

    response = call(route_type, produce)
    assert response.status == 200
    assert response.body == "one,two,thr\u00e9e".encode("utf-8")


@pytest.mark.parametrize("route_type", ["sync", "asnc"])
def test_async_generator_is_streamed(route_type):
    def produce(request):
        async def chunks():
            yield "a-"
            yield b"b-"
            yield "\u00e7"
        return chunks()

    response = call(route_type, produce)
    assert response.status == 200
    assert response.body == "a-b-\u00e7".encode("utf-8")


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
@pytest.mark.parametrize("make_iterator", [
    lambda: iter([b"x", "y", b"z"]),
    lambda: map(str.upper, ["p", "q"]),
    lambda: (part for part in (b"gen", b"exp")),
], ids=["list-iterator", "map", "generator-expression"])
def test_iterator_is_streamed(route_type, make_iterator):
    expected = b"".join(part if isinstance(part, bytes) else part.encode()
                        for part in make_iterator())
    response = call(route_type, lambda request: make_iterator())
    assert response.status == 200
    assert response.body == expected


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_binary_file_object_is_streamed_and_closed(route_type, tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 300
    path.write_bytes(data)
    opened = []

    def produce(request):
        handle = open(path, "rb")
        opened.append(handle)
        return handle

    response = call(route_type, produce)
    assert response.status == 200
    assert response.body == data
    assert len(opened) == 1 and opened[0].closed


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_head_closes_a_generator_without_sending_it(route_type):
    cleaned_up = []

    def produce(request):
        def chunks():
            try:
                yield "never sent"
            finally:
                cleaned_up.append(True)
        generator = chunks()
        next(generator)  # started, so closing it runs the finally block
        return generator

    response = call(route_type, produce, method="HEAD")
    assert response.status == 200
    assert response.body == b""
    assert cleaned_up == [True]


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_head_closes_a_binary_file_object(route_type, tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"data" * 10)
    opened = []

    def produce(request):
        opened.append(open(path, "rb"))
        return opened[-1]

    response = call(route_type, produce, method="HEAD")
    assert response.status == 200
    assert response.body == b""
    assert len(opened) == 1 and opened[0].closed


# ---- Ending a request: HTTPError, abort, redirect ----

def abort_from_helper(status, text):
    abort(status, text)


def redirect_from_helper(url):
    redirect(url)


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_http_error_raised_in_handler(route_type):
    def produce(request):
        raise HTTPError(418, "short and stout")

    response = call(route_type, produce)
    assert response.status == 418
    assert "short and stout" in response.text


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_abort_from_a_helper_function(route_type):
    response = call(route_type, lambda request: abort_from_helper(403, "not for you"))
    assert response.status == 403
    assert "not for you" in response.text


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_redirect_defaults_to_303(route_type):
    response = call(route_type, lambda request: redirect("/target?x=1"))
    assert response.status == 303
    assert response.headers["location"] == "/target?x=1"


def test_redirect_with_status_from_a_helper_function():
    app = App()

    @app.route("/r")
    def handler(request):
        redirect_from_helper("/somewhere")
        return "not reached"

    @app.route("/permanent")
    def permanent(request):
        redirect("/new-home", 301)

    with TestClient(app) as client:
        response = client.get("/r")
        assert response.status == 303
        assert response.headers["location"] == "/somewhere"
        moved = client.get("/permanent")
        assert moved.status == 301
        assert moved.headers["location"] == "/new-home"


# ---- Error handlers ----

class Overdrawn(Exception):
    pass


def test_error_handler_for_404_converts_its_return_value():
    app = App()

    @app.error(404)
    def not_found(request, error):
        return "<h1>nothing at " + request.path + "</h1>"

    with TestClient(app) as client:
        response = client.get("/missing")
        assert response.status == 404
        assert media_type(response) == "text/html"
        assert response.text == "<h1>nothing at /missing</h1>"


def test_error_handler_returning_dict_keeps_the_status():
    app = App()

    @app.error(404)
    def not_found(request, error):
        return {"error": "not found"}

    with TestClient(app) as client:
        response = client.get("/missing")
        assert response.status == 404
        assert media_type(response) == "application/json"
        assert response.json() == {"error": "not found"}


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_error_handler_for_a_code_receives_the_http_error(route_type):
    app = App()
    seen = []

    @app.error(403)
    def forbidden(request, error):
        seen.append(error)
        return "custom forbidden"

    response = call(route_type, lambda request: abort(403, "raw text"), app=app)
    assert response.status == 403
    assert response.text == "custom forbidden"
    assert len(seen) == 1 and isinstance(seen[0], HTTPError)


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_error_handler_for_an_exception_class_keeps_status_500(route_type):
    app = App()

    @app.error(Overdrawn)
    def overdrawn(request, error):
        return {"error": type(error).__name__, "detail": str(error)}

    def produce(request):
        raise Overdrawn("balance -5")

    response = call(route_type, produce, app=app)
    assert response.status == 500
    assert response.json() == {"error": "Overdrawn", "detail": "balance -5"}


def test_error_handler_for_a_base_class_catches_subclasses():
    app = App()

    @app.error(LookupError)
    def lookup(request, error):
        return "lookup failed: " + type(error).__name__

    def produce(request):
        return {}["missing"]

    response = call("sync", produce, app=app)
    assert response.status == 500
    assert response.text == "lookup failed: KeyError"


def test_error_handler_response_with_its_own_status_wins():
    app = App()

    @app.error(Overdrawn)
    def overdrawn(request, error):
        return Response("payment required", status=402)

    def produce(request):
        raise Overdrawn()

    response = call("sync", produce, app=app)
    assert response.status == 402
    assert response.text == "payment required"


def test_error_handler_tuple_sets_its_status():
    app = App()

    @app.error(404)
    def not_found(request, error):
        return ("moved on", 410)

    with TestClient(app) as client:
        response = client.get("/missing")
        assert response.status == 410
        assert response.text == "moved on"


def test_error_handler_for_500_handles_unexpected_exceptions():
    app = App()

    @app.error(500)
    def server_error(request, error):
        return "our fault"

    def produce(request):
        raise RuntimeError("unexpected")

    response = call("sync", produce, app=app)
    assert response.status == 500
    assert response.text == "our fault"


def test_error_handler_for_405():
    app = App()

    @app.route("/x")
    def x(request):
        return "x"

    @app.error(405)
    def not_allowed(request, error):
        return "wrong method " + request.method

    with TestClient(app) as client:
        response = client.post("/x")
        assert response.status == 405
        assert response.text == "wrong method POST"


def test_error_handler_that_raises_gives_a_plain_500():
    app = App()

    @app.error(Overdrawn)
    def broken_handler(request, error):
        raise ValueError("handler-secret-99")

    def produce(request):
        raise Overdrawn("original-secret-42")

    response = call("sync", produce, app=app)
    assert response.status == 500
    assert_plain_text_error(response, "500 Internal Server Error")
    assert_no_internals(response.text, "handler-secret-99", "original-secret-42")


# ---- before_request / after_request ----

def test_before_request_returning_none_lets_the_handler_run():
    app = App()
    seen = []

    @app.before_request
    def note(request):
        seen.append(request.path)

    response = call("sync", lambda request: "handled", app=app)
    assert response.text == "handled"
    assert seen == ["/r"]


@pytest.mark.parametrize("short_circuit, status, body", [
    ("blocked", 200, b"blocked"),
    (("unauthorised", 401), 401, b"unauthorised"),
    (Response("forbidden", status=403), 403, b"forbidden"),
    ({"stop": True}, 200, None),
], ids=["str", "tuple", "response", "dict"])
def test_before_request_return_value_short_circuits(short_circuit, status, body):
    app = App()
    handler_calls = []

    @app.before_request
    def guard(request):
        return short_circuit

    def produce(request):
        handler_calls.append(1)
        return "handler"

    response = call("sync", produce, app=app)
    assert response.status == status
    if isinstance(short_circuit, dict):
        assert response.json() == short_circuit
    else:
        assert response.body == body
    assert handler_calls == []


def test_before_request_can_abort():
    app = App()

    @app.before_request
    def guard(request):
        if request.headers.get("X-Token") != "ok":
            abort(401, "token needed")

    add_handler(app, "/r", "sync", lambda request: "inside")
    with TestClient(app) as client:
        denied = client.get("/r")
        allowed = client.get("/r", headers={"X-Token": "ok"})
    assert denied.status == 401
    assert "token needed" in denied.text
    assert (allowed.status, allowed.text) == (200, "inside")


def test_before_request_hooks_run_in_order_and_stop_at_the_first_response():
    app = App()
    order = []

    @app.before_request
    def first(request):
        order.append("first")

    @app.before_request
    def second(request):
        order.append("second")
        return "from second"

    @app.before_request
    def third(request):
        order.append("third")

    response = call("sync", lambda request: "handler", app=app)
    assert response.text == "from second"
    assert order == ["first", "second"]


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_after_request_receives_the_converted_response(route_type):
    app = App()
    received = []

    @app.after_request
    def stamp(request, response):
        received.append(response)
        response.headers["X-After"] = "stamped"

    response = call(route_type, lambda request: {"a": 1}, app=app)
    assert len(received) == 1 and isinstance(received[0], Response)
    assert response.headers["x-after"] == "stamped"
    assert response.json() == {"a": 1}
    assert media_type(response) == "application/json"


def test_after_request_can_replace_the_response():
    app = App()

    @app.after_request
    def replace(request, response):
        return Response("replaced " + str(response.status), status=202)

    response = call("sync", lambda request: ("original", 201), app=app)
    assert response.status == 202
    assert response.text == "replaced 201"


def test_after_request_runs_for_error_handler_responses():
    app = App()

    @app.error(404)
    def not_found(request, error):
        return "custom 404"

    @app.after_request
    def stamp(request, response):
        response.headers["X-After"] = str(response.status)

    with TestClient(app) as client:
        response = client.get("/missing")
        assert response.status == 404
        assert response.text == "custom 404"
        assert response.headers["x-after"] == "404"


def test_after_request_runs_for_default_error_responses():
    app = App()

    @app.after_request
    def stamp(request, response):
        response.headers["X-After"] = str(response.status)

    def produce(request):
        raise RuntimeError("x")

    with TestClient(app) as client:
        assert client.get("/missing").headers["x-after"] == "404"
    assert call("sync", produce, app=app).headers["x-after"] == "500"


def test_after_request_runs_for_before_request_responses():
    app = App()

    @app.before_request
    def guard(request):
        return ("stopped early", 409)

    @app.after_request
    def stamp(request, response):
        response.headers["X-After"] = str(response.status)

    response = call("sync", lambda request: "handler", app=app)
    assert response.status == 409
    assert response.text == "stopped early"
    assert response.headers["x-after"] == "409"


# ---- Middleware ----

def test_middleware_runs_in_registration_order():
    app = App()
    log = []

    @app.middleware
    async def outer(request, call_next):
        log.append("outer in")
        response = await call_next(request)
        log.append("outer out")
        response.headers["X-Outer"] = "1"
        return response

    @app.middleware
    async def inner(request, call_next):
        log.append("inner in")
        response = await call_next(request)
        log.append("inner out")
        response.headers["X-Inner-Saw"] = str(response.status)
        return response

    def produce(request):
        log.append("handler")
        return ("body", 201)

    response = call("sync", produce, app=app)
    assert log == ["outer in", "inner in", "handler", "inner out", "outer out"]
    assert response.status == 201
    assert response.headers["x-outer"] == "1"
    assert response.headers["x-inner-saw"] == "201"


def test_middleware_can_short_circuit():
    app = App()
    handler_calls = []

    @app.middleware
    async def gate(request, call_next):
        if request.headers.get("X-Key") != "secret":
            return Response("no key", status=401)
        return await call_next(request)

    def produce(request):
        handler_calls.append(1)
        return "inside"

    add_handler(app, "/r", "sync", produce)
    with TestClient(app) as client:
        denied = client.get("/r")
        allowed = client.get("/r", headers={"X-Key": "secret"})
    assert (denied.status, denied.text) == (401, "no key")
    assert (allowed.status, allowed.text) == (200, "inside")
    assert handler_calls == [1]


# ---- 500: production and debug ----

@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_production_500_hides_traceback_paths_and_message(route_type):
    def produce(request):
        raise RuntimeError("secret-detail-4711")

    response = call(route_type, produce)
    assert response.status == 500
    assert_plain_text_error(response, "500 Internal Server Error")
    assert_no_internals(response.text, "secret-detail-4711")


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
def test_debug_500_shows_the_traceback(route_type):
    def produce(request):
        raise RuntimeError("secret-detail-4711")

    response = call(route_type, produce, app=App(debug=True))
    assert response.status == 500
    assert "Traceback" in response.text
    assert "secret-detail-4711" in response.text


# ---- Header and cookie safety ----

@pytest.mark.parametrize("bad", CONTROL_CHARACTERS)
def test_header_value_with_control_character_is_rejected(bad):
    # C1 (bottle CVE-2016-9964, gunicorn CVE-2018-1000164, aiohttp #12689)
    response = Response("x")
    with pytest.raises(ValueError):
        response.headers["X-Value"] = "a" + bad + "Set-Cookie: evil=1"
    with pytest.raises(ValueError):
        Response("x", headers={"X-Value": "a" + bad + "b"})


@pytest.mark.parametrize("bad", CONTROL_CHARACTERS + [" ", ":", "(", "\u00e9"])
def test_header_name_with_control_or_separator_is_rejected(bad):
    # C1, C6
    response = Response("x")
    with pytest.raises(ValueError):
        response.headers["X" + bad + "Name"] = "value"


def test_header_value_with_tab_and_visible_characters_is_accepted():
    response = call("sync", lambda request: Response("x", headers={"X-Tab": "a\tb ~!"}))
    assert response.status == 200
    assert response.headers["x-tab"] == "a\tb ~!"


@pytest.mark.parametrize("bad", CONTROL_CHARACTERS)
@pytest.mark.parametrize("field", ["name", "value", "path", "domain", "samesite"])
def test_cookie_with_control_character_is_rejected(field, bad):
    # C3 (microdot 2.6.1 "Sanitize cookies")
    arguments = {"name": "session", "value": "abc", "path": "/", "domain": "example.com",
                 "samesite": "Lax"}
    arguments[field] = arguments[field] + bad + "x"
    response = Response("x")
    with pytest.raises(ValueError):
        response.set_cookie(arguments.pop("name"), arguments.pop("value"), **arguments)


@pytest.mark.parametrize("bad", ["a;b", "a=b", "a b", ""])
def test_cookie_name_that_is_not_a_token_is_rejected(bad):
    # C3
    with pytest.raises((ValueError, http.cookies.CookieError)):
        Response("x").set_cookie(bad, "v")


def test_cookie_value_cannot_inject_attributes():
    # C3 (microdot 2.6.2 "Forbid semicolons in cookie values")
    response = call("sync", _cookie_with_semicolon)
    if response.status == 500:
        return  # rejected where it was set: acceptable
    assert response.status == 200
    parsed = http.cookies.SimpleCookie()
    parsed.load(response.headers["set-cookie"])
    assert parsed["s"]["domain"] == ""
    assert parsed["s"]["path"] == "/"
    assert parsed["s"].value == "x; Domain=evil.example; Path=/admin"


def _cookie_with_semicolon(request):
    response = Response("x")
    response.set_cookie("s", "x; Domain=evil.example; Path=/admin")
    return response


@pytest.mark.parametrize("bad", CONTROL_CHARACTERS)
def test_redirect_url_with_control_character_is_rejected(bad):
    # C1 (bottle #913 / CVE-2016-9964)
    url = "/next" + bad + "Set-Cookie: evil=1"
    with pytest.raises(ValueError):
        redirect(url)
    with pytest.raises(ValueError):
        RedirectResponse(url)


def _header_injection(request):
    response = Response("x")
    response.headers["X-Echo"] = "a\r\nX-Injected: yes"
    return response


def _cookie_injection(request):
    response = Response("x")
    response.set_cookie("c", "a\r\nX-Injected: yes")
    return response


def _redirect_injection(request):
    redirect("/x\r\nX-Injected: yes")


@pytest.mark.parametrize("route_type", ROUTE_TYPES)
@pytest.mark.parametrize("produce", [_header_injection, _cookie_injection, _redirect_injection],
                         ids=["header", "cookie", "redirect"])
def test_control_characters_set_in_a_handler_give_500(route_type, produce):
    # C1, C3
    response = call(route_type, produce)
    assert response.status == 500
    assert "x-injected" not in response.headers
    assert b"X-Injected" not in response.body


# ---- Response headers and cookies ----

def test_response_headers_are_case_insensitive():
    response = Response("x")
    response.headers["X-Custom-Thing"] = "one"
    assert response.headers["x-custom-thing"] == "one"
    assert response.headers["X-CUSTOM-THING"] == "one"
    assert "x-CUSTOM-thing" in response.headers
    response.headers["x-custom-thing"] = "two"
    assert response.headers["X-Custom-Thing"] == "two"
    assert response.headers.getall("X-Custom-Thing") == ["two"]


def test_response_headers_from_a_list_of_pairs_keep_repeated_names():
    response = Response("x", headers=[("X-Multi", "first"), ("x-multi", "second")])
    assert response.headers.getall("X-Multi") == ["first", "second"]


def test_tuple_headers_as_a_list_of_pairs_keep_repeated_names():
    def produce(request):
        return ("x", 200, [("X-Multi", "first"), ("X-Multi", "second")])

    response = call("sync", produce)
    assert response.headers.getall("x-multi") == ["first", "second"]


def test_response_headers_hold_several_values():
    response = Response("x")
    response.headers.add("X-Multi", "first")
    response.headers.add("x-multi", "second")
    assert response.headers.getall("X-MULTI") == ["first", "second"]


def test_several_header_values_are_sent_as_separate_lines():
    def produce(request):
        response = Response("x")
        response.headers.add("X-Multi", "first")
        response.headers.add("X-Multi", "second")
        return response

    response = call("sync", produce)
    assert response.headers.getall("x-multi") == ["first", "second"]


def _set_cookie_handler(**options):
    def produce(request):
        response = Response("x")
        response.set_cookie("sid", "abc123", **options)
        return response
    return produce


def test_set_cookie_defaults_are_httponly_lax_root_path():
    response = call("sync", _set_cookie_handler())
    name, value, attributes = cookie_parts(response.headers["set-cookie"])
    assert (name, value) == ("sid", "abc123")
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "lax"
    assert attributes["path"] == "/"
    assert "secure" not in attributes
    assert "max-age" not in attributes and "expires" not in attributes
    assert "domain" not in attributes


def test_set_cookie_options_are_written():
    response = call("sync", _set_cookie_handler(max_age=60, path="/app", domain="example.com",
                                                secure=True, httponly=False, samesite="Strict"))
    name, value, attributes = cookie_parts(response.headers["set-cookie"])
    assert (name, value) == ("sid", "abc123")
    assert attributes["max-age"] == "60"
    assert attributes["path"] == "/app"
    assert attributes["domain"].lstrip(".") == "example.com"
    assert "secure" in attributes
    assert "httponly" not in attributes
    assert attributes["samesite"].lower() == "strict"


def test_delete_cookie_expires_it_on_the_root_path():
    def produce(request):
        response = Response("x")
        response.delete_cookie("sid")
        return response

    response = call("sync", produce)
    name, value, attributes = cookie_parts(response.headers["set-cookie"])
    assert name == "sid"
    assert value in ("", '""')
    assert attributes["path"] == "/"
    expired_by_age = attributes.get("max-age") == "0"
    expires = attributes.get("expires")
    expired_by_date = (expires is not None
                       and email.utils.parsedate_to_datetime(expires).timestamp() < time.time())
    assert expired_by_age or expired_by_date


# ---- On the wire (real server) ----

@pytest.fixture
def server(shared_server, parser_mode):
    """tests/apps/handlers_app.py in a real server, shared per parser mode."""
    return shared_server(HANDLERS_APP, parser_mode)


def test_wire_generator_is_chunked_on_http11(server):
    reply = split_reply(raw_exchange(server.port, b"GET /gen HTTP/1.1\r\nHost: a\r\n"
                                                  b"Connection: close\r\n\r\n"))
    assert reply.status == 200
    assert [value.lower() for value in reply.values("transfer-encoding")] == ["chunked"]
    assert reply.values("content-length") == []
    assert dechunk(reply.body) == "first,second,third-\u00e9".encode("utf-8")


def test_wire_generator_on_http10_is_not_chunked_and_closes(server):
    reply = split_reply(raw_exchange(server.port, b"GET /gen HTTP/1.0\r\n\r\n"))
    assert reply.status == 200
    assert reply.values("transfer-encoding") == []
    assert reply.body == "first,second,third-\u00e9".encode("utf-8")


def test_wire_async_generator_chunks_are_sent_as_they_are_produced(server):
    token = f"t{time.monotonic_ns()}"
    with Client(server.port, timeout=3) as client:
        client.send(f"GET /gated/{token} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                    .encode())
        received = client.read_until(b"before-gate;", timeout=3)
        assert b"before-gate;" in received
        assert b"after-gate" not in received
        opened = raw_exchange(server.port, f"GET /open-gate/{token} HTTP/1.1\r\nHost: a\r\n"
                              f"Connection: close\r\n\r\n".encode())
        assert status_of(opened) == 200
        rest, closed = client.read_until_close(timeout=3)
        assert closed, "the stream did not end after its gate opened"
        received += rest
    assert dechunk(split_reply(received).body) == b"before-gate;after-gate"


def test_wire_generator_failing_midway_is_not_sent_as_complete(server):
    raw = raw_exchange(server.port,
                       b"GET /gen-fails HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(raw) in (200, 500)
    if status_of(raw) == 200:
        body = split_reply(raw).body
        assert b"partial" in body
        assert not body.endswith(b"0\r\n\r\n")  # the client must see the truncation
    assert_no_internals(raw.decode("utf-8", "replace"), "generator-secret-17")
    assert status_of(raw_exchange(server.port, b"GET /text HTTP/1.1\r\nHost: a\r\n"
                                               b"Connection: close\r\n\r\n")) == 200


def test_wire_file_object_is_streamed(server):
    reply = split_reply(raw_exchange(server.port, b"GET /file-object HTTP/1.1\r\nHost: a\r\n"
                                                  b"Connection: close\r\n\r\n"))
    assert reply.status == 200
    body = reply.body
    if reply.values("transfer-encoding"):
        body = dechunk(body)
    app_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps",
                            "handlers_app.py")
    with open(app_file, "rb") as handle:
        assert body == handle.read()


def test_wire_production_500_hides_details_and_logs_them(server_factory, parser_mode):
    # a server of its own: the test reads its log by stopping it
    server = server_factory(HANDLERS_APP, pure=(parser_mode == "pure"))
    raw = raw_exchange(server.port, b"GET /boom HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(raw) == 500
    body = split_reply(raw).body
    assert body.decode("utf-8").splitlines()[0] == "500 Internal Server Error"
    assert_no_internals(body.decode("utf-8"), "secret-detail-4711")
    assert status_of(raw_exchange(server.port, b"GET /text HTTP/1.1\r\nHost: a\r\n"
                                               b"Connection: close\r\n\r\n")) == 200
    log = server.stop()
    assert "secret-detail-4711" in log


def test_wire_debug_500_shows_the_traceback(shared_server, parser_mode):
    server = shared_server(HANDLERS_APP, parser_mode, debug=True)
    raw = raw_exchange(server.port, b"GET /boom HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(raw) == 500
    assert b"Traceback" in raw
    assert b"secret-detail-4711" in raw


@pytest.mark.parametrize("path", ["/echo-header?v=", "/echo-redirect?to=/x",
                                  "/echo-cookie?v="])
def test_wire_crlf_from_the_request_is_never_written_as_a_header(server, path):
    # C1 (bottle CVE-2016-9964, uvicorn CVE-2020-7695), C3
    safe = raw_exchange(server.port, f"GET {path}safe HTTP/1.1\r\nHost: a\r\n"
                                     f"Connection: close\r\n\r\n".encode())
    assert status_of(safe) in (200, 303)
    assert b"safe" in split_reply(safe).head
    attack = raw_exchange(server.port, f"GET {path}%0d%0aX-Injected:%20yes HTTP/1.1\r\n"
                                       f"Host: a\r\nConnection: close\r\n\r\n".encode())
    assert status_of(attack) == 500
    assert b"x-injected" not in attack.lower()


def test_wire_each_cookie_is_its_own_set_cookie_line(server):
    reply = split_reply(raw_exchange(server.port, b"GET /two-cookies HTTP/1.1\r\nHost: a\r\n"
                                                  b"Connection: close\r\n\r\n"))
    assert reply.status == 200
    cookies = sorted(cookie_parts(value)[:2] for value in reply.values("set-cookie"))
    assert cookies == [("first", "1"), ("second", "2")]
