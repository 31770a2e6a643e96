"""An app whose startup/shutdown hooks leave marks in a directory given by the environment."""
import asyncio
import os

from pixie_web import App

MARKS = os.environ.get("LIFECYCLE_MARKS", "")
app = App()


def mark(name):
    if MARKS:
        with open(os.path.join(MARKS, name), "w") as handle:
            handle.write(str(os.getpid()))


@app.on_startup
async def started(app):
    mark("started")


@app.on_shutdown
def stopped(app):
    mark("stopped")


@app.route("/")
def index(request):
    return "ready"


@app.route("/slow")
async def slow(request):
    mark("slow-begun")
    await asyncio.sleep(1.0)
    return "finished"
