"""The whole job of reading one meter (pure, sans-I/O).

:class:`MeterReader` decides everything that happens in a session with one meter: the
IEC 62056-21 mode E opening of a serial line, the data link (HDLC SNRM/DISC, or the
wrapper), the association (every authentication mechanism, through the LN or SN
client), the object list and scaler_unit caches (kept across the associations of one
meter in a :class:`MeterCache`, see below), GET-with-list
chunking and the fall-back to single requests, block transfer, resends after a
timeout, stale answers, and release.  It takes bytes and the time; it gives actions
(:mod:`dlmsd.protocol.actions`: bytes to send, line settings, traces, log notes) and one
timer; errors are raised from the call that found them.  The I/O layer's loop is::

    reader.open(now, challenge)            # or submit(job, now), or close(now)
    while not done:
        for action in reader.actions(): ...          # Send, SetLine, Trace, Note
        data = read(until=reader.get_timer())        # None: nothing to wait for
        reader.receive_data(data, now) or reader.handle_timer(now)

A job is what to do once associated: :class:`ReadAttributes` reads attributes for
signals.  A job's ``run(context)`` is a generator that yields operations
(:class:`Fetch`: read these attributes, in as few requests as the meter allows;
:class:`Set`: write one attribute, in blocks if it is long; :class:`Act`: invoke one
method) and gets their results back; new jobs (a profile by range, the clock sync of
:mod:`dlmsd.protocol.clock`) are new generators and new operations here, never a
change to the I/O loop.  A job that needs to know when its meter answered (the clock
sync's round trip) asks :meth:`JobContext.exchange_times` after an operation: the
reader's ``now`` when its first request went out and when its last answer came.

The reader never asks which referencing a meter uses: the client
(:class:`~dlmsd.protocol.client.LnClient` or :class:`~dlmsd.protocol.sn_client.SnClient`)
addresses attributes, parses the object list and describes its APDUs.  Frame and APDU
traces are actions too (:class:`~dlmsd.protocol.actions.Trace`), queued in order with the
bytes they describe and the notes.  The invocation counters are
behind the client's :class:`~dlmsd.protocol.client.Ciphering` callables: no file here;
when the meter's counters start a new sequence (a new meter or new keys) the reader
notes ``invocation_counter_new_sequence``.

The object list and the scaler_units belong to the meter, not to one association: the
caller keeps a :class:`MeterCache` across associations (the poller, in its
``SessionContext``), so a reconnect reads neither again and a meter that drops the
connection after a few answers gets further each time.  The cache holds for a
:class:`MeterIdentity`: the device's connection (port, link, addresses, referencing,
mechanism) and what the AARE tells of the meter (the responding-AP-title, the
application context, the negotiated conformance and max PDU, where the object list is,
which for SN is the vaa-name).  A change of any of them (a swapped meter, a firmware
update that changes what it negotiates) empties the cache.  So does, for what was
carried over from an earlier association, a read error that suggests it is stale: an
object-undefined, object-unavailable or object-class-inconsistent answer for a signal
addressed through the cached object list, or a value that the cached scaler_unit no
longer scales; the job then reads what it dropped again, once (what was read in this
association is not suspected again).  Errors (an unreadable scaler_unit) are kept for
the association only.

A hostile line is bounded: an attempt ends at its timeout, or at once when
:data:`MAX_NOISE_OCTETS` of noise (octets that are no part of any frame: a flag flood)
came since it began; the release (RLRQ, DISC) has one attempt of at most
:data:`RELEASE_TIMEOUT_S`.  What an exchange set aside while it waited (stale answers,
replayed HDLC frames, noise) is named in its error.
"""

from __future__ import annotations

import enum
import weakref
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from dlmsd.errors import (
    AnswerLost,
    DataAccessError,
    DecodeError,
    DlmsdError,
    DlmsTimeout,
    RemoteProtocolError,
    RequestTooLarge,
    TransportError,
)
from dlmsd.protocol import iec62056_21 as iec
from dlmsd.protocol.actions import Action, Note, Send, SetLine, Summary, Trace
from dlmsd.protocol.axdr import Data, DataType, DateTime
from dlmsd.protocol.client import (
    ActionComplete,
    Associated,
    Authenticate,
    ClientBase,
    ClientEvent,
    ClientState,
    CounterStart,
    Directory,
    GetComplete,
    MethodTarget,
    Released,
    SelectionRefused,
    SendApdu,
    SetComplete,
    StaleResponse,
    Target,
    WithListRefused,
)
from dlmsd.protocol.hdlc_frame import NEED_DATA
from dlmsd.protocol.link import (
    ApduReceived,
    Connected,
    Disconnected,
    HdlcLink,
    LinkEvent,
    WrapperLink,
)
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.profile import ProfileRow, Rows, clock_column, instant, rows_from_buffer
from dlmsd.protocol.security import MAX_COUNTER
from dlmsd.protocol.selective import (
    CaptureObject,
    EntryDescriptor,
    RangeDescriptor,
    parse_capture_objects,
    parse_capture_period,
)
from dlmsd.protocol.units import unit_symbol
from dlmsd.protocol.values import (
    Value,
    parse_scaler_unit,
    render,
    scale,
    scaler_unit_attribute,
)
from dlmsd.protocol.xdlms import DataAccessResult, GetDataResult, SelectiveAccessDescriptor

__all__ = [
    "MAX_NOISE_OCTETS",
    "RELEASE_TIMEOUT_S",
    "Act",
    "AttributeRequest",
    "Fetch",
    "Job",
    "JobContext",
    "MeterCache",
    "MeterIdentity",
    "MeterQuirks",
    "MeterReader",
    "ProfileLayout",
    "ProfileResult",
    "ReadAttributes",
    "ReadProfile",
    "ReadResult",
    "ReaderSettings",
    "ReaderState",
    "Set",
    "counter_from",
]

#: Stale answers noted per exchange; more are counted, and named in a timeout.
STALE_NOTES = 3
# Release on the way out gets one short try: many meters never answer an RLRQ.
RELEASE_TIMEOUT_S = 2.0
#: Octets of noise (no part of any frame) that end an attempt before its timeout: a
#: flooding meter does not hold the reader for the whole timeout (64 KiB is more than
#: a minute of a 9600 baud line; no answer is due after that much noise).
MAX_NOISE_OCTETS = 1 << 16
#: The invocation counter object is a Data object (Blue Book class 1), value attribute 2.
DATA_CLASS = 1

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
Link = HdlcLink | WrapperLink


# ------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class AttributeRequest:
    """One attribute to read for one signal (``key``: the signal alias)."""

    key: str
    obis: Obis
    attribute: int
    class_id: int | None
    short_name: int = 0  # SN referencing: the attribute's short name, 0 = resolve


@dataclass(frozen=True)
class ReadResult:
    """The outcome of one AttributeRequest: a value, or an error of that attribute."""

    key: str
    value: Value = None
    raw: Any = None
    unit: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Fetch:
    """Operation: read these attributes; the job gets one result per target, in order
    (a Data value or a DataAccessResult).  With ``selection``, the one target is read
    with that selective access (LN GET) or parameterized access (SN READ); a meter
    that refuses it with an ExceptionResponse or a confirmed-service-error gives the
    job ``DataAccessResult.OTHER_REASON`` (the reason is noted:
    ``selective_access_refused``), the association goes on."""

    targets: tuple[Target, ...]
    selection: SelectiveAccessDescriptor | None = None


