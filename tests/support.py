"""What the tests share: the one raw-socket client and response reader, the one-shot
exchanges built on it, the protocol app's probes, and the generated request heads.

Every test that talks to a server below HTTP uses ``Client`` (or ``exchange`` /
``raw_exchange``, which wrap it); responses are parsed by ``parse_reply`` alone. Fixtures
(servers) are in conftest.py.
"""
import os
import random
import select
import socket
import struct
import time

from hypothesis import strategies as st

# The app of tests/apps/protocol_app.py and what its probes send.
PROTOCOL_APP = "tests.apps.protocol_app:app"
FOLLOWER = b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
ECHO_CL = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n"
ECHO_CHUNKED = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


# ---- The raw-socket client and the response reader -------------------------------------------------------------

class Reply:
    """One parsed HTTP response."""

    def __init__(self, status_line, headers, body=b""):
        self.status_line = status_line
        self.status = int(status_line.split(b" ")[1])
        self.headers = headers            # list of (lower-case name, value)
        self.body = body

    def header(self, name):
        values = [value for key, value in self.headers if key == name.lower()]
        return ", ".join(values) if values else None

    def __repr__(self):
        return f"<Reply {self.status_line!r} {self.headers!r} {self.body[:80]!r}>"


def parse_reply(buffer, head=False, eof=False):
    """Parse one response from the start of ``buffer``: (Reply, bytes used), or None if incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buffer[:end].split(b"\r\n")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        assert colon, f"malformed response header line {line!r}"
        headers.append((name.decode("latin-1").lower(), value.strip(b" \t").decode("latin-1")))
    reply = Reply(lines[0], headers)
    position = end + 4
    if head or reply.status < 200 or reply.status in (204, 304):
        return reply, position
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
                        return reply, position
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
        return reply, position + length
    if not eof:
        return None
    reply.body = buffer[position:]
    return reply, len(buffer)


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


class Client:
    """A raw TCP connection with a response reader."""

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
        self.was_reset = False      # the server reset the connection rather than closing it

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self.sock.close()

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

    def shutdown_write(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

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

    def read_until_close(self, timeout=None):
        """Everything until the server closes: (bytes, closed).  closed=False on timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while not self.eof:
                self._fill(deadline)
        except socket.timeout:
            pass
        data, self.buffer = self.buffer, b""
        return data, self.eof

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

    def reset(self):
        """Close with a TCP reset (SO_LINGER 0) instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def closed_now(self):
        """Non-blocking: has the server closed (or reset) the connection?  Keeps any data read."""
        if self.eof:
            return True
        readable, _, _ = select.select([self.sock], [], [], 0)
        if readable:
            self._fill(time.monotonic() + 1.0)
        return self.eof


def exchange(port, payload, timeout=3.0, shut_wr=False):
    """Send ``payload`` on a new connection; return (everything received, server closed?)."""
    with Client(port, timeout=timeout) as client:
        client.send_ignoring_close(payload)
        if shut_wr:
            client.shutdown_write()
        return client.read_until_close(timeout)


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


def cpu_seconds(pid):
    """User + system CPU time a process has used (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_exchange(port, payload, timeout=3.0, read_until_close=True):
    """Send raw bytes on a new connection and return everything the server answers until it
    closes (or until ``timeout`` passes), or only what arrives first."""
    with Client(port, timeout=timeout) as client:
        client.send_ignoring_close(payload)
        if read_until_close:
            return client.read_until_close(timeout)[0]
        return client.read_some(timeout)


def status_of(response_bytes):
    """Status code of the first response in ``response_bytes`` (None if empty)."""
    if not response_bytes:
        return None
    first_line = response_bytes.split(b"\r\n", 1)[0]
    return int(first_line.split(b" ")[1])


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
