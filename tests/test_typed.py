"""Typed handler parameters (SPEC 14): binding by annotation, constraints, the 422 list of
errors, bodies from JSON and forms, files, typed path wildcards, TypeError at decoration,
every route type (a pool worker never sees an invalid request), dataclass return values,
and the error shapes FastAPI + Pydantic v2 give for the same mistakes.

Most tests go through ``TestClient``: an echo app built here (one route per annotation) and
tests/apps/typed_app.py (the route types, bodies, files and return values; module-level so
pool workers can import it).  A few run over a real server with ``requests``.
"""
import enum
import inspect
import os
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Literal, NotRequired, TypedDict

import pytest
import requests

from pixie_web import App, FileUpload, Param, TestClient
from tests.apps import typed_app
from tests.apps.typed_app import RECEIPT_JSON, RECEIVED, Color, Customer, Line, Order

TARGET = "tests.apps.typed_app:app"
REQUIRED = object()     # no default: the parameter is required
UUID_TEXT = "12345678-1234-5678-1234-567812345678"


class Level(enum.Enum):
    low = 1
    high = 2


# ---- the echo app: one route per annotation --------------------------------------------------

def handler_taking(name, annotation=None, default=REQUIRED):
    """A handler ``(request, <name>: annotation = default)`` (no annotation when None) that
    answers the repr and type of the value it received."""
    def handler(request, **values):
        (value,) = values.values()
        return {"repr": repr(value), "type": type(value).__name__}
    handler.__signature__ = inspect.Signature([
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          default=inspect.Parameter.empty if default is REQUIRED else default,
                          annotation=inspect.Parameter.empty if annotation is None
                          else annotation)])
    handler.__annotations__ = {} if annotation is None else {name: annotation}
    return handler


def echo(annotation, default=REQUIRED):
    """A handler with one parameter ``value``, typed by ``annotation``."""
    return handler_taking("value", annotation, default)


ECHO_ROUTES = {
    "/str": echo(str),
    "/int": echo(int),
    "/float": echo(float),
    "/bool": echo(bool),
    "/decimal": echo(Decimal),
    "/uuid": echo(uuid.UUID),
    "/date": echo(date),
    "/datetime": echo(datetime),
    "/enum": echo(Color),
    "/int-enum": echo(Level),
    "/literal": echo(Literal["S", "M"]),
    "/literal-int": echo(Literal[1, 2]),
    "/list": echo(list[int]),
    "/optional": echo(int | None),
    "/optional-default": echo(int | None, None),
    "/default": echo(int, 7),
    "/list-default": echo(list[str], ["x"]),
    "/untyped": echo(None),
    "/alias": echo(Annotated[int, Param(alias="page-size")]),
    "/query-only": echo(Annotated[int, Param(source="query")]),
    "/form-only": echo(Annotated[int, Param(source="form")]),
    "/json-field": echo(Annotated[int, Param(source="json")]),
    "/json-decimal": echo(Annotated[Decimal, Param(source="json")]),
    "/json-bool": echo(Annotated[bool, Param(source="json")]),
    "/json-dict": echo(Annotated[dict[str, int], Param(source="json")]),
    "/cookie": echo(Annotated[str, Param(source="cookie")]),
    "/cookie-alias": echo(Annotated[str, Param(source="cookie", alias="session-id")]),
    # constraints
    "/ge": echo(Annotated[int, Param(ge=1)]),
    "/gt": echo(Annotated[float, Param(gt=0)]),
    "/le": echo(Annotated[Decimal, Param(le=Decimal("9.99"))]),
    "/lt": echo(Annotated[int, Param(lt=10)]),
    "/date-range": echo(Annotated[date, Param(ge=date(2024, 1, 1), lt=date(2025, 1, 1))]),
    "/min-length": echo(Annotated[str, Param(min_length=3)]),
    "/max-length": echo(Annotated[str, Param(max_length=5)]),
    "/pattern": echo(Annotated[str, Param(pattern="^[a-z]+$")]),
    "/list-length": echo(Annotated[list[str], Param(min_length=2, max_length=3)]),
    "/list-items": echo(list[Annotated[int, Param(ge=1)]]),
    "/optional-constrained": echo(Annotated[int, Param(ge=1)] | None, None),
    "/files/one": echo(FileUpload),
    "/files/optional": echo(FileUpload | None, None),
}


def make_echo_app():
    app = App()
    for path, handler in ECHO_ROUTES.items():
        app.route(path, methods=["GET", "POST"])(handler)
    return app


@pytest.fixture(scope="module")
def client():
    with TestClient(make_echo_app()) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def typed():
    """A TestClient of tests/apps/typed_app.py (its pool started: workers=2)."""
    with TestClient(typed_app.app) as test_client:
        yield test_client


def seen(reply):
    """What the echo handler received: (repr, type name)."""
    assert reply.status == 200, reply.text
    return reply.json()["repr"], reply.json()["type"]


def detail(reply):
    """The list of errors of a 422, after checking the response's exact shape."""
    assert reply.status == 422, reply.text
    assert reply.headers["content-type"] == "application/json"
    document = reply.json()
    assert list(document) == ["detail"]
    assert isinstance(document["detail"], list) and document["detail"]
    for error in document["detail"]:
        assert set(error) == {"loc", "msg", "type"}, error
        assert isinstance(error["loc"], list) and isinstance(error["msg"], str)
        assert isinstance(error["type"], str)
    return document["detail"]


def one_error(reply):
    errors = detail(reply)
    assert len(errors) == 1, errors
    return errors[0]


def missing(*loc):
    return {"loc": list(loc), "msg": "Field required", "type": "missing"}


INT_PARSING = "Input should be a valid integer, unable to parse string as an integer"


# ---- scalars from text -----------------------------------------------------------------------

@pytest.mark.parametrize("path, text, expected_repr, expected_type", [
    ("/str", "héllo wörld", "'héllo wörld'", "str"),
    ("/str", "", "''", "str"),
    ("/int", "42", "42", "int"),
    ("/int", "-7", "-7", "int"),
    ("/int", "+3", "3", "int"),
    ("/int", "007", "7", "int"),
    ("/float", "2.5", "2.5", "float"),
    ("/float", "-1e3", "-1000.0", "float"),
    ("/float", "3", "3.0", "float"),
    ("/decimal", "1.50", "Decimal('1.50')", "Decimal"),
    ("/decimal", "-0.001", "Decimal('-0.001')", "Decimal"),
    ("/uuid", UUID_TEXT, f"UUID('{UUID_TEXT}')", "UUID"),
    ("/uuid", UUID_TEXT.upper(), f"UUID('{UUID_TEXT}')", "UUID"),
    ("/date", "2024-02-29", "datetime.date(2024, 2, 29)", "date"),
    ("/datetime", "2024-05-06T07:08:09",
     "datetime.datetime(2024, 5, 6, 7, 8, 9)", "datetime"),
    ("/datetime", "2024-05-06T07:08:09.5+02:00",
     repr(datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=timezone(timedelta(hours=2)))),
     "datetime"),
    ("/enum", "g", "<Color.green: 'g'>", "Color"),
    ("/int-enum", "2", "<Level.high: 2>", "Level"),
    ("/literal", "M", "'M'", "str"),
    ("/literal-int", "2", "2", "int"),
    ("/optional", "5", "5", "int"),
    ("/untyped", "12", "'12'", "str"),
])
def test_a_scalar_query_value_arrives_converted_by_its_annotation(
        client, path, text, expected_repr, expected_type):
    assert seen(client.get(path, params={"value": text})) == (expected_repr, expected_type)


