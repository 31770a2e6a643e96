"""run(reload=True): the supervisor watches the app's sources and templates and replaces the
serving process when one changes -- an edited handler, a template, an imported module of the
app's directory; a file that does not compile leaves the old process serving until the next
save, and a crashed process starts again at the next change.

Each test writes its app to tmp_path and runs it as a user would (``python app.py``), on its
own port; processes are stopped by pid."""
import http.client
import os
import signal
import textwrap
import time

from tests.support import children_of, descendants_of, start_script, survivors, wait_for

RELOAD_TIMEOUT = 20.0       # a look every 0.5 s, then a new process has to start

SCRIPT = textwrap.dedent('''
    import os
    from pixie_web import App

    app = App()


    @app.route("/")
    def index(request):
        return "first version"


    @app.route("/exit")
    def leave(request):
        os._exit(3)


    if __name__ == "__main__":
        app.run(port=PORT, reload=True, workers=0, access_log=False)
''')


def body(port, path="/"):
    """The body of a GET on a new connection (200 expected)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        text = response.read().decode()
        assert response.status == 200, (response.status, text)
        return text
    finally:
        connection.close()


def rewrite(path, text):
    """Write ``text`` to ``path`` and make its modification time later than before, even
    when the clock is coarse or the previous write was a moment ago."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    later = max(time.time_ns(), before + 1_000_000_000)
    os.utime(path, ns=(later, later))


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text
    rewrite(path, text.replace(old, new))


def served(port, expected, path="/"):
    """Wait until ``expected`` is served at ``path``; True once it is."""
    return wait_for(lambda: body(port, path) == expected, timeout=RELOAD_TIMEOUT)


def test_an_edited_handler_is_served_after_the_reload(tmp_path):
    server = start_script(tmp_path, SCRIPT)
    try:
        assert body(server.port) == "first version"
        first = children_of(server.pid)
        edit(tmp_path / "app.py", '"first version"', '"second version, longer"')
        assert served(server.port, "second version, longer"), server.errors()
        assert wait_for(lambda: children_of(server.pid).isdisjoint(first))
        assert "app.py changed: restarting" in server.errors()
    finally:
        server.stop_with_children()


def test_a_syntax_error_keeps_the_old_version_serving_until_it_is_fixed(tmp_path):
    server = start_script(tmp_path, SCRIPT)
    try:
        assert body(server.port) == "first version"
        (first,) = children_of(server.pid)
        edit(tmp_path / "app.py", 'return "first version"', 'return "first version')
        assert wait_for(lambda: "did not start" in server.errors(), timeout=RELOAD_TIMEOUT)
        errors = server.errors()
        assert "SyntaxError" in errors
        assert "the running processes keep serving; waiting for the next change" in errors
        assert body(server.port) == "first version"
        assert wait_for(lambda: children_of(server.pid) == {first})   # the broken one left
        edit(tmp_path / "app.py", 'return "first version', 'return "fixed version"')
        assert served(server.port, "fixed version"), server.errors()
        assert wait_for(lambda: len(children_of(server.pid)) == 1
                        and first not in children_of(server.pid)), children_of(server.pid)
    finally:
        server.stop_with_children()


TEMPLATED = textwrap.dedent('''
    from pixie_web import App, template

    app = App()


    @app.route("/")
    def index(request):
        return template("page", name="Ada")


    if __name__ == "__main__":
        app.cli()
''')


def test_an_edited_template_restarts_the_serving_process(tmp_path):
    (tmp_path / "views").mkdir()
    page = tmp_path / "views" / "page.tpl"
    rewrite(page, "Hello {{name}}")
    server = start_script(tmp_path, TEMPLATED, args=["app.py", "--port", "PORT", "--reload",
                                                     "--workers", "0", "--no-access-log"])
    try:
        assert body(server.port) == "Hello Ada"
        first = children_of(server.pid)
        rewrite(page, "Good evening, {{name}}")
        # (the old process recompiles the edited template by itself: the new one is the point)
        assert wait_for(lambda: "page.tpl changed: restarting" in server.errors(),
                        timeout=RELOAD_TIMEOUT), server.errors()
        assert wait_for(lambda: children_of(server.pid) - first, timeout=RELOAD_TIMEOUT)
        assert served(server.port, "Good evening, Ada"), server.errors()
        assert wait_for(lambda: children_of(server.pid).isdisjoint(first))
    finally:
        server.stop_with_children()


WITH_HELPER = textwrap.dedent('''
    from pixie_web import App

    import greetings

    app = App()


    @app.route("/")
    def index(request):
        return greetings.GREETING


    if __name__ == "__main__":
        app.run(port=PORT, reload=True, workers=0, access_log=False)
''')


def test_an_edited_module_of_the_app_is_served_after_the_reload(tmp_path):
    helper = tmp_path / "greetings.py"
    rewrite(helper, 'GREETING = "hello"\n')
    server = start_script(tmp_path, WITH_HELPER)
    try:
        assert body(server.port) == "hello"
        edit(helper, '"hello"', '"good evening"')
        assert served(server.port, "good evening"), server.errors()
        assert "greetings.py changed: restarting" in server.errors()
    finally:
        server.stop_with_children()


def test_a_crashed_process_starts_again_at_the_next_change(tmp_path):
    server = start_script(tmp_path, SCRIPT)
    try:
        assert body(server.port) == "first version"
        (crashed,) = children_of(server.pid)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
        connection.request("GET", "/exit")
        connection.close()
        assert wait_for(lambda: f"process {crashed} (slot 0) exited with status 3; it starts "
                                "again at the next change" in server.errors())
        # three looks at the files, and longer than a first restart's delay: none comes
        assert not wait_for(lambda: children_of(server.pid), timeout=1.5), server.errors()
        edit(tmp_path / "app.py", '"first version"', '"after the crash"')
        assert served(server.port, "after the crash"), server.errors()
    finally:
        server.stop_with_children()


def test_sigterm_stops_the_reloading_supervisor_and_its_process(tmp_path):
    server = start_script(tmp_path, SCRIPT)
    try:
        assert body(server.port) == "first version"
        family = descendants_of(server.pid)
        assert len(family) == 1
        os.kill(server.pid, signal.SIGTERM)
        assert server.process.wait(timeout=20) == 0, server.errors()
        assert wait_for(lambda: not survivors(family), timeout=5)
    finally:
        server.stop_with_children()
