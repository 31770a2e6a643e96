"""Bare ProcessPoolExecutor references for the pool benchmarks (2 workers, the start method
pixie_web uses by default). Prints JSON.

    python bare_pool.py roundtrip COUNT
        median microseconds of submit(trivial).result() (blocking) and of
        `await asyncio.wrap_future(submit(trivial))` from an event loop
    python bare_pool.py throughput N SECONDS
        completions per second of burn(N) with 8 tasks kept in flight
"""
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps"))

from cpuwork import burn, trivial  # noqa: E402


def executor():
    methods = multiprocessing.get_all_start_methods()
    method = "forkserver" if "forkserver" in methods else "spawn"
    pool = concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method))
    for _ in range(50):                     # start and warm both workers
        pool.submit(trivial).result()
    return pool, method


def roundtrip(count):
    pool, method = executor()
    with pool:
        blocking = []
        for _ in range(count):
            start = time.perf_counter()
            pool.submit(trivial).result()
            blocking.append(time.perf_counter() - start)

        async def from_loop():
            timings = []
            for _ in range(count):
                start = time.perf_counter()
                await asyncio.wrap_future(pool.submit(trivial))
                timings.append(time.perf_counter() - start)
            return timings
        in_loop = asyncio.run(from_loop())
    return {"blocking_us": statistics.median(blocking) * 1e6,
            "asyncio_us": statistics.median(in_loop) * 1e6, "start_method": method}


def throughput(n, seconds):
    pool, method = executor()
    with pool:
        deadline = time.monotonic() + seconds
        began = time.monotonic()
        pending = {pool.submit(burn, n) for _ in range(8)}
        done_count = 0
        while time.monotonic() < deadline:
            done, pending = concurrent.futures.wait(
                pending, timeout=max(0.0, deadline - time.monotonic()),
                return_when=concurrent.futures.FIRST_COMPLETED)
            done_count += len(done)
            pending |= {pool.submit(burn, n) for _ in done}
        elapsed = time.monotonic() - began
        for future in pending:
            future.cancel()
    return {"rps": done_count / elapsed, "start_method": method}


if __name__ == "__main__":
    if sys.argv[1] == "roundtrip":
        print(json.dumps(roundtrip(int(sys.argv[2]))))
    else:
        print(json.dumps(throughput(int(sys.argv[2]), float(sys.argv[3]))))
