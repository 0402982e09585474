"""Serial meters end to end over a pty: HDLC over a serial line, the IEC 62056-21 mode E
opening, three meters of different addresses on one RS-485 bus polled fairly, a meter
removed from the bus mid-run, a port that cannot be opened.

The meters are the simulator's pure parts (MeterServer behind HdlcServerLink, one per
HDLC address) driven from the pty's master side by a small asyncio reader.
"""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from conftest import signal

from dlmsd.config import load_config
from dlmsd.protocol.hdlc import NEED_DATA, encode_server_address
from dlmsd.signals import DeviceStatus
from dlmsd.sim.link import ApduIn, HdlcServerLink
from dlmsd.sim.model import Meter, bundled_model_path, load_model
from dlmsd.sim.server import MeterServer, ServerOptions
from dlmsd.supervisor import Supervisor

Writer = Callable[..., Path]
IDENT = b"/ISK5\\2ME382-1003\r\n"


class BusMeters:
    """Meters on the master side of a pty; each answers only its own HDLC address."""

    def __init__(self, master: int, physicals: list[int], mode_e: bool = False) -> None:
        self.master = master
        self.model = load_model(bundled_model_path())
        self.meters: dict[int, tuple[HdlcServerLink, MeterServer]] = {}
        for physical in physicals:
            self.add(physical)
        self.mode_e = mode_e
        self.signed_on = not mode_e
        self.opening = bytearray()
        self.requests: dict[int, int] = {p: 0 for p in physicals}

    def add(self, physical: int) -> None:
        link = HdlcServerLink(encode_server_address(1, physical, 2), 16, max_info=128,
                              max_apdu_size=1024)
        self.meters[physical] = (link, MeterServer(Meter(self.model), ServerOptions()))

    def remove(self, physical: int) -> None:
        self.meters.pop(physical, None)

    def on_readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except OSError:
            return
        if not self.signed_on:
            self.opening += data
            if b"/?!\r\n" in self.opening and IDENT not in self.opening:
                self.opening += IDENT
                os.write(self.master, IDENT)
            if b"\x06252\r\n" in self.opening:  # option select: HDLC at 9600
                self.signed_on = True
            return
        for physical, (link, server) in list(self.meters.items()):
            link.receive_data(data)
            out = bytearray()
            while (event := link.next_event()) is not NEED_DATA:
                out += link.data_to_send()
                if isinstance(event, ApduIn):
                    self.requests[physical] = self.requests.get(physical, 0) + 1
                    out += link.send_apdu(server.handle(event.apdu, datetime.now(UTC)))
                else:
                    server.reset()
            out += link.data_to_send()
            if out:
                os.write(self.master, bytes(out))


@asynccontextmanager
async def pty_bus(physicals: list[int], mode_e: bool = False) -> AsyncIterator[
        tuple[str, BusMeters]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    meters = BusMeters(master, physicals, mode_e)
    loop = asyncio.get_running_loop()
    loop.add_reader(master, meters.on_readable)
    try:
        yield path, meters
    finally:
        loop.remove_reader(master)
        os.close(master)
        os.close(slave)


def serial_device(alias: str, path: str, physical: int, **over: object) -> dict[str, object]:
    dev: dict[str, object] = {
        "name": alias, "device_alias": alias, "protocol": "DLMS", "client_address": 16,
        "device": path, "baudrate": 9600, "address_size": 2, "logical_address": 1,
        "physical_address": physical, "timeout_ms": 1000, "retry_counter": 1,
        "scan_rate_ms": 200, "reconnect_time": 200,
    }
    dev.update(over)
    return dev


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_hdlc_over_a_serial_line(write_config: Writer) -> None:
    async with pty_bus([17]) as (path, _meters):
        config = load_config(write_config(
            devices=[serial_device("s", path, 17)],
            signals=[signal("e", "s"), signal("v", "s", obis="1.0.32.7.0.255")]))
        snapshot = await Supervisor(config).run_once()
    assert snapshot.devices[0].status is DeviceStatus.ONLINE, snapshot.devices[0].error
    values = {s.signal_alias: (s.value, s.unit) for s in snapshot.signals}
    assert values == {"e": (Decimal(1234560), "Wh"), "v": (Decimal("230.1"), "V")}


async def test_mode_e_opening_then_hdlc(write_config: Writer) -> None:
    async with pty_bus([17], mode_e=True) as (path, meters):
        config = load_config(write_config(
            devices=[serial_device("s", path, 17, mode="IEC")],
            signals=[signal("e", "s")]))
        snapshot = await Supervisor(config).run_once()
        assert meters.signed_on
    assert snapshot.devices[0].status is DeviceStatus.ONLINE, snapshot.devices[0].error
    assert snapshot.signals[0].value == Decimal(1234560)


async def test_three_meters_on_one_bus_fair_and_one_removed(write_config: Writer) -> None:
    async with pty_bus([17, 18, 19]) as (path, meters):
        devices = [serial_device(f"m{p}", path, p) for p in (17, 18, 19)]
        signals = [signal(f"e{p}", f"m{p}") for p in (17, 18, 19)]
        config = load_config(write_config(devices=devices, signals=signals))
        supervisor = Supervisor(config)
        await supervisor.start()
        try:
            await wait_for(lambda: min(meters.requests.values()) >= 6)
            counts = dict(meters.requests)
            # fair: no meter got more than twice the requests of another
            assert max(counts.values()) <= 2 * min(counts.values()) + 2, counts
            meters.remove(18)  # unplugged
            before = {p: meters.requests[p] for p in (17, 19)}
            await wait_for(lambda: supervisor.table.device("m18").status
                           is DeviceStatus.OFFLINE and "no answer" in (
                               supervisor.table.device("m18").error or ""))
            # the others keep being read meanwhile
            await wait_for(lambda: all(meters.requests[p] >= before[p] + 4 for p in (17, 19)))
            assert supervisor.table.device("m17").status is DeviceStatus.ONLINE
            assert supervisor.table.device("m19").status is DeviceStatus.ONLINE
        finally:
            await supervisor.stop()


async def test_port_that_cannot_be_opened(write_config: Writer, tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyGONE")
    config = load_config(write_config(devices=[serial_device("s", missing, 17)],
                                      signals=[signal("e", "s")]))
    snapshot = await Supervisor(config).run_once()
    device = snapshot.devices[0]
    assert device.status is DeviceStatus.OFFLINE
    assert missing in (device.error or "") and "cannot open" in (device.error or "")
