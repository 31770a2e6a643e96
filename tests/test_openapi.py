"""The OpenAPI section (SPEC 14): the document of an app's routes, validated as OpenAPI 3.1 by
openapi-spec-validator, checked piece by piece; the docs page (the template engine, escaping,
no external assets), served without a route, and rendered by headless Chromium on a phone
and a desktop."""
import enum
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal, NotRequired, Optional, TypedDict

import pytest
from openapi_spec_validator import validate

import pixie_web  # noqa: E402
from pixie_web import App, FileUpload, Param, Response, Router, TestClient  # noqa: E402

# ---- the apps ---------------------------------------------------------------------------------

@dataclass
class Item:
    name: str
    qty: int = 1
    tags: list[str] | None = None


def spec_app():
    """The example of SPEC 14, as it is written there."""
    app = App(title="Carts")

    @app.post("/carts/<cart_id:int>/items")
    def add_item(request, cart_id, item: Item, dry_run: bool = False,
                 limit: Annotated[int, Param(ge=1, le=100)] = 10) -> Item:
        """Add an item to a cart.

        The item is checked and stored; with dry_run it is only checked."""
        return item

    return app


class Colour(enum.Enum):
    """A colour of the rainbow."""
    red = "red"
    green = "green"


class Level(enum.IntEnum):
    low = 1
    high = 2


@dataclass
class Address:
    street: str
    city: Annotated[str, Param(min_length=1, max_length=80, description="The town")]


@dataclass
class Customer:
    """Who orders."""
    name: str
    address: Address
    email: Optional[str] = None
    born: date | None = None


@dataclass
class Line:
    sku: Annotated[str, Param(pattern=r"^[A-Z]{3}-[0-9]+$")]
    quantity: Annotated[int, Param(gt=0, lt=1000)]
    price: Decimal


@dataclass
class Order:
    customer: Customer
    lines: list[Line]
    notes: dict[str, str] = field(default_factory=dict)
    colour: Colour = Colour.red
    when: datetime | None = None


@dataclass
class Node:
    """A tree: a recursive structure."""
    label: str
    children: list["Node"] = field(default_factory=list)


class Filters(TypedDict, total=False):
    tag: str
    level: int


class Patch(TypedDict):
    title: str
    body: NotRequired[str]


@dataclass
class ValidationError:          # the user's own class of the reserved name
    field: str


class Report:
    """Two classes called Summary: the second one's component name is qualified."""

    @dataclass
    class Summary:
        total: int


@dataclass
class Summary:
    count: int
    by_colour: dict[str, int]


ALL_ROUTES = {
    # (method, OpenAPI path): whether the route has a binding (a 422 response)
    ("get", "/items"): True, ("post", "/orders"): True, ("get", "/orders/{order_id}"): True,
    ("put", "/nodes/{node_id}"): True, ("post", "/upload"): True, ("post", "/json-fields"): True,
    ("patch", "/posts/{slug}"): True, ("get", "/files/{rest}"): False,
    ("get", "/coords/{x}/{y}"): False, ("get", "/codes/{code}"): False,
    ("get", "/plain"): False, ("delete", "/items/{item_id}"): False,
    ("get", "/html"): False, ("get", "/bytes"): False, ("get", "/response"): False,
    ("get", "/maybe"): True, ("post", "/search"): True, ("post", "/errors"): True,
    ("get", "/summaries"): False, ("get", "/v1/items"): True,
    ("get", "/things"): False, ("post", "/things"): False, ("get", "/things/{id}"): False,
    ("put", "/things/{id}"): False, ("patch", "/things/{id}"): False,
    ("get", "/tricky"): True,
}


