"""The simulated meter's Profile Generic objects (class 7): buffer rows and selective
access (pure).

A simulated profile has no stored rows: its buffer is a function of the meter's time.
Row ``k`` (k = 0, 1, ...) was captured at ``origin + k * interval``; the buffer holds the
rows captured up to the meter's time ``now``, at most ``profile_entries`` of them (the
oldest drop out: sort_method FIFO, Blue Book 4.3.6), oldest first.  Each column's value
in row ``k`` is computed from ``k`` alone (see :class:`Column`), so that a test can
compute every row a meter at a given time answers, and the buffer grows with time under
``--live`` (the meter's time is its clock's attribute 2).

Selective access to the buffer (attribute 2), Blue Book 4.3.6, with the parameters of
:mod:`dlmsd.protocol.selective`:

* by range (selector 1): the rows whose clock column lies in from_value .. to_value,
  both included (as gurux_dlms's own server compares them); the restricting object
  must be a clock column (class 8, attribute 2) of the profile. A date without
  deviation (0x8000) is the meter's local time (its standard offset, plus the DST
  deviation where daylight saving time is in force; in the repeated autumn hour, the
  first one).  ``selected_values``: the columns, in the order given (empty: all).
* by entry (selector 2): entries from_entry .. to_entry (1 the oldest; from_entry 0 is
  read as 1, to_entry 0 or beyond the last as the last), columns from_selected_value
  .. to_selected_value (1 the first; 0 as 1 and as the last likewise).

Anything the simulator does not accept in the parameters (another selector, malformed
parameters, a restricting object that is not a clock column, a column not captured,
a date with wildcards, from_selected_value beyond the columns or above
to_selected_value) is ``other-reason``.  From after to, or entries beyond the buffer,
select nothing: an empty array.

:class:`ProfileQuirks` reproduces what some real meters do (``--profile-quirk``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Protocol

from dlmsd.errors import DecodeError
from dlmsd.protocol.axdr import ClockStatus, Data, DataType, DateTime
from dlmsd.protocol.selective import (
    CaptureObject,
    EntryDescriptor,
    ProfileAccess,
    RangeDescriptor,
    parse_access,
)
from dlmsd.protocol.xdlms import DataAccessResult, SelectiveAccessDescriptor

__all__ = [
    "CLOCK_CLASS_ID",
    "MAX_PROFILE_ENTRIES",
    "Column",
    "ColumnKind",
    "Profile",
    "ProfileQuirks",
    "parse_quirk",
]

CLOCK_CLASS_ID: Final = 8
#: The most rows a simulated profile may hold (bounds every answer).
MAX_PROFILE_ENTRIES: Final = 100_000
_FIFO: Final = 1  # sort_method enum (1) fifo
_INT_TYPES: Final = frozenset({
    DataType.INTEGER, DataType.LONG, DataType.DOUBLE_LONG, DataType.LONG64,
    DataType.UNSIGNED, DataType.LONG_UNSIGNED, DataType.DOUBLE_LONG_UNSIGNED,
    DataType.LONG64_UNSIGNED, DataType.ENUM, DataType.BCD})


class ClockRules(Protocol):
    """The clock's time zone and daylight saving rules (model._ClockRules)."""

    @property
    def utc_offset(self) -> int: ...

    @property
    def dst_deviation(self) -> int: ...

    def dst_at(self, now: datetime) -> bool: ...

    def status_at(self, now: datetime) -> int: ...


class ColumnKind(enum.Enum):
    CLOCK = "clock"  # the capture time, in the meter's local time
    COUNTER = "counter"  # start + floor(per_hour * seconds since origin / 3600)
    CYCLE = "cycle"  # cycle[k % len(cycle)]
    CONSTANT = "constant"  # the captured attribute's model value


@dataclass(frozen=True)
class Column:
    """One capture object and how its value in row ``k`` is made."""

    capture: CaptureObject
    kind: ColumnKind
    data: Data = field(default_factory=Data.null)  # CONSTANT: the value; else its type
    start: int | float = 0
    per_hour: int | float = 0
    cycle: tuple[int | float, ...] = ()
    low: int | float = 0  # the range of an integer type, to clamp a counter
    high: int | float = 0

    def value(self, k: int, seconds: int, rules: ClockRules, moment: datetime) -> Data:
        if self.kind is ColumnKind.CLOCK:
            return Data.octets(local_time(rules, moment).to_bytes())
        if self.kind is ColumnKind.CONSTANT:
            return self.data
        type_ = self.data.type
        if self.kind is ColumnKind.CYCLE:
            return Data(type_, self.cycle[k % len(self.cycle)])
        if type_ in _INT_TYPES:
            assert isinstance(self.start, int) and isinstance(self.per_hour, int)
            number = self.start + self.per_hour * seconds // 3600
            return Data(type_, int(min(self.high, max(self.low, number))))
        return Data(type_, float(self.start + self.per_hour * seconds / 3600))


