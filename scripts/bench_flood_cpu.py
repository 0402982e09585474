"""CPU the daemon spends against a flag-flooding meter, as a ratio to a silent one.

``dlms --once`` (a real subprocess) reads three registers from one HDLC device over
TCP, ``timeout_ms`` (default 5000) and ``retry_counter`` 0, against:

* silent (the reference): a TCP listener that takes every octet and answers none;
  the daemon waits one timeout for the UA of its SNRM and gives up;
* flood: ``dlms-sim --fault flag-flood``: after the association the meter answers the
  first GET with an endless stream of ``7E A0`` octets (each pair reads as a frame start
  claiming 126 octets) until the daemon closes the connection;
* flood, unbounded (``--unbounded``): the same with the reader's MAX_NOISE_OCTETS
  raised out of reach, so that the flood lasts the whole timeout: the cost of the
  deframer's work per octet alone.

Figures per run: the daemon process's user and system CPU (``os.wait4``), wall time,
max RSS, how long its longest release took (from the reader's ``closing`` note to
the end of its session in the log), the device error; then each flood's CPU as a
ratio to the silent run's (the same process start; only what the line brings
differs).  ``--profile`` also runs the unbounded flood under cProfile and prints its
top 25 functions.

``--every-kind`` instead runs every hostile meter of ``dlms-sim --fault`` (garbage,
stale-flood, huge-length, null-bomb, slow-loris, stall-mid-block, close-after-aare,
flag-flood) against one device, HDLC and wrapper, LN and SN, with ``--timeout-ms``
(here 500 unless given) and ``--retries`` (3): one line per run with the same figures
and the device error, so that a run that takes more time, CPU or memory than the
others shows.

    .venv/bin/python scripts/bench_flood_cpu.py [--timeout-ms 5000] [--runs 1]
        [--unbounded] [--profile]
    .venv/bin/python scripts/bench_flood_cpu.py --every-kind [--timeout-ms 500]
        [--retries 3]

Prints one line per figure; nothing is judged against a fixed threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CODES = ["1.0.1.8.0.255", "1.0.32.7.0.255", "0.0.96.1.1.255"]
# The daemon, with the reader's flood bound out of reach when asked (--unbounded).
DAEMON = ("import sys, dlmsd.protocol.reader as reader\n"
          "if sys.argv.pop(1) == 'unbounded': reader.MAX_NOISE_OCTETS = 1 << 62\n"
          "from dlmsd.cli import main\n"
          "main(prog_name='dlms')\n")


@contextmanager
def silent_meter() -> Iterator[int]:
    """A TCP listener that reads everything and answers nothing; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.2)
                while not stop.is_set():
                    try:
                        if not conn.recv(4096):
                            break
                    except TimeoutError:
                        continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


@contextmanager
def flooding_meter(fault: str = "flag-flood", link: str = "hdlc",
                   referencing: str = "LN") -> Iterator[int]:
    """``dlms-sim --fault fault`` on a TCP port of ``link``; yields the port."""
    sim = subprocess.Popen(
        [sys.executable, "-c", "from dlmsd.sim.cli import main; main()", "--host",
         "127.0.0.1", f"--{link}-port", "0", "--referencing", referencing,
         "--fault", fault],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline()
        match = re.search(link + r"=[\d.]+:(\d+)", line)
        if not match:
            raise SystemExit(f"dlms-sim did not start: {line!r}")
        yield int(match.group(1))
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        if sim.stdout is not None:
            sim.stdout.close()


def config(port: int, timeout_ms: int, link: str = "hdlc", referencing: str = "LN",
           retries: int = 0) -> dict[str, Any]:
    device: dict[str, Any] = {
        "name": "m", "device_alias": "m", "protocol": "DLMS", "client_address": 16,
        "ip": "127.0.0.1", "port": port, "logical_address": 1, "timeout_ms": timeout_ms,
        "retry_counter": retries, "type": referencing}
    if link == "hdlc":
        device.update(mode="DLMS-HDLC", address_size=2, physical_address=1)
    else:
        device.update(mode="DLMS-WRAPPER")
    signals = [{"signal_name": o, "device_alias": "m", "signal_alias": f"s{i}", "obis": o}
               for i, o in enumerate(CODES)]
    return {"devices": [device], "signals": signals}


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\S+)\s")


_SESSION_END = re.compile(r"\] (reconnect_now|device_offline|device_online) ")


def release_seconds(log: str) -> float | None:
    """The longest release: from a ``closing`` note of the reader to the line of the
    poller that follows the session's end (or the log's last line)."""
    longest = start = last = None
    for line in log.splitlines():
        match = _STAMP.match(line)
        if not match:
            continue
        last = datetime.fromisoformat(match.group(1))
        if start is None and "] closing " in line:
            start = last
        elif start is not None and _SESSION_END.search(line):
            took = (last - start).total_seconds()
            longest, start = max(longest or 0.0, took), None
    if start is not None and last is not None:
        longest = max(longest or 0.0, (last - start).total_seconds())
    return longest


