"""Routing: static and dynamic routes, wildcards, trailing slashes, 404/405,
automatic HEAD and OPTIONS, route types, url_for, mounting, groups, resources,
the route listing and the module-level default app.

Most tests go through ``TestClient`` (same parser and dispatcher as the real
server); the ``test_wire_*`` tests run ``tests/apps/handlers_app.py`` in a real
server process and talk to it with ``requests`` or raw sockets.
"""
import asyncio
import urllib.parse

import pytest
import requests

from pixie_web import (App, Response, Router, RouteType, TestClient, default_app,
                       route)
from tests.support import raw_exchange, split_reply, status_of

HANDLERS_APP = "tests.apps.handlers_app:app"
SLASH_APP = "tests.apps.handlers_app:slash_app"
CATCH_ALL_SLASH_APP = "tests.apps.handlers_app:catch_all_slash_app"


def allow_list(response):
    """The methods of an ``Allow`` header, in the order they were sent."""
    return [method.strip() for method in response.headers["allow"].split(",")]


def is_plain_text_error(response, first_line):
    content_type = response.headers.get("content-type", "").replace(" ", "").lower()
    return (content_type == "text/plain;charset=utf-8"
            and response.text.splitlines()[0] == first_line)


def module_level_pool_handler(request):
    """A module-level function: the only kind a pool route accepts."""
    return "pool"


# ---- Static routes ----

def test_static_routes_dispatch_to_their_own_handler():
    app = App()

    @app.route("/")
    def root(request):
        return "root"

    @app.route("/a")
    def a(request):
        return "A"

    @app.route("/a/b")
    def ab(request):
        return "AB"

    with TestClient(app) as client:
        assert [client.get(path).text for path in ("/", "/a", "/a/b")] == ["root", "A", "AB"]
        assert all(client.get(path).status == 200 for path in ("/", "/a", "/a/b"))


def test_unknown_path_is_404_plain_text():
    app = App()

    @app.route("/known")
    def known(request):
        return "yes"

    with TestClient(app) as client:
        response = client.get("/unknown")
        assert response.status == 404
        assert is_plain_text_error(response, "404 Not Found")
        assert client.get("/known/extra").status == 404
        assert client.get("/kno").status == 404


def test_static_route_wins_over_a_matching_dynamic_route_registered_first():
    app = App()

    @app.route("/user/<name>")
    def by_name(request, name):
        return "dynamic:" + name

    @app.route("/user/me")
    def me(request):
        return "static"

    with TestClient(app) as client:
        assert client.get("/user/me").text == "static"
        assert client.get("/user/bob").text == "dynamic:bob"


def test_method_mismatch_on_static_route_falls_through_to_dynamic_route():
    app = App()

    @app.route("/items/<id>")
    def get_item(request, id):
        return "get:" + id

    @app.delete("/items/special")
    def delete_special(request):
        return "deleted special"

    with TestClient(app) as client:
        assert client.get("/items/special").text == "get:special"
        assert client.delete("/items/special").text == "deleted special"


# ---- Wildcards ----

def make_wildcard_app():
    app = App()

    def describe(value):
        return {"value": value, "type": type(value).__name__}

    @app.route("/plain/<word>")
    def plain(request, word):
        return describe(word)

    @app.route("/int/<number:int>")
    def integer(request, number):
        return describe(number)

    @app.route("/float/<number:float>")
    def floating(request, number):
        return describe(number)

    @app.route("/files/<filepath:path>")
    def files(request, filepath):
        return describe(filepath)

    @app.route("/code/<code:re:[A-Z]{3}>")
    def code(request, code):
        return describe(code)

    @app.route("/users/<uid:int>/posts/<slug>")
    def post(request, uid, slug):
        return {"uid": uid, "slug": slug, "uid_type": type(uid).__name__}

    return app


