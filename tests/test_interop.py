"""The same app under real ASGI and WSGI servers: uvicorn (h11 and httptools), hypercorn,
granian (ASGI and WSGI), gunicorn (sync, gthread, and uvicorn's worker) and waitress.

Each server runs ``tests.apps.interop_app`` (``app`` for ASGI, ``wsgi = app.wsgi`` for WSGI)
in a subprocess on 127.0.0.1 and is checked over HTTP with requests: every return kind, path
parameters, JSON and multipart bodies, streaming both ways, pool and thread routes, error
handlers, sessions, files with Range, the body limit, startup and shutdown hooks, and a
failing startup.
"""
import os
import signal
import subprocess
import sys

import pytest
import requests

from tests.support import ChildServer, Client, child_env, free_port, wait_for

APP = "tests.apps.interop_app:app"
WSGI = "tests.apps.interop_app:wsgi"
PY = [sys.executable, "-m"]

SERVERS = {
    "uvicorn-h11": lambda port: PY + ["uvicorn", APP, "--host", "127.0.0.1", "--port", str(port),
                                      "--http", "h11", "--loop", "asyncio", "--lifespan", "on",
                                      "--log-level", "warning"],
    "uvicorn-httptools": lambda port: PY + ["uvicorn", APP, "--host", "127.0.0.1", "--port",
                                            str(port), "--http", "httptools", "--loop", "uvloop",
                                            "--lifespan", "on", "--log-level", "warning"],
    "hypercorn": lambda port: PY + ["hypercorn", APP, "--bind", f"127.0.0.1:{port}",
                                    "--log-level", "warning"],
    "granian-asgi": lambda port: PY + ["granian", "--interface", "asgi", "--host", "127.0.0.1",
                                       "--port", str(port), "--log-level", "warning", APP],
    "granian-wsgi": lambda port: PY + ["granian", "--interface", "wsgi", "--host", "127.0.0.1",
                                       "--port", str(port), "--log-level", "warning", WSGI],
    "gunicorn-sync": lambda port: PY + ["gunicorn", "--bind", f"127.0.0.1:{port}",
                                        "--worker-class", "sync", "--log-level", "warning",
                                        WSGI],
    "gunicorn-gthread": lambda port: PY + ["gunicorn", "--bind", f"127.0.0.1:{port}",
                                           "--worker-class", "gthread", "--threads", "4",
                                           "--log-level", "warning", WSGI],
    "waitress": lambda port: PY + ["waitress", "--listen", f"127.0.0.1:{port}", WSGI],
    "gunicorn-uvicorn-worker": lambda port: PY + ["gunicorn", "--bind", f"127.0.0.1:{port}",
                                                  "--worker-class",
                                                  "uvicorn_worker.UvicornWorker",
                                                  "--log-level", "warning", APP],
}
# The same servers with PIXIE_WEB_PURE=1 (no uvloop, no ujson in pixie_web): both paths
SERVERS["uvicorn-h11-pure"] = SERVERS["uvicorn-h11"]
SERVERS["gunicorn-sync-pure"] = SERVERS["gunicorn-sync"]
PURE_SERVERS = {"uvicorn-h11-pure", "gunicorn-sync-pure"}
WSGI_SERVERS = {"granian-wsgi", "gunicorn-sync", "gunicorn-gthread", "waitress",
                "gunicorn-sync-pure"}


def start(name, marks, **env):
    port = free_port()
    return ChildServer(SERVERS[name](port), port,
                       child_env(name in PURE_SERVERS, INTEROP_MARKS=str(marks), **env))


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request, tmp_path_factory):
    marks = tmp_path_factory.mktemp(request.param)
    server = start(request.param, marks)
    server.marks = marks
    server.name = request.param
    yield server
    server.stop()


def test_the_startup_hook_runs_before_the_first_request_is_answered(server):
    # An ASGI server runs lifespan startup before it listens -- except gunicorn, whose
    # master listens before its workers boot; WSGI has no lifespan: the first request starts.
    if server.name not in WSGI_SERVERS and not server.name.startswith("gunicorn"):
        assert (server.marks / "started").exists()
    assert requests.get(server.url + "/", timeout=5).status_code == 200
    assert (server.marks / "started").exists()      # WSGI: at the first request


