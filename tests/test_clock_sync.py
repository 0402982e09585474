"""The clock sync: the pure job (dlmsd.protocol.clock) through the reader against the
simulator's live clock in memory (a fake clock, symmetric line delays), the simulator's
clock methods, the configuration, the poller's schedule and the kernel's NTP state.

The Blue Book clock methods (4.5.1, class 8): 4 adjust_to_preset_time, 5
preset_adjusting_time, 6 shift_time (long, -900..900 s).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import signal, tcp_device
from memory_meter import MODEL, Clock, MemoryMeter, Wire

from dlmsd.config import ClockSyncConfig, DeviceConfig, load_config, parse_config
from dlmsd.errors import ConfigError
from dlmsd.ntp import GatewayClock, gateway_clock_state
from dlmsd.protocol.axdr import ClockStatus, Data, DateTime
from dlmsd.protocol.clock import (
    ClockReading,
    ClockSyncResult,
    SyncClock,
    gateway_date_time,
    meter_datetime,
)
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.reader import MeterQuirks, MeterReader, ReaderState
from dlmsd.protocol.sn import WriteRequest
from dlmsd.protocol.xdlms import (
    ActionRequestNormal,
    GetRequestNormal,
    SetRequestNormal,
    SetRequestWithFirstDatablock,
)
from dlmsd.readers import build_reader
from dlmsd.sim.model import Meter
from dlmsd.sim.server import MeterServer, Referencing, ServerOptions

#: The reader's clock c is wall time BASE + c (the job's wall_offset).
BASE = datetime(2026, 12, 8, 2, 0, tzinfo=UTC).timestamp()
VILNIUS = ZoneInfo("Europe/Vilnius")


class AllAnswers(dict[int, float]):
    """Every answer spends ``delay`` seconds on the line (Wire.delay_to_client)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def get(self, key: int, default: Any = None) -> float:  # type: ignore[override]
        return self.delay


class LiveMeter(MemoryMeter):
    """The simulator's live meter; it takes each request half a round trip after it is
    sent (a symmetric line), at the wire's fake time."""

    def __init__(self, kind: str, options: ServerOptions, clock: Clock, rtt: float,
                 drift: float) -> None:
        super().__init__(kind, options)
        self.meter = Meter(MODEL, live=True, started=datetime.fromtimestamp(BASE, UTC))
        self.meter.clock_offset = drift
        self.server = MeterServer(self.meter, options)
        self.clock, self.rtt = clock, rtt

    def _answer(self, apdu: bytes) -> bytes:
        now = datetime.fromtimestamp(BASE + self.clock.now + self.rtt / 2, UTC)
        return self.server.handle(apdu, now)


def _device(kind: str, referencing: str, **over: Any) -> DeviceConfig:
    link = ({"mode": "DLMS-WRAPPER", "logical_address": 1} if kind == "wrapper" else
            {"address_size": 2, "logical_address": 1, "physical_address": 17})
    doc = {"devices": [tcp_device("m", type=referencing, timeout_ms=5000, retry_counter=1,
                                  **link, **over)], "signals": [signal(device="m")]}
    return parse_config(doc).devices[0]


class Rig:
    def __init__(self, kind: str = "wrapper", referencing: str = "LN", *, rtt: float = 0.4,
                 drift: float = 120.0, max_pdu: int = 1024) -> None:
        self.clock = Clock()
        options = ServerOptions(referencing=Referencing(referencing), max_pdu=max_pdu)
        self.meter = LiveMeter(kind, options, self.clock, rtt, drift)
        self.reader: MeterReader = build_reader(_device(kind, referencing), quirks=MeterQuirks(),
                                                counters=_no_counters)
        self.wire = Wire(self.reader, self.meter, self.clock,
                         delay_to_client=AllAnswers(rtt))
        self.reader.open(self.wire.now, bytes(16))
        self.wire.run(lambda: self.reader.state is ReaderState.READY)

    def sync(self, method: str = "set", max_drift: float = 2.0, **over: Any) -> ClockSyncResult:
        job = SyncClock(max_drift, method, VILNIUS, wall_offset=BASE, **over)  # type: ignore[arg-type]
        self.reader.submit(job, self.wire.now)
        self.wire.run(lambda: self.reader.state is not ReaderState.BUSY)
        assert self.reader.state is ReaderState.READY
        result: ClockSyncResult = self.reader.result
        return result

    def requests(self) -> list[object]:
        return [r for r in self.meter.reads()
                if not isinstance(r, GetRequestNormal) or r.descriptor.class_id == 8]


