#!/usr/bin/env python3
"""pixie_web benchmark suite (issue 5): throughput against peers, the process pool, memory,
import time. Run it through run.sh, which installs wrk and the peers first:

    bash bench/run.sh [--quick] [--only throughput,ceiling,pool,memory,import] [--servers a,b] ...

Every server listens on 127.0.0.1 on a free port, runs as ONE process pinned to CPU 0,
is driven by wrk pinned to CPU 1, and is stopped by its process id. Results are printed
and written to bench/results/<date>.md (and .json).
"""
import argparse
import datetime
import http.client
import importlib.metadata
import json
import math
import os
import py_compile
import platform
import re
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
APPS = os.path.join(BENCH, "apps")
LOGS = os.path.join(BENCH, ".logs")
RESULTS = os.path.join(BENCH, "results")
PY = sys.executable
BIN = os.path.dirname(PY)
HOST = "127.0.0.1"
SERVER_CPU, CLIENT_CPU = "0", "1"

# ---- the servers ------------------------------------------------------------------------------

UVICORN = [PY, "-m", "uvicorn", "--host", HOST, "--port", "{port}", "--loop", "uvloop",
           "--http", "httptools", "--no-access-log", "--log-level", "warning",
           "--timeout-keep-alive", "120", "--backlog", "2048"]


class Server:
    def __init__(self, name, label, argv, env=None, keepalive=True):
        self.name, self.label, self.argv = name, label, argv
        self.env = env or {}
        self.keepalive = keepalive


SERVERS = [
    Server("raw-asyncio", "raw asyncio.Protocol, canned responses, stdlib loop",
           [PY, "raw_protocol.py", "--loop", "asyncio"]),
    Server("raw-uvloop", "raw asyncio.Protocol, canned responses, uvloop",
           [PY, "raw_protocol.py", "--loop", "uvloop"]),
    Server("pixie-pure", "pixie_web, stdlib only (PIXIE_WEB_PURE=1)",
           [PY, "pixie_app.py"], env={"PIXIE_WEB_PURE": "1"}),
    Server("pixie-fast", "pixie_web with uvloop + ujson",
           [PY, "pixie_app.py"], env={"PIXIE_WEB_PURE": ""}),
    Server("starlette", "Starlette on uvicorn (uvloop, httptools)",
           UVICORN + ["starlette_app:app"]),
    Server("sanic", "Sanic, single process (uvloop)", [PY, "sanic_app.py"]),
    Server("aiohttp", "aiohttp server (uvloop)", [PY, "aiohttp_app.py"]),
    Server("blacksheep", "BlackSheep on uvicorn (uvloop, httptools)",
           UVICORN + ["blacksheep_app:app"]),
    Server("falcon", "Falcon ASGI on uvicorn (uvloop, httptools)",
           UVICORN + ["falcon_app:app"]),
    Server("granian", "raw ASGI app on granian (Rust; 1 worker, uvloop)",
           [os.path.join(BIN, "granian"), "--interface", "asgi", "--host", HOST,
            "--port", "{port}", "--workers", "1", "--loop", "uvloop", "--no-ws",
            "--log-level", "warning", "--backlog", "2048",
            "--backpressure", "16384", "granian_asgi:app"]),
    Server("asgi-uvicorn", "raw ASGI app on uvicorn (uvloop, httptools)",
           UVICORN + ["granian_asgi:app"]),
    Server("pixie-uvicorn", "pixie_web's App as an ASGI app on uvicorn (uvloop, httptools)",
           UVICORN + ["pixie_app:app"], env={"PIXIE_WEB_PURE": ""}),
    Server("pixie-granian", "pixie_web's App as an ASGI app on granian (1 worker, uvloop)",
           [os.path.join(BIN, "granian"), "--interface", "asgi", "--host", HOST,
            "--port", "{port}", "--workers", "1", "--loop", "uvloop", "--no-ws",
            "--log-level", "warning", "--backlog", "2048",
            "--backpressure", "16384", "pixie_app:app"], env={"PIXIE_WEB_PURE": ""}),
    Server("bottle", "bottle on its built-in wsgiref server (HTTP/1.0: no keep-alive)",
           [PY, "bottle_app.py"], keepalive=False),
]
BY_NAME = {server.name: server for server in SERVERS}

ENDPOINTS = {
    "/": ("/", "text/plain", lambda body: body == b"Hello, World!"),
    "/json": ("/json", "application/json",
              lambda body: json.loads(body) == {"message": "Hello, World!"}),
    "/user/<id>": ("/user/123", "application/json", lambda body: json.loads(body) == {"id": 123}),
}

# How wrk's requests carry their headers. Identical header sections flatter a server that
# remembers parsed sections by their bytes; real traffic (many browsers, or a proxy in front)
# differs per request, so "varied" is the headline.
HEADER_MODES = {
    "varied": ("browser-like, different on every request",
               os.path.join(BENCH, "varied_headers.lua")),
    "same": ("the same on every request (wrk's own)", None),
}


def column(endpoint, headers):
    """The name of one throughput measurement: an endpoint under one header mode."""
    return f"{endpoint} [{headers} headers]"


# ---- processes ---------------------------------------------------------------------------------

