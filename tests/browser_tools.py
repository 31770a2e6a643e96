"""Helpers for the message board tests: a msgboard.py server process, a tiny PNG
generator, and a headless Chromium driven by Playwright.

The server runs ``python msgboard.py`` on 127.0.0.1 (a free port) with its database,
uploads and secret in a temporary directory, and is stopped by pid.
"""
import os
import re
import shutil
import struct
import sys
import zlib

from tests.support import ROOT, ChildServer, child_env, free_port

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def make_png(width=8, height=6, rgb=(61, 90, 254)):
    """A valid, uncompressed-colour PNG of one solid colour (zlib + struct only)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    row = b"\x00" + bytes(rgb) * width           # filter type 0, then RGB pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def csrf_token_of(html):
    """The CSRF token in the board's form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token field"
    return match.group(1)


class MsgboardServer(ChildServer):
    """``python msgboard.py`` in a child process, configured through its environment."""

    name = "msgboard.py"

    def __init__(self, directory, secret="test-secret-for-msgboard", pure=False):
        self.directory = directory
        self.db_path = os.path.join(directory, "board.sqlite3")
        self.uploads_dir = os.path.join(directory, "uploads")
        port = free_port()
        env = child_env(pure, MSGBOARD_PORT=str(port), MSGBOARD_DB=self.db_path,
                        MSGBOARD_UPLOADS=self.uploads_dir)
        if secret is None:
            env.pop("MSGBOARD_SECRET", None)
        else:
            env["MSGBOARD_SECRET"] = secret
        super().__init__([sys.executable, os.path.join(ROOT, "msgboard.py")], port, env,
                         cwd=directory)


def browser_unavailable_reason():
    """None when Playwright and a Chromium binary are both present, else why not."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        return f"playwright is not installed ({error}); install it with: pip install playwright"
    if chromium_path() is None:
        return "no chromium binary on PATH; install it with: apt-get install -y chromium"
    return None


def chromium_path():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def launch_chromium(playwright, user_data_dir, **context_options):
    """A fresh persistent Chromium context (Debian's chromium: Playwright can't download one)."""
    return playwright.chromium.launch_persistent_context(
        user_data_dir, executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS,
        **context_options)
