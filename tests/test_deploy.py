"""Deployment behind a proxy: trusted proxy headers (Forwarded, X-Forwarded-*), a Unix
socket for a proxy on the same machine (``run(uds=...)``, ``--uds``) and an inherited
listening socket as systemd's socket activation passes it (``run(fd=...)``, ``--fd``)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import requests

from tests.support import ROOT, ChildServer, child_env, free_port, start_script

APP = "tests.apps.interop_app:app"


@pytest.fixture
def behind_proxy(shared_server):
    """The app trusting 127.0.0.1 (the test client is the "proxy") and 10.0.0.0/8."""
    return shared_server(APP, "pure", workers=0, trusted_proxies=["127.0.0.1", "10.0.0.0/8"])


@pytest.fixture
def not_behind_proxy(shared_server):
    return shared_server(APP, "pure", workers=0, trusted_proxies=["10.1.2.3"])


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


def test_an_inherited_listening_socket_as_systemd_passes_it(server_factory):
    # The test is the socket's "systemd": it binds and listens, the server only inherits it.
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(16)
    port = listening.getsockname()[1]
    fd = listening.fileno()
    try:
        server = server_factory(APP, pure=True, port=port, pass_fds=(fd,), fd=fd, workers=0)
    finally:
        listening.close()                           # the child holds its own copy
    assert requests.get(server.url + "/", timeout=5).text == "Hello, interop!"
    assert f"serving on fd {fd}" in server.output()


# ---- The deployment guide's nginx block and systemd unit, run as written --------------------

DEPLOY_GUIDE = os.path.join(ROOT, "docs", "deploy.md")


def guide_block(language, containing):
    """The fenced ``language`` block of docs/deploy.md that contains ``containing``."""
    text = open(DEPLOY_GUIDE, encoding="utf-8").read()
    for block in text.split("```" + language + "\n")[1:]:
        block = block.split("```")[0]
        if containing in block:
            return block
    raise AssertionError(f"no {language} block with {containing!r} in docs/deploy.md")


NGINX_APP = textwrap.dedent("""
    from pixie_web import App
    import tests.apps.interop_app as interop

    app = interop.app
    app.configure_limits(trusted_proxies=["unix"])
    if __name__ == "__main__":
        app.run(uds="SOCKET", workers=0, access_log=False)
""")


def test_the_guides_nginx_block_passes_client_address_and_scheme_and_streams(tmp_path):
    if shutil.which("nginx") is None:
        pytest.fail("nginx is not installed (.ci/run installs Debian's nginx-light)")
    socket_path = str(tmp_path / "app.sock")
    script = tmp_path / "app.py"
    script.write_text(NGINX_APP.replace("SOCKET", socket_path))
    app_process = subprocess.Popen([sys.executable, str(script)], cwd=ROOT,
                                   env=child_env(True), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    try:
        wait_for_socket(socket_path, app_process)
        port = free_port()
        server_block = (guide_block("nginx", "unix:/run/app/app.sock")
                        .replace("/run/app/app.sock", socket_path)
                        .replace("listen 80;", f"listen 127.0.0.1:{port};"))
        config, temp = nginx_config(tmp_path, server_block)
        nginx = ChildServer(["nginx", "-c", str(config), "-p", str(temp)], port, child_env(True))
        try:
            seen = requests.get(nginx.url + "/whoami", timeout=5,
                                headers={"X-Forwarded-For": "6.6.6.6"}).json()
            # nginx appended the real peer (127.0.0.1, this test) to the spoofed value
            assert seen["remote_addr"] == "127.0.0.1"
            assert seen["scheme"] == "http" and seen["host"] == f"127.0.0.1:{port}"
            streamed = requests.get(nginx.url + "/stream-out?count=3", timeout=5)
            assert streamed.text == "chunk 0\nchunk 1\nchunk 2\n"
        finally:
            nginx.stop()
    finally:
        app_process.terminate()
        app_process.wait(timeout=10)


def test_the_guides_systemd_service_runs_under_socket_activation():
    if shutil.which("systemd-socket-activate") is None:
        pytest.fail("systemd-socket-activate is missing (.ci/run installs Debian's systemd)")
    service = guide_block("ini", "--fd 3")
    exec_start = [line.split("=", 1)[1] for line in service.splitlines()
                  if line.startswith("ExecStart=")][0].split()
    assert exec_start[1:] == ["-m", "pixie_web", "app:app", "--fd", "3"]
    port = free_port()
    command = ["systemd-socket-activate", "-l", f"127.0.0.1:{port}",
               sys.executable, "-m", "pixie_web", APP, "--fd", "3", "--workers", "0"]
    server = ChildServer(command, port, child_env(True))
    try:
        assert requests.get(server.url + "/", timeout=10).text == "Hello, interop!"
    finally:
        server.stop()


# ---- Several machines, one load balancer, one Dask cluster (all on 127.0.0.1 here) ---------

CLUSTER_APP = textwrap.dedent("""
    from distributed import Client
    from tests.apps.interop_app import app

    if __name__ == "__main__":
        app.configure_limits(trusted_proxies=["127.0.0.1"])
        app.run(port=PORT, executor=Client("SCHEDULER").get_executor(), access_log=False)
