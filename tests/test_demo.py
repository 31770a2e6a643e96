"""demo.py, the tour a new user runs first: every page it links answers as it says, its
live parts work (session, upload, tasks, metrics, the WebSocket chat with in_pool, the typed
API), its own command runs, and Chromium shows the index and a working chat."""
import asyncio
import re
import subprocess
import sys

import pytest
import requests
import websockets

from prometheus_client import parser as prometheus
from tests.browser_tools import browser_unavailable_reason, launch_chromium
from tests.support import ROOT, ChildServer, child_env, free_port, wait_for

#: The pages meant to show an error, with the status they show it with.
ERROR_PAGES = {"/teapot": 418, "/missing": 404, "/boom": 500}


@pytest.fixture(scope="module")
def demo():
    port = free_port()
    server = ChildServer([sys.executable, "demo.py", "run", "--port", str(port), "--workers",
                          "1", "--no-access-log"], port, child_env(False), cwd=ROOT,
                         separate_stderr=True)
    yield server
    server.stop_with_children()


def links_of(html):
    return [link.replace("&amp;", "&") for link in re.findall(r'href="(/[^"]*)"', html)]


def test_every_page_the_tour_links_answers_as_it_says(demo):
    index = requests.get(demo.url + "/", timeout=10)
    assert index.status_code == 200
    links = links_of(index.text)
    assert len(links) >= 20 and "/chat" in links and "/docs" in links and "/api" in links
    for link in links:
        reply = requests.get(demo.url + link, timeout=30, allow_redirects=False)
        expected = ERROR_PAGES.get(link)
        if expected is not None:
            assert reply.status_code == expected, link
        else:
            assert 200 <= reply.status_code < 400, (link, reply.status_code)
        if reply.text.startswith("<!doctype html>") and link != "/docs":
            assert '<p class="what">' in reply.text, link     # each page says what it shows
    assert "this message stays" not in requests.get(demo.url + "/boom", timeout=10).text


def test_the_route_types_run_where_they_say(demo):
    assert requests.get(demo.url + "/user/4", timeout=10).json()["process"] == "main"
    assert requests.get(demo.url + "/sleep", timeout=10).json()["process"] == "main"
    pooled = requests.get(demo.url + "/fib/20", timeout=30).json()
    assert pooled["fib"] == 6765 and pooled["process"] == "pool" and pooled["pid"] != demo.pid


def test_the_form_validates_and_the_upload_counts_bytes(demo):
    invalid = requests.post(demo.url + "/form", data={"name": "", "age": "x"}, timeout=10)
    assert invalid.status_code == 400
    assert "Name is required." in invalid.text and "Age must be" in invalid.text
    valid = requests.post(demo.url + "/form", data={"name": "Ada", "age": "36"}, timeout=10)
    assert valid.status_code == 200 and "Hello Ada, 36." in valid.text
    upload = requests.post(demo.url + "/upload", files={"file": ("f.bin", b"x" * 1234)},
                           timeout=10)
    assert "f.bin: 1234 bytes." in upload.text


def test_the_session_counts_visits_and_the_cookie_remembers(demo):
    with requests.Session() as browser:
        first = browser.get(demo.url + "/visits", timeout=10).text
        second = browser.get(demo.url + "/visits", timeout=10).text
    assert "seen this page 1 time" in first and "Last visit (plain cookie): never" in first
    assert "seen this page 2 time" in second
    assert re.search(r"Last visit \(plain cookie\): \d\d:\d\d:\d\d", second)


def test_a_background_task_runs_after_its_response(demo):
    before = requests.get(demo.url + "/tasks", timeout=10).text.count("a task started after")
    requests.post(demo.url + "/tasks", timeout=10)
    wait_for(lambda: requests.get(demo.url + "/tasks", timeout=10).text.count(
        "a task started after") == before + 1)


def test_metrics_parse_with_prometheus_client(demo):
    requests.get(demo.url + "/hello/x", timeout=10)
    text = requests.get(demo.url + "/metrics", timeout=10).text
    samples = [sample for family in prometheus.text_string_to_metric_families(text)
               for sample in family.samples if sample.name == "pixie_requests_total"]
    assert any(sample.labels["route"] == "/hello/<name>" for sample in samples)


def test_the_chat_relays_messages_and_runs_fib_in_the_pool(demo):
    async def talk():
        url = f"ws://127.0.0.1:{demo.port}/ws/chat/tests"
        async with websockets.connect(url) as alice, websockets.connect(url) as bob:
            await alice.send("hi bob")
            assert await asyncio.wait_for(bob.recv(), 10) == "tests: hi bob"
            assert await asyncio.wait_for(alice.recv(), 10) == "tests: hi bob"
            await bob.send("fib 20")
            assert await asyncio.wait_for(alice.recv(), 30) == (
                "fib(20) = 6765 (from a worker process)")
    asyncio.run(talk())


def test_the_typed_api_converts_validates_and_documents(demo):
    created = requests.post(demo.url + "/api/items", json={"name": "bolt", "qty": 5},
                            timeout=10)
    assert created.json() == {"name": "bolt", "qty": 5, "tags": []}
    listed = requests.get(demo.url + "/api/items?order=qty&limit=100", timeout=10).json()
    assert {"name": "bolt", "qty": 5, "tags": []} in listed
    refused = requests.get(demo.url + "/api/items?limit=500&order=price", timeout=10)
    assert refused.status_code == 422
    assert [error["loc"] for error in refused.json()["detail"]] == [
        ["query", "limit"], ["query", "order"]]
    document = requests.get(demo.url + "/openapi.json", timeout=10).json()
    assert set(document["paths"]["/api/items"]) == {"get", "post"}
    assert "Item" in document["components"]["schemas"]


def test_the_demo_command_greets():
    result = subprocess.run([sys.executable, "demo.py", "hello", "Ada", "--shout"], cwd=ROOT,
                            env=child_env(True), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.strip() == "HELLO, ADA!"


@pytest.mark.skipif(browser_unavailable_reason() is not None,
                    reason=str(browser_unavailable_reason()))
def test_chromium_shows_the_tour_and_a_working_chat(demo, tmp_path):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        context = launch_chromium(playwright, str(tmp_path / "profile"),
                                  viewport={"width": 390, "height": 844})
        try:
            page = context.new_page()
            problems = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(demo.url + "/")
            assert page.locator("h1").inner_text() == "pixie_web tour"
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= 390, f"the index is {scroll_width}px wide on a phone"
            page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
            page.goto(demo.url + "/chat")
            page.wait_for_function("document.getElementById('log').textContent"
                                   ".includes('(connected)')", timeout=10_000)
            page.fill("#text", "hello from chromium")
            page.press("#text", "Enter")
            page.wait_for_function("document.getElementById('log').textContent"
                                   ".includes('lobby: hello from chromium')", timeout=10_000)
            page.screenshot(path=str(tmp_path / "chat.png"))
            assert problems == []
        finally:
            context.close()
    print(f"screenshots in {tmp_path}")
