"""Sessions (SECURITY.md class G5): ``app.install(Sessions(secret, store=...))``.

Most tests run once per store (cookie, memory, file, sqlite) through ``TestClient``, which keeps
cookies between calls like a browser.  The SQLite store is also checked across server restarts
and across two server processes sharing one database file.  Handlers live in
tests/apps/essentials_app.py.
"""
import re
import time

import pytest
import requests

from pixie_web import (App, CookieStore, FileStore, MemoryStore, Sessions, SQLiteStore,
                       TestClient)
from tests.apps.essentials_app import SESSION_SECRET, add_session_routes

COOKIE = "pixie_session"
SERVER_STORES = ["memory", "file", "sqlite"]
ALL_STORES = ["cookie"] + SERVER_STORES


def make_store(kind, tmp_path, base=None):
    """A store of ``kind``; ``base`` lets a test subclass it (e.g. to count calls)."""
    classes = {"cookie": CookieStore, "memory": MemoryStore, "file": FileStore,
               "sqlite": SQLiteStore}
    cls = base(classes[kind]) if base else classes[kind]
    if kind == "file":
        directory = tmp_path / "session-files"
        directory.mkdir(exist_ok=True)
        return cls(str(directory))
    if kind == "sqlite":
        return cls(str(tmp_path / "sessions.sqlite3"))
    return cls()