@pytest.mark.parametrize("path, value, type_name", [
    ("/plain/alice", "alice", "str"),
    ("/plain/a%20b", "a b", "str"),
    ("/int/42", 42, "int"),
    ("/float/2.5", 2.5, "float"),
    ("/files/a/b/c.txt", "a/b/c.txt", "str"),
    ("/files/single", "single", "str"),
    ("/code/ABC", "ABC", "str"),
])
def test_wildcard_value_is_converted_and_passed_by_keyword(path, value, type_name):
    with TestClient(make_wildcard_app()) as client:
        response = client.get(path)
        assert response.status == 200
        assert response.json() == {"value": value, "type": type_name}


@pytest.mark.parametrize("path", [
    "/plain/a/b",        # <name> is one segment
    "/plain/",           # ... and not empty
    "/int/abc",
    "/int/4.5",
    "/float/abc",
    "/files/",           # path needs at least one character
    "/code/abc",         # regex is case-sensitive
    "/code/ABCD",        # regex must match the whole segment
    "/code/AB",
])
def test_wildcard_that_does_not_match_is_404(path):
    with TestClient(make_wildcard_app()) as client:
        assert client.get(path).status == 404


def test_several_wildcards_in_one_route_all_become_keyword_arguments():
    with TestClient(make_wildcard_app()) as client:
        response = client.get("/users/7/posts/hello-world")
        assert response.json() == {"uid": 7, "slug": "hello-world", "uid_type": "int"}


def test_dynamic_routes_sharing_a_first_segment_match_the_whole_path():
    app = App()

    @app.route("/a/<x:int>")
    def number(request, x):
        return f"number:{x}"

    @app.route("/a/<y>/z")
    def word(request, y):
        return "word:" + y

    @app.route("/a/files/<p:path>")
    def files(request, p):
        return "files:" + p

    with TestClient(app) as client:
        assert client.get("/a/5").text == "number:5"
        assert client.get("/a/b/z").text == "word:b"
        assert client.get("/a/files/x/y.txt").text == "files:x/y.txt"
        assert client.get("/a/5/anything").status == 404
        assert client.get("/a/b/z/more").status == 404


def test_int_route_registered_before_plain_route_takes_numbers():
    app = App()

    @app.route("/p/<x:int>")
    def as_int(request, x):
        return f"int:{x + 1}"

    @app.route("/p/<x>")
    def as_text(request, x):
        return "text:" + x

    with TestClient(app) as client:
        assert client.get("/p/5").text == "int:6"
        assert client.get("/p/five").text == "text:five"


# ---- Trailing slash ----

def test_trailing_slash_paths_are_distinct_by_default():
    app = App()

    @app.route("/a")
    def no_slash(request):
        return "no slash"

    @app.route("/b/")
    def with_slash(request):
        return "with slash"

    @app.route("/c")
    def c_plain(request):
        return "c"

    @app.route("/c/")
    def c_slash(request):
        return "c/"

    with TestClient(app) as client:
        assert client.get("/a").text == "no slash"
        assert client.get("/a/").status == 404
        assert client.get("/b/").text == "with slash"
        assert client.get("/b").status == 404
        assert client.get("/c").text == "c"
        assert client.get("/c/").text == "c/"


def make_slash_app():
    app = App(redirect_slashes=True)

    @app.route("/a")
    def no_slash(request):
        return "no slash"

    @app.route("/b/")
    def with_slash(request):
        return "with slash"

    @app.route("/both")
    def both_plain(request):
        return "plain"

    @app.route("/both/")
    def both_slash(request):
        return "slash"

    return app


@pytest.mark.parametrize("requested, target", [("/a/", "/a"), ("/b", "/b/")])
def test_redirect_slashes_redirects_to_the_registered_form(requested, target):
    with TestClient(make_slash_app()) as client:
        response = client.get(requested)
        assert response.status in (301, 302, 307, 308)
        assert response.headers["location"] == target
        assert client.get(target).status == 200


def test_redirect_slashes_keeps_the_query_string():
    with TestClient(make_slash_app()) as client:
        response = client.get("/a/?x=1&y=2")
        assert response.status in (301, 302, 307, 308)
        location = urllib.parse.urlsplit(response.headers["location"])
        assert location.path == "/a"
        assert urllib.parse.parse_qs(location.query) == {"x": ["1"], "y": ["2"]}


