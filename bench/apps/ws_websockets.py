"""WebSocket echo on the websockets library's own server (its asyncio implementation)."""
import asyncio
import os

from websockets.asyncio.server import serve


async def echo(connection):
    async for message in connection:
        await connection.send(message)


async def main():
    async with serve(echo, "127.0.0.1", int(os.environ["BENCH_PORT"]), compression=None,
                     max_size=1024 * 1024) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
