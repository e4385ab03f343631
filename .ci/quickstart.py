#!/usr/bin/env python3
"""The README's quick start, run exactly as the README prints it.

The quick start is the first ```sh block under the README's "## Quick start" heading: its
first command starts the demo, its second runs the tests. Reading them from the README
means that when the README changes, what CI runs changes with it.

  python3 .ci/quickstart.py command N   print command N (from 1) as the README has it
  python3 .ci/quickstart.py smoke       run command 1 and check it as a newcomer would:
                                        wait for "listening", GET the demo's page, send a
                                        message through the gateway with a WebSocket client
                                        and get it back, stop it with SIGTERM (the session
                                        closes with 1001), expect exit status 0

Needs the `websockets` package (>= 13; .ci/run installs it).
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
HEADING = re.compile(r"^##\s+Quick start\s*$", re.IGNORECASE)
FENCE_OPEN = re.compile(r"^```(sh|bash|shell)\s*$")
# The first run builds the release binary: on a busy two-core machine that takes minutes.
LISTENING_WITHIN = 40 * 60
PATIENCE = 30
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def fail(message):
    print(f"quickstart: {message}", file=sys.stderr)
    sys.exit(1)


def quickstart_commands():
    """The commands of the README's quick-start block, in order, as printed."""
    lines = README.read_text(encoding="utf-8").splitlines()
    where = f"{README.name}: the first ```sh block under '## Quick start'"
    start = next((i for i, line in enumerate(lines) if HEADING.match(line)), None)
    if start is None:
        fail(f"{README.name} has no '## Quick start' heading; CI runs the commands of {where}")
    block = None
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("#"):
            break  # the next heading: the section ended without a block
        if FENCE_OPEN.match(lines[i]):
            block = []
            for line in lines[i + 1 :]:
                if line.startswith("```"):
                    break
                block.append(line)
            else:
                fail(f"{where} is never closed")
            break
    if block is None:
        fail(f"{where} was not found")
    commands = [line.strip() for line in block if line.strip() and not line.lstrip().startswith("#")]
    if len(commands) < 2:
        fail(f"{where} should hold two commands (the demo, then the tests); found {commands}")
    return commands


class Output:
    """The lines a process prints, collected by a thread as they come."""

    def __init__(self, pipe):
        self.lines = []
        self.cond = threading.Condition()
        self.ended = False
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe):
        for raw in pipe:
            line = ANSI.sub("", raw.decode("utf-8", "replace")).rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.ended = True
            self.cond.notify_all()

    def wait_for(self, pattern, within):
        deadline = time.monotonic() + within
        seen = 0
        with self.cond:
            while True:
                for line in self.lines[seen:]:
                    if pattern.search(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if self.ended or left <= 0:
                    return None
                self.cond.wait(min(left, 5))

    def tail(self, n=60):
        with self.cond:
            return "\n".join(self.lines[-n:])


def smoke():
    try:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect
    except ImportError:
        fail("the Python websockets package (>= 13) is missing: python3 -m pip install websockets")

    command = quickstart_commands()[0]
    print(f"quickstart: running the README's first command: {command}", flush=True)
    # Its own session, so that SIGTERM reaches the gateway (cargo run execs it) and a
    # failure here can stop all of it.
    proc = subprocess.Popen(
        ["bash", "-c", command],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out = Output(proc.stdout)

    def give_up(message):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        fail(f"{message}\n--- its output, last lines ---\n{out.tail()}")

    listening = out.wait_for(re.compile(r"\blistening\b"), LISTENING_WITHIN)
    if listening is None:
        give_up(f"no 'listening' line from `{command}` (exit status {proc.poll()})")
    found = re.search(r'addr(?:=|":")([0-9.]+:[0-9]+)', listening)
    if not found:
        give_up(f"no address in the listening line: {listening}")
    addr = found.group(1)
    print(f"quickstart: listening on {addr}", flush=True)

    try:
        with urllib.request.urlopen(f"http://{addr}/", timeout=PATIENCE) as page:
            body = page.read().decode("utf-8", "replace")
            if page.status != 200 or "new WebSocket(" not in body:
                give_up(f"GET http://{addr}/ did not return the demo page: {page.status}")
    except OSError as e:
        give_up(f"GET http://{addr}/ failed: {e}")

    message = "hello through the README's quick start"
    try:
        with connect(f"ws://{addr}/", open_timeout=PATIENCE, close_timeout=PATIENCE) as ws:
            ws.send(message)
            echo = ws.recv(timeout=PATIENCE)
            if echo != message.encode():
                give_up(f"sent {message!r}, got back {echo!r}")
            print("quickstart: the message came back through the gateway", flush=True)
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                ws.recv(timeout=PATIENCE)
                give_up("the session stayed open after SIGTERM")
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                if code != 1001:
                    give_up(f"after SIGTERM the session closed with {code}, not 1001")
    except (OSError, TimeoutError) as e:
        give_up(f"WebSocket to ws://{addr}/ failed: {e!r}")

    try:
        status = proc.wait(timeout=PATIENCE * 2)
    except subprocess.TimeoutExpired:
        give_up("still running long after SIGTERM")
    if status != 0:
        give_up(f"exit status {status} after SIGTERM, not 0")
    print("quickstart: the session closed with 1001 and the demo exited 0 on SIGTERM", flush=True)


def main(args):
    if len(args) == 2 and args[0] == "command" and args[1].isdigit():
        commands = quickstart_commands()
        n = int(args[1])
        if not 1 <= n <= len(commands):
            fail(f"the quick start has {len(commands)} commands, not {n}")
        print(commands[n - 1])
    elif args == ["smoke"]:
        smoke()
    else:
        fail("usage: quickstart.py command N | smoke")


if __name__ == "__main__":
    main(sys.argv[1:])