def counting(store_class):
    """A subclass of ``store_class`` that records every save."""
    class CountingStore(store_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.saved = []

        def save(self, session_id, data, max_age):
            self.saved.append((session_id, dict(data)))
            return super().save(session_id, data, max_age)

    return CountingStore


def session_app(store, secret=SESSION_SECRET, with_pool_route=False, **options):
    app = add_session_routes(App(), with_pool_route=with_pool_route)
    app.install(Sessions(secret, store=store, **options))
    return app


@pytest.fixture(params=ALL_STORES)
def kind(request):
    return request.param


@pytest.fixture
def client(kind, tmp_path):
    with TestClient(session_app(make_store(kind, tmp_path))) as test_client:
        yield test_client


def session_cookies(response, name=COOKIE):
    return [value for value in response.headers.getall("Set-Cookie")
            if value.split("=", 1)[0].strip() == name]


def varies_on_cookie(response):
    tokens = [token.strip().lower() for value in response.headers.getall("Vary")
              for token in value.split(",")]
    return "cookie" in tokens or "*" in tokens


# ---- data across requests ---------------------------------------------------------------------

def test_session_data_persists_across_requests(client):
    assert client.get("/session/set", params={"user": "ann", "lang": "fr"}).json() == {
        "user": "ann", "lang": "fr"}
    assert client.get("/session/get").json() == {"user": "ann", "lang": "fr"}
    client.get("/session/set", params={"lang": "de"})
    assert client.get("/session/get").json() == {"user": "ann", "lang": "de"}


def test_another_browser_does_not_see_the_session(client):
    client.get("/session/set", params={"user": "ann"})
    client.cookies.clear()
    assert client.get("/session/get").json() == {}


@pytest.mark.parametrize("kind", SERVER_STORES)
def test_session_id_is_random_and_stable(kind, tmp_path):
    with TestClient(session_app(make_store(kind, tmp_path))) as client:
        client.get("/session/set", params={"a": "1"})
        first = client.get("/session/flags").json()["id"]
        assert client.get("/session/flags").json()["id"] == first
        assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", first)   # secrets.token_urlsafe(32)
        client.cookies.clear()
        client.get("/session/set", params={"a": "1"})
        assert client.get("/session/flags").json()["id"] != first


def test_modified_flag_starts_false(client):
    flags = client.get("/session/flags").json()
    assert flags["modified"] is False and flags["data"] == {}
    client.get("/session/set", params={"a": "1"})
    flags = client.get("/session/flags").json()
    assert flags["modified"] is False and flags["data"] == {"a": "1"}


# ---- saved only when modified, Vary: Cookie (G5) ----------------------------------------------

def test_untouched_session_sends_no_cookie_and_no_vary(client):
    fresh = client.get("/session/noop")
    assert session_cookies(fresh) == [] and not varies_on_cookie(fresh)
    client.get("/session/set", params={"a": "1"})
    later = client.get("/session/noop")
    assert later.status == 200
    assert session_cookies(later) == [] and not varies_on_cookie(later)


def test_reading_the_session_varies_on_cookie(client):
    # G5 (Flask CVE-2023-30861).
    assert varies_on_cookie(client.get("/session/get"))
    client.get("/session/set", params={"a": "1"})
    assert varies_on_cookie(client.get("/session/get"))


def test_changing_the_session_varies_on_cookie_and_sets_the_cookie(client):
    response = client.get("/session/set", params={"a": "1"})
    assert varies_on_cookie(response)
    assert len(session_cookies(response)) == 1


def test_reading_an_empty_session_sends_no_cookie(client):
    assert session_cookies(client.get("/session/get")) == []


def test_cookie_store_rewrites_the_cookie_only_when_modified(tmp_path):
    with TestClient(session_app(CookieStore())) as client:
        assert session_cookies(client.get("/session/set", params={"a": "1"}))
        assert session_cookies(client.get("/session/get")) == []
        assert session_cookies(client.get("/session/flags")) == []
        assert session_cookies(client.get("/session/set", params={"a": "2"}))
        assert client.get("/session/get").json() == {"a": "2"}


@pytest.mark.parametrize("kind", SERVER_STORES)
def test_server_store_is_saved_only_when_modified(kind, tmp_path):
    store = make_store(kind, tmp_path, base=counting)
    with TestClient(session_app(store)) as client:
        client.get("/session/noop")
        client.get("/session/get")
        assert store.saved == []
        client.get("/session/set", params={"a": "1"})
        assert [data for _, data in store.saved] == [{"a": "1"}]
        client.get("/session/get")
        client.get("/session/flags")
        client.get("/session/noop")
        assert len(store.saved) == 1
        client.get("/session/set", params={"b": "2"})
        assert [data for _, data in store.saved] == [{"a": "1"}, {"a": "1", "b": "2"}]
        assert store.saved[0][0] == store.saved[1][0]


# ---- rotate, clear, expiry --------------------------------------------------------------------

def test_rotate_keeps_the_data_and_resends_the_cookie(client):
    client.get("/session/set", params={"user": "ann"})
    rotated = client.get("/session/rotate")
    assert rotated.json()["data"] == {"user": "ann"}
    assert session_cookies(rotated)
    assert client.get("/session/get").json() == {"user": "ann"}


@pytest.mark.parametrize("kind", SERVER_STORES)
def test_rotate_gives_a_new_id_for_the_next_requests(kind, tmp_path):
    with TestClient(session_app(make_store(kind, tmp_path))) as client:
        client.get("/session/set", params={"user": "ann"})
        before = client.get("/session/flags").json()["id"]
        assert client.get("/session/rotate").json()["old"] == before
        after = client.get("/session/flags").json()
        assert after["id"] != before
        assert after["data"] == {"user": "ann"}


@pytest.mark.parametrize("kind", SERVER_STORES)
def test_rotate_changes_the_id_at_once(kind, tmp_path):
    # The contract: rotate() = new id, same data; a handler that logs or returns the id right
    # after rotating must see the new one, and it must be the id the next request gets.
    with TestClient(session_app(make_store(kind, tmp_path))) as client:
        client.get("/session/set", params={"user": "ann"})
        result = client.get("/session/rotate").json()
        assert result["new"] != result["old"]
        assert client.get("/session/flags").json()["id"] == result["new"]


@pytest.mark.parametrize("kind", SERVER_STORES)
def test_rotate_invalidates_the_old_session_id(kind, tmp_path):
    # Session fixation: the cookie from before the rotation no longer opens the session.
    with TestClient(session_app(make_store(kind, tmp_path))) as client:
        client.get("/session/set", params={"user": "ann"})
        old_cookie = client.cookies[COOKIE]
        client.get("/session/rotate")
        assert client.get("/session/get").json() == {"user": "ann"}
        saved_cookies = dict(client.cookies)
        client.cookies.clear()
        assert client.get("/session/get", cookies={COOKIE: old_cookie}).json() == {}
        client.cookies.update(saved_cookies)
        assert client.get("/session/get").json() == {"user": "ann"}


def test_clear_empties_the_session(client):
    client.get("/session/set", params={"a": "1", "b": "2"})
    assert client.get("/session/clear").json() == {}
    assert client.get("/session/get").json() == {}


def test_expired_session_is_empty(kind, tmp_path):
    with TestClient(session_app(make_store(kind, tmp_path), max_age=1)) as client:
        client.get("/session/set", params={"a": "1"})
        assert client.get("/session/get").json() == {"a": "1"}
        time.sleep(2.2)
        assert client.get("/session/get").json() == {}


# ---- tampered and unknown ids -----------------------------------------------------------------

def flip_last_char(value):
    return value[:-1] + ("A" if value[-1] != "A" else "B")


@pytest.mark.parametrize("tamper", [flip_last_char, lambda value: value[:-8],
                                    lambda value: "garbage", lambda value: "v1.e30.e30",
                                    lambda value: ""])
def test_tampered_cookie_gives_an_empty_session(client, tamper):
    client.get("/session/set", params={"user": "ann"})
    client.cookies[COOKIE] = tamper(client.cookies[COOKIE])
    response = client.get("/session/get")
    assert response.status == 200
    assert response.json() == {}


def test_cookie_signed_with_another_secret_gives_an_empty_session(kind, tmp_path):
    with TestClient(session_app(make_store(kind, tmp_path), secret="another-secret")) as other:
        other.get("/session/set", params={"user": "mallory"})
        foreign = other.cookies[COOKIE]
    with TestClient(session_app(make_store(kind, tmp_path))) as client:
        assert client.get("/session/get", cookies={COOKIE: foreign}).json() == {}


@pytest.mark.parametrize("kind", SERVER_STORES)
def test_unknown_session_id_gives_an_empty_session(kind, tmp_path):
    store = make_store(kind, tmp_path)
    with TestClient(session_app(store)) as client:
        client.get("/session/set", params={"user": "ann"})
        session_id = client.get("/session/flags").json()["id"]
        store.delete(session_id)
        assert client.get("/session/get").json() == {}


# ---- cookie attributes ------------------------------------------------------------------------

def attributes_of(set_cookie):
    _, *attributes = [piece.strip() for piece in set_cookie.split(";")]
    return {key.lower(): value for key, _, value in (a.partition("=") for a in attributes)}


def test_session_cookie_defaults(client):
    [cookie] = session_cookies(client.get("/session/set", params={"a": "1"}))
    attributes = attributes_of(cookie)
    assert attributes["path"] == "/"
    assert "httponly" in attributes
    assert attributes["samesite"] == "Lax"
    assert "secure" not in attributes


def test_session_cookie_options(tmp_path):
    app = session_app(MemoryStore(), cookie_name="sid", secure=True, samesite="Strict",
                      path="/")
    with TestClient(app) as client:
        response = client.get("/session/set", params={"a": "1"})
        assert session_cookies(response) == []
        [cookie] = session_cookies(response, "sid")
        attributes = attributes_of(cookie)
        assert "secure" in attributes and attributes["samesite"] == "Strict"
        assert client.get("/session/get").json() == {"a": "1"}


# ---- the store API ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", SERVER_STORES)
def test_store_api_round_trip(kind, tmp_path):
    store = make_store(kind, tmp_path)
    data = {"user": "zoë", "roles": ["a", "b"], "count": 3, "nested": {"x": None}}
    assert store.load("no-such-id") is None
    store.save("id-1", data, 3600)
    assert store.load("id-1") == data
    store.save("id-1", {"user": "bob"}, 3600)
    assert store.load("id-1") == {"user": "bob"}
    store.delete("id-1")
    assert store.load("id-1") is None
    store.delete("id-1")          # deleting twice is harmless


def test_expired_entries_are_absent_from_every_server_store(tmp_path):
    stores = {kind: make_store(kind, tmp_path) for kind in SERVER_STORES}
    for store in stores.values():
        store.save("short", {"a": 1}, 1)
        store.save("long", {"b": 2}, 3600)
    time.sleep(2.2)
    for kind, store in stores.items():
        assert store.load("short") is None, kind
        store.purge_expired()
        assert store.load("short") is None, kind
        assert store.load("long") == {"b": 2}, kind


# ---- pool routes ------------------------------------------------------------------------------

def test_pool_route_sees_a_read_only_copy_of_the_session(tmp_path):
    app = session_app(MemoryStore(), with_pool_route=True)
    with TestClient(app, workers=1) as client:
        client.get("/session/set", params={"user": "ann"})
        response = client.get("/session/pool-write")
        assert response.status == 200, response.text
        result = response.json()
        assert result["proc_type"] == "pool"
        assert result["seen"] == {"user": "ann"}
        assert client.get("/session/get").json() == {"user": "ann"}


# ---- SQLite across processes ------------------------------------------------------------------

def test_sqlite_sessions_survive_a_server_restart(server_factory, tmp_path):
    target = "tests.apps.essentials_app:session_app"
    env = {"ESSENTIALS_SESSION_DB": str(tmp_path / "shared.sqlite3")}
    browser = requests.Session()

    first = server_factory(target, pure=True, env=env)
    response = browser.get(first.url + "/session/set", params={"user": "ann"}, timeout=30)
    assert response.json() == {"user": "ann"}
    assert COOKIE in browser.cookies
    first.stop()

    second = server_factory(target, pure=True, env=env)
    third = server_factory(target, pure=True, env=env)
    assert browser.get(second.url + "/session/get", timeout=30).json() == {"user": "ann"}
    browser.get(third.url + "/session/set", params={"lang": "fr"}, timeout=30)
    assert browser.get(second.url + "/session/get", timeout=30).json() == {"user": "ann",
                                                                          "lang": "fr"}
    stranger = requests.get(second.url + "/session/get", timeout=30)
    assert stranger.json() == {}


def test_expired_sessions_are_purged_from_the_store_at_startup_and_while_saving():
    store = MemoryStore()
    store.save("stale", {"n": 1}, max_age=-1)           # already expired
    sessions = Sessions("purge-secret", store=store)
    sessions.purge_interval = 0                         # purge on every save for the test
    app = App()
    app.install(sessions)

    @app.route("/set")
    def set_value(request):
        request.session["n"] = 1
        return "ok"

    with TestClient(app) as client:
        assert "stale" not in store._data               # purged when the server started
        store.save("stale-again", {"n": 2}, max_age=-1)
        assert client.get("/set").status == 200
    assert "stale-again" not in store._data             # purged when a session was saved
    assert len(store._data) == 1                        # the new, live session remains
