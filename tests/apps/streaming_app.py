"""The app of tests/test_streaming.py: endless streams of every route type.

Each stream sends 1 KB chunks, 50 ms apart, for ever, the way a beginner writes one
(``time.sleep`` in the generator). When the generator is closed its ``finally`` writes a
file named by the request's ``token`` into ``$STREAM_MARKERS``, so a test can see that
it was closed, even in a pool worker.
"""
import asyncio
import os
import time

from pixie_web import App, FileResponse, RouteType

app = App()
CHUNK = b"x" * 1024


def mark_closed(token):
    with open(os.path.join(os.environ["STREAM_MARKERS"], token), "w") as file:
        file.write("closed")


def endless(token):
    try:
        while True:
            time.sleep(0.05)
            yield CHUNK
    finally:
        mark_closed(token)


async def endless_without_awaiting(token):
    # an async generator that never awaits: it gives the loop no chance by itself
    chunks = endless(token)
    try:
        for chunk in chunks:
            yield chunk
    finally:
        chunks.close()


async def endless_awaiting(token):
    try:
        while True:
            await asyncio.sleep(0.05)
            yield CHUNK
    finally:
        mark_closed(token)


@app.get("/stream/sync")
def stream_sync(request):
    return endless(request.query.get("token"))


@app.get("/stream/thread", RouteType.thread)
def stream_thread(request):
    return endless(request.query.get("token"))


@app.get("/stream/pool", RouteType.pool)
def stream_pool(request):
    return endless(request.query.get("token"))


@app.get("/stream/asnc")
async def stream_asnc(request):
    return endless_without_awaiting(request.query.get("token"))


@app.get("/stream/asnc-awaiting")
async def stream_asnc_awaiting(request):
    return endless_awaiting(request.query.get("token"))


@app.get("/big-file")
def big_file(request):
    return FileResponse(os.path.join(os.environ["STREAM_MARKERS"], "big.bin"))


@app.get("/ping")
def ping(request):
    return "pong"
