"""How handlers are driven: the eager first step of async handlers, and pool priorities.

An ``async def`` handler runs its first step at once, without a task; one that suspends is
resumed in a task (``_resume``) that must behave exactly like asyncio.Task: context
variables, exceptions from awaited futures, timeouts and cancellation.
"""
import asyncio
import contextvars

import requests

from pixie_web import App, TestClient

REQUEST_ID = contextvars.ContextVar("request_id", default="unset")


def make_app(events):
    app = App()

    @app.route("/immediate")
    async def immediate(request):
        return {"suspended": False}

    @app.route("/suspends")
    async def suspends(request):
        REQUEST_ID.set(request.query.get("id", "?"))
        await asyncio.sleep(0.01)          # a real future
        await asyncio.sleep(0)             # a bare yield
        return {"id": REQUEST_ID.get()}

    @app.route("/future-fails")
    async def future_fails(request):
        await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        loop.call_soon(future.set_exception, KeyError("expected"))
        try:
            await future
        except KeyError as error:
            return {"caught": str(error)}
        return {"caught": None}

    @app.route("/raises-after-await")
    async def raises_after_await(request):
        await asyncio.sleep(0.01)
        raise ValueError("boom")

    @app.route("/too-slow", timeout=0.2)
    async def too_slow(request):
        try:
            await asyncio.sleep(30)
        finally:
            events.append("finally ran")

    @app.route("/gathers")
    async def gathers(request):
        results = await asyncio.gather(*(asyncio.sleep(0.01, result=i) for i in range(5)))
        return {"results": results}

    return app


def test_async_handler_that_never_waits_answers():
    with TestClient(make_app([])) as client:
        reply = client.get("/immediate")
    assert (reply.status, reply.json()) == (200, {"suspended": False})


def test_a_suspended_handler_keeps_its_context_variables_across_awaits():
    with TestClient(make_app([])) as client:
        replies = [client.get(f"/suspends?id=r{i}").json() for i in range(3)]
    assert replies == [{"id": "r0"}, {"id": "r1"}, {"id": "r2"}]
    assert REQUEST_ID.get() == "unset"       # nothing leaked into the caller's context


def test_an_awaited_future_that_fails_raises_inside_the_handler():
    with TestClient(make_app([])) as client:
        reply = client.get("/future-fails")
    assert reply.json() == {"caught": "'expected'"}


def test_an_exception_after_an_await_is_a_500():
    with TestClient(make_app([])) as client:
        reply = client.get("/raises-after-await")
    assert reply.status == 500
    assert "boom" not in reply.text


def test_a_timed_out_handler_is_cancelled_and_its_finally_block_runs():
    events = []
    with TestClient(make_app(events)) as client:
        reply = client.get("/too-slow")
        assert reply.status == 503
        assert client.get("/immediate").status == 200
    assert events == ["finally ran"]


def test_gather_inside_a_resumed_handler_works():
    with TestClient(make_app([])) as client:
        reply = client.get("/gathers")
    assert reply.json() == {"results": [0, 1, 2, 3, 4]}


def server_niceness(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[16])


def test_pool_workers_run_at_a_lower_priority_than_the_server(server_factory):
    server = server_factory("tests.apps.pool_app:app", pure=True, workers=1)
    base = server_niceness(server.pid)
    info = requests.get(server.url + "/pool/info", timeout=30).json()
    assert info["is_pool"] and info["pid"] != server.pid
    assert info["niceness"] == min(base + 10, 19)


def test_pool_niceness_zero_keeps_the_servers_priority(server_factory):
    server = server_factory("tests.apps.pool_app:app", pure=True, workers=1, pool_niceness=0)
    info = requests.get(server.url + "/pool/info", timeout=30).json()
    assert info["is_pool"]
    assert info["niceness"] == server_niceness(server.pid)