@pytest.mark.parametrize("word, expected", [
    (spelling, value)
    for base, value in [("true", True), ("false", False), ("1", True), ("0", False),
                        ("yes", True), ("no", False), ("on", True), ("off", False)]
    for spelling in sorted({base, base.upper(), base.title(), base[0] + base[1:].upper()})])
def test_bool_accepts_each_listed_spelling_in_any_case(client, word, expected):
    assert seen(client.get("/bool", params={"value": word})) == (repr(expected), "bool")


@pytest.mark.parametrize("word", ["", "2", "-1", "y", "n", "t", "f", "tru", "onn", "truee",
                                  " true", "true ", "yes please", "none", "null", "enabled"])
def test_bool_refuses_every_other_spelling_with_bool_parsing(client, word):
    assert one_error(client.get("/bool", params={"value": word})) == {
        "loc": ["query", "value"], "type": "bool_parsing",
        "msg": "Input should be a valid boolean, unable to interpret input"}


@pytest.mark.parametrize("path, text, kind, message", [
    ("/int", "abc", "int_parsing", INT_PARSING),
    ("/int", "1.5", "int_parsing", INT_PARSING),
    ("/int", "", "int_parsing", INT_PARSING),
    ("/int", "1_000", "int_parsing", INT_PARSING),
    ("/float", "abc", "float_parsing",
     "Input should be a valid number, unable to parse string as a number"),
    ("/decimal", "1.2.3", "decimal_parsing", "Input should be a valid decimal"),
    ("/decimal", "NaN", "decimal_parsing", "Input should be a valid decimal"),
    ("/uuid", "not-a-uuid", "uuid_parsing", "Input should be a valid UUID"),
    ("/date", "2023-02-29", "date_parsing", "Input should be a valid date"),
    ("/datetime", "yesterday", "datetime_parsing", "Input should be a valid datetime"),
    ("/enum", "blue", "enum", "Input should be 'r' or 'g'"),
    ("/enum", "green", "enum", "Input should be 'r' or 'g'"),       # by value, not by name
    ("/int-enum", "high", "enum", "Input should be 1 or 2"),
    ("/literal", "XL", "literal_error", "Input should be 'S' or 'M'"),
    ("/literal", "m", "literal_error", "Input should be 'S' or 'M'"),
    ("/literal-int", "3", "literal_error", "Input should be 1 or 2"),
    ("/optional", "x", "int_parsing", INT_PARSING),
])
def test_an_invalid_scalar_is_a_422_naming_its_type_and_place(client, path, text, kind,
                                                              message):
    assert one_error(client.get(path, params={"value": text})) == {
        "loc": ["query", "value"], "msg": message, "type": kind}


def test_a_list_takes_every_value_of_a_repeated_key_in_order(client):
    assert seen(client.get("/list?value=3&value=1&value=2")) == ("[3, 1, 2]", "list")
    assert seen(client.get("/list?value=5")) == ("[5]", "list")


def test_a_list_item_error_is_located_by_its_index(client):
    assert detail(client.get("/list?value=1&value=x&value=3&value=y")) == [
        {"loc": ["query", "value", 1], "msg": INT_PARSING, "type": "int_parsing"},
        {"loc": ["query", "value", 3], "msg": INT_PARSING, "type": "int_parsing"}]


@pytest.mark.parametrize("path", ["/int", "/optional", "/list", "/enum", "/bool"])
def test_a_parameter_without_default_is_required_even_when_it_allows_none(client, path):
    assert detail(client.get(path)) == [missing("query", "value")]


@pytest.mark.parametrize("path, expected", [
    ("/optional-default", ("None", "NoneType")),
    ("/default", ("7", "int")),
    ("/list-default", ("['x']", "list")),
    ("/optional-constrained", ("None", "NoneType")),
])
def test_a_default_is_used_when_the_value_is_absent(client, path, expected):
    assert seen(client.get(path)) == expected


def test_a_given_value_replaces_the_default(client):
    assert seen(client.get("/default?value=8")) == ("8", "int")
    assert seen(client.get("/optional-default?value=0")) == ("0", "int")
    assert seen(client.get("/list-default?value=a&value=b")) == ("['a', 'b']", "list")


# ---- query, then form; aliases; other sources ------------------------------------------------

def test_the_query_wins_over_the_form_for_the_same_name(client):
    assert seen(client.post("/int?value=1", data={"value": "2"})) == ("1", "int")
    assert seen(client.post("/list?value=1", data=[("value", "2"), ("value", "3")])) == (
        "[1]", "list")


def test_the_form_is_used_when_the_query_lacks_the_name(client):
    assert seen(client.post("/int?other=1", data={"value": "2"})) == ("2", "int")
    assert seen(client.post("/list", data=[("value", "2"), ("value", "3")])) == (
        "[2, 3]", "list")
    assert seen(client.post("/int", files={"f": ("a.txt", b"x")}, data={"value": "4"})) == (
        "4", "int")


def test_an_invalid_form_value_is_located_in_the_body(client):
    assert one_error(client.post("/int", data={"value": "x"})) == {
        "loc": ["body", "value"], "msg": INT_PARSING, "type": "int_parsing"}


def test_a_value_absent_from_query_and_form_is_missing_from_the_query(client):
    assert detail(client.post("/int", data={"other": "2"})) == [missing("query", "value")]


def test_an_alias_is_the_name_looked_up_and_reported(client):
    assert seen(client.get("/alias?page-size=20")) == ("20", "int")
    assert detail(client.get("/alias?value=20")) == [missing("query", "page-size")]
    assert one_error(client.get("/alias?page-size=x"))["loc"] == ["query", "page-size"]


def test_source_query_ignores_the_form(client):
    assert seen(client.post("/query-only?value=3", data={"value": "4"})) == ("3", "int")
    assert detail(client.post("/query-only", data={"value": "4"})) == [
        missing("query", "value")]


