"""run(processes=N): a supervisor that binds the port and keeps N serving children running --
both children answer, a killed child is replaced while the port keeps taking connections,
SIGHUP replaces every child without a failed request, SIGTERM stops the whole family, a
crash loop ends the supervisor with status 1, children stop by themselves when the
supervisor dies, periodic tasks run in one process (or each), each child's pool gets its
share of the cores, and ``python -m pixie_web`` supervises too.

Each test writes its app to tmp_path and runs it as a user would (``python app.py ...``),
with its own port; processes are stopped by pid."""
import concurrent.futures
import contextlib
import http.client
import os
import re
import signal
import textwrap
import threading
import time

from tests.support import (children_of, descendants_of, kill_all, start_script,
                           survivors, wait_for)

# The app of most tests: "/" answers with the pid of the process that served it, "/slow"
# too, after 2 s (noting in markers/slow-PID that it started); the hooks leave a line in
# markers/started-PID and markers/stopped-PID beside the script.
SCRIPT = textwrap.dedent('''
    import asyncio
    import os
    from pathlib import Path

    from pixie_web import App

    app = App()
    MARKERS = Path(__file__).resolve().parent / "markers"


    def mark(kind):
        MARKERS.mkdir(exist_ok=True)
        with open(MARKERS / f"{kind}-{os.getpid()}", "a") as handle:
            handle.write(kind + "\\n")


    @app.on_startup
    def started(app):
        mark("started")


    @app.on_shutdown
    def stopped(app):
        mark("stopped")


    @app.route("/")
    def index(request):
        return str(os.getpid())


    @app.route("/slow")
    async def slow(request):
        mark("slow")
        await asyncio.sleep(2)
        return str(os.getpid())


    if __name__ == "__main__":
        app.cli()
''')

TWO_PROCESSES = ["app.py", "run", "--port", "PORT", "--processes", "2", "--workers", "0",
                 "--no-access-log"]


