"""Scan time of a 10-register meter over a pty at 9600 Bd, against the wire-time floor.

The meter is the simulator's pure core (dlmsd.sim: MeterServer behind HdlcServerLink)
on the master side of a pty; the daemon's own session (dlmsd.session.DlmsSession, the
code that runs in production) reads it through dlmsd.transport.serial. A pty moves
bytes at memory speed whatever the baud rate, so the measured time is the software's
own cost; the floor is what the same bytes need on a real 9600 Bd line
(bytes x 10 bits / baud, 8N1). Their ratio says how much of a real scan the software adds.

    python scripts/bench_serial_scan.py [--scans 50] [--max-list-size 10]

Prints one line per figure; nothing is timed against a fixed threshold.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tty
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlmsd.config import parse_config
from dlmsd.logsetup import configure_logging, get_logger
from dlmsd.poller import DeviceMemory, ReadRequest
from dlmsd.protocol.hdlc import NEED_DATA, encode_server_address
from dlmsd.session import DlmsSession
from dlmsd.sim.link import ApduIn, HdlcServerLink
from dlmsd.sim.model import Meter, bundled_model_path, load_model
from dlmsd.sim.server import MeterServer, ServerOptions
from dlmsd.trace import FrameTracer

BAUD = 9600
REGISTERS = [
    "1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.7.0.255", "1.0.32.7.0.255", "1.0.52.7.0.255",
    "1.0.72.7.0.255", "1.0.31.7.0.255", "1.0.14.7.0.255", "1.0.13.7.0.255", "0.0.96.9.0.255",
]


class PtyMeter:
    def __init__(self, master: int) -> None:
        self.master = master
        self.link = HdlcServerLink(encode_server_address(1, 17, 2), 16, max_info=128,
                                   max_apdu_size=1024)
        self.server = MeterServer(Meter(load_model(bundled_model_path())), ServerOptions())
        self.rx = self.tx = 0

    def on_readable(self) -> None:
        data = os.read(self.master, 4096)
        self.rx += len(data)
        self.link.receive_data(data)
        out = bytearray()
        while (event := self.link.next_event()) is not NEED_DATA:
            out += self.link.data_to_send()
            if isinstance(event, ApduIn):
                out += self.link.send_apdu(self.server.handle(event.apdu, datetime.now(UTC)))
        out += self.link.data_to_send()
        if out:
            self.tx += len(out)
            os.write(self.master, bytes(out))


async def run(scans: int, max_list_size: int) -> dict[str, Any]:
    master, slave = os.openpty()
    tty.setraw(slave)
    meter = PtyMeter(master)
    loop = asyncio.get_running_loop()
    loop.add_reader(master, meter.on_readable)
    config = parse_config({
        "devices": [{"name": "bench", "device_alias": "b", "protocol": "DLMS",
                     "client_address": 16, "device": os.ttyname(slave), "baudrate": BAUD,
                     "address_size": 2, "logical_address": 1, "physical_address": 17,
                     "max_list_size": max_list_size}],
        "signals": [{"signal_name": o, "device_alias": "b", "signal_alias": f"r{i}",
                     "obis": o, "class_id": 3}
                    for i, o in enumerate(REGISTERS)],
    })
    device = config.devices[0]
    requests = [ReadRequest(s.signal_alias, s.obis, s.attribute, s.class_id, s.address)
                for s in config.signals]
    log = get_logger(device="b")
    session = DlmsSession(device, FrameTracer(log, False), log, DeviceMemory())
    try:
        await session.open()
        await session.read(requests)  # first scan: scaler_units, not measured
        times: list[float] = []
        rx0, tx0, trips0 = meter.rx, meter.tx, session.round_trips
        for _ in range(scans):
            started = loop.time()
            results = await session.read(requests)
            times.append(loop.time() - started)
            assert all(r.error is None for r in results), results
        octets = (meter.rx - rx0 + meter.tx - tx0) / scans
        trips = (session.round_trips - trips0) / scans
    finally:
        await session.close()
        loop.remove_reader(master)
        os.close(master)
        os.close(slave)
    floor = octets * 10 / BAUD
    median = statistics.median(times)
    return {"scans": scans, "median_scan_s": median, "octets_per_scan": octets,
            "round_trips_per_scan": trips, "wire_floor_s": floor,
            "software_share": median / floor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scans", type=int, default=50)
    parser.add_argument("--max-list-size", type=int, default=10,
                        help="attributes per GET-with-list (1: one GET per register)")
    args = parser.parse_args()
    configure_logging(3)
    figures = asyncio.run(run(args.scans, args.max_list_size))
    print(f"max_list_size:             {args.max_list_size}")
    print(f"registers per scan:        {len(REGISTERS)}")
    print(f"scans measured:            {figures['scans']}")
    print(f"octets on the line / scan: {figures['octets_per_scan']:.0f} (both directions)")
    print(f"round trips / scan:        {figures['round_trips_per_scan']:.1f}")
    print(f"wire-time floor at {BAUD} Bd: {figures['wire_floor_s'] * 1000:.1f} ms "
          "(octets x 10 bits / baud)")
    print(f"measured scan over a pty:  {figures['median_scan_s'] * 1000:.2f} ms (median)")
    print(f"software / floor:          {figures['software_share']:.3f}")


if __name__ == "__main__":
    main()