def test_redirect_slashes_does_not_redirect_when_both_forms_exist():
    with TestClient(make_slash_app()) as client:
        assert client.get("/both").text == "plain"
        assert client.get("/both/").text == "slash"


def test_redirect_slashes_unknown_path_is_still_404():
    with TestClient(make_slash_app()) as client:
        assert client.get("/nowhere/").status == 404
        assert client.get("/nowhere").status == 404


@pytest.mark.parametrize("pattern, requested", [
    ("/<rest:path>/", "//evil.example"),          # slash added
    ("/<rest:path>/end", "//evil.example/end/"),  # slash removed
    ("/<rest:path>/", "/\\evil.example"),          # browsers read "/\\" as "//"
])
def test_redirect_slashes_location_stays_a_local_path(pattern, requested):
    # D11 (CPython CVE-2021-28861, tornado CVE-2023-28370, aiohttp GHSA-v6wp-4m6f-gcjg)
    app = App(redirect_slashes=True)

    @app.route(pattern)
    def catch_all(request, rest):
        return "caught:" + rest

    with TestClient(app) as client:
        response = client.get(requested)
        if 300 <= response.status < 400:
            location = response.headers["location"]
            assert location.startswith("/")
            assert not location.startswith("//")
            assert not location.startswith("/\\")
        else:
            assert response.status in (400, 404)


# ---- 405 and Allow ----

def test_wrong_method_is_405_with_sorted_allow_including_head_and_options():
    app = App()

    @app.route("/x", methods=["POST", "GET"])
    def x(request):
        return "x"

    with TestClient(app) as client:
        response = client.delete("/x")
        assert response.status == 405
        assert allow_list(response) == ["GET", "HEAD", "OPTIONS", "POST"]
        assert is_plain_text_error(response, "405 Method Not Allowed")


def test_allow_has_no_head_when_the_route_has_no_get():
    app = App()

    @app.route("/only-post", methods="POST")
    def only_post(request):
        return "posted"

    with TestClient(app) as client:
        response = client.get("/only-post")
        assert response.status == 405
        assert allow_list(response) == ["OPTIONS", "POST"]
        assert client.head("/only-post").status == 405


def test_allow_merges_methods_registered_by_separate_decorators():
    app = App()

    @app.get("/thing/<id:int>")
    def read(request, id):
        return "read"

    @app.put("/thing/<id:int>")
    def write(request, id):
        return "write"

    with TestClient(app) as client:
        response = client.post("/thing/3")
        assert response.status == 405
        assert allow_list(response) == ["GET", "HEAD", "OPTIONS", "PUT"]
        assert client.put("/thing/3").text == "write"


def test_any_token_method_is_routed_404_or_405():
    app = App()

    @app.route("/x")
    def x(request):
        return "x"

    @app.route("/purge", methods=["PURGE"])
    def purge(request):
        return "purged"

    with TestClient(app) as client:
        assert client.request("FOO", "/x").status == 405
        assert client.request("FOO", "/nowhere").status == 404
        assert client.request("PURGE", "/purge").text == "purged"


# ---- Automatic HEAD and OPTIONS ----

def test_head_is_served_by_get_handler_without_body_with_same_headers():
    app = App()
    calls = []

    @app.route("/page")
    def page(request):
        calls.append(1)
        return Response("hello world", headers={"X-Extra": "yes"})

    with TestClient(app) as client:
        got = client.get("/page")
        head = client.head("/page")
        assert head.status == 200
        assert head.body == b""
        assert head.headers["content-length"] == got.headers["content-length"] == "11"
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["x-extra"] == "yes"
        assert len(calls) == 2


def test_options_answers_204_with_allow():
    app = App()

    @app.route("/x", methods=["GET", "PATCH"])
    def x(request):
        return "x"

    with TestClient(app) as client:
        response = client.options("/x")
        assert response.status == 204
        assert response.body == b""
        assert allow_list(response) == ["GET", "HEAD", "OPTIONS", "PATCH"]
        assert client.options("/unknown").status == 404