def kinds_app():
    """One route per kind of annotation, source and return value, and the routes the
    document leaves out (WEBSOCKET, an unknown method)."""
    app = App()

    @app.get("/items")
    def list_items(request,
                   q: Annotated[str | None, Param(max_length=50, description="Search text")]
                   = None,
                   page: Annotated[int, Param(ge=1)] = 1,
                   ratio: Annotated[float, Param(gt=0, lt=1)] = 0.5,
                   price: Decimal | None = None,
                   ids: Annotated[list[int], Param(min_length=1, max_length=5)] = None,
                   colour: Colour = Colour.green,
                   level: Level | None = None,
                   sort: Literal["name", "date"] = "name",
                   fixed: Literal["only"] = "only",
                   since: date | None = None,
                   at: datetime | None = None,
                   token: uuid.UUID | None = None,
                   user_agent: Annotated[str | None, Param(source="header")] = None,
                   trace: Annotated[str | None, Param(source="header", alias="X-Trace-Id")]
                   = None,
                   session: Annotated[str, Param(source="cookie")] = "anonymous",
                   strict: Annotated[bool, Param(source="query")] = True) -> list[Item]:
        """List the items."""
        return []

    @app.post("/orders")
    def create_order(request, order: Order) -> Order:
        """Create an order."""
        return order

    @app.get("/orders/<order_id>")
    def get_order(request, order_id: Annotated[int, Param(ge=1, description="The order")]
                  ) -> Order | None:
        """One order, or nothing (204)."""

    @app.put("/nodes/<node_id:int>")
    def put_node(request, node_id, node: Node) -> Node:
        return node

    @app.post("/upload")
    def upload(request, title: Annotated[str, Param(source="form")],
               picture: FileUpload, extras: list[FileUpload] = None) -> dict:
        """Upload files."""
        return {}

    @app.post("/json-fields")
    def json_fields(request, name: Annotated[str, Param(source="json")],
                    count: Annotated[int, Param(source="json", ge=0)] = 0) -> dict[str, int]:
        return {}

    @app.patch("/posts/<slug>")
    def patch_post(request, slug, patch: Patch) -> None:
        """Change a post."""

    @app.get("/files/<rest:path>")
    def files(request, rest):
        return rest

    @app.get("/coords/<x:float>/<y:float>")
    def coords(request, x, y):
        return {}

    @app.get(r"/codes/<code:re:[a-z]{2}\d+>")
    def codes(request, code):
        return code

    @app.get("/plain")
    def plain(request):
        return "plain"

    @app.delete("/items/<item_id:int>")
    def delete_item(request, item_id) -> None:
        pass

    @app.get("/html")
    def html(request) -> str:
        return "<p>hi</p>"

    @app.get("/bytes")
    def raw(request) -> bytes:
        return b""

    @app.get("/response")
    def response(request) -> Response:
        return Response("x")

    @app.get("/maybe")
    def maybe(request, when: Optional[date] = None) -> Optional[Item]:
        return None

    @app.post("/search")
    def search(request, filters: Filters) -> list[Summary]:
        return []

    @app.post("/errors")
    def errors(request, error: ValidationError) -> Report.Summary:
        return Report.Summary(0)

    @app.get("/summaries")
    def summaries(request) -> dict[str, Summary]:
        return {}

    @app.get("/tricky")
    def tricky(request, text: str = "<script>alert('x')</script> & \"quotes\""):
        """<b>Not bold</b> & <script>alert(1)</script>

        <img src=x onerror=alert(2)> http://example.com/nothing-loaded"""
        return text

    @app.websocket("/ws/<room>")
    async def chat(request, ws, room):
        pass

    @app.route("/dav", methods=["PROPFIND"])
    def dav(request):
        return ""

    version_one = Router()

    @version_one.get("/items")
    def list_items_v1(request, page: int = 1) -> list[Item]:
        return []

    app.mount("/v1", version_one)

    class Things:
        def list(self, request):
            return []

        def create(self, request):
            return {}

        def get(self, request, id):
            return {}

        def update(self, request, id):
            return {}

    app.resource("/things", Things)
    return app


@pytest.fixture(scope="module")
def kinds():
    app = kinds_app()
    return app, app.openapi()


# ---- helpers ----------------------------------------------------------------------------------

def operation(document, method, path):
    return document["paths"][path][method]


def parameter(document, method, path, name):
    (found,) = [each for each in operation(document, method, path).get("parameters", [])
                if each["name"] == name]
    return found


def component(document, name):
    return document["components"]["schemas"][name]


