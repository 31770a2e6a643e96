"""Errors are visible by default, and logging the user set up is left alone.

When a server starts (``run()``, ``app.run()``, ``python -m pixie_web``) and neither the root
logger nor the ``pixie_web`` logger has a handler, pixie_web logs errors (level name, request
method and path, traceback) to stderr and the access log (Common Log Format) to stdout. When
the user configured either logger first, pixie_web adds no handler: its records reach the
user's handlers only.

Every test writes a script into tmp_path, starts it as a user would (``python app.py`` or
``python -m pixie_web ...`` in that directory, on 127.0.0.1 and a free port), stops it by pid
and reads its stdout and stderr apart.
"""
import re
import textwrap

import requests

from tests.support import start_script

WORKER_FAILURES = textwrap.dedent("""
    from pixie_web import App, RouteType

    app = App()

    @app.route("/thread-boom", RouteType.thread)
    def thread_boom(request):
        raise RuntimeError("the secret detail of a thread failure")

    @app.route("/pool-boom", RouteType.pool)
    def pool_boom(request):
        raise RuntimeError("the secret detail of a pool failure")

    @app.route("/stream-boom")
    def stream_boom(request):
        def chunks():
            yield "first chunk"
            raise RuntimeError("the secret detail of a stream failure")
        return chunks()

    if __name__ == "__main__":
        app.run(port=PORT, workers=1)
""")

BOOM_APP = textwrap.dedent("""
    from pixie_web import App

    app = App()

    @app.get("/boom")
    def boom(request):
        raise RuntimeError("the secret detail of a failure")
""")


def boom_once(tmp_path, source):
    """Start ``source``, have GET /boom fail once (500); the server's (stdout, stderr)."""
    server = start_script(tmp_path, source)
    try:
        assert requests.get(server.url + "/boom", timeout=10).status_code == 500
    finally:
        output = output_of(server)
    return output


def output_of(server):
    """Stop the server by pid; return ``(stdout, stderr)``."""
    server.stop()
    return server.output(), server.errors()


def test_thread_and_pool_route_errors_reach_stderr_with_the_handlers_traceback(tmp_path,
                                                                               parser_mode):
    server = start_script(tmp_path, WORKER_FAILURES, pure=parser_mode == "pure")
    try:
        for kind in ("thread", "pool"):
            reply = requests.get(f"{server.url}/{kind}-boom", timeout=30)
            assert reply.status_code == 500
            assert "secret detail" not in reply.text and "Traceback" not in reply.text
    finally:
        stdout, stderr = output_of(server)
    for kind in ("thread", "pool"):
        assert re.search(rf"ERROR .*GET /{kind}-boom", stderr), stderr
        assert f"RuntimeError: the secret detail of a {kind} failure" in stderr, stderr
        # the handler's own line, even when it ran in a pool worker process
        assert re.search(rf'app\.py", line \d+, in {kind}_boom', stderr), stderr
        assert f'"GET /{kind}-boom HTTP/1.1" 500' in stdout
    assert "Traceback (most recent call last)" in stderr
    assert "Traceback" not in stdout


def test_an_error_in_the_middle_of_a_streamed_body_reaches_stderr(tmp_path):
    server = start_script(tmp_path, WORKER_FAILURES)
    try:
        with requests.get(server.url + "/stream-boom", stream=True, timeout=10) as reply:
            assert reply.status_code == 200          # the head was sent before the failure
            try:
                reply.content
            except requests.RequestException:
                pass                                 # the body is cut short: that is expected
    finally:
        stdout, stderr = output_of(server)
    assert re.search(r"ERROR .*stream", stderr), stderr
    assert "Traceback (most recent call last)" in stderr
    assert "RuntimeError: the secret detail of a stream failure" in stderr
    assert "secret detail" not in stdout


def test_the_command_line_logs_each_error_once_to_stderr_and_requests_to_stdout(tmp_path):
    server = start_script(tmp_path, BOOM_APP,
                          args=["-m", "pixie_web", "app:app", "--port", "PORT", "--workers", "0"])
    try:
        reply = requests.get(server.url + "/boom", timeout=10)
        assert reply.status_code == 500
        assert "secret detail" not in reply.text
    finally:
        stdout, stderr = output_of(server)
    assert len(re.findall(r"ERROR .*GET /boom", stderr)) == 1, stderr
    assert stderr.count("Traceback (most recent call last)") == 1, stderr
    assert stderr.count("RuntimeError: the secret detail of a failure") == 1, stderr
    assert stdout.count('"GET /boom HTTP/1.1" 500') == 1, stdout
    assert '"GET /boom HTTP/1.1"' not in stderr


def test_a_root_handler_added_after_the_import_gets_the_error_and_pixie_web_adds_none(tmp_path):
    log_file = tmp_path / "user.log"
    source = BOOM_APP + textwrap.dedent(f"""
        import logging

        handler = logging.FileHandler({str(log_file)!r})
        handler.setFormatter(logging.Formatter("FILE %(levelname)s %(name)s %(message)s"))
        logging.getLogger().addHandler(handler)

        if __name__ == "__main__":
            app.run(port=PORT, workers=0)
    """)
    stdout, stderr = boom_once(tmp_path, source)
    logged = log_file.read_text(encoding="utf-8")
    assert len(re.findall(r"FILE ERROR pixie_web .*GET /boom", logged)) == 1, logged
    assert logged.count("Traceback (most recent call last)") == 1, logged
    assert "RuntimeError: the secret detail of a failure" in logged
    # nothing of pixie_web's own handlers: no error on stderr, no access-log line on stdout
    assert "Traceback" not in stderr and "secret detail" not in stderr, stderr
    assert "ERROR pixie_web:" not in stderr
    assert '"GET /boom HTTP/1.1"' not in stdout, stdout


def test_a_handler_on_the_pixie_web_logger_alone_counts_as_configured_logging(tmp_path):
    source = BOOM_APP + textwrap.dedent("""
        import logging
        import sys

        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("MINE %(levelname)s %(message)s"))
        logging.getLogger("pixie_web").addHandler(handler)

        if __name__ == "__main__":
            app.run(port=PORT, workers=0)
    """)
    stdout, stderr = boom_once(tmp_path, source)
    assert len(re.findall(r"MINE ERROR .*GET /boom", stdout)) == 1, stdout
    assert stdout.count("RuntimeError: the secret detail of a failure") == 1, stdout
    assert "Traceback" not in stderr and "secret detail" not in stderr, stderr
    assert "ERROR pixie_web:" not in stderr
