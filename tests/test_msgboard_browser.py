"""The message board in a real browser: headless Chromium (Debian's package) driven by
Playwright, against ``python msgboard.py`` running on a free 127.0.0.1 port.

Skipped only when Playwright or a chromium binary is missing (the reason is shown);
install them with ``pip install playwright`` and ``apt-get install -y chromium``.
"""
import shutil

import pytest
import requests

from tests.browser_tools import (MsgboardServer, browser_unavailable_reason, csrf_token_of,
                                 launch_chromium, make_png)

_REASON = browser_unavailable_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=str(_REASON))

SHOT_COPY = "/tmp/msgboard.png"          # a copy for a person to look at after a run
MOBILE_SHOT_COPY = "/tmp/msgboard-mobile.png"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    board = MsgboardServer(str(tmp_path_factory.mktemp("msgboard")))
    yield board
    board.stop()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        context = launch_chromium(playwright, str(tmp_path_factory.mktemp("chromium-profile")),
                                  viewport={"width": 1000, "height": 900})
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context):
    browser_context.clear_cookies()      # every test starts as a new visitor
    page = browser_context.new_page()
    page.problems = []
    page.on("console", lambda message: message.type == "error"
            and page.problems.append(message.text))
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.on("response", lambda response: response.status >= 400
            and page.problems.append(f"{response.status} for {response.url}"))
    yield page
    page.close()


def submit(page, message, image=None):
    page.fill("#message", message)
    if image is not None:
        page.set_input_files("#image", image)
    with page.expect_navigation():
        page.click("button[type=submit]")


def test_post_is_listed_and_survives_reload(server, page):
    page.goto(server.url + "/")
    assert page.title().startswith("Messages")
    page.fill("#name", "Ada")
    submit(page, "Hello from a real browser <b>not bold</b>")
    assert page.url.startswith(server.url + "/")       # post/redirect/get: back on the board
    first = page.locator("article.post").first
    assert first.locator(".message").inner_text() == "Hello from a real browser <b>not bold</b>"
    assert first.locator("b").count() == 0              # escaped, not markup
    assert page.locator(".flash").inner_text() == "Your message has been posted."
    page.reload()
    assert page.locator("article.post .message").first.inner_text() == \
        "Hello from a real browser <b>not bold</b>"
    # the reload is a GET: no "resubmit the form?" and no duplicate post
    assert page.locator("article.post", has_text="Hello from a real browser").count() == 1
    assert page.locator(".flash").count() == 0
    assert page.problems == []


def test_session_remembers_name_and_change_link_works(server, page):
    page.goto(server.url + "/")
    page.fill("#name", "Ada")
    submit(page, "setting my name")
    assert page.locator(".current-name").inner_text() == "Ada"
    submit(page, "second message, name remembered")
    assert page.locator("article.post .author").first.inner_text() == "Ada"
    page.click("a.change-name")
    assert page.locator("#name").input_value() == "Ada"
    page.fill("#name", "Lovelace")
    submit(page, "now with a new name")
    assert page.locator(".current-name").inner_text() == "Lovelace"
    assert page.locator("article.post .author").first.inner_text() == "Lovelace"


def post_as_other_visitor(server, name, message):
    """Another visitor posts with requests (their own session and CSRF token)."""
    with requests.Session() as other:
        token = csrf_token_of(other.get(server.url + "/", timeout=5).text)
        response = other.post(server.url + "/posts", timeout=5, allow_redirects=False,
                              data={"csrf_token": token, "name": name, "message": message})
        assert response.status_code == 303


def test_new_post_from_another_visitor_is_highlighted(tmp_path, page):
    # its own, empty board: a first visit to an empty board must also count as "seen"
    server = MsgboardServer(str(tmp_path))
    try:
        _check_new_post_highlighted(server, page)
    finally:
        server.stop()


def _check_new_post_highlighted(server, page):
    page.goto(server.url + "/")              # the signed cookie now remembers the newest post
    post_as_other_visitor(server, "Grace", "Posted while you were away")
    page.reload()
    fresh = page.locator("article.post", has_text="Posted while you were away")
    assert "is-new" in fresh.get_attribute("class")
    assert fresh.locator(".badge-new").inner_text().lower() == "new"
    page.reload()                            # seen now
    assert page.locator("article.post.is-new").count() == 0
    assert page.problems == []


def test_image_upload_renders_and_screenshot(server, page, tmp_path):
    image_path = tmp_path / "rectangle.png"
    image_path.write_bytes(make_png(240, 120, (240, 120, 40)))
    page.goto(server.url + "/")
    post_as_other_visitor(server, "Grace", "Hello Ada! Nice board.\nLooking forward to the pictures.")
    page.fill("#name", "Ada")
    submit(page, "A picture of an orange rectangle.\nSecond line stays on its own line.",
           image=str(image_path))
    image = page.locator("article.post").first.locator("img")
    image.wait_for()
    image.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [240, 120]
    # the other visitor's post, made since this page was loaded, is highlighted as new
    assert page.locator("article.post.is-new", has_text="Hello Ada!").count() == 1
    message = page.locator("article.post .message").first.inner_text()
    assert message.splitlines() == ["A picture of an orange rectangle.",
                                    "Second line stays on its own line."]
    # the stylesheet is really applied: cards have a white background and rounded corners
    card_style = page.locator("article.post").first.evaluate(
        "el => [getComputedStyle(el).borderTopLeftRadius, getComputedStyle(el).display]")
    assert card_style[0] != "0px"
    shot = tmp_path / "msgboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 1000
    shutil.copyfile(shot, SHOT_COPY)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    # responsive: nothing wider than the phone screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(tmp_path / "msgboard-mobile.png"), full_page=True)
    shutil.copyfile(tmp_path / "msgboard-mobile.png", MOBILE_SHOT_COPY)
    assert page.problems == []


def test_non_image_upload_shows_validation_message(server, page, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_bytes(b"just some text pretending to be a picture\n")
    page.goto(server.url + "/")
    before = page.locator("article.post").count()
    page.fill("#name", "Ada")
    submit(page, "this should not be posted", image=str(fake))
    alert = page.locator(".errors[role=alert]")
    assert "The image must be a PNG, JPEG, GIF or WebP file." in alert.inner_text()
    # what was typed is still in the box, and nothing was posted
    assert page.locator("#message").input_value() == "this should not be posted"
    page.goto(server.url + "/")
    assert page.locator("article.post").count() == before
    assert page.locator("article.post", has_text="this should not be posted").count() == 0
