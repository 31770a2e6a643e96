"""What the tests share, fixtures apart (those are in conftest.py).

- Server processes: ``ServerProcess`` runs an app (``module:attr``) through tests/serve.py
  on 127.0.0.1 and a free port, with the accelerators on or off; ``ChildServer`` runs any
  command; both are stopped by pid (``stop``, or ``stop_with_children`` for a server that
  started processes of its own).  ``start_script`` and ``run_script`` run Python source as
  a user would; ``descendants_of``, ``children_of`` and friends read the process tree from
  /proc.
- The one raw-socket client, ``Client``: connect, send, read one response at a time with a
  deadline, read until the server closes, and the few odd moves a protocol test needs
  (half-close, one byte per send, pushing without reading, nudging a slow request along).
- The one response reader, ``parse_reply`` (with ``parse_all``), giving ``Reply`` objects;
  ``split_reply`` for an exchange whose framing the test checks itself (``dechunk`` then
  decodes the body); ``status_of`` and ``status_and_body`` for a quick look.
- One-shot exchanges built on ``Client``: ``exchange`` and ``raw_exchange``.
- The protocol app (tests/apps/protocol_app.py) and its probes: ``calls``,
  ``assert_rejected``.
- A grammar of request heads and chunked bodies (``request_heads``, ``chunked_bodies``,
  ``request_head``) shared by the differential and the fuzz tests.

Every test that talks to a server below HTTP goes through ``Client`` or the exchanges.
"""
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from hypothesis import strategies as st

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    import httptools  # noqa: F401
    import uvloop  # noqa: F401
    HAVE_ACCELERATORS = True
except ImportError:
    HAVE_ACCELERATORS = False

# The app of tests/apps/protocol_app.py and what its probes send.
PROTOCOL_APP = "tests.apps.protocol_app:app"
FOLLOWER = b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
ECHO_CL = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n"
ECHO_CHUNKED = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


# ---- Server processes ---------------------------------------------------------------------------

def free_port():
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(pure, **extra):
    """The environment for a child server: accelerators on, or off with ``pure``."""
    env = dict(os.environ)
    env.pop("PIXIE_WEB_PURE", None)
    if pure:
        env["PIXIE_WEB_PURE"] = "1"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


class ChildServer:
    """A server in a child process on 127.0.0.1:``port``; ``stop()`` kills it by pid.

    Its output goes to a file, not a pipe: a pipe nobody drains would block a chatty server.
    With ``separate_stderr`` stdout and stderr go to two files (``output()``, ``errors()``).
    """

    name = "server"

    def __init__(self, command, port, env, cwd=ROOT, separate_stderr=False, pass_fds=()):
        self.port = port
        self.log_file = tempfile.TemporaryFile()
        self.error_file = tempfile.TemporaryFile() if separate_stderr else None
        self.process = subprocess.Popen(command, env=env, cwd=cwd, stdout=self.log_file,
                                        stderr=self.error_file or subprocess.STDOUT,
                                        pass_fds=pass_fds)
        self.pid = self.process.pid
        self._wait_ready()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start listening in time:\n{self.output()}")

    def alive(self):
        return self.process.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stop the server by pid (``sig``, then SIGKILL) and return what it printed."""
        if self.process.poll() is None:
            try:
                os.kill(self.pid, sig)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        return self.output()

    def stop_with_children(self, grace=3.0):
        """SIGTERM the server, then SIGKILL by pid whatever it started that is still alive
        ``grace`` seconds later (e.g. a hung pool worker), so nothing outlives it.  Returns
        what the server printed."""
        family = descendants_of(self.pid) if self.alive() else {}
        output = self.stop()
        deadline = time.monotonic() + grace
        while survivors(family) and time.monotonic() < deadline:
            time.sleep(0.05)
        kill_all(family)
        return output

    def output(self):
        """Everything the server printed so far (its stdout only with ``separate_stderr``)."""
        self.log_file.seek(0)
        return self.log_file.read().decode(errors="replace")

    def errors(self):
        """What the server wrote to stderr (with ``separate_stderr``)."""
        self.error_file.seek(0)
        return self.error_file.read().decode(errors="replace")


class ServerProcess(ChildServer):
    """A pixie_web app (``module:attr``) running in a child process via tests/serve.py, with
    the accelerators on or off (``pure``) and ``run_kwargs`` passed to ``run()``."""

    def __init__(self, target, pure, run_kwargs, env=None, port=None, pass_fds=()):
        self.pure = pure
        port = port or free_port()
        run_kwargs = {"access_log": False, **run_kwargs}
        super().__init__([sys.executable, os.path.join(ROOT, "tests", "serve.py"), target,
                          str(port), json.dumps(run_kwargs)], port,
                         child_env(pure, **(env or {})), pass_fds=pass_fds)


def start_script(tmp_path, source, pure=False, args=()):
    """Write ``source`` (with PORT replaced by a free port) to tmp_path/app.py and start it as
    a user would -- ``python app.py`` in that directory, or ``python ARGS...`` when ``args``
    are given -- with stdout and stderr kept apart."""
    port = free_port()
    (tmp_path / "app.py").write_text(source.replace("PORT", str(port)), encoding="utf-8")
    command = [sys.executable, *(args or ["app.py"])]
    return ChildServer([part.replace("PORT", str(port)) for part in command], port,
                       child_env(pure), cwd=tmp_path, separate_stderr=True)


def run_script(script, pure, extra_path=None):
    """Run Python source in a fresh interpreter (accelerators on, or off with ``pure``;
    ``extra_path`` goes first on sys.path); fail on a non-zero exit, else return the result."""
    env = child_env(pure)
    if extra_path:
        env["PYTHONPATH"] = extra_path + os.pathsep + env["PYTHONPATH"]
    result = subprocess.run([sys.executable, "-c", script], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def proc_stat(pid):
    """(state, ppid, starttime) of a process, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), fields[19]