def test_source_form_ignores_the_query(client):
    assert seen(client.post("/form-only?value=3", data={"value": "4"})) == ("4", "int")
    assert detail(client.post("/form-only?value=3")) == [missing("body", "value")]
    assert one_error(client.post("/form-only", data={"value": "x"}))["loc"] == [
        "body", "value"]


def test_source_json_takes_one_field_of_the_json_body(client):
    assert seen(client.post("/json-field", json={"value": 5, "other": "x"})) == ("5", "int")
    assert seen(client.post("/json-field", json={"value": "6"})) == ("6", "int")
    assert seen(client.post("/json-decimal", json={"value": 1.25})) == (
        "Decimal('1.25')", "Decimal")
    assert seen(client.post("/json-decimal", json={"value": "1.250"})) == (
        "Decimal('1.250')", "Decimal")
    assert seen(client.post("/json-bool", json={"value": True})) == ("True", "bool")
    assert detail(client.post("/json-field", json={"other": 5})) == [missing("body", "value")]
    assert detail(client.post("/json-field?value=5", data={"value": "5"})) == [
        missing("body", "value")]
    assert one_error(client.post("/json-field", json={"value": "x"})) == {
        "loc": ["body", "value"], "msg": INT_PARSING, "type": "int_parsing"}
    assert client.post("/json-field", data=b'{"value": 1',
                       headers={"Content-Type": "application/json"}).status == 400


def test_a_json_field_may_be_a_dict_with_string_keys(client):
    assert seen(client.post("/json-dict", json={"value": {"a": 1, "b": "2"}})) == (
        "{'a': 1, 'b': 2}", "dict")
    assert detail(client.post("/json-dict", json={"value": {"a": "x", "b": 2, "c": "y"}})) == [
        {"loc": ["body", "value", "a"], "msg": INT_PARSING, "type": "int_parsing"},
        {"loc": ["body", "value", "c"], "msg": INT_PARSING, "type": "int_parsing"}]
    assert one_error(client.post("/json-dict", json={"value": [1]})) == {
        "loc": ["body", "value"], "msg": "Input should be a valid dictionary",
        "type": "dict_type"}


def test_source_cookie_reads_the_cookie_by_name_or_alias(client):
    assert seen(client.get("/cookie", cookies={"value": "abc"})) == ("'abc'", "str")
    assert detail(client.get("/cookie?value=abc")) == [missing("cookie", "value")]
    assert seen(client.get("/cookie-alias", cookies={"session-id": "s1"})) == ("'s1'", "str")
    assert detail(client.get("/cookie-alias", cookies={"value": "s1"})) == [
        missing("cookie", "session-id")]


def test_source_header_maps_underscores_to_hyphens_unless_aliased():
    app = App()

    @app.get("/headers")
    def headers(request, user_agent: Annotated[str, Param(source="header")],
                x_count: Annotated[int, Param(source="header")] = 0,
                token: Annotated[str | None, Param(source="header", alias="X-Api-Token")] = None):
        return {"user_agent": user_agent, "x_count": x_count, "token": token}

    with TestClient(app) as test_client:
        reply = test_client.get("/headers", headers={"User-Agent": "probe/1.0", "X-Count": "3",
                                                     "x-api-token": "t0k"})
        assert reply.json() == {"user_agent": "probe/1.0", "x_count": 3, "token": "t0k"}
        reply = test_client.get("/headers?x_count=9&token=q", headers={"Token": "no"})
        assert reply.json() == {"user_agent": "pixie-web-testclient", "x_count": 0,
                                "token": None}
        assert one_error(test_client.get("/headers", headers={"X-Count": "many"})) == {
            "loc": ["header", "x-count"], "msg": INT_PARSING, "type": "int_parsing"}


def test_a_missing_header_is_reported_under_its_header_name():
    app = App()

    @app.get("/need")
    def need(request, x_request_id: Annotated[str, Param(source="header")],
             token: Annotated[str, Param(source="header", alias="X-Token")]):
        return "ok"

    with TestClient(app) as test_client:
        assert detail(test_client.get("/need")) == [missing("header", "x-request-id"),
                                                    missing("header", "X-Token")]


# ---- constraints -----------------------------------------------------------------------------

@pytest.mark.parametrize("path, good, bad, kind, message", [
    ("/ge", "1", "0", "greater_than_equal", "Input should be greater than or equal to 1"),
    ("/gt", "0.001", "0", "greater_than", "Input should be greater than 0"),
    ("/le", "9.99", "10.00", "less_than_equal", "Input should be less than or equal to 9.99"),
    ("/lt", "9", "10", "less_than", "Input should be less than 10"),
    ("/date-range", "2024-12-31", "2025-01-01", "less_than",
     "Input should be less than 2025-01-01"),
    ("/date-range", "2024-01-01", "2023-12-31", "greater_than_equal",
     "Input should be greater than or equal to 2024-01-01"),
    ("/min-length", "abc", "ab", "string_too_short", "String should have at least 3 characters"),
    ("/max-length", "abcde", "abcdef", "string_too_long",
     "String should have at most 5 characters"),
    ("/pattern", "abc", "abc1", "string_pattern_mismatch",
     "String should match pattern '^[a-z]+$'"),
])
def test_a_constraint_accepts_its_bound_and_refuses_beyond_it(client, path, good, bad, kind,
                                                             message):
    assert client.get(path, params={"value": good}).status == 200
    assert one_error(client.get(path, params={"value": bad})) == {
        "loc": ["query", "value"], "msg": message, "type": kind}


def test_a_failed_conversion_is_reported_instead_of_the_constraint(client):
    assert one_error(client.get("/ge?value=x"))["type"] == "int_parsing"


def test_list_lengths_are_constrained(client):
    assert seen(client.get("/list-length?value=a&value=b")) == ("['a', 'b']", "list")
    too_short = one_error(client.get("/list-length?value=a"))
    assert (too_short["loc"], too_short["type"]) == (["query", "value"], "too_short")
    assert too_short["msg"].startswith("List should have at least 2 items")
    too_long = one_error(client.get("/list-length?value=a&value=b&value=c&value=d"))
    assert (too_long["loc"], too_long["type"]) == (["query", "value"], "too_long")
    assert too_long["msg"].startswith("List should have at most 3 items")


def test_each_list_item_is_constrained_and_located_by_index(client):
    assert seen(client.get("/list-items?value=1&value=2")) == ("[1, 2]", "list")
    assert detail(client.get("/list-items?value=1&value=0&value=-4")) == [
        {"loc": ["query", "value", 1], "msg": "Input should be greater than or equal to 1",
         "type": "greater_than_equal"},
        {"loc": ["query", "value", 2], "msg": "Input should be greater than or equal to 1",
         "type": "greater_than_equal"}]


def test_an_optional_constrained_value_is_still_checked_when_given(client):
    assert seen(client.get("/optional-constrained?value=3")) == ("3", "int")
    assert one_error(client.get("/optional-constrained?value=0"))["type"] == (
        "greater_than_equal")