def daemon_args(path: Path, unbounded: bool) -> list[str]:
    """The daemon's command line for the configuration at ``path``; its starter script
    is written next to it."""
    starter = path.with_name("daemon.py")
    starter.write_text(DAEMON, encoding="utf-8")
    return [sys.executable, str(starter), "unbounded" if unbounded else "bounded",
            "-c", str(path), "--once", "--json", "-d", "7"]


def measure(device: dict[str, Any], unbounded: bool = False) -> dict[str, Any]:
    """One ``dlms --once`` run with the configuration ``device``; its CPU taken with
    os.wait4."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dlms.json"
        path.write_text(json.dumps(device), encoding="utf-8")
        log = Path(tmp) / "err.log"
        with log.open("w") as sink, open(os.devnull, "w") as null:
            started = time.monotonic()
            pid = os.posix_spawn(sys.executable, daemon_args(path, unbounded), os.environ,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, null.fileno(), 1),
                                               (os.POSIX_SPAWN_DUP2, sink.fileno(), 2)])
            _pid, status, usage = os.wait4(pid, 0)
            wall = time.monotonic() - started
        text = log.read_text(encoding="utf-8")
    errors = re.findall(r"device_offline device=m error=(.*?) kind=", text)
    return {"user": usage.ru_utime, "sys": usage.ru_stime, "wall": wall,
            "rss_kib": usage.ru_maxrss, "status": os.waitstatus_to_exitcode(status),
            "release": release_seconds(text), "error": errors[0] if errors else "-"}


HOSTILE = ("garbage", "stale-flood", "huge-length", "null-bomb", "slow-loris",
           "stall-mid-block", "close-after-aare", "flag-flood")


def every_kind(timeout_ms: int, retries: int) -> None:
    """Every hostile meter, HDLC and wrapper, LN and SN: one line each."""
    print(f"timeout_ms {timeout_ms}, retry_counter {retries}")
    for fault in HOSTILE:
        for referencing in ("LN", "SN"):
            for link in ("hdlc", "wrapper"):
                with flooding_meter(fault, link, referencing) as port:
                    f = measure(config(port, timeout_ms, link, referencing, retries))
                release = "-" if f["release"] is None else f"{f['release']:.2f}"
                print(f"{fault:16} {referencing} {link:7} wall {f['wall']:5.2f} s  cpu "
                      f"{f['user'] + f['sys']:4.2f} s  release {release:>4} s  rss "
                      f"{f['rss_kib'] / 1024:3.0f} MiB  exit {f['status']}  {f['error']}",
                      flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--timeout-ms", type=int, default=None,
                        help="5000 (500 with --every-kind)")
    parser.add_argument("--retries", type=int, default=3, help="with --every-kind")
    parser.add_argument("--every-kind", action="store_true",
                        help="every hostile meter, HDLC and wrapper, LN and SN")
    parser.add_argument("--runs", type=int, default=1, help="runs of each; the least CPU kept")
    parser.add_argument("--unbounded", action="store_true",
                        help="also a flood run without the reader's noise bound")
    parser.add_argument("--profile", action="store_true",
                        help="run the unbounded flood under cProfile, print its top 25")
    options = parser.parse_args()
    os.chdir(ROOT)
    if options.every_kind:
        every_kind(options.timeout_ms or 500, options.retries)
        return
    options.timeout_ms = options.timeout_ms or 5000
    kinds = [("silent", False), ("flood", False)]
    if options.unbounded:
        kinds.append(("flood-unbounded", True))
    best: dict[str, dict[str, Any]] = {}
    for _ in range(options.runs):
        for name, unbounded in kinds:
            meter = silent_meter() if name == "silent" else flooding_meter()
            with meter as port:
                figures = measure(config(port, options.timeout_ms), unbounded)
            cpu = figures["user"] + figures["sys"]
            if name not in best or cpu < best[name]["user"] + best[name]["sys"]:
                best[name] = figures
    for name, f in best.items():
        release = "-" if f["release"] is None else f"{f['release']:.2f} s"
        print(f"{name:15} user {f['user']:.2f} s  sys {f['sys']:.2f} s  wall {f['wall']:.2f} s"
              f"  release {release}  max RSS {f['rss_kib'] / 1024:.0f} MiB  exit {f['status']}"
              f"\n{'':15} error: {f['error']}")
    cpu = {name: f["user"] + f["sys"] for name, f in best.items()}
    for name in cpu:
        if name != "silent":
            print(f"{name}/silent CPU ratio {cpu[name] / cpu['silent']:.2f}")
    print(f"(timeout_ms {options.timeout_ms}, retry_counter 0, least CPU of {options.runs})")
    if options.profile:
        with tempfile.TemporaryDirectory() as tmp, flooding_meter() as port:
            path = Path(tmp) / "dlms.json"
            path.write_text(json.dumps(config(port, options.timeout_ms)), encoding="utf-8")
            stats = Path(tmp) / "flood.prof"
            args = daemon_args(path, True)
            subprocess.run([args[0], "-m", "cProfile", "-o", str(stats), *args[1:]],
                           capture_output=True, timeout=120, check=False)
            pstats.Stats(str(stats)).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