def local_time(rules: ClockRules, moment: datetime) -> DateTime:
    """``moment`` (aware) as the meter's clock shows it: local time, deviation, status."""
    dst = rules.dst_at(moment)
    offset = rules.utc_offset + (rules.dst_deviation if dst else 0)
    local = moment.astimezone(timezone(timedelta(minutes=offset)))
    return DateTime.from_datetime(local, clock_status=ClockStatus(rules.status_at(moment)))


def meter_local_to_utc(rules: ClockRules, naive: datetime) -> datetime:
    """A local time without deviation, as the meter reads it (see the module docstring)."""
    standard = naive.replace(tzinfo=timezone(timedelta(minutes=rules.utc_offset)))
    summer = naive.replace(
        tzinfo=timezone(timedelta(minutes=rules.utc_offset + rules.dst_deviation)))
    if rules.dst_at(summer):
        return summer
    return standard


@dataclass(frozen=True)
class ProfileQuirks:
    """``--profile-quirk``: behaviours of real meters on a range access.

    ``refuse_range``: every access by range is answered with this data-access-result
    (DSMR meters answer other-reason to a selective access they do not support:
    OSGP/open-smart-grid-platform pull request 145).  ``refuse_deviation``: a range
    whose from or to date has a deviation (anything but 0x8000, not specified) gets
    this result ("Some meters will not accept selective access using datetime
    parameters with deviation set": Gurux/gurux.dlms.java pull request 25).
    ``clock_not_first``: the clock column is the last capture object and the sort
    object (a client that restricts on the first column fails: Gurux/gurux.dlms.java
    pull request 13).  ``empty_range``: a range access is answered with an empty array.
    """

    refuse_range: DataAccessResult | None = None
    refuse_deviation: DataAccessResult | None = None
    clock_not_first: bool = False
    empty_range: bool = False


_QUIRK_NAMES: Final = ("refuse-range", "refuse-deviation", "clock-not-first", "empty-range")
_RESULTS: Final = {r.name.lower().replace("_", "-"): r for r in DataAccessResult
                   if r is not DataAccessResult.SUCCESS}


def parse_quirk(spec: str, quirks: ProfileQuirks) -> ProfileQuirks:
    """Add one ``--profile-quirk`` spec; ValueError names what is wrong."""
    name, _, argument = spec.partition(":")
    if name not in _QUIRK_NAMES:
        raise ValueError(f"--profile-quirk {spec!r}: unknown quirk (one of "
                         f"{', '.join(_QUIRK_NAMES)})")
    result = DataAccessResult.OTHER_REASON
    if name in ("refuse-range", "refuse-deviation"):
        if argument:
            if argument not in _RESULTS:
                raise ValueError(f"--profile-quirk {spec!r}: {argument!r} is not a "
                                 f"data-access-result ({', '.join(_RESULTS)})")
            result = _RESULTS[argument]
    elif argument:
        raise ValueError(f"--profile-quirk {spec!r}: {name} takes no argument")
    if name == "refuse-range":
        quirks = _replace(quirks, refuse_range=result)
    elif name == "refuse-deviation":
        quirks = _replace(quirks, refuse_deviation=result)
    elif name == "clock-not-first":
        quirks = _replace(quirks, clock_not_first=True)
    else:
        quirks = _replace(quirks, empty_range=True)
    if quirks.refuse_range is not None and (quirks.empty_range
                                            or quirks.refuse_deviation is not None):
        raise ValueError("--profile-quirk refuse-range refuses every range: it cannot be "
                         "combined with refuse-deviation or empty-range")
    return quirks


def _replace(quirks: ProfileQuirks, **changes: Any) -> ProfileQuirks:
    values = {name: getattr(quirks, name) for name in
              ("refuse_range", "refuse_deviation", "clock_not_first", "empty_range")}
    values.update(changes)
    return ProfileQuirks(**values)


_NO_SORT_OBJECT: Final = Data.structure(
    Data.uint16(0), Data.octets(bytes(6)), Data.int8(0), Data.uint16(0))