def _no_counters() -> Any:
    raise AssertionError("no counters here")


def _drift(reading: ClockReading | None) -> float:
    assert reading is not None and reading.drift_s is not None, reading
    return reading.drift_s


# ------------------------------------------------------------ the job, in memory
@pytest.mark.parametrize("referencing", ["LN", "SN"])
@pytest.mark.parametrize("kind", ["wrapper", "hdlc"])
def test_set_takes_the_round_trip_into_account(kind: str, referencing: str) -> None:
    """Drift 120 s, a 0.4 s round trip: measured at the middle of the round trip the
    drift is 120 s to the hundredth (the meter's resolution), not 120 - 0.2; the SET
    written for half a round trip later leaves the meter within 0.02 s."""
    rig = Rig(kind, referencing)
    result = rig.sync()
    assert result.action == "set", result
    assert _drift(result.before) == pytest.approx(120, abs=0.011)
    assert result.before.round_trip_s == pytest.approx(0.4)
    assert _drift(result.after) == pytest.approx(0, abs=0.02)
    assert abs(rig.meter.meter.clock_offset) < 0.02
    # the value written: Vilnius time (EET, deviation -120, no DST in December)
    assert result.value.endswith("+02:00")


def test_set_writes_the_zone_deviation_and_dst_bit() -> None:
    rig = Rig()
    rig.sync()
    (request,) = [r for r in rig.requests() if isinstance(r, SetRequestNormal)]
    value = request.value.value
    assert isinstance(value, bytes)
    written = DateTime.from_bytes(value)
    assert written.deviation == -120 and written.clock_status == ClockStatus(0)
    assert written.hundredths is not None


def test_within_max_drift_nothing_is_written() -> None:
    rig = Rig(drift=1.5)
    result = rig.sync(max_drift=2.0)
    assert result.action == "none" and result.after is None
    assert _drift(result.before) == pytest.approx(1.5, abs=0.011)
    assert not any(isinstance(r, SetRequestNormal | ActionRequestNormal)
                   for r in rig.meter.reads())


def test_a_round_trip_too_long_to_tell_is_skipped() -> None:
    rig = Rig(rtt=5.0, drift=3.0)
    result = rig.sync(max_drift=2.0)
    assert result.action == "skipped" and "round trip" in result.reason
    assert not any(isinstance(r, SetRequestNormal) for r in rig.meter.reads())


@pytest.mark.parametrize("referencing", ["LN", "SN"])
def test_adjust_shifts_a_small_drift(referencing: str) -> None:
    rig = Rig(referencing=referencing, drift=120.0)
    result = rig.sync("adjust")
    assert result.action == "shift_time" and result.value == "-120 s"
    assert _drift(result.after) == pytest.approx(0, abs=0.02)
    if referencing == "LN":
        (action,) = [r for r in rig.meter.reads() if isinstance(r, ActionRequestNormal)]
        assert action.descriptor.method_id == 6 and action.parameters == Data.int16(-120)
    else:
        writes = [r for r in rig.meter.reads() if isinstance(r, WriteRequest)]
        assert len(writes) == 1 and writes[0].values == (Data.int16(-120),)


@pytest.mark.parametrize("referencing", ["LN", "SN"])
def test_adjust_presets_a_large_drift(referencing: str) -> None:
    """-5000 s is beyond shift_time's 900: preset_adjusting_time (5) then
    adjust_to_preset_time (4); the preset is predicted 1.5 round trips ahead."""
    rig = Rig(referencing=referencing, drift=-5000.0)
    result = rig.sync("adjust")
    assert result.action == "preset_time", result
    assert _drift(result.before) == pytest.approx(-5000, abs=0.011)
    assert _drift(result.after) == pytest.approx(0, abs=0.02)
    if referencing == "LN":
        methods = [r.descriptor.method_id for r in rig.meter.reads()
                   if isinstance(r, ActionRequestNormal)]
        assert methods == [5, 4]


