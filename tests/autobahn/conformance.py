#!/usr/bin/env python3
"""Autobahn fuzzingclient cases 1-10 (run by kosoku) against a running wsgate, judged as a
byte pipe: runs each case on the route that suits it, judges it (README.md in this
directory says how), compares every outcome with expected.json, prints a table and exits 1
on any difference, and on any case where the gateway ended the TCP connection without a
close frame."""

import argparse
import asyncio
import importlib.metadata
import json
import os
import re
import sys
import time
from dataclasses import dataclass

from kosoku import FailureError, run_fuzzingclient

KOSOKU_VERSION = "0.1.0"
SECTIONS = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"]
OUTCOMES = {"OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED-BY-CONSTRUCTION", "FAILED"}
BY_CONSTRUCTION = "FAILED-BY-CONSTRUCTION"
DROPPED = "DROPPED"
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED"}
CLOSE_PASSING = {"OK", "INFORMATIONAL"}
OP_CLOSE = 8
OP_PING = 9
DATA_OPS = (0, 1, 2)

# What the timed cases (9.x) say when the echo does not match: they keep no event list.
FIRST_SHORT = re.compile(r"Expected (text|binary) message with payload of length (\d+), but got (\d+)\.")
ECHO_DIFFERS = re.compile(r"Echo'ed message type or length differs .*\(got binary = (True|False), payload length = (\d+)\)")
NO_ECHO = re.compile(r"Case did not finish within \d+ seconds\.")
ROUND_TRIPS = re.compile(r"Send \d+ (text|binary) messages of payload size (\d+)")


@dataclass
class Judged:
    case: str
    route: str
    outcome: str
    kosoku: str  # kosoku's own verdict: behavior/behaviorClose
    end: str  # how the connection ended, as kosoku saw it
    note: str


def case_key(case_id: str) -> tuple:
    return tuple(int(part) for part in case_id.split("."))


