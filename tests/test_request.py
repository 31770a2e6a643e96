"""The request object, seen by handlers of tests/apps/request_app.py.

Most tests run three times through the ``transport`` fixture: in-process through ``TestClient``
and over the wire with ``requests`` against a real server with the pure-Python parser and with
uvloop + ujson.  Tests that need exact bytes (HTTP/1.0, repeated headers, chunked framing)
use raw sockets against the real servers only.
"""
import hashlib
import json
import time

import pytest
import requests

from pixie_web import TestClient
from tests.apps import request_app
from tests.apps.request_app import MAX_BODY_SIZE, MAX_QUERY_PARAMS
from tests.support import Client, parse_reply, raw_exchange, split_reply, status_of

TARGET = "tests.apps.request_app:app"


# ---- transports ---------------------------------------------------------------------------

class Reply:
    """The parts of a response the tests look at, whatever client produced it."""

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


class InProcess:
    name = "testclient"

    def __init__(self, client):
        self.client = client

    def request(self, method, path, headers=None, data=None):
        reply = self.client.request(method, path, headers=headers or {}, data=data)
        return Reply(reply.status, reply.headers, reply.body)


class OverTheWire:
    def __init__(self, server, name):
        self.server, self.name = server, name

    def request(self, method, path, headers=None, data=None):
        reply = requests.request(method, self.server.url + path, headers=headers or {}, data=data,
                                 allow_redirects=False, timeout=60)
        return Reply(reply.status_code, reply.headers, reply.content)


@pytest.fixture(scope="module")
def servers(shared_server):
    """Real servers, started on first use (one per parser mode), shared by the session."""
    return lambda mode: shared_server(TARGET, mode, workers=1)


@pytest.fixture(scope="module", params=["testclient", "pure", "accelerated"])
def transport(request, servers):
    if request.param == "testclient":
        with TestClient(request_app.app) as client:
            yield InProcess(client)
    else:
        yield OverTheWire(servers(request.param), request.param)


@pytest.fixture(scope="module", params=["pure", "accelerated"])
def server(request, servers):
    """A real server (both parser modes) for the tests that need exact bytes on the wire."""
    return servers(request.param)


def first_line(body):
    return body.decode("utf-8", "replace").split("\n", 1)[0].strip()


# ---- request line: method, path, query string, version ----------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "PURGE"])
def test_method_and_verb_name_the_request_method(transport, method):
    reply = transport.request(method, "/echo")
    assert reply.status == 200
    assert reply.json()["method"] == method
    assert reply.json()["verb"] == method


def test_path_is_percent_decoded_and_raw_path_is_not(transport):
    reply = transport.request("GET", "/echo/a%20b%2Fc/caf%C3%A9?x=1&y=%20")
    seen = reply.json()
    assert reply.status == 200
    assert seen["path"] == "/echo/a b/c/café"
    assert seen["raw_path"] == "/echo/a%20b%2Fc/caf%C3%A9"
    assert seen["query_string"] == "x=1&y=%20"


def test_plus_in_the_path_is_not_a_space(transport):
    seen = transport.request("GET", "/echo/a+b%2Bc").json()
    assert seen["path"] == "/echo/a+b+c"
    assert seen["raw_path"] == "/echo/a+b%2Bc"


def test_absolute_form_target_uses_its_path_and_authority(server):
    # RFC 9112 3.2.2: the authority of an absolute-form target replaces the Host header.
    raw = raw_exchange(server.port, b"GET http://example.test:81/echo/x%20y?q=1 HTTP/1.1\r\n"
                                    b"Host: example.test:81\r\nConnection: close\r\n\r\n")
    reply = split_reply(raw)
    assert reply.status == 200
    seen = json.loads(reply.body)
    assert seen["path"] == "/echo/x y"
    assert seen["raw_path"] == "/echo/x%20y"
    assert seen["query_string"] == "q=1"
    assert seen["host"] == "example.test:81"
    assert seen["url"] == "http://example.test:81/echo/x%20y?q=1"


