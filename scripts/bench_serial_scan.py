"""Scan time of a 10-register meter over a pty at 9600 Bd, against the wire-time floor.

The meter is the simulator, ``dlms-sim --pty`` (the command, in its own process); the
daemon's own session (dlmsd.session.DlmsSession around the pure reader, the code that
runs in production) reads it through dlmsd.transport.serial, and the octets are counted
at that transport. A pty moves bytes at memory speed whatever the baud rate, so the
measured time is the software's own cost; the floor is what the same bytes need on a
real 9600 Bd line (bytes x 10 bits / baud, 8N1). Their ratio says how much of a real
scan the software adds.
With ``--pace`` the simulator holds every chunk for its time on the wire at 9600 Bd
(``dlms-sim --pace``), so the measured scan is what a real line would show: the floor
plus the software and scheduling on both sides.

    python scripts/bench_serial_scan.py [--scans 50] [--max-list-size 10] [--pace]

Prints one line per figure; nothing is timed against a fixed threshold.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlmsd.config import parse_config
from dlmsd.logsetup import configure_logging, get_logger
from dlmsd.poller import SessionContext
from dlmsd.protocol.reader import AttributeRequest
from dlmsd.session import make_session
from dlmsd.supervisor import serial_settings
from dlmsd.trace import FrameTracer
from dlmsd.transport.bus import SerialBus
from dlmsd.transport.serial import SerialTransport

BAUD = 9600
REGISTERS = [
    "1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.7.0.255", "1.0.32.7.0.255", "1.0.52.7.0.255",
    "1.0.72.7.0.255", "1.0.31.7.0.255", "1.0.14.7.0.255", "1.0.13.7.0.255", "0.0.96.9.0.255",
]


@contextmanager
def dlms_sim_on_a_pty(pace: bool) -> Iterator[str]:
    """``dlms-sim --pty`` (the command, another process); yields the pty's path."""
    proc = subprocess.Popen([sys.executable, "-c", "from dlmsd.sim.cli import main; main()",
                             "--pty", "--physical", "17", "--baudrate", str(BAUD),
                             *(["--pace"] if pace else [])],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"serial=(\S+)", line)
        if match is None:
            raise SystemExit(f"dlms-sim did not start: {line!r}")
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()  # no unclosed pipe (ResourceWarning)


class Counted:
    """Counts the octets that pass a transport's read and write, both directions."""

    def __init__(self, transport: Any) -> None:
        self.octets = 0
        read, write = transport.read, transport.write

        async def counted_read(timeout: float) -> bytes:
            data: bytes = await read(timeout)
            self.octets += len(data)
            return data

        async def counted_write(data: bytes) -> None:
            self.octets += len(data)
            await write(data)

        transport.read, transport.write = counted_read, counted_write


async def run(path: str, scans: int, max_list_size: int) -> dict[str, Any]:
    config = parse_config({
        "devices": [{"name": "bench", "device_alias": "b", "protocol": "DLMS",
                     "client_address": 16, "device": path, "baudrate": BAUD,
                     "address_size": 2, "logical_address": 1, "physical_address": 17,
                     "max_list_size": max_list_size}],
        "signals": [{"signal_name": o, "device_alias": "b", "signal_alias": f"r{i}",
                     "obis": o, "class_id": 3}
                    for i, o in enumerate(REGISTERS)],
    })
    device = config.devices[0]
    requests = [AttributeRequest(s.signal_alias, s.obis, s.attribute, s.class_id, s.address)
                for s in config.signals]
    log = get_logger(device="b")
    bus = SerialBus(path, lambda: SerialTransport(path, serial_settings(device)))
    session = make_session(device, SessionContext(FrameTracer(log, False), log, bus=bus))
    loop = asyncio.get_running_loop()
    line = Counted(session.transport)
    try:
        await session.open()
        await session.read(requests)  # first scan: scaler_units, not measured
        times: list[float] = []
        octets0, trips0 = line.octets, session.round_trips
        for _ in range(scans):
            started = loop.time()
            results = await session.read(requests)
            times.append(loop.time() - started)
            assert all(r.error is None for r in results), results
        octets = (line.octets - octets0) / scans
        trips = (session.round_trips - trips0) / scans
    finally:
        await session.close()
    floor = octets * 10 / BAUD
    median = statistics.median(times)
    return {"scans": scans, "median_scan_s": median, "octets_per_scan": octets,
            "round_trips_per_scan": trips, "wire_floor_s": floor,
            "measured_over_floor": median / floor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scans", type=int, default=50)
    parser.add_argument("--max-list-size", type=int, default=10,
                        help="attributes per GET-with-list (1: one GET per register)")
    parser.add_argument("--pace", action="store_true",
                        help="dlms-sim --pace: the simulator delivers bytes at 9600 Bd")
    args = parser.parse_args()
    configure_logging(3)
    with dlms_sim_on_a_pty(args.pace) as path:
        figures = asyncio.run(run(path, args.scans, args.max_list_size))
    print(f"max_list_size:             {args.max_list_size}")
    print(f"registers per scan:        {len(REGISTERS)}")
    print(f"scans measured:            {figures['scans']}")
    print(f"octets on the line / scan: {figures['octets_per_scan']:.0f} (both directions)")
    print(f"round trips / scan:        {figures['round_trips_per_scan']:.1f}")
    print(f"wire-time floor at {BAUD} Bd: {figures['wire_floor_s'] * 1000:.1f} ms "
          "(octets x 10 bits / baud)")
    how = f"paced at {BAUD} Bd by dlms-sim --pace" if args.pace else "unpaced: software only"
    print(f"measured scan over a pty:  {figures['median_scan_s'] * 1000:.2f} ms (median, {how})")
    print(f"measured / floor:          {figures['measured_over_floor']:.3f}")


if __name__ == "__main__":
    main()
