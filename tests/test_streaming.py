"""Streaming responses never hold the server (every route type, both event loops).

While one client reads an endless stream -- 1 KB chunks 50 ms apart, produced by a
generator that calls ``time.sleep`` as a beginner would write it -- other clients are
served; when that client goes away the generator is closed (its ``finally`` runs, also in a
pool worker); and SIGTERM still stops the server within ``shutdown_timeout``.
"""
import os
import signal
import time

import pytest

from tests.support import Client, raw_exchange, split_reply, status_of, wait_for

APP = "tests.apps.streaming_app:app"
STREAM_ROUTES = ["sync", "thread", "asnc", "asnc-awaiting", "pool"]


@pytest.fixture(scope="module")
def markers(tmp_path_factory):
    directory = tmp_path_factory.mktemp("markers")
    with open(directory / "big.bin", "wb") as file:
        file.truncate(64 * 1024 * 1024)
    return directory


@pytest.fixture
def servers(markers, shared_server):
    """The streaming app's shared server (one pool worker) of a parser mode."""
    return lambda mode: shared_server(APP, mode, env={"STREAM_MARKERS": str(markers)}, workers=1)


def open_stream(port, path):
    """A client reading ``path``: returned once the first 1 KB of the body has arrived."""
    client = Client(port, timeout=10)
    client.send(f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    received, reply = b"", None
    while reply is None or len(reply.body) < 1024:
        data = client.read_some()
        assert data, f"the stream {path} ended early: {received[:200]!r}"
        received += data
        reply = split_reply(received)
    assert reply.status == 200, received[:200]
    return client


def ping_time(port):
    """Seconds one GET /ping takes on a new connection (it must answer "pong")."""
    started = time.monotonic()
    reply = raw_exchange(port, b"GET /ping HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                         timeout=5.0)
    assert reply.endswith(b"pong"), reply
    return time.monotonic() - started


@pytest.mark.parametrize("route", STREAM_ROUTES)
def test_others_are_served_while_a_stream_runs_and_a_gone_client_closes_it(
        servers, markers, parser_mode, route):
    server = servers(parser_mode)
    token = f"{parser_mode}-{route}"
    stream = open_stream(server.port, f"/stream/{route}?token={token}")
    try:
        # a stream that held the loop made each of these wait for ever (5 s timeout)
        assert max(ping_time(server.port) for _ in range(5)) < 2.0
        assert not (markers / token).exists(), "closed while its client was still reading"
    finally:
        stream.close()
    assert wait_for(lambda: (markers / token).exists()), \
        f"the {route} stream's generator was not closed after its client went away"
    assert ping_time(server.port) < 2.0


def test_a_client_that_does_not_read_a_large_file_holds_nobody(servers, parser_mode):
    server = servers(parser_mode)
    with Client(server.port, timeout=10, rcvbuf=4096) as client:
        client.send(b"GET /big-file HTTP/1.1\r\nHost: a\r\n\r\n")
        assert status_of(client.read_some()) == 200
        assert max(ping_time(server.port) for _ in range(5)) < 2.0

    def file_still_open():
        fd_dir = f"/proc/{server.pid}/fd"
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(os.path.join(fd_dir, fd)).endswith("big.bin"):
                    return True
            except FileNotFoundError:      # closed while we looked
                pass
        return False
    assert wait_for(lambda: not file_still_open()), "the file stayed open after the client left"


@pytest.mark.parametrize("route", ["sync", "thread", "pool"])
def test_sigterm_stops_the_server_within_shutdown_timeout_while_a_stream_runs(
        server_factory, markers, parser_mode, route):
    server = server_factory(APP, pure=(parser_mode == "pure"), env={"STREAM_MARKERS": str(markers)},
                            workers=1, shutdown_timeout=1.0)
    stream = open_stream(server.port, f"/stream/{route}?token=term-{parser_mode}-{route}")
    started = time.monotonic()
    os.kill(server.pid, signal.SIGTERM)
    server.process.wait(timeout=15)
    # the stream is cut after the 1 s grace period; the pool stops with the server
    assert time.monotonic() - started < 5.0
    assert server.process.returncode == 0, server.output()
    stream.close()


def test_a_second_signal_stops_at_once_without_waiting_for_streams(server_factory, markers,
                                                                   parser_mode):
    server = server_factory(APP, pure=(parser_mode == "pure"), env={"STREAM_MARKERS": str(markers)},
                            shutdown_timeout=60.0)
    stream = open_stream(server.port, "/stream/sync?token=twice-" + parser_mode)
    started = time.monotonic()
    os.kill(server.pid, signal.SIGINT)
    time.sleep(0.3)
    assert server.alive(), "the first signal must wait for the stream (grace period)"
    os.kill(server.pid, signal.SIGINT)
    server.process.wait(timeout=15)
    assert time.monotonic() - started < 5.0
    assert "stopping now" in server.output()
    stream.close()
