#!/usr/bin/env python3
"""WebSocket echo benchmark (issue 16): messages per second and latency for small text
messages, on 1 connection and on 100, for pixie_web's built-in server (standard library
build and accelerated build) beside the websockets library's own server and Starlette on
uvicorn, in one run. Run it through run.sh, which installs the peers first:

    bash bench/run.sh ws [--seconds 5] [--repeats 3] [--output FILE]

Each server is one process pinned to CPU 0; the load generator (ws_load.py, raw frames on
uvloop) is pinned to CPU 1. Each figure is the median of the repeats.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

import run as bench     # start/stop of pinned servers, the machine line, versions

PY = sys.executable
SERVERS = [
    ("pixie-pure", "pixie_web built-in server, stdlib only (PIXIE_WEB_PURE=1)",
     [PY, "ws_pixie.py"], {"PIXIE_WEB_PURE": "1"}),
    ("pixie-fast", "pixie_web built-in server with uvloop",
     [PY, "ws_pixie.py"], {"PIXIE_WEB_PURE": ""}),
    ("websockets", "the websockets library's own server (asyncio)",
     [PY, "ws_websockets.py"], {}),
    ("starlette", "Starlette on uvicorn (uvloop, httptools, websockets-sansio)",
     [PY, "-m", "uvicorn", "--host", bench.HOST, "--port", "{port}", "--loop", "uvloop",
      "--http", "httptools", "--ws", "websockets-sansio", "--ws-per-message-deflate",
      "false", "--no-access-log", "--log-level", "warning", "ws_starlette:app"], {}),
]
LOADS = [("1 connection", 1), ("100 connections", 100)]


def measure(port, connections, seconds):
    output = subprocess.run(
        ["taskset", "-c", bench.CLIENT_CPU, PY, os.path.join(bench.BENCH, "ws_load.py"),
         str(port), str(connections), str(seconds)],
        capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    return json.loads(output)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--servers", default=",".join(name for name, *_ in SERVERS))
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    chosen = args.servers.split(",")
    started = datetime.datetime.now()
    results = {}            # (server, load) -> [runs]
    try:
        for repeat in range(args.repeats):
            for name, _, argv, env in SERVERS:
                if name not in chosen:
                    continue
                process, port = bench.start(name, argv, env)
                try:
                    for load, connections in LOADS:
                        run = measure(port, connections, args.seconds)
                        results.setdefault((name, load), []).append(run)
                        print(f"run {repeat + 1} {name:<11} {load:<16} "
                              f"{run['messages_per_s']:>9.0f} msg/s  p99 {run['p99_ms']:.2f} ms",
                              file=sys.stderr, flush=True)
                finally:
                    bench.stop(process)
    finally:
        bench.stop_all()
    text = report(args, started, results, chosen)
    print(text)
    output = args.output or os.path.join(bench.RESULTS, f"{started:%Y-%m-%d}-ws.md")
    with open(output, "w") as file:
        file.write(text)
    with open(os.path.splitext(output)[0] + ".json", "w") as file:
        json.dump({"date": started.isoformat(), "machine": bench.machine_line(),
                   "results": {f"{name} | {load}": runs for (name, load), runs in
                               results.items()}}, file, indent=1)
    return 0


def median(results, name, load, key):
    runs = results.get((name, load))
    return statistics.median(run[key] for run in runs) if runs else None


def report(args, started, results, chosen):
    lines = [f"# WebSocket echo, {started:%Y-%m-%d %H:%M}", "",
             f"`bash bench/run.sh ws --seconds {args.seconds:g} --repeats {args.repeats}` — "
             f"{bench.machine_line()}", "",
             "Small text messages (16 bytes) echoed one at a time per connection; the server "
             "pinned to CPU 0, the load generator (bench/ws_load.py) to CPU 1; medians of "
             f"{args.repeats} runs of {args.seconds:g} s.", "",
             "| server | load | messages/s | p50 ms | p99 ms |", "|---|---|---:|---:|---:|"]
    labels = {name: label for name, label, *_ in SERVERS}
    for name in chosen:
        for load, _ in LOADS:
            rate = median(results, name, load, "messages_per_s")
            if rate is None:
                continue
            lines.append(f"| {name} | {load} | {rate:,.0f} | "
                         f"{median(results, name, load, 'p50_ms'):.3f} | "
                         f"{median(results, name, load, 'p99_ms'):.3f} |")
    lines += ["", "Ratios (messages per second; p99 latency as the peer's ÷ pixie_web's, "
              "so above 1 is better for pixie_web too):", "",
              "| pixie_web build | against | load | throughput ratio | p99 ratio |",
              "|---|---|---|---:|---:|"]
    for ours in ("pixie-pure", "pixie-fast"):
        for theirs in ("websockets", "starlette"):
            for load, _ in LOADS:
                mine = median(results, ours, load, "messages_per_s")
                peer = median(results, theirs, load, "messages_per_s")
                if mine is None or peer is None:
                    continue
                p99 = (median(results, theirs, load, "p99_ms")
                       / median(results, ours, load, "p99_ms"))
                lines.append(f"| {ours} | {theirs} | {load} | {mine / peer:.2f}× | "
                             f"{p99:.2f}× |")
    lines += ["", "Servers:", ""] + [f"- **{name}**: {labels[name]}" for name in chosen]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
