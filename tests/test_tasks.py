"""Background and periodic tasks in a real server process: app.add_task (sync and async,
retries with backoff, failures logged, bounded concurrency, awaited at shutdown) and
@app.every (a timer that skips a run while the previous one is still going)."""
import os
import signal
import textwrap
import time

import requests

from tests.support import start_script, wait_for

SCRIPT = textwrap.dedent('''
    import asyncio, os, sys, time
    from pixie_web import App

    MARKS = sys.argv[1]
    app = App(max_tasks=1, shutdown_timeout=5.0)
    attempts = {"count": 0}


    def mark(name, text=""):
        with open(os.path.join(MARKS, name), "a") as file:
            file.write(text + "\\n")


    def record(name):
        mark(name, "sync")


    async def record_async(name):
        await asyncio.sleep(0.01)
        mark(name, "async")


    def flaky():
        attempts["count"] += 1
        if attempts["count"] < 3:
            raise ConnectionError(f"attempt {attempts['count']} failed")
        mark("flaky", f"ok after {attempts['count']}")


    def broken():
        raise ValueError("the task is broken")


    def slow(name):
        mark(name, f"start {time.monotonic()}")
        time.sleep(0.5)
        mark(name, f"end {time.monotonic()}")


    @app.every(0.2)
    def tick():
        mark("ticks", "tick")


    @app.route("/schedule/<kind>/<name>")
    def schedule(request, kind, name):
        function = {"sync": record, "async": record_async, "slow": slow}[kind]
        handle = app.add_task(function, name)
        return {"task": handle.name}


    @app.route("/flaky")
    def schedule_flaky(request):
        app.add_task(flaky, retries=3)
        return "scheduled"


    @app.route("/broken")
    async def schedule_broken(request):
        app.add_task(broken)
        return "scheduled"


    @app.route("/after")
    def after(request):
        request.add_task(record, "after")
        def body():
            yield "first\\n"
            time.sleep(0.5)
            yield "last\\n"
        return body()


    if __name__ == "__main__":
        app.run(port=PORT, workers=0, access_log=False)
''')


def start(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    return start_script(tmp_path, SCRIPT, pure=True, args=["app.py", str(marks)]), marks


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_sync_and_async_tasks_retries_failures_and_the_timer(tmp_path):
    server, marks = start(tmp_path)
    try:
        assert requests.get(server.url + "/schedule/sync/a", timeout=5).json() == \
            {"task": "record"}
        requests.get(server.url + "/schedule/async/b", timeout=5)
        assert wait_for(lambda: lines(marks / "a") == ["sync"] and lines(marks / "b") == ["async"])
        requests.get(server.url + "/flaky", timeout=5)
        assert wait_for(lambda: lines(marks / "flaky") == ["ok after 3"])
        assert server.errors().count("background task flaky failed (attempt") == 2  # warnings
        requests.get(server.url + "/broken", timeout=5)
        assert wait_for(lambda: "background task broken failed (attempt 1 of 1)" in server.errors())
        assert "ValueError: the task is broken" in server.errors()        # with its traceback
        assert requests.get(server.url + "/schedule/sync/c", timeout=5).status_code == 200
        assert wait_for(lambda: len(lines(marks / "ticks")) >= 3, timeout=5.0)
    finally:
        server.stop()


def test_max_tasks_bounds_concurrency_and_shutdown_waits_for_tasks(tmp_path):
    server, marks = start(tmp_path)
    try:
        requests.get(server.url + "/schedule/slow/first", timeout=5)
        requests.get(server.url + "/schedule/slow/second", timeout=5)
        os.kill(server.pid, signal.SIGTERM)           # both tasks still to finish
        server.process.wait(timeout=15)
        first, second = lines(marks / "first"), lines(marks / "second")
        assert [line.split()[0] for line in first] == ["start", "end"]
        assert [line.split()[0] for line in second] == ["start", "end"]
        # max_tasks=1: the second started only when the first had ended
        assert float(second[0].split()[1]) >= float(first[1].split()[1])
    finally:
        server.stop()


def test_request_add_task_starts_once_the_response_is_sent(tmp_path):
    server, marks = start(tmp_path)
    try:
        with requests.get(server.url + "/after", timeout=5, stream=True) as reply:
            chunks = reply.iter_content(chunk_size=None)
            assert next(chunks) == b"first\n"
            time.sleep(0.2)
            assert not (marks / "after").exists()      # the response is still being sent
            assert b"".join(chunks) == b"last\n"
        assert wait_for(lambda: lines(marks / "after") == ["sync"])
    finally:
        server.stop()