def get(port, path="/"):
    """GET on a new connection (so the kernel picks a child afresh): (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def answering_pids(port, count, path="/", attempts=400):
    """The distinct pids answering ``path`` over new connections, until ``count`` were seen
    (at most ``attempts`` requests)."""
    seen = set()
    for _ in range(attempts):
        status, body = get(port, path)
        assert status == 200, body
        seen.add(int(body.split()[0]))
        if len(seen) >= count:
            break
    return seen


def serving_slots(server, count=2):
    """{slot: pid} of the children the supervisor reported serving (the latest per slot),
    once it has reported ``count`` of them (it notices a child a moment after the child can
    answer)."""
    def reported():
        return re.findall(r"process (\d+) \(slot (\d+)\) is serving", server.errors())
    wait_for(lambda: len(reported()) >= count)
    return {int(slot): int(pid) for pid, slot in reported()}


class Load:
    """``threads`` clients sending GET / on a new connection each time, until ``stop()``
    (or ``limit`` seconds, or ``most`` requests): the pids that answered, in order, and
    every failure.

    ``quiet()`` holds every client between two requests -- for a SIGKILL, which would
    otherwise cut a request that the killed child had already accepted."""

    def __init__(self, port, threads=1, limit=60.0, most=100_000):
        self.port = port
        self.deadline = time.monotonic() + limit
        self.most = most
        self.answers = []           # pids, in the order they answered
        self.failures = []
        self.done = threading.Event()
        self.locks = [threading.Lock() for _ in range(threads)]
        self.threads = [threading.Thread(target=self._loop, args=(lock,)) for lock in self.locks]
        for thread in self.threads:
            thread.start()

    def _loop(self, lock):
        while (not self.done.is_set() and time.monotonic() < self.deadline
               and len(self.answers) + len(self.failures) < self.most):
            with lock:
                try:
                    status, body = get(self.port)
                    if status == 200:
                        self.answers.append(int(body))
                    else:
                        self.failures.append((status, body))
                except Exception as error:      # the test fails on any: keep the evidence
                    self.failures.append(repr(error))

    @contextlib.contextmanager
    def quiet(self):
        with contextlib.ExitStack() as stack:
            for lock in self.locks:
                stack.enter_context(lock)
            yield

    def answered_since(self, position):
        return set(self.answers[position:])

    def stop(self):
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in self.threads), "a client hung"


def test_two_children_answer_and_the_supervisor_does_not(tmp_path):
    server = start_script(tmp_path, SCRIPT, args=TWO_PROCESSES)
    try:
        pids = answering_pids(server.port, 2)
        assert len(pids) == 2, pids
        assert server.pid not in pids
        assert pids == children_of(server.pid)
        assert sorted(serving_slots(server).values()) == sorted(pids)
        for pid in pids:                    # log lines name their process when supervised
            assert f"pixie_web[{pid}]: pixie_web" in server.errors()
    finally:
        server.stop_with_children()


def test_a_killed_child_is_replaced_and_no_request_fails_meanwhile(tmp_path):
    server = start_script(tmp_path, SCRIPT, args=TWO_PROCESSES)
    load = None
    try:
        first = answering_pids(server.port, 2)
        load = Load(server.port)
        victim = min(first)
        with load.quiet():
            os.kill(victim, signal.SIGKILL)
            killed_at = len(load.answers)
        # the client keeps going: connections for the dead child's socket wait for its
        # replacement in the supervisor's queue, and none is refused
        assert wait_for(lambda: load.answered_since(killed_at) - first, timeout=20), \
            f"no new process answered; {server.errors()}"
        replacement = (load.answered_since(killed_at) - first).pop()
        answered_after = len(load.answers)
        assert wait_for(lambda: len(load.answers) >= answered_after + 20, timeout=10)
        load.stop()
        assert load.failures == []
        assert victim not in load.answered_since(killed_at)
        assert children_of(server.pid) == first - {victim} | {replacement}
        assert f"process {victim} (slot " in server.errors()    # its exit was reported
    finally:
        if load:
            load.stop()
        server.stop_with_children()


def test_sighup_replaces_every_child_without_a_failed_request(tmp_path):
    server = start_script(tmp_path, SCRIPT, args=TWO_PROCESSES)
    load = None
    try:
        old = answering_pids(server.port, 2)
        family = descendants_of(server.pid)
        load = Load(server.port, threads=2)
        assert wait_for(lambda: len(load.answers) >= 20, timeout=10)
        slow_ones = concurrent.futures.ThreadPoolExecutor(6)
        slow = [slow_ones.submit(get, server.port, "/slow") for _ in range(6)]
        markers = tmp_path / "markers"
        assert wait_for(lambda: sum(path.read_text().count("slow") for path in
                                    markers.glob("slow-*")) == 6)
        os.kill(server.pid, signal.SIGHUP)      # with 6 requests in flight in the old ones

        def replaced():
            children = children_of(server.pid)
            return len(children) == 2 and not children & old and not survivors(family)
        assert wait_for(replaced, timeout=30), server.errors()
        new = children_of(server.pid)
        answered_after = len(load.answers)
        assert wait_for(lambda: new <= load.answered_since(answered_after), timeout=10)
        load.stop()
        assert load.failures == []
        assert {answer.result(timeout=10) for answer in slow} <= {(200, str(pid)) for pid in old}
        slow_ones.shutdown()
        assert answering_pids(server.port, 2) == new
        assert set(serving_slots(server, count=4).values()) == new
        started = re.findall(r"process (\d+) \(slot \d\) is serving", server.errors())
        assert sorted(map(int, started)) == sorted(old | new)   # and no other child started
    finally:
        if load:
            load.stop()
        server.stop_with_children()


def test_sigterm_stops_every_process_after_one_run_of_each_hook(tmp_path):
    server = start_script(tmp_path, SCRIPT, args=TWO_PROCESSES)
    try:
        children = answering_pids(server.port, 2)
        family = descendants_of(server.pid)
        assert set(family) == children
        os.kill(server.pid, signal.SIGTERM)
        assert server.process.wait(timeout=20) == 0, server.errors()
        assert wait_for(lambda: not survivors(family), timeout=5), survivors(family)
    finally:
        server.stop_with_children()
    markers = tmp_path / "markers"
    for pid in children:
        for kind in ("started", "stopped"):
            assert (markers / f"{kind}-{pid}").read_text() == kind + "\n", (kind, pid)
    assert len(list(markers.iterdir())) == 4, sorted(markers.iterdir())   # none elsewhere


CRASHING = textwrap.dedent('''
    from pixie_web import App

    app = App()


    @app.on_startup
    def broken(app):
        raise RuntimeError("the database is gone")


    @app.route("/")
    def index(request):
        return "never served"


    if __name__ == "__main__":
        app.run(port=PORT, processes=2, workers=0)
''')


def test_a_crash_loop_ends_the_supervisor_with_status_1(tmp_path):
    """Each crash of a slot waits twice as long as the one before (0.5 s, 1, 2, 4, 8); the
    sixth crash in a row ends the supervisor (about 16 s)."""
    server = start_script(tmp_path, CRASHING)
    try:
        status = server.process.wait(timeout=60)
    finally:
        server.stop_with_children()
    errors = server.errors()
    assert status == 1, errors
    gave_up = re.search(r"slot (\d) crashed 6 times in a row: giving up, stopping every "
                        r"process", errors)
    assert gave_up, errors
    delays = re.findall(rf"\(slot {gave_up[1]}\) exited with status 1; starting another in "
                        r"([\d.]+)s", errors)
    assert delays == ["0.5", "1.0", "2.0", "4.0", "8.0"], errors
    assert "RuntimeError: the database is gone" in errors
    assert "is serving" not in errors
    assert descendants_of(server.pid) == {}


def test_children_stop_by_themselves_when_the_supervisor_is_killed(tmp_path):
    server = start_script(tmp_path, SCRIPT, args=TWO_PROCESSES)
    children = answering_pids(server.port, 2)
    family = descendants_of(server.pid)
    try:
        os.kill(server.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        assert wait_for(lambda: not survivors(family), timeout=10), survivors(family)
    finally:
        kill_all(family)
    errors = server.errors()
    for pid in children:
        assert f"pixie_web[{pid}]: the supervisor has gone: stopping" in errors
        assert (tmp_path / "markers" / f"stopped-{pid}").exists()   # a graceful stop


PERIODIC = textwrap.dedent('''
    import os
    from pathlib import Path

    from pixie_web import App

    app = App()
    MARKERS = Path(__file__).resolve().parent / "markers"
    MARKERS.mkdir(exist_ok=True)


    def mark(kind):
        with open(MARKERS / f"{kind}-{os.getpid()}", "a") as handle:
            handle.write("ran\\n")


    @app.every(0.05)
    def shared_job():
        mark("shared")


    @app.every(0.05, each_process=True)
    def own_job():
        mark("own")


    @app.route("/")
    def index(request):
        return str(os.getpid())


    if __name__ == "__main__":
        app.cli()
''')


def test_a_periodic_task_runs_in_the_first_process_unless_each_process(tmp_path):
    server = start_script(tmp_path, PERIODIC, args=TWO_PROCESSES)
    try:
        children = answering_pids(server.port, 2)
        markers = tmp_path / "markers"

        def runs(kind, pid):
            path = markers / f"{kind}-{pid}"
            return path.read_text().count("ran") if path.exists() else 0
        # both processes' timers have fired several times: the shared job had its chances
        assert wait_for(lambda: all(runs("own", pid) >= 5 for pid in children), timeout=10)
        assert sorted(path.name for path in markers.iterdir() if path.name.startswith("own")) \
            == sorted(f"own-{pid}" for pid in children)
        shared = [path.name for path in markers.iterdir() if path.name.startswith("shared")]
        assert shared == [f"shared-{serving_slots(server)[0]}"]
    finally:
        server.stop_with_children()


POOLED = textwrap.dedent('''
    import os

    from pixie_web import App, RouteType

    app = App()


    @app.route("/", route_type=RouteType.pool)
    def in_a_worker(request):
        return f"{os.getpid()} {os.getppid()}"


    if __name__ == "__main__":
        app.cli()
''')


def test_each_child_gets_its_share_of_the_cores_for_its_pool(tmp_path):
    server = start_script(tmp_path, POOLED, args=["app.py", "run", "--port", "PORT",
                                                  "--processes", "2", "--no-access-log"])
    try:
        workers_answering = answering_pids(server.port, 2)
        children = children_of(server.pid)
        assert len(children) == 2
        expected = max(1, os.cpu_count() // 2)
        workers = set()
        for child in children:
            # the workers are forked by multiprocessing's forkserver, a child of the child
            # (as is its resource tracker): the grandchildren of the serving child
            mine = set(descendants_of(child)) - children_of(child)
            assert len(mine) == expected, (child, mine, server.errors())
            workers |= mine
        assert workers_answering <= workers
        assert re.findall(r"pool: (\d+) workers", server.errors()) == [str(expected)] * 2
    finally:
        server.stop_with_children()


def test_python_m_pixie_web_supervises_too(tmp_path):
    server = start_script(tmp_path, SCRIPT, args=["-m", "pixie_web", "app:app", "--port",
                                                  "PORT", "--processes", "2", "--workers",
                                                  "0", "--no-access-log"])
    try:
        pids = answering_pids(server.port, 2)
        assert len(pids) == 2 and server.pid not in pids
        assert pids == children_of(server.pid)
    finally:
        server.stop_with_children()