def test_text_json_and_path_parameters(server):
    hello = requests.get(server.url + "/", timeout=5)
    assert (hello.status_code, hello.text) == (200, "Hello, interop!")
    assert hello.headers["content-type"] == "text/html; charset=utf-8"
    user = requests.get(server.url + "/user/42", timeout=5)
    assert user.json() == {"id": 42, "scheme": "http"}
    assert requests.get(server.url + "/user/forty-two", timeout=5).status_code == 404


def test_the_pure_variants_run_without_the_accelerators(server):
    used = requests.get(server.url + "/accelerators", timeout=5).json()
    assert (used == []) == (server.name in PURE_SERVERS)


def test_an_encoded_slash_stays_in_one_path_segment(server):
    # uvicorn, hypercorn and granian pass raw_path; gunicorn RAW_URI, waitress REQUEST_URI;
    # granian's WSGI interface gives only the decoded PATH_INFO
    reply = requests.get(server.url + "/segment/a%2Fb", timeout=5)
    if server.name == "granian-wsgi":
        assert reply.status_code == 404             # /segment/a/b: no such route
    else:
        assert reply.json() == {"value": "a/b", "path": "/segment/a/b"}
    assert requests.get(server.url + "/segment/caf%C3%A9", timeout=5).json()["value"] == "café"


def test_a_json_post_and_a_multipart_upload(server):
    assert requests.post(server.url + "/json", json={"a": [1, 2]}, timeout=5).json() == \
        {"got": {"a": [1, 2]}}
    reply = requests.post(server.url + "/upload", data={"note": "hi"},
                          files={"file": ("report.txt", b"x" * 5000)}, timeout=5)
    assert reply.json() == {"name": "report.txt", "size": 5000, "field": "hi"}


def test_a_body_over_max_body_size_is_413_read_whole_or_streamed(server):
    big = b"x" * (1024 * 1024 + 1)
    assert requests.post(server.url + "/json", data=big, timeout=10).status_code == 413
    assert requests.post(server.url + "/stream-in", data=big, timeout=10).status_code == 413
    small = requests.post(server.url + "/stream-in", data=iter([b"a" * 1000, b"b" * 2000]),
                          timeout=10)
    assert small.json() == {"received": 3000}


def test_every_return_kind_and_a_handler_timeout(server):
    assert requests.get(server.url + "/astream", timeout=5).text == \
        "async 0\nasync 1\nasync 2\n"
    nothing = requests.get(server.url + "/nothing", timeout=5)
    assert (nothing.status_code, nothing.content) == (204, b"")
    raw = requests.get(server.url + "/teapot-bytes", timeout=5)
    assert (raw.status_code, raw.content, raw.headers["x-kind"]) == (418, b"\x00\x01", "bytes")
    assert raw.headers["content-type"] == "application/octet-stream"
    slow = requests.get(server.url + "/slow", timeout=10)
    assert slow.status_code == 503 and "took too long" in slow.text


def test_a_generator_is_streamed(server):
    reply = requests.get(server.url + "/stream-out?count=4", timeout=5)
    assert reply.text == "chunk 0\nchunk 1\nchunk 2\nchunk 3\n"


def test_a_client_that_leaves_closes_the_generator(server):
    marker = server.marks / "stream-closed"
    if marker.exists():
        marker.unlink()
    with Client(server.port) as client:
        client.send(b"GET /stream-out?count=100000&pause=0.01 HTTP/1.1\r\nHost: a\r\n\r\n")
        assert b"chunk 1" in client.read_until(b"chunk 1", timeout=5)
    assert wait_for(marker.exists, timeout=10.0), "the generator kept running after its client left"


def test_pool_and_thread_routes(server):
    pooled = requests.get(server.url + "/pool/7", timeout=20).json()
    assert pooled["square"] == 49
    if server.name == "hypercorn":
        # hypercorn's workers are daemonic processes, which cannot have children: pool
        # routes run in the thread pool, with one warning
        assert pooled["in_pool"] is False
        assert server.output().count("cannot start worker processes") == 1
    else:
        assert pooled["in_pool"] is True and pooled["pid"] != server.pid
    assert requests.get(server.url + "/thread", timeout=5).json() == {"thread": True}


