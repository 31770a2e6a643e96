#!/usr/bin/env bash
# pixie_web benchmark suite: installs what it needs, then runs bench/run.py.
#   bash bench/run.sh            # full run (3 repeats, 3 s warm-up + 8 s per endpoint)
#   bash bench/run.sh --quick    # about 5 minutes
#   bash bench/run.sh --help     # every option
#   bash bench/run.sh ws         # the WebSocket echo benchmark (bench/ws_echo.py)
#   bash bench/run.sh typed      # the typed endpoint benchmark (bench/typed_bench.py)
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing wrk (Debian package)" >&2
    as_root apt-get update -qq
    as_root apt-get install -y -qq wrk >/dev/null
fi
command -v taskset >/dev/null 2>&1 || { echo "bench: taskset (util-linux) is missing" >&2; exit 1; }

VENV="$BENCH/.venv"
if [ ! -x "$VENV/bin/python" ]; then
    echo "bench: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.requirements-$(sha256sum "$BENCH/requirements.txt" | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
    echo "bench: installing the peers into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$BENCH/requirements.txt"
    touch "$STAMP"
fi

export BENCH_COMMAND="bash bench/run.sh${*:+ $*}"
case "${1:-}" in
    ws) shift; cd "$BENCH" && exec "$VENV/bin/python" "$BENCH/ws_echo.py" "$@" ;;
    typed) shift; cd "$BENCH" && exec "$VENV/bin/python" "$BENCH/typed_bench.py" "$@" ;;
esac
exec "$VENV/bin/python" "$BENCH/run.py" "$@"