@dataclass(frozen=True)
class Set:
    """Operation: write ``value`` to ``target`` (LN SET, in blocks when it does not fit
    in the meter's max PDU; SN WRITE); the job gets the meter's DataAccessResult."""

    target: Target
    value: Data


@dataclass(frozen=True)
class Act:
    """Operation: invoke ``method`` (LN ACTION; SN WRITE of the method's short name)
    with ``parameter``; the job gets the :class:`~dlmsd.protocol.client.ActionComplete`."""

    method: MethodTarget
    parameter: Data | None = None


Operation = Fetch | Set | Act
FetchResults = list[GetDataResult]
JobRun = Generator[Fetch, FetchResults, T]


ScalerKey = tuple[Obis, int]
Scaler = tuple[int, int] | str  # (scaler, unit), or why there is none


class JobContext(Protocol):
    """What a job sees of the reader: the client of this association and the meter's
    caches (see :class:`MeterCache`)."""

    @property
    def client(self) -> ClientBase: ...

    @property
    def scalers(self) -> Mapping[ScalerKey, Scaler]: ...

    def remember_scaler(self, key: ScalerKey, value: Scaler) -> None: ...

    def directory(self) -> JobRun[Directory]: ...

    def exchange_times(self) -> tuple[float, float]:
        """The last operation's times on the reader's clock: when its request went out
        (its last attempt's) and when the answer that ended it came."""
        ...

    @property
    def quirks(self) -> MeterQuirks: ...

    @property
    def profile_layouts(self) -> dict[Obis, ProfileLayout]:
        """The capture objects and capture period of the profiles read in this
        association (read once per association)."""
        ...

    def note(self, name: str, level: str = "debug", **fields: object) -> None:
        """A log note from the job."""
        ...

    def suspect(self, reason: str, *, directory: bool, scalers: Iterable[ScalerKey]) -> bool:
        """A read error suggests that the cache is stale: drop the object list (if
        ``directory``) and these scaler_units, where they were carried over from an
        earlier association; True if anything was dropped (then read again)."""
        ...


class Job(Protocol[T_co]):
    def run(self, context: JobContext) -> Generator[Operation, Any, T_co]: ...


#: What a meter answers for an address it no longer has (a stale object list).
_STALE_ADDRESS = frozenset({DataAccessResult.OBJECT_UNDEFINED,
                            DataAccessResult.OBJECT_UNAVAILABLE,
                            DataAccessResult.OBJECT_CLASS_INCONSISTENT})


@dataclass(frozen=True)
class ReadAttributes:
    """Read attributes for signals: registers scaled by their scaler_unit (read once
    per meter, see :class:`MeterCache`), everything else rendered as it is.  A failure
    of one attribute is an error in its result; a failure of the exchange raises."""

    requests: tuple[AttributeRequest, ...]

    def run(self, context: JobContext) -> JobRun[list[ReadResult]]:
        results, stale = yield from self._read(context, self.requests)
        if stale:
            suspects = tuple(r for r in self.requests if r.key in stale)
            if context.suspect(
                    "; ".join(f"{r.key}: {stale[r.key][0]}" for r in suspects),
                    directory=any(address for _why, address, _su in stale.values()),
                    scalers=[su for _why, _address, su in stale.values() if su is not None]):
                again, _ = yield from self._read(context, suspects)
                results.update(again)
        return [results[r.key] for r in self.requests]

    @staticmethod
    def _read(context: JobContext, requests: tuple[AttributeRequest, ...],
              ) -> JobRun[tuple[dict[str, ReadResult],
                                dict[str, tuple[str, bool, ScalerKey | None]]]]:
        """The results, and the failures that may come of a stale cache: key -> (what
        the meter said, whether the address came from the object list, the signal's
        scaler_unit)."""
        client = context.client
        directory: Directory = {}
        if any(client.needs_object_list(r.class_id, r.short_name) for r in requests):
            directory = yield from context.directory()
        results: dict[str, ReadResult] = {}
        # key -> (class id, what to request, the scaler_unit attribute that scales it)
        targets: dict[str, tuple[int, Target, int | None]] = {}
        for req in requests:
            outcome = client.target(req.obis, req.attribute, req.class_id, req.short_name,
                                    directory)
            if isinstance(outcome, str):
                results[req.key] = ReadResult(req.key, error=outcome)
            else:
                class_id, target = outcome
                targets[req.key] = (class_id, target,
                                    scaler_unit_attribute(class_id, req.attribute))
        todo = [r for r in requests if r.key in targets]
        # scaler_unit of every register attribute not known yet (once per meter)
        wanted: dict[ScalerKey, Target] = {}
        scalers = context.scalers
        for req in todo:
            _class_id, target, su = targets[req.key]
            if su is not None and (req.obis, su) not in scalers:
                wanted.setdefault((req.obis, su), client.sibling(target, req.attribute, su))
        if wanted:
            values = yield Fetch(tuple(wanted.values()))
            for key, value in zip(wanted, values, strict=True):
                context.remember_scaler(key, _scaler_of(value))
        values = (yield Fetch(tuple(targets[r.key][1] for r in todo))) if todo else []
        stale: dict[str, tuple[str, bool, ScalerKey | None]] = {}
        for req, value in zip(todo, values, strict=True):
            class_id, _target, su = targets[req.key]
            scaler = (req.obis, su) if su is not None else None
            result = results[req.key] = _convert(req, class_id, scaler, value, scalers)
            if isinstance(value, DataAccessResult):
                if value in _STALE_ADDRESS and client.needs_object_list(req.class_id,
                                                                        req.short_name):
                    stale[req.key] = (value.describe(), True, scaler)
            elif (result.error is not None and scaler is not None
                  and not isinstance(context.scalers.get(scaler), str)):
                stale[req.key] = (result.error, False, scaler)  # the value did not scale
        return results, stale


def _scaler_of(value: GetDataResult) -> tuple[int, int] | str:
    if isinstance(value, DataAccessResult):
        return f"scaler_unit not readable: {value.describe()}"
    try:
        return parse_scaler_unit(value)
    except DecodeError as exc:
        return str(exc)


def _convert(req: AttributeRequest, class_id: int, scaler_key: ScalerKey | None,
             value: GetDataResult, scalers: Mapping[ScalerKey, Scaler]) -> ReadResult:
    """``scaler_key``: the scaler_unit that scales the attribute (None: not scaled)."""
    if isinstance(value, DataAccessResult):
        return ReadResult(req.key, error=f"{req.obis}:{req.attribute}: {value.describe()}")
    if scaler_key is None:
        return ReadResult(req.key, value=render(value, class_id, req.attribute),
                          raw=_raw(value))
    scaler_unit = scalers.get(scaler_key)
    if isinstance(scaler_unit, str) or scaler_unit is None:
        return ReadResult(req.key, raw=_raw(value), error=scaler_unit or "scaler_unit missing")
    scaler, unit = scaler_unit
    try:
        scaled = scale(value, scaler)
    except DecodeError as exc:
        return ReadResult(req.key, raw=_raw(value), error=str(exc))
    return ReadResult(req.key, value=scaled, raw=_raw(value), unit=unit_symbol(unit))


def _raw(value: Data) -> Any:
    if value.type in (DataType.ARRAY, DataType.STRUCTURE):
        return None
    raw = value.value
    return raw.hex() if isinstance(raw, bytes) else raw if isinstance(
        raw, int | float | str | bool) else str(raw)


# ------------------------------------------------------------------- profiles