def test_param_constraints_apply_inside_dataclass_fields(typed):
    order = {"customer": {"name": "Ann"}, "lines": [{"sku": "a", "qty": 0}]}
    assert detail(typed.post("/order", json=order)) == [
        {"loc": ["body", "lines", 0, "qty"], "msg": "Input should be greater than or equal to 1",
         "type": "greater_than_equal"}]


# ---- files -----------------------------------------------------------------------------------

def test_a_file_upload_parameter_gets_the_uploaded_file(client, typed):
    reply = client.post("/files/one", files={"value": ("notes.txt", b"hello", "text/plain")})
    assert seen(reply)[1] == "FileUpload"
    reply = typed.post("/upload", files={"document": ("report.txt", b"the report")},
                       data={"title": "T"})
    assert reply.json() == {"title": "T", "document": ["report.txt", "the report"],
                            "attachments": []}
    document = RECEIVED["/upload"]["document"]
    assert isinstance(document, FileUpload) and document.content_type == (
        "application/octet-stream")


def test_a_missing_file_is_a_422_in_the_body(client):
    assert detail(client.post("/files/one", data={"value": "not a file"})) == [
        missing("body", "value")]
    assert detail(client.post("/files/one")) == [missing("body", "value")]
    assert seen(client.post("/files/optional", data={"x": "1"})) == ("None", "NoneType")


