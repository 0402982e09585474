"""Serial meters end to end over a pty: HDLC over a serial line, the IEC 62056-21 mode E
opening, three meters of different addresses on one RS-485 bus polled fairly, a meter
removed from the bus mid-run, a port that cannot be opened.

The meters are the simulator's pure serial line (dlmsd.sim.line.SerialLine) driven
from the pty's master side by a small asyncio reader in this process, so that a test
can unplug one; tests/test_sim_serial.py reads the `dlms-sim --pty` command.
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

from conftest import serial_device, signal

from dlmsd.config import load_config
from dlmsd.protocol.iec62056_21 import IdentificationMessage
from dlmsd.signals import DeviceStatus
from dlmsd.sim.line import Send, SerialLine, SetLine
from dlmsd.sim.model import Meter, bundled_model_path, load_model
from dlmsd.sim.server import MeterServer, ServerOptions
from dlmsd.supervisor import Supervisor

Writer = Callable[..., Path]
# Made up in the Iskra style of tests/test_iec62056_21.py
IDENT = IdentificationMessage("ISK", "5", "ME382-1003", "2")


class BusMeters:
    """The simulator's serial line (dlmsd.sim.line.SerialLine) on the master side of a
    pty, driven by a small reader; ``remove`` unplugs a meter mid-run."""

    def __init__(self, master: int, physicals: list[int], mode_e: bool = False) -> None:
        self.master = master
        meter = Meter(load_model(bundled_model_path()))
        self.line = SerialLine({p: MeterServer(meter, ServerOptions()) for p in physicals},
                               identification=IDENT if mode_e else None)
        self.switched = False

    @property
    def requests(self) -> dict[int, int]:
        return self.line.requests()

    def remove(self, physical: int) -> None:
        self.line.remove(physical)

    def on_readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except OSError:
            return
        for action in self.line.receive_data(data, datetime.now(UTC)):
            if isinstance(action, Send):  # the reaction time is not simulated here
                os.write(self.master, action.data)
            elif isinstance(action, SetLine) and action.settings[0] != 300:
                self.switched = True


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
        assert meters.switched
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


async def test_port_that_disappears_and_comes_back(write_config: Writer,
                                                   tmp_path: Path) -> None:
    """A USB adapter unplugged and plugged in again: udev's symlink goes away and comes
    back pointing at a new tty; the device goes offline naming the port, then is read
    again without a restart."""
    port = tmp_path / "ttyUSB-meter"
    config = load_config(write_config(devices=[serial_device("s", str(port), 17)],
                                      signals=[signal("e", "s")]))
    supervisor = Supervisor(config)
    device = supervisor.table.device
    try:
        async with pty_bus([17]) as (path, meters):
            port.symlink_to(path)
            await supervisor.start()
            await wait_for(lambda: device("s").status is DeviceStatus.ONLINE)
        port.unlink()  # unplugged: the tty and its name are gone
        await wait_for(lambda: device("s").status is DeviceStatus.OFFLINE
                       and "cannot open" in (device("s").error or ""))
        assert str(port) in (device("s").error or "")
        async with pty_bus([17]) as (path, meters):
            port.symlink_to(path)  # plugged in again, maybe as another ttyUSBn
            await wait_for(lambda: meters.requests[17] >= 1
                           and device("s").status is DeviceStatus.ONLINE)
            assert supervisor.table.signal("e").value == Decimal(1234560)
    finally:
        await supervisor.stop()