#: Profile Generic (Blue Book 4.3.6): class 7, its buffer (2), capture_objects (3),
#: capture_period (4) and entries_in_use (7).
PROFILE_CLASS = 7
BUFFER, CAPTURE_OBJECTS, CAPTURE_PERIOD, ENTRIES_IN_USE = 2, 3, 4, 7
#: Entries in the first window of a read by entry when the capture period does not
#: tell how many are new (an event log); a window that does not reach back to the
#: last row read grows fourfold, at most ENTRY_WINDOWS times per read.
ENTRY_WINDOW = 16
ENTRY_WINDOWS = 8
#: How a profile's buffer is read, in the order tried (``access`` of the profile).
PROFILE_ACCESS: Mapping[str, tuple[str, ...]] = {
    "range": ("range", "entry", "all"),
    "entry": ("entry", "all"),
    "all": ("all",),
}


@dataclass(frozen=True)
class ProfileLayout:
    """What a profile's rows are: its capture objects and capture period (seconds)."""

    columns: tuple[CaptureObject, ...]
    capture_period: int


@dataclass(frozen=True)
class ProfileResult:
    """The rows of one profile read (oldest first), or why there are none."""

    key: str
    rows: list[ProfileRow] = field(default_factory=list)
    method: str = ""  # range | range without deviation | entry | all
    capture_period: int = 0
    unplaced: int = 0  # entries whose time could not be known (not in rows)
    error: str | None = None


class _Unreadable(Exception):
    """The profile cannot be read in this association (its result's error)."""