def test_options_uses_a_registered_handler():
    app = App()

    @app.route("/cors", methods=["GET", "OPTIONS"])
    def cors(request):
        if request.method == "OPTIONS":
            return Response("custom options", status=200, headers={"X-Options": "mine"})
        return "get"

    with TestClient(app) as client:
        response = client.options("/cors")
        assert response.status == 200
        assert response.text == "custom options"
        assert response.headers["x-options"] == "mine"


# ---- Methods: string, iterable, action=, shortcuts ----

@pytest.mark.parametrize("methods", ["POST", ["POST"], ("POST", "PUT"), {"POST", "PUT"}])
def test_methods_accepts_a_string_or_an_iterable(methods):
    app = App()

    @app.route("/m", methods=methods)
    def m(request):
        return request.method

    with TestClient(app) as client:
        assert client.post("/m").text == "POST"
        assert client.get("/m").status == 405
        assert client.put("/m").status == (200 if "PUT" in methods else 405)


def test_action_is_an_alias_of_methods():
    app = App()

    @app.route("/single", action="POST")
    def single(request):
        return "single:" + request.method

    @app.route("/several", action=["PUT", "DELETE"])
    def several(request):
        return "several:" + request.method

    with TestClient(app) as client:
        assert client.post("/single").text == "single:POST"
        assert client.get("/single").status == 405
        assert client.put("/several").text == "several:PUT"
        assert client.delete("/several").text == "several:DELETE"
        assert client.get("/several").status == 405


@pytest.mark.parametrize("shortcut", ["get", "post", "put", "patch", "delete"])
def test_method_shortcut_registers_only_that_method(shortcut):
    app = App()

    @getattr(app, shortcut)("/r/<n:int>")
    def handler(request, n):
        return f"{request.method}:{n * 2}"

    with TestClient(app) as client:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            response = client.request(method, "/r/21")
            if method == shortcut.upper():
                assert response.status == 200
                assert response.text == f"{method}:42"
            else:
                assert response.status == 405


# ---- Route types ----

def test_route_type_is_inferred_from_the_function():
    app = App()

    @app.route("/s")
    def plain(request):
        return "s"

    @app.route("/a")
    async def coroutine(request):
        return "a"

    types = {r.path: r.route_type for r in app.routes()}
    assert types["/s"] is RouteType.sync
    assert types["/a"] is RouteType.asnc


def test_declared_route_types_run_where_they_say():
    app = App()

    def has_running_loop():
        try:
            asyncio.get_running_loop()
            return True
        except RuntimeError:
            return False

    @app.route("/sync")
    def on_loop(request):
        return {"loop": has_running_loop()}

    @app.route("/asnc", RouteType.asnc)
    async def awaited(request):
        return {"loop": has_running_loop()}

    @app.route("/thread", route_type=RouteType.thread)
    def in_thread(request):
        return {"loop": has_running_loop()}

    types = {r.path: r.route_type for r in app.routes()}
    assert types == {"/sync": RouteType.sync, "/asnc": RouteType.asnc,
                     "/thread": RouteType.thread}
    with TestClient(app) as client:
        assert client.get("/sync").json() == {"loop": True}
        assert client.get("/asnc").json() == {"loop": True}
        assert client.get("/thread").json() == {"loop": False}


@pytest.mark.parametrize("declared", [RouteType.pool, RouteType.thread, RouteType.sync])
def test_async_def_declared_as_a_sync_kind_is_a_type_error(declared):
    app = App()

    async def handler(request):
        return "x"

    with pytest.raises(TypeError) as caught:
        app.route("/x", route_type=declared)(handler)
    assert str(caught.value)
    assert "/x" not in [r.path for r in app.routes()]


def test_plain_def_declared_asnc_is_a_type_error():
    app = App()

    def handler(request):
        return "x"

    with pytest.raises(TypeError) as caught:
        app.route("/x", RouteType.asnc)(handler)
    assert str(caught.value)
    assert "/x" not in [r.path for r in app.routes()]


