"""A reader call that may decode a large answer runs in the decode thread (issue 12: keep
any single step short on the event loop).  The session is driven against the simulator's
meter in memory (tests/memory_meter.py) over an in-memory transport; the meter serves a
load-profile-like buffer (array of structure {date-time octet-string, 3 x uint32}) as a
long GET in blocks.  What is checked is where each reader call ran (thread names), not
how long it took."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import signal, tcp_device
from memory_meter import MemoryMeter

from dlmsd import session as session_mod
from dlmsd.config import Config, DeviceConfig, load_config
from dlmsd.errors import DecodeError, DlmsTimeout
from dlmsd.poller import Poller, SessionContext
from dlmsd.protocol.axdr import Data, DateTime, encode_data
from dlmsd.protocol.client import ClientBase, ClientEvent, GetComplete
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.reader import AttributeRequest, MeterReader, ReaderState
from dlmsd.session import DECODE_THREAD, DlmsSession
from dlmsd.signals import DeviceStatus, SignalTable
from dlmsd.sim.model import CosemObject, InterfaceClass, Meter, MeterModel, ReadContext
from dlmsd.sim.server import MeterServer, ServerOptions
from dlmsd.trace import FrameTracer

Writer = Callable[..., Path]
PROFILE = Obis.parse("1.0.99.1.0.255")
PROFILE_CLASS = InterfaceClass(7, 1, "profile-generic", (
    "logical_name", "buffer", "capture_objects", "capture_period", "sort_method",
    "sort_object", "entries_in_use", "profile_entries"))
ROWS = 1200  # 31 octets a row: ~37 KB of raw data, in blocks of the meter's 1024-octet PDU
LIMIT = 8192  # offload_octets of these tests


def profile(rows: int = ROWS) -> Data:
    return Data.array(*(Data.structure(
        Data.octets(DateTime(2026, 1, 1 + k // 96, (k // 4) % 24, 15 * (k % 4), 0).to_bytes()),
        Data.uint32(k), Data.uint32(1000 + k), Data.uint32(k % 7)) for k in range(rows)))


class Fixed:
    def __init__(self, value: Data) -> None:
        self.data = value

    def value(self, ctx: ReadContext) -> Data:
        return self.data


def profile_meter(kind: str) -> MemoryMeter:
    """The simulator's meter with a load profile (class 7) at 1.0.99.1.0.255."""
    meter = MemoryMeter(kind, max_apdu_size=4096)
    base = meter.server.meter.model
    model = MeterModel(base.name, base.seed, (*base.objects, CosemObject(
        PROFILE_CLASS, PROFILE, "Load profile", {2: Fixed(profile())})))
    meter.server = MeterServer(Meter(model), ServerOptions(max_pdu=1024))
    return meter


class MemoryTransport:
    """The session's transport to a MemoryMeter: what the meter answers comes back in
    chunks of ``chunk`` octets, one per read()."""

    def __init__(self, meter: MemoryMeter, chunk: int = 512) -> None:
        self.meter = meter
        self.chunk = chunk
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.closed = False

    async def open(self, timeout: float) -> None:
        pass

    async def write(self, data: bytes) -> None:
        answer = self.meter.feed(data)
        for k in range(0, len(answer), self.chunk):
            self.inbox.put_nowait(answer[k : k + self.chunk])

    async def read(self, timeout: float) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self.inbox.get()
        except TimeoutError:
            raise DlmsTimeout("memory meter: nothing to read") from None

    async def close(self) -> None:
        self.closed = True


def device_config(write_config: Writer, kind: str) -> Config:
    link = ({"mode": "DLMS-WRAPPER", "logical_address": 1} if kind == "wrapper" else
            {"mode": "DLMS-HDLC", "logical_address": 1, "physical_address": 17,
             "address_size": 2})
    return load_config(write_config(
        devices=[tcp_device("m", timeout_ms=2000, retry_counter=0, **link)],
        signals=[signal("profile", "m", obis=str(PROFILE), class_id=7),
                 signal("energy", "m", obis="1.0.1.8.0.255")]))