def test_set_in_blocks_through_the_reader() -> None:
    """A meter with a 24-octet max PDU: the SET of the clock goes in two blocks."""
    rig = Rig(max_pdu=24)
    result = rig.sync()
    assert result.action == "set"
    assert any(isinstance(r, SetRequestWithFirstDatablock) for r in rig.meter.reads())
    assert _drift(result.after) == pytest.approx(0, abs=0.02)


def test_a_refused_set_is_a_failed_result_and_the_session_goes_on() -> None:
    rig = Rig()
    rig.meter.meter.live = False  # the fixed clock refuses (read-write-denied)
    result = rig.sync()
    assert result.action == "failed" and "read-write-denied" in result.reason
    assert rig.reader.state is ReaderState.READY


def test_force_sets_a_clock_within_max_drift() -> None:
    rig = Rig(drift=0.5)
    assert rig.sync(max_drift=2.0, force=True).action == "set"


# ------------------------------------------------------------ date-times
def test_gateway_date_time_in_summer_and_winter() -> None:
    summer = gateway_date_time(datetime(2026, 7, 1, 9, 30, 0, 250000, tzinfo=UTC), VILNIUS)
    assert (summer.hour, summer.deviation, summer.hundredths) == (12, -180, 25)
    assert summer.clock_status == ClockStatus.DAYLIGHT_SAVING_ACTIVE
    winter = gateway_date_time(datetime(2026, 12, 8, 2, 0, tzinfo=UTC), VILNIUS)
    assert (winter.hour, winter.deviation, winter.clock_status) == (4, -120, ClockStatus(0))
    assert winter.day_of_week == 2  # a Tuesday


def test_meter_datetime_without_deviation_uses_time_zone_and_dst() -> None:
    local = DateTime(2026, 7, 1, None, 12, 0, 0, 0, None, ClockStatus.DAYLIGHT_SAVING_ACTIVE)
    assert meter_datetime(local) is None
    assert meter_datetime(local, -120, 60) == datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    standard = DateTime(2026, 12, 1, None, 12, 0, 0, 0, None, ClockStatus(0))
    assert meter_datetime(standard, -120, 60) == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert meter_datetime(DateTime()) is None


# ------------------------------------------------------------ the configuration
def _config(tmp_path: Path, clock_sync: object) -> Any:
    path = tmp_path / "dlms.json"
    path.write_text(json.dumps({"devices": [tcp_device(clock_sync=clock_sync)],
                                "signals": [signal()]}))
    return load_config(path)


def test_config_defaults_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    cfg = _config(tmp_path, {"max_drift_s": 10}).devices[0].clock_sync
    assert cfg == ClockSyncConfig(10.0, 3600, "set", None, zone_name="America/New_York")
    assert cfg.zone == ZoneInfo("America/New_York") and cfg.zone_name == "America/New_York"
    cfg = _config(tmp_path, {"max_drift_s": 0.5, "min_interval_s": 60, "method": "ADJUST",
                             "time_zone": "Europe/Vilnius", "require_ntp_sync": 0}
                  ).devices[0].clock_sync
    assert (cfg.max_drift_s, cfg.min_interval_s, cfg.method, cfg.zone, cfg.require_ntp_sync) == (
        0.5, 60, "adjust", VILNIUS, False)
    assert _config(tmp_path, None).devices[0].clock_sync is None


@pytest.mark.parametrize(("clock_sync", "problem"), [
    ({}, "devices[0].clock_sync: missing required key 'max_drift_s'"),
    ({"max_drift_s": 0}, "devices[0].clock_sync.max_drift_s: 0 is not allowed: must be a "
                         "number greater than 0 and at most 86400"),
    ({"max_drift_s": 1, "min_interval_s": 0}, "devices[0].clock_sync.min_interval_s: 0 is "
                                              "not allowed"),
    ({"max_drift_s": 1, "method": "ntp"}, "devices[0].clock_sync.method: \"ntp\" is not allowed"),
    ({"max_drift_s": 1, "time_zone": "Mars/Base"}, "devices[0].clock_sync.time_zone: "
                                                   "\"Mars/Base\" is not allowed"),
    ({"max_drift_s": 1, "drift": 2}, "devices[0].clock_sync.drift: unknown key"),
])
def test_config_problems(tmp_path: Path, clock_sync: object, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, clock_sync)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


