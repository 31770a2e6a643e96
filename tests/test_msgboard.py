"""The message board (msgboard.py) through TestClient, plus a smoke test of
``python msgboard.py`` on a real port with requests.

Each test gets its own database, uploads directory and secret in tmp_path.
"""
import base64
import json
import os
import re
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import msgboard
import pixie_web
from pixie_web import TestClient
from tests.browser_tools import MsgboardServer, csrf_token_of, make_png

SECRET = "unit-test-secret"


@pytest.fixture
def board_app(tmp_path):
    return msgboard.create_app(str(tmp_path / "board.sqlite3"), str(tmp_path / "uploads"), SECRET)


@pytest.fixture
def client(board_app):
    with TestClient(board_app) as test_client:
        yield test_client


def fresh_token(client):
    page = client.get("/")
    assert page.status == 200
    return csrf_token_of(page.text)


def post(client, message, name=None, files=None, token=None):
    """Submit the form; ``name=None`` leaves the name field out (as when "Posting as" shows)."""
    data = {"csrf_token": fresh_token(client) if token is None else token, "message": message}
    if name is not None:
        data["name"] = name
    return client.post("/posts", data=data, files=files)


def stored_posts(board_app):
    return board_app.board.latest()


def messages_on_page(html):
    return re.findall(r'<p class="message">(.*?)</p>', html, re.S)


# ---- the page --------------------------------------------------------------------------------

def test_board_page_is_html_with_form_and_csrf_token(client):
    page = client.get("/")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert '<form method="post" action="/posts"' in page.text
    assert len(csrf_token_of(page.text)) >= 32
    assert "No messages yet" in page.text


def test_page_uses_layout_and_includes(client):
    html = client.get("/").text
    # layout.tpl wraps board.tpl (rebase); _form.tpl is included inside it
    assert html.lstrip().startswith("<!doctype html>")
    assert html.index('<header class="site-header">') < html.index('id="composer-heading"') \
        < html.index('<footer class="site-footer')


def test_stylesheet_served_from_static(client):
    response = client.get("/static/style.css")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/css")
    assert b".card" in response.body
    assert "ETag" in response.headers


