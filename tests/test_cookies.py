"""Cookies: setting, reading and signing them (SECURITY.md classes C3 and G).

Response side: ``set_cookie``/``delete_cookie`` as they appear on the wire, injection refused.
Signed cookies: JSON + HMAC-SHA256, tampered / foreign / expired → absent, never pickle.
Request side: the lenient per-pair parser, over real servers in both parser modes
(tests/apps/essentials_app.py).
"""
import base64
import json
import logging
import pickle
import time
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import pytest

from pixie_web import App, Response, TestClient
from tests.apps.essentials_app import COOKIE_SECRET
from tests.support import raw_exchange, split_reply

TARGET = "tests.apps.essentials_app:app"
SIGNED_VALUE = {"user": "ünïcode", "roles": [1, 2, 3], "admin": False}
ABSENT = "<absent>"


@pytest.fixture(scope="module")
def servers(shared_server):
    return lambda mode: shared_server(TARGET, mode, workers=1)


@pytest.fixture(scope="module", params=["pure", "accelerated"])
def server(request, servers):
    return servers(request.param)


# ---- helpers ----------------------------------------------------------------------------------

def get(server, target, cookie=None):
    """Raw GET (exact bytes on the wire); returns the reply."""
    head = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
    if cookie is not None:
        head += b"Cookie: " + (cookie if isinstance(cookie, bytes) else cookie.encode()) + b"\r\n"
    reply = split_reply(raw_exchange(server.port, head + b"\r\n", timeout=10))
    assert reply is not None, f"no answer to GET {target}"
    return reply


def parse_set_cookie(value):
    """``name=value; Attr=x; Flag`` → (name, value, {lower-case attribute: value})."""
    pair, *attributes = [piece.strip() for piece in value.split(";")]
    name, _, cookie_value = pair.partition("=")
    parsed = {}
    for attribute in attributes:
        key, _, attribute_value = attribute.partition("=")
        parsed[key.lower()] = attribute_value
    return name, cookie_value, parsed


def set_cookies(reply):
    parsed = map(parse_set_cookie, reply.values("Set-Cookie"))
    return {name: (value, attributes) for name, value, attributes in parsed}


def echoed_cookies(server, cookie):
    reply = get(server, "/cookies/echo", cookie)
    assert reply.status == 200, reply
    return json.loads(reply.body)


# ---- set_cookie on the wire -------------------------------------------------------------------

def test_set_cookie_defaults(server):
    cookies = set_cookies(get(server, "/cookies/defaults"))
    value, attributes = cookies["plain"]
    assert value == "value"
    assert attributes == {"path": "/", "httponly": "", "samesite": "Lax"}


def test_set_cookie_attributes(server):
    cookies = set_cookies(get(server, "/cookies/attributes"))
    assert cookies["aged"] == ("1", {"max-age": "60", "path": "/", "httponly": "",
                                     "samesite": "Lax"})
    expiring = cookies["expiring"][1]
    assert parsedate_to_datetime(expiring["expires"]).timestamp() == 0
    assert "max-age" not in expiring
    assert cookies["scoped"][1] == {"path": "/account", "domain": "example.com", "httponly": "",
                                    "samesite": "Lax"}
    assert cookies["secure"][1] == {"path": "/", "secure": "", "samesite": "Strict"}
    assert cookies["crosssite"][1] == {"path": "/", "secure": "", "httponly": "",
                                       "samesite": "None"}
    assert cookies["nosamesite"][1] == {"path": "/", "httponly": ""}


def test_delete_cookie_expires_it_on_the_same_path(server):
    value, attributes = set_cookies(get(server, "/cookies/delete"))["gone"]
    assert value in ("", '""')
    assert attributes["max-age"] == "0"
    assert parsedate_to_datetime(attributes["expires"]).timestamp() < time.time()
    assert attributes["path"] == "/account"


@pytest.mark.parametrize("value", ["hello world", 'say "hi"', "back\\slash", "ünïcode ✓",
                                   "comma,separated", "a=b=c"])
def test_values_needing_quotes_round_trip_through_the_browser(server, value):
    # The Set-Cookie value is sent back verbatim by a browser; request.cookies must decode it
    # to what the handler set.
    reply = get(server, "/cookies/reflect?name=q&value=" + quote(value))
    assert reply.status == 200
    sent_value = set_cookies(reply)["q"][0]
    assert ";" not in sent_value and all(0x20 <= ord(c) < 0x7f for c in sent_value)
    assert echoed_cookies(server, "q=" + sent_value) == {"q": value}


# ---- injection (C3) ---------------------------------------------------------------------------

