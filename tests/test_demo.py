"""demo.py, the tour a new user runs first: every page it links answers as it says (the
error pages with their intended status), every GET route is reachable from the index, its
live parts work (forms, upload, session, hooks, tasks, metrics, the WebSocket chat with
in_pool, the typed API), its commands run, --debug does what the operations page says, and
Chromium shows the pages without sideways scrolling on a phone, a form and a working chat."""
import asyncio
import html
import re
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
import requests
import websockets

from prometheus_client import parser as prometheus
from tests.browser_tools import browser_unavailable_reason, launch_chromium
from tests.support import ROOT, ChildServer, child_env, free_port, wait_for

#: The links meant to show an error, with the status they show it with.
ERROR_PAGES = {"/teapot": 418, "/http-error": 422, "/missing": 404, "/boom": 500,
               "/admin": 401, "/api/items?limit=500&order=price": 422}
#: The link the index must have to each topic of the tour.
TOPICS = ["/hello/world", "/user/42", "/sleep", "/fib/27", "/routing", "/headers", "/count/5",
          "/pool-stream/4", "/go-home", "/source", "/teapot", "/http-error", "/missing",
          "/boom", "/hooks", "/template", "/form", "/visits", "/chat", "/tasks", "/metrics",
          "/api", "/docs", "/openapi.json", "/operations"]


def start_demo(*options):
    port = free_port()
    command = [sys.executable, "demo.py", "run", "--port", str(port), "--workers", "1",
               "--no-access-log", *options]
    return ChildServer(command, port, child_env(False), cwd=ROOT, separate_stderr=True)


@pytest.fixture(scope="module")
def demo():
    server = start_demo()
    yield server
    server.stop_with_children()


@pytest.fixture(scope="module")
def debug_demo():
    server = start_demo("--debug")
    yield server
    server.stop_with_children()


def links_of(page):
    return [html.unescape(link) for link in re.findall(r'href=["\'](/[^"\']*)["\']', page)]


def is_tour_page(reply):
    """A page of the tour: HTML in the demo's frame, which says what it shows."""
    return reply.text.startswith("<!doctype html>") and '<p class="what">' in reply.text


@pytest.fixture(scope="module")
def tour(demo):
    """Every page reachable from the index through the tour's pages: {link: reply}."""
    replies, waiting = {}, ["/"]
    while waiting:
        link = waiting.pop(0)
        if link not in replies:
            replies[link] = reply = requests.get(demo.url + link, timeout=30,
                                                 allow_redirects=False)
            if is_tour_page(reply):
                waiting.extend(links_of(reply.text))
    return replies


def route_regex(path):
    """A regular expression for the paths a route pattern such as /user/<id:int> takes."""
    filters = {"": "[^/]+", "int": r"\d+", "float": r"[\d.]+", "path": ".+"}

    def wildcard(part):
        kind = part[1:-1].partition(":")[2]
        return kind[3:] if kind.startswith("re:") else filters[kind]
    return "".join(wildcard(part) if part.startswith("<") else re.escape(part)
                   for part in re.split(r"(<[^>]+>)", path))


def run_demo(*arguments):
    return subprocess.run([sys.executable, "demo.py", *arguments], cwd=ROOT,
                          env=child_env(True), capture_output=True, text=True, timeout=30)


def test_the_index_links_every_topic(tour):
    assert tour["/"].status_code == 200
    assert set(TOPICS) <= set(links_of(tour["/"].text))


def test_every_page_of_the_tour_answers_as_it_says(tour):
    assert len(tour) >= 35
    for link, reply in tour.items():
        expected = ERROR_PAGES.get(link)
        if expected is not None:
            assert reply.status_code == expected, link
        else:
            assert 200 <= reply.status_code < 400, (link, reply.status_code)
        if reply.text.startswith("<!doctype html>") and link != "/docs":
            assert is_tour_page(reply), f"{link} does not say what it shows"
    assert set(ERROR_PAGES) <= set(tour)


def test_every_get_route_is_reachable_from_the_index(tour):
    listing = run_demo("routes")
    assert listing.returncode == 0, listing.stderr
    paths = [line.split()[1] for line in listing.stdout.splitlines()[1:]
             if line.split()[0] == "GET"]
    assert "/color/<rgb:re:[0-9a-fA-F]{6}>" in paths and len(paths) >= 25
    linked = {urlsplit(link).path for link in tour}
    for path in paths:
        pattern = route_regex(path)
        assert any(re.fullmatch(pattern, link) for link in linked), f"nothing links {path}"


