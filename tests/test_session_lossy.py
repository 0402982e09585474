"""The session over an adversarial link: a proxy between dlmsd and dlms-sim that drops,
corrupts or splits the meter's answers. Retries must recover; a dead meter must go
offline within retry_counter x timeout_ms; other meters are not slowed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import tcp_device
from fakes import FakeMeter, factory_for
from test_e2e_sim import signals_for, simulator

from dlmsd.config import load_config
from dlmsd.errors import AnswerLost, DlmsTimeout, LinkOutOfStep
from dlmsd.signals import DeviceStatus
from dlmsd.supervisor import Supervisor

Writer = Callable[..., Path]
Filter = Callable[[int, bytes], bytes | None]  # (index of meter chunk, chunk) -> to forward


@contextlib.asynccontextmanager
async def proxy(upstream_port: int, meter_filter: Filter) -> AsyncIterator[int]:
    tasks: set[asyncio.Task[None]] = set()
    count = 0

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   filt: Filter | None) -> None:
        nonlocal count
        try:
            while data := await reader.read(4096):
                if filt is not None:
                    out = filt(count, data)
                    count += 1
                    if out is None:
                        continue
                    data = out
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        for task in (asyncio.create_task(pipe(reader, up_writer, None)),
                     asyncio.create_task(pipe(up_reader, writer, meter_filter))):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


CODES = ["1.0.1.8.0.255", "1.0.32.7.0.255", "0.0.96.1.0.255"]


def drop(indexes: set[int]) -> Filter:
    return lambda i, data: None if i in indexes else data


def corrupt(indexes: set[int]) -> Filter:
    def filt(i: int, data: bytes) -> bytes:
        if i not in indexes or len(data) < 6:
            return data
        bad = bytearray(data)
        bad[len(bad) // 2] ^= 0x55
        return bytes(bad)
    return filt


@pytest.mark.parametrize(("mode", "meter_filter"), [
    ("DLMS-HDLC", drop({3})),  # the first GET answer is lost
    ("DLMS-HDLC", corrupt({3, 4})),  # ... or arrives with a bad FCS, twice
    ("DLMS-WRAPPER", drop({2})),
    ("DLMS-HDLC", lambda i, d: d),  # control: no loss
])
async def test_lost_or_corrupt_answers_are_resent(write_config: Writer, mode: str,
                                                  meter_filter: Filter) -> None:
    flag = "--wrapper-port" if mode == "DLMS-WRAPPER" else "--hdlc-port"
    with simulator(flag, "0", "--logical", "1", "--physical", "17") as ports:
        port = ports["wrapper" if mode == "DLMS-WRAPPER" else "hdlc"]
        async with proxy(port, meter_filter) as proxied:
            config = load_config(write_config(devices=[tcp_device(
                "m", port=proxied, mode=mode, logical_address=1, physical_address=17,
                address_size=2, timeout_ms=1000, retry_counter=4)],
                signals=signals_for("m", CODES)))
            snapshot = await Supervisor(config).run_once()
    assert snapshot.devices[0].status is DeviceStatus.ONLINE, snapshot.devices[0].error
    values = {s.obis: s.value for s in snapshot.signals}
    assert values == {"1.0.1.8.0.255": Decimal(1234560), "1.0.32.7.0.255": Decimal("230.1"),
                      "0.0.96.1.0.255": "12345678"}


async def test_silent_meter_goes_offline_in_bounded_time(write_config: Writer) -> None:
    with simulator("--hdlc-port", "0", "--logical", "1", "--physical", "17") as ports:
        async with proxy(ports["hdlc"], drop(set(range(2, 1000)))) as proxied:
            config = load_config(write_config(devices=[tcp_device(
                "m", port=proxied, logical_address=1, physical_address=17, address_size=2,
                timeout_ms=200, retry_counter=2)], signals=signals_for("m", CODES)))
            loop = asyncio.get_running_loop()
            started = loop.time()
            snapshot = await Supervisor(config).run_once()
            elapsed = loop.time() - started
    device = snapshot.devices[0]
    assert device.status is DeviceStatus.OFFLINE
    # the UA and AARE (meter chunks 0 and 1) pass, everything after is lost
    assert "no answer to GET 15/0.0.40.0.0.255/2" in (device.error or "")
    assert "(3 attempts of 200 ms)" in (device.error or "")
    # 3 x 200 ms for the GET, then one short try of DISC
    assert elapsed < 5.0


# -- associating again at once (LinkOutOfStep / AnswerLost), once per scan -------------


@pytest.mark.parametrize("error", [LinkOutOfStep("meter rejected a frame (FRMR)"),
                                   AnswerLost("no answer to READ 0xFA08")])
@pytest.mark.parametrize("where", ["open", "read"])
async def test_associating_again_at_once_is_once_per_scan(write_config: Writer,
                                                          error: Exception,
                                                          where: str) -> None:
    """The first failure is redone at once on a new association; when that one fails
    the same way before a scan completes, the device goes offline (no loop)."""
    failures = [error, error, None]
    meter = FakeMeter({"s0": 1})
    if where == "open":
        meter.open_error = lambda: failures.pop(0)
    else:
        meter.read_error = lambda: failures.pop(0)
    config = load_config(write_config(devices=[tcp_device("m")],
                                      signals=signals_for("m", CODES[:1])))
    snapshot = await Supervisor(config, session_factory=factory_for({"m": meter})).run_once()
    device = snapshot.devices[0]
    assert device.status is DeviceStatus.OFFLINE and device.error == str(error)
    assert failures == [None]  # two sessions, not a third
    # one failure only: the redo reads the meter, no outage
    failures[:] = [error, None]
    snapshot = await Supervisor(config, session_factory=factory_for({"m": meter})).run_once()
    assert snapshot.devices[0].status is DeviceStatus.ONLINE, snapshot.devices[0].error
    assert failures == []


async def test_a_plain_timeout_is_not_redone(write_config: Writer) -> None:
    """A silent meter (DlmsTimeout, not AnswerLost) goes offline at the first failure."""
    failures: list[Exception | None] = [DlmsTimeout("no answer"), None]
    meter = FakeMeter({"s0": 1}, read_error=lambda: failures.pop(0))
    config = load_config(write_config(devices=[tcp_device("m")],
                                      signals=signals_for("m", CODES[:1])))
    snapshot = await Supervisor(config, session_factory=factory_for({"m": meter})).run_once()
    assert snapshot.devices[0].status is DeviceStatus.OFFLINE
    assert failures == [None]


@pytest.mark.parametrize("lost", [{1}, {2}, {3}], ids=["AARE", "first-READ", "second-READ"])
async def test_sn_over_the_wrapper_reads_through_a_lost_answer(write_config: Writer,
                                                               lost: set[int]) -> None:
    """SN has no invoke-id: a lost answer is not asked for again on the same
    connection; a new connection and association redo the scan at once."""
    with simulator("--wrapper-port", "0", "--referencing", "SN") as ports:
        async with proxy(ports["wrapper"], drop(lost)) as proxied:
            config = load_config(write_config(devices=[tcp_device(
                "m", port=proxied, mode="DLMS-WRAPPER", logical_address=1, type="SN",
                timeout_ms=300, retry_counter=2)], signals=signals_for("m", CODES)))
            snapshot = await Supervisor(config).run_once()
    assert snapshot.devices[0].status is DeviceStatus.ONLINE, snapshot.devices[0].error
    assert {s.obis: s.value for s in snapshot.signals}["1.0.1.8.0.255"] == Decimal(1234560)


async def test_sn_over_the_wrapper_with_every_answer_lost_goes_offline(
        write_config: Writer) -> None:
    with simulator("--wrapper-port", "0", "--referencing", "SN") as ports:
        async with proxy(ports["wrapper"], drop(set(range(1000)))) as proxied:
            config = load_config(write_config(devices=[tcp_device(
                "m", port=proxied, mode="DLMS-WRAPPER", logical_address=1, type="SN",
                timeout_ms=200, retry_counter=2)], signals=signals_for("m", CODES)))
            loop = asyncio.get_running_loop()
            started = loop.time()
            snapshot = await Supervisor(config).run_once()
            elapsed = loop.time() - started
    device = snapshot.devices[0]
    assert device.status is DeviceStatus.OFFLINE
    assert "no answer to AARQ" in (device.error or "")
    assert "SN over the wrapper" in (device.error or "")
    # two associations of one 200 ms try each, and their short releases
    assert elapsed < 5.0