def test_a_list_of_file_uploads_takes_every_file_of_the_field(typed):
    boundary = "typed-boundary-1234"
    parts = [("document", "d.txt", b"doc"), ("attachments", "a1.txt", b"one"),
             ("attachments", "a2.txt", b"two")]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"'
        f'\r\nContent-Type: text/plain\r\n\r\n'.encode() + data + b"\r\n"
        for name, filename, data in parts) + f"--{boundary}--\r\n".encode()
    reply = typed.post("/upload", data=body,
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert reply.json()["attachments"] == [["a1.txt", "one"], ["a2.txt", "two"]]
    assert all(isinstance(each, FileUpload) for each in RECEIVED["/upload"]["attachments"])


# ---- bodies: dataclasses and TypedDicts ------------------------------------------------------

ORDER = {"customer": {"name": "Ann", "email": "ann@example.com"},
         "lines": [{"sku": "a-1", "qty": 2, "price": "9.95"}, {"sku": "b-2", "qty": "3"}],
         "tags": ["gift"], "priority": 2, "due": "2024-12-24"}


def test_a_dataclass_body_is_built_from_json_with_nested_values_converted(typed):
    reply = typed.post("/order", json=ORDER)
    assert reply.status == 200, reply.text
    order = RECEIVED["/order"]["order"]
    assert order == Order(Customer("Ann", "ann@example.com"),
                          [Line("a-1", 2, Decimal("9.95")), Line("b-2", 3, Decimal("0"))],
                          tags=["gift"], priority=2, due=date(2024, 12, 24))
    assert type(order.lines[1].qty) is int and type(order.due) is date
    assert reply.json() == {**ORDER, "lines": [{"sku": "a-1", "qty": 2, "price": "9.95"},
                                               {"sku": "b-2", "qty": 3, "price": "0"}]}


def test_absent_optional_fields_take_their_defaults_and_fresh_default_factories(typed):
    minimal = {"customer": {"name": "Bo"}, "lines": []}
    assert typed.post("/order", json=minimal).status == 200
    first = RECEIVED["/order"]["order"]
    assert typed.post("/order", json=minimal).status == 200
    second = RECEIVED["/order"]["order"]
    assert first == Order(Customer("Bo", None), [], tags=[], priority=0, due=None)
    assert first.tags is not second.tags        # default_factory: a new list per request


def test_fields_given_as_null_are_none_when_optional(typed):
    assert typed.post("/order", json={"customer": {"name": "Cy", "email": None},
                                      "lines": [], "due": None}).status == 200
    order = RECEIVED["/order"]["order"]
    assert order.customer.email is None and order.due is None


def test_extra_fields_are_ignored(typed):
    reply = typed.post("/order", json={"customer": {"name": "Di", "age": 40}, "lines": [],
                                       "coupon": "FREE"})
    assert reply.status == 200, reply.text
    assert RECEIVED["/order"]["order"] == Order(Customer("Di"), [])


def test_every_missing_required_field_is_listed(typed):
    assert detail(typed.post("/order", json={"lines": [{"price": "1"}]})) == [
        missing("body", "customer"),
        missing("body", "lines", 0, "sku"),
        missing("body", "lines", 0, "qty")]


def test_every_wrongly_typed_field_is_listed_with_its_path_in_the_body(typed):
    body = {"customer": "Ann", "lines": [{"sku": 5, "qty": "two"}, "x"],
            "tags": "gift", "priority": "high", "due": "soon"}
    assert detail(typed.post("/order", json=body)) == [
        {"loc": ["body", "customer"], "type": "dict_type",
         "msg": "Input should be a valid dictionary or object to build Customer"},
        {"loc": ["body", "lines", 0, "sku"], "msg": "Input should be a valid string",
         "type": "string_type"},
        {"loc": ["body", "lines", 0, "qty"], "msg": INT_PARSING, "type": "int_parsing"},
        {"loc": ["body", "lines", 1], "type": "dict_type",
         "msg": "Input should be a valid dictionary or object to build Line"},
        {"loc": ["body", "tags"], "msg": "Input should be a valid list", "type": "list_type"},
        {"loc": ["body", "priority"], "msg": INT_PARSING, "type": "int_parsing"},
        {"loc": ["body", "due"], "msg": "Input should be a valid date", "type": "date_parsing"}]


def test_a_json_value_that_is_not_an_object_is_one_error_at_the_body(typed):
    error = one_error(typed.post("/order", json=[ORDER]))
    assert (error["loc"], error["type"]) == (["body"], "dict_type")


def test_a_required_body_with_no_body_at_all_is_a_422_at_body(typed):
    assert detail(typed.post("/order")) == [missing("body")]
    assert detail(typed.post("/order", data=b"",
                             headers={"Content-Type": "application/json"})) == [missing("body")]


def test_malformed_json_stays_a_400_not_a_422(typed):
    reply = typed.post("/order", data=b'{"customer": {"name": "Ann"',
                       headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert reply.headers["content-type"].startswith("text/plain")
    assert "detail" not in reply.text


def test_an_optional_body_may_be_absent(typed):
    reply = typed.post("/types/sync?n=1&day=2024-01-01")
    assert reply.status == 200, reply.text
    assert RECEIVED["/types/sync"]["order"] is None


def test_a_typeddict_body_is_a_dict_with_converted_values(typed):
    reply = typed.post("/address", json={"street": "Main", "number": "12", "floor": 3,
                                         "extra": True})
    assert reply.status == 200, reply.text
    assert RECEIVED["/address"]["address"] == {"street": "Main", "number": 12, "floor": 3}
    assert typed.post("/address", json={"street": "Main", "number": 1}).json() == {
        "street": "Main", "number": 1}
    # (in the TypedDict's field order: the inherited optional "floor" first)
    assert detail(typed.post("/address", json={"number": "x", "floor": "y"})) == [
        {"loc": ["body", "floor"], "msg": INT_PARSING, "type": "int_parsing"},
        missing("body", "street"),
        {"loc": ["body", "number"], "msg": INT_PARSING, "type": "int_parsing"}]


def test_a_typeddict_with_not_required_keys_can_be_bound():
    """SPEC 14: TypedDict bodies with optional fields. ``NotRequired[...]`` is how a
    TypedDict marks one (PEP 655)."""
    class Pet(TypedDict):
        name: str
        age: NotRequired[int]

    app = App()

    @app.post("/pets")
    def add_pet(request, pet: Pet):
        return pet

    with TestClient(app) as test_client:
        assert test_client.post("/pets", json={"name": "Rex", "age": "3"}).json() == {
            "name": "Rex", "age": 3}
        assert test_client.post("/pets", json={"name": "Rex"}).json() == {"name": "Rex"}


@dataclass
class Stock:
    counts: dict[str, int]
    prices: dict[str, Decimal] = field(default_factory=dict)


def test_a_dataclass_body_with_dict_fields_can_be_bound():
    """SPEC 14: a dataclass from the JSON body, ``dict[str, X]`` included."""
    app = App()

    @app.post("/stock")
    def stock(request, stock: Stock):
        return {"counts": stock.counts, "prices": {k: str(v) for k, v in stock.prices.items()}}

    with TestClient(app) as test_client:
        reply = test_client.post("/stock", json={"counts": {"a": 1, "b": "2"},
                                                 "prices": {"a": "1.50"}})
        assert reply.json() == {"counts": {"a": 1, "b": 2}, "prices": {"a": "1.50"}}
        assert detail(test_client.post("/stock", json={"counts": {"a": "x", "b": 1}})) == [
            {"loc": ["body", "counts", "a"], "msg": INT_PARSING, "type": "int_parsing"}]


@dataclass
class Tree:
    value: int
    children: "list[Tree]" = field(default_factory=list)


def test_a_recursive_dataclass_is_bound_at_any_depth():
    app = App()

    @app.post("/tree")
    def tree(request, root: Tree):
        return {"repr": repr(root)}

    with TestClient(app) as test_client:
        reply = test_client.post("/tree", json={"value": 1, "children": [
            {"value": "2", "children": [{"value": 3}]}]})
        assert reply.json()["repr"] == (
            "Tree(value=1, children=[Tree(value=2, children=[Tree(value=3, children=[])])])")
        assert one_error(test_client.post("/tree", json={"value": 1, "children": [
            {"value": 2, "children": [{"value": "x"}]}]}))["loc"] == [
            "body", "children", 0, "children", 0, "value"]


def test_a_flat_dataclass_comes_from_an_urlencoded_or_multipart_form(typed):
    reply = typed.post("/signup", data={"name": "Ann", "age": "41", "newsletter": "on"})
    assert reply.status == 200, reply.text
    assert RECEIVED["/signup"]["signup"] == typed_app.Signup("Ann", 41, True)
    reply = typed.post("/signup", data={"name": "Bo", "age": "7"},
                       files={"photo": ("p.png", b"\x89PNG")})
    assert reply.status == 200, reply.text
    assert RECEIVED["/signup"]["signup"] == typed_app.Signup("Bo", 7, False)
    assert detail(typed.post("/signup", data={"age": "x", "newsletter": "maybe"})) == [
        missing("body", "name"),
        {"loc": ["body", "age"], "msg": INT_PARSING, "type": "int_parsing"},
        {"loc": ["body", "newsletter"], "type": "bool_parsing",
         "msg": "Input should be a valid boolean, unable to interpret input"}]


def test_the_same_flat_dataclass_comes_from_json_too(typed):
    reply = typed.post("/signup", json={"name": "Cy", "age": 3, "newsletter": True})
    assert reply.json() == {"name": "Cy", "age": 3, "newsletter": True}


@dataclass
class Account:
    name: str
    owner: Customer | None = None


def test_a_nested_dataclass_posted_as_a_form_is_a_422_not_a_crash():
    """A dataclass with a dataclass field is not flat: from a form its nested field cannot
    be read. Whatever the form holds, the answer is a 422 (never a 500)."""
    app = App()

    @app.post("/accounts")
    def accounts(request, account: Account):
        return "ok"

    with TestClient(app) as test_client:
        for owner in ["name", "x"]:
            reply = test_client.post("/accounts", data={"name": "A", "owner": owner})
            assert reply.status == 422, (owner, reply.status, reply.text)


@dataclass
class Tagged:
    name: str
    tags: list[str] = field(default_factory=list)


def test_a_list_field_of_a_form_dataclass_takes_the_repeated_key():
    """A list from a form is a repeated key (as for a list parameter); FastAPI's form models
    read list fields the same way."""
    app = App()

    @app.post("/tagged")
    def tagged(request, item: Tagged):
        return {"name": item.name, "tags": item.tags}

    with TestClient(app) as test_client:
        reply = test_client.post("/tagged", data=[("name", "n"), ("tags", "a"), ("tags", "b")])
        assert reply.status == 200, reply.text
        assert reply.json() == {"name": "n", "tags": ["a", "b"]}


def test_every_error_of_a_request_is_listed_in_order(typed):
    """Query, then body errors, in the order of the handler's parameters and the fields."""
    body = {"customer": {}, "lines": [{"sku": "a", "qty": 0}, {"qty": "x"}]}
    reply = typed.post("/types/sync?n=0&day=2024-02-30&color=blue", json=body)
    assert detail(reply) == [
        {"loc": ["query", "n"], "msg": "Input should be greater than or equal to 1",
         "type": "greater_than_equal"},
        {"loc": ["query", "day"], "msg": "Input should be a valid date", "type": "date_parsing"},
        {"loc": ["query", "color"], "msg": "Input should be 'r' or 'g'", "type": "enum"},
        missing("body", "customer", "name"),
        {"loc": ["body", "lines", 0, "qty"], "msg": "Input should be greater than or equal to 1",
         "type": "greater_than_equal"},
        missing("body", "lines", 1, "sku"),
        {"loc": ["body", "lines", 1, "qty"], "msg": INT_PARSING, "type": "int_parsing"}]
    assert detail(typed.post("/types/sync")) == [missing("query", "n"),
                                                 missing("query", "day")]


# ---- typed path wildcards --------------------------------------------------------------------

def make_path_app():
    app = App()

    @app.get("/items/<item_id>")
    def item(request, item_id: int):
        return {"repr": repr(item_id)}

    @app.get("/things/<thing_id>")
    def thing(request, thing_id: uuid.UUID, detail: bool = False):
        return {"repr": repr(thing_id), "detail": detail}

    @app.get("/pages/<number>")
    def page(request, number: Annotated[int, Param(ge=1)]):
        return {"repr": repr(number)}

    @app.get("/typed/<count:int>")
    def typed_twice(request, count: int):
        return {"repr": repr(count)}

    @app.get("/plain/<name>")
    def plain(request, name):
        return {"repr": repr(name)}
    return app


def test_an_annotated_path_wildcard_is_converted():
    with TestClient(make_path_app()) as test_client:
        assert test_client.get("/items/42").json() == {"repr": "42"}
        assert test_client.get(f"/things/{UUID_TEXT}?detail=yes").json() == {
            "repr": f"UUID('{UUID_TEXT}')", "detail": True}
        assert test_client.get("/typed/5").json() == {"repr": "5"}
        assert test_client.get("/plain/5").json() == {"repr": "'5'"}


def test_an_invalid_path_wildcard_is_a_422_at_path():
    with TestClient(make_path_app()) as test_client:
        assert one_error(test_client.get("/items/abc")) == {
            "loc": ["path", "item_id"], "msg": INT_PARSING, "type": "int_parsing"}
        assert one_error(test_client.get("/things/not-a-uuid")) == {
            "loc": ["path", "thing_id"], "msg": "Input should be a valid UUID",
            "type": "uuid_parsing"}
        assert one_error(test_client.get("/pages/0"))["loc"] == ["path", "number"]
        assert detail(test_client.get("/things/x?detail=maybe")) == [
            {"loc": ["path", "thing_id"], "msg": "Input should be a valid UUID",
             "type": "uuid_parsing"},
            {"loc": ["query", "detail"], "type": "bool_parsing",
             "msg": "Input should be a valid boolean, unable to interpret input"}]


# ---- TypeError at decoration -----------------------------------------------------------------

@dataclass
class Other:
    y: int


class NotADataclass:
    def __init__(self, x):
        self.x = x


@dataclass
class WithASet:
    tags: set[str]


UNBINDABLE = [
    ("a set", "/sets", "tags", lambda: set[int]),
    ("a class that is no dataclass", "/things", "thing", lambda: NotADataclass),
    ("a dict with int keys", "/maps", "mapping", lambda: dict[int, str]),
    ("a dict from the query", "/query-maps", "mapping", lambda: dict[str, str]),
    ("bytes", "/raw", "raw", lambda: bytes),
    ("ge on a str", "/names", "name", lambda: Annotated[str, Param(ge=1)]),
    ("min_length on an int", "/counts", "count", lambda: Annotated[int, Param(min_length=1)]),
    ("pattern on an int", "/codes", "code", lambda: Annotated[int, Param(pattern="^1")]),
    ("ge on a list", "/lists", "values", lambda: Annotated[list[int], Param(ge=1)]),
    ("a list from a header", "/hdr", "x_values",
     lambda: Annotated[list[str], Param(source="header")]),
    ("a dataclass from a header", "/hdr-dc", "x_other",
     lambda: Annotated[Other, Param(source="header")]),
    ("a file from the query", "/file-query", "upload",
     lambda: Annotated[FileUpload, Param(source="query")]),
    ("a dataclass field that is a set", "/nested-set", "body", lambda: WithASet),
    ("a union of two types", "/unions", "value", lambda: int | str),
]


@pytest.mark.parametrize("what, path, name, annotation", UNBINDABLE,
                         ids=[case[0] for case in UNBINDABLE])
def test_an_unbindable_annotation_is_a_type_error_at_decoration_naming_route_and_parameter(
        what, path, name, annotation):
    app = App()
    with pytest.raises(TypeError) as raised:
        app.get(path)(handler_taking(name, annotation()))
    message = str(raised.value)
    assert path in message and repr(name) in message, message
    assert app.routes() == []


def test_two_body_parameters_are_a_type_error_naming_the_route_and_the_parameters():
    app = App()

    def orders(request, order: Order, other: Other):
        return "never"

    with pytest.raises(TypeError) as raised:
        app.post("/two-bodies")(orders)
    message = str(raised.value)
    assert "/two-bodies" in message and "'other'" in message, message


@pytest.mark.parametrize("annotation", [Other, list[int]], ids=["dataclass", "list"])
def test_a_path_wildcard_that_no_path_segment_can_fill_is_a_type_error(annotation):
    """A path segment is one string: a wildcard annotated with a dataclass or a list could
    never be bound (SPEC 14: TypeError at decoration, naming the route and the parameter)."""
    with pytest.raises(TypeError) as raised:
        App().get("/keys/<key>")(handler_taking("key", annotation))
    assert "/keys/<key>" in str(raised.value) and "'key'" in str(raised.value)


def test_a_dataclass_path_wildcard_never_crashes_the_request():
    """Until it is refused at decoration: a request must not end in a 500."""
    app = App()
    try:
        app.get("/keys/<key>")(handler_taking("key", Other))
    except TypeError:
        return
    with TestClient(app) as test_client:
        for segment in ["y", "x"]:
            assert test_client.get(f"/keys/{segment}").status in (404, 422)


def test_a_path_wildcard_cannot_be_given_another_source():
    def handler(request, key: Annotated[int, Param(source="query")]):
        return "never"
    with pytest.raises(TypeError, match=r"/keys/<key>.*'key'"):
        App().get("/keys/<key>")(handler)


def test_an_unknown_source_is_a_value_error_of_param():
    with pytest.raises(ValueError, match="body"):
        Param(source="body")


def test_annotations_that_cannot_be_evaluated_name_the_route():
    def handler(request, value: "NoSuchType"):  # noqa: F821
        return "never"
    with pytest.raises(TypeError, match=r"/lazy.*NoSuchType"):
        App().get("/lazy")(handler)


# ---- binding is worked out at registration ---------------------------------------------------

def test_handlers_without_typed_parameters_have_no_binding():
    routes = {route.path: route for route in typed_app.app.routes()}
    assert routes["/receipt"].binding is None
    assert routes["/untyped/<name>"].binding is None        # an unannotated wildcard only
    assert routes["/types/sync"].binding is not None


def test_an_untyped_handler_answers_as_before(typed):
    assert typed.get("/untyped/abc?n=x").json() == {"name": "abc", "type": "str"}


def test_the_binding_is_made_once_at_registration_not_per_request(typed):
    route = next(route for route in typed_app.app.routes() if route.path == "/order")
    plan = route.binding
    assert plan is not None
    for _ in range(3):
        typed.post("/order", json={"customer": {"name": "A"}, "lines": []})
    assert route.binding is plan


# ---- every route type ------------------------------------------------------------------------

ROUTE_TYPES = ["/types/sync", "/types/async", "/types/thread", "/types/pool"]
VALID_ORDER = {"customer": {"name": "Ann"}, "lines": [{"sku": "a", "qty": "2"}]}


@pytest.mark.parametrize("path", ROUTE_TYPES)
def test_each_route_type_receives_converted_values(typed, path, tmp_path):
    reply = typed.post(f"{path}?n=5&day=2024-03-01&color=g&dir={tmp_path}", json=VALID_ORDER)
    assert reply.status == 200, reply.text
    answer = reply.json()
    assert (answer["n"], answer["n_type"]) == (5, "int")
    assert (answer["day"], answer["day_type"]) == ("2024-03-01", "date")
    assert (answer["color"], answer["color_type"]) == ("g", "Color")
    assert answer["order_type"] == "Order"
    assert answer["order"]["lines"] == [{"sku": "a", "qty": 2, "price": "0"}]
    assert answer["is_pool"] is (path == "/types/pool")
    if path == "/types/pool":
        assert answer["pid"] != os.getpid()
    else:
        assert RECEIVED[path] == {"n": 5, "day": date(2024, 3, 1), "color": Color.green,
                                  "order": Order(Customer("Ann"), [Line("a", 2)])}


@pytest.mark.parametrize("path", ROUTE_TYPES)
def test_each_route_type_answers_an_invalid_request_with_the_same_422(typed, path, tmp_path):
    reply = typed.post(f"{path}?n=101&color=red&dir={tmp_path}", json={"lines": {}})
    assert detail(reply) == [
        {"loc": ["query", "n"], "msg": "Input should be less than or equal to 100",
         "type": "less_than_equal"},
        missing("query", "day"),
        {"loc": ["query", "color"], "msg": "Input should be 'r' or 'g'", "type": "enum"},
        missing("body", "customer"),
        {"loc": ["body", "lines"], "msg": "Input should be a valid list", "type": "list_type"}]


def test_a_pool_handler_is_never_called_for_an_invalid_request(typed, tmp_path):
    def calls():
        return len(os.listdir(tmp_path))

    invalid = [("n=0&day=2024-01-01", None), ("n=x&day=2024-01-01", None),
               ("day=2024-01-01", None), ("n=1&day=never", None), ("n=1", None),
               ("n=1&day=2024-01-01", {"customer": {}, "lines": []}),
               ("n=1&day=2024-01-01", {"customer": {"name": "A"}, "lines": [{"qty": 0}]})]
    for query, body in invalid:
        reply = typed.post(f"/types/pool?{query}&dir={tmp_path}", json=body)
        assert reply.status == 422, (query, reply.text)
    assert calls() == 0
    reply = typed.post(f"/types/pool?n=1&day=2024-01-01&dir={tmp_path}")
    assert reply.status == 200 and reply.json()["is_pool"] is True
    assert calls() == 1                       # the marker works: the valid call left one


# ---- return values ---------------------------------------------------------------------------

def test_a_returned_dataclass_is_json_with_special_types_as_strings(typed):
    reply = typed.get("/receipt")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == RECEIPT_JSON
    receipt = typed_app.RECEIPT
    assert RECEIPT_JSON["at"] == receipt.at.isoformat()
    assert RECEIPT_JSON["total"] == str(receipt.total)
    assert RECEIPT_JSON["id"] == str(receipt.id)
    assert RECEIPT_JSON["color"] == receipt.color.value


def test_a_returned_list_or_dict_of_dataclasses_is_json(typed):
    reply = typed.get("/receipts")
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == [RECEIPT_JSON, RECEIPT_JSON]
    reply = typed.get("/receipts/by-id")
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"first": RECEIPT_JSON}


def test_a_datetime_with_a_timezone_is_written_by_isoformat():
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5)))

    @dataclass
    class Event:
        at: datetime
        when: date

    app = App()

    @app.get("/event")
    def event(request):
        return Event(moment, moment.date())

    with TestClient(app) as test_client:
        assert test_client.get("/event").json() == {"at": "2024-01-02T03:04:05-05:00",
                                                    "when": "2024-01-02"}


