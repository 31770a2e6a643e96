"""The bare ProcessPoolExecutor round trip that pixie_web's pool is compared with.

    python bare_pool.py COUNT [START_METHOD]
Prints JSON: median microseconds of submit(trivial).result() (blocking) and of
`await asyncio.wrap_future(submit(trivial))` (from an event loop), 2 workers.
"""
import asyncio
import concurrent.futures
import json
import multiprocessing
import statistics
import sys
import time

from apps.cpuwork import trivial


def main():
    count = int(sys.argv[1])
    method = sys.argv[2] if len(sys.argv) > 2 else (
        "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
    context = multiprocessing.get_context(method)
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as executor:
        for _ in range(50):                     # start and warm both workers
            executor.submit(trivial).result()
        blocking = []
        for _ in range(count):
            start = time.perf_counter()
            executor.submit(trivial).result()
            blocking.append(time.perf_counter() - start)

        async def from_loop():
            timings = []
            for _ in range(count):
                start = time.perf_counter()
                await asyncio.wrap_future(executor.submit(trivial))
                timings.append(time.perf_counter() - start)
            return timings
        in_loop = asyncio.run(from_loop())
    print(json.dumps({"blocking_us": statistics.median(blocking) * 1e6,
                      "asyncio_us": statistics.median(in_loop) * 1e6,
                      "start_method": method}))


if __name__ == "__main__":
    main()
