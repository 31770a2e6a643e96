"""Shared by the peer apps: where to listen, and the expected responses.

Every app serves the same three endpoints:
    GET /            text/plain   Hello, World!
    GET /json        JSON         {"message": "Hello, World!"}
    GET /user/<id>   JSON         {"id": <id as an int>}
The driver passes the port in BENCH_PORT; everything listens on 127.0.0.1 only.
"""
import os

HOST = "127.0.0.1"
PORT = int(os.environ.get("BENCH_PORT", "8000"))
# Idle keep-alive connections must survive the memory benchmark (10,000 of them).
KEEPALIVE = float(os.environ.get("BENCH_KEEPALIVE", "120"))
BACKLOG = 2048

PLAINTEXT = "Hello, World!"
JSON_BODY = {"message": "Hello, World!"}
