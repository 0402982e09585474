"""The ReadProfile job (dlmsd.protocol.reader), driven against a scripted meter in
memory: which requests it makes, how it falls back, what it remembers, which rows it
gives.  The meter answers by Blue Book 4.3.6 (range: rows whose restricting object's
value lies in from..to, both included; entry: entries from..to, 0 the last)."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from dlmsd.protocol.axdr import Data, DateTime
from dlmsd.protocol.client import Directory
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.profile import instant
from dlmsd.protocol.reader import (
    Fetch,
    MeterQuirks,
    ProfileLayout,
    ProfileResult,
    ReadProfile,
    Scaler,
    ScalerKey,
)
from dlmsd.protocol.selective import (
    CaptureObject,
    EntryDescriptor,
    RangeDescriptor,
    build_capture_objects,
    parse_access,
)
from dlmsd.protocol.xdlms import CosemAttributeDescriptor, DataAccessResult

PROFILE = Obis(1, 0, 99, 1, 0, 255)
CLOCK = CaptureObject(8, Obis(0, 0, 1, 0, 0, 255), 2)
ENERGY = CaptureObject(3, Obis(1, 0, 1, 8, 0, 255), 2)
EVENT = CaptureObject(1, Obis(0, 0, 96, 11, 0, 255), 2)
ZONE = timezone(timedelta(hours=1))
T0 = datetime(2024, 5, 6, 0, 0, tzinfo=ZONE)


class FakeClient:
    def needs_object_list(self, class_id: int | None, short_name: int) -> bool:
        return class_id is None

    def target(self, obis: Obis, attribute: int, class_id: int | None, short_name: int,
               directory: Directory) -> tuple[int, CosemAttributeDescriptor]:
        assert class_id is not None
        return class_id, CosemAttributeDescriptor(class_id, obis, attribute)

    def sibling(self, target: CosemAttributeDescriptor, attribute: int, other: int
                ) -> CosemAttributeDescriptor:
        return CosemAttributeDescriptor(target.class_id, target.instance_id, other)


@dataclass
class Meter:
    """A profile: ``columns`` (the clock among them), rows of (time, value)."""

    rows: list[tuple[datetime, int]]
    columns: tuple[CaptureObject, ...] = (ENERGY, CLOCK)  # the clock is not first
    period: int = 900
    now: datetime = T0 + timedelta(hours=6)
    refuse_range: bool = False
    refuse_deviation: bool = False
    empty_range: bool = False
    refuse_entry: bool = False
    refuse_buffer: bool = False
    requests: list[tuple[int, Any]] = field(default_factory=list)  # (selector, access)

    def _entry(self, when: datetime, value: int) -> Data:
        cells = {CLOCK.key: lambda: Data.octets(DateTime.from_datetime(when).to_bytes()),
                 ENERGY.key: lambda: Data.uint32(value), EVENT.key: lambda: Data.uint8(value)}
        return Data.structure(*(cells[c.key]() for c in self.columns))

    def _buffer(self, rows: Iterable[tuple[datetime, int]]) -> Data:
        return Data.array(*(self._entry(when, value) for when, value in rows))

    def answer(self, op: Fetch) -> list[Any]:
        return [self._one(t, op) for t in op.targets]

    def _one(self, target: Any, op: Fetch) -> Any:
        assert isinstance(target, CosemAttributeDescriptor)
        if target.class_id == 3:
            return Data.structure(Data.int8(-1), Data.enum(30))
        if target.class_id == 8:
            return Data.octets(DateTime.from_datetime(self.now).to_bytes())
        attribute = target.attribute_id
        if attribute == 3:
            return build_capture_objects(self.columns)
        if attribute == 4:
            return Data.uint32(self.period)
        if attribute == 7:
            return Data.uint32(len(self.rows))
        assert attribute == 2
        if op.selection is None:
            self.requests.append((0, None))
            return DataAccessResult.READ_WRITE_DENIED if self.refuse_buffer else self._buffer(
                self.rows)
        access = parse_access(op.selection)
        self.requests.append((op.selection.access_selector, access))
        if isinstance(access, RangeDescriptor):
            start, end = access.dates()
            if self.refuse_range or (self.refuse_deviation and start.deviation is not None):
                return DataAccessResult.OTHER_REASON
            if self.empty_range:
                return Data.array()
            assert access.restricting_object == CLOCK
            low, high = _local(start), _local(end)
            return self._buffer(r for r in self.rows if low <= r[0] <= high)
        assert isinstance(access, EntryDescriptor)
        if self.refuse_entry:
            return DataAccessResult.OTHER_REASON
        last = access.to_entry or len(self.rows)
        return self._buffer(self.rows[access.from_entry - 1:last])


def _local(stamp: DateTime) -> datetime:
    """A range date as the meter takes it: without deviation, the meter's zone."""
    value = instant(stamp) if stamp.deviation is not None else stamp.to_datetime()
    assert value is not None
    return value if value.tzinfo is not None else value.replace(tzinfo=ZONE)


