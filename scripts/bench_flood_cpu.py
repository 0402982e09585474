"""CPU the daemon spends against a flag-flooding meter, as a ratio to a silent one.

Two runs of ``dlms --once`` (a real subprocess) reading three registers from one
HDLC device over TCP, each against its own ``dlms-sim``:

* flood: ``--fault flag-flood``: after the association the meter answers the first GET
  with an endless stream of ``7E A0`` octets (each pair reads as a frame start claiming
  126 octets), until the daemon gives up on the GET and closes the connection;
* silent (the reference): ``--fault stall-mid-block``: the same association, then a
  GET answered with one block and nothing more; the daemon waits just as long.

Both with ``timeout_ms`` (default 5000) and ``retry_counter`` 0, so both wait one
timeout for the GET and then release.  Figures: the daemon process's user and system
CPU (``os.wait4``), its wall time, and how long the release took (the ``dlms --once``
log: from the GET given up on to the link closed), for each run, and the ratio of the
CPU of the flood run to that of the silent run (the same process start, association
and waiting; only the octets differ).  With ``--profile`` the flood run goes under
cProfile and its top functions are printed.

    .venv/bin/python scripts/bench_flood_cpu.py [--timeout-ms 5000] [--runs 1] [--profile]

Prints one line per figure; nothing is judged against a fixed threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CODES = ["1.0.1.8.0.255", "1.0.32.7.0.255", "0.0.96.1.1.255"]


def start_sim(fault: str) -> tuple[subprocess.Popen[str], int]:
    sim = subprocess.Popen(
        [sys.executable, "-c", "from dlmsd.sim.cli import main; main()", "--host",
         "127.0.0.1", "--hdlc-port", "0", "--fault", fault],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert sim.stdout is not None
    line = sim.stdout.readline()
    match = re.search(r"hdlc=[\d.]+:(\d+)", line)
    if not match:
        sim.kill()
        raise SystemExit(f"dlms-sim did not start: {line!r}")
    return sim, int(match.group(1))


def config(port: int, timeout_ms: int) -> dict[str, Any]:
    device = {"name": "m", "device_alias": "m", "protocol": "DLMS", "client_address": 16,
              "ip": "127.0.0.1", "port": port, "mode": "DLMS-HDLC", "address_size": 2,
              "logical_address": 1, "physical_address": 1, "timeout_ms": timeout_ms,
              "retry_counter": 0}
    signals = [{"signal_name": o, "device_alias": "m", "signal_alias": f"s{i}", "obis": o}
               for i, o in enumerate(CODES)]
    return {"devices": [device], "signals": signals}


_STAMP = re.compile(r"^(\S+T\S+?)\s")


def _release_seconds(log: str) -> float | None:
    """From the first line naming the unanswered GET to the last line of the device
    (the link closed): how long the release took, from the daemon's own log."""
    stamps = []
    start = None
    for line in log.splitlines():
        match = _STAMP.match(line)
        if not match:
            continue
        try:
            at = datetime.fromisoformat(match.group(1))
        except ValueError:
            continue
        stamps.append(at)
        if start is None and "no answer to GET" in line:
            start = at
    if start is None or not stamps:
        return None
    return (stamps[-1] - start).total_seconds()


def run_profiled(fault: str, timeout_ms: int, stats: Path) -> None:
    """One run of the daemon under cProfile, its statistics written to ``stats``."""
    sim, port = start_sim(fault)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "dlms.json"
            path.write_text(json.dumps(config(port, timeout_ms)), encoding="utf-8")
            subprocess.run([sys.executable, "-m", "cProfile", "-o", str(stats), "-m",
                            "dlmsd", "-c", str(path), "--once", "--json"],
                           capture_output=True, timeout=120, check=False)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        if sim.stdout is not None:
            sim.stdout.close()


def run_measured(fault: str, timeout_ms: int) -> dict[str, Any]:
    """One run, its CPU taken with os.wait4 (Popen would reap the child first)."""
    sim, port = start_sim(fault)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "dlms.json"
            path.write_text(json.dumps(config(port, timeout_ms)), encoding="utf-8")
            log = Path(tmp) / "err.log"
            with log.open("w") as sink, open(os.devnull, "w") as null:
                started = time.monotonic()
                pid = os.posix_spawn(sys.executable, [
                    sys.executable, "-m", "dlmsd", "-c", str(path), "--once", "--json",
                    "-d", "7"], os.environ,
                    file_actions=[(os.POSIX_SPAWN_DUP2, null.fileno(), 1),
                                  (os.POSIX_SPAWN_DUP2, sink.fileno(), 2)])
                _pid, status, usage = os.wait4(pid, 0)
                wall = time.monotonic() - started
            text = log.read_text(encoding="utf-8")
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        if sim.stdout is not None:
            sim.stdout.close()
    errors = re.findall(r"no answer to GET[^\n]*", text)
    return {"user": usage.ru_utime, "sys": usage.ru_stime, "wall": wall,
            "rss_kib": usage.ru_maxrss, "status": os.waitstatus_to_exitcode(status),
            "release": _release_seconds(text), "error": errors[0][:100] if errors else "-"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout-ms", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=1, help="runs of each, the least CPU kept")
    parser.add_argument("--profile", action="store_true",
                        help="also run the flood under cProfile and print its top 25")
    options = parser.parse_args()
    os.chdir(ROOT)
    best: dict[str, dict[str, Any]] = {}
    for _ in range(options.runs):
        for name, fault in (("silent", "stall-mid-block"), ("flood", "flag-flood")):
            figures = run_measured(fault, options.timeout_ms)
            cpu = figures["user"] + figures["sys"]
            if name not in best or cpu < best[name]["user"] + best[name]["sys"]:
                best[name] = figures
    for name, f in best.items():
        release = "?" if f["release"] is None else f"{f['release']:.2f}"
        print(f"{name:6} user {f['user']:.2f} s  sys {f['sys']:.2f} s  wall {f['wall']:.2f} s"
              f"  release {release} s  max RSS {f['rss_kib'] / 1024:.0f} MiB  exit"
              f" {f['status']}  error: {f['error']}")
    cpu = {name: f["user"] + f["sys"] for name, f in best.items()}
    print(f"flood/silent CPU ratio {cpu['flood'] / cpu['silent']:.2f} "
          f"(timeout_ms {options.timeout_ms}, retry_counter 0, best of {options.runs})")
    if options.profile:
        with tempfile.TemporaryDirectory() as tmp:
            stats_path = Path(tmp) / "flood.prof"
            run_profiled("flag-flood", options.timeout_ms, stats_path)
            pstats.Stats(str(stats_path)).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
