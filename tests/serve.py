"""Start an app in its own process for the wire-level tests.

Usage: python tests/serve.py MODULE:ATTR PORT [JSON_RUN_KWARGS]
The accelerators are chosen by the environment (PIXIE_WEB_PURE=1 turns them off).
"""
import importlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if __name__ == "__main__":
    target, port = sys.argv[1], int(sys.argv[2])
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    module_name, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module_name), attr or "app")
    app.run(host="127.0.0.1", port=port, **options)