_running = {}   # pid -> Popen, every server this script started and has not stopped yet


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start(name, argv, env=None, cpu=SERVER_CPU, timeout=30.0):
    """Start a server pinned to `cpu` (None: not pinned); return (Popen, port) once it accepts."""
    port = free_port()
    argv = [arg.replace("{port}", str(port)) for arg in argv]
    if cpu is not None:
        argv = ["taskset", "-c", cpu] + argv
    full_env = dict(os.environ, BENCH_PORT=str(port), PYTHONPATH=APPS,
                    PYTHONUNBUFFERED="1", **(env or {}))
    for key, value in list(full_env.items()):
        if value == "" and key in (env or {}):
            del full_env[key]
    # Bytecode caches as a user has them (see import_ms): otherwise pixie_web.py, the one
    # module outside site-packages, is compiled from source at every start, and the
    # compiler's memory stays in the server's RSS (about 8 MiB for pixie_web).
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    os.makedirs(LOGS, exist_ok=True)
    log = open(os.path.join(LOGS, f"{name}.log"), "wb")
    proc = subprocess.Popen(argv, cwd=APPS, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    _running[proc.pid] = proc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"{name} did not start (see {LOGS}/{name}.log)")


def stop(proc, timeout=10.0):
    """Stop a server we started: SIGTERM to its process group (its id is the server's pid,
    thanks to start_new_session), then SIGKILL if it has not exited in time."""
    _running.pop(proc.pid, None)
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:   # leftovers of the group (pool workers, a forkserver) once the leader is gone
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_all(*_):
    for proc in list(_running.values()):
        stop(proc, timeout=3.0)


def process_tree(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_kib(pid):
    """Resident memory of a process and all its descendants, in KiB."""
    total = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


# ---- HTTP checks and probes ---------------------------------------------------------------

def check(port, endpoint, attempts=3):
    """None if the endpoint answers 200 with the expected body and content type, else why."""
    path, content_type, body_ok = ENDPOINTS[endpoint]
    problem = None
    for attempt in range(attempts):
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            conn.close()
            got_type = response.getheader("Content-Type", "")
            if response.status != 200:
                problem = f"status {response.status}"
            elif not got_type.startswith(content_type):
                problem = f"content-type {got_type!r}"
            elif not body_ok(body):
                problem = f"body {body[:60]!r}"
            else:
                return None
        except Exception as error:   # noqa: BLE001 - any failure is reported, not raised
            problem = f"{type(error).__name__}: {error}"
        time.sleep(0.3 * (attempt + 1))
    return problem


class Probe:
    """One keep-alive connection that times sequential GETs (a light, open-loop-ish load)."""

    def __init__(self, port, extra_headers=b""):
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = f"Host: {HOST}:{port}\r\n".encode()
        self.extra = extra_headers
        self.buffer = b""

    def get(self, path):
        self.sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.host + self.extra +
                          b"\r\n")
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        length = int(match.group(1)) if match else 0
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            rest += chunk
        self.buffer = rest[length:]
        status = int(head[9:12])
        return status, rest[:length]

    def timed(self, path, seconds=None, count=None, interval=0.0):
        """Latencies in seconds of GET path, for `seconds` or `count` requests (both bounded)."""
        latencies = []
        deadline = time.monotonic() + (seconds if seconds is not None else 600)
        limit = count if count is not None else 10 ** 7
        while len(latencies) < limit and time.monotonic() < deadline:
            began = time.perf_counter()
            status, _ = self.get(path)
            latencies.append(time.perf_counter() - began)
            if status != 200:
                raise RuntimeError(f"GET {path}: status {status}")
            if interval:
                time.sleep(interval)
        return latencies

    def close(self):
        self.sock.close()


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# ---- wrk --------------------------------------------------------------------------------------

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk_argv(port, path, seconds, connections, latency=True, cpu=CLIENT_CPU, script=None):
    seconds = max(1, math.ceil(seconds))   # wrk takes whole seconds
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    if latency:
        argv.append("--latency")
    if script:
        argv += ["-s", script]
    argv.append(f"http://{HOST}:{port}{path}")
    return (["taskset", "-c", cpu] + argv) if cpu is not None else argv


def parse_wrk(output):
    result = {"rps": 0.0, "p50": float("nan"), "p99": float("nan"), "errors": 0, "non2xx": 0,
              "requests": 0}
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match:
        result["rps"] = float(match.group(1))
    for key, label in (("p50", "50%"), ("p99", "99%")):
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
        if match:
            result[key] = float(match.group(1)) * _UNITS[match.group(2)]
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      output)
    if match:
        result["errors"] = sum(int(n) for n in match.groups())
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if match:
        result["non2xx"] = int(match.group(1))
    match = re.search(r"(\d+) requests in", output)
    if match:
        result["requests"] = int(match.group(1))
    return result


def run_wrk(port, path, seconds, connections, latency=True, cpu=CLIENT_CPU, script=None):
    argv = wrk_argv(port, path, seconds, connections, latency, cpu, script)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    return parse_wrk(done.stdout)


# ---- 1. throughput ---------------------------------------------------------------------------