INJECTIONS = [
    {"name": "s", "value": "x; Domain=evil; Path=/"},
    {"name": "s", "value": "x\r\nSet-Cookie: evil=1"},
    {"name": "s", "value": "x\ny"},
    {"name": "s", "value": "x\x00"},
    {"name": "s", "value": "x\x7f"},
    {"name": "a b", "value": "v"},
    {"name": "a;b", "value": "v"},
    {"name": "a=b", "value": "v"},
    {"name": "a\r\nb", "value": "v"},
    {"name": "", "value": "v"},
    {"name": "s", "value": "v", "path": "/; Domain=evil"},
    {"name": "s", "value": "v", "path": "/\r\nX-Injected: 1"},
    {"name": "s", "value": "v", "path": "/a b"},
    {"name": "s", "value": "v", "domain": "example.com; Secure"},
    {"name": "s", "value": "v", "domain": "evil\r\n"},
    {"name": "s", "value": "v", "domain": "a b"},
]


@pytest.mark.parametrize("kwargs", INJECTIONS, ids=[repr(k)[:60] for k in INJECTIONS])
def test_set_cookie_refuses_injection(kwargs):
    # C3 (microdot 2.6.1/2.6.2): attributes and lines must not be injectable.
    response = Response("x")
    with pytest.raises(ValueError):
        response.set_cookie(**kwargs)
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("query", [
    "value=x%3B%20Domain%3Devil%3B%20Path%3D%2F",
    "value=x%0D%0AX-Injected%3A%201",
    "name=a%3Bb&value=1",
    "value=v&domain=evil.example%3B%20Secure",
    "value=v&path=%2F%0D%0AX-Injected%3A%201",
])
def test_injected_cookie_from_request_data_gives_500_and_nothing_on_the_wire(server, query):
    # C3 through a handler that copies query values into set_cookie.
    reply = get(server, "/cookies/reflect?" + query)
    assert reply.status == 500
    assert reply.values("Set-Cookie") == []
    assert b"X-Injected" not in reply.raw and b"evil" not in reply.head
    assert server.alive()


def test_oversized_outgoing_cookie_logs_a_warning(caplog):
    # G6 (Flask MAX_COOKIE_SIZE 4093).
    caplog.set_level(logging.WARNING, logger="pixie_web")
    Response("x").set_cookie("small", "v" * 100)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    Response("x").set_cookie("big", "v" * 5000)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING and "big" in r.getMessage()]


# ---- signed cookies ---------------------------------------------------------------------------

def b64decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def contains(structure, needle):
    if structure == needle:
        return True
    if isinstance(structure, dict):
        return any(contains(value, needle) for value in structure.values())
    if isinstance(structure, (list, tuple)):
        return any(contains(item, needle) for item in structure)
    return False


def signed_cookie(server, max_age=None):
    target = "/cookies/sign" + (f"?max_age={max_age}" if max_age else "")
    value, attributes = set_cookies(get(server, target))["signed"]
    return value, attributes


def signed_value(server, cookie_header, name="signed"):
    reply = get(server, f"/cookies/signed/{name}", cookie_header)
    assert reply.status == 200, reply
    return json.loads(reply.body)["value"]


def test_signed_cookie_is_json_and_hmac_not_pickle(server):
    # G4: format v1.<b64 json>.<b64 hmac-sha256>.
    value, _ = signed_cookie(server)
    version, payload, signature = value.split(".")
    assert version == "v1"
    assert contains(json.loads(b64decode(payload)), SIGNED_VALUE)
    assert len(b64decode(signature)) == 32   # SHA-256


def test_signed_cookie_round_trips(server):
    value, _ = signed_cookie(server)
    assert signed_value(server, f"signed={value}") == SIGNED_VALUE


def test_absent_signed_cookie_gives_the_default(server):
    assert signed_value(server, None) == ABSENT


def tampered_variants(value):
    version, payload, signature = value.split(".")
    flip = {"A": "B"}.get(payload[5], "A")
    other_end = "AB" if signature[-2:] != "AB" else "CD"
    other_payload = base64.urlsafe_b64encode(
        json.dumps([{"user": "admin", "admin": True}, 0]).encode()).decode().rstrip("=")
    return {
        "payload_byte_changed": f"{version}.{payload[:5]}{flip}{payload[6:]}.{signature}",
        "signature_byte_changed": f"{version}.{payload}.{signature[:-2]}{other_end}",
        "signature_removed": f"{version}.{payload}.",
        "payload_replaced": f"{version}.{other_payload}.{signature}",
        "version_changed": f"v2.{payload}.{signature}",
        "truncated": value[:-10],
        "plain_value": "just-a-value",
    }


@pytest.mark.parametrize("variant", ["payload_byte_changed", "signature_byte_changed",
                                     "signature_removed", "payload_replaced", "version_changed",
                                     "truncated", "plain_value"])
def test_tampered_signed_cookie_is_absent(server, variant):
    value, _ = signed_cookie(server)
    assert signed_value(server, f"signed={tampered_variants(value)[variant]}") == ABSENT