def _make_closure():
    captured = "value"

    def closure(request):
        return captured
    return closure


def _make_nested():
    def nested(request):
        return "nested"
    return nested


@pytest.mark.parametrize("handler", [
    lambda request: "lambda",
    _make_closure(),
    _make_nested(),
], ids=["lambda", "closure", "nested"])
def test_non_module_level_function_declared_pool_is_a_type_error(handler):
    app = App()
    with pytest.raises(TypeError) as caught:
        app.route("/p", RouteType.pool)(handler)
    assert str(caught.value)
    assert "/p" not in [r.path for r in app.routes()]


def test_module_level_function_is_accepted_as_pool_route():
    app = App()
    returned = app.route("/p", RouteType.pool)(module_level_pool_handler)
    assert returned is module_level_pool_handler
    [listed] = [r for r in app.routes() if r.path == "/p"]
    assert listed.route_type is RouteType.pool
    assert listed.handler is module_level_pool_handler


# ---- url_for ----

def make_url_app():
    app = App()

    @app.route("/item/<id>", name="item")
    def item(request, id):
        return "item:" + id

    @app.route("/num/<n:int>", name="num")
    def num(request, n):
        return f"num:{n}"

    @app.route("/files/<p:path>", name="files")
    def files(request, p):
        return "files:" + p

    @app.route("/hello/<name>", name="hello")
    def hello(request, name):
        return "hello " + name

    @app.route("/static-page", name="static_page")
    def static_page(request):
        return "static"

    return app


def test_url_for_builds_a_static_route():
    assert make_url_app().url_for("static_page") == "/static-page"


def test_url_for_fills_wildcards():
    app = make_url_app()
    assert app.url_for("item", id="abc") == "/item/abc"
    assert app.url_for("num", n=7) == "/num/7"


def test_url_for_quotes_a_single_segment_including_slash():
    url = make_url_app().url_for("item", id="a b/c?d#e")
    assert url.startswith("/item/")
    segment = url[len("/item/"):]
    assert "/" not in segment and " " not in segment and "?" not in segment and "#" not in segment
    assert urllib.parse.unquote(segment) == "a b/c?d#e"


def test_url_for_keeps_slashes_in_path_values():
    url = make_url_app().url_for("files", p="dir/sub dir/f.txt")
    assert url.startswith("/files/dir/")
    assert url.count("/") == 4
    assert " " not in url
    assert urllib.parse.unquote(url) == "/files/dir/sub dir/f.txt"


def test_url_for_turns_extra_arguments_into_a_query_string():
    url = make_url_app().url_for("item", id="5", page=2, q="x y&z")
    parts = urllib.parse.urlsplit(url)
    assert parts.path == "/item/5"
    assert urllib.parse.parse_qs(parts.query) == {"page": ["2"], "q": ["x y&z"]}


def test_url_for_accepts_a_wildcard_called_name():
    assert make_url_app().url_for("hello", name="world") == "/hello/world"


def test_url_for_result_routes_back_to_the_handler():
    app = make_url_app()
    with TestClient(app) as client:
        assert client.get(app.url_for("item", id="a b")).text == "item:a b"
        assert client.get(app.url_for("files", p="x/y z")).text == "files:x/y z"
        assert client.get(app.url_for("hello", name="é")).text == "hello é"


# ---- Mounting, routers, prefixes ----

def test_mount_sub_app_under_prefix():
    app, sub = App(), App()

    @app.route("/hello")
    def main_hello(request):
        return "main"

    @sub.route("/hello")
    def sub_hello(request):
        return "sub"

    @sub.route("/item/<id:int>")
    def sub_item(request, id):
        return {"id": id}

    app.mount("/sub", sub)
    with TestClient(app) as client:
        assert client.get("/hello").text == "main"
        assert client.get("/sub/hello").text == "sub"
        assert client.get("/sub/item/5").json() == {"id": 5}
        assert client.get("/item/5").status == 404
        assert client.get("/sub/nothing").status == 404