class Log:
    """A logger that keeps its lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def bind(self, **_fields: object) -> Log:
        return self

    def __getattr__(self, level: str) -> Callable[..., None]:
        return lambda event, **fields: self.lines.append((event, fields))


def new_session(device: DeviceConfig, transport: MemoryTransport, *,
                offload_octets: int | None = LIMIT) -> DlmsSession:
    log = Log()
    return DlmsSession(device, transport, SessionContext(FrameTracer(log, False), log),
                       offload_octets=offload_octets)


def requests(device: DeviceConfig) -> list[AttributeRequest]:
    return [AttributeRequest("profile", PROFILE, 2, 7),
            AttributeRequest("energy", Obis.parse("1.0.1.8.0.255"), 2, 3)]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Every MeterReader.receive_data: (thread name, pending_octets + len(data))."""
    seen: list[tuple[str, int]] = []
    original = MeterReader.receive_data

    def receive_data(self: MeterReader, data: bytes, now: float) -> None:
        seen.append((threading.current_thread().name, self.pending_octets + len(data)))
        original(self, data, now)

    monkeypatch.setattr(MeterReader, "receive_data", receive_data)
    yield seen


@pytest.mark.parametrize("kind", ["wrapper", "hdlc"])
async def test_offloaded_above_the_threshold_only(write_config: Writer, kind: str,
                                                  calls: list[tuple[str, int]]) -> None:
    device = device_config(write_config, kind).devices[0]
    session = new_session(device, MemoryTransport(profile_meter(kind)))
    await session.open()
    try:
        results = await session.read(requests(device))
    finally:
        await session.close()
    assert [r.error for r in results] == [None, None]
    above = [name for name, size in calls if size >= LIMIT]
    below = [name for name, size in calls if size < LIMIT]
    assert above and below  # the long GET crossed the threshold on its way
    # pending_octets counts what the reader holds: at the last block, all of the answer
    assert max(size for _name, size in calls) >= len(encode_data(profile()))
    assert all(name.startswith(DECODE_THREAD) for name in above), set(above)
    assert all(name == threading.main_thread().name for name in below), set(below)
    assert session.offloaded == len(above)


async def test_nothing_offloaded_when_switched_off(write_config: Writer,
                                                   calls: list[tuple[str, int]]) -> None:
    device = device_config(write_config, "wrapper").devices[0]
    session = new_session(device, MemoryTransport(profile_meter("wrapper")),
                          offload_octets=None)
    await session.open()
    try:
        await session.read(requests(device))
    finally:
        await session.close()
    assert max(size for _name, size in calls) >= LIMIT
    assert {name for name, _size in calls} == {threading.main_thread().name}
    assert session.offloaded == 0


