"""Start-up and graceful shutdown of a real server process: hooks, signals, in-flight requests."""
import os
import signal
import threading
import time

import requests

from tests.support import Client

TARGET = "tests.apps.lifecycle_app:app"


def wait_for(path, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.02)
    return False


def test_startup_hook_runs_before_serving(server_factory, tmp_path):
    server = server_factory(TARGET, pure=True, env={"LIFECYCLE_MARKS": str(tmp_path)})
    assert requests.get(server.url + "/", timeout=5).text == "ready"
    assert (tmp_path / "started").read_text() == str(server.pid)
    assert not (tmp_path / "stopped").exists()


def test_sigterm_finishes_in_flight_requests_refuses_new_ones_and_runs_shutdown_hooks(
        server_factory, tmp_path, parser_mode):
    server = server_factory(TARGET, pure=(parser_mode == "pure"),
                            env={"LIFECYCLE_MARKS": str(tmp_path)}, shutdown_timeout=5.0)
    result = {}

    def slow_request():
        result["response"] = requests.get(server.url + "/slow", timeout=10)

    worker = threading.Thread(target=slow_request)
    worker.start()
    assert wait_for(tmp_path / "slow-begun")
    os.kill(server.pid, signal.SIGTERM)
    # the listener closes at once: a new connection is refused while /slow is still running
    refused = False
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline and not refused:
        try:
            Client(server.port, timeout=0.2).close()
            time.sleep(0.02)
        except OSError:
            refused = True
    assert refused, "the server still accepted connections during its graceful shutdown"
    worker.join(timeout=10)
    assert result["response"].status_code == 200
    assert result["response"].text == "finished"
    server.process.wait(timeout=10)
    assert server.process.returncode == 0
    assert (tmp_path / "stopped").read_text() == str(server.pid)


def test_idle_keep_alive_connections_do_not_delay_shutdown(server_factory, tmp_path):
    server = server_factory(TARGET, pure=True, env={"LIFECYCLE_MARKS": str(tmp_path)},
                            shutdown_timeout=8.0, keepalive_timeout=30.0)
    idle = Client(server.port, timeout=5)
    idle.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert idle.reply().status == 200
    started = time.monotonic()
    os.kill(server.pid, signal.SIGTERM)
    server.process.wait(timeout=10)
    assert time.monotonic() - started < 3.0, "an idle connection held the shutdown"
    assert idle.read_until_close() == (b"", True)     # the server closed the idle connection
    idle.close()