def test_url_for_on_the_parent_includes_the_mount_prefix():
    app, sub = App(), App()

    @sub.route("/page/<n:int>", name="sub_page")
    def page(request, n):
        return "page"

    app.mount("/sub", sub)
    assert app.url_for("sub_page", n=2) == "/sub/page/2"


def test_routes_added_to_a_sub_app_after_mounting_work():
    app, sub = App(), App()
    app.mount("/sub", sub)

    @sub.route("/late/<word>")
    def late(request, word):
        return "late:" + word

    with TestClient(app) as client:
        assert client.get("/sub/late/x").text == "late:x"
        assert client.get("/late/x").status == 404


def test_error_handlers_of_a_mounted_sub_app_apply_to_its_routes():
    app, sub = App(), App()

    class SubProblem(Exception):
        pass

    @sub.error(SubProblem)
    def sub_problem(request, error):
        return ("sub handled", 409)

    @sub.route("/problem")
    def problem(request):
        raise SubProblem("x")

    @app.route("/problem")
    def main_problem(request):
        raise SubProblem("x")

    app.mount("/sub", sub)
    with TestClient(app) as client:
        handled = client.get("/sub/problem")
        assert handled.status == 409
        assert handled.text == "sub handled"
        unhandled = client.get("/problem")
        assert unhandled.status == 500


def test_mount_router_applies_prefix():
    app = App()
    router = Router()

    @router.route("/x")
    def x(request):
        return "router x"

    @router.post("/y/<n:int>")
    def y(request, n):
        return {"n": n}

    app.mount("/api", router)
    with TestClient(app) as client:
        assert client.get("/api/x").text == "router x"
        assert client.post("/api/y/3").json() == {"n": 3}
        assert client.get("/api/y/3").status == 405
        assert client.get("/x").status == 404


def test_router_prefix_is_combined_with_the_mount_prefix():
    app = App()
    router = Router(prefix="/v1")

    @router.route("/ping")
    def ping(request):
        return "pong"

    app.mount("/api", router)
    with TestClient(app) as client:
        assert client.get("/api/v1/ping").text == "pong"
        assert client.get("/api/ping").status == 404


def test_routes_added_to_a_router_after_mounting_work():
    app = App()
    router = Router()
    app.mount("/r", router)

    @router.route("/late")
    def late(request):
        return "late"

    with TestClient(app) as client:
        assert client.get("/r/late").text == "late"


def test_app_prefix_groups_its_routes():
    api = App(prefix="/api")

    @api.route("/x")
    def x(request):
        return "x"

    @api.route("/n/<n:int>", name="api_n")
    def n(request, n):
        return {"n": n}

    assert sorted(r.path for r in api.routes()) == ["/api/n/<n:int>", "/api/x"]
    assert api.url_for("api_n", n=4) == "/api/n/4"
    with TestClient(api) as client:
        assert client.get("/api/x").text == "x"
        assert client.get("/api/n/4").json() == {"n": 4}
        assert client.get("/x").status == 404


# ---- Resources ----

class ItemsResource:
    """A RESTful resource object; each method reports what it was called with."""

    def __init__(self):
        self.calls = []

    def list(self, request):
        self.calls.append("list")
        return {"action": "list"}

    def create(self, request):
        self.calls.append("create")
        return {"action": "create"}

    def get(self, request, id):
        self.calls.append("get")
        return {"action": "get", "id": id, "id_type": type(id).__name__}

    def update(self, request, id):
        self.calls.append("update")
        return {"action": "update", "id": id, "method": request.method}

    def delete(self, request, id):
        self.calls.append("delete")
        return {"action": "delete", "id": id}


class ReadOnlyResource:
    """A resource class with only list and get."""

    def list(self, request):
        return ["a", "b"]

    def get(self, request, id):
        return {"name": id}


