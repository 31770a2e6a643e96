"""TestClient: verbs, request options, cookies, lifecycle hooks, pool routes, and
that it refuses what the real server refuses.  The app is tests/apps/request_app.py."""
import json
import os

import pytest

from pixie_web import TestClient
from tests.apps import request_app
from tests.apps.request_app import MAX_QUERY_PARAMS
from tests.support import HAVE_ACCELERATORS, run_script


@pytest.fixture(scope="module")
def client():
    """A client shared by the tests that keep no cookies (starting one also starts the pool)."""
    with TestClient(request_app.app) as test_client:
        yield test_client


@pytest.fixture
def fresh_client():
    """A client of its own, for the tests about the cookies it keeps and the pool it starts."""
    with TestClient(request_app.app) as test_client:
        yield test_client


# ---- verbs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("verb", ["get", "post", "put", "patch", "delete"])
def test_each_verb_method_sends_that_http_method(client, verb):
    reply = getattr(client, verb)("/echo")
    assert reply.status == 200
    assert reply.json()["method"] == verb.upper()


def test_request_sends_any_token_method(client):
    reply = client.request("PURGE", "/echo")
    assert reply.status == 200
    assert reply.json()["method"] == "PURGE"


def test_head_has_the_get_headers_and_no_body(client):
    reply = client.head("/echo")
    full = client.get("/echo")
    assert reply.status == 200
    assert reply.body == b""
    assert reply.headers["Content-Type"] == full.headers["Content-Type"]


def test_options_answers_204_with_allow(client):
    reply = client.options("/echo")
    assert reply.status == 204
    allowed = {method.strip() for method in reply.headers["Allow"].split(",")}
    assert {"GET", "HEAD", "OPTIONS", "POST", "PURGE"} <= allowed


# ---- the response object -----------------------------------------------------------------------

def test_response_has_status_body_text_and_json(client):
    reply = client.get("/echo/plain")
    assert reply.status == 200
    assert isinstance(reply.body, bytes)
    assert reply.text == reply.body.decode("utf-8")
    assert reply.json() == json.loads(reply.body)
    assert reply.json()["path"] == "/echo/plain"


def test_response_headers_are_case_insensitive(client):
    reply = client.get("/echo")
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.headers["CONTENT-TYPE"] == reply.headers["Content-Type"]
    assert reply.headers.get("cOnTeNt-LeNgTh") == str(len(reply.body))
    assert "date" in reply.headers


IDLE_CLIENT_SCRIPT = r"""
import email.utils, json, time
import pixie_web
app = pixie_web.App()
app.route("/")(lambda request: "ok")     # sync, no hooks: answered before any timer runs
with pixie_web.TestClient(app) as client:
    client.get("/")
    time.sleep(1.2)
    sent = email.utils.parsedate_to_datetime(client.get("/").headers["Date"]).timestamp()
print(json.dumps({"lag": time.time() - sent, "accelerators": pixie_web.ACCELERATORS}))
"""


@pytest.mark.parametrize("pure", [True, False], ids=["pure", "accelerated"])
def test_date_header_is_current_even_after_the_client_sat_idle(pure):
    # The client's event loop only runs during a request, so no once-a-second tick refreshed
    # the cached Date line while it sat idle; each request must still carry the current time.
    # Both loops, in a fresh interpreter each (uvloop runs due timers first, asyncio last).
    probe = json.loads(run_script(IDLE_CLIENT_SCRIPT, pure).stdout)
    assert ("uvloop" in probe["accelerators"]) is (not pure and HAVE_ACCELERATORS)
    assert -1.0 < probe["lag"] < 1.1, probe


def test_error_status_is_returned_not_raised(client):
    reply = client.get("/no/such/route")
    assert reply.status == 404
    assert reply.text.splitlines()[0] == "404 Not Found"


# ---- request options ----------------------------------------------------------------------------

def test_params_are_urlencoded_into_the_query_string(client):
    reply = client.get("/query", params={"a": "1 2&b=3", "b": "é"})
    assert reply.status == 200
    seen = reply.json()
    assert seen["get_a"] == "1 2&b=3"
    assert sorted(seen["items"]) == [["a", "1 2&b=3"], ["b", "é"]]


def test_params_are_added_to_a_query_already_in_the_path(client):
    seen = client.get("/query?a=1", params={"a": "2"}).json()
    assert seen["getall_a"] == ["1", "2"]


def test_data_dict_is_sent_as_an_urlencoded_form(client):
    reply = client.post("/form", data={"a": "1", "b": "x y&z=é"})
    assert reply.status == 200
    seen = reply.json()
    assert seen["content_type"].startswith("application/x-www-form-urlencoded")
    assert seen["getall_a"] == ["1"]
    assert seen["b"] == "x y&z=é"


def test_data_bytes_are_sent_as_is(client):
    payload = b"\x00\x01raw bytes a=1&b=2\r\n\xff"
    reply = client.post("/body", data=payload)
    assert reply.status == 200
    assert reply.json()["hex"] == payload.hex()


def test_json_is_serialised_with_a_json_content_type(client):
    document = {"list": [1, "é", None], "flag": True}
    reply = client.post("/json", json=document)
    assert reply.status == 200
    assert reply.json() == {"json": document}
    echoed = client.post("/echo", json=document).json()
    assert echoed["content_type"].split(";")[0].strip() == "application/json"
    assert echoed["content_length"] > 0


def test_headers_are_sent(client):
    seen = client.get("/echo", headers={"X-Test": "hello"}).json()
    assert seen["x_test"] == ["hello", "hello", "hello"]


