"""Profiles in the poller: read in the scans' session, rows published in time order,
the last row's time kept in memory and in the state directory, so that a new poller
(a restart of the daemon) or a new session (an offline meter) continues from it: no
row twice, none skipped.  The session runs the real ReadProfile job against the
scripted meter of test_read_profile."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import tcp_device
from fakes import FakeClock
from test_mqtt import Log
from test_read_profile import T0, Context, Meter, rows_every_15_min, run

from dlmsd.config import load_config
from dlmsd.errors import DlmsTimeout
from dlmsd.poller import Poller
from dlmsd.profile_state import ProfileStateStore
from dlmsd.protocol.reader import AttributeRequest, ReadProfile, ReadResult
from dlmsd.signals import Change, DeviceStatus, ProfileRows, SignalTable
from dlmsd.trace import FrameTracer

Writer = Callable[..., Path]


class ProfileSession:
    """A session whose profile reads run ReadProfile against ``meter``; the quirks and
    layouts of the association live in a Context per session."""

    def __init__(self, meter: Meter, fail: list[bool]) -> None:
        self.meter, self.fail, self.context = meter, fail, Context()

    async def open(self) -> None:
        pass

    async def read(self, requests: Sequence[AttributeRequest]) -> list[ReadResult]:
        return []

    async def run(self, job: Any) -> Any:
        assert isinstance(job, ReadProfile)
        if self.fail and self.fail.pop(0):
            raise DlmsTimeout("no answer (the meter went offline)")
        return run(job, self.meter, self.context)

    async def close(self) -> None:
        pass


def setup(write_config: Writer, tmp_path: Path, meter: Meter, fail: list[bool],
          ) -> tuple[Callable[[], Poller], list[str], SignalTable, Log]:
    config = load_config(write_config({
        "devices": [tcp_device("m1")], "signals": [], "state_dir": str(tmp_path),
        "profiles": [{"device_alias": "m1", "profile_alias": "lp",
                      "obis": "1.0.99.1.0.255", "backfill_hours": 1}]}))
    table = SignalTable.from_config(config)
    got: list[str] = []

    def collect(change: Change) -> None:
        if isinstance(change, ProfileRows):
            got.extend(row["ts"] for row in change.rows)

    table.subscribe(collect)
    log = Log()
    clock = FakeClock(start=T0.timestamp())

    def make() -> Poller:
        return Poller(config.devices[0], [], table, log, FrameTracer(log, False),
                      lambda _d, _c: ProfileSession(meter, fail), clock=clock.wall,
                      monotonic=clock.monotonic, sleep=clock.sleep,
                      profiles=config.profiles,
                      profile_state=ProfileStateStore(tmp_path / "profiles"))

    return make, got, table, log


def quarter_hours(first: int, last: int) -> list[str]:
    return [(T0 + timedelta(minutes=15 * n)).isoformat() for n in range(first, last + 1)]


async def test_restart_continues_from_the_state_file(write_config: Writer,
                                                     tmp_path: Path) -> None:
    meter = Meter(rows_every_15_min(9), now=T0 + timedelta(hours=2))
    make, got, _table, log = setup(write_config, tmp_path, meter, [])
    await make().run(once=True)  # backfill 01:00 .. 02:00
    meter.rows, meter.now = rows_every_15_min(17), T0 + timedelta(hours=4)
    await make().run(once=True)  # a new poller (a restarted daemon)
    assert got == quarter_hours(4, 16)
    assert [f["rows"] for f in log.events("profile_read")] == [5, 8]
    stamp = ProfileStateStore(tmp_path / "profiles").load("m1", "lp", "1.0.99.1.0.255")
    assert stamp is not None and stamp.hour == 4 and stamp.minute == 0


async def test_offline_meter_continues_from_the_last_row(write_config: Writer,
                                                         tmp_path: Path) -> None:
    meter = Meter(rows_every_15_min(9), now=T0 + timedelta(hours=2))
    make, got, table, _log = setup(write_config, tmp_path, meter, [False, True, False])
    poller = make()
    await poller.run(once=True)
    meter.rows, meter.now = rows_every_15_min(13), T0 + timedelta(hours=3)
    await poller.run(once=True)  # the read fails: offline, nothing published
    assert table.device("m1").status is DeviceStatus.OFFLINE
    meter.rows, meter.now = rows_every_15_min(21), T0 + timedelta(hours=5)
    await poller.run(once=True)
    assert got == quarter_hours(4, 20)


async def test_unreadable_state_is_said_and_the_backfill_read(write_config: Writer,
                                                              tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "m1--lp.json").write_text("{broken")
    meter = Meter(rows_every_15_min(9), now=T0 + timedelta(hours=2))
    make, got, _table, log = setup(write_config, tmp_path, meter, [])
    await make().run(once=True)
    assert got == quarter_hours(4, 8)
    (warning,) = log.events("profile_state_unreadable")
    assert "not valid JSON" in warning["error"]


async def test_interval_is_the_capture_period_by_default(write_config: Writer,
                                                         tmp_path: Path) -> None:
    meter = Meter(rows_every_15_min(9), now=T0 + timedelta(hours=2))
    make, _got, _table, log = setup(write_config, tmp_path, meter, [])
    poller = make()
    reads: list[int] = []
    original = poller._read_profiles

    async def counted(session: Any, now: float, once: bool) -> None:
        before = len(log.events("profile_read"))
        await original(session, now, once)
        reads.append(len(log.events("profile_read")) - before)
        if len(reads) >= 40:
            raise DlmsTimeout("enough")

    poller._read_profiles = counted  # type: ignore[method-assign]
    await poller._session_round(False)
    # scans every 10 s (the default scan_rate_ms), the profile every 900 s (its period):
    # due at the first scan only within 40 scans
    assert reads[0] == 1 and sum(reads) == 1