def bench_throughput(args, servers, say):
    """results[server][column(endpoint, headers)] = list of per-repeat dicts."""
    results = {s.name: {column(e, h): [] for h in args.headers for e in args.endpoints}
               for s in servers}
    notes = []
    for repeat in range(args.repeats):
        # rotate the order so slow drift of the machine does not favour one server
        order = servers[repeat % len(servers):] + servers[:repeat % len(servers)]
        for server in order:
            say(f"[throughput {repeat + 1}/{args.repeats}] {server.name}")
            try:
                proc, port = start(server.name, server.argv, server.env)
            except RuntimeError as error:
                notes.append(str(error))
                for name in results[server.name]:
                    results[server.name][name].append(None)
                continue
            try:
                for headers, endpoint in ((h, e) for h in args.headers for e in args.endpoints):
                    path, script = ENDPOINTS[endpoint][0], HEADER_MODES[headers][1]
                    name = column(endpoint, headers)
                    problem = check(port, endpoint)
                    if problem is None:
                        if args.warmup > 0:
                            run_wrk(port, path, args.warmup, args.connections, latency=False,
                                    script=script)
                        measured = run_wrk(port, path, args.duration, args.connections,
                                           script=script)
                        after = check(port, endpoint)
                        if after:
                            problem = f"after load: {after}"
                            measured = None
                    else:
                        problem = f"before load: {problem}"
                        measured = None
                    if problem:
                        notes.append(f"{server.name} {name}: {problem}")
                    elif measured["non2xx"]:
                        notes.append(f"{server.name} {name}: {measured['non2xx']} non-2xx "
                                     "responses under load")
                    results[server.name][name].append(measured)
                    if measured:
                        say(f"    {name:<28} {measured['rps']:>10,.0f} req/s  "
                            f"p50 {fmt_ms(measured['p50'])}  p99 {fmt_ms(measured['p99'])}"
                            + (f"  ({measured['errors']} socket errors)"
                               if measured["errors"] else ""))
            finally:
                stop(proc)
    return results, notes


def median_of(values):
    values = [v for v in values if v is not None and v == v]
    return statistics.median(values) if values else None


def summarise_throughput(results, args):
    """Medians per server and endpoint, and the median over repeats of per-repeat ratios."""
    summary = {}
    for name, per_endpoint in results.items():
        summary[name] = {}
        for endpoint, runs in per_endpoint.items():
            entry = {key: median_of([r[key] if r else None for r in runs])
                     for key in ("rps", "p50", "p99")}
            entry["errors"] = sum(r["errors"] for r in runs if r)
            for base in ("raw-asyncio", "raw-uvloop", "starlette", "granian", "asgi-uvicorn"):
                if base in results:
                    ratios = []
                    for mine, theirs in zip(runs, results[base][endpoint]):
                        if mine and theirs and theirs["rps"]:
                            ratios.append(mine["rps"] / theirs["rps"])
                    entry[f"x_{base}"] = median_of(ratios)
            summary[name][endpoint] = entry
    return summary


# ---- 1b. the ceiling, measured in pairs -------------------------------------------------------

CEILING_PAIRS = (("pixie-pure", "raw-asyncio"), ("pixie-fast", "raw-uvloop"))
# pixie_web under an ASGI server, and a raw ASGI app under the same server: the adapter's cost
ADAPTER_PAIRS = (("pixie-uvicorn", "asgi-uvicorn"), ("pixie-granian", "granian"))


def bench_ceiling(args, say):
    """pixie_web against the raw protocol on the same loop, measured in alternating short
    runs, so that each ratio compares two servers seconds apart, not minutes apart.

    Both servers are up at once on CPU 0 (only the one under load uses it). Each round runs
    wrk on one, then on the other, and the order flips every round so that a machine
    getting faster or slower within a round does not favour either.
    results[(mine, base)][endpoint] = list of (mine req/s, base req/s) per round."""
    results, notes = {}, []
    for mine, base in CEILING_PAIRS:
        if mine not in args.servers or base not in args.servers:
            continue
        say(f"[ceiling] {mine} against {base}")
        started = []
        try:
            for name in (mine, base):
                server = BY_NAME[name]
                started.append(start(name, server.argv, server.env))
            ports = {mine: started[0][1], base: started[1][1]}
            per_endpoint = results[(mine, base)] = {}
            for endpoint in args.endpoints:
                path = ENDPOINTS[endpoint][0]
                problems = [f"{name}: {problem}" for name in (mine, base)
                            if (problem := check(ports[name], endpoint))]
                if problems:
                    notes.append(f"ceiling {endpoint}: " + "; ".join(problems))
                    continue
                for name in (mine, base) if args.warmup > 0 else ():
                    run_wrk(ports[name], path, args.warmup, args.connections, latency=False)
                rounds = per_endpoint[endpoint] = []
                for number in range(args.pair_rounds):
                    order = (mine, base) if number % 2 == 0 else (base, mine)
                    rps = {name: run_wrk(ports[name], path, args.pair_duration,
                                         args.connections, latency=False)["rps"]
                           for name in order}
                    rounds.append((rps[mine], rps[base]))
                    say(f"    {endpoint:<10} {mine} {rps[mine]:>9,.0f}  {base} "
                        f"{rps[base]:>9,.0f}  ratio {rps[mine] / max(rps[base], 1):.2f}")
                for name in (mine, base):
                    problem = check(ports[name], endpoint)
                    if problem:
                        notes.append(f"ceiling {endpoint}, {name} after load: {problem}")
                        per_endpoint.pop(endpoint, None)
        except RuntimeError as error:
            notes.append(str(error))
        finally:
            for proc, _ in started:
                stop(proc)
    return results, notes


def summarise_ceiling(results):
    """Per pair and endpoint: median, lowest and highest of the per-round ratios."""
    summary = {}
    for (mine, base), per_endpoint in results.items():
        for endpoint, rounds in per_endpoint.items():
            ratios = sorted(m / b for m, b in rounds if b)
            summary.setdefault(f"{mine}/{base}", {})[endpoint] = {
                "median": median_of(ratios), "low": ratios[0] if ratios else None,
                "high": ratios[-1] if ratios else None, "rounds": len(ratios)}
    return summary


