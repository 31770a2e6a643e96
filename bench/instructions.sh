#!/usr/bin/env bash
# Instructions per request (callgrind), stdlib build: (N=4000 - N=1000) / 3000 requests fed
# to HTTPProtocol.data_received by bench/feed_requests.py. Repeatable whatever else runs.
#   bash bench/instructions.sh [REPO] [PATH] [varied|same]     (defaults: this checkout, /, varied)
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="${1:-$BENCH/..}"; TARGET="${2:-/}"; MODE="${3:-varied}"
PY="$(python3 -c 'import sys, os; print(os.path.realpath(sys.executable))')"   # not a pyenv shim
command -v valgrind >/dev/null || { echo "needs valgrind (Debian package)" >&2; exit 1; }
count() {
    PIXIE_WEB_PURE=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$PY" "$BENCH/feed_requests.py" "$REPO" "$TARGET" "$MODE" "$1" 2>&1 | awk '/Collected/{print $4}'
}
small=$(count 1000); large=$(count 4000)
echo "$REPO $TARGET $MODE: $(( (large - small) / 3000 )) instructions per request"
