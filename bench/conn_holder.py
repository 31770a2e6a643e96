"""Open N keep-alive connections to a server, make one request on each, and hold them idle.

Run by run.py for the memory benchmark, in a process of its own:
    python conn_holder.py PORT COUNT [TIMEOUT]
Prints "READY <open> <failed>" once every connection has had its response, then keeps them
open until a line arrives on stdin or TIMEOUT seconds pass; then closes them all and exits.
"""
import asyncio
import resource
import sys
import time


def raise_nofile(count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 256 if hard == resource.RLIM_INFINITY else min(hard, count + 256)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def one(port, semaphore, request, held):
    async with semaphore:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), 10)
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await asyncio.wait_for(reader.readexactly(length), 10)
            if not head.startswith(b"HTTP/1.1 200"):
                raise ValueError(head[:40])
            held.append(writer)
            return True
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            return False


async def main(port, count, timeout):
    deadline = time.monotonic() + timeout
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    semaphore = asyncio.Semaphore(100)
    held = []
    tasks = [asyncio.ensure_future(one(port, semaphore, request, held)) for _ in range(count)]
    # connecting is bounded too: what has not made it by half the time counts as failed
    await asyncio.wait(tasks, timeout=timeout / 2)
    for task in tasks:
        task.cancel()
    ok = len(held)
    print(f"READY {ok} {count - ok}", flush=True)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline),
                               max(1.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        pass
    for writer in held:
        writer.transport.abort()


if __name__ == "__main__":
    port, count = int(sys.argv[1]), int(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
    raise_nofile(count)
    asyncio.run(main(port, count, timeout))
    # the stdin reader thread may still be blocked: leave without waiting for it
    import os
    os._exit(0)