def test_cookies_argument_sends_cookies(client):
    seen = client.get("/cookies", cookies={"a": "1", "b": "two"}).json()
    assert seen["cookies"] == {"a": "1", "b": "two"}
    assert seen["get_a"] == "1"


# ---- cookie persistence ----------------------------------------------------------------------------

def test_cookies_set_by_a_response_are_sent_on_later_calls(fresh_client):
    assert fresh_client.get("/cookies").json()["cookies"] == {}
    reply = fresh_client.get("/setcookie/session/abc123")
    assert reply.status == 200
    assert "session=abc123" in reply.headers["Set-Cookie"]
    assert fresh_client.get("/cookies").json()["cookies"] == {"session": "abc123"}
    # still there on the next call, and merged with per-call cookies
    merged = fresh_client.get("/cookies", cookies={"a": "1"}).json()["cookies"]
    assert merged == {"session": "abc123", "a": "1"}


def test_a_later_set_cookie_replaces_the_kept_value(fresh_client):
    fresh_client.get("/setcookie/session/first")
    fresh_client.get("/setcookie/session/second")
    assert fresh_client.get("/cookies").json()["cookies"] == {"session": "second"}


def test_deleted_cookie_is_no_longer_sent(fresh_client):
    fresh_client.get("/setcookie/session/abc123")
    assert fresh_client.get("/cookies").json()["cookies"] == {"session": "abc123"}
    fresh_client.get("/delcookie/session")
    assert fresh_client.get("/cookies").json()["cookies"] == {}


def test_cookies_are_not_shared_between_clients(fresh_client):
    fresh_client.get("/setcookie/session/abc123")
    with TestClient(request_app.app) as other:
        assert other.get("/cookies").json()["cookies"] == {}


# ---- lifecycle -------------------------------------------------------------------------------------

def test_startup_and_shutdown_hooks_run_around_the_with_block():
    request_app.LIFECYCLE.clear()
    with TestClient(request_app.app) as test_client:
        assert request_app.LIFECYCLE == [("startup", True)]
        assert test_client.get("/echo").status == 200
        assert request_app.LIFECYCLE == [("startup", True)]
    # the shutdown hook is async: the client must await it
    assert request_app.LIFECYCLE == [("startup", True), ("shutdown", True)]


# ---- pool routes ---------------------------------------------------------------------------------

def test_pool_route_runs_in_a_worker_process_with_the_request_snapshot(fresh_client):
    reply = fresh_client.post("/pool/echo?a=1&a=2", data=b"payload \xc3\xa9",
                        headers={"X-Test": "from-client"}, cookies={"c": "cookie-value"})
    assert reply.status == 200, reply.text
    seen = reply.json()
    assert seen["in_pool"] is True
    assert seen["pid"] != os.getpid()
    assert seen["method"] == "POST"
    assert seen["getall_a"] == ["1", "2"]
    assert seen["body"] == "payload é"
    assert seen["x_test"] == "from-client"
    assert seen["cookie_c"] == "cookie-value"


def test_pool_route_answers_repeatedly(fresh_client):
    pids = set()
    for number in range(5):
        reply = fresh_client.get("/pool/echo", params={"a": str(number)})
        assert reply.status == 200
        assert reply.json()["getall_a"] == [str(number)]
        pids.add(reply.json()["pid"])
    assert os.getpid() not in pids


def test_closing_a_second_client_leaves_the_first_one_working():
    with TestClient(request_app.app) as first:
        assert first.get("/pool/echo").status == 200
        with TestClient(request_app.app) as second:
            assert second.get("/pool/echo").status == 200
        reply = first.get("/pool/echo")
        assert reply.status == 200, reply.text
        assert reply.json()["in_pool"] is True
        assert first.get("/echo").status == 200


# ---- it refuses what the server refuses ------------------------------------------------------------

@pytest.mark.parametrize("value", ["a\r\nInjected: 1", "a\nInjected: 1", "a\rInjected: 1"])
def test_header_value_with_cr_or_lf_raises_value_error(client, value):
    with pytest.raises(ValueError):
        client.get("/echo", headers={"X-Test": value})


def test_header_with_invalid_name_is_never_dispatched(client):
    # B6: a non-token header name is refused (client-side ValueError or the parser's 400).
    try:
        reply = client.get("/echo", headers={"Bad Name": "x"})
    except ValueError:
        return
    assert reply.status == 400


def test_path_that_is_not_utf8_is_400(client):
    # H2: bottle CVE-2022-31799.
    reply = client.get("/%ff")
    assert reply.status == 400
    assert reply.text.splitlines()[0] == "400 Bad Request"


def test_too_many_query_params_is_400(client):
    # H3: the same max_query_params cap as on the wire.
    reply = client.get("/query", params={f"k{i}": "v" for i in range(MAX_QUERY_PARAMS + 1)})
    assert reply.status == 400


def test_handler_setting_a_crlf_header_gives_500(client):
    # bottle#913: a CRLF in a header value never reaches the wire.
    reply = client.get("/bad-header")
    assert reply.status == 500
    assert "Injected" not in reply.headers
    assert b"Injected" not in reply.body


def test_production_500_hides_the_exception(client):
    reply = client.get("/boom")
    assert reply.status == 500
    assert reply.text.splitlines()[0] == "500 Internal Server Error"
    assert "Traceback" not in reply.text
    assert request_app.BOOM_MESSAGE not in reply.text
