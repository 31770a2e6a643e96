#!/usr/bin/env python3
"""The typed endpoint benchmark (issue 17): a POST with three query parameters and a small
JSON body bound to a dataclass, in pixie_web with typed parameters, the same endpoint
written by hand in pixie_web, and FastAPI (Pydantic v2) on uvicorn, in one run:

    bash bench/run.sh typed [--seconds 5] [--repeats 3] [--output FILE]

One server process pinned to CPU 0, wrk -t1 -c64 pinned to CPU 1 with bench/typed.lua (the
request id changes on every request); each figure is the median of the repeats.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

import run as bench

PY = sys.executable
SERVERS = [   # (name, label, argv, env, path)
    ("pixie-pure typed", "pixie_web typed parameters, stdlib only",
     [PY, "typed_pixie.py"], {"PIXIE_WEB_PURE": "1"}, "/typed"),
    ("pixie-pure hand", "pixie_web, the same endpoint by hand, stdlib only",
     [PY, "typed_pixie.py"], {"PIXIE_WEB_PURE": "1"}, "/hand"),
    ("pixie-fast typed", "pixie_web typed parameters, uvloop + ujson",
     [PY, "typed_pixie.py"], {"PIXIE_WEB_PURE": ""}, "/typed"),
    ("pixie-fast hand", "pixie_web, the same endpoint by hand, uvloop + ujson",
     [PY, "typed_pixie.py"], {"PIXIE_WEB_PURE": ""}, "/hand"),
    ("fastapi", "FastAPI (Pydantic v2) on uvicorn (uvloop, httptools)",
     bench.UVICORN + ["typed_fastapi:app"], {}, "/typed"),
]
EXPECTED = {"name": "widget", "total": 28.5, "limit": 20, "active": True}


def check(port, path):
    """The endpoint answers the benchmark's request as expected (before the load)."""
    output = subprocess.run(
        ["curl", "-s", "-X", "POST", "-H", "Content-Type: application/json", "-d",
         '{"name":"widget","qty":3,"price":9.5}',
         f"http://{bench.HOST}:{port}{path}?limit=20&offset=7&active=true"],
        capture_output=True, text=True, timeout=10).stdout
    answer = json.loads(output)
    if {key: answer.get(key) for key in EXPECTED} != EXPECTED or answer.get("offset") != 7:
        raise RuntimeError(f"{path} answered {output!r}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    started = datetime.datetime.now()
    script = os.path.join(bench.BENCH, "typed.lua")
    results = {}
    try:
        for repeat in range(args.repeats):
            for name, _, argv_, env, path in SERVERS:
                process, port = bench.start(name.replace(" ", "-"), argv_, env)
                try:
                    check(port, path)
                    bench.run_wrk(port, path, 1, 64, False, script=script)     # warm-up
                    run = bench.run_wrk(port, path, args.seconds, 64, script=script)
                    results.setdefault(name, []).append(run)
                    print(f"run {repeat + 1} {name:<17} {run['rps']:>9.0f} req/s "
                          f"p99 {run['p99'] * 1000:.2f} ms errors {run['errors']} "
                          f"non-2xx {run['non2xx']}", file=sys.stderr, flush=True)
                finally:
                    bench.stop(process)
    finally:
        bench.stop_all()
    text = report(args, started, results)
    print(text)
    output = args.output or os.path.join(bench.RESULTS, f"{started:%Y-%m-%d}-typed.md")
    with open(output, "w") as file:
        file.write(text)
    with open(os.path.splitext(output)[0] + ".json", "w") as file:
        json.dump({"date": started.isoformat(), "machine": bench.machine_line(),
                   "results": results}, file, indent=1)
    return 0


def report(args, started, results):
    def rps(name):
        return statistics.median(run["rps"] for run in results[name])
    lines = [f"# Typed endpoint, {started:%Y-%m-%d %H:%M}", "",
             f"`bash bench/run.sh typed --seconds {args.seconds:g} --repeats {args.repeats}`"
             f" — {bench.machine_line()}", "",
             "POST /typed?limit=20&offset=N&active=true with `{\"name\":\"widget\",\"qty\":3,"
             "\"price\":9.5}` bound to a dataclass (FastAPI: a Pydantic model); wrk -t1 -c64 "
             f"with bench/typed.lua; medians of {args.repeats} runs of {args.seconds:g} s.", "",
             "| server | req/s | p99 ms |", "|---|---:|---:|"]
    for name, *_ in SERVERS:
        if name in results:
            p99 = statistics.median(run["p99"] for run in results[name]) * 1000
            lines.append(f"| {name} | {rps(name):,.0f} | {p99:.2f} |")
    lines += ["", "| ratio | value | target |", "|---|---:|---|"]
    for build in ("pixie-pure", "pixie-fast"):
        typed, hand = f"{build} typed", f"{build} hand"
        if typed in results and hand in results:
            lines.append(f"| {typed} ÷ {hand} | {rps(typed) / rps(hand):.2f}× | ≥ 0.85× |")
        if typed in results and "fastapi" in results:
            lines.append(f"| {typed} ÷ fastapi | {rps(typed) / rps('fastapi'):.2f}× | ≥ 2.0× |")
    lines += ["", "Servers:", ""] + [f"- **{name}**: {label}" for name, label, *_ in SERVERS]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
