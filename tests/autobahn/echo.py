#!/usr/bin/env python3
"""TCP echo backend for the Autobahn run: every byte read is written back as soon as it
arrives; at EOF (the gateway half-closes after the client's close frame) the connection is
closed. Binds 127.0.0.1:0 and prints the port on the first line of stdout."""

import asyncio


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass  # the gateway dropped the connection: nothing left to echo
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
