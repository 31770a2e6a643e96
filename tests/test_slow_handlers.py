"""Seeing what the server does: slow-handler reports in the log (with the pool worker's pid)
and, in debug mode, a Server-Timing header on every response."""
import re
import textwrap

import h11
import requests

from tests.support import Client, descendants_of, start_script, wait_for

SCRIPT = textwrap.dedent('''
    import asyncio
    import os
    import time
    from pixie_web import App, RouteType

    app = App(slow_handler_threshold=0.05)


    def crunch(request, ms):
        time.sleep(ms / 1000)
        return str(os.getpid())


    app.route("/pool/<ms:int>", RouteType.pool)(crunch)
    app.route("/thread/<ms:int>", RouteType.thread)(crunch)


    @app.route("/async/<ms:int>")
    async def wait(request, ms):
        await asyncio.sleep(ms / 1000)
        return "waited"


    @app.route("/fast")
    def fast(request):
        return "fast"


    if __name__ == "__main__":
        app.run(port=PORT, workers=1, access_log=False, debug=DEBUG)
''')

SLOW_LINE = re.compile(r"slow handler: GET (\S+) took (\d+\.\d+)s \(route (\S+), (\w+)"
                       r"(?:, pool worker pid (\d+))?\)")


def start(tmp_path, debug):
    return start_script(tmp_path, SCRIPT.replace("DEBUG", str(debug)), pure=True)


def reports(server):
    return [match.groups() for match in SLOW_LINE.finditer(server.errors())]


def test_handlers_over_the_threshold_are_logged_with_route_type_and_pool_worker(tmp_path):
    server = start(tmp_path, debug=False)
    try:
        worker = requests.get(server.url + "/pool/120", timeout=10).text
        requests.get(server.url + "/thread/80", timeout=10)
        requests.get(server.url + "/async/80", timeout=10)
        for path in ("/pool/0", "/thread/0", "/async/0", "/fast"):
            requests.get(server.url + path, timeout=10)
        wait_for(lambda: len(reports(server)) >= 3)
        found = {report[0]: report for report in reports(server)}
        assert set(found) == {"/pool/120", "/thread/80", "/async/80"}   # not the fast ones
        path, took, route, kind, pid = found["/pool/120"]
        assert (route, kind, pid) == ("/pool/<ms:int>", "pool", worker)
        assert float(took) >= 0.12
        assert int(worker) in descendants_of(server.pid)
        assert found["/thread/80"][2:] == ("/thread/<ms:int>", "thread", None)
        assert found["/async/80"][2:] == ("/async/<ms:int>", "asnc", None)
        assert float(found["/async/80"][1]) >= 0.08
    finally:
        server.stop_with_children()


def timings(response):
    spans = {}
    for part in response.headers["Server-Timing"].split(","):
        name, _, duration = part.strip().partition(";dur=")
        spans[name] = float(duration)
    return spans


def test_debug_mode_times_every_response_in_server_timing(tmp_path):
    server = start(tmp_path, debug=True)
    try:
        slow = timings(requests.get(server.url + "/async/60", timeout=10))
        assert list(slow) == ["parse", "queue", "handler", "write"]
        assert slow["handler"] >= 60.0
        assert all(0.0 <= slow[name] < 50.0 for name in ("parse", "queue", "write"))
        pooled = timings(requests.get(server.url + "/pool/30", timeout=10))
        assert pooled["handler"] >= 30.0
        fast = timings(requests.get(server.url + "/fast", timeout=10))
        assert fast["handler"] < 30.0
        unrouted = requests.get(server.url + "/nowhere", timeout=10)
        assert unrouted.status_code == 404 and "parse" in timings(unrouted)
        # the header is well-formed HTTP: h11 as a strict client reads it
        client = h11.Connection(h11.CLIENT)
        with Client(server.port) as raw:
            raw.send(client.send(h11.Request(method="GET", target="/fast",
                                             headers=[("Host", "x")])))
            event = h11.NEED_DATA
            while event is h11.NEED_DATA:
                client.receive_data(raw.read_some())
                event = client.next_event()
        assert dict(event.headers)[b"server-timing"].startswith(b"parse;dur=")
    finally:
        server.stop_with_children()


def test_without_debug_there_is_no_server_timing_header(tmp_path):
    server = start(tmp_path, debug=False)
    try:
        assert "Server-Timing" not in requests.get(server.url + "/fast", timeout=10).headers
    finally:
        server.stop_with_children()