""")


def nginx_config(directory, server_block):
    """An nginx.conf around ``server_block`` with every path inside ``directory``."""
    # (run as root, nginx's workers would drop to www-data, which cannot reach a socket in a
    # test's private directory)
    user = "user root;" if os.geteuid() == 0 else ""
    temp = directory / "nginx"
    temp.mkdir()
    config = directory / "nginx.conf"
    config.write_text(textwrap.dedent(f"""
        {user}
        daemon off;
        worker_processes 1;
        pid {temp}/nginx.pid;
        error_log {temp}/error.log;
        events {{ worker_connections 64; }}
        http {{
            access_log off;
            client_body_temp_path {temp}/body;
            proxy_temp_path {temp}/proxy;
            fastcgi_temp_path {temp}/fastcgi;
            uwsgi_temp_path {temp}/uwsgi;
            scgi_temp_path {temp}/scgi;
        """) + server_block + "}\n")
    return config, temp


def test_the_guides_cluster_two_app_servers_behind_nginx_with_pool_work_on_dask(tmp_path):
    guide = open(DEPLOY_GUIDE, encoding="utf-8").read()
    section = guide.split("## Several machines behind a load balancer")[1].split("\n## ")[0]
    commands = section.split("```sh\n")[1].split("```")[0].splitlines()
    scheduler_port, port = free_port(), free_port()
    scheduler_command = commands[0].replace("10.0.0.5", "127.0.0.1").replace(
        "8786", str(scheduler_port)).split()
    worker_command = commands[1].replace("10.0.0.5:8786", f"127.0.0.1:{scheduler_port}").replace(
        "--nworkers 4", "--nworkers 1").split()
    assert scheduler_command[:2] == ["dask", "scheduler"] and worker_command[:2] == ["dask", "worker"]
    dask = [sys.executable, "-m", "distributed.cli.dask_"]
    env = child_env(True)
    cluster = [subprocess.Popen(dask[:2] + [dask[2] + command[1]] + command[2:], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for command in (scheduler_command, worker_command)]
    apps, nginx = [], None
    try:
        scheduler = f"tcp://127.0.0.1:{scheduler_port}"
        for number in range(2):
            directory = tmp_path / f"machine{number}"
            directory.mkdir()
            apps.append(start_script(directory, CLUSTER_APP.replace("SCHEDULER", scheduler)))
        block = guide_block("nginx", "pixie_machines").replace(
            "server 10.0.0.11:8000;", f"server 127.0.0.1:{apps[0].port};").replace(
            "server 10.0.0.12:8000;", f"server 127.0.0.1:{apps[1].port};").replace(
            "listen 80;", f"listen 127.0.0.1:{port};")
        config, temp = nginx_config(tmp_path, block)
        nginx = ChildServer(["nginx", "-c", str(config), "-p", str(temp)], port, env)
        answered_by, pool_pids = set(), set()
        for number in range(6):
            # (here the client and the balancer share 127.0.0.1, so spoofing is tested above,
            # with nginx on a Unix socket)
            who = requests.get(nginx.url + "/whoami", timeout=10).json()
            assert (who["remote_addr"], who["host"]) == ("127.0.0.1", f"127.0.0.1:{port}")
            answered_by.add(requests.get(nginx.url + "/server-pid", timeout=10).json()["pid"])
            squared = requests.get(nginx.url + f"/pool/{number}", timeout=60).json()
            assert squared["square"] == number * number and squared["in_pool"] is True
            pool_pids.add(squared["pid"])
        assert answered_by == {app.pid for app in apps}      # nginx spread the requests
        assert not pool_pids & answered_by                   # the pool work ran on Dask
    finally:
        if nginx is not None:
            nginx.stop()
        for app in apps:
            app.stop()
        for process in cluster:
            process.terminate()
            process.wait(timeout=20)
