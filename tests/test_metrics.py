"""The Metrics component: /metrics in the Prometheus text format, read back with
prometheus_client's own parser from a real server process."""
import textwrap

import requests

from tests.support import start_script, wait_for

from prometheus_client import parser as prometheus

SCRIPT = textwrap.dedent('''
    import os
    from pixie_web import App, HTTPError, Metrics, RouteType

    app = App()
    app.install(Metrics())


    @app.route("/")
    def index(request):
        return "ok"


    @app.route("/user/<id:int>")
    async def user(request, id):
        if id == 0:
            raise HTTPError(404, "no such user")
        return {"id": id}


    @app.route("/boom")
    def boom(request):
        raise RuntimeError("a bug")


    def die(request):
        os._exit(1)


    app.route("/die", RouteType.pool)(die)


    @app.route("/task")
    def task(request):
        app.add_task(lambda: None)
        app.add_task(lambda: 1 / 0)
        return "scheduled"


    if __name__ == "__main__":
        app.run(port=PORT, workers=1, access_log=False)
''')


def samples(server):
    reply = requests.get(server.url + "/metrics", timeout=5)
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = {}
    for family in prometheus.text_string_to_metric_families(reply.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_requests_latency_in_flight_pool_and_tasks_are_exposed(tmp_path):
    server = start_script(tmp_path, SCRIPT, pure=True)
    try:
        for _ in range(3):
            requests.get(server.url + "/", timeout=5)
        requests.get(server.url + "/user/7", timeout=5)
        requests.get(server.url + "/user/0", timeout=5)
        requests.get(server.url + "/boom", timeout=5)
        requests.get(server.url + "/nowhere", timeout=5)
        assert requests.get(server.url + "/die", timeout=30).status_code == 503
        requests.get(server.url + "/task", timeout=5)
        wait_for(lambda: samples(server).get(
            ("pixie_tasks_total", (("outcome", "failed"),))) == 1.0)
        found = samples(server)

        def requests_total(route, status, method="GET"):
            key = ("pixie_requests_total",
                   (("method", method), ("route", route), ("status", str(status))))
            return found.get(key)

        assert requests_total("/", 200) == 3.0
        assert requests_total("/user/<id:int>", 200) == 1.0
        assert requests_total("/user/<id:int>", 404) == 1.0
        assert requests_total("/boom", 500) == 1.0
        assert requests_total("<unrouted>", 404) == 1.0
        assert requests_total("/die", 503) == 1.0
        count = found[("pixie_request_duration_seconds_count", (("route", "/"),))]
        infinite = found[("pixie_request_duration_seconds_bucket", (("le", "+Inf"),
                                                                    ("route", "/")))]
        assert count == infinite == 3.0
        assert found[("pixie_request_duration_seconds_sum", (("route", "/"),))] > 0
        assert found[("pixie_requests_in_flight", ())] == 1.0      # the /metrics request
        assert found[("pixie_pool_worker_restarts_total", ())] == 1.0
        assert found[("pixie_pool_queue_depth", ())] == 0.0
        assert found[("pixie_tasks_total", (("outcome", "succeeded"),))] == 1.0
        assert found[("pixie_tasks_total", (("outcome", "failed"),))] == 1.0
    finally:
        server.stop()


SEVERAL = textwrap.dedent('''
    import os
    from pixie_web import App, Metrics

    app = App()
    app.install(Metrics(publish_interval=0.1))


    @app.route("/")
    def index(request):
        return str(os.getpid())


    if __name__ == "__main__":
        app.run(port=PORT, processes=2, workers=0, access_log=False)
''')


def test_with_several_processes_a_scrape_shows_every_process_by_pid(tmp_path):
    server = start_script(tmp_path, SEVERAL, pure=True)
    try:
        answered = {}      # pid -> requests it answered
        for _ in range(200):
            with requests.Session() as fresh:       # a new connection: either child
                pid = fresh.get(server.url + "/", timeout=5).text
            answered[pid] = answered.get(pid, 0) + 1
            if len(answered) == 2 and min(answered.values()) >= 3:
                break
        assert len(answered) == 2, answered

        def by_pid():
            return {labels["pid"]: value for (name, labels_items), value in
                    samples(server).items() if name == "pixie_requests_total"
                    for labels in [dict(labels_items)] if labels["route"] == "/"}
        # whichever child answers the scrape, both children's counts are in it
        wait_for(lambda: by_pid() == {pid: float(count) for pid, count in answered.items()})
        assert str(server.pid) not in by_pid()
        in_flight = {dict(labels)["pid"] for (name, labels) in samples(server)
                     if name == "pixie_requests_in_flight"}
        assert in_flight == set(answered)
    finally:
        server.stop_with_children()