@dataclass
class Context:
    quirks: MeterQuirks = field(default_factory=MeterQuirks)
    scalers: dict[ScalerKey, Scaler] = field(default_factory=dict)
    profile_layouts: dict[Obis, ProfileLayout] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    client: Any = field(default_factory=FakeClient)

    def remember_scaler(self, key: ScalerKey, value: Scaler) -> None:
        self.scalers[key] = value

    def directory(self) -> Generator[Fetch, Any, Directory]:
        raise AssertionError("no object list is needed in LN with class ids")
        yield

    def note(self, name: str, level: str = "debug", **fields: object) -> None:
        self.notes.append(name)

    def suspect(self, reason: str, *, directory: bool, scalers: Iterable[ScalerKey]) -> bool:
        return False


def run(job: ReadProfile, meter: Meter, context: Context) -> ProfileResult:
    gen = job.run(context)  # type: ignore[arg-type]
    try:
        op = next(gen)
        while True:
            op = gen.send(meter.answer(op))
    except StopIteration as done:
        result: ProfileResult = done.value
        return result


def rows_every_15_min(count: int, start: datetime = T0) -> list[tuple[datetime, int]]:
    return [(start + timedelta(minutes=15 * n), 1000 + n) for n in range(count)]


def times(result: ProfileResult) -> list[str]:
    return [r.ts for r in result.rows]


def job(since: DateTime | None = None, **over: Any) -> ReadProfile:
    args: dict[str, Any] = {"now": datetime(2030, 1, 1, tzinfo=UTC),
                            "backfill": timedelta(hours=1)}
    args.update(over)
    return ReadProfile("lp", PROFILE, since=since, **args)


def test_range_backfill_on_the_clock_column_with_exact_values() -> None:
    meter = Meter(rows_every_15_min(25))  # 00:00 .. 06:00
    result = run(job(), meter, Context())
    assert result.error is None and result.method == "range"
    # meter now 06:00, backfill 1 h: 05:00 .. 06:00, both included
    assert times(result) == ["2024-05-06T05:00:00+01:00", "2024-05-06T05:15:00+01:00",
                             "2024-05-06T05:30:00+01:00", "2024-05-06T05:45:00+01:00",
                             "2024-05-06T06:00:00+01:00"]
    assert result.rows[0].values == {ENERGY.key: Decimal("102.0")}
    assert result.rows[0].units == {ENERGY.key: "Wh"}
    ((selector, access),) = meter.requests
    assert selector == 1 and access.restricting_object == CLOCK  # the 2nd capture object
    assert access.dates()[0].deviation == -60


def test_since_is_excluded_and_reads_continue_without_gap_or_duplicate() -> None:
    meter = Meter(rows_every_15_min(13))  # up to 03:00
    meter.now = T0 + timedelta(hours=3)
    context = Context()
    first = run(job(backfill=timedelta(hours=2)), meter, context)
    meter.rows = rows_every_15_min(21)  # the meter went on until 05:00
    meter.now = T0 + timedelta(hours=5)
    second = run(job(since=first.rows[-1].time), meter, context)
    got = times(first) + times(second)
    assert got == [f"2024-05-06T{h:02d}:{m:02d}:00+01:00"
                   for h in range(1, 6) for m in (0, 15, 30, 45)][:17]
    assert len(set(got)) == len(got)
    assert context.notes.count("profile_layout") == 1  # once per association