def test_the_spec_example_round_trips_its_item(typed):
    reply = typed.post("/carts/7/items?dry_run=YES&limit=100",
                       json={"name": "pen", "qty": "3", "tags": ["blue"]})
    assert reply.status == 200, reply.text
    assert reply.json() == {"name": "pen in cart 7", "qty": 0, "tags": ["blue"]}
    assert RECEIVED["/carts"] == {"cart_id": 7, "item": typed_app.Item("pen", 3, ["blue"]),
                                  "dry_run": True, "limit": 100}


# ---- over a real server ----------------------------------------------------------------------

@pytest.fixture
def wire(shared_server, parser_mode):
    return shared_server(TARGET, parser_mode, workers=1)


def test_typed_parameters_over_the_wire(wire):
    reply = requests.post(f"{wire.url}/carts/3/items", params={"limit": "2"},
                          json={"name": "cup", "tags": None}, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json() == {"name": "cup in cart 3", "qty": 1, "tags": None}
    reply = requests.post(f"{wire.url}/carts/3/items", params={"limit": "0", "dry_run": "2"},
                          json={"qty": "many"}, timeout=10)
    assert reply.status_code == 422
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json() == {"detail": [
        missing("body", "name"),
        {"loc": ["body", "qty"], "msg": INT_PARSING, "type": "int_parsing"},
        {"loc": ["query", "dry_run"], "type": "bool_parsing",
         "msg": "Input should be a valid boolean, unable to interpret input"},
        {"loc": ["query", "limit"], "msg": "Input should be greater than or equal to 1",
         "type": "greater_than_equal"}]}


def test_file_uploads_over_the_wire(wire):
    reply = requests.post(f"{wire.url}/upload", data={"title": "files"}, timeout=10,
                          files=[("document", ("d.txt", b"main")),
                                 ("attachments", ("1.txt", b"first")),
                                 ("attachments", ("2.txt", b"second"))])
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"title": "files", "document": ["d.txt", "main"],
                            "attachments": [["1.txt", "first"], ["2.txt", "second"]]}
    reply = requests.post(f"{wire.url}/upload", data={"title": "none"}, timeout=10)
    assert reply.status_code == 422 and reply.json() == {"detail": [missing("body", "document")]}