def test_error_handlers_and_sessions(server):
    fail = requests.get(server.url + "/fail", timeout=5)
    assert fail.status_code == 418
    assert fail.json() == {"error": "teapot", "detail": "no coffee here"}
    with requests.Session() as browser:
        counts = [browser.get(server.url + "/session", timeout=5).json()["count"]
                  for _ in range(3)]
    assert counts == [1, 2, 3]


def test_a_static_file_with_a_range(server):
    whole = requests.get(server.url + "/static/design.md", timeout=5)
    assert whole.status_code == 200 and whole.content.startswith(b"# pixie_web")
    part = requests.get(server.url + "/static/design.md", headers={"Range": "bytes=2-11"},
                        timeout=5)
    assert part.status_code == 206
    assert part.content == whole.content[2:12]
    assert part.headers["content-range"] == f"bytes 2-11/{len(whole.content)}"


@pytest.mark.parametrize("name", ["uvicorn-h11", "hypercorn", "granian-asgi", "gunicorn-sync"])
def test_shutdown_runs_the_shutdown_hook_and_stops_the_pool(name, tmp_path):
    server = start(name, tmp_path)
    try:
        pooled = requests.get(server.url + "/pool/3", timeout=20).json()
        assert pooled["square"] == 9
        os.kill(server.pid, signal.SIGTERM)
        server.process.wait(timeout=20)
        # the process that ran the startup hook (hypercorn: its worker) ran the shutdown hook
        assert (tmp_path / "stopped").read_text() == (tmp_path / "started").read_text()
        if pooled["in_pool"]:
            assert wait_for(lambda: not os.path.exists(f"/proc/{pooled['pid']}"), timeout=10.0), \
                "a pool worker outlived the server"
    finally:
        server.stop(sig=signal.SIGKILL)


def test_a_failing_startup_is_reported_and_the_server_does_not_serve(tmp_path):
    port = free_port()
    log_file = tmp_path / "log.txt"
    with open(log_file, "wb") as log:
        process = subprocess.Popen(SERVERS["uvicorn-h11"](port), stdout=log, stderr=log,
                                   env=child_env(False, INTEROP_MARKS=str(tmp_path),
                                                 INTEROP_FAIL_STARTUP="1"))
        try:
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
    output = log_file.read_text()
    assert process.returncode != 0
    assert "the database is not reachable" in output
    assert not (tmp_path / "started").exists()


# ---- HTTP/2 through hypercorn ------------------------------------------------------------------

def test_http2_with_prior_knowledge_through_hypercorn(tmp_path):
    import httpx
    server = start("hypercorn", tmp_path)
    try:
        with httpx.Client(http1=False, http2=True, timeout=10) as client:
            hello = client.get(server.url + "/")
            assert (hello.http_version, hello.status_code, hello.text) == \
                ("HTTP/2", 200, "Hello, interop!")
            posted = client.post(server.url + "/json", json={"h2": True})
            assert posted.json() == {"got": {"h2": True}}
            # a body of unannounced length: in HTTP/2 only the frames say there is one
            unannounced = client.post(server.url + "/json", content=iter([b'{"a":', b"1}"]),
                                      headers={"Content-Type": "application/json"})
            assert "content-length" not in unannounced.request.headers
            assert unannounced.json() == {"got": {"a": 1}}
            streamed = client.get(server.url + "/stream-out?count=3")
            assert streamed.text == "chunk 0\nchunk 1\nchunk 2\n"
            part = client.get(server.url + "/static/design.md", headers={"Range": "bytes=0-5"})
            assert (part.status_code, part.content) == (206, b"# pixi")
    finally:
        server.stop()


def test_h2load_many_streams_all_succeed_through_hypercorn(tmp_path):
    server = start("hypercorn", tmp_path)
    try:
        result = subprocess.run(["h2load", "-n", "400", "-c", "4", "-m", "10",
                                 server.url + "/user/7"], capture_output=True, text=True,
                                timeout=60)
        assert "400 succeeded" in result.stdout, result.stdout[-2000:]
        assert "status codes: 400 2xx" in result.stdout, result.stdout[-2000:]
        assert "h2c" in result.stdout                  # cleartext HTTP/2, prior knowledge
    finally:
        server.stop()