def descendants_of(pid):
    """{pid: starttime} of every live (non-zombie) descendant of ``pid`` (Linux /proc)."""
    parent_of, start_of = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat and stat[0] != "Z":
                parent_of[int(entry)] = stat[1]
                start_of[int(entry)] = stat[2]
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parent_of.items():
            if ppid == parent and child not in found:
                found[child] = start_of[child]
                frontier.append(child)
    return found


def children_of(pid):
    """The pids of the live (non-zombie) processes whose parent is ``pid``."""
    return {child for child in descendants_of(pid)
            if (stat := proc_stat(child)) is not None and stat[1] == pid}


def _same_process_alive(pid, starttime):
    stat = proc_stat(pid)
    return stat is not None and stat[0] != "Z" and stat[2] == starttime


def survivors(family):
    """The processes of ``family`` ({pid: starttime}) still alive (the same ones, not a
    reused pid)."""
    return {pid: start for pid, start in family.items() if _same_process_alive(pid, start)}


def kill_all(family):
    """SIGKILL, by pid, every process of ``family`` that is still alive."""
    for pid in survivors(family):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cpu_seconds(pid):
    """User + system CPU time a process has used (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- The response reader ------------------------------------------------------------------------

class Reply:
    """One HTTP response: ``status_line``, ``status``, ``headers`` (lower-case name, value)
    in order, ``body``; ``head`` is the status line and header lines as received and ``raw``
    the bytes the response was read from."""

    def __init__(self, head):
        lines = head.split(b"\r\n")
        self.head = head
        self.status_line = lines[0]
        self.status = int(lines[0].split(b" ")[1])
        self.headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            assert colon, f"malformed response header line {line!r}"
            self.headers.append((name.decode("latin-1").lower(),
                                 value.strip(b" \t").decode("latin-1")))
        self.body = b""
        self.raw = b""

    def values(self, name):
        """Every value of header ``name``, in order (for a header that may repeat)."""
        return [value for key, value in self.headers if key == name.lower()]

    def header(self, name):
        """The value of header ``name``, None when absent; fails when the response repeats
        it (use ``values`` for a header that may repeat)."""
        values = self.values(name)
        assert len(values) <= 1, f"{name} repeated: {values}"
        return values[0] if values else None

    def __repr__(self):
        return f"<Reply {self.status_line!r} {self.headers!r} {self.body[:80]!r}>"


def _read_head(buffer):
    """The Reply for the head at the start of ``buffer`` and where its body starts, or None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    return Reply(buffer[:end]), end + 4


