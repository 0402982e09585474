"""Pollers and the supervisor with fake meter sessions: scans, failures, back-off, release."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import serial_device, signal, tcp_device
from fakes import FakeClock, FakeMeter, factory_for

from dlmsd import poller as poller_mod
from dlmsd.config import Config, DeviceConfig, load_config
from dlmsd.errors import AssociationRejected, DlmsTimeout, TransportError
from dlmsd.logsetup import get_logger
from dlmsd.poller import MeterSession, SessionContext
from dlmsd.signals import DeviceStatus, SignalStatus, SignalTable
from dlmsd.supervisor import Supervisor
from dlmsd.trace import FrameTracer
from dlmsd.transport.bus import SerialBus

Writer = Callable[..., Path]


async def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def two_meter_config(write_config: Writer, **over: object):  # type: ignore[no-untyped-def]
    return load_config(write_config(
        devices=[tcp_device("m1", scan_rate_ms=100, reconnect_time=100, **over),
                 tcp_device("m2", scan_rate_ms=100, reconnect_time=100, port=4060)],
        signals=[signal("e1", "m1"), signal("x1", "m1", obis="1.0.2.8.0.255"),
                 signal("e2", "m2")],
    ))


async def test_run_once_publishes_and_releases(write_config: Writer) -> None:
    config = two_meter_config(write_config)
    meters = {"m1": FakeMeter({"e1": Decimal("1234.56")}), "m2": FakeMeter({"e2": 7})}
    snapshot = await Supervisor(config, session_factory=factory_for(meters)).run_once()
    states = {s.signal_alias: s for s in snapshot.signals}
    assert states["e1"].value == Decimal("1234.56") and states["e1"].status is SignalStatus.OK
    assert states["x1"].status is SignalStatus.ERROR and states["x1"].error == "object-undefined"
    assert states["e2"].value == 7
    assert all(d.status is DeviceStatus.ONLINE for d in snapshot.devices)
    assert [(m.opened, m.closed) for m in meters.values()] == [(1, 1), (1, 1)]


async def test_failing_device_does_not_stop_others(write_config: Writer) -> None:
    config = two_meter_config(write_config)
    failing = FakeMeter(open_error=lambda: TransportError("connection refused"))
    good = FakeMeter({"e2": 1})
    supervisor = Supervisor(config, session_factory=factory_for({"m1": failing, "m2": good}))
    await supervisor.start()
    try:
        await wait_for(lambda: good.reads >= 3)
        dev = supervisor.table.device("m1")
        assert dev.status is DeviceStatus.OFFLINE and dev.error == "connection refused"
        assert dev.failures >= 2  # it keeps retrying every reconnect_time
        assert supervisor.table.device("m2").status is DeviceStatus.ONLINE
    finally:
        await supervisor.stop()
    assert good.open_sessions == 0 and good.closed == good.opened


async def test_offline_keeps_last_value_stale_then_recovers(write_config: Writer) -> None:
    config = two_meter_config(write_config)
    broken = {"now": False}
    meter = FakeMeter({"e1": 5, "x1": 6},
                      read_error=lambda: DlmsTimeout("no answer in 2500 ms")
                      if broken["now"] else None)
    supervisor = Supervisor(config, session_factory=factory_for({"m1": meter,
                                                                  "m2": FakeMeter()}))
    await supervisor.start()
    try:
        await wait_for(lambda: meter.reads >= 1)
        broken["now"] = True
        await wait_for(lambda: supervisor.table.device("m1").status is DeviceStatus.OFFLINE)
        e1 = supervisor.table.signal("e1")
        assert (e1.value, e1.stale, e1.status) == (5, True, SignalStatus.ERROR)
        await wait_for(lambda: meter.closed >= 1)  # the failed session is released
        broken["now"] = False
        await wait_for(lambda: supervisor.table.device("m1").status is DeviceStatus.ONLINE)
        assert supervisor.table.signal("e1").stale is False
    finally:
        await supervisor.stop()


async def test_stop_cancels_a_scan_in_progress_and_releases(write_config: Writer) -> None:
    config = two_meter_config(write_config)
    meter = FakeMeter({"e1": 1}, read_delay=10)
    supervisor = Supervisor(config, session_factory=factory_for({"m1": meter,
                                                                  "m2": FakeMeter()}))
    await supervisor.start()
    await wait_for(lambda: meter.opened == 1)
    await supervisor.stop()
    assert meter.closed == 1 and meter.open_sessions == 0
    assert supervisor.tasks == {}


async def run_until(poller: poller_mod.Poller, clock: FakeClock, sleeps: int) -> None:
    """Run ``poller`` on ``clock`` until it has slept ``sleeps`` times, then stop it."""
    task = asyncio.create_task(poller.run())
    while len(clock.sleeps) < sleeps:
        await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_rejected_association_backs_off_longer(write_config: Writer) -> None:
    """On a fake clock: a rejection waits AUTH_BACKOFF_MIN_S, doubling up to the
    maximum; a network failure waits reconnect_time (100 ms) and resets the growth."""
    config = two_meter_config(write_config)
    device = config.devices[0]
    errors: list[BaseException] = [TransportError("down")] + [
        AssociationRejected("bad password", 1, 13, "user")] * 12 + [TransportError("down")]
    meter = FakeMeter(open_error=lambda: errors.pop(0) if errors else None)
    clock = FakeClock()
    poller = poller_mod.Poller(device, config.signals_of("m1"), SignalTable.from_config(config),
                               get_logger(), FrameTracer(get_logger(), False),
                               factory_for({"m1": meter}), clock=clock.wall,
                               monotonic=clock.monotonic, sleep=clock.sleep)
    await run_until(poller, clock, 14)
    waits = clock.sleeps[:14]
    minimum, maximum = poller_mod.AUTH_BACKOFF_MIN_S, poller_mod.AUTH_BACKOFF_MAX_S
    assert waits[0] == pytest.approx(0.1)
    assert waits[1:6] == [minimum, 2 * minimum, 4 * minimum, 8 * minimum, maximum]
    assert waits[6:13] == [maximum] * 7
    assert waits[13] == pytest.approx(0.1)  # reset
    assert meter.opened == 0 and poller.phase is poller_mod.Phase.STOPPED


async def test_scans_keep_their_period_on_a_fake_clock(write_config: Writer) -> None:
    """Scans are scan_rate_ms apart on the poller's own clock; a scan that overruns
    skips the ticks it missed instead of bursting to catch up."""
    config = load_config(write_config(devices=[tcp_device("m1", scan_rate_ms=1000)],
                                      signals=[signal("s1", "m1")]))
    clock = FakeClock()
    meter = FakeMeter({"s1": 5})
    reads = 0

    def value() -> BaseException | None:
        nonlocal reads
        reads += 1
        if reads == 3:
            clock.now += 2.5  # this scan takes 2.5 periods
        return None

    meter.read_error = value
    table = SignalTable.from_config(config)
    poller = poller_mod.Poller(config.devices[0], config.signals_of("m1"), table,
                               get_logger(), FrameTracer(get_logger(), False),
                               factory_for({"m1": meter}), clock=clock.wall,
                               monotonic=clock.monotonic, sleep=clock.sleep)
    await run_until(poller, clock, 4)
    # after the first scan (at 0, as soon as associated) onto the device's grid
    phase = poller_mod.scan_phase("m1")
    assert 0 < clock.sleeps[0] <= 1.0
    assert clock.sleeps[0] == pytest.approx(phase) or phase == 0
    assert clock.sleeps[1:4] == [1.0, pytest.approx(0.5), 1.0]
    assert table.signal("s1").value == 5 and table.signal("s1").timestamp == clock.wall() - 1.0
    stats = poller.stats
    assert stats.missed_scans == 2 and stats.late_scans == 0
    assert stats.first_scan_at == clock.start  # the first scan ended at 0 on the fake clock


async def test_bug_in_session_is_contained(write_config: Writer) -> None:
    config = two_meter_config(write_config)
    meter = FakeMeter(open_error=lambda: ZeroDivisionError("bug"))
    snapshot = await Supervisor(config, session_factory=factory_for(
        {"m1": meter, "m2": FakeMeter({"e2": 3})})).run_once()
    devices = {d.device_alias: d for d in snapshot.devices}
    assert devices["m1"].status is DeviceStatus.OFFLINE and devices["m1"].error == "bug"
    assert devices["m2"].status is DeviceStatus.ONLINE


async def test_reload_gives_a_port_with_new_settings_a_new_bus(write_config: Writer) -> None:
    """The supervisor is the one place that builds serial buses: devices on one port
    share one; after a reload that changes the port's baud rate the restarted devices
    get a new bus with the new rate, and a port nobody uses any more is forgotten."""
    buses: dict[str, object] = {}
    meters = {"a": FakeMeter({"sa": 1}), "b": FakeMeter({"sb": 2})}
    fake = factory_for(meters)

    def factory(device: DeviceConfig, context: SessionContext) -> MeterSession:
        buses[device.device_alias] = context.bus
        return fake(device, context)

    def config(baudrate: int, port_b: str) -> Config:
        return load_config(write_config(
            devices=[serial_device("a", "/dev/ttyFAKE0", 17, baudrate=baudrate),
                     serial_device("b", port_b, 18, baudrate=baudrate)],
            signals=[signal("sa", "a"), signal("sb", "b")]))

    supervisor = Supervisor(config(9600, "/dev/ttyFAKE0"), session_factory=factory)
    await supervisor.start()
    try:
        await wait_for(lambda: len(buses) == 2)
        first = buses["a"]
        assert first is buses["b"] and isinstance(first, SerialBus)
        assert first._make_port().settings.baudrate == 9600  # type: ignore[attr-defined]
        buses.clear()
        await supervisor.reload(config(19200, "/dev/ttyFAKE1"))
        await wait_for(lambda: len(buses) == 2)
        second, other = buses["a"], buses["b"]
        assert second is not first and other is not second
        assert isinstance(second, SerialBus) and isinstance(other, SerialBus)
        assert second._make_port().settings.baudrate == 19200
        assert other.name == "/dev/ttyFAKE1"
        assert set(supervisor._buses) == {"/dev/ttyFAKE0", "/dev/ttyFAKE1"}
        buses.clear()
        await supervisor.reload(config(19200, "/dev/ttyFAKE0"))  # b moves back
        await wait_for(lambda: len(buses) == 1)
        assert buses["b"] is second  # the unchanged device's bus, shared again
        assert set(supervisor._buses) == {"/dev/ttyFAKE0"}  # FAKE1 is forgotten
    finally:
        await supervisor.stop()


async def test_reload_restarts_only_changed_devices(write_config: Writer) -> None:
    config = two_meter_config(write_config)
    meters = {"m1": FakeMeter({"e1": 1}), "m2": FakeMeter({"e2": 2})}
    supervisor = Supervisor(config, session_factory=factory_for(meters))
    await supervisor.start()
    try:
        await wait_for(lambda: meters["m1"].reads >= 1 and meters["m2"].reads >= 1)
        task_m2 = supervisor.tasks["m2"]
        await supervisor.reload(two_meter_config(write_config, timeout_ms=5000))
        assert supervisor.tasks["m2"] is task_m2
        assert meters["m1"].closed == 1
        await wait_for(lambda: meters["m1"].opened == 2)
    finally:
        await supervisor.stop()


async def test_trace_records_frames_and_dumps_on_failure(write_config: Writer) -> None:
    config = two_meter_config(write_config)
    meter = FakeMeter(open_error=lambda: TransportError("refused"))
    supervisor = Supervisor(config, session_factory=factory_for({"m1": meter,
                                                                  "m2": FakeMeter()}))
    await supervisor.run_once()
    # the flight recorder was dumped (and cleared) when the device went offline
    assert supervisor.table.device("m1").error == "refused"


async def test_session_factory_failure_is_a_device_error(write_config: Writer) -> None:
    config = two_meter_config(write_config)

    def broken_factory(*args: object) -> FakeMeter:
        raise TypeError("factory bug")

    snapshot = await Supervisor(config, session_factory=broken_factory).run_once()  # type: ignore[arg-type]
    assert all(d.error == "factory bug" for d in snapshot.devices)


async def test_meter_closing_an_idle_connection_reconnects_at_once(write_config: Writer) -> None:
    config = load_config(write_config(
        devices=[tcp_device("m1", scan_rate_ms=100, reconnect_time=60000)],
        signals=[signal("e1", "m1")],
    ))
    drops = iter([None, TransportError("connection closed by the meter")])
    meter = FakeMeter({"e1": 1}, read_error=lambda: next(drops, None))
    supervisor = Supervisor(config, session_factory=factory_for({"m1": meter}))
    offline: list[object] = []
    supervisor.table.subscribe(
        lambda change: offline.append(change)
        if getattr(change, "status", None) is DeviceStatus.OFFLINE else None)
    await supervisor.start()
    try:
        # reconnect_time is 60 s: reading again within 3 s means no back-off was taken
        await wait_for(lambda: meter.opened >= 2 and meter.reads >= 2)
        assert offline == []
        assert supervisor.table.device("m1").status is DeviceStatus.ONLINE
    finally:
        await supervisor.stop()


async def test_failure_right_after_reconnect_goes_offline(write_config: Writer) -> None:
    config = load_config(write_config(
        devices=[tcp_device("m1", scan_rate_ms=100, reconnect_time=100)],
        signals=[signal("e1", "m1")],
    ))
    state = {"reads": 0}

    def error() -> BaseException | None:
        state["reads"] += 1
        return None if state["reads"] == 1 else TransportError("connection reset")

    meter = FakeMeter({"e1": 1}, read_error=error)
    supervisor = Supervisor(config, session_factory=factory_for({"m1": meter}))
    await supervisor.start()
    try:
        await wait_for(lambda: supervisor.table.device("m1").error == "connection reset")
        assert supervisor.table.device("m1").status is DeviceStatus.OFFLINE
        assert meter.opened == 2  # one immediate reconnect, then the normal offline path
    finally:
        await supervisor.stop()


async def test_logged_signal_changes_reach_the_log(write_config: Writer) -> None:
    import io

    import structlog

    from dlmsd.logsetup import configure_logging

    stream = io.StringIO()
    configure_logging(4, "text", stream=stream)  # -d4: warnings and above
    try:
        config = load_config(write_config(devices=[tcp_device("m1")],
                                          signals=[signal("e1", "m1", log=1)]))
        meter = FakeMeter({"e1": Decimal("12.5")})
        snapshot = await Supervisor(config,
                                    session_factory=factory_for({"m1": meter})).run_once()
        text = stream.getvalue()
        stream.close()  # a closed log stream must not break a poller either
        again = await Supervisor(config,
                                 session_factory=factory_for({"m1": meter})).run_once()
    finally:
        structlog.reset_defaults()
    assert snapshot.devices[0].status is DeviceStatus.ONLINE
    assert again.devices[0].status is DeviceStatus.ONLINE
    assert "signal_event" in text and "value=12.5" in text


def test_next_tick_is_on_the_grid_and_after_now() -> None:
    assert poller_mod.next_tick(0.0, 10.0, 0.25) == 2.5
    assert poller_mod.next_tick(2.5, 10.0, 0.25) == 12.5  # strictly after now
    assert poller_mod.next_tick(12.4, 10.0, 0.25) == 12.5
    assert poller_mod.next_tick(13.0, 10.0, 0.0) == 20.0
    assert poller_mod.next_tick(-1.0, 10.0, 0.5) == 5.0


def test_late_bound_is_a_tenth_of_the_period_at_most_one_second() -> None:
    assert poller_mod.late_bound(1.0) == pytest.approx(0.1)
    assert poller_mod.late_bound(5.0) == pytest.approx(0.5)
    assert poller_mod.late_bound(10.0) == 1.0
    assert poller_mod.late_bound(900.0) == 1.0


def test_phases_spread_the_devices_over_the_period() -> None:
    """The phase is a function of the alias alone, and 1000 aliases like the
    benchmark's fill every tenth of the period with 5 to 15% of the devices."""
    phases = [poller_mod.scan_phase(f"m{k}") for k in range(1000)]
    assert phases == [poller_mod.scan_phase(f"m{k}") for k in range(1000)]
    assert all(0.0 <= p < 1.0 for p in phases)
    counts = [sum(1 for p in phases if k / 10 <= p < (k + 1) / 10) for k in range(10)]
    assert all(50 <= c <= 150 for c in counts), counts