def test_security_headers_on_pages(client):
    response = client.get("/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# ---- posting, PRG ----------------------------------------------------------------------------

def test_valid_post_redirects_with_303_then_is_listed(client, board_app):
    response = post(client, "Hello board", name="Ann")
    assert response.status == 303
    location = response.headers["Location"]
    post_id = stored_posts(board_app)[0].id
    assert location == f"/#post-{post_id}"
    assert response.body == b""
    page = client.get("/")
    assert messages_on_page(page.text) == ["Hello board"]
    assert f'id="post-{post_id}"' in page.text
    assert "Your message has been posted." in page.text
    # the flash message is shown once
    assert "Your message has been posted." not in client.get("/").text


def test_posts_listed_newest_first(client):
    for text in ("first", "second", "third"):
        assert post(client, text).status == 303
    assert messages_on_page(client.get("/").text) == ["third", "second", "first"]


def test_post_survives_a_new_app_on_the_same_database(tmp_path):
    paths = (str(tmp_path / "b.sqlite3"), str(tmp_path / "up"), SECRET)
    with TestClient(msgboard.create_app(*paths)) as first:
        assert post(first, "persisted").status == 303
    with TestClient(msgboard.create_app(*paths)) as second:
        assert messages_on_page(second.get("/").text) == ["persisted"]


def test_empty_name_is_stored_as_anonymous(client, board_app):
    assert post(client, "hi", name="   ").status == 303
    assert stored_posts(board_app)[0].name == "Anonymous"


def test_get_on_the_form_url_redirects_to_the_board(client):
    response = client.get("/posts")
    assert response.status == 303
    assert response.headers["Location"] == "/"


def test_older_posts_are_paginated(client, monkeypatch):
    monkeypatch.setattr(msgboard, "POSTS_PER_PAGE", 2)
    for text in ("one", "two", "three"):
        assert post(client, text).status == 303
    page = client.get("/").text
    assert messages_on_page(page) == ["three", "two"]
    older = re.search(r'href="(/\?before=\d+)"', page).group(1)
    older_page = client.get(older).text
    assert messages_on_page(older_page) == ["one"]
    assert "Older messages →" not in older_page


# ---- validation ------------------------------------------------------------------------------

def test_empty_message_shows_validation_message(client, board_app):
    response = post(client, "   \r\n  ", name="Ann")
    assert response.status == 400
    assert "Please write a message." in response.text
    assert 'role="alert"' in response.text
    assert stored_posts(board_app) == []
    # what the user typed is kept in the form
    assert 'value="Ann"' in response.text


def test_too_long_message_shows_validation_message(client, board_app):
    text = "x" * (msgboard.MAX_MESSAGE_LENGTH + 1)
    response = post(client, text)
    assert response.status == 400
    assert f"Your message is too long ({msgboard.MAX_MESSAGE_LENGTH + 1} characters" in response.text
    assert stored_posts(board_app) == []


def test_message_of_exactly_the_limit_is_accepted(client, board_app):
    assert post(client, "y" * msgboard.MAX_MESSAGE_LENGTH).status == 303
    assert len(stored_posts(board_app)[0].message) == msgboard.MAX_MESSAGE_LENGTH


def test_too_long_name_shows_validation_message(client, board_app):
    response = post(client, "hello", name="n" * (msgboard.MAX_NAME_LENGTH + 1))
    assert response.status == 400
    assert "Your name is too long" in response.text
    assert stored_posts(board_app) == []


# ---- escaping --------------------------------------------------------------------------------

def test_script_in_message_and_name_is_escaped(client):
    assert post(client, "<script>alert('m')</script> & more",
                name='<img src=x onerror="alert(1)">').status == 303
    html = client.get("/").text
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(" in html
    assert "&lt;img src=x onerror=" in html
    assert "&amp; more" in html


def test_script_in_rejected_form_is_escaped(client):
    response = post(client, "<script>x()</script>" + "z" * msgboard.MAX_MESSAGE_LENGTH)
    assert response.status == 400
    assert "<script>x()" not in response.text
    assert "&lt;script&gt;x()" in response.text


# ---- CSRF ------------------------------------------------------------------------------------

def test_post_without_csrf_token_is_rejected(client, board_app):
    client.get("/")
    response = client.post("/posts", data={"name": "Ann", "message": "no token"})
    assert response.status == 403
    assert "Your form has expired" in response.text
    assert stored_posts(board_app) == []


def test_post_with_wrong_csrf_token_is_rejected(client, board_app):
    real = fresh_token(client)
    response = post(client, "forged", token=real[:-2] + ("AA" if real[-2:] != "AA" else "BB"))
    assert response.status == 403
    assert stored_posts(board_app) == []


def test_csrf_token_of_another_session_is_rejected(board_app):
    with TestClient(board_app) as victim, TestClient(board_app) as attacker:
        attacker_token = fresh_token(attacker)
        fresh_token(victim)
        response = post(victim, "cross-site", token=attacker_token)
        assert response.status == 403
        assert stored_posts(board_app) == []


def test_post_without_session_cookie_is_rejected(board_app):
    with TestClient(board_app) as first:
        token = fresh_token(first)
    with TestClient(board_app) as cookieless:
        response = cookieless.post("/posts", data={"csrf_token": token, "message": "hi"})
        assert response.status == 403
    assert stored_posts(board_app) == []


# ---- images ----------------------------------------------------------------------------------

def test_uploaded_png_is_served_back_identical(client, board_app):
    png = make_png(5, 4)
    response = post(client, "with picture", files={"image": ("cat.png", png, "image/png")})
    assert response.status == 303
    image = stored_posts(board_app)[0].image
    assert re.fullmatch(r"[0-9a-f]{32}\.png", image)
    page = client.get("/").text
    assert f'<img src="/uploads/{image}"' in page
    served = client.get(f"/uploads/{image}")
    assert served.status == 200
    assert served.body == png
    assert served.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("extension, head", [
    (".jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
    (".gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
    (".webp", b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00"),
])
def test_other_image_types_accepted_by_magic_bytes(client, board_app, extension, head):
    # the client-side name and type are wrong on purpose: only the bytes decide
    response = post(client, "typed", files={"image": ("photo.txt", head + b"\x00" * 32,
                                                      "text/plain")})
    assert response.status == 303
    assert stored_posts(board_app)[0].image.endswith(extension)


def test_non_image_upload_is_rejected(client, board_app, tmp_path):
    response = post(client, "not a picture",
                    files={"image": ("evil.png", b"<svg onload=alert(1)></svg>", "image/png")})
    assert response.status == 400
    assert "The image must be a PNG, JPEG, GIF or WebP file." in response.text
    assert stored_posts(board_app) == []
    assert os.listdir(board_app.uploads_dir) == []


def test_body_over_the_limit_gets_the_friendly_413_page(client, board_app):
    huge = make_png(1, 1) + b"\x00" * msgboard.MAX_BODY_BYTES
    response = post(client, "way too big", files={"image": ("huge.png", huge, "image/png")})
    assert response.status == 413
    assert response.headers["Content-Type"].startswith("text/html")
    assert "That upload is too large" in response.text
    assert stored_posts(board_app) == []


def test_too_large_image_is_rejected(client, board_app):
    big = make_png(1, 1)
    big += b"\x00" * (msgboard.MAX_IMAGE_BYTES + 1 - len(big))
    response = post(client, "huge", files={"image": ("big.png", big, "image/png")})
    assert response.status == 400
    assert "The image is too large" in response.text
    assert os.listdir(board_app.uploads_dir) == []


def test_upload_name_cannot_choose_the_stored_path(client, board_app, tmp_path):
    response = post(client, "sneaky",
                    files={"image": ("../../escape.png", make_png(), "image/png")})
    assert response.status == 303
    assert not (tmp_path / "escape.png").exists()
    names = os.listdir(board_app.uploads_dir)
    assert len(names) == 1 and re.fullmatch(r"[0-9a-f]{32}\.png", names[0])


def test_empty_file_input_posts_without_image(client, board_app):
    response = post(client, "no picture", files={"image": ("", b"", "application/octet-stream")})
    assert response.status == 303
    assert stored_posts(board_app)[0].image is None


# ---- session and signed cookie ---------------------------------------------------------------

def test_name_remembered_in_session_with_change_link(client, board_app):
    assert 'id="name"' in client.get("/").text          # first visit: a name field
    assert post(client, "hi", name="Grace").status == 303
    page = client.get("/").text
    assert "Posting as <strong class=\"current-name\">Grace</strong>" in page
    assert 'href="/?change_name=1"' in page
    assert 'id="name"' not in page
    # the next post without a name field uses the remembered name
    assert post(client, "again").status == 303
    assert stored_posts(board_app)[0].name == "Grace"
    # "change name" shows the field again, prefilled
    change = client.get("/?change_name=1").text
    assert 'id="name"' in change and 'value="Grace"' in change
    assert post(client, "renamed", name="Hopper").status == 303
    assert "<strong class=\"current-name\">Hopper</strong>" in client.get("/").text
    # emptying the name field forgets the name: anonymous again, and the field is back
    assert post(client, "no name now", name="").status == 303
    assert stored_posts(board_app)[0].name == "Anonymous"
    assert 'id="name"' in client.get("/").text


def test_session_is_server_side_and_name_not_in_cookie(client):
    post(client, "hi", name="SecretName")
    cookie_values = " ".join(client.cookies.values())
    assert "SecretName" not in cookie_values
    assert "msgboard_session" in client.cookies


def test_new_posts_from_others_are_highlighted(board_app):
    with TestClient(board_app) as reader, TestClient(board_app) as writer:
        assert post(writer, "old one").status == 303
        first_view = reader.get("/")
        assert "is-new" not in first_view.text            # first visit: nothing is "new"
        assert "msgboard_seen" in reader.cookies
        assert post(writer, "fresh one").status == 303
        page = reader.get("/").text
        new_articles = re.findall(r'<article class="card post is-new" id="post-(\d+)"', page)
        assert [int(i) for i in new_articles] == [stored_posts(board_app)[0].id]
        # seen now: no longer highlighted on the next visit
        assert "is-new" not in reader.get("/").text


def test_posts_after_a_visit_to_the_empty_board_are_new(board_app):
    with TestClient(board_app) as reader, TestClient(board_app) as writer:
        assert "No messages yet" in reader.get("/").text
        assert post(writer, "first ever").status == 303
        assert "is-new" in reader.get("/").text


def test_own_posts_are_not_highlighted_as_new(client):
    assert post(client, "earlier").status == 303
    client.get("/")                                   # the seen cookie now holds "earlier"
    assert "msgboard_seen" in client.cookies
    assert post(client, "mine").status == 303
    page = client.get("/").text
    assert "is-new" not in page
    assert page.count("badge-own") == 2


def _forge_seen_cookie(signed, new_value):
    """Swap the JSON payload of a ``v1.<payload>.<signature>`` cookie, keeping the signature."""
    version, payload, signature = signed.strip('"').split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if isinstance(data, list):          # [value, expiry]
        data[0] = new_value
    else:
        data = new_value
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return ".".join((version, forged, signature))


def test_tampered_seen_cookie_is_ignored(board_app):
    with TestClient(board_app) as reader, TestClient(board_app) as writer:
        post(writer, "one")
        reader.get("/")
        signed = reader.cookies["msgboard_seen"]
        # claim "last seen = 0" so that everything would look new, keeping the old signature
        forged = _forge_seen_cookie(signed, 0)
        assert forged != signed
        page = reader.get("/", cookies={"msgboard_seen": forged}).text
        assert "is-new" not in page
        # control: a validly signed "last seen = 0" does highlight the post
        reader.cookies.pop("msgboard_seen")
        valid = pixie_web.Response()
        valid.set_cookie("msgboard_seen", 0, secret=SECRET)
        cookie = valid.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        assert "is-new" in reader.get("/", cookies={"msgboard_seen": cookie}).text


# ---- the real server -------------------------------------------------------------------------

def test_msgboard_script_serves_on_given_port_with_requests(tmp_path):
    server = MsgboardServer(str(tmp_path), secret=None)
    try:
        with requests.Session() as browser:
            page = browser.get(server.url + "/", timeout=5)
            assert page.status_code == 200
            token = csrf_token_of(page.text)
            response = browser.post(server.url + "/posts", timeout=5, allow_redirects=False,
                                    data={"csrf_token": token, "name": "Req",
                                          "message": "over the wire"},
                                    files={"image": ("p.png", make_png(3, 3), "image/png")})
            assert response.status_code == 303
            listed = browser.get(server.url + response.headers["Location"], timeout=5)
            assert "over the wire" in listed.text
            image = re.search(r'<img src="(/uploads/[^"]+)"', listed.text).group(1)
            assert browser.get(server.url + image, timeout=5).content == make_png(3, 3)
        # the generated secret is persisted beside the database, private to its owner
        secret_file = server.db_path + ".secret"
        assert os.path.exists(secret_file)
        assert os.stat(secret_file).st_mode & 0o077 == 0
        with sqlite3.connect(server.db_path) as connection:
            assert connection.execute("SELECT message FROM posts").fetchall() == \
                [("over the wire",)]
    finally:
        server.stop()


def test_concurrent_posts_on_the_real_server_are_all_stored(tmp_path):
    # several visitors posting at once: thread routes, one SQLite connection per call
    server = MsgboardServer(str(tmp_path))
    visitors, posts_each = 4, 5

    def visitor(number):
        statuses = []
        with requests.Session() as browser:
            for index in range(posts_each):
                token = csrf_token_of(browser.get(server.url + "/", timeout=10).text)
                statuses.append(browser.post(
                    server.url + "/posts", timeout=10, allow_redirects=False,
                    data={"csrf_token": token, "name": f"v{number}",
                          "message": f"v{number} post {index}"}).status_code)
        return statuses

    try:
        with ThreadPoolExecutor(visitors) as pool:
            results = list(pool.map(visitor, range(visitors)))
        assert results == [[303] * posts_each] * visitors
        with sqlite3.connect(server.db_path) as connection:
            stored = {row[0] for row in connection.execute("SELECT message FROM posts")}
        assert stored == {f"v{n} post {i}" for n in range(visitors) for i in range(posts_each)}
    finally:
        server.stop()


def test_rendering_pages_leaves_the_global_template_path_alone(client, monkeypatch):
    # the board finds its views through template(template_lookup=...), so another app in
    # the same process keeps its own TEMPLATE_PATH
    monkeypatch.setattr(pixie_web, "TEMPLATE_PATH", ["/somewhere/else"])
    assert client.get("/").status == 200
    assert pixie_web.TEMPLATE_PATH == ["/somewhere/else"]
