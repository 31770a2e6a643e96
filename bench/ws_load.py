"""The WebSocket load generator of ws_echo.py: CONNECTIONS clients, each sending a small
text message and waiting for its echo, again and again, for SECONDS; prints JSON with the
messages echoed per second and latency percentiles (ms). Raw frames over asyncio
protocols (uvloop when installed), so the client costs little next to the server.

    python ws_load.py PORT CONNECTIONS SECONDS [MESSAGE_BYTES]
"""
import asyncio
import base64
import json
import os
import struct
import sys
import time

try:
    import uvloop
except ImportError:
    uvloop = None


def masked_text_frame(payload):
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    assert len(payload) < 126
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked


class EchoClient(asyncio.Protocol):
    def __init__(self, frame, reply_size, on_open):
        self.frame = frame
        self.reply_size = reply_size     # an unmasked server frame: 2 + payload bytes
        self.buffer = bytearray()
        self.open = False
        self.on_open = on_open
        self.waiter = None
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                         f"Sec-WebSocket-Version: 13\r\n\r\n").encode())

    def data_received(self, data):
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(bytes(self.buffer[:200]))
            del self.buffer[:end + 4]
            self.open = True
            self.on_open.set_result(None)
        if len(self.buffer) >= self.reply_size and self.waiter is not None:
            del self.buffer[:self.reply_size]
            waiter, self.waiter = self.waiter, None
            waiter.set_result(None)

    async def round_trip(self):
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(self.frame)
        await self.waiter


async def run_client(loop, port, payload, until, latencies):
    opened = loop.create_future()
    frame = masked_text_frame(payload)
    _, client = await loop.create_connection(
        lambda: EchoClient(frame, 2 + len(payload), opened), "127.0.0.1", port)
    await opened
    count = 0
    clock = time.perf_counter
    while clock() < until:
        started = clock()
        await client.round_trip()
        latencies.append(clock() - started)
        count += 1
    client.transport.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")   # close 1000, zero mask
    client.transport.close()
    return count


async def main(port, connections, seconds, size):
    loop = asyncio.get_running_loop()
    payload = b"x" * size
    warmup_until = time.perf_counter() + 1.0
    await asyncio.gather(*(run_client(loop, port, payload, warmup_until, [])
                           for _ in range(min(connections, 10))))
    latencies = []
    started = time.perf_counter()
    until = started + seconds
    counts = await asyncio.gather(*(run_client(loop, port, payload, until, latencies)
                                    for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def percentile(fraction):
        return latencies[min(len(latencies) - 1, int(len(latencies) * fraction))] * 1000
    print(json.dumps({"messages_per_s": sum(counts) / elapsed, "p50_ms": percentile(0.5),
                      "p99_ms": percentile(0.99), "messages": sum(counts)}))


if __name__ == "__main__":
    arguments = sys.argv[1:]
    port, connections, seconds = int(arguments[0]), int(arguments[1]), float(arguments[2])
    size = int(arguments[3]) if len(arguments) > 3 else 16
    if uvloop is not None:
        uvloop.install()
    asyncio.run(main(port, connections, seconds, size))