def load_expected(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    problems = []
    for case, e in doc["cases"].items():
        if e.get("route") not in ("binary", "text"):
            problems.append(f"{case}: route must be binary or text")
        if not isinstance(e.get("also", []), list):
            problems.append(f"{case}: also must be a list")
            continue
        for outcome in [e.get("outcome")] + e.get("also", []):
            if outcome not in OUTCOMES:
                problems.append(f"{case}: {outcome!r} is not one of {sorted(OUTCOMES)}")
        if (e.get("outcome") != "OK" or "also" in e) and not e.get("reason"):
            problems.append(f"{case}: every outcome but OK, and every `also`, needs a reason")
    if problems:
        sys.exit("expected.json:\n  " + "\n  ".join(problems))
    return doc["cases"]


# --- how the connection ended ------------------------------------------------------------


def connection_end(r) -> tuple[str, bool]:
    """A description, and whether it is acceptable: the gateway's close frame arrived, or
    kosoku ended the connection itself. The one exception kosoku provokes: after its own
    close it sends another close frame for every message still arriving; once the gateway
    has replied and closed, those meet a closed socket, the kernel answers with a reset,
    and the reset discards the gateway's close reply before kosoku reads it."""
    if r.rx_frame_stats.get(OP_CLOSE, 0):
        code = r.remote_close_code
        return f"close {code if code is not None else '(empty)'}", True
    if r.dropped_by_me:
        return "kosoku dropped", True
    sent_closes = r.tx_frame_stats.get(OP_CLOSE, 0)
    if r.closed_by_me and sent_closes > 1:
        return f"reply lost: kosoku sent {sent_closes} closes", True
    return "TCP ended without a close frame", False


# --- the byte-pipe judgement -------------------------------------------------------------


def payload_bytes(payload, binary: bool) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return payload.encode("latin-1" if binary else "utf-8")


def split_events(events) -> tuple[bytes, int, set, list]:
    """Data bytes in order, message count, message types seen, and the other events."""
    data, count, kinds, control = bytearray(), 0, set(), []
    for ev in events or []:
        if ev[0] == "message":
            data += payload_bytes(ev[1], ev[2])
            count += 1
            kinds.add(bool(ev[2]))
        else:
            control.append(tuple(ev))
    return bytes(data), count, kinds, control


def sent_frames(r) -> tuple[bytes, list[int]] | None:
    """What kosoku sent, decoded from the octets in its wire log: the data-frame payloads
    joined, and for each ping how many of those bytes went before it. None where the log
    is off or cut a write short (it keeps 64 octets of each)."""
    if not r.wirelog:
        return None
    wire = bytearray()
    for entry in r.wirelog:
        if entry[0] != "TO":
            continue
        length, shown = entry[1]
        try:
            octets = bytes.fromhex(shown)
        except ValueError:
            return None
        if len(octets) != length:
            return None
        wire += octets
    data, pings, pos = bytearray(), [], 0
    while pos + 2 <= len(wire):
        opcode, masked, size = wire[pos] & 0x0F, wire[pos + 1] & 0x80, wire[pos + 1] & 0x7F
        pos += 2
        if size >= 126:
            width = 2 if size == 126 else 8
            size = int.from_bytes(wire[pos : pos + width], "big")
            pos += width
        mask = wire[pos : pos + 4] if masked else b"\0\0\0\0"
        pos += 4 if masked else 0
        payload = wire[pos : pos + size]
        pos += size
        if opcode in DATA_OPS:
            data += bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        elif opcode == OP_PING:
            pings.append(len(data))
    return bytes(data), pings


def pongs_in_time(received, pings: list[int]) -> bool:
    """No pong comes after the echo of data sent after its ping: the gateway answers a ping
    when it reads it, before anything the backend says later."""
    echoed, pong = 0, 0
    for ev in received or []:
        if ev[0] == "message":
            echoed += len(payload_bytes(ev[1], ev[2]))
        elif ev[0] == "pong":
            if pong < len(pings) and echoed > pings[pong]:
                return False
            pong += 1
    return True


def explain_events(r, binary_route: bool) -> str | None:
    """Why a case with an expected event list failed, if a byte pipe explains it: the same
    bytes in the same order with other message boundaries (re-chunked, empty messages
    gone), or the valid bytes of a message that was then failed, echoed before the close;
    pings, pongs and kosoku's timer marks as expected, each pong in time."""
    got, got_count, got_kinds, got_control = split_events(r.received)
    if got_kinds - {binary_route}:
        return None
    sent = sent_frames(r)
    if sent is not None and not pongs_in_time(r.received, sent[1]):
        return None
    for events in r.expected.values():
        want, want_count, _, want_control = split_events(events)
        if got_control != want_control:
            continue
        if got == want:
            if got_count == want_count:
                return "same bytes and messages, the pongs among them elsewhere"
            vanished = sum(1 for ev in events if ev[0] == "message" and not ev[1])
            if vanished and got_count == want_count - vanished:
                return f"{vanished} empty message(s) vanished: no bytes to carry"
            return f"{len(got)} bytes echoed as {got_count} message(s) for {want_count}"
        code = r.remote_close_code
        if (
            sent is not None
            and got.startswith(want)
            and sent[0].startswith(got)
            and code in r.expected_close.get("closeCode", [])
        ):
            return f"{len(got) - len(want)} valid bytes reached the backend and came back before close {code}"
    return None


def explain_timed(r, binary_route: bool) -> str | None:
    """The 9.x cases keep no event list; their result text says what the echo was."""
    kind = "binary" if binary_route else "text"
    if m := FIRST_SHORT.fullmatch(r.result):
        if m[1] == kind and int(m[3]) < int(m[2]):
            return f"echo split: first message {m[3]} of {m[2]} bytes"
        return None
    trips = ROUND_TRIPS.search(r.description)
    if trips is None or trips[1] != kind:
        return None
    size = int(trips[2])
    if m := ECHO_DIFFERS.search(r.result):
        if (m[1] == "True") == binary_route and int(m[2]) < size:
            return f"echo split: a {size}-byte message came back as {m[2]} bytes first"
        return None
    data_back = sum(r.rx_frame_stats.get(op, 0) for op in DATA_OPS)
    if NO_ECHO.fullmatch(r.result) and size == 0 and data_back == 0:
        return "empty messages vanish: no echo to wait for"
    return None


def close_explained(r) -> bool:
    """The close part of a failed case: kosoku's close verdict passed, or kosoku ended the
    case itself because it was still waiting for the echo to match (it starts the close
    only after a match), or the reset above."""
    if r.behavior_close.value in CLOSE_PASSING:
        return True
    got_close = r.rx_frame_stats.get(OP_CLOSE, 0) > 0
    if r.dropped_by_me and not got_close and r.expected_close.get("closedByMe"):
        return True
    return r.closed_by_me and not got_close and r.tx_frame_stats.get(OP_CLOSE, 0) > 1


def judge(r, route: str) -> Judged:
    behavior, close = r.behavior.value, r.behavior_close.value
    verdict = f"{behavior}/{close}"
    status = (r.http_response or "no response").split("\r\n", 1)[0]
    if not status.startswith("HTTP/1.1 101 "):
        return Judged(r.case_id, route, "FAILED", verdict, "no upgrade", status)
    end, end_ok = connection_end(r)
    if not end_ok:
        return Judged(r.case_id, route, DROPPED, verdict, end, "the gateway ended TCP without a close frame")
    if behavior in PASSING and close in CLOSE_PASSING:
        return Judged(r.case_id, route, behavior, verdict, end, "")
    binary_route = route == "binary"
    why = explain_events(r, binary_route) if r.expected else explain_timed(r, binary_route)
    if why and close_explained(r):
        return Judged(r.case_id, route, BY_CONSTRUCTION, verdict, end, why)
    return Judged(r.case_id, route, "FAILED", verdict, end, f"{r.result} / {r.result_close}")


# --- running -----------------------------------------------------------------------------


async def run_cases(url: str, include: list[str], exclude: list[str]) -> list:
    if not include:
        return []
    try:
        return await run_fuzzingclient(url, include, exclude or None)
    except FailureError as failure:  # some case failed; the results are all there
        return failure.results
    except ValueError as e:  # a case id kosoku does not have: its group reports "did not run"
        print(f"kosoku: {e}")
        return []


def groups(cases: list[str]) -> list[list[str]]:
    """Sections 1-7 and 10 whole, 9 by subsection: one kosoku run each, so a run that
    hangs is named."""
    by_group = {}
    for case in cases:
        parts = case.split(".")
        by_group.setdefault(".".join(parts[:2] if parts[0] == "9" else parts[:1]), []).append(case)
    return [by_group[g] for g in sorted(by_group, key=case_key)]


async def run_route(url: str, route: str, cases: list[str], running: dict) -> list:
    """The cases one group after another, each group one case at a time."""
    results = []
    for group in groups(cases):
        running[route] = f"{group[0]}..{group[-1]}"
        results += [(r, route) for r in await run_cases(url, group, [])]
    running.pop(route)
    return results


async def run_routes(binary_url: str, text_url: str, cases: dict, running: dict) -> list:
    """Both routes at once (the two runs overlap their waits), then any case kosoku has
    that expected.json does not list, on the binary route: it shows up as a difference."""
    on = {route: sorted((c for c, e in cases.items() if e["route"] == route), key=case_key) for route in ("binary", "text")}
    binary, text = await asyncio.gather(
        run_route(binary_url, "binary", on["binary"], running),
        run_route(text_url, "text", on["text"], running),
    )
    running["binary"] = "cases not in expected.json"
    unlisted = await run_cases(binary_url, SECTIONS, sorted(cases, key=case_key))
    running.pop("binary")
    return binary + text + [(r, "binary") for r in unlisted]


def write_reports(results, outdir: str) -> None:
    """kosoku's own HTML/JSON reports, for reading a failure in detail."""
    try:
        from kosoku._report import write_reports as write  # not public API: best effort
    except ImportError as e:
        print(f"(no kosoku reports: {e})")
        return
    for route in ("binary", "text"):
        write([r for r, rt in results if rt == route], os.path.join(outdir, route))


def allowed(e: dict) -> list[str]:
    """The outcome, and those that timing alone can give instead."""
    return [e["outcome"]] + e.get("also", [])


def compare(expected: dict, judged: list[Judged]) -> list[str]:
    diffs = []
    seen = set()
    for j in judged:
        seen.add(j.case)
        e = expected.get(j.case)
        if j.outcome == DROPPED:
            diffs.append(f"{j.case}: the gateway ended TCP without a close frame ({j.kosoku})")
        elif e is None:
            diffs.append(f"{j.case}: no expectation; observed {j.outcome} on {j.route} ({j.note or j.kosoku})")
        elif j.route != e["route"]:
            diffs.append(f"{j.case}: ran on {j.route}, expected on {e['route']}")
        elif j.outcome not in allowed(e):
            was = " or ".join(allowed(e))
            diffs.append(f"{j.case}: expected {was}, got {j.outcome} ({j.note or j.kosoku})")
    for case in sorted(set(expected) - seen, key=case_key):
        diffs.append(f"{case}: expected {expected[case]['outcome']}, but the case did not run")
    return diffs


def print_table(judged: list[Judged], expected: dict) -> None:
    rows = [("case", "route", "outcome", "expected", "kosoku", "connection end", "note")]
    for j in judged:
        e = expected.get(j.case, {})
        want = "|".join(allowed(e)) if e else "-"
        rows.append((j.case, j.route, j.outcome, want, j.kosoku, j.end, j.note[:90]))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[6])


