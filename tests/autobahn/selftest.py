#!/usr/bin/env python3
"""The judge's own check: kosoku runs cases 1.1.2 (one 125-byte text message) and 5.6
(a text message in two fragments with a ping between them) against small WebSocket
servers that echo each data frame as a message of its own, some of them misbehaving on
purpose, and the judge in conformance.py must tell each apart. Exits 1 if it does not."""

import asyncio
import base64
import hashlib
import os
import sys
from functools import partial

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance  # noqa: E402  (beside this file)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# (server mode, case, the outcome the judge must give)
CHECKS = [
    ("pipe", "1.1.2", "OK"),  # one frame, one message back
    ("split", "1.1.2", conformance.BY_CONSTRUCTION),  # the same bytes as two messages
    ("corrupt", "1.1.2", "FAILED"),  # two messages, one byte changed: no byte pipe does that
    ("retype", "1.1.2", "FAILED"),  # the text echoed as binary: the text route never does that
    ("drop", "1.1.2", conformance.DROPPED),  # TCP closed with no close frame
    ("pipe", "5.6", conformance.BY_CONSTRUCTION),  # fragment, pong, fragment
    ("late-pong", "5.6", "FAILED"),  # both fragments echoed before the pong
]


def frame(opcode: int, payload: bytes) -> bytes:
    assert len(payload) < 126
    return bytes([0x80 | opcode, len(payload)]) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(2)
    size = head[1] & 0x7F
    if size >= 126:
        size = int.from_bytes(await reader.readexactly(2 if size == 126 else 8), "big")
    mask = await reader.readexactly(4)
    data = await reader.readexactly(size)
    return head[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def serve(mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        kind, held = 1, []
        while True:
            opcode, payload = await read_frame(reader)
            if opcode == 8:
                writer.write(b"".join(held) + frame(8, payload[:2]))
                break
            if mode == "drop":
                break
            if opcode == 9:
                if mode == "late-pong":
                    held.append(frame(10, payload))
                else:
                    writer.write(frame(10, payload))
                continue
            kind = opcode or kind  # a continuation keeps its message's type
            if mode in ("split", "corrupt"):
                half = len(payload) // 2
                rest = payload[half:]
                if mode == "corrupt":
                    rest = b"#" + rest[1:]
                writer.write(frame(kind, payload[:half]) + frame(kind, rest))
            else:
                writer.write(frame(2 if mode == "retype" else kind, payload))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, StopIteration):
        pass
    finally:
        writer.close()


async def judged(mode: str, case: str) -> conformance.Judged:
    server = await asyncio.start_server(partial(serve, mode), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        results = await conformance.run_cases(f"ws://127.0.0.1:{port}/", [case], [])
    return conformance.judge(results[0], "text")


async def main() -> int:
    failures = 0
    for mode, case, want in CHECKS:
        j = await judged(mode, case)
        ok = j.outcome == want
        failures += not ok
        verdict = "ok" if ok else f"WRONG, want {want}"
        print(f"judge self-test: {mode:9} {case:5} -> {j.outcome:22} {verdict} ({j.end}; {j.note or j.kosoku})")
    return 1 if failures else 0


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    os._exit(code)  # see conformance.py: skip kosoku's teardown
