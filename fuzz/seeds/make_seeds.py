#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/seeds/<target>/.

Each seed is a small, valid (or deliberately broken) input in the format the target's
header comment describes. Deterministic: running it again rewrites the same files.
Usage: python3 fuzz/seeds/make_seeds.py
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = bytes([0xA1, 0xB2, 0xC3, 0xD4])


def frame(opcode, payload, fin=True, mask=MASK, rsv=0, length_form=None):
    """A client frame: masked with `mask` (None: unmasked), with the shortest length form
    unless `length_form` (7, 16 or 64) says otherwise."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    form = length_form or (7 if n <= 125 else 16 if n <= 0xFFFF else 64)
    masked = 0x80 if mask is not None else 0
    if form == 7:
        head = bytes([first, masked | n])
    elif form == 16:
        head = bytes([first, masked | 126]) + struct.pack(">H", n)
    else:
        head = bytes([first, masked | 127]) + struct.pack(">Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close(code=None, reason=b""):
    return frame(8, b"" if code is None else struct.pack(">H", code) + reason)


# Frame reader: byte 0 picks the limits (bits 0-2 frame, 3-5 message, 6 text accepted),
# byte 1 seeds the cuts.
BIG = 0x40 | 6 | (6 << 3)  # 1 MiB frames and messages, text accepted
SMALL = 0x40 | 4 | (4 << 3)  # 1 KiB
NO_TEXT = 6 | (6 << 3)
EURO = "€".encode()


def frame_reader():
    text = "héllo wörld €😀".encode()
    binary = bytes(range(256))
    seeds = {
        "binary": frame(2, b"hello backend"),
        "text": frame(1, text),
        "empty_messages": frame(2, b"") + frame(1, b""),
        "fragmented_binary": frame(2, b"part one ", fin=False) + frame(0, b"part two ", fin=False)
        + frame(0, b"end"),
        "fragmented_text_split_char": frame(1, b"price: " + EURO[:1], fin=False)
        + frame(0, EURO[1:2], fin=False) + frame(0, EURO[2:] + b"10"),
        "ping_between_fragments": frame(2, b"abc", fin=False) + frame(9, b"are you there")
        + frame(10, b"pong") + frame(0, b"def"),
        "ping_pong": frame(9, b"") + frame(10, b"unsolicited") + frame(9, b"x" * 125),
        "close_normal": frame(2, b"bye") + close(1000, b"done"),
        "close_empty": close(),
        "close_app_code": close(4000, "ciao 👋".encode()),
        "close_1014": close(1014),
        "len16": frame(2, binary * 2),
        "len64_small": frame(2, b"non-minimal 64-bit length", length_form=64),
        "len64": frame(2, b"z" * 70000)[:200],  # the header and the start of the payload
        "zero_mask": frame(2, b"zero mask", mask=b"\0\0\0\0"),
        "binary_not_utf8": frame(2, b"\xff\xfe\xc0\xaf"),
        # Broken on purpose: each ends the stream with its own stop.
        "unmasked": frame(2, b"no mask", mask=None),
        "rsv1": frame(2, b"compressed?", rsv=4),
        "opcode_3": frame(3, b"reserved"),
        "opcode_b": frame(0xB, b""),
        "ping_too_long": frame(9, b"p" * 126),
        "ping_fragmented": frame(9, b"p", fin=False),
        "orphan_continuation": frame(0, b"no start"),
        "interleaved": frame(2, b"a", fin=False) + frame(1, b"b"),
        "text_invalid": frame(1, b"ok\xffno"),
        "text_surrogate": frame(1, b"\xed\xa0\x80"),
        "text_cut_at_end": frame(1, b"a" + EURO[:2]),
        "close_1005": close(1005),
        "close_999": close(999),
        "close_one_byte": frame(8, b"\x03"),
        "close_bad_reason": close(1000, b"\xc3\x28"),
        "top_length_bit": bytes([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]) + MASK,
    }
    out = {f"{k}": bytes([BIG, 7]) + v for k, v in seeds.items()}
    out["small_limits_frame"] = bytes([SMALL, 3]) + frame(2, b"q" * 1025)
    out["small_limits_message"] = bytes([SMALL, 3]) + frame(2, b"q" * 600, fin=False) + frame(0, b"q" * 600)
    out["text_refused"] = bytes([NO_TEXT, 9]) + frame(2, b"fine") + frame(1, b"not here")
    return out


def utf8_stream():
    texts = {
        "ascii": b"plain ascii text",
        "mixed": "aé€😀z".encode() * 3,
        "cjk": "漢字かなカナ".encode(),
        "invalid_byte": b"abc\xffdef",
        "lone_continuation": b"ab\x80",
        "broken_char": b"ab\xe2\x82x",
        "overlong": b"\xc0\xaf",
        "surrogate": b"\xed\xa0\x80",
        "above_max": b"\xf4\x90\x80\x80",
        "cut_at_end": b"ok\xf0\x9f\x98",
        "empty": b"",
    }
    return {k: bytes([len(k)]) + v for k, v in texts.items()}


def close_frame():
    return {
        "empty": b"",
        "one_byte": b"\x03",
        "normal": struct.pack(">H", 1000),
        "going_away": struct.pack(">H", 1001) + b"going away",
        "no_status": struct.pack(">H", 1005),
        "abnormal": struct.pack(">H", 1006),
        "tls": struct.pack(">H", 1015),
        "bad_gateway": struct.pack(">H", 1014),
        "reserved": struct.pack(">H", 2000),
        "app": struct.pack(">H", 4000) + "😀 bye".encode(),
        "too_high": struct.pack(">H", 5000),
        "bad_reason": struct.pack(">H", 1000) + b"\xc3\x28",
        "long_reason": struct.pack(">H", 3000) + "é".encode() * 62,
    }


REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(ver_cmd, fam, body):
    return SIG + bytes([ver_cmd, fam]) + struct.pack(">H", len(body)) + body


def proxy_header():
    v4 = bytes([192, 0, 2, 1, 198, 51, 100, 7]) + struct.pack(">HH", 12345, 443)
    v6 = bytes(range(32)) + struct.pack(">HH", 4711, 443)
    tlv = bytes([0x04, 0x00, 0x03]) + b"abc"  # a NOOP TLV
    unix = bytes(108) + bytes(108)
    heads = {
        "v1_tcp4": b"PROXY TCP4 192.0.2.1 198.51.100.7 12345 443\r\n",
        "v1_tcp6": b"PROXY TCP6 2001:db8::1 2001:db8::2 4711 443\r\n",
        "v1_unknown": b"PROXY UNKNOWN\r\n",
        "v1_longest": b"PROXY UNKNOWN " + b" ".join([b"ffff:" * 7 + b"ffff"] * 2) + b" 65535 65535\r\n",
        "v1_no_cr": b"PROXY TCP4 192.0.2.1 198.51.100.7 12345 443\n",
        "v1_stray_cr": b"PROXY TCP4 1.2.3.4\r 5.6.7.8 1 2\r\n",
        "v1_too_long": b"PROXY TCP4 " + b"1" * 120 + b"\r\n",
        "v2_tcp4": v2(0x21, 0x11, v4),
        "v2_tcp6": v2(0x21, 0x21, v6),
        "v2_tcp4_tlv": v2(0x21, 0x11, v4 + tlv),
        "v2_local": v2(0x20, 0x00, b""),
        "v2_unix": v2(0x21, 0x31, unix),
        "v2_udp4": v2(0x21, 0x12, v4),
        "v2_short_body": v2(0x21, 0x11, v4[:6]),
        "v2_too_long": SIG + bytes([0x21, 0x11]) + struct.pack(">H", 5000),
        "v2_bad_version": v2(0x11, 0x11, v4),
        "not_proxy": REQUEST,
    }
    out = {}
    for i, (k, v) in enumerate(heads.items()):
        out[k] = bytes([i]) + v + REQUEST
    # Addresses for the gateway's own v2 header (the target reads 37 bytes when present).
    out["v2_roundtrip_mixed"] = bytes([0x42]) + b"\x01" + bytes(range(1, 37))
    return out


def upgrade_request():
    base = [
        b"GET /chat?x=1 HTTP/1.1",
        b"Host: server.example.com",
        b"Upgrade: websocket",
        b"Connection: keep-alive, Upgrade",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        b"Origin: http://example.com",
        b"Sec-WebSocket-Version: 13",
    ]

    def head(lines):
        return b"\r\n".join(lines) + b"\r\n\r\n"

    h2 = 1 | (1 << 2)  # HTTP/2 with :protocol websocket
    subs = 2 << 4  # the route speaks chat and binary
    return {
        "rfc6455": bytes([0]) + head(base),
        "subprotocols": bytes([subs]) + head(base + [b"Sec-WebSocket-Protocol: bearer.abc, binary, chat"]),
        "no_subprotocol": bytes([1 << 4]) + head(base),
        "browser": bytes([0]) + head(base[:1] + [
            b"Host: 127.0.0.1:8080", b"Connection: Upgrade", b"Pragma: no-cache",
            b"Upgrade: websocket", b"Origin: https://app.example",
            b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==",
            b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
        ]),
        "http2_connect": bytes([h2]) + head([b"CONNECT /chat HTTP/1.1", b"Sec-WebSocket-Version: 13"]),
        "http2_get": bytes([1]) + head([b"GET /chat HTTP/1.1", b"Sec-WebSocket-Version: 13"]),
        "http10": bytes([0]) + head([b"GET / HTTP/1.0"] + base[1:]),
        "plain_get": bytes([0]) + head([b"GET / HTTP/1.1", b"Host: x"]),
        "post": bytes([0]) + head([b"POST / HTTP/1.1"] + base[1:]),
        "version_8": bytes([0]) + head(base[:-1] + [b"Sec-WebSocket-Version: 8"]),
        "two_keys": bytes([0]) + head(base + [b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]),
        "short_key": bytes([0]) + head(base[:4] + [b"Sec-WebSocket-Key: c2hvcnQ="] + base[5:]),
    }


def forwarded_header():
    return {
        "xff": bytes([0]) + b"X-Forwarded-For: 203.0.113.7, 10.1.0.4\nX-Forwarded-For: 10.0.0.3",
        "xff_ports": bytes([2]) + b"X-Forwarded-For: 203.0.113.7:5555, [2001:db8::9]:443, unknown",
        "forwarded": bytes([1]) + b"Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43, for=10.0.0.3",
        "forwarded_v6": bytes([3]) + b'Forwarded: for="[2001:db8:cafe::17]:4711"',
        "forwarded_quoted": bytes([1]) + b'Forwarded: for="_hidden, with comma";proto=https, for=unknown',
        "forwarded_both": bytes([5]) + b"Forwarded: proto=https\nX-Forwarded-For: 198.51.100.2\nForwarded: For=\"10.0.0.1\"",
        "forwarded_broken": bytes([1]) + b'Forwarded: for="unterminated, for=1.2.3.4;for=5.6.7.8',
        "spoof": bytes([6]) + b"X-Forwarded-For: 1.1.1.1, 10.9.9.9",
    }


def config_units():
    values = ["64KiB", "30s", "1m 30s", "500ms", "off", "none", "10/s", "600/m", "1000/h",
              "1MiB", "65536", "1.5GB", "2h 5m", "1year 2months", "0s", "16EiB", " 7 kb "]
    return {v.strip().replace(" ", "_").replace("/", "_per_").replace(".", "_") or "space": v.encode()
            for v in values}


TARGETS = {
    "frame_reader": frame_reader,
    "utf8_stream": utf8_stream,
    "close_frame": close_frame,
    "proxy_header": proxy_header,
    "upgrade_request": upgrade_request,
    "forwarded_header": forwarded_header,
    "config_units": config_units,
}

if __name__ == "__main__":
    for target, make in TARGETS.items():
        folder = os.path.join(HERE, target)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for name, data in make().items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
