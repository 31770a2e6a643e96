"""Deployment behind a proxy: trusted proxy headers (Forwarded, X-Forwarded-*), a Unix
socket for a proxy on the same machine (``run(uds=...)``, ``--uds``) and an inherited
listening socket as systemd's socket activation passes it (``run(fd=...)``, ``--fd``)."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import ROOT, ServerProcess, child_env, free_port

APP = "tests.apps.interop_app:app"


@pytest.fixture(scope="module")
def behind_proxy():
    """The app trusting 127.0.0.1 (the test client is the "proxy") and 10.0.0.0/8."""
    server = ServerProcess(APP, True, {"workers": 0, "trusted_proxies": ["127.0.0.1",
                                                                         "10.0.0.0/8"]})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def not_behind_proxy():
    server = ServerProcess(APP, True, {"workers": 0, "trusted_proxies": ["10.1.2.3"]})
    yield server
    server.stop()


def whoami(server, **headers):
    return requests.get(server.url + "/whoami", headers=headers, timeout=5).json()


def test_x_forwarded_headers_from_a_trusted_proxy_give_the_client_scheme_and_host(behind_proxy):
    seen = whoami(behind_proxy, **{"X-Forwarded-For": "203.0.113.7, 10.0.0.9",
                                   "X-Forwarded-Proto": "https",
                                   "X-Forwarded-Host": "shop.example"})
    # 10.0.0.9 is a trusted hop: the client is the next address to its left
    assert seen == {"remote_addr": "203.0.113.7", "scheme": "https", "host": "shop.example",
                    "url": "https://shop.example/whoami"}


def test_forwarded_rfc7239_with_an_ipv6_client(behind_proxy):
    seen = whoami(behind_proxy, Forwarded='for="[2001:db8:cafe::17]:4711";proto=https;'
                                          'host=shop.example')
    assert (seen["remote_addr"], seen["scheme"], seen["host"]) == \
        ("2001:db8:cafe::17", "https", "shop.example")


def test_an_address_a_client_prepends_is_not_believed(behind_proxy):
    # the client sent "X-Forwarded-For: 6.6.6.6"; the trusted proxy appended its real peer
    seen = whoami(behind_proxy, **{"X-Forwarded-For": "6.6.6.6, 198.51.100.2"})
    assert seen["remote_addr"] == "198.51.100.2"


def test_bad_proto_and_host_values_are_ignored(behind_proxy):
    seen = whoami(behind_proxy, **{"X-Forwarded-Proto": "javascript",
                                   "X-Forwarded-Host": "evil.example/path?x"})
    assert seen["scheme"] == "http" and seen["host"] == f"127.0.0.1:{behind_proxy.port}"


def test_proxy_headers_from_an_untrusted_peer_are_ignored(not_behind_proxy):
    seen = whoami(not_behind_proxy, **{"X-Forwarded-For": "203.0.113.7",
                                       "X-Forwarded-Proto": "https",
                                       "X-Forwarded-Host": "shop.example",
                                       "Forwarded": "for=203.0.113.8;proto=https"})
    assert seen == {"remote_addr": "127.0.0.1", "scheme": "http",
                    "host": f"127.0.0.1:{not_behind_proxy.port}",
                    "url": f"http://127.0.0.1:{not_behind_proxy.port}/whoami"}


def wait_for_socket(path, process, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert process.poll() is None, "the server exited"
        assert time.monotonic() < deadline, f"no socket at {path} after {timeout}s"
        time.sleep(0.05)


def curl_unix(path, target, *headers):
    command = ["curl", "-s", "--max-time", "5", "--unix-socket", path]
    for header in headers:
        command += ["-H", header]
    return subprocess.run(command + ["http://proxy" + target], capture_output=True,
                          check=True).stdout


def test_a_unix_socket_from_the_command_line_with_the_proxy_trusted(tmp_path):
    path = str(tmp_path / "app.sock")
    process = subprocess.Popen([sys.executable, "-m", "pixie_web", APP, "--uds", path,
                                "--workers", "0"], cwd=ROOT, env=child_env(True),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_socket(path, process)
        assert curl_unix(path, "/") == b"Hello, interop!"
        seen = json.loads(curl_unix(path, "/whoami", "X-Forwarded-For: 203.0.113.7"))
        assert seen["remote_addr"] == ""            # a Unix peer; not trusted by default
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_run_uds_trusts_a_unix_peer_when_told(tmp_path):
    path = str(tmp_path / "app.sock")
    process = subprocess.Popen(         # (serve.py's port is not used with uds)
        [sys.executable, os.path.join(ROOT, "tests", "serve.py"), APP, str(free_port()),
         json.dumps({"uds": path, "workers": 0, "trusted_proxies": ["unix"]})],
        cwd=ROOT, env=child_env(True), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_socket(path, process)
        seen = json.loads(curl_unix(path, "/whoami", "X-Forwarded-For: 203.0.113.7",
                                    "X-Forwarded-Proto: https"))
        assert (seen["remote_addr"], seen["scheme"]) == ("203.0.113.7", "https")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_an_inherited_listening_socket_as_systemd_passes_it():
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(16)
    port = listening.getsockname()[1]
    fd = listening.fileno()
    server = ServerProcess(APP, True, {"fd": fd, "workers": 0}, port=port, pass_fds=(fd,))
    try:
        listening.close()                           # the child holds its own copy
        assert requests.get(server.url + "/", timeout=5).text == "Hello, interop!"
        assert f"serving on fd {fd}" in server.output()
    finally:
        server.stop()