def test_query_string_is_empty_without_query(transport):
    seen = transport.request("GET", "/echo/plain").json()
    assert seen["query_string"] == ""
    assert seen["raw_path"] == "/echo/plain"


def test_path_that_is_not_utf8_is_rejected_with_400(transport):
    # H2: bottle CVE-2022-31799 - a clean 400, not a 500.
    reply = transport.request("GET", "/%ff")
    assert reply.status == 400
    assert first_line(reply.body) == "400 Bad Request"


def test_non_utf8_path_after_a_good_request_leaks_nothing_from_it(server):
    # H2: bottle CVE-2022-31799 - no state from a previous request in the error response.
    raw = raw_exchange(server.port, b"GET /echo/leak-marker-7731 HTTP/1.1\r\nHost: a\r\n"
                                    b"X-Test: leak-header-7731\r\n\r\n"
                                    b"GET /%ff HTTP/1.1\r\nHost: a\r\n\r\n")
    first, used = parse_reply(raw)
    assert first.status == 200
    second = raw[used:]
    assert status_of(second) == 400
    assert b"7731" not in second


def test_http_version_and_protocol_of_an_http11_request(transport):
    seen = transport.request("GET", "/echo").json()
    assert seen["http_version"] == "1.1"
    assert seen["protocol"] == "HTTP/1.1"


def test_http_version_and_protocol_of_an_http10_request(server):
    raw = raw_exchange(server.port, b"GET /echo HTTP/1.0\r\n\r\n")
    reply = split_reply(raw)
    assert reply.status == 200
    seen = json.loads(reply.body)
    assert seen["http_version"] == "1.0"
    assert seen["protocol"] == "HTTP/1.0"


def test_scheme_host_and_url(transport):
    seen = transport.request("GET", "/echo/plain?x=1&y=2").json()
    assert seen["scheme"] == "http"
    assert seen["host"] and not seen["host"].startswith("ERROR")
    assert seen["url"] == f"http://{seen['host']}/echo/plain?x=1&y=2"


def test_host_and_url_come_from_the_host_header(server):
    raw = raw_exchange(server.port, b"GET /echo/plain?x=1 HTTP/1.1\r\nHost: example.test:8080\r\n"
                                    b"Connection: close\r\n\r\n")
    reply = split_reply(raw)
    assert reply.status == 200
    seen = json.loads(reply.body)
    assert seen["host"] == "example.test:8080"
    assert seen["url"] == "http://example.test:8080/echo/plain?x=1"


def test_remote_addr_and_host_over_the_wire(server):
    seen = requests.get(server.url + "/echo", timeout=10).json()
    assert seen["remote_addr"] == "127.0.0.1"
    assert seen["host"] == f"127.0.0.1:{server.port}"


# ---- route, app, state ---------------------------------------------------------------------

def test_route_is_the_matched_route(transport):
    seen = transport.request("GET", "/echo/some/where").json()
    assert seen["route_path"] == "/echo/<rest:path>"
    assert seen["route_name"] == "echo_path"
    seen = transport.request("GET", "/echo").json()
    assert seen["route_path"] == "/echo"
    assert seen["route_name"] == "echo"


def test_app_is_the_application_that_dispatched(transport):
    assert transport.request("GET", "/echo").json()["app_is_app"] is True


def test_state_is_a_dict_shared_with_before_request_hooks(transport):
    seen = transport.request("GET", "/echo").json()
    assert seen["state_is_dict"] is True
    assert seen["state_from_hook"] == "yes"


# ---- query -----------------------------------------------------------------------------------

def test_query_multidict_accessors(transport):
    reply = transport.request("GET", "/query?a=1&b=x+y%21&a=3")
    assert reply.status == 200
    q = reply.json()
    assert q["get_a"] == "3"                    # get and [] return the last value
    assert q["index_a"] == "3"
    assert q["getall_a"] == ["1", "3"]          # all values, in order
    assert q["getlist_a"] == ["1", "3"]
    assert q["get_missing"] == "fallback"
    assert q["in_a"] is True and q["in_missing"] is False
    assert sorted(q["items"]) == [["a", "1"], ["a", "3"], ["b", "x y!"]]
    assert [value for key, value in q["items"] if key == "a"] == ["1", "3"]
    assert set(q["keys"]) == {"a", "b"}


