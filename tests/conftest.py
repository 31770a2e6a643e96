"""Fixtures: real server processes, each on 127.0.0.1 and a free port, stopped by pid.

The one way to share a server is ``shared_server``::

    def test_something(shared_server, parser_mode):
        server = shared_server("tests.apps.protocol_app:app", parser_mode, max_body_size=65536)

It returns the server process for that app (``module:attr``), parser mode (``"pure"``: the
accelerators off; ``"accelerated"``: uvloop + httptools) and settings (``run()`` keyword
arguments, and ``env`` for the child's environment).  The process is started on first use
and cached for the session: every test that asks for the same (app, mode, settings) gets
the same one, so a test using it must leave it as it found it.  ``parser_mode`` runs a test
once per mode.

A test that stops, kills, floods or restarts its server, or reads its log, starts one of
its own with ``server_factory(target, pure=..., env=None, **run_kwargs)``; it is stopped
when the test ends.

Every server is stopped by pid together with whatever it started (pool workers).  The
helpers behind these fixtures (ServerProcess, Client, ...) are in tests/support.py.
"""
import json
import sys

import pytest

from tests.support import HAVE_ACCELERATORS, ROOT, ServerProcess

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

MODES = ("pure", "accelerated")


def _skip_without_accelerators(mode):
    if mode == "accelerated" and not HAVE_ACCELERATORS:
        pytest.skip("uvloop/httptools not installed: accelerated path not testable")


@pytest.fixture(scope="session")
def shared_server():
    """``shared_server(target, mode, env=None, **run_kwargs)``: the one server process of the
    session for that app, parser mode and settings, started on first use (and again if it
    died), stopped by pid when the session ends."""
    servers = {}

    def get(target, mode, env=None, **run_kwargs):
        assert mode in MODES, f"parser mode is one of {MODES}, not {mode!r}"
        _skip_without_accelerators(mode)
        key = (target, mode, json.dumps(env or {}, sort_keys=True),
               json.dumps(run_kwargs, sort_keys=True))
        server = servers.get(key)
        if server is None or not server.alive():
            server = servers[key] = ServerProcess(target, mode == "pure", run_kwargs, env=env)
        return server

    yield get
    for server in servers.values():
        server.stop_with_children()


@pytest.fixture
def server_factory():
    """``server_factory(target, pure=False, env=None, port=None, pass_fds=(), **run_kwargs)``:
    a server for this test alone, stopped by pid when the test ends (``port`` and
    ``pass_fds`` for a server given a listening socket of the test's)."""
    started = []

    def start(target, pure=False, env=None, port=None, pass_fds=(), **run_kwargs):
        _skip_without_accelerators("pure" if pure else "accelerated")
        server = ServerProcess(target, pure, run_kwargs, env=env, port=port, pass_fds=pass_fds)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop_with_children()


@pytest.fixture(params=MODES)
def parser_mode(request):
    """Run a test once with the pure-Python path and once with the accelerators (uvloop, ujson)."""
    _skip_without_accelerators(request.param)
    return request.param