def test_the_route_types_run_where_they_say(demo, tour):
    asnc, thread, pool = (tour[link].json() for link in ("/user/42", "/sleep", "/fib/27"))
    assert (asnc["route_type"], asnc["process"], asnc["pid"], asnc["thread"]) == (
        "asnc", "main", demo.pid, "MainThread")
    assert (thread["route_type"], thread["process"], thread["pid"]) == (
        "thread", "main", demo.pid)
    assert thread["thread"] != "MainThread"
    assert pool["fib"] == 196418 and pool["process"] == "pool" and pool["pid"] != demo.pid
    assert all(reply["about"] for reply in (asnc, thread, pool))
    assert (f"Served by the main process, pid {demo.pid}, on its MainThread."
            in tour["/hello/world"].text)
    assert "slow handler: GET /sleep" in demo.errors()    # App(slow_handler_threshold=0.1)


def test_routing_filters_and_url_for(tour):
    assert "<h1>Hello, AC/DC!</h1>" in tour["/hello/AC%2FDC"].text        # %2F in a segment
    assert "<h1>Bonjour, Ada!</h1>" in tour["/hello/Ada?lang=fr"].text     # extra -> query
    assert tour["/price/9.5"].json() == {"amount": 9.5, "with_vat": 11.4}
    assert tour["/files/docs/guide/intro.txt"].json()["segments"] == [
        "docs", "guide", "intro.txt"]
    assert 'style="background:#3d5afe"' in tour["/color/3d5afe"].text
    assert "/fib/&lt;n:int&gt;" in tour["/search?q=fib"].text


def test_the_responses_are_what_the_index_says(demo, tour):
    assert tour["/headers"].json()["user-agent"].startswith("python-requests")
    assert tour["/count/5"].text == "1\n2\n3\n4\n5\n"
    chunks = tour["/pool-stream/4"].text.splitlines()
    assert len(chunks) == 4 and f"pid {demo.pid}\n" not in tour["/pool-stream/4"].text
    assert tour["/go-home"].status_code == 303 and tour["/go-home"].headers["Location"] == "/"
    assert "def slow_fib(n):" in tour["/source"].text and tour["/source"].headers["ETag"]
    assert tour["/http-error"].json()["status"] == 422
    assert "I'm a teapot" in tour["/teapot"].text
    assert "Nothing at <code>/missing</code>" in tour["/missing"].text
    assert "this traceback" not in tour["/boom"].text


def test_the_form_validates_and_the_upload_counts_bytes(demo):
    invalid = requests.post(demo.url + "/form", data={"name": "", "age": "x"}, timeout=10)
    assert invalid.status_code == 400
    assert re.findall(r'<p class="error">(.*?)</p>', invalid.text) == [
        "Name is required.", "Age must be a whole number between 1 and 149."]
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
    fresh = requests.get(demo.url + "/visits", timeout=10).text
    assert "seen this page 1 time" in fresh


def test_the_hooks_middleware_and_component_act_on_every_response(demo, tour):
    reply = requests.get(demo.url + "/hooks", timeout=10)
    assert reply.headers["X-Powered-By"] == "pixie_web"
    assert re.fullmatch(r"\d+\.\d\dms", reply.headers["X-Handler-Time"])
    assert "let through" in tour["/admin?key=demo"].text
    assert "before_request" in tour["/admin"].text

    def ok_count():
        text = requests.get(demo.url + "/hooks", timeout=10).text
        return int(re.search(r"by status:\s+(?:\d+: \d+, )*200: (\d+)", text).group(1))
    assert ok_count() < ok_count()      # the component counted the first of the two


def test_a_background_task_runs_after_its_response(demo):
    started = time.monotonic()
    reply = requests.post(demo.url + "/tasks", data={"kind": "after"}, timeout=10,
                          allow_redirects=False)
    answered = time.monotonic() - started
    assert reply.status_code == 303
    number = re.fullmatch(r"/tasks#job-(\d+)", reply.headers["Location"]).group(1)
    assert answered < 1.0, "the response waited for the one-second job"
    done = re.compile(rf'<li id="job-{number}">[^<]*done at \d\d:\d\d:\d\d')
    assert wait_for(lambda: done.search(requests.get(demo.url + "/tasks", timeout=10).text),
                    timeout=10)