def test_query_semicolon_does_not_separate_pairs(transport):
    # H1: bottle CVE-2020-28473 / CPython CVE-2021-23336 - only '&' separates.
    q = transport.request("GET", "/query?a=1;a=2&utm=x").json()
    assert q["get_a"] == "1;a=2"
    assert q["getall_a"] == ["1;a=2"]
    assert sorted(q["items"]) == [["a", "1;a=2"], ["utm", "x"]]


def test_query_with_max_query_params_pairs_is_accepted(transport):
    query = "&".join(f"a={i}" for i in range(MAX_QUERY_PARAMS))
    reply = transport.request("GET", "/query?" + query)
    assert reply.status == 200
    assert reply.json()["getall_a"] == [str(i) for i in range(MAX_QUERY_PARAMS)]


@pytest.mark.parametrize("count", [MAX_QUERY_PARAMS + 1, 1000])
def test_query_with_more_than_max_query_params_pairs_is_400(transport, count):
    # H3: CPython parse_qsl(max_num_fields) - cap the number of pairs.
    reply = transport.request("GET", "/query?" + "&".join(f"k{i}=v" for i in range(count)))
    assert reply.status == 400
    assert first_line(reply.body) == "400 Bad Request"


# ---- headers ---------------------------------------------------------------------------------

def test_headers_are_case_insensitive(transport):
    seen = transport.request("GET", "/echo", headers={"X-Test": "value-1"}).json()
    assert seen["x_test"] == ["value-1", "value-1", "value-1"]


def test_repeated_headers_are_all_kept_in_order(server):
    raw = raw_exchange(server.port, b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Multi: one\r\n"
                                    b"x-multi: two\r\nX-MULTI: three\r\nConnection: close\r\n\r\n")
    reply = split_reply(raw)
    assert reply.status == 200
    seen = json.loads(reply.body)
    assert seen["x_multi"] == ["one", "two", "three"]
    assert seen["x_multi_last"] == "three"


# ---- cookies ---------------------------------------------------------------------------------

def test_cookies_dict_and_get_cookie(transport):
    reply = transport.request("GET", "/cookies", headers={"Cookie": 'a=1; b="two"; c=x%20y'})
    assert reply.status == 200
    seen = reply.json()
    assert seen["cookies"]["a"] == "1"
    assert seen["cookies"]["b"] == "two"
    assert seen["get_a"] == "1"
    assert seen["get_missing"] == "fallback"


def test_nameless_cookie_pair_is_dropped(transport):
    # G1: werkzeug CVE-2023-23934 - never turn "=__Host-test=bad" into a __Host-test cookie.
    seen = transport.request("GET", "/cookies", headers={"Cookie": "=__Host-test=bad; ok=1"}).json()
    assert seen["cookies"] == {"ok": "1"}


@pytest.mark.parametrize("header, expected", [
    ("a=b;c=d\td;e=f", {"a": "b", "e": "f"}),
    ('first=aaa; lt={"id":"x"}; second=xxxx', {"first": "aaa", "second": "xxxx"}),
])
def test_one_malformed_cookie_pair_does_not_drop_the_others(transport, header, expected):
    # G3: CPython gh-127195 / web2py#1084 / Django #26158 - SimpleCookie loses every pair.
    seen = transport.request("GET", "/cookies", headers={"Cookie": header}).json()
    for name, value in expected.items():
        assert seen["cookies"].get(name) == value, seen["cookies"]