@pytest.mark.parametrize("kind", ["wrapper", "hdlc"])
async def test_decoded_in_the_thread_equals_decoded_inline(
        write_config: Writer, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    device = device_config(write_config, kind).devices[0]
    decoded: list[tuple[str, ClientEvent]] = []
    original = ClientBase.receive_apdu

    def receive_apdu(self: ClientBase, apdu: bytes) -> ClientEvent:
        event = original(self, apdu)
        if isinstance(event, GetComplete):
            decoded.append((threading.current_thread().name, event))
        return event

    monkeypatch.setattr(ClientBase, "receive_apdu", receive_apdu)
    outcomes = []
    for octets in (None, 1):  # inline, then everything in the thread
        decoded.clear()
        session = new_session(device, MemoryTransport(profile_meter(kind)),
                              offload_octets=octets)
        await session.open()
        try:
            results = await session.read(requests(device))
        finally:
            await session.close()
        outcomes.append((results, [event for _name, event in decoded],
                         {name.split("_")[0] for name, _event in decoded}))
    (inline, inline_events, inline_threads), (offloaded, events, threads) = outcomes
    assert inline_threads == {threading.main_thread().name} and threads == {DECODE_THREAD}
    assert offloaded == inline
    assert events == inline_events
    profiles = [e.results[0] for e in events if isinstance(e.results[0], Data)
                and e.results[0].value and len(e.results[0].as_items()) == ROWS]
    assert profiles == [profile()]  # the whole buffer, as the meter had it


class Held:
    """MeterReader.receive_data held in the decode thread until ``release`` is set; every
    reader call checks that no other one is under way."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.active = 0
        self.overlaps: list[str] = []
        self.closed_at_active: list[int] = []
        receive = MeterReader.receive_data

        def guarded(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
            def run(reader: MeterReader, *args: Any) -> Any:
                if self.active:
                    self.overlaps.append(name)
                self.active += 1
                try:
                    return call(reader, *args)
                finally:
                    self.active -= 1
            return run

        def receive_data(reader: MeterReader, data: bytes, now: float) -> None:
            if threading.current_thread().name.startswith(DECODE_THREAD):
                self.entered.set()
                self.release.wait(10)
            receive(reader, data, now)

        monkeypatch.setattr(MeterReader, "receive_data", guarded("receive_data", receive_data))
        for name in ("close", "handle_timer", "actions", "submit"):
            monkeypatch.setattr(MeterReader, name, guarded(name, getattr(MeterReader, name)))

    async def until_entered(self) -> None:
        async with asyncio.timeout(5):
            while not self.entered.is_set():
                await asyncio.sleep(0.005)


async def test_cancelled_during_an_offloaded_decode_waits_for_the_thread(
        write_config: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    device = device_config(write_config, "wrapper").devices[0]
    transport = MemoryTransport(profile_meter("wrapper"))
    session = new_session(device, transport)
    await session.open()
    held = Held(monkeypatch)
    reader = session.reader
    assert reader is not None
    task = asyncio.create_task(session.read(requests(device)))
    await held.until_entered()
    task.cancel()
    await asyncio.sleep(0.1)
    assert not task.done()  # still waiting for the thread, which holds the reader
    task.cancel()  # a second cancellation changes nothing
    await asyncio.sleep(0.05)
    assert not task.done() and held.active == 1
    held.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert held.active == 0 and session.reader is reader
    await session.close()  # releases: the reader's close, after the thread returned
    assert held.overlaps == []
    assert reader.state is ReaderState.CLOSED and transport.closed


async def test_a_thread_that_outlasts_the_wait_keeps_the_reader(
        write_config: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_mod, "OFFLOAD_WAIT_S", 0.05)
    device = device_config(write_config, "wrapper").devices[0]
    transport = MemoryTransport(profile_meter("wrapper"))
    session = new_session(device, transport)
    await session.open()
    held = Held(monkeypatch)
    task = asyncio.create_task(session.read(requests(device)))
    await held.until_entered()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert held.active == 1 and session.reader is None  # given up, not touched
    await session.close()  # the transport only
    assert transport.closed and held.overlaps == []
    log = session.context.log
    assert [event for event, _fields in log.lines if event == "decode_abandoned"] == [
        "decode_abandoned"]
    held.release.set()
    async with asyncio.timeout(5):
        while held.active:
            await asyncio.sleep(0.005)
    assert held.overlaps == []


async def test_an_exception_in_the_thread_reaches_the_poller(
        write_config: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    config = device_config(write_config, "wrapper")
    device = config.devices[0]
    raised_in: list[str] = []
    original = MeterReader.receive_data

    def receive_data(reader: MeterReader, data: bytes, now: float) -> None:
        if reader.pending_octets + len(data) >= LIMIT:
            raised_in.append(threading.current_thread().name)
            raise DecodeError("A-XDR: a broken row at octet 12345")
        original(reader, data, now)

    monkeypatch.setattr(MeterReader, "receive_data", receive_data)
    sessions: list[DlmsSession] = []

    def factory(dev: DeviceConfig, context: SessionContext) -> DlmsSession:
        made = DlmsSession(dev, MemoryTransport(profile_meter("wrapper")), context,
                           offload_octets=LIMIT)
        sessions.append(made)
        return made

    table = SignalTable.from_config(config)
    log = Log()
    poller = Poller(device, config.signals_of("m"), table, log, FrameTracer(log, False),
                    factory)
    await poller.run(once=True)
    assert len(raised_in) == 1 and raised_in[0].startswith(DECODE_THREAD)
    offline = [fields for event, fields in log.lines if event == "device_offline"]
    assert offline == [{"error": "A-XDR: a broken row at octet 12345", "kind": "DecodeError"}]
    assert table.device("m").status is DeviceStatus.OFFLINE
    assert sessions[0].offloaded == 1 and sessions[0].reader is None  # closed


def test_the_profile_is_block_transferred_and_above_the_limit() -> None:
    # the premise of the tests above: ~37 KB of raw data, more than LIMIT, in blocks
    size = len(encode_data(profile()))
    assert LIMIT < size < 64 * 1024 and size > 1024