# ------------------------------------------------------------ the kernel's NTP state
def test_gateway_clock_state_reads_adjtimex() -> None:
    state = gateway_clock_state()
    if state.synchronised is None:
        assert "adjtimex" in state.detail
    else:
        assert state.detail.startswith("adjtimex: state ")
        assert ("STA_UNSYNC" in state.detail) != state.synchronised or (
            "TIME_ERROR" in state.detail)


# ------------------------------------------------------------ the poller's schedule
class _Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.lines.append((level, event, fields))


class _Session:
    def __init__(self, result: ClockSyncResult) -> None:
        self.result, self.syncs = result, 0

    async def open(self) -> None:
        return None

    async def read(self, requests: Any) -> list[Any]:
        return []

    async def sync_clock(self, settings: ClockSyncConfig) -> ClockSyncResult:
        self.syncs += 1
        return self.result

    async def close(self) -> None:
        return None


def _reading(drift: float) -> ClockReading:
    gateway = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
    meter = gateway + timedelta(seconds=drift)
    return ClockReading(DateTime.from_datetime(meter), meter, gateway, 0.05)


async def _poll(tmp_path: Path, clock_sync: dict[str, Any], result: ClockSyncResult,
                scans: int, state: GatewayClock) -> tuple[_Session, _Log]:
    from dlmsd.poller import Poller
    from dlmsd.signals import SignalTable
    from dlmsd.trace import FrameTracer

    cfg = _config(tmp_path, clock_sync)
    device = cfg.devices[0].__class__(**{**cfg.devices[0].__dict__, "scan_rate_ms": 1000})
    session, log, fake = _Session(result), _Log(), [0.0]
    done = [0]

    async def sleep(seconds: float) -> None:
        fake[0] += seconds
        done[0] += 1
        if done[0] >= scans:
            raise _Stop

    poller = Poller(device, cfg.signals_of("m1"), SignalTable.from_config(cfg), log,
                    FrameTracer(log, False), lambda d, c: session, clock=lambda: BASE + fake[0],
                    monotonic=lambda: fake[0], sleep=sleep, gateway_clock=lambda: state)
    with pytest.raises(_Stop):
        await poller.run()
    return session, log


class _Stop(Exception):
    pass


SYNCED = GatewayClock(True, "adjtimex: state 0, status 0x2001")


async def test_poller_checks_at_most_once_per_min_interval(tmp_path: Path) -> None:
    """10 scans a second apart, min_interval_s 4: checks after scans 1, 5 and 9."""
    result = ClockSyncResult(_reading(120), "set", _reading(0.01), value="x")
    session, log = await _poll(tmp_path, {"max_drift_s": 2, "min_interval_s": 4}, result, 10,
                               SYNCED)
    assert session.syncs == 3
    synced = [fields for _level, event, fields in log.lines if event == "clock_synced"]
    assert len(synced) == 3
    assert synced[0]["before_drift_s"] == 120.0 and synced[0]["after_drift_s"] == 0.01
    assert {"before_meter_time", "before_gateway_time", "before_round_trip_ms",
            "after_meter_time"} <= set(synced[0])


@pytest.mark.parametrize(("state", "reason"), [
    (GatewayClock(False, "adjtimex: state 5 TIME_ERROR"), "not synchronised"),
    (GatewayClock(None, "adjtimex is Linux only"), "unknown")])
async def test_poller_never_syncs_while_the_gateway_is_unsynchronised(
        tmp_path: Path, state: GatewayClock, reason: str) -> None:
    result = ClockSyncResult(_reading(120), "set", _reading(0.0))
    session, log = await _poll(tmp_path, {"max_drift_s": 2, "min_interval_s": 3600}, result,
                               130, state)
    assert session.syncs == 0
    skipped = [f for _l, e, f in log.lines if e == "clock_sync_skipped"]
    # every NTP_RECHECK_S (60 s) of the 130 scans: at 0, 60 and 120 s
    assert len(skipped) == 3 and reason in skipped[0]["reason"]
    assert skipped[0]["check"] == state.detail


async def test_poller_with_require_ntp_sync_0_trusts_the_gateway(tmp_path: Path) -> None:
    result = ClockSyncResult(_reading(0.5), "none")
    session, log = await _poll(tmp_path, {"max_drift_s": 2, "require_ntp_sync": 0}, result, 3,
                               GatewayClock(False, "unsynchronised"))
    assert session.syncs == 1
    assert [e for _l, e, _f in log.lines if e.startswith("clock")] == ["clock_checked"]


