"""The ceiling: a bare asyncio.Protocol that answers each request with a canned response.

It only finds the end of each request head and picks a prebuilt response by path;
there is no parsing, no validation, no Date header. Run with `--loop uvloop` for uvloop.
"""
import asyncio
import sys

from common import BACKLOG, HOST, PORT


def canned(body, content_type):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type +
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


RESPONSES = {
    b"/": canned(b"Hello, World!", b"text/plain"),
    b"/json": canned(b'{"message":"Hello, World!"}', b"application/json"),
    b"/user/123": canned(b'{"id":123}', b"application/json"),
}
NOT_FOUND = canned(b"Not Found", b"text/plain").replace(b"200 OK", b"404 Not Found", 1)


class CannedProtocol(asyncio.Protocol):
    __slots__ = ("transport", "buffer")

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        buffer = self.buffer + data if self.buffer else data
        out = []
        start = 0
        while True:
            end = buffer.find(b"\r\n\r\n", start)
            if end < 0:
                break
            space = buffer.find(b" ", start)
            path = buffer[space + 1:buffer.find(b" ", space + 1)]
            out.append(RESPONSES.get(path, NOT_FOUND))
            start = end + 4
        self.buffer = buffer[start:]
        if out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])


def main():
    if "--loop" in sys.argv and sys.argv[sys.argv.index("--loop") + 1] == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(CannedProtocol, HOST, PORT, backlog=BACKLOG, reuse_address=True))
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
