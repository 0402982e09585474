"""The daemon under measurement, in a child process of ``scripts/bench``.

``scale``: the daemon's own ``Supervisor`` (the pollers, ``DlmsSession`` and
``TcpTransport`` of ``dlms``), logging configured as ``dlms -d 4`` (warnings, where a
``scan_overrun`` shows) to /dev/null, every device of the configuration started at
once.  The one hook is the session factory: it wraps ``make_session`` to note when
each ``read()`` (one scan) starts and ends, because the daemon counts neither late nor
missed scans (it logs ``scan_overrun`` with the ticks skipped at warning, and
``scan_done`` at debug; ``PollStats`` has a duration histogram only).  From those:
the time to the first complete scan of every meter, then over ``--seconds`` the CPU
(``getrusage``), the RSS (``/proc/self/status``), scans done, late scans (started more
than 10% of the period after the one before) and missed scans (ticks skipped).

``loop``: one meter's scans back to back (a ``Poller`` whose sleep returns at once on
a clock that moves one period per scan): CPU per scan of the daemon's path (poller,
session, reader, codecs, signal table), ``--scans`` of them after one warm-up scan.

``gurux``: gurux_dlms's bare client loop (``tests/interop/gurux_client.GuruxSession``:
a blocking socket, ``readList`` and its ``getData``) doing the same reads.

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_kib(key: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


class Timed:
    """A session whose scans (``read()`` calls) are noted."""

    def __init__(self, inner: Any, marks: list[tuple[float, float]]) -> None:
        self.inner, self.marks = inner, marks

    async def open(self) -> None:
        await self.inner.open()

    async def read(self, requests: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        start = loop.time()
        results = await self.inner.read(requests)
        self.marks.append((start, loop.time()))
        return results

    async def close(self) -> None:
        await self.inner.close()


async def scale(config_path: str, seconds: float, first_timeout: float) -> dict[str, Any]:
    from dlmsd.config import DeviceConfig, load_config
    from dlmsd.logsetup import configure_logging
    from dlmsd.poller import SessionContext
    from dlmsd.session import make_session
    from dlmsd.supervisor import Supervisor

    rss_import = rss_kib()
    with open(os.devnull, "w") as null:
        configure_logging(4, "text", None, stream=null)
        config = load_config(config_path)
        marks: dict[str, list[tuple[float, float]]] = {d.device_alias: [] for d in config.devices}

        def factory(device: DeviceConfig, context: SessionContext) -> Timed:
            return Timed(make_session(device, context), marks[device.device_alias])

        supervisor = Supervisor(config, session_factory=factory)
        loop = asyncio.get_running_loop()
        rss_base, cpu0, t0 = rss_kib(), cpu(), loop.time()
        await supervisor.start()
        first = None
        while loop.time() - t0 < first_timeout:
            await asyncio.sleep(0.05)
            if all(m for m in marks.values()):
                first = max(m[0][1] for m in marks.values()) - t0
                break
        rss_first, cpu1, t1 = rss_kib(), cpu(), loop.time()
        await asyncio.sleep(seconds)
        cpu2, t2, rss_end = cpu(), loop.time(), rss_kib()
        await supervisor.stop()
    period = {d.device_alias: d.scan_rate_ms / 1000 for d in config.devices}
    late = missed = done = 0
    for alias, got in marks.items():
        starts = [s for s, _ in got]
        done += sum(1 for _, e in got if t1 <= e < t2)
        for a, b in itertools.pairwise(starts):
            if b > t2:
                break
            gap = b - a
            if gap > period[alias] * 1.1:
                late += 1
                missed += max(0, round(gap / period[alias]) - 1)
    offline = sum(1 for m in marks.values() if not m)
    return {"meters": len(marks), "first_scan_s": first, "start_cpu_s": cpu1 - cpu0,
            "window_s": t2 - t1, "window_cpu_s": cpu2 - cpu1, "scans": done,
            "late": late, "missed": missed, "never_scanned": offline,
            "rss_import_kib": rss_import, "rss_base_kib": rss_base,
            "rss_first_kib": rss_first, "rss_end_kib": rss_end, "hwm_kib": rss_kib("VmHWM")}


async def loop_scans(config_path: str, scans: int, profile: str | None) -> dict[str, Any]:
    from dlmsd.config import load_config
    from dlmsd.poller import Poller
    from dlmsd.session import make_session
    from dlmsd.signals import SignalTable
    from dlmsd.trace import FrameTracer

    from .sim import Quiet

    config = load_config(config_path)
    device = config.devices[0]
    period = device.scan_rate_ms / 1000
    clock = [0.0]
    marks: list[tuple[float, float]] = []
    stop = asyncio.Event()
    measured: dict[str, float] = {}

    def factory(dev: Any, context: Any) -> Timed:
        return Timed(make_session(dev, context), marks)

    profiler = None

    async def sleep(delay: float) -> None:
        nonlocal profiler
        clock[0] += period
        if len(marks) == 1:  # after the warm-up scan (the scaler_units read)
            measured["cpu0"] = cpu()
            if profile:
                import cProfile
                profiler = cProfile.Profile(time.process_time)  # CPU, not waits
                profiler.enable()
        if len(marks) == scans + 1:
            measured["cpu1"] = cpu()
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile)
            stop.set()
            await asyncio.Event().wait()
        await asyncio.sleep(0)

    quiet = Quiet()
    table = SignalTable.from_config(config)
    poller = Poller(device, config.signals_of(device.device_alias), table, quiet,
                    FrameTracer(quiet, False), factory, monotonic=lambda: clock[0],
                    sleep=sleep)
    task = asyncio.create_task(poller.run())
    await stop.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return {"scans": scans, "cpu_per_scan_s": (measured["cpu1"] - measured["cpu0"]) / scans}


def gurux_scans(port: int, link: str, scans: int) -> dict[str, Any]:
    from gurux_dlms.objects import GXDLMSRegister

    from tests.interop.gurux_client import GuruxSession

    from .sim import REGISTERS

    kwargs: dict[str, Any] = ({"server_logical": 1, "server_physical": 1, "address_size": 2}
                              if link == "hdlc" else {})
    with GuruxSession("127.0.0.1", port, interface=link, **kwargs) as session:
        objects = [(GXDLMSRegister(code), 2) for code in REGISTERS]

        def scan() -> list[Any]:
            values = []
            for request in session.client.readList(objects):
                reply = session.transact(request)
                values.append(reply.value)
            return values
        first = scan()
        if len(first[0]) != len(REGISTERS):
            raise SystemExit(f"gurux read {first!r}")
        cpu0 = cpu()
        for _ in range(scans):
            scan()
        cpu1 = cpu()
    return {"scans": scans, "cpu_per_scan_s": (cpu1 - cpu0) / scans}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("scale", "loop", "gurux"))
    parser.add_argument("--config")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--first-timeout", type=float, default=60.0)
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--port", type=int)
    parser.add_argument("--link", default="wrapper")
    parser.add_argument("--profile", help="loop: write a cProfile of the measured scans here")
    args = parser.parse_args()
    if args.mode == "scale":
        out = asyncio.run(scale(args.config, args.seconds, args.first_timeout))
    elif args.mode == "loop":
        out = asyncio.run(loop_scans(args.config, args.scans, args.profile))
    else:
        out = gurux_scans(args.port, args.link, args.scans)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchlib import daemon  # noqa: F401  (so that relative imports work as a module)
    main()