def resolve(document, pointer):
    assert pointer.startswith("#/"), pointer
    node = document
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def every_ref(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from every_ref(value)
    elif isinstance(node, list):
        for value in node:
            yield from every_ref(value)


# ---- the document -----------------------------------------------------------------------------

def test_spec_example_is_valid_openapi_31():
    document = spec_app().openapi()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Carts", "version": "0.1.0"}
    post = operation(document, "post", "/carts/{cart_id}/items")
    assert post["summary"] == "Add an item to a cart."
    assert post["description"] == "The item is checked and stored; with dry_run it is only " \
                                  "checked."
    assert parameter(document, "post", "/carts/{cart_id}/items", "cart_id") == {
        "name": "cart_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    assert parameter(document, "post", "/carts/{cart_id}/items", "limit") == {
        "name": "limit", "in": "query", "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}}
    assert parameter(document, "post", "/carts/{cart_id}/items", "dry_run")["schema"] == {
        "type": "boolean", "default": False}
    body = post["requestBody"]
    assert body["required"] is True
    ref = {"$ref": "#/components/schemas/Item"}
    assert body["content"] == {"application/json": {"schema": ref},
                               "application/x-www-form-urlencoded": {"schema": ref}}
    assert post["responses"]["200"]["content"]["application/json"]["schema"] == ref
    assert post["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HTTPValidationError"}
    assert component(document, "Item") == {
        "title": "Item", "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string"}, "qty": {"type": "integer", "default": 1},
                       "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}},
                                          {"type": "null"}], "default": None}}}
    detail = component(document, "HTTPValidationError")["properties"]["detail"]
    assert detail["items"] == {"$ref": "#/components/schemas/ValidationError"}
    assert component(document, "ValidationError")["required"] == ["loc", "msg", "type"]


def test_many_kinds_are_valid_openapi_31(kinds):
    _, document = kinds
    validate(document)
    json.dumps(document, allow_nan=False)          # plain JSON, nothing Python-only


