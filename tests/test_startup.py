"""Every documented way to start an app works, and what goes wrong is visible.

Each test writes a script the way the README shows, starts it as a user would
(``python app.py`` or ``python -m pixie_web ...`` in the script's directory, on 127.0.0.1
and a free port) and reads its stdout and stderr apart: errors with their tracebacks go
to stderr, the access log to stdout, unless the user configured logging.
"""
import re
import subprocess
import sys
import textwrap

import pytest
import requests

from tests.support import ROOT, child_env, start_script

BROKEN_APP = textwrap.dedent("""
    from pixie_web import App, run

    app = App()

    @app.get("/boom")
    def boom(request):
        raise RuntimeError("the secret detail of a sync failure")

    @app.get("/aboom")
    async def aboom(request):
        raise RuntimeError("the secret detail of an async failure")

    if __name__ == "__main__":
        run(app=app, port=PORT)
""")


def stopped(server):
    """Stop the server by pid; return ``(stdout, stderr)``."""
    server.stop()
    return server.output(), server.errors()


def test_errors_go_to_stderr_with_tracebacks_and_the_access_log_to_stdout(tmp_path, parser_mode):
    server = start_script(tmp_path, BROKEN_APP, pure=parser_mode == "pure")
    try:
        for path, detail in (("/boom", "a sync"), ("/aboom", "an async")):
            reply = requests.get(server.url + path, timeout=5)
            assert reply.status_code == 500
            assert "secret detail" not in reply.text and "Traceback" not in reply.text
    finally:
        stdout, stderr = stopped(server)
    for path, detail in (("/boom", "a sync"), ("/aboom", "an async")):
        assert re.search(rf"ERROR pixie_web: unhandled exception in GET {path}\n"
                         r"Traceback \(most recent call last\):", stderr), stderr
        assert f"RuntimeError: the secret detail of {detail} failure" in stderr
        assert f'"GET {path} HTTP/1.1" 500' in stdout
        assert f'"GET {path} HTTP/1.1"' not in stderr
    assert "Traceback" not in stdout


def test_logging_the_user_configured_is_kept(tmp_path):
    source = BROKEN_APP.replace("from pixie_web import App, run", textwrap.dedent("""
        import logging, sys
        logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                            format="USER %(levelname)s %(name)s %(message)s")
        from pixie_web import App, run"""))
    server = start_script(tmp_path, source)
    try:
        assert requests.get(server.url + "/boom", timeout=5).status_code == 500
    finally:
        stdout, stderr = stopped(server)
    assert "USER ERROR pixie_web unhandled exception in GET /boom" in stdout
    assert 'USER INFO pixie_web.access 127.0.0.1 - - [' in stdout
    assert "ERROR pixie_web:" not in stderr and "unhandled exception" not in stderr


@pytest.mark.parametrize("source", [
    """
    from pixie_web import route, run

    @route("/")
    def index(request):
        return "served"

    if __name__ == "__main__":
        run(port=PORT)
    """,
    """
    from pixie_web import App, run

    app = App()

    @app.route("/")
    def index(request):
        return "served"

    if __name__ == "__main__":
        run(app=app, port=PORT)
    """,
    """
    from pixie_web import App

    app = App()

    @app.route("/")
    def index(request):
        return "served"

    if __name__ == "__main__":
        app.run(port=PORT)
    """,
], ids=["module-level-route-and-run", "run-app-keyword", "app-run"])
def test_each_documented_way_to_start_serves_the_routes(tmp_path, source):
    server = start_script(tmp_path, textwrap.dedent(source))
    try:
        assert requests.get(server.url + "/", timeout=5).text == "served"
    finally:
        stdout, stderr = stopped(server)
    assert "no routes" not in stderr


@pytest.mark.parametrize("source", [
    """
    from pixie_web import App, route

    app = App()

    @route("/")            # on the default app, not on app
    def index(request):
        return "served"

    app.run(port=PORT)
    """,
    """
    from pixie_web import App, run

    app = App()

    @app.route("/")
    def index(request):
        return "served"

    run(port=PORT)         # serves the default app, which has no routes
    """,
], ids=["app-run-with-module-level-routes", "run-without-app"])
def test_serving_an_app_without_routes_warns_and_names_the_likely_mistake(tmp_path, source):
    server = start_script(tmp_path, textwrap.dedent(source))
    try:
        assert requests.get(server.url + "/", timeout=5).status_code == 404
    finally:
        stdout, stderr = stopped(server)
    assert "WARNING pixie_web: this app has no routes" in stderr
    assert "run(app=app)" in stderr


