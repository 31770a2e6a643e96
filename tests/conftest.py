"""Fixtures: real server processes on 127.0.0.1. (Raw-socket helpers: tests/support.py.)

Every server started here listens on 127.0.0.1 on a free port and is stopped by pid.
``shared_server(target, mode, **run_kwargs)`` is the one shared server per app, mode and
settings (stopped at the end of the session); ``server_factory(target, pure=..., **run_kwargs)``
starts a server for one test alone. Both run ``tests/serve.py`` with the accelerators on
(``pure=False``) or off (``pure=True``); the ``parser_mode`` fixture parametrises a test over
both.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

try:
    import httptools  # noqa: F401
    import uvloop  # noqa: F401
    HAVE_ACCELERATORS = True
except ImportError:
    HAVE_ACCELERATORS = False


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ChildServer:
    """A server in a child process on 127.0.0.1:``port``; ``stop()`` kills it by pid.

    Its output goes to a file, not a pipe: a pipe nobody drains would block a chatty server.
    With ``separate_stderr`` stdout and stderr go to two files (``output()``, ``errors()``).
    """

    name = "server"

    def __init__(self, command, port, env, cwd=ROOT, separate_stderr=False, pass_fds=()):
        self.port = port
        self.log_file = tempfile.TemporaryFile()
        self.error_file = tempfile.TemporaryFile() if separate_stderr else None
        self.process = subprocess.Popen(command, env=env, cwd=cwd, stdout=self.log_file,
                                        stderr=self.error_file or subprocess.STDOUT,
                                        pass_fds=pass_fds)
        self.pid = self.process.pid
        self._wait_ready()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start listening in time:\n{self.output()}")

    def alive(self):
        return self.process.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stop the server by pid (``sig``, then SIGKILL) and return what it printed."""
        if self.process.poll() is None:
            try:
                os.kill(self.pid, sig)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        return self.output()

    def output(self):
        """Everything the server printed so far (its stdout only with ``separate_stderr``)."""
        self.log_file.seek(0)
        return self.log_file.read().decode(errors="replace")

    def errors(self):
        """What the server wrote to stderr (with ``separate_stderr``)."""
        self.error_file.seek(0)
        return self.error_file.read().decode(errors="replace")


def start_script(tmp_path, source, pure=False, args=()):
    """Write ``source`` (with PORT replaced by a free port) to tmp_path/app.py and start it as
    a user would -- ``python app.py`` in that directory, or ``python ARGS...`` when ``args``
    are given -- with stdout and stderr kept apart."""
    port = free_port()
    (tmp_path / "app.py").write_text(source.replace("PORT", str(port)), encoding="utf-8")
    command = [sys.executable, *(args or ["app.py"])]
    return ChildServer([part.replace("PORT", str(port)) for part in command], port,
                       child_env(pure), cwd=tmp_path, separate_stderr=True)


def child_env(pure, **extra):
    """The environment for a child server: accelerators on, or off with ``pure``."""
    env = dict(os.environ)
    env.pop("PIXIE_WEB_PURE", None)
    if pure:
        env["PIXIE_WEB_PURE"] = "1"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_script(script, pure, extra_path=None):
    """Run Python source in a fresh interpreter (accelerators on, or off with ``pure``;
    ``extra_path`` goes first on sys.path); fail on a non-zero exit, else return the result."""
    env = child_env(pure)
    if extra_path:
        env["PYTHONPATH"] = extra_path + os.pathsep + env["PYTHONPATH"]
    result = subprocess.run([sys.executable, "-c", script], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


class ServerProcess(ChildServer):
    """A pixie_web app (``module:attr``) running in a child process via tests/serve.py."""

    def __init__(self, target, pure, run_kwargs, env=None, port=None, pass_fds=()):
        self.pure = pure
        port = port or free_port()
        run_kwargs = {"access_log": False, **run_kwargs}
        super().__init__([sys.executable, os.path.join(ROOT, "tests", "serve.py"), target,
                          str(port), json.dumps(run_kwargs)], port,
                         child_env(pure, **(env or {})), pass_fds=pass_fds)


_SHARED_SERVERS = {}


@pytest.fixture(scope="session")
def shared_server():
    """The one way tests share a server: ``shared_server(target, mode, env=None, **run_kwargs)``
    returns the server process for that app, parser mode ("pure" or "accelerated") and
    settings, started on first use, restarted if it died, and stopped by pid when the
    session ends. Tests that need a server of their own use ``server_factory``."""
    def get(target, mode, env=None, **run_kwargs):
        if mode == "accelerated" and not HAVE_ACCELERATORS:
            pytest.skip("uvloop/httptools not installed: accelerated path not testable")
        key = (target, mode, json.dumps(env or {}, sort_keys=True),
               json.dumps(run_kwargs, sort_keys=True))
        server = _SHARED_SERVERS.get(key)
        if server is None or not server.alive():
            server = _SHARED_SERVERS[key] = ServerProcess(target, mode == "pure", run_kwargs,
                                                          env=env)
        return server

    yield get
    for server in _SHARED_SERVERS.values():
        server.stop()
    _SHARED_SERVERS.clear()


@pytest.fixture
def server_factory():
    started = []

    def start(target, pure=False, env=None, **run_kwargs):
        if not pure and not HAVE_ACCELERATORS:
            pytest.skip("uvloop/httptools not installed: accelerated path not testable")
        server = ServerProcess(target, pure, run_kwargs, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(params=["pure", "accelerated"])
def parser_mode(request):
    """Run a test once with the pure-Python path and once with the accelerators (uvloop, ujson)."""
    if request.param == "accelerated" and not HAVE_ACCELERATORS:
        pytest.skip("uvloop/httptools not installed: accelerated path not testable")
    return request.param