@dataclass(frozen=True)
class Profile:
    """One simulated Profile Generic object (see the module docstring).

    ``now`` gives the meter's time (aware) for a read context: the value of the clock
    column's clock; ``rules`` that clock's rules, for the local times of the rows.
    """

    columns: tuple[Column, ...]
    capture_period: int
    interval: int
    profile_entries: int
    origin: datetime
    rules: ClockRules = field(repr=False)
    now: Callable[[Any], datetime] = field(repr=False)
    sort_object: CaptureObject | None = None

    # ------------------------------------------------------------------ layout
    def ordered(self, quirks: ProfileQuirks) -> tuple[Column, ...]:
        """The columns as the meter shows them (clock-not-first: the clock columns last)."""
        if not quirks.clock_not_first:
            return self.columns
        clocks = tuple(c for c in self.columns if c.kind is ColumnKind.CLOCK)
        return tuple(c for c in self.columns if c.kind is not ColumnKind.CLOCK) + clocks

    def _sort_object(self, quirks: ProfileQuirks) -> CaptureObject | None:
        if quirks.clock_not_first:
            return next(c.capture for c in self.columns if c.kind is ColumnKind.CLOCK)
        return self.sort_object

    def span(self, now: datetime) -> tuple[int, int]:
        """The row numbers in the buffer at ``now``: first .. last (empty: last < first)."""
        seconds = (now - self.origin) // timedelta(seconds=1)
        last = seconds // self.interval if seconds >= 0 else -1
        return max(0, last - self.profile_entries + 1), last

    # ------------------------------------------------------------------ attributes
    def attribute(self, index: int, ctx: Any, quirks: ProfileQuirks) -> Data:
        """Attributes 2..8 (Blue Book 4.3.6, class 7 version 1)."""
        columns = self.ordered(quirks)
        if index == 2:
            first, last = self.span(self.now(ctx))
            return self._rows(first, last, columns)
        if index == 3:
            return Data.array(*(c.capture.to_data() for c in columns))
        if index == 4:
            return Data.uint32(self.capture_period)
        if index == 5:
            return Data.enum(_FIFO)
        if index == 6:
            sort = self._sort_object(quirks)
            return _NO_SORT_OBJECT if sort is None else sort.to_data()
        if index == 7:
            first, last = self.span(self.now(ctx))
            return Data.uint32(max(0, last - first + 1))
        return Data.uint32(self.profile_entries)

    def row(self, k: int, columns: Sequence[Column]) -> Data:
        seconds = k * self.interval
        moment = self.origin + timedelta(seconds=seconds)
        return Data.structure(*(c.value(k, seconds, self.rules, moment) for c in columns))

    def _rows(self, first: int, last: int, columns: Sequence[Column]) -> Data:
        return Data.array(*(self.row(k, columns) for k in range(first, last + 1)))

    # ------------------------------------------------------------------ selective access
    def select(self, selection: SelectiveAccessDescriptor, ctx: Any,
               quirks: ProfileQuirks) -> Data | DataAccessResult:
        """The buffer read with selective access (see the module docstring)."""
        try:
            access: ProfileAccess = parse_access(selection)
        except DecodeError:
            return DataAccessResult.OTHER_REASON
        columns = self.ordered(quirks)
        first, last = self.span(self.now(ctx))
        if isinstance(access, EntryDescriptor):
            return self._by_entry(access, first, last, columns)
        return self._by_range(access, first, last, columns, quirks)

    def _by_entry(self, access: EntryDescriptor, first: int, last: int,
                  columns: tuple[Column, ...]) -> Data | DataAccessResult:
        count = max(0, last - first + 1)
        low = max(1, access.from_entry)
        high = count if access.to_entry == 0 else min(access.to_entry, count)
        left = max(1, access.from_selected_value)
        right = (len(columns) if access.to_selected_value == 0
                 else min(access.to_selected_value, len(columns)))
        if left > len(columns) or left > right:
            return DataAccessResult.OTHER_REASON
        chosen = columns[left - 1:right]
        return self._rows(first + low - 1, first + high - 1, chosen)

    def _by_range(self, access: RangeDescriptor, first: int, last: int,
                  columns: tuple[Column, ...], quirks: ProfileQuirks
                  ) -> Data | DataAccessResult:
        if quirks.refuse_range is not None:
            return quirks.refuse_range
        try:
            start, end = access.dates()
        except DecodeError:
            return DataAccessResult.OTHER_REASON
        if quirks.refuse_deviation is not None and (start.deviation is not None
                                                    or end.deviation is not None):
            return quirks.refuse_deviation
        restricting = access.restricting_object
        if not any(c.kind is ColumnKind.CLOCK and c.capture == restricting for c in columns):
            return DataAccessResult.OTHER_REASON
        by_capture = {c.capture: c for c in columns}
        if any(s not in by_capture for s in access.selected_values):
            return DataAccessResult.OTHER_REASON
        chosen = (tuple(by_capture[s] for s in access.selected_values)
                  if access.selected_values else columns)
        moments = [self._moment(d) for d in (start, end)]
        if moments[0] is None or moments[1] is None:
            return DataAccessResult.OTHER_REASON
        if quirks.empty_range:
            return Data.array()
        step = timedelta(seconds=self.interval)
        # The first row at or after start, the last at or before end.
        low = max(first, -((self.origin - moments[0]) // step))
        high = min(last, (moments[1] - self.origin) // step)
        return self._rows(low, high, chosen)

    def _moment(self, value: DateTime) -> datetime | None:
        moment = value.to_datetime()
        if moment is None:
            return None
        if moment.tzinfo is None:
            return meter_local_to_utc(self.rules, moment)
        return moment