def test_deviation_refused_retries_without_then_remembers() -> None:
    meter = Meter(rows_every_15_min(25), refuse_deviation=True)
    context = Context()
    result = run(job(), meter, context)
    assert result.method == "range without deviation"
    assert len(result.rows) == 5
    assert [a.dates()[0].deviation for _s, a in meter.requests] == [-60, None]
    assert PROFILE in context.quirks.range_without_deviation
    meter.requests.clear()
    run(job(since=result.rows[-2].time), meter, context)
    assert [a.dates()[0].deviation for _s, a in meter.requests] == [None]


def test_range_refused_falls_back_to_entry_and_remembers() -> None:
    meter = Meter(rows_every_15_min(25), refuse_range=True)
    context = Context()
    result = run(job(), meter, context)
    assert result.method == "entry"
    assert times(result)[0] == "2024-05-06T05:00:00+01:00" and len(result.rows) == 5
    assert [s for s, _a in meter.requests] == [1, 1, 2]  # with, without deviation, entry
    assert PROFILE in context.quirks.range_refused
    meter.requests.clear()
    run(job(since=result.rows[-1].time), meter, context)
    assert [s for s, _a in meter.requests] == [2]


def test_empty_range_where_rows_exist_is_not_believed() -> None:
    meter = Meter(rows_every_15_min(25), empty_range=True)
    context = Context()
    result = run(job(), meter, context)
    assert result.method == "entry" and len(result.rows) == 5
    assert PROFILE in context.quirks.range_refused
    assert "profile_range_empty" in context.notes


def test_empty_range_is_no_error() -> None:
    meter = Meter(rows_every_15_min(25))
    meter.now = T0 + timedelta(hours=6, minutes=10)
    context = Context()
    result = run(job(since=DateTime.from_datetime(T0 + timedelta(hours=6))), meter, context)
    assert result.error is None and result.rows == [] and result.method == "range"
    assert not context.quirks.range_refused


def test_entry_window_grows_until_it_reaches_the_last_row_read() -> None:
    # an event log: no capture period, so the first window is 16 entries
    rows = [(T0 + timedelta(seconds=37 * n), n % 200 + 1) for n in range(100)]
    meter = Meter(rows, columns=(CLOCK, EVENT), period=0, now=T0 + timedelta(hours=2))
    since = DateTime.from_datetime(rows[39][0])
    result = run(job(since=since, access="entry"), meter, Context())
    assert [r.values[EVENT.key] for r in result.rows] == list(range(41, 101))
    assert result.rows[0].events == {EVENT.key: "terminal cover closed"}  # code 41
    windows = [(a.from_entry, a.to_entry) for _s, a in meter.requests]
    assert windows == [(85, 100), (37, 100)]


def test_refused_both_reads_the_whole_buffer() -> None:
    meter = Meter(rows_every_15_min(25), refuse_range=True, refuse_entry=True)
    context = Context()
    result = run(job(), meter, context)
    assert result.method == "all" and len(result.rows) == 5
    assert {PROFILE} == context.quirks.range_refused == context.quirks.entry_refused


def test_refused_everything_is_the_result_error() -> None:
    meter = Meter(rows_every_15_min(3), refuse_range=True, refuse_entry=True,
                  refuse_buffer=True)
    result = run(job(), meter, Context())
    assert result.rows == [] and result.error is not None
    assert "read-write-denied" in result.error


def test_columns_kept() -> None:
    meter = Meter(rows_every_15_min(5))
    meter.now = T0 + timedelta(hours=1)
    result = run(job(columns=frozenset()), meter, Context())
    assert [r.values for r in result.rows] == [{}] * 5