def test_a_pool_worker_of_a_real_server_never_sees_an_invalid_request(wire, tmp_path):
    for query in ["n=0&day=2024-01-01", "n=1&day=2024-13-01", "n=1"]:
        reply = requests.post(f"{wire.url}/types/pool?{query}&dir={tmp_path}", timeout=10)
        assert reply.status_code == 422, reply.text
    assert os.listdir(tmp_path) == []
    reply = requests.post(f"{wire.url}/types/pool?n=1&day=2024-01-01&dir={tmp_path}",
                          json=VALID_ORDER, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.json()["is_pool"] is True and reply.json()["pid"] != wire.pid
    assert len(os.listdir(tmp_path)) == 1


def test_returned_dataclasses_over_the_wire(wire):
    reply = requests.get(f"{wire.url}/receipts", timeout=10)
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json() == [RECEIPT_JSON, RECEIPT_JSON]


def test_special_types_are_strings_with_or_without_the_accelerators(wire):
    """SPEC 14: Decimal (and date, datetime, UUID, Enum) values are written as strings;
    the accelerators change nothing (the JSON writer ujson turns a Decimal into a number)."""
    assert requests.get(f"{wire.url}/mixed", timeout=10).json() == {
        key: RECEIPT_JSON[key] for key in ("id", "day", "at", "total", "color")}
    assert requests.get(f"{wire.url}/price", timeout=10).json() == {
        "total": "10.50", "prices": ["5.25", "0.10"]}


# ---- the error shapes of FastAPI + Pydantic v2 -----------------------------------------------

@dataclass
class CmpLine:
    sku: str
    qty: Annotated[int, Param(ge=1)]


@dataclass
class CmpCart:
    lines: list[CmpLine]
    notes: list[str] | None = None


def make_comparison_apps():
    """The same endpoints in pixie_web and in FastAPI."""
    fastapi = pytest.importorskip("fastapi")
    pydantic = pytest.importorskip("pydantic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient as FastAPIClient

    pixie = App()

    @pixie.get("/query")
    def pixie_query(request, n: int, b: bool = False,
                    lim: Annotated[int, Param(le=100)] = 10,
                    f: float = 0.0, d: Decimal = Decimal(0), c: Color = Color.red,
                    lit: Literal["S", "M"] = "S", xs: list[int] | None = None,
                    s: Annotated[str, Param(min_length=3, max_length=5,
                                            pattern="^[a-z]+$")] = "abc",
                    gt: Annotated[int, Param(gt=1)] = 2, lt: Annotated[int, Param(lt=1)] = 0):
        return "ok"

    @pixie.get("/items/<item_id>")
    def pixie_item(request, item_id: int):
        return "ok"

    @pixie.get("/headers")
    def pixie_headers(request, x_count: Annotated[int, Param(source="header")],
                      sid: Annotated[str, Param(source="cookie")]):
        return "ok"

    @pixie.post("/cart")
    def pixie_cart(request, cart: CmpCart):
        return "ok"

    @pixie.post("/embedded")
    def pixie_embedded(request, count: Annotated[int, Param(source="json")]):
        return "ok"

    Query, Header, Cookie, Body = fastapi.Query, fastapi.Header, fastapi.Cookie, fastapi.Body

    class Line(pydantic.BaseModel):
        sku: str
        qty: Annotated[int, pydantic.Field(ge=1)]

    class Cart(pydantic.BaseModel):
        lines: list[Line]
        notes: list[str] | None = None

    reference = fastapi.FastAPI()

    @reference.get("/query")
    def fastapi_query(n: int, b: bool = False, lim: Annotated[int, Query(le=100)] = 10,
                      f: float = 0.0, d: Decimal = Decimal(0), c: Color = Color.red,
                      lit: Literal["S", "M"] = "S",
                      xs: Annotated[list[int] | None, Query()] = None,
                      s: Annotated[str, Query(min_length=3, max_length=5,
                                              pattern="^[a-z]+$")] = "abc",
                      gt: Annotated[int, Query(gt=1)] = 2, lt: Annotated[int, Query(lt=1)] = 0):
        return "ok"

    @reference.get("/items/{item_id}")
    def fastapi_item(item_id: int):
        return "ok"

    @reference.get("/headers")
    def fastapi_headers(x_count: Annotated[int, Header()], sid: Annotated[str, Cookie()]):
        return "ok"

    @reference.post("/cart")
    def fastapi_cart(cart: Cart):
        return "ok"

    @reference.post("/embedded")
    def fastapi_embedded(count: Annotated[int, Body(embed=True)]):
        return "ok"

    return pixie, reference, FastAPIClient


COMPARED = [
    ("missing query int", "GET", "/query", {}),
    ("bad int", "GET", "/query?n=x", {}),
    ("bool_parsing", "GET", "/query?n=1&b=maybe", {}),
    ("less_than_equal", "GET", "/query?n=1&lim=101", {}),
    ("greater_than and less_than", "GET", "/query?n=1&gt=1&lt=1", {}),
    ("float, decimal, enum, literal", "GET", "/query?n=1&f=x&d=x&c=blue&lit=XL", {}),
    ("list item index", "GET", "/query?n=1&xs=1&xs=a", {}),
    ("string too short", "GET", "/query?n=1&s=ab", {}),
    ("string too long", "GET", "/query?n=1&s=abcdef", {}),
    ("string pattern", "GET", "/query?n=1&s=abc1", {}),
    ("bad path int", "GET", "/items/abc", {}),
    ("missing header and cookie", "GET", "/headers", {}),
    ("bad header", "GET", "/headers", {"headers": {"X-Count": "x", "Cookie": "sid=1"}}),
    ("no body", "POST", "/cart", {}),
    ("missing body field", "POST", "/cart", {"json": {}}),
    ("missing nested field", "POST", "/cart", {"json": {"lines": [{"sku": "a"}]}}),
    ("nested list index", "POST", "/cart",
     {"json": {"lines": [{"sku": "a", "qty": 0}, {"qty": "x"}], "notes": "n"}}),
    ("missing embedded field", "POST", "/embedded", {"json": {}}),
    ("bad embedded field", "POST", "/embedded", {"json": {"count": "x"}}),
]


@pytest.fixture(scope="module")
def comparison_clients():
    pixie, reference, FastAPIClient = make_comparison_apps()
    with TestClient(pixie) as pixie_client, FastAPIClient(reference) as fastapi_client:
        yield pixie_client, fastapi_client


@pytest.mark.parametrize("what, method, path, options", COMPARED,
                         ids=[case[0] for case in COMPARED])
def test_errors_have_the_loc_type_and_msg_fastapi_gives(comparison_clients, what, method,
                                                        path, options):
    pixie_client, fastapi_client = comparison_clients
    ours = detail(pixie_client.request(method, path, **options))
    reply = fastapi_client.request(method, path, **options)
    assert reply.status_code == 422, reply.text
    theirs = [{key: error[key] for key in ("loc", "msg", "type")}
              for error in reply.json()["detail"]]
    assert [(error["loc"], error["type"]) for error in ours] == [
        (error["loc"], error["type"]) for error in theirs]
    assert ours == theirs
