"""Pool routes on an executor the application supplies (``run(executor=...)``, ``App(executor=
...)`` for ASGI and WSGI): a Dask ``distributed`` LocalCluster and loky's reusable pool.

The handler travels by reference (module and name), the request as its snapshot; a streamed
body is collected in the worker and sent back whole (an external executor has no channel
back to the server for chunks).
"""
import textwrap

import pytest
import requests

from tests.support import start_script

DASK_APP = textwrap.dedent("""
    import os, sys
    from distributed import Client, LocalCluster
    from tests.apps.interop_app import app

    if __name__ == "__main__":
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        with Client(cluster) as client:
            print("dask workers:", ",".join(str(pid) for pid in
                                          client.run(os.getpid).values()), flush=True)
            app.run(port=PORT, executor=client.get_executor(), access_log=False)
""")

LOKY_APP = textwrap.dedent("""
    from loky import get_reusable_executor
    from tests.apps.interop_app import app

    if __name__ == "__main__":
        app.run(port=PORT, executor=get_reusable_executor(max_workers=2), access_log=False)
""")


@pytest.mark.parametrize("source", [DASK_APP, LOKY_APP], ids=["dask", "loky"])
def test_pool_routes_and_a_streamed_pool_body_run_on_the_executor(tmp_path, source):
    server = start_script(tmp_path, source)
    try:
        squared = requests.get(server.url + "/pool/9", timeout=60).json()
        assert squared["square"] == 81 and squared["in_pool"] is True
        assert squared["pid"] != server.pid                  # ran in the executor's worker
        if "dask workers:" in server.output():
            workers = server.output().split("dask workers:")[1].split()[0].split(",")
            assert str(squared["pid"]) in workers
        streamed = requests.get(server.url + "/pool-stream/3", timeout=60)
        lines = streamed.text.splitlines()
        assert [line.split(":")[0] for line in lines] == ["0", "1", "2"]
        producers = {line.split(":")[1] for line in lines}
        assert len(producers) == 1 and producers != {str(server.pid)}   # one worker made it
        assert requests.get(server.url + "/", timeout=5).text == "Hello, interop!"
    finally:
        server.stop()


def test_on_loky_a_timeout_and_a_lost_worker_are_503_and_the_server_goes_on(tmp_path):
    server = start_script(tmp_path, LOKY_APP)
    try:
        slow = requests.get(server.url + "/pool-slow", timeout=30)
        assert slow.status_code == 503 and "took too long" in slow.text
        assert requests.get(server.url + "/pool/4", timeout=60).json()["square"] == 16
        crashed = requests.get(server.url + "/pool-crash", timeout=30)
        assert crashed.status_code == 503 and "worker process stopped" in crashed.text
        # a process executor that lost a worker stays broken: 503, and the log says why
        after = requests.get(server.url + "/pool/4", timeout=30)
        assert after.status_code == 503 and "executor given to pixie_web is broken" in \
            server.errors()
        assert requests.get(server.url + "/", timeout=5).text == "Hello, interop!"
    finally:
        server.stop()
