"""App for the wire-level HTTP/1.1 tests (tests/test_http11.py).

Every handler except ``/count`` bumps a module-level counter, so a test can ask
``GET /count`` on a fresh connection before and after an attack and prove that
no handler ran for the malicious bytes.
"""
import asyncio

from pixie_web import App

app = App()

_calls = 0


def _called():
    global _calls
    _calls += 1


@app.get("/count")
def count(request):
    """How many times the other handlers have run (not counting this one)."""
    return str(_calls)


@app.get("/")
def index(request):
    _called()
    return "Hello, World!"


@app.post("/echo")
def echo(request):
    _called()
    return bytes(request.body)


@app.post("/ignore")
def ignore(request):
    """Never looks at the request body."""
    _called()
    return "ignored"


@app.get("/n/<n:int>")
def integer(request, n):
    _called()
    return str(n)


@app.get("/f/<x:float>")
def floating(request, x):
    _called()
    return repr(x)


@app.get("/admin")
def admin(request):
    """The target of the smuggling tests: it must never be reached by them."""
    _called()
    return "admin"


@app.get("/async")
async def slow_async(request):
    """Finishes after the sync handlers queued behind it (tests response order)."""
    _called()
    await asyncio.sleep(0.05)
    return "async"


@app.get("/stream")
def stream(request):
    _called()

    def chunks():
        yield b"one"
        yield b"two"
        yield b"three"

    return chunks()


BIG_BODY = b"x" * 32768


@app.get("/big")
def big(request):
    _called()
    return BIG_BODY
