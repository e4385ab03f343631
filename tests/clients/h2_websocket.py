"""An RFC 8441 client on the `h2` package (an HTTP/2 implementation independent of the
gateway's): opens two WebSockets as extended CONNECT streams on one h2c connection, sends
one masked binary message on each, prints each echoed payload, closes the first stream
and checks the second still echoes. Exits non-zero on any deviation.

Usage: python3 h2_websocket.py HOST PORT
"""

import os
import socket
import struct
import sys

import h2.config
import h2.connection
import h2.events
import h2.settings


def ws_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """A masked, final client frame (RFC 6455 section 5.2)."""
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse_frames(buf: bytearray):
    """Yields (opcode, payload) for each complete unmasked server frame, consuming them."""
    while len(buf) >= 2:
        opcode, n = buf[0] & 0x0F, buf[1] & 0x7F
        offset = 2
        if n == 126:
            if len(buf) < 4:
                return
            n, offset = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                return
            n, offset = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < offset + n:
            return
        payload = bytes(buf[offset:offset + n])
        del buf[: offset + n]
        yield opcode, payload


class Client:
    def __init__(self, host: str, port: int):
        self.sock = socket.create_connection((host, port), timeout=20)
        self.authority = f"{host}:{port}"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()
        self.buffers = {}
        self.statuses = {}
        self.connect_enabled = False
        while not self.connect_enabled:
            self.pump()

    def flush(self):
        self.sock.sendall(self.conn.data_to_send())

    def pump(self):
        data = self.sock.recv(65536)
        if not data:
            raise SystemExit("connection closed by the gateway")
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                setting = event.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                if setting is not None and setting.new_value == 1:
                    self.connect_enabled = True
            elif isinstance(event, h2.events.ResponseReceived):
                self.statuses[event.stream_id] = dict(event.headers)[b":status"]
            elif isinstance(event, h2.events.DataReceived):
                self.buffers.setdefault(event.stream_id, bytearray()).extend(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                raise SystemExit(f"stream {event.stream_id} reset: {event.error_code}")
        self.flush()

    def open(self, path: str) -> int:
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [
            (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
            (":path", path), (":authority", self.authority), ("sec-websocket-version", "13"),
        ])
        self.flush()
        while stream not in self.statuses:
            self.pump()
        if self.statuses[stream] != b"200":
            raise SystemExit(f"stream {stream}: status {self.statuses[stream]!r}")
        return stream

    def echo(self, stream: int, payload: bytes) -> bytes:
        self.conn.send_data(stream, ws_frame(payload))
        self.flush()
        buf = self.buffers.setdefault(stream, bytearray())
        while True:
            for opcode, data in parse_frames(buf):
                if opcode == 0x2:
                    return data
            self.pump()


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    client = Client(host, port)
    a, b = client.open("/"), client.open("/")
    for stream, text in ((a, b"from stream a"), (b, b"from stream b")):
        got = client.echo(stream, text)
        if got != text:
            raise SystemExit(f"stream {stream}: sent {text!r}, got {got!r}")
        print(f"echo {stream} {got.decode()}")
    client.conn.send_data(a, ws_frame(struct.pack("!H", 1000), opcode=0x8), end_stream=True)
    client.flush()
    got = client.echo(b, b"b goes on")
    if got != b"b goes on":
        raise SystemExit(f"after closing a: got {got!r}")
    print("ok")


if __name__ == "__main__":
    main()