def test_backslash_heavy_cookie_is_parsed_in_linear_time(transport):
    # G2: CPython CVE-2024-7592 / tornado CVE-2024-52804 - quadratic unquoting of backslashes.
    def best_time(backslashes):
        header = 'a="' + "\\" * backslashes + '"; b=2'
        best = float("inf")
        # In-process, CPU time of this thread is immune to machine load; a server in
        # another process can only be timed on the wall clock (best of several runs).
        clock = time.thread_time if isinstance(transport, InProcess) else time.perf_counter
        for _ in range(5):
            started = clock()
            reply = transport.request("GET", "/cookies", headers={"Cookie": header})
            best = min(best, clock() - started)
            assert reply.status == 200
            assert reply.json()["cookies"].get("b") == "2"
        return best

    small, large = best_time(20_000), best_time(200_000)
    # Linear parsing gives a ratio of at most ~10 (less with fixed overhead); quadratic ~100.
    assert large / small < 40, (small, large)


# ---- body, text, json, form, params -------------------------------------------------------------

def test_body_and_raw_data_are_the_exact_bytes(transport):
    payload = bytes(range(256)) + b"\r\n\x00end"
    reply = transport.request("POST", "/body", data=payload,
                              headers={"Content-Type": "application/octet-stream"})
    assert reply.status == 200
    seen = reply.json()
    assert seen["is_bytes"] is True
    assert seen["hex"] == payload.hex()
    assert seen["raw_data_equal"] is True


def test_empty_body_is_empty_bytes(transport):
    seen = transport.request("PUT", "/body").json()
    assert seen["is_bytes"] is True
    assert seen["length"] == 0


def test_text_decodes_the_body(transport):
    reply = transport.request("POST", "/text", data="héllo wörld ✓".encode("utf-8"),
                              headers={"Content-Type": "text/plain; charset=utf-8"})
    assert reply.status == 200
    assert reply.json()["text"] == "héllo wörld ✓"


def test_text_uses_the_charset_of_the_content_type(transport):
    reply = transport.request("POST", "/text", data="café".encode("latin-1"),
                              headers={"Content-Type": "text/plain; charset=latin-1"})
    assert reply.status == 200
    assert reply.json()["text"] == "café"


def test_content_type_and_content_length(transport):
    seen = transport.request("POST", "/echo", data=b"12345",
                             headers={"Content-Type": "text/plain; charset=utf-8"}).json()
    assert seen["content_length"] == 5
    assert seen["content_type"] in ("text/plain; charset=utf-8", "text/plain")


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "application/problem+json",
    "application/vnd.api+json; charset=utf-8", "Application/LD+JSON"])
def test_json_is_parsed_for_application_json_and_any_plus_json_type(transport, content_type):
    document = {"name": "é", "list": [1, 2.5, None, True], "nested": {"k": "v"}}
    reply = transport.request("POST", "/json", data=json.dumps(document).encode(),
                              headers={"Content-Type": content_type})
    assert reply.status == 200
    assert reply.json() == {"json": document}


@pytest.mark.parametrize("content_type", [
    "text/plain;application/json",   # E10: bottle #616 / CVE-2014-3137 (CSRF "simple request")
    "text/plain",
    "application/x-www-form-urlencoded",
    "text/plain+json",               # +json counts only under application/
    "application/jsonx",
    "application/+json",
])
def test_json_is_none_unless_the_media_type_is_application_json_or_plus_json(transport, content_type):
    reply = transport.request("POST", "/json", data=b'{"a": 1}',
                              headers={"Content-Type": content_type})
    assert reply.status == 200
    assert reply.json() == {"json": None}


