"""How long one large, healthy answer holds the event loop, with and without the off-load.

One process runs the daemon's real pollers and sessions (``Poller``, ``DlmsSession``
over TCP): ``--healthy`` meters reading three registers each (scan_rate_ms cycling
200, 500, 1000), and one meter whose one signal is a load-profile-like buffer of about
``--size`` octets (an array of structure {octet-string date-time, 3 x
double-long-unsigned}) sent as a long GET in blocks.  The meters are dlms-sim
``Simulator`` objects in two child processes (one for the healthy meters, one for the
big one, so that the simulator's own encoding of the big answer delays nobody).

Each repeat runs the same mix for ``--seconds`` twice, once with the sessions' off-load
(``offload_octets`` = dlmsd.session.OFFLOAD_OCTETS) and once without (None: every
decode on the event loop); the order alternates between repeats.  Measured meanwhile:

* the event loop's worst stall: a ticker task sleeps 5 ms at a time and records how late
  it wakes up;
* the healthy meters' worst scan latency (one ``read()`` of a scan) and their scans
  completed against the scans due (``seconds / scan_rate``);
* the big meter's scans completed and reader calls off-loaded.

    python scripts/bench_loop_latency.py [--healthy 10] [--size 1000000] [--seconds 10]
        [--repeats 3] [--link wrapper|hdlc]

Figures are printed per run and as ratios (without / with) over all runs; nothing is
timed against a fixed threshold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlmsd.config import DeviceConfig, load_config
from dlmsd.poller import Poller, SessionContext
from dlmsd.protocol.axdr import Data, DateTime, encode_data
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.reader import AttributeRequest, ReadResult
from dlmsd.session import OFFLOAD_OCTETS, DlmsSession
from dlmsd.signals import SignalTable
from dlmsd.trace import FrameTracer
from dlmsd.transport.tcp import TcpTransport

PROFILE_OBIS = "1.0.99.1.0.255"
REGISTERS = ["1.0.1.8.0.255", "1.0.32.7.0.255", "1.0.14.7.0.255"]
SCAN_RATES_MS = (200, 500, 1000)
TICK_S = 0.005


# ----------------------------------------------------------------- the meters (child)


def profile_value(size: int) -> Data:
    """An array of rows {date-time (octet-string of 12), 3 x uint32}, ~``size`` octets."""
    def row(k: int) -> Data:
        stamp = DateTime(2026, 1, 1 + (k // 96) % 28, (k // 4) % 24, 15 * (k % 4), 0)
        return Data.structure(Data.octets(stamp.to_bytes()), Data.uint32(k),
                              Data.uint32(1000 + k), Data.uint32(k % 7))
    per_row = len(encode_data(row(0)))
    rows = (size - 6) // per_row
    return Data.array(*(row(k) for k in range(rows)))


async def serve(kind: str, size: int, max_pdu: int) -> None:
    from dlmsd.sim.cli import SimSettings, Simulator
    from dlmsd.sim.model import (
        CosemObject,
        InterfaceClass,
        Meter,
        MeterModel,
        ReadContext,
        bundled_model_path,
        load_model,
    )

    model = load_model(bundled_model_path())
    if kind == "big":
        value = profile_value(size)

        class Fixed:
            def value(self, ctx: ReadContext) -> Data:
                return value

        profile = InterfaceClass(7, 1, "profile-generic", (
            "logical_name", "buffer", "capture_objects", "capture_period", "sort_method",
            "sort_object", "entries_in_use", "profile_entries"))
        model = MeterModel(model.name, model.seed, (*model.objects, CosemObject(
            profile, Obis.parse(PROFILE_OBIS), "Load profile", {2: Fixed()})))
        print(f"# profile of {len(encode_data(value))} octets", file=sys.stderr)
    settings = SimSettings(hdlc_port=0, wrapper_port=0, max_pdu=max_pdu)
    async with Simulator(Meter(model), settings, log=Quiet()) as sim:
        print(sim.ready_line(), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes it


def start_child(kind: str, size: int, max_pdu: int) -> tuple[subprocess.Popen[str],
                                                             dict[str, int]]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--size", str(size),
         "--max-pdu", str(max_pdu)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    ports = {p.split("=")[0]: int(p.rsplit(":", 1)[1]) for p in line.split()[2:]}
    if not ports:
        raise SystemExit(f"the {kind} simulator did not start: {line!r}")
    return child, ports


# ----------------------------------------------------------------- the daemon (parent)


class Quiet:
    """A logger that drops everything (the daemon's logging is not what is measured)."""

    def bind(self, **_fields: object) -> Quiet:
        return self

    def __getattr__(self, name: str) -> Any:
        if name in ("error", "exception") and os.environ.get("BENCH_DEBUG"):
            return lambda *args, **kwargs: print(name, args, kwargs, file=sys.stderr)
        return lambda *args, **kwargs: None


@dataclass
class Meters:
    """What one run saw of the meters."""

    healthy_latency: list[float] = field(default_factory=list)
    #: how much later than its scan rate a healthy meter's scan started, after the one before
    healthy_late: list[float] = field(default_factory=list)
    big_latency: list[float] = field(default_factory=list)
    offloaded: int = 0
    due: float = 0.0
    #: the most CPU time the event loop's thread spent between two ticks
    busy: float = 0.0


class TimedSession:
    """A DlmsSession whose read() durations are recorded."""

    def __init__(self, inner: DlmsSession, into: list[float], run: Meters,
                 period: float, late: list[float] | None) -> None:
        self.inner, self.into, self.run = inner, into, run
        self.period, self.late = period, late
        self.last: float | None = None

    async def open(self) -> None:
        await self.inner.open()

    async def read(self, requests: Sequence[AttributeRequest]) -> list[ReadResult]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        if self.late is not None and self.last is not None:
            self.late.append(max(0.0, start - self.last - self.period))
        self.last = start
        results = await self.inner.read(requests)
        self.into.append(loop.time() - start)
        return results

    async def close(self) -> None:
        try:
            await self.inner.close()
        finally:
            self.run.offloaded += self.inner.offloaded


def config(healthy: int, ports: dict[str, int], big_ports: dict[str, int], link: str,
           where: Path) -> Any:
    mode = "DLMS-WRAPPER" if link == "wrapper" else "DLMS-HDLC"
    common = {"protocol": "DLMS", "client_address": 16, "ip": "127.0.0.1", "mode": mode,
              "timeout_ms": 5000, "retry_counter": 1, "reconnect_time": 500,
              "logical_address": 1, "physical_address": 1, "address_size": 2}
    devices, signals = [], []
    for k in range(healthy):
        alias = f"h{k}"
        devices.append({**common, "name": alias, "device_alias": alias,
                        "port": ports[link], "scan_rate_ms": SCAN_RATES_MS[k % 3]})
        signals += [{"signal_name": c, "device_alias": alias, "signal_alias": f"{alias}_{i}",
                     "obis": c} for i, c in enumerate(REGISTERS)]
    devices.append({**common, "name": "big", "device_alias": "big",
                    "port": big_ports[link], "scan_rate_ms": 1000})
    signals.append({"signal_name": "profile", "device_alias": "big",
                    "signal_alias": "profile", "obis": PROFILE_OBIS, "class_id": 7})
    path = where / "bench.json"
    path.write_text(json.dumps({"devices": devices, "signals": signals}), encoding="utf-8")
    return load_config(path)


async def one_run(cfg: Any, seconds: float, offload: bool | None) -> tuple[float, Meters]:
    """One run; ``offload`` None: the healthy meters alone (the machine's noise floor)."""
    loop = asyncio.get_running_loop()
    run = Meters()
    table = SignalTable.from_config(cfg)
    octets = OFFLOAD_OCTETS if offload else None

    def factory(device: DeviceConfig, context: SessionContext) -> TimedSession:
        inner = DlmsSession(device, TcpTransport(device.ip or "", device.port or 0),
                            context, offload_octets=octets)
        big = device.device_alias == "big"
        return TimedSession(inner, run.big_latency if big else run.healthy_latency, run,
                            device.scan_rate_ms / 1000, None if big else run.healthy_late)

    stall = 0.0

    async def ticker() -> None:
        nonlocal stall
        while True:
            before, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(TICK_S)
            stall = max(stall, loop.time() - before - TICK_S)
            run.busy = max(run.busy, time.thread_time() - cpu)

    quiet = Quiet()
    tasks = [asyncio.create_task(ticker())]
    for device in cfg.devices:
        if offload is None and device.device_alias == "big":
            continue
        poller = Poller(device, cfg.signals_of(device.device_alias), table, quiet,
                        FrameTracer(quiet, False), factory)
        tasks.append(asyncio.create_task(poller.run()))
        if device.device_alias != "big":
            run.due += seconds / (device.scan_rate_ms / 1000)
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stall, run


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


MODES: dict[bool | None, str] = {None: "healthy only", False: "inline", True: "off-load"}


async def bench(args: argparse.Namespace, cfg: Any) -> None:
    figures: dict[bool | None, dict[str, list[float]]] = {
        mode: {"stall": [], "busy": [], "scan": [], "late": [], "done": []} for mode in MODES}
    orders: list[tuple[bool | None, ...]] = [(None, False, True), (True, False, None)]
    for repeat in range(args.repeats):
        for mode in orders[repeat % 2]:
            stall, run = await one_run(cfg, args.seconds, mode)
            got = figures[mode]
            got["stall"].append(stall)
            got["busy"].append(run.busy)
            got["scan"].append(max(run.healthy_latency, default=0.0))
            got["late"].append(max(run.healthy_late, default=0.0))
            got["done"].append(len(run.healthy_latency) / run.due if run.due else 0.0)
            print(f"run {repeat + 1} {MODES[mode]:12}: loop worst stall {ms(stall)} (loop "
                  f"thread busy {ms(run.busy)}), healthy worst scan {ms(got['scan'][-1])}, "
                  f"started late by {ms(got['late'][-1])}, healthy scans "
                  f"{len(run.healthy_latency)} of {run.due:.0f} due ({got['done'][-1]:.1%}); "
                  f"big scans {len(run.big_latency)} (worst "
                  f"{ms(max(run.big_latency, default=0))}), off-loaded calls {run.offloaded}",
                  flush=True)
    print()
    for mode, name in MODES.items():
        got = figures[mode]
        print(f"{name:12}: loop worst stall max {ms(max(got['stall']))}, median "
              f"{ms(statistics.median(got['stall']))}, loop thread busy max "
              f"{ms(max(got['busy']))}; healthy worst scan {ms(max(got['scan']))}, worst "
              f"start delay {ms(max(got['late']))}; healthy scans done "
              f"{min(got['done']):.1%} (lowest run)")

    def ratio(key: str) -> str:
        return f"{max(figures[False][key]) / max(max(figures[True][key]), 1e-9):.1f}x"

    print(f"ratio inline / off-load (worst of the runs): loop stall {ratio('stall')}, loop "
          f"thread busy {ratio('busy')}, healthy scan {ratio('scan')}, healthy start delay "
          f"{ratio('late')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--healthy", type=int, default=10)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--link", choices=("wrapper", "hdlc"), default="wrapper")
    parser.add_argument("--max-pdu", type=int, default=1024,
                        help="the meters' PDU size: the block size of the long GET")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval for the daemon's process (default 5 ms)")
    parser.add_argument("--serve", choices=("big", "healthy"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.size, args.max_pdu))
        return
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    children = []
    try:
        healthy, ports = start_child("healthy", args.size, args.max_pdu)
        children.append(healthy)
        big, big_ports = start_child("big", args.size, args.max_pdu)
        children.append(big)
        with tempfile.TemporaryDirectory() as where:
            cfg = config(args.healthy, ports, big_ports, args.link, Path(where))
            print(f"{args.healthy} healthy meters + 1 profile of ~{args.size} octets over "
                  f"{args.link} (PDU {args.max_pdu}), {args.seconds:g} s per run, "
                  f"{args.repeats} repeats, off-load at {OFFLOAD_OCTETS} octets, "
                  f"pid {os.getpid()}", flush=True)
            asyncio.run(bench(args, cfg))
    finally:
        for child in children:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=10)
            if child.stdout is not None:
                child.stdout.close()  # no unclosed pipe (ResourceWarning)


if __name__ == "__main__":
    main()