def test_signed_cookie_under_another_name_is_absent(server):
    # the cookie name is bound into the signature: a value signed for one name is not
    # accepted under another
    value, _ = signed_cookie(server)
    assert signed_value(server, f"other={value}", name="other") == ABSENT
    assert signed_value(server, f"signed={value}", name="signed") == SIGNED_VALUE


def test_signed_cookie_from_another_secret_is_absent(server):
    response = Response("x")
    response.set_cookie("signed", SIGNED_VALUE, secret="not-the-" + COOKIE_SECRET)
    foreign = parse_set_cookie(response.headers["Set-Cookie"])[1]
    assert signed_value(server, f"signed={foreign}") == ABSENT


def test_expired_signed_cookie_is_absent(server):
    value, attributes = signed_cookie(server, max_age=1)
    assert attributes["max-age"] == "1"
    assert signed_value(server, f"signed={value}") == SIGNED_VALUE
    time.sleep(2.2)
    assert signed_value(server, f"signed={value}") == ABSENT


class _Exploit:
    """Unpickling this creates the marker file: proof that pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def forged_pickle_cookies(name, secret, marker):
    """Cookies carrying a pickle, signed correctly under the leaked secret in the formats a
    pickle-based implementation would accept (bottle's, and v1 with the name bound)."""
    import hashlib
    import hmac
    payload = base64.urlsafe_b64encode(pickle.dumps(_Exploit(marker))).rstrip(b"=")
    key = secret.encode()
    forged = []
    for message in (name.encode() + b"|" + payload, name.encode() + payload, payload):
        signature = base64.urlsafe_b64encode(
            hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=")
        forged.append("v1." + payload.decode() + "." + signature.decode())
    bottle_payload = base64.b64encode(pickle.dumps((name, _Exploit(marker))))
    bottle_signature = base64.b64encode(hmac.new(key, bottle_payload, hashlib.sha256).digest())
    forged.append("!" + bottle_signature.decode() + "?" + bottle_payload.decode())
    return forged


def test_forged_pickle_payload_is_never_unpickled(tmp_path, monkeypatch):
    # G4 (bottle 0.13: pickle in signed cookies = RCE with a leaked key).
    unpickled = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: unpickled.append(a) or None)
    monkeypatch.setattr(pickle, "load", lambda *a, **k: unpickled.append(a) or None)
    marker = tmp_path / "pwned"
    app = App()

    @app.get("/read")
    def read(request):
        return {"value": request.get_cookie("session", default=ABSENT, secret=COOKIE_SECRET)}

    forged = forged_pickle_cookies("session", COOKIE_SECRET, str(marker))
    with TestClient(app) as client:
        for cookie in forged:
            response = client.get("/read", headers={"Cookie": f"session={cookie}"})
            assert response.status == 200
            assert response.json() == {"value": ABSENT}
    assert unpickled == []
    assert not marker.exists()


# ---- the request side (G1-G3) -----------------------------------------------------------------

def test_nameless_pair_is_discarded_and_never_becomes_a_host_prefixed_cookie(server):
    # G1 (werkzeug CVE-2023-23934).
    assert echoed_cookies(server, "=__Host-test=bad") == {}
    assert echoed_cookies(server, "=__Host-test=bad; ok=1") == {"ok": "1"}


@pytest.mark.parametrize("header, expected", [
    (b"a=b;c=d\x09d;e=f", {"a": "b", "e": "f"}),
    (b'first=aaa; lt={"id":"x"}; second=xxxx', {"first": "aaa", "second": "xxxx"}),
    (b"a=1; junk; b=2", {"a": "1", "b": "2"}),
    (b'a=1; q="unterminated; b=2', {"a": "1", "b": "2"}),
])
def test_one_malformed_pair_does_not_drop_the_others(server, header, expected):
    # G3 (CPython gh-127195, web2py#1084, Django #26158).
    cookies = echoed_cookies(server, header)
    assert {name: cookies.get(name) for name in expected} == expected
    assert set(cookies) <= set(expected) | {"c", "lt", "q"}


def test_quoted_cookie_full_of_backslashes_is_parsed_in_linear_time(server):
    # G2 (CPython CVE-2024-7592): quadratic backslash unquoting in http.cookies.
    def timed(n):
        start = time.perf_counter()
        cookies = echoed_cookies(server, 'a="' + "\\\\" * n + '"')
        return time.perf_counter() - start, cookies

    small = max(min(timed(20_000)[0] for _ in range(3)), 0.005)
    large, cookies = timed(200_000)
    assert cookies == {"a": "\\" * 200_000}
    assert large <= 40 * small, f"10x the backslashes took {large / small:.1f}x the time"


def test_cookie_parsing_errors_never_break_the_request(server):
    for header in (b'"', b";;;;", b"=", b"a", b"\xff\xfe=1", b"a=" + b"\\" * 1000):
        reply = get(server, "/cookies/echo", header)
        assert reply.status == 200, (header, reply.raw[:200])
    assert server.alive()