MODULE_LEVEL_APP = textwrap.dedent("""
    from pixie_web import route

    @route("/")
    def index(request):
        return "from the module"

    @route("/item/<n:int>")
    def item(request, n):
        return {"n": n}
""")


@pytest.mark.parametrize("extra, target", [
    ("", "app"),                                                     # module-level @route
    ("\nfrom pixie_web import App\napp = App()\napp.route('/')(lambda request: 'own app')\n", "app"),
    ("\nfrom pixie_web import App\nweb = App()\nweb.route('/')(lambda request: 'own app')\n", "app:web"),
], ids=["module-level-routes", "app-attribute", "named-attribute"])
def test_python_m_pixie_web_serves_a_module(tmp_path, extra, target):
    server = start_script(tmp_path, MODULE_LEVEL_APP + extra,
                          args=["-m", "pixie_web", target, "--port", "PORT"])
    try:
        expected = "own app" if extra else "from the module"
        assert requests.get(server.url + "/", timeout=5).text == expected
    finally:
        stopped(server)


def run_cli(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "pixie_web", *args], cwd=tmp_path,
                          env=child_env(pure=False), capture_output=True, text=True, timeout=60)


def test_routes_lists_a_module_written_with_module_level_routes(tmp_path):
    (tmp_path / "app.py").write_text(MODULE_LEVEL_APP, encoding="utf-8")
    result = run_cli(tmp_path, "routes", "app")
    assert result.returncode == 0, result.stderr
    assert re.search(r"GET\s+/item/<n:int>\s+sync\s+item", result.stdout), result.stdout


def test_a_module_with_no_app_and_no_routes_is_refused_clearly(tmp_path):
    (tmp_path / "empty.py").write_text("x = 1\n", encoding="utf-8")
    result = run_cli(tmp_path, "routes", "empty")
    assert result.returncode == 2
    assert "no App named app and registered no routes" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_routes_command(tmp_path):
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0
    assert "python -m pixie_web routes MODULE[:APP]" in result.stdout


POOL_SCRIPT = textwrap.dedent("""
    from pixie_web import App, RouteType, TestClient

    app = App()

    @app.route("/cpu", RouteType.pool)
    def cpu(request):
        return "computed in a worker"

    {body}
""")


def run_script_file(tmp_path, source):
    (tmp_path / "script.py").write_text(source, encoding="utf-8")
    return subprocess.run([sys.executable, "script.py"], cwd=tmp_path, env=child_env(pure=False),
                          capture_output=True, text=True, timeout=90)


def test_a_testclient_with_pool_routes_outside_the_main_guard_fails_with_one_clear_message(tmp_path):
    result = run_script_file(tmp_path, POOL_SCRIPT.format(body=textwrap.dedent("""
        with TestClient(app) as client:
            print(client.get("/cpu").text)
    """)))
    assert result.returncode != 0
    assert 'Put the code that uses the TestClient under `if __name__ == "__main__":`' in result.stderr
    assert "script.py, line" in result.stderr
    assert "bootstrapping" not in result.stderr            # not multiprocessing's wall of text
    assert len(result.stderr.splitlines()) < 15, result.stderr


def test_the_same_script_with_the_main_guard_works(tmp_path):
    result = run_script_file(tmp_path, POOL_SCRIPT.format(body=textwrap.dedent("""
        if __name__ == "__main__":
            with TestClient(app) as client:
                print(client.get("/cpu").text)
    """)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "computed in a worker"


def test_the_readme_quick_start_runs_as_pasted(tmp_path):
    with open(f"{ROOT}/README.md", encoding="utf-8") as file:
        source = re.search(r"```python\n(.*?)```", file.read(), re.DOTALL).group(1)
    assert source.count("run()") == 1
    server = start_script(tmp_path, source.replace("run()", "run(port=PORT, workers=1)"))
    try:
        assert requests.get(server.url + "/", timeout=5).status_code == 200
        for path in re.findall(r'@route\("(/[^"<]*)<[a-z]+:int>"', source):
            reply = requests.get(server.url + path + "10", timeout=30)
            assert reply.status_code == 200, (path, reply.text)
    finally:
        stdout, stderr = stopped(server)
    assert "Traceback" not in stderr