@pytest.mark.parametrize("payload", [b'{"a": ', b"{'a': 1}", b"[1, 2,]", b"\xff\xfe"])
def test_malformed_json_is_400(transport, payload):
    reply = transport.request("POST", "/json", data=payload,
                              headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert first_line(reply.body) == "400 Bad Request"


def test_deeply_nested_json_is_400_not_500(transport):
    # E11: nesting 100,000 levels deep must not escape as RecursionError -> 500.
    payload = b"[" * 100_000 + b"]" * 100_000
    reply = transport.request("POST", "/json", data=payload,
                              headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert first_line(reply.body) == "400 Bad Request"


def test_urlencoded_form(transport):
    reply = transport.request("POST", "/form", data=b"a=1&b=x%20y+z&a=2&c=%C3%A9",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 200
    seen = reply.json()
    assert seen["getall_a"] == ["1", "2"]
    assert seen["b"] == "x y z"
    assert sorted(seen["items"]) == [["a", "1"], ["a", "2"], ["b", "x y z"], ["c", "é"]]
    assert seen["content_type"].startswith("application/x-www-form-urlencoded")


def test_form_is_empty_for_other_media_types(transport):
    seen = transport.request("POST", "/form", data=b"a=1&b=2",
                             headers={"Content-Type": "text/plain"}).json()
    assert seen["items"] == []


def test_params_merge_query_and_form(transport):
    reply = transport.request("POST", "/params?q=1&a=0", data=b"a=1",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 200
    seen = reply.json()
    assert seen["q"] == "1"
    assert sorted(seen["getall_a"]) == ["0", "1"]
    assert seen["form_has_q"] is False


# ---- chunked and streamed bodies ----------------------------------------------------------------

def test_chunked_body_reaches_body(server):
    payload = b"hello, chunked world"
    wire = (b"POST /body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"7\r\nhello, \r\n"
            b"d;ext=1\r\nchunked world\r\n"
            b"0\r\n\r\n")
    reply = split_reply(raw_exchange(server.port, wire))
    assert reply.status == 200
    seen = json.loads(reply.body)
    assert seen["hex"] == payload.hex()


def test_chunked_body_from_requests_generator_reaches_body(server):
    parts = [b"x" * 10_000, b"y" * 70_000, b"z"]
    reply = requests.post(server.url + "/body", data=iter(parts), timeout=30)
    assert reply.status_code == 200
    assert reply.json()["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert reply.json()["length"] == 80_001


def test_stream_body_route_receives_all_chunks(transport):
    payload = bytes(range(256)) * 2048       # 512 KiB: more than one read
    reply = transport.request("POST", "/stream", data=payload,
                              headers={"Content-Type": "application/octet-stream"})
    assert reply.status == 200
    seen = reply.json()
    assert seen["length"] == len(payload)
    assert seen["sha256"] == hashlib.sha256(payload).hexdigest()
    if transport.name != "testclient":
        # Over TCP a 512 KiB body arrives in several reads; a streamed body is not buffered whole.
        assert seen["chunks"] >= 2


def test_stream_body_of_exactly_max_body_size_is_accepted(transport):
    payload = b"m" * MAX_BODY_SIZE
    reply = transport.request("POST", "/stream", data=payload)
    assert reply.status == 200
    assert reply.json()["length"] == MAX_BODY_SIZE


def test_stream_body_over_max_body_size_is_413_in_process():
    with TestClient(request_app.app) as client:
        reply = client.post("/stream", data=b"m" * (MAX_BODY_SIZE + 1))
    assert reply.status == 413
    assert reply.body.startswith(b"413 ")


def test_stream_body_with_content_length_over_limit_is_413_without_the_body(server):
    head = (f"POST /stream HTTP/1.1\r\nHost: a\r\nContent-Length: {MAX_BODY_SIZE + 1}\r\n\r\n"
            .encode())
    raw = raw_exchange(server.port, head, timeout=5)
    assert status_of(raw) == 413


def test_stream_body_chunked_over_limit_is_413(server):
    chunk = b"c" * 65536
    deadline = time.monotonic() + 10
    with Client(server.port, timeout=5) as client:
        client.send(b"POST /stream HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(MAX_BODY_SIZE // len(chunk) + 8):      # bounded: limit + 512 KiB
                if time.monotonic() > deadline:
                    break
                client.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass           # the server answered 413 and closed while we were still sending
        received = client.read_until(None, timeout=max(0.1, deadline - time.monotonic()))
    assert status_of(received) == 413
