"""pixie_web app for the pool benchmarks (issue item 2).

/async                 an async route (its latency is probed while the CPU routes run)
/cpu_pool/<n>          burn(n) in a worker process          (RouteType.pool)
/cpu_sync/<n>          the same work on the event loop      (RouteType.sync)
/trivial_pool          returns "ok" from a worker process   (RouteType.pool)
/trivial_sync          returns "ok" on the event loop
/_bench/bytes          bytes this process sent to / received from the pool's worker pipes;
                       /_bench/bytes/reset zeroes them
/_bench/snapshot       the pickled size of the request snapshot pixie_web ships to a worker
"""
import os
import pickle
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

from common import HOST, PORT  # noqa: E402
from cpuwork import burn  # noqa: E402
from pixie_web import App, ProcessType, RouteType, proc_env  # noqa: E402

app = App()
COUNTS = {"sent": 0, "sends": 0, "received": 0, "receives": 0}
_lock = threading.Lock()


def _count_pipes():
    """Count payload bytes on the pool's pipes, in the server process only: each call's
    pickled message to a worker and each pickled reply (4-byte length prefixes not counted).
    Hooks pixie_web's private _PoolWorker.run and _ProcessPool._replied, so it follows them."""
    import pixie_web
    run, replied = pixie_web._PoolWorker.run, pixie_web._ProcessPool._replied

    def counting_run(self, call):
        with _lock:
            COUNTS["sent"] += len(call.message)
            COUNTS["sends"] += 1
        return run(self, call)

    def counting_replied(self, worker, call, reply):
        with _lock:
            COUNTS["received"] += len(reply)
            COUNTS["receives"] += 1
        return replied(self, worker, call, reply)

    pixie_web._PoolWorker.run, pixie_web._ProcessPool._replied = counting_run, counting_replied


@app.route("/async")
async def async_route(request):
    return "ok"


@app.route("/cpu_pool/<n:int>", RouteType.pool)
def cpu_pool(request, n):
    burn(n)
    return "done"


@app.route("/cpu_sync/<n:int>", RouteType.sync)
def cpu_sync(request, n):
    burn(n)
    return "done"


@app.route("/trivial_pool", RouteType.pool)
def trivial_pool(request):
    return "ok"


@app.route("/trivial_sync", RouteType.sync)
def trivial_sync(request):
    return "ok"


@app.route("/_bench/bytes")
def bytes_counts(request):
    return dict(COUNTS)


@app.route("/_bench/bytes/reset")
def bytes_reset(request):
    with _lock:
        for key in COUNTS:
            COUNTS[key] = 0
    return dict(COUNTS)


@app.route("/_bench/snapshot")
def snapshot_size(request):
    snapshot = getattr(request, "_snapshot", None)   # private: may change with pixie_web
    return {"snapshot": len(pickle.dumps(snapshot(), pickle.HIGHEST_PROTOCOL))
            if snapshot else None}


def main():
    if proc_env.proc_type is ProcessType.main:
        _count_pipes()
    workers = int(os.environ.get("BENCH_WORKERS", "2"))
    settings = {}
    if "BENCH_POOL_NICENESS" in os.environ:       # compare worker priorities
        settings["pool_niceness"] = int(os.environ["BENCH_POOL_NICENESS"])
    app.run(host=HOST, port=PORT, workers=workers, access_log=False, **settings)


if __name__ == "__main__":
    # Serve the routes of the importable module `pool_app` (not `__main__`), so that the
    # workers find the pool handlers by name.
    import pool_app
    pool_app.main()