def test_a_failing_task_is_retried_and_the_periodic_one_runs(demo):
    reply = requests.post(demo.url + "/tasks", data={"kind": "retry"}, timeout=10,
                          allow_redirects=False)
    number = re.fullmatch(r"/tasks#job-(\d+)", reply.headers["Location"]).group(1)
    retried = re.compile(rf'<li id="job-{number}">[^<]*done at [\d:]+, on attempt 2')
    assert wait_for(lambda: retried.search(requests.get(demo.url + "/tasks", timeout=10).text),
                    timeout=10)
    ticked = re.compile(r"has run [1-9]\d* time\(s\), last at\s+\d\d:\d\d:\d\d")
    assert wait_for(lambda: ticked.search(requests.get(demo.url + "/tasks", timeout=10).text),
                    timeout=10)
    assert "ConnectionError" in demo.errors()           # the failed attempt was logged


def test_metrics_parse_with_prometheus_client(demo):
    requests.get(demo.url + "/hello/x", timeout=10)
    text = requests.get(demo.url + "/metrics", timeout=10).text
    families = {family.name: family for family in
                prometheus.text_string_to_metric_families(text)}
    requests_total = families["pixie_requests"].samples
    assert any(sample.labels["route"] == "/hello/<name>" for sample in requests_total)
    assert "pixie_request_duration_seconds" in families and "pixie_tasks" in families


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


def test_the_typed_api_converts_validates_and_documents(demo, tour):
    created = requests.post(demo.url + "/api/items", json={"name": "bolt", "qty": 5},
                            timeout=10)
    assert created.json() == {"name": "bolt", "qty": 5, "tags": []}
    listed = requests.get(demo.url + "/api/items?order=qty&limit=100", timeout=10).json()
    assert {"name": "bolt", "qty": 5, "tags": []} in listed
    refused = tour["/api/items?limit=500&order=price"]
    assert [error["loc"] for error in refused.json()["detail"]] == [
        ["query", "limit"], ["query", "order"]]
    document = requests.get(demo.url + "/openapi.json", timeout=10).json()
    assert set(document["paths"]["/api/items"]) == {"get", "post"}
    assert "Item" in document["components"]["schemas"]


def test_debug_mode_does_what_the_operations_page_says(demo, debug_demo):
    plain = requests.get(demo.url + "/operations", timeout=10)
    assert "Server-Timing" not in plain.headers and "Debug mode is <strong>off" in plain.text
    debug = requests.get(debug_demo.url + "/operations", timeout=10)
    assert "Debug mode is <strong>on" in debug.text
    assert re.search(r"handler;dur=[\d.]+", debug.headers["Server-Timing"])
    assert "this traceback goes to the server log" in requests.get(
        debug_demo.url + "/boom", timeout=10).text


def test_the_demo_commands_greet():
    assert run_demo("hello", "Ada").stdout == "Hello, Ada!\n"
    shouted = run_demo("hello", "Ada", "--shout")
    assert shouted.returncode == 0 and shouted.stdout == "HELLO, ADA!\n"
    assert "hello" in run_demo("--help").stdout


@pytest.mark.skipif(browser_unavailable_reason() is not None,
                    reason=str(browser_unavailable_reason()))
def test_chromium_shows_the_tour_on_a_phone_a_form_and_a_working_chat(demo, tour, tmp_path):
    from playwright.sync_api import sync_playwright
    pages = [link for link, reply in tour.items() if is_tour_page(reply)]
    with sync_playwright() as playwright:
        context = launch_chromium(playwright, str(tmp_path / "profile"),
                                  viewport={"width": 390, "height": 844})
        try:
            page = context.new_page()
            problems = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            for link in pages:
                page.goto(demo.url + link)
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"{link} is {width}px wide on a 390px phone"
            page.goto(demo.url + "/")
            assert page.locator("h1").inner_text() == "pixie_web tour"
            page.screenshot(path=str(tmp_path / "index.png"), full_page=True)

            page.goto(demo.url + "/form")
            page.fill("input[name=name]", "Ada")
            page.fill("input[name=age]", "200")
            page.click("text=Send")
            page.wait_for_selector("p.error")
            assert page.locator("p.error").all_inner_texts() == [
                "Age must be a whole number between 1 and 149."]
            assert page.input_value("input[name=name]") == "Ada"      # kept for the retry
            page.screenshot(path=str(tmp_path / "form.png"))

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