def write_observed(path: str, judged: list[Judged], expected: dict) -> None:
    """expected.json as this run saw it, keeping reasons where the outcome is unchanged."""
    cases = {}
    for j in judged:
        old = expected.get(j.case, {})
        entry = {"route": j.route, "outcome": j.outcome}
        if old and j.outcome in allowed(old):
            entry = {k: v for k, v in old.items()}
        elif j.outcome != "OK":
            entry["reason"] = f"TODO: {j.note}"
        cases[j.case] = entry
    dump_expected(path, cases)


def dump_expected(path: str, cases: dict) -> None:
    """One case a line, in case order, so a changed expectation is a one-line diff."""
    lines = [
        f"  {json.dumps(case)}: {json.dumps(cases[case], ensure_ascii=False)}"
        for case in sorted(cases, key=case_key)
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.write(f'{{\n "kosoku": "{KOSOKU_VERSION}",\n "cases": {{\n')
        f.write(",\n".join(lines))
        f.write("\n }\n}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary-url", required=True, help="ws:// URL of the binary echo route")
    parser.add_argument("--text-url", required=True, help="ws:// URL of the text echo route")
    parser.add_argument("--expected", required=True, help="expected.json")
    parser.add_argument("--deadline", type=float, default=480, help="seconds the whole run may take")
    parser.add_argument("--reports", help="directory for kosoku's HTML/JSON reports")
    parser.add_argument("--write-observed", metavar="FILE", help="write this run's outcomes as expected.json")
    args = parser.parse_args()

    installed = importlib.metadata.version("kosoku")
    if installed != KOSOKU_VERSION:
        print(f"kosoku {installed} is installed; the expectations are for {KOSOKU_VERSION}")
        return 1
    expected = load_expected(args.expected)

    started = time.monotonic()
    running = {}  # route -> the cases kosoku is on
    try:
        results = asyncio.run(
            asyncio.wait_for(run_routes(args.binary_url, args.text_url, expected, running), args.deadline)
        )
    except TimeoutError:
        where = "; ".join(f"{route} route on {cases}" for route, cases in running.items())
        print(f"the cases did not finish within {args.deadline:.0f} s; still running: {where}")
        return 1
    elapsed = time.monotonic() - started

    judged = sorted((judge(r, route) for r, route in results), key=lambda j: case_key(j.case))
    if args.reports:
        write_reports(results, args.reports)
    if args.write_observed:
        write_observed(args.write_observed, judged, expected)
    print_table(judged, expected)
    counts = {}
    for j in judged:
        counts[j.outcome] = counts.get(j.outcome, 0) + 1
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    print(f"\n{len(judged)} cases in {elapsed:.0f} s: {summary}")
    diffs = compare(expected, judged)
    if diffs:
        print(f"\n{len(diffs)} difference(s) from {args.expected}:")
        for d in diffs:
            print(f"  {d}")
        return 1
    print(f"every outcome as in {args.expected}")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # kosoku's native runtime can abort while the interpreter tears down; skip that.
    os._exit(code)