def test_resource_object_routes_every_action():
    app = App()
    items = ItemsResource()
    app.resource("/items", items)
    with TestClient(app) as client:
        assert client.get("/items").json() == {"action": "list"}
        assert client.post("/items").json() == {"action": "create"}
        assert client.get("/items/5").json() == {"action": "get", "id": "5", "id_type": "str"}
        assert client.put("/items/5").json() == {"action": "update", "id": "5", "method": "PUT"}
        assert client.patch("/items/6").json() == {"action": "update", "id": "6",
                                                    "method": "PATCH"}
        assert client.delete("/items/7").json() == {"action": "delete", "id": "7"}
    assert items.calls == ["list", "create", "get", "update", "update", "delete"]


def test_resource_allow_lists_the_routed_actions():
    app = App()
    app.resource("/items", ItemsResource())
    with TestClient(app) as client:
        on_prefix = client.delete("/items")
        assert on_prefix.status == 405
        assert allow_list(on_prefix) == ["GET", "HEAD", "OPTIONS", "POST"]
        on_item = client.post("/items/1")
        assert on_item.status == 405
        assert allow_list(on_item) == ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "PUT"]


def test_resource_class_routes_only_the_methods_it_has():
    app = App()
    app.resource("/things", ReadOnlyResource)
    with TestClient(app) as client:
        assert client.get("/things").json() == ["a", "b"]
        assert client.get("/things/x1").json() == {"name": "x1"}
        assert client.post("/things").status == 405
        assert client.put("/things/x1").status == 405
        assert client.patch("/things/x1").status == 405
        assert client.delete("/things/x1").status == 405


def test_resource_without_item_methods_does_not_route_the_item_path():
    class ListOnly:
        def list(self, request):
            return "listed"

    app = App()
    app.resource("/only", ListOnly())
    with TestClient(app) as client:
        assert client.get("/only").text == "listed"
        assert client.get("/only/1").status == 404


# ---- Route listing ----

def test_routes_returns_one_object_per_method():
    app = App()

    @app.route("/multi/<id:int>", methods=["GET", "POST"], name="multi")
    def multi(request, id):
        return "m"

    @app.route("/t", RouteType.thread, name="threaded")
    def threaded(request):
        return "t"

    @app.route("/a")
    async def asynchronous(request):
        return "a"

    listed = app.routes()
    multi_routes = [r for r in listed if r.path == "/multi/<id:int>"]
    assert sorted(r.method for r in multi_routes) == ["GET", "POST"]
    assert all(r.name == "multi" and r.handler is multi and r.route_type is RouteType.sync
               for r in multi_routes)
    [thread_route] = [r for r in listed if r.path == "/t"]
    assert (thread_route.method, thread_route.name, thread_route.route_type,
            thread_route.handler) == ("GET", "threaded", RouteType.thread, threaded)
    [async_route] = [r for r in listed if r.path == "/a"]
    assert async_route.route_type is RouteType.asnc and async_route.handler is asynchronous


# ---- Many routes ----

def _many_routes_path(index):
    """Route pattern and (request path, expected wildcards) for route number ``index``."""
    kind = index % 4
    if kind == 0:
        return f"/api/r{index}/<value:int>", f"/api/r{index}/{index * 3}", {"value": index * 3}
    if kind == 1:
        return f"/api/r{index}/<value>/end", f"/api/r{index}/v{index}/end", {"value": f"v{index}"}
    if kind == 2:
        return (f"/api/r{index}/deep/<value:path>", f"/api/r{index}/deep/a/b{index}",
                {"value": f"a/b{index}"})
    # first segment is a wildcard
    return f"/<lang>/page{index}", f"/xx{index}/page{index}", {"lang": f"xx{index}"}


