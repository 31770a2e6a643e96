"""The WSGI adapter called in process, as a WSGI server would call it."""
import io
import threading
import time

import pytest

from pixie_web import App


def environ(path="/", method="GET"):
    return {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "a"}


def loop_threads():
    return [thread for thread in threading.enumerate() if thread.name == "pixie-web-wsgi-loop"]


def test_a_failing_startup_fails_the_request_and_is_tried_again_without_leaking_loops():
    app = App()
    attempts = []

    @app.on_startup
    def connect(app):
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("the database is not reachable")

    app.route("/")(lambda request: "up")
    before = len(loop_threads())
    for _ in range(2):
        with pytest.raises(ConnectionError):
            app.wsgi(environ(), lambda status, headers: None)
    deadline = time.monotonic() + 5
    while len(loop_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(loop_threads()) == before            # the failed starts left no loop running
    statuses = []
    body = app.wsgi(environ(), lambda status, headers: statuses.append(status))
    assert (statuses, b"".join(body), len(attempts)) == (["200 OK"], b"up", 3)
