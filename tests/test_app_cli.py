"""A script's own command line: ``app.cli()`` with ``run`` (the default), ``routes`` and the
``@app.command()`` functions, their arguments and options taken from their signatures."""
import subprocess
import sys
import textwrap

import pytest
import requests

from tests.support import child_env, start_script

SCRIPT = textwrap.dedent('''
    from pixie_web import App

    app = App()


    @app.route("/")
    def index(request):
        return "served by the cli"


    @app.command()
    def initdb(path: str, size: int = 10, force: bool = False):
        """Create the database at PATH.

        The longer help text."""
        print(f"initdb path={path} size={size!r} force={force!r}")


    @app.command("add-user")
    async def add_user(name, *roles, ratio: float = 0.5):
        """Add a user with roles."""
        print(f"user {name} roles={list(roles)} ratio={ratio!r}")


    @app.command()
    def fail():
        raise ValueError("the database is locked")


    @app.command()
    def status():
        return 3


    if __name__ == "__main__":
        app.cli()
''')


@pytest.fixture
def script(tmp_path):
    (tmp_path / "app.py").write_text(SCRIPT)
    return tmp_path


def cli(script, *argv):
    return subprocess.run([sys.executable, "app.py", *argv], cwd=script, env=child_env(True),
                          capture_output=True, text=True, timeout=30)


def test_a_command_gets_converted_arguments_and_options(script):
    result = cli(script, "initdb", "/srv/db", "--size", "42", "--force")
    assert (result.returncode, result.stdout) == (0, "initdb path=/srv/db size=42 force=True\n")
    defaults = cli(script, "initdb", "/srv/db", "--no-force")
    assert defaults.stdout == "initdb path=/srv/db size=10 force=False\n"


def test_an_async_command_with_variadic_arguments(script):
    result = cli(script, "add-user", "ada", "admin", "ops", "--ratio", "0.25")
    assert result.stdout == "user ada roles=['admin', 'ops'] ratio=0.25\n"


def test_errors_and_statuses(script):
    failed = cli(script, "fail")
    assert failed.returncode == 1 and "fail: error: the database is locked" in failed.stderr
    assert cli(script, "status").returncode == 3
    wrong = cli(script, "initdb", "/srv/db", "--size", "many")
    assert wrong.returncode == 2 and "invalid int value: 'many'" in wrong.stderr
    assert cli(script, "initdb").returncode == 2                  # PATH is required


def test_help_lists_the_commands_with_their_docstrings(script):
    overview = cli(script, "--help").stdout
    for expected in ("run", "routes", "initdb", "Create the database at PATH.", "add-user",
                     "Add a user with roles."):
        assert expected in overview
    detail = cli(script, "initdb", "--help").stdout
    assert "--size SIZE" in detail and "--force, --no-force" in detail
    assert "The longer help text." in detail


def test_routes_and_run_by_default(tmp_path):
    (tmp_path / "app.py").write_text(SCRIPT)
    assert cli(tmp_path, "routes").stdout.splitlines()[1].split() == ["GET", "/", "sync", "index"]
    server = start_script(tmp_path, SCRIPT, pure=True,
                          args=["app.py", "--port", "PORT", "--workers", "0"])
    try:
        assert requests.get(server.url + "/", timeout=5).text == "served by the cli"
    finally:
        server.stop()