def test_sim_shift_out_of_range_and_preset_outside_validity() -> None:
    from dlmsd.protocol.xdlms import ActionResult
    from dlmsd.sim.clock import invoke_clock

    meter = Meter(MODEL, live=True, started=datetime.fromtimestamp(BASE, UTC))
    clock = MODEL.find(Obis(0, 0, 1, 0, 0, 255))
    assert clock is not None
    now = datetime.fromtimestamp(BASE, UTC)
    assert invoke_clock(meter, clock, 6, Data.int16(-901), now) is ActionResult.OTHER_REASON
    assert invoke_clock(meter, clock, 4, Data.int8(0), now) is ActionResult.OTHER_REASON

    def stamp(seconds: float) -> Data:
        return Data.octets(DateTime.from_datetime(now + timedelta(seconds=seconds)).to_bytes())

    later = Data.structure(stamp(100), stamp(600), stamp(700))  # valid only later
    assert invoke_clock(meter, clock, 5, later, now) is ActionResult.SUCCESS
    assert invoke_clock(meter, clock, 4, Data.int8(0), now) is ActionResult.OTHER_REASON
    assert meter.clock_offset == 0
    assert invoke_clock(meter, clock, 5, Data.int8(0), now) is ActionResult.TYPE_UNMATCHED
    valid = Data.structure(stamp(100), stamp(-60), stamp(60))
    assert invoke_clock(meter, clock, 5, valid, now) is ActionResult.SUCCESS
    assert invoke_clock(meter, clock, 4, Data.int8(0), now) is ActionResult.SUCCESS
    assert meter.clock_offset == 100


def test_a_lost_request_measures_the_round_trip_of_its_resend() -> None:
    """The first GET of the clock is lost: the round trip is that of the resend (0.4 s),
    not from the first send (timeout + 0.4 s), so the drift is still exact."""
    rig = Rig()
    rig.wire.drop_to_meter = {rig.wire.sent_to_meter + 1}
    result = rig.sync()
    assert result.before.round_trip_s == pytest.approx(0.4)
    assert _drift(result.before) == pytest.approx(120, abs=0.011)
    assert any(note.event == "retry" for note in rig.wire.notes)


class _Context:
    """A JobContext without a reader: the job is driven by hand."""

    def __init__(self) -> None:
        from dlmsd.protocol.client import LnClient
        self.client = LnClient()
        self.times = (0.0, 0.0)
        self.scalers: dict[Any, Any] = {}

    def exchange_times(self) -> tuple[float, float]:
        return self.times

    def directory(self) -> Any:  # pragma: no cover - LN with class 8 needs none
        raise AssertionError


def test_without_deviation_time_zone_and_dst_deviation_are_read() -> None:
    """A meter whose date-time leaves the deviation unspecified: the job reads
    time_zone (3) and daylight_savings_deviation (7) once, and places the time with
    them (summer: time_zone -120, DST 60: local = UTC + 3 h)."""
    from dlmsd.protocol.reader import Fetch

    context = _Context()
    job = SyncClock(2.0, "set", VILNIUS, wall_offset=datetime(2026, 7, 1, 9, 0,
                                                               tzinfo=UTC).timestamp())
    run = job.run(context)  # type: ignore[arg-type]
    first = next(run)
    assert isinstance(first, Fetch) and first.targets[0].attribute_id == 2
    context.times = (10.0, 10.2)
    local = DateTime(2026, 7, 1, None, 12, 0, 10, 10, None,
                     ClockStatus.DAYLIGHT_SAVING_ACTIVE)
    second = run.send([Data.octets(local.to_bytes())])
    assert isinstance(second, Fetch)
    assert [t.attribute_id for t in second.targets] == [3, 7]
    with pytest.raises(StopIteration) as done:
        run.send([Data.int16(-120), Data.int8(60)])
    result: ClockSyncResult = done.value.value
    assert result.action == "none"
    # the meter said 12:00:10.10 local = 09:00:10.10 UTC; the gateway's time at the
    # middle of the round trip is 09:00:10.10
    assert _drift(result.before) == pytest.approx(0.0, abs=1e-6)