# ---- 2. the process pool ------------------------------------------------------------------

def calibrate_burn(target_seconds=0.010):
    """n such that burn(n) takes `target_seconds` of CPU time (process time, so that other
    load on the machine does not skew it)."""
    sys.path.insert(0, APPS)
    from cpuwork import burn
    n = 100_000
    for _ in range(3):
        best = min(_cpu_time(burn, n) for _ in range(7))
        n = max(1000, int(n * target_seconds / best))
    return n, min(_cpu_time(burn, n) for _ in range(7))


def _cpu_time(func, *args):
    began = time.process_time()
    func(*args)
    return time.process_time() - began


def bench_pool(args, say):
    out = {}
    n, burn_seconds = calibrate_burn()
    out["burn_n"], out["burn_ms"] = n, burn_seconds * 1e3
    say(f"[pool] CPU route: burn({n}) = {burn_seconds * 1e3:.1f} ms; 2 workers; "
        "server and workers not pinned (they need both cores)")
    env = {"BENCH_WORKERS": "2"}
    proc, port = start("pixie-pool", [PY, "pool_app.py"], env, cpu=None)
    try:
        probe = Probe(port)
        for path, want in (("/async", b"ok"), (f"/cpu_pool/{n}", b"done"),
                           (f"/cpu_sync/{n}", b"done"), ("/trivial_pool", b"ok"),
                           ("/trivial_sync", b"ok")):
            status, body = probe.get(path)
            if status != 200 or body != want:
                raise RuntimeError(f"pool app: GET {path} gave {status} {body[:60]!r}")
        seconds = args.pool_duration
        interval = 0.005

        # (a) latency of an async route: idle, pool saturated, same CPU work as sync
        probe.timed("/async", count=200)
        idle = probe.timed("/async", seconds=seconds, interval=interval)
        out["a_idle"] = latency_summary(idle)
        for label, path in (("a_pool", f"/cpu_pool/{n}"), ("a_sync", f"/cpu_sync/{n}")):
            load = subprocess.Popen(wrk_argv(port, path, seconds + 2, 8, latency=False, cpu=None),
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                time.sleep(1.0)
                latencies = probe.timed("/async", seconds=seconds, interval=interval)
                output, _ = load.communicate(timeout=seconds + 30)
            finally:
                if load.poll() is None:
                    load.kill()
                    load.wait()
            out[label] = latency_summary(latencies)
            out[label]["load_rps"] = parse_wrk(output)["rps"]
        say(f"    (a) /async p99: idle {fmt_ms(out['a_idle']['p99'])}, pool saturated "
            f"{fmt_ms(out['a_pool']['p99'])}, sync CPU route {fmt_ms(out['a_sync']['p99'])}")

        # (b) throughput of the CPU route: pool (2 workers) vs sync
        for label, path in (("b_pool", f"/cpu_pool/{n}"), ("b_sync", f"/cpu_sync/{n}")):
            run_wrk(port, path, 1, 8, latency=False, cpu=None)
            out[label] = run_wrk(port, path, seconds, 8, cpu=None)
        out["b_bare"] = bare_pool("throughput", n, seconds)
        say(f"    (b) CPU route: pool {out['b_pool']['rps']:.1f} req/s, "
            f"sync {out['b_sync']['rps']:.1f} req/s; bare executor "
            f"{out['b_bare']['rps']:.1f} tasks/s")

        # (c) round trip of a trivial pool route vs a bare executor round trip
        probe.close()
        probe = Probe(port)     # the first one may have idled past the keep-alive timeout
        count = args.roundtrips
        for path in ("/trivial_sync", "/trivial_pool"):
            probe.timed(path, count=100)
        trivial_sync = statistics.median(probe.timed("/trivial_sync", count=count))
        trivial_pool = statistics.median(probe.timed("/trivial_pool", count=count))
        bare = bare_pool("roundtrip", count)
        out["c"] = {"sync_us": trivial_sync * 1e6, "pool_us": trivial_pool * 1e6,
                    "overhead_us": (trivial_pool - trivial_sync) * 1e6, **bare}
        say(f"    (c) trivial pool route {out['c']['pool_us']:.0f} us, sync route "
            f"{out['c']['sync_us']:.0f} us, bare submit {bare['blocking_us']:.0f} us")
        probe.close()

        # (d) bytes crossing the process boundary per typical GET (curl's headers)
        curl = Probe(port, b"User-Agent: curl/8.5.0\r\nAccept: */*\r\n")
        curl.get("/_bench/bytes/reset")
        requests = 100
        for _ in range(requests):
            curl.get("/trivial_pool")
        _, body = curl.get("/_bench/bytes")
        counts = json.loads(body)
        _, body = curl.get("/_bench/snapshot")
        curl.close()
        out["d"] = {"to_worker": counts["sent"] / requests,
                    "from_worker": counts["received"] / requests,
                    "messages_to_worker": counts["sends"] / requests,
                    "snapshot": json.loads(body).get("snapshot")}
        say(f"    (d) {out['d']['to_worker']:.0f} bytes to the worker, "
            f"{out['d']['from_worker']:.0f} back, per request")
    finally:
        stop(proc)
    return out


def bare_pool(*arguments):
    done = subprocess.run([PY, os.path.join(BENCH, "bare_pool.py")] + [str(a) for a in arguments],
                          cwd=BENCH, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"bare_pool.py failed: {done.stderr[-500:]}")
    return json.loads(done.stdout)


def latency_summary(latencies):
    return {"n": len(latencies), "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99)}


# ---- 3. memory -------------------------------------------------------------------------------

def bench_memory(args, servers, say):
    out, notes = {}, []
    for server in servers:
        say(f"[memory] {server.name}")
        try:
            proc, port = start(server.name, server.argv, server.env)
        except RuntimeError as error:
            notes.append(str(error))
            continue
        try:
            for endpoint in ENDPOINTS:
                problem = check(port, endpoint)
                if problem:
                    notes.append(f"memory, {server.name} {endpoint}: {problem}")
            time.sleep(1.0)
            entry = {"idle_kib": rss_kib(proc.pid)}
            out[server.name] = entry
            if not server.keepalive or args.connections_idle <= 0:
                say(f"    idle {entry['idle_kib'] / 1024:.1f} MiB")
                continue
            fds_before = open_fds(proc.pid)
            holder = subprocess.Popen(
                ["taskset", "-c", CLIENT_CPU, PY, os.path.join(BENCH, "conn_holder.py"),
                 str(port), str(args.connections_idle), "120"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True)
            try:
                ready, _, _ = select.select([holder.stdout], [], [], 100)
                line = holder.stdout.readline() if ready else ""
                if not line.startswith("READY"):
                    notes.append(f"memory, {server.name}: connections not ready ({line!r})")
                    continue
                opened, failed = (int(x) for x in line.split()[1:3])
                time.sleep(1.0)
                entry["held_kib"] = rss_kib(proc.pid)
                entry["connections"] = opened
                entry["failed"] = failed
                entry["server_fds"] = open_fds(proc.pid) - fds_before
                alive = check(port, "/") is None
                entry["per_conn_bytes"] = ((entry["held_kib"] - entry["idle_kib"]) * 1024
                                           / max(1, opened))
                if failed:
                    notes.append(f"memory, {server.name}: {failed} of "
                                 f"{args.connections_idle} connections failed")
                if not alive:
                    notes.append(f"memory, {server.name}: not answering with the connections held")
                say(f"    idle {entry['idle_kib'] / 1024:.1f} MiB; {opened} idle connections "
                    f"(server fds +{entry['server_fds']}): "
                    f"{entry['per_conn_bytes'] / 1024:.2f} KiB each")
            finally:
                try:
                    holder.stdin.write("\n")
                    holder.stdin.flush()
                except OSError:
                    pass
                try:
                    holder.wait(30)
                except subprocess.TimeoutExpired:
                    holder.kill()
                    holder.wait()
        finally:
            stop(proc)
    return out, notes


# ---- 4. import time --------------------------------------------------------------------------

IMPORTS = [
    ("pixie_web (stdlib only)", "pixie_web", {"PIXIE_WEB_PURE": "1"}),
    ("pixie_web (accelerated)", "pixie_web", {}),
    ("bottle", "bottle", {}),
    ("flask", "flask", {}),
    ("starlette (starlette.applications)", "starlette.applications", {}),
]


def import_ms(module, env):
    """Sum of the top-level cumulative times that -X importtime reports for `import module`."""
    code = f"import sys; sys.stderr.write('@@MARK@@\\n'); import {module}"
    full_env = dict(os.environ, **env)
    full_env.pop("PYTHONPATH", None)
    # Bytecode caches as a user has them: with PYTHONDONTWRITEBYTECODE set (some CI images
    # set it), a module outside site-packages would be compiled from source on every run
    # while the installed peers load their .pyc files.
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not env.get("PIXIE_WEB_PURE"):
        full_env.pop("PIXIE_WEB_PURE", None)
    done = subprocess.run([PY, "-X", "importtime", "-c", code], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=60)
    if done.returncode:
        raise RuntimeError(f"import {module}: {done.stderr[-300:]}")
    total, seen = 0, False
    for line in done.stderr.splitlines():
        if line == "@@MARK@@":
            seen = True
            continue
        if seen and line.startswith("import time:"):
            fields = line.split("|")
            name = fields[2][1:]
            if not name.startswith(" ") and fields[1].strip().isdigit():
                total += int(fields[1])
    return total / 1000.0


def bench_import(args, say):
    """Runs interleaved (one of each module per round) so drift hits every module alike."""
    for label, module, env in IMPORTS:
        import_ms(module, env)          # compile .pyc first
    runs = {label: [] for label, _, _ in IMPORTS}
    for _ in range(args.import_runs):
        for label, module, env in IMPORTS:
            runs[label].append(import_ms(module, env))
    out = {}
    for label, times in runs.items():
        out[label] = {"median_ms": statistics.median(times), "min_ms": min(times)}
        say(f"[import] {label}: {out[label]['median_ms']:.1f} ms")
    return out


# ---- report ----------------------------------------------------------------------------------

def fmt_ms(seconds):
    if seconds is None or seconds != seconds:
        return "n/a"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1e3:.2f} ms"


def fmt_x(ratio):
    return "n/a" if ratio is None else f"{ratio:.2f}×"


def fmt_n(value, digits=0):
    return "n/a" if value is None else f"{value:,.{digits}f}"


def machine_line():
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()[1]
    except (OSError, IndexError):
        wrk = "?"
    return (f"{model}, {os.cpu_count()} cores; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; wrk {wrk}")


def versions():
    names = ["starlette", "uvicorn", "sanic", "aiohttp", "blacksheep", "falcon", "granian",
             "bottle", "flask", "uvloop", "httptools", "ujson"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def met(value, ok):
    if value is None:
        return "n/a"
    return "yes" if ok else "**no**"


def report(args, started, command, throughput, ceiling, pool, memory, imports, notes, load):
    lines = [f"# pixie_web benchmark — {started:%Y-%m-%d %H:%M} UTC", "",
             f"- Machine: {machine_line()}",
             f"- Load average (1 min) at start / end: {load[0]:.2f} / {load[1]:.2f}"
             + (" — other processes were busy; absolute numbers suffer, ratios less"
                if max(load) > 1.0 else ""),
             f"- Command: `{command}`",
             f"- Date: {started:%Y-%m-%d %H:%M:%S} UTC",
             f"- Peers: {versions()}"]
    pixie_rev = git_revision()
    if pixie_rev:
        lines.append(f"- pixie_web: commit {pixie_rev}")
    lines.append("")
    targets = []
    if throughput:
        lines += [f"## Throughput (`wrk -t1 -c{args.connections}`, keep-alive; server: one "
                  f"process on CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU}; warm-up "
                  f"{args.warmup} s, then {args.duration} s; median of {args.repeats} "
                  f"run{'s' if args.repeats > 1 else ''})", "",
                  "Ratios are taken within each run, then the median over runs.", ""]
        for headers, endpoint in ((h, e) for h in args.headers for e in args.endpoints):
            lines += [f"### `{endpoint}`, headers {HEADER_MODES[headers][0]}", "",
                      "| server | req/s | p50 | p99 | × raw asyncio | × raw uvloop | × starlette "
                      "| × granian |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for name in throughput:
                entry = throughput[name][column(endpoint, headers)]
                lines.append(
                    f"| {name} | {fmt_n(entry['rps'])} | {fmt_ms(entry['p50'])} | "
                    f"{fmt_ms(entry['p99'])} | {fmt_x(entry.get('x_raw-asyncio'))} | "
                    f"{fmt_x(entry.get('x_raw-uvloop'))} | {fmt_x(entry.get('x_starlette'))} | "
                    f"{fmt_x(entry.get('x_granian'))} |")
            lines.append("")
        adapters = [(mine, base) for mine, base in ADAPTER_PAIRS
                    if mine in throughput and base in throughput]
        if adapters:
            lines += ["### The ASGI adapter: pixie_web's App ÷ a raw ASGI app on the same server",
                      "", "| pair | " + " | ".join(f"`{e}` {h}" for h in args.headers
                                                   for e in args.endpoints) + " |",
                      "|---|" + "---:|" * (len(args.headers) * len(args.endpoints))]
            for mine, base in adapters:
                ratios = [throughput[mine][column(e, h)].get(f"x_{base}")
                          for h in args.headers for e in args.endpoints]
                lines.append(f"| {mine} ÷ {base} | " + " | ".join(fmt_x(r) for r in ratios)
                             + " |")
            lines.append("")
        lines += ["Servers:", ""]
        lines += [f"- **{name}**: {BY_NAME[name].label}" for name in throughput]
        lines.append("")
    if ceiling:
        lines += [f"## The ceiling, in pairs ({args.pair_rounds} alternating rounds of "
                  f"{args.pair_duration} s per endpoint, both servers up on CPU "
                  f"{SERVER_CPU}, wrk on CPU {CLIENT_CPU})", "",
                  "Each round loads one server, then the other (the order flips every round), "
                  "so each ratio compares runs seconds apart. The raw-ceiling targets are "
                  "judged on these medians.", "",
                  "| pair | endpoint | median ratio | lowest | highest | rounds |",
                  "|---|---|---:|---:|---:|---:|"]
        for pair, per_endpoint in ceiling.items():
            for endpoint, entry in per_endpoint.items():
                lines.append(f"| {pair.replace('/', ' ÷ ')} | `{endpoint}` | "
                             f"{fmt_x(entry['median'])} | {fmt_x(entry['low'])} | "
                             f"{fmt_x(entry['high'])} | {entry['rounds']} |")
        lines.append("")
    for mine, base, goal, headers in (("pixie-pure", "starlette", 2.0, "varied"),
                                      ("pixie-fast", "granian", 1.0, "varied"),
                                      ("pixie-pure", "starlette", 2.5, "same"),
                                      ("pixie-pure", "raw-asyncio", 0.5, "same"),
                                      ("pixie-fast", "raw-uvloop", 0.6, "same")):
        if headers not in args.headers:
            continue
        # the ceiling pairs are measured with wrk's own (identical) headers
        paired = (ceiling or {}).get(f"{mine}/{base}") if headers == "same" else None
        table = (throughput and mine in throughput and base in throughput
                 and [throughput[mine][column(e, headers)].get(f"x_{base}")
                      for e in args.endpoints])
        if paired:
            ratios = [paired.get(e, {}).get("median") for e in args.endpoints]
            shown = "in pairs " + " / ".join(fmt_x(r) for r in ratios)
            if table:
                shown += " (throughput table " + " / ".join(fmt_x(r) for r in table) + ")"
        elif table:
            ratios, shown = table, " / ".join(fmt_x(r) for r in table)
        else:
            continue
        ok = all(r is not None and r >= goal for r in ratios)
        targets.append((f"{mine} ≥ {goal}× {base}, {headers} headers "
                        f"({', '.join(args.endpoints)})", shown, met(ratios[0], ok)))
    if pool:
        a_ratio = pool["a_pool"]["p99"] / pool["a_idle"]["p99"]
        b_ratio = pool["b_pool"]["rps"] / pool["b_sync"]["rps"] if pool["b_sync"]["rps"] else None
        c = pool["c"]
        c_ratio = c["overhead_us"] / c["blocking_us"]
        lines += [f"## Process pool (2 workers, default start method; server and workers "
                  f"unpinned; {args.pool_duration} s per measurement)", "",
                  f"CPU-bound route: `burn({pool['burn_n']})` ≈ {pool['burn_ms']:.1f} ms.", "",
                  "(a) Latency of an async route (one keep-alive client, a request every 5 ms) "
                  "while `wrk -c8` keeps the CPU route busy:", "",
                  "| condition | samples | p50 | p99 | × idle p99 | CPU route req/s |",
                  "|---|---:|---:|---:|---:|---:|"]
        for label, key in (("idle", "a_idle"), ("CPU route as `pool`, saturated", "a_pool"),
                           ("CPU route as `sync`", "a_sync")):
            entry = pool[key]
            lines.append(f"| {label} | {entry['n']} | {fmt_ms(entry['p50'])} | "
                         f"{fmt_ms(entry['p99'])} | "
                         f"{fmt_x(entry['p99'] / pool['a_idle']['p99'])} | "
                         f"{fmt_n(entry.get('load_rps'), 1) if 'load_rps' in entry else ''} |")
        lines += ["", "(b) Throughput of the CPU route, `wrk -c8`:", "",
                  "| route type | req/s | p50 | p99 |", "|---|---:|---:|---:|"]
        for label, key in (("pool (2 workers)", "b_pool"), ("sync", "b_sync")):
            entry = pool[key]
            lines.append(f"| {label} | {entry['rps']:.1f} | {fmt_ms(entry['p50'])} | "
                         f"{fmt_ms(entry['p99'])} |")
        lines += [f"| reference: bare `ProcessPoolExecutor`, 2 workers, 8 in flight | "
                  f"{pool['b_bare']['rps']:.1f} | | |",
                  "", f"pool / sync = {fmt_x(b_ratio)}", "",
                  f"(c) Round trip, median of {args.roundtrips} sequential requests:", "",
                  "| what | median |", "|---|---:|",
                  f"| GET trivial `sync` route | {c['sync_us']:.0f} µs |",
                  f"| GET trivial `pool` route | {c['pool_us']:.0f} µs |",
                  f"| pool overhead (pool − sync) | {c['overhead_us']:.0f} µs |",
                  f"| bare `ProcessPoolExecutor.submit(f).result()` ({c['start_method']}) | "
                  f"{c['blocking_us']:.0f} µs |",
                  f"| bare `await wrap_future(submit(f))` in asyncio | {c['asyncio_us']:.0f} µs |",
                  "", f"pool overhead / bare submit = {fmt_x(c_ratio)}", "",
                  "(d) Bytes over the pool's pipes per typical GET (curl's headers), counted in "
                  "the server process:", "",
                  f"- to the worker: {pool['d']['to_worker']:.0f} bytes "
                  f"({pool['d']['messages_to_worker']:.1f} messages); pickled request snapshot "
                  f"alone: {pool['d']['snapshot']} bytes",
                  f"- back from the worker: {pool['d']['from_worker']:.0f} bytes", ""]
        targets += [
            ("async p99 with the pool saturated ≤ 2× idle p99", fmt_x(a_ratio),
             met(a_ratio, a_ratio <= 2.0)),
            ("10 ms CPU route, 2 pool workers ≥ 1.7× sync", fmt_x(b_ratio),
             met(b_ratio, b_ratio is not None and b_ratio >= 1.7)),
            ("trivial pool round trip ≤ 1.3× bare executor round trip", fmt_x(c_ratio),
             met(c_ratio, c_ratio <= 1.3)),
        ]
    if memory:
        lines += [f"## Memory (RSS of the server's process tree; {args.connections_idle} idle "
                  "keep-alive connections, each after one request, opened by a separate process)",
                  "",
                  "| server | idle RSS | RSS with the connections | per connection |",
                  "|---|---:|---:|---:|"]
        for name, entry in memory.items():
            per = entry.get("per_conn_bytes")
            lines.append(
                f"| {name} | {entry['idle_kib'] / 1024:.1f} MiB | "
                + (f"{entry['held_kib'] / 1024:.1f} MiB ({entry['connections']} open)"
                   if "held_kib" in entry else "n/a") + " | "
                + (f"{per / 1024:.2f} KiB" if per is not None else "n/a") + " |")
        lines.append("")
        for name in ("pixie-pure", "pixie-fast"):
            if name in memory:
                entry = memory[name]
                per = entry.get("per_conn_bytes")
                targets.append((f"{name}: ≤ 4 KB per idle keep-alive connection",
                                "n/a" if per is None else f"{per / 1000:.2f} KB",
                                met(per, per is not None and per <= 4000)))
                targets.append((f"{name}: idle server ≤ 20 MB RSS",
                                f"{entry['idle_kib'] * 1024 / 1e6:.1f} MB",
                                met(entry["idle_kib"], entry["idle_kib"] * 1024 <= 20e6)))
    if imports:
        lines += [f"## Import time (`python -X importtime`, median of {args.import_runs} runs)",
                  "", "| module | median | min |", "|---|---:|---:|"]
        for label, entry in imports.items():
            lines.append(f"| {label} | {entry['median_ms']:.1f} ms | {entry['min_ms']:.1f} ms |")
        lines.append("")
        bottle = imports.get("bottle", {}).get("median_ms")
        for label in ("pixie_web (stdlib only)", "pixie_web (accelerated)"):
            if label in imports and bottle:
                mine = imports[label]["median_ms"]
                targets.append((f"import {label} ≤ bottle", f"{mine:.1f} ms vs {bottle:.1f} ms",
                                met(mine, mine <= bottle)))
    if targets:
        lines += ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {t} | {m} | {ok} |" for t, m, ok in targets]
        lines.append("")
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)


def git_revision():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "pixie_web.py"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + (" (pixie_web.py modified)" if dirty else "") if rev else ""
    except OSError:
        return ""


# ---- main ------------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="about 5 minutes: 1 run, 1 s warm-up + 3 s per endpoint, "
                             "shorter pool, memory and import runs")
    parser.add_argument("--only", default="throughput,ceiling,pool,memory,import",
                        help="comma-separated sections (default: all)")
    parser.add_argument("--servers", default=",".join(s.name for s in SERVERS),
                        help="comma-separated servers (default: all): "
                             + ", ".join(s.name for s in SERVERS))
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS),
                        help="comma-separated endpoints (default: all)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per endpoint (3; 0: none)")
    parser.add_argument("--duration", type=int, help="measured seconds per endpoint (8)")
    parser.add_argument("--repeats", type=int, help="runs over all servers (3)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--headers", default="varied,same",
                        help="header modes of the throughput section, comma-separated: varied "
                             "(browser-like, different on every request) and/or same (default: "
                             "both)")
    parser.add_argument("--pair-rounds", type=int,
                        help="alternating rounds per endpoint in the ceiling section (7)")
    parser.add_argument("--pair-duration", type=int,
                        help="seconds of each run in a ceiling round (3)")
    parser.add_argument("--pool-duration", type=int, help="seconds per pool measurement (8)")
    parser.add_argument("--roundtrips", type=int, help="sequential requests for (c) (2000)")
    parser.add_argument("--connections-idle", type=int, default=10_000,
                        help="idle keep-alive connections for the memory test (10000)")
    parser.add_argument("--import-runs", type=int, help="runs per module (9)")
    parser.add_argument("--output", help="markdown file (default bench/results/<date>.md)")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {"warmup": (3, 1), "duration": (8, 3), "repeats": (3, 1),
                "pool_duration": (8, 3), "roundtrips": (2000, 500), "import_runs": (9, 5),
                "pair_rounds": (7, 3), "pair_duration": (3, 2)}
    for key, (full, fast) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, fast if quick else full)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    args.headers = [h.strip() for h in args.headers.split(",") if h.strip()]
    for headers in args.headers:
        if headers not in HEADER_MODES:
            parser.error(f"unknown header mode {headers!r}: use varied and/or same")
    for name in args.servers:
        if name not in BY_NAME:
            parser.error(f"unknown server {name!r}")
    for endpoint in args.endpoints:
        if endpoint not in ENDPOINTS:
            parser.error(f"unknown endpoint {endpoint!r}")
    for section in args.only:
        if section not in ("throughput", "ceiling", "pool", "memory", "import"):
            parser.error(f"unknown section {section!r}")
    return args


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    command = os.environ.get("BENCH_COMMAND") or " ".join(
        ["python", "bench/run.py"] + sys.argv[1:])
    started = datetime.datetime.now(datetime.timezone.utc)
    if os.cpu_count() < 2:
        print("bench: needs 2 cores (server on CPU 0, wrk on CPU 1)", file=sys.stderr)
        return 2
    nofile = raise_nofile()        # servers inherit it; the memory test needs ~10k fds
    if "memory" in args.only and nofile < args.connections_idle + 256:
        print(f"bench: RLIMIT_NOFILE hard limit is {nofile}; using "
              f"{nofile - 256} idle connections", file=sys.stderr)
        args.connections_idle = max(0, nofile - 256)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: (stop_all(), sys.exit(130)))
    py_compile.compile(os.path.join(REPO, "pixie_web.py"))   # its .pyc, as after a first run

    def say(text):
        print(text, file=sys.stderr, flush=True)

    servers = [BY_NAME[name] for name in args.servers]
    throughput = ceiling = pool = memory = imports = None
    notes = []
    began = time.monotonic()
    load_at_start = os.getloadavg()[0]
    try:
        if "throughput" in args.only:
            raw, more = bench_throughput(args, servers, say)
            throughput = summarise_throughput(raw, args)
            notes += more
        if "ceiling" in args.only:
            raw, more = bench_ceiling(args, say)
            ceiling = summarise_ceiling(raw)
            notes += more
        if "pool" in args.only:
            pool = bench_pool(args, say)
        if "memory" in args.only:
            memory, more = bench_memory(args, servers, say)
            notes += more
        if "import" in args.only:
            imports = bench_import(args, say)
    finally:
        stop_all()
    say(f"total {time.monotonic() - began:.0f} s")
    load = (load_at_start, os.getloadavg()[0])
    text = report(args, started, command, throughput, ceiling, pool, memory, imports, notes,
                  load)
    print(text)
    output = args.output or os.path.join(
        RESULTS, f"{started:%Y-%m-%d}{'-quick' if args.quick else ''}.md")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        f.write(text)
    with open(os.path.splitext(output)[0] + ".json", "w") as f:
        json.dump({"command": command, "date": started.isoformat(), "machine": machine_line(),
                   "load_average": load,
                   "throughput": throughput, "ceiling": ceiling, "pool": pool, "memory": memory,
                   "imports": imports, "notes": notes}, f, indent=1, default=str)
    say(f"written to {os.path.relpath(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