@dataclass(frozen=True)
class ReadProfile:
    """Read the rows of a profile (class 7) captured after ``since`` (the time of the
    last row read, excluded), or, without ``since``, those of the last ``backfill``.

    Once per association: capture_objects and capture_period (:class:`ProfileLayout`);
    once per meter (the :class:`MeterCache`): the scaler_unit of every register-like
    column.  Then the meter's clock (the clock column's object: the range ends at the
    meter's own "now") and the buffer, by ``access``:

    * ``range``: selector 1 restricting on the clock column (wherever it is among the
      capture objects), from ``since`` (or now - backfill) to now.  A meter that
      refuses a range whose dates carry a deviation is asked again with the deviation
      not specified (the meter's local time); one that refuses that too, or answers
      an empty range where its last entry shows rows, is read by entry.  An empty
      answer is otherwise no error.
    * ``entry``: selector 2 over the last entries (``entries_in_use``, attribute 7), a
      window sized from the capture period and grown until it reaches back to
      ``since``; a meter that refuses it is read whole.
    * ``all``: the whole buffer, without selective access.

    What the meter refused is kept in :class:`MeterQuirks` (per profile), so the next
    read goes straight to what works.  Rows at or before ``since`` (or before
    now - backfill) are dropped: the range bounds are inclusive and entry windows
    overlap, and no row is given twice.  A failure of the profile (refused, not
    decodable) is the result's ``error``; a failure of the exchange raises.
    """

    key: str
    obis: Obis
    now: datetime  # the gateway's time (aware), used if the meter's clock is unreadable
    since: DateTime | None = None
    backfill: timedelta = timedelta(hours=24)
    access: str = "range"
    columns: frozenset[str] | None = None  # column keys to keep (None: all)
    short_name: int = 0  # SN: the buffer's short name (0: from the object list)

    def run(self, context: JobContext) -> JobRun[ProfileResult]:
        try:
            return (yield from self._run(context))
        except _Unreadable as exc:
            return ProfileResult(self.key, error=str(exc))

    def _run(self, context: JobContext) -> JobRun[ProfileResult]:
        client = context.client
        directory: Directory = {}
        if client.needs_object_list(PROFILE_CLASS, self.short_name):
            directory = yield from context.directory()
        outcome = client.target(self.obis, BUFFER, PROFILE_CLASS, self.short_name, directory)
        if isinstance(outcome, str):
            raise _Unreadable(outcome)
        buffer = outcome[1]
        layout = yield from self._layout(context, buffer)
        columns = layout.columns
        clock = clock_column(columns)
        if clock is None:
            raise _Unreadable(f"profile {self.obis} has no clock column (class 8 attribute 2) "
                              f"among its capture objects {[str(c) for c in columns]}")
        if not directory and any(client.needs_object_list(c.class_id, 0) for c in columns):
            directory = yield from context.directory()
        scalers = yield from self._scalers(context, columns, directory)
        until = yield from self._meter_now(context, columns[clock], directory)
        start = self.since if self.since is not None else _shifted(until, -self.backfill)
        for method in PROFILE_ACCESS[self.access]:
            if method == "range" and self.obis in context.quirks.range_refused:
                continue
            if method == "entry" and self.obis in context.quirks.entry_refused:
                continue
            if method == "range":
                found = yield from self._by_range(context, buffer, layout, scalers, start, until)
            elif method == "entry":
                found = yield from self._by_entry(context, buffer, layout, scalers, start, until)
            else:
                found = yield from self._whole(context, buffer, layout, scalers)
            if found is not None:
                rows, how = found
                kept = sorted((r for r in rows.rows if self._wanted(r, start)),
                              key=lambda r: r.instant)
                return ProfileResult(self.key, kept, how, layout.capture_period,
                                     rows.unplaced)
        raise _Unreadable(f"profile {self.obis}: the meter refused every access "
                          f"({', '.join(PROFILE_ACCESS[self.access])})")

    def _wanted(self, row: ProfileRow, start: DateTime) -> bool:
        bound = instant(start)
        if bound is None:
            return True
        return row.instant > bound if self.since is not None else row.instant >= bound

    def _layout(self, context: JobContext, buffer: Target) -> JobRun[ProfileLayout]:
        layout = context.profile_layouts.get(self.obis)
        if layout is not None:
            return layout
        client = context.client
        objects, period = yield Fetch((client.sibling(buffer, BUFFER, CAPTURE_OBJECTS),
                                       client.sibling(buffer, BUFFER, CAPTURE_PERIOD)))
        if isinstance(objects, DataAccessResult):
            raise _Unreadable(f"profile {self.obis}: capture_objects: {objects.describe()}")
        try:
            columns = parse_capture_objects(objects)
            seconds = 0 if isinstance(period, DataAccessResult) else parse_capture_period(
                period)
        except DecodeError as exc:
            raise _Unreadable(f"profile {self.obis}: {exc}") from None
        layout = context.profile_layouts[self.obis] = ProfileLayout(columns, seconds)
        context.note("profile_layout", profile=self.key, columns=len(columns),
                     capture_period_s=seconds)
        return layout

    def _scalers(self, context: JobContext, columns: tuple[CaptureObject, ...],
                 directory: Directory) -> JobRun[dict[str, Scaler]]:
        client = context.client
        wanted: dict[ScalerKey, Target] = {}
        keys: dict[str, ScalerKey] = {}
        for column in columns:
            su = (scaler_unit_attribute(column.class_id, column.attribute_index)
                  if column.data_index == 0 else None)
            if su is None:
                continue
            key = keys[column.key] = (column.logical_name, su)
            if key in context.scalers or key in wanted:
                continue
            outcome = client.target(column.logical_name, su, column.class_id, 0, directory)
            if isinstance(outcome, str):
                context.remember_scaler(key, outcome)
            else:
                wanted[key] = outcome[1]
        if wanted:
            values = yield Fetch(tuple(wanted.values()))
            for key, value in zip(wanted, values, strict=True):
                context.remember_scaler(key, _scaler_of(value))
        return {name: context.scalers.get(key, "scaler_unit missing")
                for name, key in keys.items()}

    def _meter_now(self, context: JobContext, clock: CaptureObject,
                   directory: Directory) -> JobRun[DateTime]:
        """The meter's time (its clock's attribute 2); the gateway's if unreadable."""
        client = context.client
        outcome = client.target(clock.logical_name, 2, clock.class_id, 0, directory)
        why = outcome if isinstance(outcome, str) else ""
        if not isinstance(outcome, str):
            value = (yield Fetch((outcome[1],)))[0]
            if isinstance(value, DataAccessResult):
                why = value.describe()
            else:
                try:
                    stamp = value.as_date_time()
                except DecodeError as exc:
                    stamp, why = None, str(exc)
                if stamp is not None and instant(stamp) is not None:
                    return stamp
                why = why or f"not a valid time: {stamp}"
        context.note("profile_clock_unreadable", "info", profile=self.key, reason=why,
                     using="the gateway's time (UTC)")
        return DateTime.from_datetime(self.now.astimezone(UTC))

    def _rows(self, value: Data, layout: ProfileLayout, scalers: Mapping[str, Scaler],
              ) -> Rows:
        try:
            return rows_from_buffer(value, layout.columns, scalers,
                                    capture_period=layout.capture_period,
                                    previous=self.since, keep=self.columns)
        except DecodeError as exc:
            raise _Unreadable(f"profile {self.obis}: {exc}") from None

    def _range(self, clock: CaptureObject, start: DateTime, until: DateTime,
               no_deviation: bool) -> SelectiveAccessDescriptor:
        if no_deviation:
            start, until = replace(start, deviation=None), replace(until, deviation=None)
        return RangeDescriptor.between(clock, start, until).to_selection()

    def _by_range(self, context: JobContext, buffer: Target, layout: ProfileLayout,
                  scalers: Mapping[str, Scaler], start: DateTime, until: DateTime,
                  ) -> JobRun[tuple[Rows, str] | None]:
        quirks = context.quirks
        clock = layout.columns[clock_column(layout.columns) or 0]
        plain = self.obis in quirks.range_without_deviation
        value = (yield Fetch((buffer,), self._range(clock, start, until, plain)))[0]
        if isinstance(value, DataAccessResult) and not plain and (
                start.deviation is not None or until.deviation is not None):
            context.note("profile_range_refused", "info", profile=self.key,
                         answer=value.describe(), retry="dates without deviation")
            value = (yield Fetch((buffer,), self._range(clock, start, until, True)))[0]
            if not isinstance(value, DataAccessResult):
                plain = True
                quirks.range_without_deviation.add(self.obis)
                context.note("profile_range_without_deviation", "warning", profile=self.key,
                             detail="the meter refuses dates with a deviation; they are "
                                    "sent as its local time from now on")
        if isinstance(value, DataAccessResult):
            quirks.range_refused.add(self.obis)
            context.note("profile_range_refused", "warning", profile=self.key,
                         answer=value.describe(), fallback="by entry from now on")
            return None
        rows = self._rows(value, layout, scalers)
        period = layout.capture_period
        first, last = instant(start), instant(until)
        if (not rows.rows and period and first is not None and last is not None
                and (last - first).total_seconds() >= 2 * period):
            # Nothing, where the capture period says there should be rows: some meters
            # answer every range so. The last entry tells.
            latest = yield from self._last_entry(context, buffer, layout, scalers)
            if latest is not None and self._wanted(latest, start):
                quirks.range_refused.add(self.obis)
                context.note("profile_range_empty", "warning", profile=self.key,
                             last_entry=latest.ts, fallback="by entry from now on")
                return None
        return rows, "range without deviation" if plain else "range"

    def _entries_in_use(self, context: JobContext, buffer: Target) -> JobRun[int | None]:
        value = (yield Fetch((context.client.sibling(buffer, BUFFER, ENTRIES_IN_USE),)))[0]
        if isinstance(value, DataAccessResult):
            context.note("profile_entries_unreadable", "info", profile=self.key,
                         answer=value.describe())
            return None
        try:
            return value.as_int()
        except DecodeError as exc:
            context.note("profile_entries_unreadable", "info", profile=self.key,
                         answer=str(exc))
            return None

    def _last_entry(self, context: JobContext, buffer: Target, layout: ProfileLayout,
                    scalers: Mapping[str, Scaler]) -> JobRun[ProfileRow | None]:
        if self.obis in context.quirks.entry_refused:
            return None
        count = yield from self._entries_in_use(context, buffer)
        if not count:
            return None
        value = (yield Fetch((buffer,), EntryDescriptor(count, count).to_selection()))[0]
        if isinstance(value, DataAccessResult):
            return None
        rows = self._rows(value, layout, scalers).rows
        return rows[-1] if rows else None

    def _by_entry(self, context: JobContext, buffer: Target, layout: ProfileLayout,
                  scalers: Mapping[str, Scaler], start: DateTime, until: DateTime,
                  ) -> JobRun[tuple[Rows, str] | None]:
        quirks = context.quirks
        count = yield from self._entries_in_use(context, buffer)
        if count is None:
            quirks.entry_refused.add(self.obis)
            context.note("profile_entry_refused", "warning", profile=self.key,
                         fallback="the whole buffer from now on")
            return None
        if count == 0:
            return Rows([]), "entry"
        period = layout.capture_period
        first, last = instant(start), instant(until)
        window = ENTRY_WINDOW
        if period and first is not None and last is not None:
            window = max(1, int((last - first).total_seconds()) // period + 2)
        rows = Rows([])
        for _ in range(ENTRY_WINDOWS):
            low = max(1, count - window + 1)
            value = (yield Fetch((buffer,), EntryDescriptor(low, count).to_selection()))[0]
            if isinstance(value, DataAccessResult):
                quirks.entry_refused.add(self.obis)
                context.note("profile_entry_refused", "warning", profile=self.key,
                             answer=value.describe(), fallback="the whole buffer from now on")
                return None
            rows = self._rows(value, layout, scalers)
            if low == 1 or (rows.rows and not self._wanted(rows.rows[0], start)):
                break
            window *= 4
        return rows, "entry"

    def _whole(self, context: JobContext, buffer: Target, layout: ProfileLayout,
               scalers: Mapping[str, Scaler]) -> JobRun[tuple[Rows, str] | None]:
        value = (yield Fetch((buffer,)))[0]
        if isinstance(value, DataAccessResult):
            raise _Unreadable(f"profile {self.obis}: buffer: {value.describe()}")
        return self._rows(value, layout, scalers), "all"


def _shifted(stamp: DateTime, delta: timedelta) -> DateTime:
    base = stamp.to_datetime()
    assert base is not None  # _meter_now gives a valid time
    return DateTime.from_datetime(base + delta, clock_status=stamp.clock_status)


def counter_from(result: ReadResult) -> int:
    """The invocation counter a read of the counter object gave (0..2**32-1), or an
    error naming what the meter answered instead."""
    if result.error is not None:
        raise DlmsdError(result.error)
    value = result.raw
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNTER:
        raise DlmsdError(f"the meter's value {value!r} is not an invocation counter "
                         "(an integer 0..2**32-1)")
    return value


# ------------------------------------------------------------------- reader


@dataclass
class MeterQuirks:
    """What is learnt about a meter and kept across its associations."""

    #: The meter refused a GET-with-list (or multi-variable READ): one per request.
    no_get_with_list: bool = False
    #: Profiles whose buffer the meter will not give by range (selector 1): refused,
    #: or answered with nothing where an entry shows there are rows.
    range_refused: set[Obis] = field(default_factory=set)
    #: Profiles read by range with the dates' deviation "not specified" (the meter
    #: refused a date with a deviation).
    range_without_deviation: set[Obis] = field(default_factory=set)
    #: Profiles whose buffer the meter will not give by entry (selector 2).
    entry_refused: set[Obis] = field(default_factory=set)


@dataclass(frozen=True)
class MeterIdentity:
    """What tells a meter from another, as cheaply as an association shows it: the
    device's connection and what the AARE and InitiateResponse tell (see the module
    text).  No secret: none of it is a key or a password."""

    connection: str
    system_title: bytes | None
    context: str  # the application context's short name (LN/SN, ciphered or not)
    conformance: int
    max_pdu: int
    object_list: str  # where the object list is (SN: the vaa-name's short name)

    def differences(self, other: MeterIdentity) -> list[str]:
        """The names of the fields that differ (for a log line)."""
        return [name for name in ("connection", "system_title", "context", "conformance",
                                  "max_pdu", "object_list")
                if getattr(self, name) != getattr(other, name)]


@dataclass
class MeterCache:
    """The object list and the scaler_units of one meter, kept across its associations
    by the caller (like :class:`MeterQuirks`), valid for ``identity``."""

    identity: MeterIdentity | None = None
    directory: Directory | None = None
    scalers: dict[ScalerKey, Scaler] = field(default_factory=dict)

    def clear(self) -> None:
        self.directory = None
        self.scalers.clear()


@dataclass(frozen=True)
class ReaderSettings:
    timeout: float  # seconds for each answer
    retries: int  # resends after a timeout
    max_list_size: int  # attributes per request
    port_name: str  # for messages
    challenge_size: int = 16  # HLS CtoS octets
    #: how the device reaches its meter (part of the MeterIdentity; no secret)
    connection: str = ""


class ReaderState(enum.Enum):
    IDLE = "idle"
    OPENING_LINE = "IEC 62056-21 opening"
    CONNECTING = "connecting the link"
    ASSOCIATING = "associating"
    READY = "associated"
    BUSY = "running a job"
    RELEASING = "releasing"
    DISCONNECTING = "disconnecting"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass
class _Wait:
    """An exchange under way: what answers it, its one deadline and attempts."""

    what: str
    accept: type | tuple[type, ...]
    then: Callable[[Any, float], None]
    attempts: int
    timeout: float
    deadline: float
    attempt: int = 1
    on_timeout: Callable[[float], None] | None = None  # None: raise DlmsTimeout
    stale: int = 0  # answers set aside as stale
    heard: int | None = None  # HDLC: the meter's frames heard before the exchange began
    replayed: int = 0  # the link's replayed frames before the exchange began
    noise: int = 0  # the link's octets of noise before the exchange began
    attempt_noise: int = 0  # ... before the attempt under way began
    flooded: bool = False  # an attempt ended on MAX_NOISE_OCTETS, before its deadline
    once: bool = False  # not sent again on this connection (SN over the wrapper)


class MeterReader:
    """One meter's session, link to release; see the module text.

    ``link`` and ``client`` are fresh (link down, client idle); ``opening`` is the mode
    E opening to run first on a serial line.  ``quirks`` outlive the reader.
    """

    def __init__(self, link: Link, client: ClientBase, settings: ReaderSettings, *,
                 quirks: MeterQuirks | None = None, cache: MeterCache | None = None,
                 opening: iec.ModeEOpening | None = None) -> None:
        self.link = link
        self._client = client
        self.settings = settings
        self.quirks = quirks if quirks is not None else MeterQuirks()
        self.cache = cache if cache is not None else MeterCache()
        self.opening = opening
        # Frame traces queue up in order with the rest.  The link holds the reader weakly:
        # a bound method would make a cycle (reader -> link -> reader) that keeps every
        # ended session's reader, link buffers and client until a full collection.
        reader = weakref.ref(self)

        def trace(direction: str, data: bytes, summary: Summary) -> None:
            if (alive := reader()) is not None:
                alive._trace_frame(direction, data, summary)

        link.trace = trace
        self.state = ReaderState.IDLE
        self.round_trips = 0
        self._actions: list[Action] = []
        self._wait: _Wait | None = None
        self._deadline: float | None = None  # mode E steps
        self._reacting = False  # mode E: the reaction time before the ACK
        self._challenge = b""
        self._link_up = False
        #: The accepted association (AARE, conformance, max PDU), once READY.
        self.associated: Associated | None = None
        # per association: what of the cache was read in it (never suspected stale)
        self._fresh_directory = False
        self._fresh_scalers: set[ScalerKey] = set()
        self._layouts: dict[Obis, ProfileLayout] = {}
        # the job under way
        self._job: Generator[Operation, Any, Any] | None = None
        self._op_sent = self._op_answered = 0.0  # the operation under way, the last one
        self._result: Any = None
        self._fetch: Fetch | None = None
        self._fetched: FetchResults = []
        self._chunk: tuple[Target, ...] = ()
        self._size = 1
        # SN has no invoke-id: on the wrapper a resent request could be answered twice
        # and the late answer taken for the next one, so it is not resent there (a
        # timeout ends the session with AnswerLost: the poller associates again on a
        # new connection; HDLC sequence numbers prevent this).
        self._resend = client.HAS_INVOKE_ID or isinstance(link, HdlcLink)

    # -- JobContext ----------------------------------------------------------------

    @property
    def client(self) -> ClientBase:
        return self._client

    @property
    def scalers(self) -> Mapping[ScalerKey, Scaler]:
        return self.cache.scalers

    def remember_scaler(self, key: ScalerKey, value: Scaler) -> None:
        self.cache.scalers[key] = value
        self._fresh_scalers.add(key)

    @property
    def profile_layouts(self) -> dict[Obis, ProfileLayout]:
        return self._layouts

    def note(self, name: str, level: str = "debug", **fields: object) -> None:
        self._note(name, level, **fields)

    def directory(self) -> JobRun[Directory]:
        """The meter's object list (read once per meter, see :class:`MeterCache`)."""
        directory = self.cache.directory
        if directory is None:
            client = self._client
            target = client.object_list_target()
            value = (yield Fetch((target,)))[0]
            if isinstance(value, DataAccessResult):
                raise DataAccessError(f"cannot read the object list ({client.name_of(target)}):"
                                      f" {value.describe()}; {client.OBJECT_LIST_HINT}",
                                      int(value))
            directory = self.cache.directory = client.parse_object_list(value)
            self._fresh_directory = True
            self._note("object_list", objects=len(directory))
        return directory

    def exchange_times(self) -> tuple[float, float]:
        return self._op_sent, self._op_answered

    def suspect(self, reason: str, *, directory: bool, scalers: Iterable[ScalerKey]) -> bool:
        cache = self.cache
        dropped: list[str] = []
        if directory and not self._fresh_directory and cache.directory is not None:
            cache.directory = None
            dropped.append("the object list")
        carried = [key for key in scalers
                   if key not in self._fresh_scalers and key in cache.scalers]
        for key in carried:
            del cache.scalers[key]
        if carried:
            dropped.append(f"{len(carried)} scaler_unit(s)")
        if dropped:
            self._note("meter_cache_stale", "info", reason=reason, dropped=", ".join(dropped),
                       action="reading again once")
        return bool(dropped)

    # -- the I/O layer's calls -----------------------------------------------------------

    def actions(self) -> list[Action]:
        """What to do now, in order (taken: a second call returns only newer ones)."""
        actions, self._actions = self._actions, []
        return actions

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` is due (the caller's clock), or None."""
        if self._wait is not None:
            return self._wait.deadline
        return self._deadline

    @property
    def pending_octets(self) -> int:
        """Octets of an answer under way held by the link and the block reassembler:
        what the next :meth:`receive_data` may have to decode at once (cheap)."""
        return self.link.pending_octets + self._client.pending_octets

    @property
    def resends(self) -> int:
        """Frames the link sent again so far (after a timeout; for HDLC also what the
        meter's RR asked for again): the metrics' resends."""
        return self.link.resends

    @property
    def result(self) -> Any:
        """The return value of the last job that finished."""
        return self._result

    def open(self, now: float, challenge: bytes) -> None:
        """Open the line (mode E), the link and the association; ``challenge`` is
        ``settings.challenge_size`` random octets (HLS CtoS), drawn by the caller."""
        self._require(ReaderState.IDLE, "open")
        self._challenge = challenge
        opening = self.opening
        if opening is None:
            self._guarded(self._connect, now)
            return
        self.state = ReaderState.OPENING_LINE
        self._actions.append(SetLine(iec.OPENING_LINE))
        request = opening.start()
        self._send_raw(request, "IEC 62056-21 request " + repr(request))
        self._deadline = now + opening.timeout()

    def submit(self, job: Job[Any], now: float) -> None:
        """Start ``job``; the reader is BUSY until it ends (then READY, with
        :attr:`result`) or fails (raising)."""
        self._require(ReaderState.READY, "run a job")
        self._job = job.run(self)
        self.state = ReaderState.BUSY
        self._guarded(self._advance, now, None)

    def close(self, now: float) -> None:
        """Release the association (RLRQ) and the link (DISC), each with one short
        try; never raises.  CLOSED when done."""
        self._job = None
        if self.state in (ReaderState.CLOSED, ReaderState.RELEASING,
                          ReaderState.DISCONNECTING):
            return
        self._wait = self._deadline = None
        client = self._client
        client.cancel_request()
        self._note("closing", was=self.state.value)
        try:
            if client.state is ClientState.ASSOCIATED and self.link.idle:
                self.state = ReaderState.RELEASING
                self._request(client.release(), "RLRQ", now, self._on_release, attempts=1,
                              timeout=self._short_timeout,
                              on_timeout=lambda at: self._unanswered(at, "no answer to RLRQ"))
            else:
                self.state = ReaderState.DISCONNECTING
                self._disconnect(now)
        except DlmsdError as exc:
            self._unanswered(now, str(exc))

    def abandon(self) -> None:
        """The caller is done with the reader, whatever its state (its transport failed
        or is closed): forget the exchange under way, whose callbacks refer back to the
        reader (a cycle that would keep it until a full garbage collection)."""
        self._wait = self._deadline = None
        self._job = None

    def receive_data(self, data: bytes, now: float) -> None:
        """Octets from the line or socket."""
        if self.state is ReaderState.OPENING_LINE:
            self._guarded(self._opening_data, now, data)
        elif self.state not in (ReaderState.CLOSED, ReaderState.FAILED):
            self._guarded(self._link_data, now, data)

    def handle_timer(self, now: float) -> None:
        """The caller's clock reached :meth:`get_timer` (late calls are fine)."""
        self._guarded(self._timer, now)

    # -- the machinery -------------------------------------------------------------------

    @property
    def _short_timeout(self) -> float:
        return min(self.settings.timeout, RELEASE_TIMEOUT_S)

    def _require(self, state: ReaderState, what: str) -> None:
        if self.state is not state:
            raise DlmsdError(f"cannot {what} while {self.state.value}")

    def _note(self, name: str, level: str = "debug", **fields: object) -> None:
        self._actions.append(Note(name, fields, level))

    def _guarded(self, step: Callable[..., None], now: float, *args: Any) -> None:
        """Run ``step(*args, now)``; an error fails the reader (while closing, it moves
        the close on instead)."""
        try:
            step(*args, now)
        except DlmsdError as exc:
            if self.state in (ReaderState.RELEASING, ReaderState.DISCONNECTING):
                self._unanswered(now, str(exc))
                return
            self.state = ReaderState.FAILED
            self._wait = self._deadline = None
            self._job = None
            self._client.cancel_request()
            # what was about to be sent belongs to the exchange that failed
            self._actions = [a for a in self._actions if not isinstance(a, Send)]
            raise

    def _trace_frame(self, direction: str, data: bytes, summary: Summary) -> None:
        self._actions.append(Trace(direction, summary, data))

    def _send_raw(self, data: bytes, summary: str) -> None:
        self._trace_frame("tx", data, summary)
        self._actions.append(Send(data))

    def _send(self, data: bytes) -> None:
        if data:
            self._actions.append(Send(data))

    def _expect(self, frame: bytes, what: str, accept: type | tuple[type, ...],
                then: Callable[[Any, float], None], now: float, *, attempts: int | None = None,
                timeout: float | None = None,
                on_timeout: Callable[[float], None] | None = None) -> _Wait:
        """Send ``frame`` and wait for a link event of type ``accept``."""
        timeout = self.settings.timeout if timeout is None else timeout
        attempts = self.settings.retries + 1 if attempts is None else attempts
        link = self.link
        wait = self._wait = _Wait(what, accept, then, attempts, timeout, now + timeout,
                                  on_timeout=on_timeout, heard=link.frames_heard if isinstance(
                                      link, HdlcLink) and link.params is not None else None,
                                  replayed=link.replayed, noise=link.noise_octets,
                                  attempt_noise=link.noise_octets)
        self.round_trips += 1
        self._send(frame)
        return wait

    def _request(self, apdu: bytes, what: str, now: float,
                 then: Callable[[ClientEvent, float], None], *, repeatable: bool = True,
                 attempts: int | None = None,
                 timeout: float | None = None,
                 on_timeout: Callable[[float], None] | None = None) -> None:
        """Send one APDU; ``then`` gets the client's event for the answer."""
        self._apdu("tx", apdu)
        # Asked anew as a new frame, a ciphered request would repeat its invocation
        # counter (refused as a replay), and HLS pass 3 must not run twice.
        frame = self.link.send_apdu(apdu, repeatable=repeatable and not self._client.ciphered)
        # The exchange's _Wait, weakly: ``answered`` is the wait's ``then``, and a strong
        # reference back would make a cycle holding the whole reader (link buffers,
        # client) after the session until a full garbage collection.
        wait_ref: list[weakref.ref[_Wait]] = []

        def answered(event: ApduReceived, at: float) -> None:
            try:
                result = self._client.receive_apdu(event.apdu)
            finally:
                self._apdu("rx", event.apdu)
            for title, start in self._client.take_counter_starts():
                # a meter swapped or re-keyed is worth a notice; a first one is not
                self._note("invocation_counter_new_sequence",
                           "info" if start is CounterStart.FIRST else "notice",
                           system_title=_title(title), reason=start.value)
            if isinstance(result, StaleResponse):
                # Not the answer: the same exchange goes on, with its own deadline. A
                # meter that floods them gets a few lines, not one per answer.
                wait = wait_ref[0]()
                assert wait is not None  # _link_event holds the wait it calls
                wait.stale += 1
                if wait.stale <= STALE_NOTES:
                    self._note("stale_response", "info", invoke_id=result.invoke_id)
                elif wait.stale == STALE_NOTES + 1:
                    self._note("stale_responses_suppressed", "info", waiting_for=wait.what)
                self._wait = wait
                return
            then(result, at)

        once = attempts is None and not self._resend
        wait = self._expect(frame, what, ApduReceived, answered, now,
                            attempts=1 if once else attempts, timeout=timeout,
                            on_timeout=on_timeout)
        wait_ref.append(weakref.ref(wait))
        wait.once = once

    def _apdu(self, direction: str, apdu: bytes) -> None:
        # described only if traced (--dlms): the client's own decode is the one decode
        self._actions.append(Trace(direction, self._client.deferred_summary(apdu, direction)))

    def _link_data(self, data: bytes, now: float) -> None:
        # The whole chunk first, so that what the link answers by itself (RR for a
        # segment, our next segment) belongs to the exchange it came in, not the next.
        link = self.link
        link.receive_data(data)
        events: list[LinkEvent] = []
        while (event := link.next_event()) is not NEED_DATA:
            events.append(event)
        pending = link.data_to_send()
        if pending:  # progress: the exchange gets its time again
            self._send(pending)
            if self._wait is not None:
                self.round_trips += 1
                self._wait.deadline = now + self._wait.timeout
        wait = self._wait
        down = next((e for e in events if isinstance(e, Disconnected)), None)
        if down is not None and self.state is not ReaderState.CLOSED and not (
                wait is not None and isinstance(down, wait.accept)):
            # the link is gone: whatever came with it cannot be answered
            what = wait.what if wait is not None else "nothing"
            raise TransportError(f"HDLC disconnected ({down.reason}) while waiting for {what}")
        for event in events:
            self._link_event(event, now)
        self._check_flood(now)

    def _link_event(self, event: LinkEvent, now: float) -> None:
        wait = self._wait
        if self.state is ReaderState.CLOSED:
            return  # e.g. a second DM after the one that closed the link
        if wait is not None and isinstance(event, wait.accept):
            self._wait = None
            wait.then(event, now)
        elif isinstance(event, Disconnected):
            what = wait.what if wait is not None else "nothing"
            raise TransportError(f"HDLC disconnected ({event.reason}) while waiting for {what}")
        else:
            self._note("unexpected_link_event", link_event=_event_name(event))

    def _timer(self, now: float) -> None:
        if self.state is ReaderState.OPENING_LINE:
            assert self.opening is not None
            if self._deadline is None or now < self._deadline:
                return
            if not self._reacting:
                raise self.opening.timeout_error()
            self._reacting = False
            ack = self.opening.acknowledge()
            self._send_raw(ack, "IEC 62056-21 option select " + repr(ack))
            self._deadline = now + self.opening.timeout()
            self._opening_events(now)
            return
        wait = self._wait
        if wait is None or now < wait.deadline:
            return
        if wait.attempt < wait.attempts:
            wait.attempt += 1
            self._note("retry", "warning", waiting_for=wait.what, attempt=wait.attempt,
                       of=wait.attempts, timeout_ms=round(wait.timeout * 1000))
            self._op_sent = now  # an answer now most likely answers this attempt
            self._send(self.link.retry())
            wait.deadline = now + wait.timeout
            wait.attempt_noise = self.link.noise_octets
            return
        self._wait = None
        if wait.on_timeout is not None:
            wait.on_timeout(now)
            return
        message = (f"no answer to {wait.what} from {self.settings.port_name} "
                   f"({wait.attempts} attempt{'s' if wait.attempts > 1 else ''} of "
                   f"{round(wait.timeout * 1000)} ms{self._set_aside(wait)})")
        link = self.link
        if wait.once:
            # SN over the wrapper: a request sent again here could be answered twice
            # and the late answer taken for the next one; a new connection cannot
            # get it (the poller associates again at once).
            raise AnswerLost(message + "; SN over the wrapper is not sent again on the "
                            "same connection")
        if isinstance(link, HdlcLink) and wait.heard is not None and (
                link.frames_heard > wait.heard):
            # The meter is there but its answer never came whole (it moved past a
            # segment we lost): the link is out of step, a new one is not.
            raise AnswerLost(message + "; the meter answered out of step")
        raise DlmsTimeout(message)

    def _set_aside(self, wait: _Wait) -> str:
        """What the exchange set aside while it waited in vain, for its error (the one
        place that says it, for both links): answers the client took for stale (an old
        invoke-id, a repeated block), I frames the HDLC link had already (replays),
        and octets that were no frame at all."""
        link = self.link
        parts = [f"{wait.stale} stale answers"] if wait.stale else []
        if (replayed := link.replayed - wait.replayed) > 0:
            parts.append(f"{replayed} replayed frames")
        if (noise := link.noise_octets - wait.noise) > 0:
            parts.append(f"{noise} octets of noise" + (
                f" (an attempt ends after {MAX_NOISE_OCTETS})" if wait.flooded else ""))
        return f", {' and '.join(parts)} set aside" if parts else ""

    def _check_flood(self, now: float) -> None:
        """End the attempt under way at once when the line brought MAX_NOISE_OCTETS of
        noise since it began: bounded work for a flood, whatever the timeout."""
        wait = self._wait
        if wait is not None and self.link.noise_octets - wait.attempt_noise >= MAX_NOISE_OCTETS:
            self._note("flooded", "info", waiting_for=wait.what, attempt=wait.attempt,
                       noise_octets=self.link.noise_octets - wait.attempt_noise)
            wait.flooded = True
            wait.deadline = now
            self._timer(now)

    # -- mode E ------------------------------------------------------------------------

    def _opening_data(self, data: bytes, now: float) -> None:
        opening = self.opening
        assert opening is not None
        self._trace_frame("rx", data, f"IEC 62056-21 {opening.step}")
        opening.receive_data(data)
        if not self._reacting:
            self._deadline = now + opening.timeout()
            self._opening_events(now)

    def _opening_events(self, now: float) -> None:
        opening = self.opening
        assert opening is not None
        event = opening.next_event()
        if event is iec.NEED_DATA:
            return
        if isinstance(event, iec.Identified):
            self._note("iec_identified", "info", manufacturer=event.manufacturer,
                       identification=event.identification, baud_rate=event.baud_rate,
                       hdlc=event.hdlc_capable)
            if not event.hdlc_capable:
                self._note("iec_hdlc_not_announced", "warning",
                           enhanced="none" if event.enhanced is None else "\\" + event.enhanced,
                           detail="no '\\2' (binary mode HDLC) in the identification; "
                                  "selecting mode E anyway, as gurux's client does")
            self._reacting = True  # the meter may need this long before it listens
            self._deadline = now + event.min_reaction_time
            return
        self._actions.append(SetLine((event.baud_rate, event.bytesize, event.parity,
                                      event.stopbits)))
        self._note("iec_switched", "info", baud_rate=event.baud_rate)
        self._deadline = None
        if event.trailing:  # bytes of the next layer: not one is lost
            self.link.receive_data(event.trailing)
            while (item := self.link.next_event()) is not NEED_DATA:
                self._note("early_link_event", link_event=_event_name(item))
        self._connect(now)

    # -- link and association ------------------------------------------------------------

    def _connect(self, now: float) -> None:
        frame = self.link.opening()
        if frame is None:
            self._link_up = True
            self._associate(now)
            return
        self.state = ReaderState.CONNECTING
        self._expect(frame, "SNRM", (Connected, Disconnected), self._on_link, now)

    def _on_link(self, event: Connected | Disconnected, now: float) -> None:
        if isinstance(event, Disconnected):
            raise RemoteProtocolError("the meter refused the HDLC connection (DM)")
        self._link_up = True
        params = self.link.params
        if params is not None:
            self._note("hdlc_connected", max_info_tx=params.max_info_tx,
                       max_info_rx=params.max_info_rx)
        self._associate(now)

    def _associate(self, now: float) -> None:
        self.state = ReaderState.ASSOCIATING
        self._fresh_directory, self._fresh_scalers = False, set()
        self._layouts = {}
        self._request(self._client.associate(self._challenge), "AARQ", now,
                      self._on_association)

    def _on_association(self, event: ClientEvent, now: float) -> None:
        if isinstance(event, Authenticate):
            self._request(event.apdu, "reply_to_HLS_authentication", now,
                          self._on_association, repeatable=False)
            return
        if not isinstance(event, Associated):
            raise RemoteProtocolError(f"unexpected answer to the AARQ: {event}")
        self.state = ReaderState.READY
        self.associated = event
        self._note("associated", "info", conformance=event.conformance.describe(),
                   server_max_pdu=event.server_max_receive_pdu_size)
        self._check_cache(event)

    def _check_cache(self, event: Associated) -> None:
        """Keep the meter's cache if the association shows the same meter."""
        client, cache = self._client, self.cache
        identity = MeterIdentity(
            self.settings.connection, event.aare.responding_ap_title,
            event.aare.application_context_name.short, int(event.conformance),
            event.server_max_receive_pdu_size, client.name_of(client.object_list_target()))
        before = cache.identity
        if before != identity:
            if before is not None and (cache.directory is not None or cache.scalers):
                self._note("meter_changed", "info",
                           changed=", ".join(identity.differences(before)),
                           system_title=_title(identity.system_title),
                           action="object list and scaler_units read again")
            cache.clear()
            cache.identity = identity
            return
        # errors (an unreadable scaler_unit) are the last association's only
        for key in [k for k, v in cache.scalers.items() if isinstance(v, str)]:
            del cache.scalers[key]
        if cache.directory is not None or cache.scalers:
            self._note("meter_cache_kept", objects=len(cache.directory or ()),
                       scaler_units=len(cache.scalers))

    # -- jobs ----------------------------------------------------------------------------

    def _advance(self, value: Any, now: float) -> None:
        """Hand the job the last operation's results; start its next operation."""
        assert self._job is not None
        if value is not None:
            self._op_answered = now
        try:
            op = self._job.send(value) if value is not None else next(self._job)
        except StopIteration as done:
            self._job = None
            # the decoded answers go now, not at the next job: freeing a large one's
            # objects belongs to the call that decoded them (off the event loop)
            self._fetch, self._fetched = None, []
            self._result = done.value
            self.state = ReaderState.READY
            return
        self._op_sent = now
        if isinstance(op, Set | Act):
            self._fetch, self._fetched = None, []
            self._operate(op, now)
            return
        if not isinstance(op, Fetch):
            raise DlmsdError(f"a job yielded {op!r}, which is no operation")
        self._fetch, self._fetched = op, []
        self._size = 1 if self.quirks.no_get_with_list else self.settings.max_list_size
        self._next_chunk(now)

    def _operate(self, op: Set | Act, now: float) -> None:
        """One SET (its blocks follow as the meter acknowledges them) or one ACTION."""
        client = self._client
        if isinstance(op, Set):
            what = f"SET {client.name_of(op.target)}"
            apdu = client.set(op.target, op.value)
        else:
            name = (op.method.describe() if not isinstance(op.method, int)
                    else f"0x{op.method:04X}")
            what = f"ACTION {name}"
            apdu = client.action(op.method, op.parameter)

        def answered(event: ClientEvent, at: float) -> None:
            if isinstance(event, SendApdu) and isinstance(op, Set):
                self._request(event.apdu, f"{what} block {event.block_number}", at, answered)
            elif isinstance(event, SetComplete) and isinstance(op, Set):
                self._advance(event.result, at)
            elif isinstance(event, ActionComplete) and isinstance(op, Act):
                self._advance(event, at)
            else:
                raise RemoteProtocolError(f"unexpected answer to {what}: {event}")

        self._request(apdu, what, now, answered)

    def _next_chunk(self, now: float) -> None:
        fetch = self._fetch
        assert fetch is not None
        done = len(self._fetched)
        if done >= len(fetch.targets):
            self._advance(self._fetched, now)
            return
        if not self._client.supports_with_list or fetch.selection is not None:
            self._size = 1
        while True:
            self._chunk = fetch.targets[done:done + self._size]
            try:
                apdu = self._client.request(self._chunk, fetch.selection)
                break
            except RequestTooLarge as exc:
                # max_list_size attributes do not fit in the meter's max PDU: halve
                # the chunk for the rest of this operation (one attribute that does
                # not fit is an error)
                if len(self._chunk) == 1:
                    raise
                self._size = len(self._chunk) // 2
                self._note("list_size_reduced", size=self._size, reason=str(exc))
        self._fetch_request(apdu, now)

    def _fetch_request(self, apdu: bytes, now: float, block: int = 0) -> None:
        what = self._client.describe_request(self._chunk)
        self._request(apdu, f"{what} block {block}" if block else what, now, self._fetched_one)

    def _fetched_one(self, event: ClientEvent, now: float) -> None:
        if isinstance(event, SendApdu):
            self._fetch_request(event.apdu, now, event.block_number)
        elif isinstance(event, WithListRefused):
            self.quirks.no_get_with_list = True
            self._size = 1
            self._note("get_with_list_refused", "warning", reason=event.reason,
                       fallback="one attribute per request from now on")
            self._next_chunk(now)
        elif isinstance(event, GetComplete):
            self._fetched.extend(event.results)
            self._next_chunk(now)
        elif isinstance(event, SelectionRefused):
            self._note("selective_access_refused", "info",
                       request=self._client.describe_request(self._chunk), reason=event.reason)
            self._fetched.append(DataAccessResult.OTHER_REASON)
            self._next_chunk(now)
        else:
            raise RemoteProtocolError(f"unexpected answer to "
                                      f"{self._client.describe_request(self._chunk)}: {event}")

    # -- release -------------------------------------------------------------------------

    def _on_release(self, event: ClientEvent, now: float) -> None:
        if isinstance(event, Released):
            self._note("released")
            self._disconnect(now)
        else:
            self._unanswered(now, f"the meter answered the RLRQ with {event}")

    def _unanswered(self, now: float, error: str) -> None:
        """The RLRQ or the DISC went without its answer (or with a wrong one): after the
        RLRQ the link is still released; after the DISC there is nothing left to do."""
        self._wait = None
        if self.state is ReaderState.RELEASING:
            self._note("release_unanswered", "info", error=error)
            self.state = ReaderState.DISCONNECTING
            try:
                self._disconnect(now)
                return
            except DlmsdError as exc:  # a link that cannot even build DISC
                error = str(exc)
        self._note("disconnect_unanswered", "info", error=error)
        self._closed()

    def _disconnect(self, now: float) -> None:
        frame = self.link.closing() if self._link_up else None
        if frame is None:
            self._closed()
            return
        self.state = ReaderState.DISCONNECTING
        self._expect(frame, "DISC", Disconnected, lambda _event, _now: self._closed(), now,
                     attempts=1, timeout=self._short_timeout,
                     on_timeout=lambda at: self._unanswered(at, "no answer to DISC"))

    def _closed(self) -> None:
        self.state = ReaderState.CLOSED
        self._wait = self._deadline = None
        self._link_up = False
        self._client.abort()



def _title(title: bytes | None) -> str:
    return title.hex().upper() if title is not None else "none"


def _event_name(event: LinkEvent) -> str:
    """A link event for a log line: its kind, and an APDU's length (not its octets)."""
    if isinstance(event, ApduReceived):
        return f"ApduReceived({len(event.apdu)} octets)"
    return str(event)