def parse_reply(buffer, head=False, eof=False):
    """Parse one response from the start of ``buffer`` by its framing (Content-Length,
    chunked, or the close when ``eof``): (Reply, bytes used), or None while incomplete.
    ``head``: the answer to a HEAD request, which has no body."""
    parsed = _read_head(buffer)
    if parsed is None:
        return None
    reply, position = parsed
    used = _body_end(reply, buffer, position, head, eof)
    if used is None:
        return None
    reply.raw = buffer[:used]
    return reply, used


def _body_end(reply, buffer, position, head, eof):
    """Set ``reply.body`` from ``buffer[position:]``; where the response ends, or None."""
    if head or reply.status < 200 or reply.status in (204, 304):
        return position
    if (reply.header("transfer-encoding") or "").lower() == "chunked":
        body = bytearray()
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(buffer[position:line_end].split(b";")[0], 16)
            position = line_end + 2
            if size == 0:
                while True:                        # trailers, up to the empty line
                    line_end = buffer.find(b"\r\n", position)
                    if line_end < 0:
                        return None
                    trailer, position = buffer[position:line_end], line_end + 2
                    if not trailer:
                        reply.body = bytes(body)
                        return position
            if len(buffer) < position + size + 2:
                return None
            body += buffer[position:position + size]
            assert buffer[position + size:position + size + 2] == b"\r\n", "bad chunk framing"
            position += size + 2
    length = reply.header("content-length")
    if length is not None:
        length = int(length)
        if len(buffer) < position + length:
            return None
        reply.body = buffer[position:position + length]
        return position + length
    if not eof:
        return None
    reply.body = buffer[position:]
    return len(buffer)


def parse_all(data, eof=True):
    """All complete responses in ``data`` and the unparsed rest."""
    replies = []
    while data:
        parsed = parse_reply(data, eof=eof)
        if parsed is None:
            break
        reply, used = parsed
        replies.append(reply)
        data = data[used:]
    return replies, data


def split_reply(data):
    """The response at the start of ``data`` with its body left as sent, for a test that
    checks the framing itself: ``body`` is everything after the head (chunk framing, or
    whatever followed, included) and ``raw`` is ``data``.  None when ``data`` holds no
    complete head."""
    parsed = _read_head(data)
    if parsed is None:
        return None
    reply, position = parsed
    reply.body, reply.raw = data[position:], data
    return reply


def dechunk(body):
    """Decode a chunked message body (as ``split_reply`` leaves it); fails on bad framing."""
    decoded, rest = b"", body
    while True:
        size_line, separator, rest = rest.partition(b"\r\n")
        assert separator, "chunk-size line not terminated"
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return decoded
        decoded += rest[:size]
        assert rest[size:size + 2] == b"\r\n", "chunk data not followed by CRLF"
        rest = rest[size + 2:]


def status_of(response_bytes):
    """Status code of the first response in ``response_bytes`` (None if empty)."""
    if not response_bytes:
        return None
    first_line = response_bytes.split(b"\r\n", 1)[0]
    return int(first_line.split(b" ")[1])


def status_and_body(data):
    """(status, body as sent) of the response at the start of ``data``; the body is b"" when
    no complete head came, and the status None when nothing came at all."""
    reply = split_reply(data)
    return (reply.status, reply.body) if reply else (status_of(data), b"")


# ---- The raw-socket client ------------------------------------------------------------------------