def test_every_route_once_and_nothing_else(kinds):
    _, document = kinds
    listed = {(method, path) for path, item in document["paths"].items() for method in item}
    assert listed == set(ALL_ROUTES)
    assert not any(path.startswith("/ws") for path in document["paths"])     # WEBSOCKET
    assert "/dav" not in document["paths"]          # a method OpenAPI 3.1 cannot hold
    ids = [each["operationId"] for item in document["paths"].values() for each in item.values()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", each) for each in ids)


def test_422_only_for_routes_with_a_binding(kinds):
    app, document = kinds
    for (method, path), bound in ALL_ROUTES.items():
        assert ("422" in operation(document, method, path)["responses"]) is bound, (method, path)
    bound_routes = {route.path for route in app.routes() if route.binding is not None}
    assert "/carts/<cart_id:int>/items" in {route.path for route in spec_app().routes()
                                            if route.binding is not None}
    assert "/plain" not in bound_routes


def test_no_422_schemas_without_bound_routes():
    app = App()

    @app.get("/")
    def index(request):
        return "hi"

    document = app.openapi()
    validate(document)
    assert "components" not in document
    assert document["paths"]["/"]["get"]["responses"] == {
        "200": {"description": "Successful Response"}}


def test_every_ref_resolves(kinds):
    _, document = kinds
    refs = set(every_ref(document))
    assert {"#/components/schemas/Order", "#/components/schemas/Node",
            "#/components/schemas/Customer", "#/components/schemas/Address"} <= refs
    for ref in refs:
        assert isinstance(resolve(document, ref), dict), ref
    # every component is used
    assert {ref.rsplit("/", 1)[1] for ref in refs} == set(document["components"]["schemas"])


def test_path_parameters_typed_by_filter_or_annotation(kinds):
    _, document = kinds
    assert parameter(document, "get", "/files/{rest}", "rest")["schema"] == {"type": "string"}
    assert parameter(document, "get", "/coords/{x}/{y}", "y")["schema"] == {"type": "number"}
    assert parameter(document, "put", "/nodes/{node_id}", "node_id")["schema"] == {
        "type": "integer"}
    assert parameter(document, "get", "/codes/{code}", "code")["schema"] == {
        "type": "string", "pattern": r"^(?:[a-z]{2}\d+)$"}
    annotated = parameter(document, "get", "/orders/{order_id}", "order_id")
    assert annotated["schema"] == {"type": "integer", "minimum": 1, "description": "The order"}
    assert annotated["description"] == "The order"
    assert annotated["required"] is True
    assert parameter(document, "get", "/things/{id}", "id")["schema"] == {"type": "string"}


def test_query_header_cookie_parameters_and_constraints(kinds):
    _, document = kinds

    def schema(name):
        return parameter(document, "get", "/items", name)["schema"]

    q = parameter(document, "get", "/items", "q")
    assert q["in"] == "query" and q["required"] is False and q["description"] == "Search text"
    assert schema("q") == {"anyOf": [{"type": "string", "maxLength": 50}, {"type": "null"}],
                           "description": "Search text", "default": None}
    assert schema("page") == {"type": "integer", "minimum": 1, "default": 1}
    assert schema("ratio") == {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1,
                               "default": 0.5}
    assert schema("ids") == {"type": "array", "items": {"type": "integer"}, "minItems": 1,
                             "maxItems": 5}             # None: "not given", no default
    assert schema("price")["anyOf"][0]["anyOf"] == [
        {"type": "number"}, {"type": "string", "pattern": pixie_web._DECIMAL_STRING_PATTERN}]
    assert re.fullmatch(pixie_web._DECIMAL_STRING_PATTERN, "-12.50")
    assert not re.fullmatch(pixie_web._DECIMAL_STRING_PATTERN, "12,5")
    assert schema("colour") == {"type": "string", "enum": ["red", "green"], "title": "Colour",
                                "description": "A colour of the rainbow.", "default": "green"}
    assert schema("level")["anyOf"][0] == {"type": "integer", "enum": [1, 2], "title": "Level"}
    assert schema("sort") == {"type": "string", "enum": ["name", "date"], "default": "name"}
    assert schema("fixed") == {"type": "string", "const": "only", "default": "only"}
    assert schema("since")["anyOf"][0] == {"type": "string", "format": "date"}
    assert schema("at")["anyOf"][0] == {"type": "string", "format": "date-time"}
    assert schema("token")["anyOf"][0] == {"type": "string", "format": "uuid"}
    assert parameter(document, "get", "/items", "user-agent")["in"] == "header"
    assert parameter(document, "get", "/items", "X-Trace-Id")["in"] == "header"
    session = parameter(document, "get", "/items", "session")
    assert session["in"] == "cookie" and session["schema"]["default"] == "anonymous"
    assert parameter(document, "get", "/items", "strict")["in"] == "query"
    assert "requestBody" not in operation(document, "get", "/items")


def test_components_required_defaults_nested_recursive(kinds):
    _, document = kinds
    order = component(document, "Order")
    assert order["required"] == ["customer", "lines"]
    assert order["properties"]["customer"] == {"$ref": "#/components/schemas/Customer"}
    assert order["properties"]["lines"] == {"type": "array",
                                            "items": {"$ref": "#/components/schemas/Line"}}
    assert order["properties"]["notes"] == {"type": "object",
                                            "additionalProperties": {"type": "string"}}
    assert order["properties"]["colour"]["default"] == "red"
    customer = component(document, "Customer")
    assert customer["description"] == "Who orders."
    assert customer["required"] == ["name", "address"]
    assert customer["properties"]["email"] == {"anyOf": [{"type": "string"}, {"type": "null"}],
                                               "default": None}
    assert component(document, "Address")["properties"]["city"] == {
        "type": "string", "minLength": 1, "maxLength": 80, "description": "The town"}
    line = component(document, "Line")["properties"]
    assert line["sku"] == {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"}
    assert line["quantity"] == {"type": "integer", "exclusiveMinimum": 0,
                                "exclusiveMaximum": 1000}
    node = component(document, "Node")
    assert node["properties"]["children"] == {"type": "array",
                                              "items": {"$ref": "#/components/schemas/Node"}}
    assert "default" not in node["properties"]["children"]         # a factory's: not called
    assert "description" not in component(document, "Item")   # dataclasses' generated doc
    # TypedDicts: total=False has no required list; NotRequired is left out of it
    assert "required" not in component(document, "Filters")
    assert component(document, "Patch")["required"] == ["title"]
    # the class names: the reserved ValidationError and the second Summary are qualified
    names = set(document["components"]["schemas"])
    assert component(document, "ValidationError")["required"] == ["loc", "msg", "type"]
    assert any(name.endswith("ValidationError") and name != "ValidationError"
               and name != "HTTPValidationError" for name in names)
    assert "Summary" in names
    assert any(name.endswith("Report.Summary") for name in names)


def test_request_bodies(kinds):
    _, document = kinds
    order_body = operation(document, "post", "/orders")["requestBody"]
    assert list(order_body["content"]) == ["application/json"]       # nested: JSON only
    upload = operation(document, "post", "/upload")["requestBody"]
    assert upload["required"] is True
    assert list(upload["content"]) == ["multipart/form-data"]          # files: multipart only
    form = upload["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["title", "picture"]
    assert form["properties"]["picture"] == {"type": "string", "format": "binary"}
    assert form["properties"]["extras"]["items"] == {"type": "string", "format": "binary"}
    assert form["properties"]["title"] == {"type": "string"}
    fields = operation(document, "post", "/json-fields")["requestBody"]
    assert fields["content"] == {"application/json": {"schema": {
        "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string"},
                       "count": {"type": "integer", "minimum": 0, "default": 0}}}}}
    patch = operation(document, "patch", "/posts/{slug}")["requestBody"]
    assert set(patch["content"]) == {"application/json", "application/x-www-form-urlencoded"}


def test_responses_follow_return_annotations(kinds):
    _, document = kinds

    def responses(method, path):
        return operation(document, method, path)["responses"]

    assert responses("get", "/items")["200"]["content"] == {"application/json": {"schema": {
        "type": "array", "items": {"$ref": "#/components/schemas/Item"}}}}
    assert responses("get", "/summaries")["200"]["content"]["application/json"]["schema"] == {
        "type": "object", "additionalProperties": {"$ref": "#/components/schemas/Summary"}}
    assert responses("post", "/json-fields")["200"]["content"]["application/json"][
        "schema"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert responses("delete", "/items/{item_id}") == {"204": {"description": "No Content"}}
    assert set(responses("get", "/orders/{order_id}")) == {"200", "204", "422"}
    assert responses("get", "/html")["200"]["content"] == {
        "text/html": {"schema": {"type": "string"}}}
    assert responses("get", "/bytes")["200"]["content"] == {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    assert "content" not in responses("get", "/response")["200"]
    assert "content" not in responses("get", "/plain")["200"]
    assert responses("get", "/maybe")["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Item"}


def test_date_bounds_and_decimal_bounds():
    app = App()

    @app.get("/range")
    def in_range(request, start: Annotated[date, Param(ge=date(2020, 1, 1))],
                 amount: Annotated[Decimal, Param(gt=Decimal("0.5"))] = Decimal("1.5")):
        return ""

    document = app.openapi()
    validate(document)
    assert parameter(document, "get", "/range", "start")["schema"] == {
        "type": "string", "format": "date", "formatMinimum": "2020-01-01"}
    amount = parameter(document, "get", "/range", "amount")["schema"]
    assert amount["exclusiveMinimum"] == 0.5 and amount["default"] == "1.5"


def test_same_path_pattern_twice_lists_the_first():
    app = App()

    @app.get("/a/<key:int>")
    def by_number(request, key):
        return ""

    @app.get("/a/<key>")
    def by_text(request, key):
        return ""

    document = app.openapi()
    validate(document)
    assert document["paths"]["/a/{key}"]["get"]["operationId"] == "by_number_get"


def test_document_is_plain_data_made_anew():
    app = spec_app()
    first = app.openapi()
    first["components"]["schemas"]["ValidationError"]["title"] = "changed"
    assert app.openapi()["components"]["schemas"]["ValidationError"]["title"] == \
        "ValidationError"


# ---- the docs page ----------------------------------------------------------------------------

def test_docs_page_lists_everything_escaped_and_self_contained(kinds):
    app, document = kinds
    page = pixie_web._docs_page(app, document)
    for path, item in document["paths"].items():
        assert pixie_web._html_escape(path) in page
        for each in item.values():
            assert f'id="op-{each["operationId"]}"' in page
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    assert '<meta name="viewport"' in page
    assert "<script" not in page.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "&lt;b&gt;Not bold&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<img" not in page
    # every link inside the page goes to an anchor that exists
    anchors = set(re.findall(r'id="([^"]+)"', page))
    for target in re.findall(r'href="#([^"]+)"', page):
        assert target in anchors, target
    assert "≥ 1" in page and "length ≤ 50" in page and "one of &quot;name&quot;" in page


def test_docs_page_of_an_empty_app():
    app = App(title="Nothing <here>")
    page = pixie_web._docs_page(app, app.openapi())
    assert "<h1>Nothing &lt;here&gt;</h1>" in page
    assert "no documented operations" in page


# ---- served without routes (the proposed App wiring) -----------------------------------------

def test_served_as_a_fallback_not_as_routes():
    app = spec_app()
    before = [repr(route) for route in app.routes()]
    with TestClient(app) as client:
        document = client.get("/openapi.json")
        assert document.status == 200
        assert document.headers["content-type"] == "application/json"
        assert document.json() == app.openapi()
        page = client.get("/docs")
        assert page.status == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "/carts/{cart_id}/items" in page.text
        head = client.head("/docs")
        assert head.status == 200 and head.body == b""
        assert client.request("POST", "/docs").status == 404
        assert client.get("/docs/").status == 404
    assert [repr(route) for route in app.routes()] == before


def test_urls_can_be_moved_or_turned_off_and_routes_win():
    app = App(openapi_url=None, docs_url="/api-docs")

    @app.get("/openapi.json")
    def mine(request):
        return {"mine": True}

    with TestClient(app) as client:
        assert client.get("/openapi.json").json() == {"mine": True}
        assert client.get("/docs").status == 404
        page = client.get("/api-docs")
        assert page.status == 200 and "/openapi.json" in page.text
        assert 'href="/openapi.json"' not in page.text       # no link to a document not served


def test_cached_until_the_routes_change():
    app = spec_app()
    with TestClient(app) as client:
        assert "/later" not in client.get("/openapi.json").json()["paths"]

        @app.get("/later")
        def later(request):
            return ""

        assert "/later" in client.get("/openapi.json").json()["paths"]
        assert "/later" in client.get("/docs").text


# ---- in a browser -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, width, height, scheme", [("phone", 390, 844, "light"),
                                                         ("desktop", 1280, 800, "light"),
                                                         ("phone_dark", 390, 844, "dark")])
def test_docs_page_in_chromium(kinds, tmp_path, name, width, height, scheme):
    sync_api = pytest.importorskip("playwright.sync_api")
    app, document = kinds
    page_file = tmp_path / "docs.html"
    page_file.write_text(pixie_web._docs_page(app, document), encoding="utf-8")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            context = browser.new_context(viewport={"width": width, "height": height},
                                          color_scheme=scheme, java_script_enabled=False)
            page = context.new_page()
            requested = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(page_file.as_uri())
            assert requested == [page_file.as_uri()]       # nothing else loaded
            assert page.title() == "pixie_web app 0.1.0"
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width, f"{scroll_width}px wide in a {width}px viewport"
            card = page.locator("#op-create_order_post")
            assert card.is_visible()
            assert card.bounding_box()["width"] <= width
            page.screenshot(path=os.path.join(tmp_path, f"docs_{name}.png"))
            for anchor, label in (("op-list_items_get", "parameters"), ("op-upload_post",
                                  "upload"), ("op-create_order_post", "order"),
                                  ("schema-Order", "schemas")):
                page.locator("#" + anchor).evaluate("element => element.scrollIntoView()")
                page.screenshot(path=os.path.join(tmp_path, f"docs_{name}_{label}.png"))
        finally:
            browser.close()


def test_served_through_the_wsgi_front_end_too():
    from wsgiref.util import setup_testing_defaults
    app = spec_app()
    environ = {"PATH_INFO": "/openapi.json"}
    setup_testing_defaults(environ)
    statuses = []
    body = b"".join(app.wsgi(environ, lambda status, headers, *rest: statuses.append(status)))
    assert statuses == ["200 OK"]
    assert json.loads(body) == app.openapi()
