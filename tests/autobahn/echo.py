#!/usr/bin/env python3
"""TCP echo backend for the Autobahn run. Binds 127.0.0.1:0 and prints the port on the
first line of stdout. Every read is written back at once; at EOF (the gateway half-closes
after the client's close frame) what is left is written and the connection closed.

It never stops reading: what the gateway cannot take yet waits here, in memory (at most
the largest message of a case, 16 MiB). kosoku does not read while it writes one message,
so an echo that pushed back would stall a 16 MiB case for good: the gateway passes the
push-back on to the client, as it must, and the client's write never ends."""

import asyncio


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)  # buffered without bound: no drain() here, see above
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