async def test_late_scans_are_counted(write_config: Writer) -> None:
    """A scan that starts more than 10% of the period (at most 1 s) after its tick is
    late; one that starts within it is not; neither skips a tick."""
    config = load_config(write_config(devices=[tcp_device("m1", scan_rate_ms=1000)],
                                      signals=[signal("s1", "m1")]))
    clock = FakeClock()
    oversleep = iter([0.0, 0.05, 0.3, 0.0, 0.5])

    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        clock.now += next(oversleep, 0.0)  # the event loop woke the poller this late

    poller = poller_mod.Poller(config.devices[0], config.signals_of("m1"),
                               SignalTable.from_config(config), get_logger(),
                               FrameTracer(get_logger(), False),
                               factory_for({"m1": FakeMeter({"s1": 5})}), clock=clock.wall,
                               monotonic=clock.monotonic, sleep=sleep)
    await run_until(poller, clock, 6)
    # scans 2..6 started 0, 0.05, 0.3, 0, 0.5 s after their ticks: two late (0.3, 0.5)
    assert poller.stats.late_scans == 2
    assert poller.stats.missed_scans == 0
    assert poller.stats.scan_count >= 5


async def test_max_connecting_bounds_the_associations_opened_at_once(
        write_config: Writer) -> None:
    """Six devices starting at once with max_connecting 2: never more than two opening
    at the same time, and every device is associated in the end."""
    devices = [tcp_device(f"m{k}", scan_rate_ms=60000, port=4059 + k) for k in range(6)]
    config = load_config(write_config({
        "devices": devices, "signals": [signal(f"s{k}", f"m{k}") for k in range(6)],
        "max_connecting": 2}))
    assert config.max_connecting == 2
    opening = peak = 0

    meters = {f"m{k}": FakeMeter({f"s{k}": k}) for k in range(6)}
    inner = factory_for(meters)

    class Counted:
        def __init__(self, session: MeterSession) -> None:
            self.session = session

        async def open(self) -> None:
            nonlocal opening, peak
            opening += 1
            peak = max(peak, opening)
            try:
                await asyncio.sleep(0.02)
                await self.session.open()
            finally:
                opening -= 1

        def __getattr__(self, name: str) -> object:
            return getattr(self.session, name)

    def factory(device: DeviceConfig, context: SessionContext) -> MeterSession:
        return Counted(inner(device, context))  # type: ignore[return-value]

    supervisor = Supervisor(config, session_factory=factory)
    await supervisor.start()
    try:
        await wait_for(lambda: all(m.reads >= 1 for m in meters.values()))
    finally:
        await supervisor.stop()
    assert peak == 2
    assert all(st.first_scan_at is not None for st in supervisor.stats.values())
