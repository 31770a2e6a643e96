"""The command line: ``python -m pixie_web --version``, ``routes module:app`` and
``module:app --host --port --workers --debug``.  Servers are started with subprocess on
127.0.0.1, polled for readiness with a deadline, and stopped by pid."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

import pixie_web
from tests.apps import request_app
from tests.apps.request_app import BOOM_MESSAGE
from tests.support import ROOT, free_port

TARGET = "tests.apps.request_app:app"


def cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "pixie_web", *args], cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


class CliServer:
    """``python -m pixie_web TARGET --host 127.0.0.1 --port P ...`` in a child process."""

    def __init__(self, log_path, *extra_args):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pixie_web", TARGET, "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1", *extra_args],
            cwd=ROOT, env=cli_env(), stdout=self._log, stderr=subprocess.STDOUT)

    def output(self):
        with open(self.log_path, "rb") as log:
            return log.read().decode(errors="replace")

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                return requests.get(self.url + "/echo", timeout=1)
            except requests.ConnectionError:
                time.sleep(0.1)
        pytest.fail(f"server did not answer within {timeout} s:\n{self.output()}")

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def cli_server(tmp_path):
    started = []

    def start(*extra_args):
        server = CliServer(tmp_path / f"server{len(started)}.log", *extra_args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_version_prints_the_module_version():
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert re.search(rf"(^|\s){re.escape(pixie_web.__version__)}(\s|$)", result.stdout), result.stdout


def test_routes_lists_method_path_and_route_type_of_every_route():
    result = run_cli("routes", TARGET)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    routes = request_app.app.routes()
    assert routes, "the test app has routes"
    for route in routes:
        type_name = getattr(route.route_type, "name", str(route.route_type))
        matching = [line for line in lines
                    if route.method in line.split() and route.path in line.split()
                    and re.search(rf"\b{re.escape(type_name)}\b", line)]
        assert matching, f"no line for {route.method} {route.path} ({type_name}) in:\n{result.stdout}"


def test_server_started_from_the_cli_answers(cli_server):
    server = cli_server()
    reply = server.wait_ready()
    assert reply.status_code == 200
    assert reply.json()["path"] == "/echo"
    assert reply.json()["remote_addr"] == "127.0.0.1"
    pooled = requests.get(server.url + "/pool/echo?a=1", timeout=30)
    assert pooled.status_code == 200
    assert pooled.json()["in_pool"] is True
    assert pooled.json()["getall_a"] == ["1"]


def test_server_without_debug_hides_tracebacks(cli_server):
    server = cli_server()
    server.wait_ready()
    reply = requests.get(server.url + "/boom", timeout=10)
    assert reply.status_code == 500
    assert "Traceback" not in reply.text
    assert BOOM_MESSAGE not in reply.text
    assert "request_app.py" not in reply.text


def test_debug_flag_shows_the_traceback_of_a_500(cli_server):
    server = cli_server("--debug")
    server.wait_ready()
    reply = requests.get(server.url + "/boom", timeout=10)
    assert reply.status_code == 500
    assert "Traceback" in reply.text
    assert BOOM_MESSAGE in reply.text


@pytest.mark.parametrize("target, missing", [
    ("nosuchmodule:app", "nosuchmodule"),
    ("tests.apps.request_app:nosuchattr", "nosuchattr"),
])
def test_bad_target_exits_non_zero_with_a_clear_message(target, missing):
    result = run_cli(target, "--port", str(free_port()))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert missing in output
    assert "Traceback" not in output, output


def test_routes_with_bad_target_exits_non_zero():
    result = run_cli("routes", "nosuchmodule:app")
    assert result.returncode != 0
    assert "nosuchmodule" in result.stdout + result.stderr