def test_two_thousand_dynamic_routes_route_correctly():
    app = App()
    count = 2000

    def make_handler(index):
        def handler(request, **wildcards):
            return {"index": index, "wildcards": wildcards}
        return handler

    for index in range(count):
        app.route(_many_routes_path(index)[0])(make_handler(index))

    samples = sorted({0, 1, 2, 3, 998, 999, 1000, 1001, 1996, 1997, 1998, 1999}
                     | set(range(5, count, 97)))
    with TestClient(app) as client:
        for index in samples:
            _, path, expected = _many_routes_path(index)
            response = client.get(path)
            assert response.status == 200, path
            assert response.json() == {"index": index, "wildcards": expected}, path
        assert client.get("/api/r0/notanint").status == 404
        assert client.get("/api/r1/v/wrong").status == 404
        assert client.get(f"/api/r{count}/1").status == 404
        assert client.get(f"/en/page{count}").status == 404
        assert client.post("/api/r4/1").status == 405


# ---- Module-level default app ----

def test_module_route_shortcut_registers_on_default_app():
    @route("/test-routing-default-app/<n:int>", name="test_routing_default")
    def on_default(request, n):
        return {"doubled": n * 2}

    assert any(r.handler is on_default for r in default_app.routes())
    assert default_app.url_for("test_routing_default", n=4) == "/test-routing-default-app/4"
    with TestClient(default_app) as client:
        assert client.get("/test-routing-default-app/21").json() == {"doubled": 42}


# ---- On the wire (real server) ----

def test_wire_static_and_int_wildcard_routes(shared_server, parser_mode):
    server = shared_server(HANDLERS_APP, parser_mode)
    assert requests.get(server.url + "/text", timeout=5).text == "hello wire"
    response = requests.get(server.url + "/num/12", timeout=5)
    assert response.json() == {"n": 12, "type": "int"}
    assert requests.get(server.url + "/num/twelve", timeout=5).status_code == 404


def test_wire_404_and_405_with_allow(shared_server, parser_mode):
    server = shared_server(HANDLERS_APP, parser_mode)
    missing = requests.get(server.url + "/no/such/route", timeout=5)
    assert missing.status_code == 404
    assert missing.text.splitlines()[0] == "404 Not Found"
    wrong = requests.delete(server.url + "/text", timeout=5)
    assert wrong.status_code == 405
    assert [m.strip() for m in wrong.headers["Allow"].split(",")] == ["GET", "HEAD", "OPTIONS"]


def test_wire_head_sends_headers_and_no_body(shared_server, parser_mode):
    server = shared_server(HANDLERS_APP, parser_mode)
    reply = split_reply(raw_exchange(server.port, b"HEAD /text HTTP/1.1\r\nHost: a\r\n"
                                                  b"Connection: close\r\n\r\n"))
    assert reply.status == 200
    assert b"\r\ncontent-length: 10" in reply.head.lower()
    assert reply.body == b""


def test_wire_options_answers_204_with_allow(shared_server, parser_mode):
    server = shared_server(HANDLERS_APP, parser_mode)
    response = requests.options(server.url + "/text", timeout=5)
    assert response.status_code == 204
    assert response.content == b""
    assert [m.strip() for m in response.headers["Allow"].split(",")] == ["GET", "HEAD", "OPTIONS"]


@pytest.mark.parametrize("target", [b"//evil.example", b"//evil.example/%2e%2e"])
def test_wire_redirect_slashes_location_stays_a_local_path(shared_server, parser_mode, target):
    # D11 (CPython CVE-2021-28861, tornado CVE-2023-28370, aiohttp GHSA-v6wp-4m6f-gcjg)
    server = shared_server(CATCH_ALL_SLASH_APP, parser_mode)
    raw = raw_exchange(server.port,
                       b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    status = status_of(raw)
    assert status is not None
    if 300 <= status < 400:
        [location] = split_reply(raw).values("location")
        assert location.startswith("/")
        assert not location.startswith("//")
    else:
        assert status in (400, 404)


def test_wire_redirect_slashes_redirects_plain_route(shared_server, parser_mode):
    server = shared_server(SLASH_APP, parser_mode)
    response = requests.get(server.url + "/a/", timeout=5, allow_redirects=False)
    assert response.status_code in (301, 302, 307, 308)
    assert response.headers["Location"] == "/a"
    assert requests.get(server.url + "/a/", timeout=5).text == "slash app a"
