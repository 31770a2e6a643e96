#!/usr/bin/env bash
# Install the test dependencies and run the whole suite (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"
python3 -m pytest -n 2 -q -p no:cacheprovider "$@"