class Client:
    """A raw TCP connection to 127.0.0.1:``port`` with a response reader.

    What arrived and was not read yet is in ``buffer``; ``eof`` tells that the server closed
    the connection, ``was_reset`` that it reset it rather than closing it.
    """

    def __init__(self, port, timeout=5.0, nodelay=False, rcvbuf=None):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buffer = b""
        self.eof = False
        self.was_reset = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self.sock.close()

    # -- sending

    def send(self, data):
        self.sock.sendall(data)

    def send_ignoring_close(self, data):
        """Send what the server accepts; a server that already closed is not an error here."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def push(self, data, seconds):
        """Write as much of ``data`` as the server takes within ``seconds``, never reading;
        the number of bytes sent."""
        self.sock.setblocking(False)
        sent, deadline = 0, time.monotonic() + seconds
        while sent < len(data) and time.monotonic() < deadline:
            try:
                sent += self.sock.send(data[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
        self.sock.setblocking(True)
        return sent

    def trickle(self, data):
        """Send ``data`` one byte per send() (use nodelay=True); stop once the server closed."""
        for index in range(len(data)):
            try:
                self.sock.send(data[index:index + 1])
            except OSError:
                return

    def nudge(self, data):
        """Send ``data`` (a byte or a few, as a slow client does) unless the server has closed
        the connection: False once it has (closed, reset, or refusing the bytes)."""
        if self.closed_now():
            return False
        try:
            self.sock.send(data)
        except OSError:
            return False
        return True

    def shutdown_write(self):
        """Half-close: tell the server this client sends nothing more (it can still read)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def reset(self):
        """Close with a TCP reset (SO_LINGER 0) instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    # -- receiving

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no complete response in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
            self.was_reset = True
        if not chunk:
            self.eof = True
        self.buffer += chunk

    def reply(self, head=False, timeout=None):
        """Read exactly one response (interim 1xx responses count as one)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            parsed = parse_reply(self.buffer, head=head, eof=self.eof)
            if parsed is not None:
                reply, used = parsed
                self.buffer = self.buffer[used:]
                return reply
            if self.eof:
                raise AssertionError(f"connection closed mid-response; got {self.buffer[:300]!r}")
            self._fill(deadline)

    def closed_within(self, seconds):
        """Wait up to ``seconds`` for the server to close the connection: True if it did.
        What it sends meanwhile stays in ``buffer``."""
        deadline = time.monotonic() + seconds
        try:
            while not self.eof:
                self._fill(deadline)
        except socket.timeout:
            pass
        return self.eof

    def closed_now(self):
        """Without waiting: has the server closed (or reset) the connection?  What it sent
        stays in ``buffer``.  (Non-blocking reads, no select(): fine for thousands of
        connections.)"""
        self.sock.setblocking(False)
        try:
            while not self.eof:
                try:
                    chunk = self.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as error:
                    chunk, self.was_reset = b"", isinstance(error, ConnectionResetError)
                if not chunk:
                    self.eof = True
                self.buffer += chunk
        finally:
            self.sock.settimeout(self.timeout)
        return self.eof

    def read_until_close(self, timeout=None):
        """Everything until the server closes: (bytes, closed).  closed=False on timeout."""
        closed = self.closed_within(timeout or self.timeout)
        data, self.buffer = self.buffer, b""
        return data, closed

    def read_until(self, needle=None, timeout=None):
        """Everything received until ``needle`` is in it, the server closes, or ``timeout``
        passes (``needle=None``: until the close or the timeout)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while not self.eof and (needle is None or needle not in self.buffer):
                self._fill(deadline)
        except socket.timeout:
            pass
        data, self.buffer = self.buffer, b""
        return data

    def read_some(self, timeout=None):
        """Whatever arrives first (b"" once the server has closed, or on a timeout)."""
        if not self.buffer and not self.eof:
            try:
                self._fill(time.monotonic() + (timeout or self.timeout))
            except socket.timeout:
                pass
        data, self.buffer = self.buffer, b""
        return data


# ---- One-shot exchanges -------------------------------------------------------------------------

def exchange(port, payload, timeout=3.0, shut_wr=False):
    """Send ``payload`` on a new connection; return (everything received, server closed?)."""
    with Client(port, timeout=timeout) as client:
        client.send_ignoring_close(payload)
        if shut_wr:
            client.shutdown_write()
        return client.read_until_close(timeout)


def raw_exchange(port, payload, timeout=3.0, read_until_close=True):
    """Send raw bytes on a new connection and return everything the server answers until it
    closes (or until ``timeout`` passes), or only what arrives first."""
    with Client(port, timeout=timeout) as client:
        client.send_ignoring_close(payload)
        if read_until_close:
            return client.read_until_close(timeout)[0]
        return client.read_some(timeout)


# ---- The protocol app's probes ------------------------------------------------------------------

def calls(port):
    """How many handlers (other than /count) the server has run so far."""
    data, closed = exchange(port, b"GET /count HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    replies, _ = parse_all(data, eof=closed)
    assert replies and replies[0].status == 200, f"/count failed: {data[:300]!r}"
    return int(replies[0].body)


def assert_rejected(port, payload, statuses=(400,), follower=True, timeout=3.0):
    """The request gets one of ``statuses`` with Connection: close, the connection closes,
    and neither it nor the smuggled follower sent behind it runs a handler."""
    before = calls(port)
    data, closed = exchange(port, payload + (FOLLOWER if follower else b""), timeout=timeout)
    after = calls(port)
    replies, rest = parse_all(data, eof=closed)
    assert replies, f"no response (closed={closed}), got {data[:300]!r}"
    first = replies[0]
    assert first.status in statuses, f"expected {statuses}, got {first.status}: {data[:400]!r}"
    assert len(replies) == 1 and not rest, f"bytes after the rejected request were answered: {data[:600]!r}"
    assert (first.header("connection") or "").lower() == "close", first
    assert first.body.startswith(b"%d " % first.status), f"error body should start with the status: {first}"
    assert closed, "the connection stayed open after a protocol error"
    assert after == before, f"a handler ran for a rejected request ({before} -> {after} calls)"
    return first


# ---- A grammar of request heads: valid pieces and the mutations advisories used ------------

METHODS = [b"GET", b"POST", b"PUT", b"OPTIONS", b"HEAD", b"FOO", b"get", b"M-SEARCH",
           b"GET\x00PROXY", b"bla:rgh", b"GET\xc3\x9f", b"", b"G ET"]             # B6
TARGETS = [b"/", b"/echo", b"/echo?a=1;b=2&c", b"http://a/echo", b"HTTP://a:80/echo?x",
           b"*", b"/%ff", b"/a%00b", b"foo/bar", b"example.com:443", b"/a b", b"/\xc3\xa9",
           b"/#frag", b"//evil.example/", b"http://a/b#c"]                      # B8, H2
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.10", b"HTTP/1",
            b"http/1.1", b"HTTP/1.\xf0\x9d\x9f\x99", b"HTTP/1\xc3\xb61", b"FTP/1.1"]   # B8

CONTENT_LENGTHS = [b"0", b"3", b"5", b"10", b"007", b"+1", b"-1", b"-0", b"0_1", b"0x10",
                   b"1E3", b"bla-bla", b"0 1", b"3 1", b"5, 5", b"5,5", b"",
                   "\u0661".encode(), "\U0001d7d9".encode(), b"9" * 19, b"9" * 5000,
                   b"99999999999999999999"]                                      # A3, A4, A5
TRANSFER_ENCODINGS = [b"chunked", b"CHUNKED", b"xchunked", b"chunked, identity",
                      b"identity, chunked", b"gzip, chunked", b"chunked, chunked", b"chunked,",
                      b",chunked", b"\rchunked", b"chunked\x0b", b"identity", b"gzip",
                      b"chunked;q=1", b" chunked\t", b""]                          # A6, A7
HOSTS = [b"a", b"a:80", b"127.0.0.1:8000", b"[::1]:80", b"a/b", b"a#", b"a?x", b"a b",
         b"\xff", b"", b"evil.example"]                                          # B10
NAMES = [b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Expect",
         b"Cookie", b"X-A", b"Content-Type", b"Upgrade", b"Content_Length",
         b"Transfer_Encoding", b"Content-Length ", b" Host", b"Content-Encoding?",
         b"Content-Length\xc3\x9f", b"", b"ba\x00z", b"X\tY"]                     # B5, B6, B7
VALUES = [b"a", b"", b"close", b"keep-alive", b"upgrade", b"100-continue", b"foo",
          b"h2c", b"websocket", b"a=b; c=d", b"application/json", b"x" * 300,
          b"plain\x07injected", b"\x7f", b"a\x00b", b"\xff\xfe", b"a\tb", b" \t lead",
          b"trail \t", b"\t " * 40 + b"x"]                                       # B3, B13
INSERTS = [b"\r", b"\n", b"\x00", b"\x0b", b"\x0c", b"\x7f", b" ", b"\t", b"\xff", b":",
           b"\r\n", b"\n ", b"\r\n\t"]                                             # B1, B2, B4


class RandomPicker:
    """Draws from a seeded ``random.Random``: fast, for bulk corpora."""

    def __init__(self, seed):
        self.random = random.Random(seed)

    def choice(self, options):
        return self.random.choice(options)

    def integer(self, low, high):
        return self.random.randint(low, high)

    def binary(self, max_size):
        return bytes(self.random.getrandbits(8) for _ in range(self.random.randint(0, max_size)))


class HypothesisPicker:
    """Draws through hypothesis (shrinkable), with the same interface."""

    def __init__(self, draw):
        self.draw = draw

    def choice(self, options):
        return self.draw(st.sampled_from(options))

    def integer(self, low, high):
        return self.draw(st.integers(low, high))

    def binary(self, max_size):
        return self.draw(st.binary(max_size=max_size))


def header_line(pick):
    """One header line (without its CRLF), valid or mutated."""
    kind = pick.choice(["cl", "te", "host", "conn", "any", "any", "raw"])
    if kind == "cl":
        line = b"Content-Length: " + pick.choice(CONTENT_LENGTHS)
    elif kind == "te":
        line = b"Transfer-Encoding: " + pick.choice(TRANSFER_ENCODINGS)
    elif kind == "host":
        line = b"Host: " + pick.choice(HOSTS)
    elif kind == "conn":
        line = b"Connection: " + pick.choice([b"close", b"keep-alive", b"upgrade",
                                              b"Keep-Alive, Upgrade", b"close, x"])
    elif kind == "any":
        line = pick.choice(NAMES) + b":" + pick.choice([b"", b" ", b"\t"]) + pick.choice(VALUES)
    else:
        line = pick.binary(24)
    if pick.integer(0, 4) == 0:                             # one mutation, anywhere
        position = pick.integer(0, len(line))
        line = line[:position] + pick.choice(INSERTS) + line[position:]
    if pick.integer(0, 9) == 0:                             # obs-fold: B4
        line = pick.choice([b" ", b"\t"]) + line
    return line


def request_head(pick, valid_request_line_weight=4):
    """A request head: the bytes before the blank line (no trailing CRLF CRLF)."""
    if pick.integer(0, valid_request_line_weight):
        request_line = (pick.choice(METHODS[:8]) + b" " + pick.choice(TARGETS[:5]) + b" "
                        + pick.choice(VERSIONS[:2]))
    else:
        request_line = (pick.choice(METHODS) + pick.choice([b" ", b"  ", b"\t"])
                        + pick.choice(TARGETS) + b" " + pick.choice(VERSIONS))
    lines = [request_line]
    if pick.integer(0, 1):
        lines.append(b"Host: a")
    lines += [header_line(pick) for _ in range(pick.integer(0, 6))]
    if pick.integer(0, 5) == 0:
        lines.insert(pick.integer(1, len(lines)), header_line(pick))
    head = b"\r\n".join(lines)
    if pick.integer(0, 7) == 0:                             # a bare LF / CR somewhere: B1, B2
        position = pick.integer(0, len(head))
        head = head[:position] + pick.choice([b"\n", b"\r", b"\r\r\n"]) + head[position:]
    return head


@st.composite
def request_heads(draw, valid_request_line_weight=4):
    return request_head(HypothesisPicker(draw), valid_request_line_weight)


@st.composite
def chunked_bodies(draw):
    chunks = draw(st.lists(st.binary(min_size=1, max_size=20), max_size=5))
    out = b""
    for chunk in chunks:
        size = b"%x" % len(chunk)
        extension = draw(st.sampled_from([b"", b";a", b";a=b", b';a="q;\\"x"', b" ;a", b";a\nb",
                                          b"\t", b";"]))
        out += size + extension + b"\r\n" + chunk + b"\r\n"
    out += draw(st.sampled_from([b"0\r\n\r\n", b"0\r\nX-T: a\r\n\r\n", b"0\r\nContent-Length: 9\r\n\r\n",
                                 b"0\r\nHost: evil\r\n\r\n", b"0\r\n", b"0\r\nXX", b"00\r\n\r\n"]))
    if out and draw(st.integers(0, 3)) == 0:               # one framing byte changed
        position = draw(st.integers(0, len(out) - 1))
        out = out[:position] + draw(st.sampled_from([b"_", b"\n", b"\r", b"+", b" ", b"x"])) \
            + out[position + 1:]
    return out


def wait_for(predicate, timeout=5.0):
    """Poll ``predicate`` every 50 ms until it is true or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
