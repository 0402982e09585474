"""The simulated meter's COSEM object model (pure).

This module owns what ``dlms-sim`` serves: the model file (JSON, format in
``dlmsd/sim/README.md``) and its validation, the interface classes the simulator
implements with their attributes, methods and access rights, and the value of
every attribute at a given moment.  It does no network I/O and never reads the
clock: the caller passes ``now`` (and, for ``--live``, the meter's start time).
:func:`load_model` reads the model file; everything else works on values.  The file is
validated against the JSON Schema ``model_schema.json`` (problems worded by
:func:`dlmsd.config.schema_problems`, as for the daemon's configuration), then for
what a schema cannot say (see "validation" below).

Interface classes (Blue Book, DLMS UA 1000-1, clause 4):

========================  ===  =======  ==============================================
class                      id  version  attributes (1 is always logical_name)
========================  ===  =======  ==============================================
Data                        1     0     2 value
Register                    3     0     2 value, 3 scaler_unit
Extended register           4     0     2 value, 3 scaler_unit, 4 status, 5 capture_time
Demand register             5     0     2 current_average_value, 3 last_average_value,
                                        4 scaler_unit, 5 status, 6 capture_time,
                                        7 start_time_current, 8 period, 9 number_of_periods
Profile generic             7     1     2 buffer, 3 capture_objects, 4 capture_period,
                                        5 sort_method, 6 sort_object, 7 entries_in_use,
                                        8 profile_entries (rows: :mod:`dlmsd.sim.profile`)
Clock                       8     0     2 time, 3 time_zone, 4 status, 5/6 daylight_savings
                                        begin/end, 7 ..._deviation, 8 ..._enabled, 9 clock_base
Association SN             12     2     2 object_list, 3 access_rights_list,
                                        4 security_setup_reference
Association LN             15     1     2 object_list, 3 associated_partners_id,
                                        4 application_context_name, 5 xDLMS_context_info,
                                        6 authentication_mechanism_name, 7 secret,
                                        8 association_status, 9 security_setup_reference
========================  ===  =======  ==============================================

Every attribute is read-only except the association's ``secret`` (no access); every
method is "no access".  The association object 0.0.40.0.0.255 is generated from the
model, with an object_list that lists every object and these access rights: an
Association LN for LN referencing, an Association SN for SN referencing.

Short names (SN referencing, Blue Book "Referencing methods"): every object has a
base_name, attribute n is at base_name + 8 (n - 1) and the methods follow at the class's
offset (:data:`dlmsd.protocol.sn.FIRST_METHOD_OFFSET`).  :class:`ShortNames` places
them: the Association SN at 0xFA00 and the COSEM logical device name (Data
0.0.42.0.0.255) at 0xFD00 (the Blue Book's reserved base names), an object's
``base_name`` from the model where given, every other object from 0x0100 upward in
model order, each at the next free multiple of 0x20 after the previous one, with room
for all its attributes and methods.
"""

from __future__ import annotations

import enum
import functools
import json
import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date as _py_date
from datetime import datetime, timedelta, timezone
from datetime import time as _py_time
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Protocol, TypeVar, cast

import jsonschema

from dlmsd.config import SchemaPath, json_path, schema_problems, show_json
from dlmsd.errors import ConfigError, DecodeError, LocalProtocolError
from dlmsd.protocol.axdr import (
    DAY_LAST,
    DAY_SECOND_LAST,
    BitString,
    ClockStatus,
    Data,
    DataType,
    Date,
    DateTime,
    Time,
)
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.selective import CaptureObject
from dlmsd.protocol.sn import (
    ASSOCIATION_SN_BASE_NAME,
    ATTRIBUTE_STEP,
    FIRST_METHOD_OFFSET,
    LOGICAL_DEVICE_NAME_BASE_NAME,
)
from dlmsd.protocol.units import UNITS
from dlmsd.protocol.xdlms import DataAccessResult, SelectiveAccessDescriptor
from dlmsd.sim.profile import (
    MAX_PROFILE_ENTRIES,
    Column,
    ColumnKind,
    Profile,
    ProfileQuirks,
)

__all__ = [
    "ASSOCIATION_LN",
    "ASSOCIATION_LN_NAME",
    "ASSOCIATION_SN",
    "AUTO_BASE_NAME_ALIGN",
    "AUTO_BASE_NAME_END",
    "AUTO_BASE_NAME_START",
    "CLASSES",
    "AssociationView",
    "AttributeAccess",
    "CosemObject",
    "InterfaceClass",
    "Live",
    "LiveMode",
    "Meter",
    "MeterModel",
    "MethodAccess",
    "ProfileQuirks",
    "ReadContext",
    "ShortNameTarget",
    "ShortNames",
    "bundled_model_path",
    "load_model",
    "parse_model",
    "short_name_span",
]


# =========================================================================== classes
class AttributeAccess(enum.IntEnum):
    """attribute_access_item.access_mode (Blue Book 4.4.3, Association LN version >= 1)."""

    NO_ACCESS = 0
    READ_ONLY = 1
    WRITE_ONLY = 2
    READ_AND_WRITE = 3
    AUTHENTICATED_READ_ONLY = 4
    AUTHENTICATED_WRITE_ONLY = 5
    AUTHENTICATED_READ_AND_WRITE = 6


class MethodAccess(enum.IntEnum):
    """method_access_item.access_mode (Blue Book 4.4.3, Association LN version >= 1)."""

    NO_ACCESS = 0
    ACCESS = 1
    AUTHENTICATED_ACCESS = 2


@dataclass(frozen=True)
class InterfaceClass:
    """A COSEM interface class: id, version, and its attribute and method names
    (attribute ``n`` is ``attributes[n - 1]``; likewise methods)."""

    class_id: int
    version: int
    name: str
    attributes: tuple[str, ...]
    methods: tuple[str, ...] = ()

    def has_attribute(self, index: int) -> bool:
        return 1 <= index <= len(self.attributes)

    def has_method(self, index: int) -> bool:
        return 1 <= index <= len(self.methods)


DATA: Final = InterfaceClass(1, 0, "data", ("logical_name", "value"))
REGISTER: Final = InterfaceClass(
    3, 0, "register", ("logical_name", "value", "scaler_unit"), ("reset",))
EXTENDED_REGISTER: Final = InterfaceClass(
    4, 0, "extended-register",
    ("logical_name", "value", "scaler_unit", "status", "capture_time"), ("reset",))
DEMAND_REGISTER: Final = InterfaceClass(
    5, 0, "demand-register",
    ("logical_name", "current_average_value", "last_average_value", "scaler_unit", "status",
     "capture_time", "start_time_current", "period", "number_of_periods"),
    ("reset", "next_period"))
PROFILE_GENERIC: Final = InterfaceClass(
    7, 1, "profile-generic",
    ("logical_name", "buffer", "capture_objects", "capture_period", "sort_method",
     "sort_object", "entries_in_use", "profile_entries"),
    ("reset", "capture"))
CLOCK: Final = InterfaceClass(
    8, 0, "clock",
    ("logical_name", "time", "time_zone", "status", "daylight_savings_begin",
     "daylight_savings_end", "daylight_savings_deviation", "daylight_savings_enabled",
     "clock_base"),
    ("adjust_to_quarter", "adjust_to_measuring_period", "adjust_to_minute",
     "adjust_to_preset_time", "preset_adjusting_time", "shift_time"))
ASSOCIATION_LN: Final = InterfaceClass(
    15, 1, "association-ln",
    ("logical_name", "object_list", "associated_partners_id", "application_context_name",
     "xdlms_context_info", "authentication_mechanism_name", "secret", "association_status",
     "security_setup_reference"),
    ("reply_to_hls_authentication", "change_hls_secret", "add_object", "remove_object"))

# Blue Book, Association SN (class_id 12): version 2 has the attributes 1..4 and eight
# methods at x + 0x20 .. x + 0x58 (the last is reply_to_HLS_authentication); the method
# names are those of the Blue Book editions that defined version 2.
ASSOCIATION_SN: Final = InterfaceClass(
    12, 2, "association-sn",
    ("logical_name", "object_list", "access_rights_list", "security_setup_reference"),
    ("getlist_by_classid", "getobj_by_logicalname", "read_by_logicalname",
     "get_attributes_and_services", "change_lls_secret", "change_hls_secret",
     "get_hls_challenge", "reply_to_hls_authentication"))

#: The classes a model file may name, by name (the association is generated).
CLASSES: Final[Mapping[str, InterfaceClass]] = MappingProxyType(
    {c.name: c for c in (DATA, REGISTER, EXTENDED_REGISTER, DEMAND_REGISTER, PROFILE_GENERIC,
                         CLOCK)})
_CLASSES_BY_ID: Final = {c.class_id: c for c in CLASSES.values()}

#: Blue Book 4.4.3: "the current association" is 0.0.40.0.0.255.
ASSOCIATION_LN_NAME: Final = Obis(0, 0, 40, 0, 0, 255)
#: Blue Book 6.2.37 "Invocation counter" (class 1, 0.0.43.1.x.255): a data object
#: whose double-long-unsigned value the simulator keeps live (see _InvocationCounter).
INVOCATION_COUNTER_NAME: Final = Obis(0, 0, 43, 1, 0, 255)
# The COSEM logical device name (Data), whose base_name the Blue Book reserves.
_LOGICAL_DEVICE_NAME: Final = Obis(0, 0, 42, 0, 0, 255)

# Green Book, COSEM application context name and authentication mechanism name, as
# the association LN (version >= 1) shows them: structure of the OID's arcs.
_CONTEXT_ARCS: Final = (2, 16, 756, 5, 8, 1)  # then 1 LN, 3 LN with ciphering
_MECHANISM_ARCS: Final = (2, 16, 756, 5, 8, 2)  # then the mechanism id
_ASSOCIATED: Final = 2  # association_status enum: (0) non-associated, (1) pending, (2) associated


# =========================================================================== reading
@dataclass(frozen=True)
class AssociationView:
    """What the association LN object shows about the association that reads it."""

    client_sap: int
    server_sap: int
    conformance: int  # the conformance block the server offers (24-bit wire value)
    max_receive_pdu_size: int
    max_send_pdu_size: int
    dlms_version: int = 6
    mechanism: int = 0  # the authentication mechanism id in use (0 lowest .. 7)
    ciphered: bool = False  # the context is "with ciphering"
    invocation_counter: int = 0  # the highest client invocation counter accepted


@dataclass(frozen=True)
class ReadContext:
    """The moment of a read: ``now`` is an aware datetime (wall clock, for the live
    clock), ``elapsed`` the seconds since the meter started (for live values);
    ``quirks`` how the profiles answer (``--profile-quirk``)."""

    now: datetime
    elapsed: float
    live: bool
    seed: int
    association: AssociationView
    quirks: ProfileQuirks = field(default_factory=ProfileQuirks)
    #: seconds the live clock is ahead of ``now`` (``--clock-drift``, a SET, a shift)
    clock_offset: float = 0.0

    @property
    def clock_now(self) -> datetime:
        """The meter's own idea of now (the live clock's instant)."""
        return self.now + timedelta(seconds=self.clock_offset)


class _Source(Protocol):
    def value(self, ctx: ReadContext) -> Data: ...


@dataclass(frozen=True)
class _Fixed:
    data: Data

    def value(self, ctx: ReadContext) -> Data:
        return self.data


class LiveMode(enum.Enum):
    INCREASE = "increase"
    OSCILLATE = "oscillate"


# Ranges of the integer types, to keep a live value inside its type.
_INT_RANGES: Final[dict[DataType, tuple[int, int]]] = {
    DataType.INTEGER: (-(2**7), 2**7 - 1),
    DataType.LONG: (-(2**15), 2**15 - 1),
    DataType.DOUBLE_LONG: (-(2**31), 2**31 - 1),
    DataType.LONG64: (-(2**63), 2**63 - 1),
    DataType.UNSIGNED: (0, 2**8 - 1),
    DataType.LONG_UNSIGNED: (0, 2**16 - 1),
    DataType.DOUBLE_LONG_UNSIGNED: (0, 2**32 - 1),
    DataType.LONG64_UNSIGNED: (0, 2**64 - 1),
    DataType.ENUM: (0, 2**8 - 1),
    DataType.BCD: (0, 2**8 - 1),
}
_FLOAT_TYPES: Final = frozenset({DataType.FLOAT32, DataType.FLOAT64})
_NUMERIC: Final = frozenset(_INT_RANGES) | _FLOAT_TYPES


@dataclass(frozen=True)
class Live:
    """How a numeric value changes with ``--live``, deterministically.

    The value moves once per second of meter time (``step = int(elapsed)``):
    INCREASE adds ``per_hour * step / 3600`` (rounded down for integers: an energy
    counter never goes back); OSCILLATE adds ``amplitude * sin(2 pi step / period)``
    plus a jitter in ``[-jitter, +jitter]`` drawn from a generator seeded with the
    model seed, the object and the step.  Results are clamped to the value's type.
    """

    mode: LiveMode
    per_hour: float = 0.0
    amplitude: float = 0.0
    period: float = 60.0
    jitter: float = 0.0

    def apply(self, base: Data, elapsed: float, seed: int, key: str) -> Data:
        step = max(0, int(elapsed))
        if self.mode is LiveMode.INCREASE:
            delta = self.per_hour * step / 3600.0
        else:
            delta = self.amplitude * math.sin(2.0 * math.pi * step / self.period)
            if self.jitter:
                delta += random.Random(f"{seed}:{key}:{step}").uniform(-self.jitter, self.jitter)
        if base.type in _FLOAT_TYPES:
            assert isinstance(base.value, float)
            return Data(base.type, base.value + delta)
        assert isinstance(base.value, int)
        low, high = _INT_RANGES[base.type]
        moved = math.floor(delta) if self.mode is LiveMode.INCREASE else round(delta)
        return Data(base.type, min(high, max(low, base.value + moved)))


@dataclass(frozen=True)
class _LiveValue:
    data: Data
    live: Live
    key: str

    def value(self, ctx: ReadContext) -> Data:
        if not ctx.live:
            return self.data
        return self.live.apply(self.data, ctx.elapsed, ctx.seed, self.key)


def _rule_date(rule: DateTime, year: int) -> _py_date | None:
    """The day a recurring daylight_savings_begin/end rule falls on in ``year``.

    Blue Book 4.1.6.1 date fields: month 1..12; day of month 1..31, 0xFE last or 0xFD
    second last day; with a day of week as well, the first such weekday on or after
    that day (0xFE/0xFD: the last one on or before it), e.g. "last Sunday of March" is
    month 3, day 0xFE, day of week 7.  None for a rule this cannot place.
    """
    month, day, weekday = rule.month, rule.day, rule.day_of_week
    if month is None or not 1 <= month <= 12 or day is None:
        return None
    next_month = _py_date(year + month // 12, month % 12 + 1, 1)
    last = (next_month - timedelta(days=1)).day
    if day in (DAY_LAST, DAY_SECOND_LAST):
        ref = _py_date(year, month, last - 1 if day == DAY_SECOND_LAST else last)
        if weekday is None:
            return ref
        return ref - timedelta(days=(ref.isoweekday() - weekday) % 7)
    if not 1 <= day <= last:
        return None
    ref = _py_date(year, month, day)
    if weekday is None:
        return ref
    return ref + timedelta(days=(weekday - ref.isoweekday()) % 7)


@dataclass(frozen=True)
class _ClockRules:
    """The clock's time zone and daylight saving settings, for the live clock."""

    utc_offset: int  # minutes, ISO sign (CET +60), of standard time
    dst_enabled: bool
    dst_deviation: int
    dst_active: bool  # used when the rules cannot say
    begin: DateTime
    end: DateTime
    status: int

    def dst_at(self, now: datetime) -> bool:
        """Whether daylight saving time is in force at ``now`` (aware)."""
        if not self.dst_enabled:
            return False
        standard = now.astimezone(timezone(timedelta(minutes=self.utc_offset)))
        year = standard.year
        begin_day, end_day = _rule_date(self.begin, year), _rule_date(self.end, year)
        if begin_day is None or end_day is None:
            return self.dst_active
        naive = standard.replace(tzinfo=None)
        begin = datetime.combine(begin_day, _py_time(self.begin.hour or 0, self.begin.minute or 0))
        # The end is given in daylight saving time: one deviation later in standard time.
        end = (datetime.combine(end_day, _py_time(self.end.hour or 0, self.end.minute or 0))
               - timedelta(minutes=self.dst_deviation))
        if begin <= end:
            return begin <= naive < end
        return naive >= begin or naive < end  # southern hemisphere

    def status_at(self, now: datetime) -> int:
        dst = int(ClockStatus.DAYLIGHT_SAVING_ACTIVE)
        return (self.status & ~dst) | (dst if self.dst_at(now) else 0)


@dataclass(frozen=True)
class _ByLive:
    """A value that depends on ``--live`` (the access rights of the settable clock)."""

    fixed: Data
    live: Data

    def value(self, ctx: ReadContext) -> Data:
        return self.live if ctx.live else self.fixed


#: The clock (class 8): its time attribute and the methods the live clock serves
#: (Blue Book 4.5.1: 4 adjust_to_preset_time, 5 preset_adjusting_time, 6 shift_time;
#: see dlmsd.sim.clock).
CLOCK_CLASS_ID: Final = 8
CLOCK_TIME: Final = 2
SETTABLE_CLOCK_METHODS: Final = frozenset({4, 5, 6})


@dataclass(frozen=True)
class _ClockTime:
    """Clock attribute 2: the model's fixed time, or with ``--live`` the real time in
    the meter's local time (standard offset, plus the DST deviation while in force)."""

    fixed: DateTime
    rules: _ClockRules

    def value(self, ctx: ReadContext) -> Data:
        if not ctx.live:
            return Data.octets(self.fixed.to_bytes())
        now = ctx.clock_now
        dst = self.rules.dst_at(now)
        offset = self.rules.utc_offset + (self.rules.dst_deviation if dst else 0)
        local = now.astimezone(timezone(timedelta(minutes=offset)))
        status = ClockStatus(self.rules.status_at(now))
        return Data.octets(DateTime.from_datetime(local, clock_status=status).to_bytes())


@dataclass(frozen=True)
class _ClockStatusSource:
    """Clock attribute 4: the model's status; with ``--live`` the DST bit follows the rules."""

    rules: _ClockRules

    def value(self, ctx: ReadContext) -> Data:
        return Data.uint8(self.rules.status_at(ctx.clock_now) if ctx.live else self.rules.status)


@dataclass(frozen=True)
class _Partners:
    def value(self, ctx: ReadContext) -> Data:
        # associated_partners_id ::= structure { client_SAP integer, server_SAP long-unsigned }
        view = ctx.association
        return Data.structure(Data.int8(view.client_sap), Data.uint16(view.server_sap))


@dataclass(frozen=True)
class _InvocationCounter:
    """0.0.43.1.0.255: the highest invocation counter the meter accepted from a client
    (readable by the public client, so that a client that lost its counter goes on
    above it)."""

    def value(self, ctx: ReadContext) -> Data:
        return Data.uint32(ctx.association.invocation_counter)


@dataclass(frozen=True)
class _ContextName:
    def value(self, ctx: ReadContext) -> Data:
        return _arcs((*_CONTEXT_ARCS, 3 if ctx.association.ciphered else 1))


@dataclass(frozen=True)
class _MechanismName:
    def value(self, ctx: ReadContext) -> Data:
        return _arcs((*_MECHANISM_ARCS, ctx.association.mechanism))


@dataclass(frozen=True)
class _ContextInfo:
    def value(self, ctx: ReadContext) -> Data:
        # xDLMS_context_info ::= structure { conformance bit-string, max_receive_pdu_size
        #   long-unsigned, max_send_pdu_size long-unsigned, dlms_version_number unsigned,
        #   quality_of_service integer, cyphering_info octet-string }
        view = ctx.association
        conformance = BitString(24, view.conformance.to_bytes(3, "big"))
        return Data.structure(
            Data.bit_string(conformance), Data.uint16(view.max_receive_pdu_size),
            Data.uint16(view.max_send_pdu_size), Data.uint8(view.dlms_version),
            Data.int8(0), Data.octets(b""))


@dataclass(frozen=True)
class CosemObject:
    """One object of the model: its class, logical name, description and the source
    of each readable attribute (attribute 1, logical_name, is implied); ``base_name``
    is the short name the model asks for (None: placed by :class:`ShortNames`)."""

    cls: InterfaceClass
    logical_name: Obis
    name: str
    sources: Mapping[int, _Source] = field(repr=False)
    base_name: int | None = None
    profile: Profile | None = field(default=None, repr=False)

    def access(self, attribute: int, live: bool = False) -> AttributeAccess:
        """``live``: the meter runs with ``--live``, where the clock's time is settable."""
        if live and self.cls.class_id == CLOCK_CLASS_ID and attribute == CLOCK_TIME:
            return AttributeAccess.READ_AND_WRITE
        if attribute == 1 or attribute in self.sources:
            return AttributeAccess.READ_ONLY
        return AttributeAccess.NO_ACCESS

    def method_access(self, method: int, live: bool = False) -> MethodAccess:
        """Every method has no access, but the live clock's time-setting methods."""
        if live and self.cls.class_id == CLOCK_CLASS_ID and method in SETTABLE_CLOCK_METHODS:
            return MethodAccess.ACCESS
        return MethodAccess.NO_ACCESS

    def read(self, attribute: int, ctx: ReadContext,
             selection: SelectiveAccessDescriptor | None = None) -> Data | DataAccessResult:
        """The attribute's value, or the data-access-result that refuses it.

        Green Book, Data-Access-Result: an attribute the class does not define is
        ``object-undefined``; one it defines but this association may not read (its
        access_mode in the object_list is no_access) is ``read-write-denied``.
        ``selection``: selective access, which only a profile's buffer has (Blue Book
        4.3.6); on any other attribute it is ``other-reason``.
        """
        if not self.cls.has_attribute(attribute):
            return DataAccessResult.OBJECT_UNDEFINED
        if selection is not None:
            if self.profile is None or attribute != _BUFFER:
                return DataAccessResult.OTHER_REASON
            return self.profile.select(selection, ctx, ctx.quirks)
        if attribute == 1:
            return Data.octets(self.logical_name.to_bytes())
        source = self.sources.get(attribute)
        if source is None:
            return DataAccessResult.READ_WRITE_DENIED
        return source.value(ctx)

    def _access_descriptors(self, live: bool = False) -> tuple[Data, Data]:
        """attribute_access_descriptor and method_access_descriptor (Blue Book 4.4.3)::

            array of structure { attribute_id integer, access_mode enum,
                                 access_selectors null-data },
            array of structure { method_id integer, access_mode enum }
        """
        attributes = tuple(
            Data.structure(Data.int8(i), Data.enum(int(self.access(i, live))),
                           self._selectors(i))
            for i in range(1, len(self.cls.attributes) + 1))
        methods = tuple(
            Data.structure(Data.int8(i), Data.enum(int(self.method_access(i, live))))
            for i in range(1, len(self.cls.methods) + 1))
        return Data.array(*attributes), Data.array(*methods)

    def _selectors(self, attribute: int) -> Data:
        """access_selectors ::= CHOICE { null-data, array of integer }: a profile's
        buffer offers 1 (by range) and 2 (by entry), every other attribute none."""
        if self.profile is not None and attribute == _BUFFER:
            return Data.array(Data.int8(1), Data.int8(2))
        return Data.null()

    def object_list_element(self, live: bool = False) -> Data:
        """This object's entry in the Association LN object_list (Blue Book 4.4.3)::

            structure { class_id long-unsigned, version unsigned,
                        logical_name octet-string(6),
                        access_rights structure { attribute_access_descriptor,
                                                  method_access_descriptor } }
        """
        return Data.structure(
            Data.uint16(self.cls.class_id), Data.uint8(self.cls.version),
            Data.octets(self.logical_name.to_bytes()),
            Data.structure(*self._access_descriptors(live)))

    def sn_object_list_element(self, base_name: int) -> Data:
        """This object's entry in the Association SN object_list (Blue Book 4.4.4)::

            structure { base_name long, class_id long-unsigned, version unsigned,
                        logical_name octet-string(6) }
        """
        return Data.structure(
            _long(base_name), Data.uint16(self.cls.class_id), Data.uint8(self.cls.version),
            Data.octets(self.logical_name.to_bytes()))

    def sn_access_right(self, base_name: int, live: bool = False) -> Data:
        """This object's entry in the Association SN access_rights_list (Blue Book 4.4.4)::

            structure { base_name long, attribute_access_descriptor,
                        method_access_descriptor }
        """
        return Data.structure(_long(base_name), *self._access_descriptors(live))


def _long(short_name: int) -> Data:
    """A short name as the Blue Book types base_name: long (0xFA00 is -1536)."""
    return Data.int16(short_name - 0x10000 if short_name >= 0x8000 else short_name)


# =========================================================================== short names
#: Where automatic base names start, their alignment, and the first name they may not
#: reach (the Blue Book's reserved base names begin at 0xFA00).
AUTO_BASE_NAME_START: Final = 0x0100
AUTO_BASE_NAME_ALIGN: Final = 0x20
AUTO_BASE_NAME_END: Final = ASSOCIATION_SN_BASE_NAME
_SHORT_NAME_END: Final = 0x10000


def short_name_span(cls: InterfaceClass) -> int:
    """How many short names an object of ``cls`` takes from its base_name: up to its
    last attribute or last method (Blue Book class tables), plus one step."""
    last = ATTRIBUTE_STEP * (len(cls.attributes) - 1)
    if cls.methods:
        offset = FIRST_METHOD_OFFSET.get(cls.class_id)
        if offset is None:  # pragma: no cover - every class here has its offsets
            raise LocalProtocolError(f"class {cls.class_id}: method short names unknown")
        last = max(last, offset + ATTRIBUTE_STEP * (len(cls.methods) - 1))
    return last + ATTRIBUTE_STEP


@dataclass(frozen=True)
class ShortNameTarget:
    """What one short name addresses: attribute ``attribute`` or method ``method`` (the
    other is 0) of ``obj``, whose base_name is ``base_name``."""

    obj: CosemObject
    base_name: int
    attribute: int = 0
    method: int = 0


class ShortNames:
    """The SN view of a model: the Association SN and every object with its base_name
    (``objects``, association first, then model order), and what each short name
    addresses (:meth:`find`)."""

    def __init__(self, placed: tuple[tuple[int, CosemObject], ...]) -> None:
        self.objects = placed
        names: dict[int, ShortNameTarget] = {}
        for base, obj in placed:
            for attribute in range(1, len(obj.cls.attributes) + 1):
                names[base + ATTRIBUTE_STEP * (attribute - 1)] = ShortNameTarget(
                    obj, base, attribute=attribute)
            offset = FIRST_METHOD_OFFSET.get(obj.cls.class_id)
            for method in range(1, len(obj.cls.methods) + 1):
                assert offset is not None
                names[base + offset + ATTRIBUTE_STEP * (method - 1)] = ShortNameTarget(
                    obj, base, method=method)
        self._names: Mapping[int, ShortNameTarget] = MappingProxyType(names)
        self._bases: Mapping[Obis, int] = MappingProxyType(
            {obj.logical_name: base for base, obj in reversed(placed)})

    @property
    def association(self) -> CosemObject:
        return self.objects[0][1]

    def find(self, short_name: int) -> ShortNameTarget | None:
        return self._names.get(short_name)

    def base_name(self, logical_name: Obis) -> int | None:
        """The base_name of the object ``logical_name`` (0.0.40.0.0.255: the association)."""
        return self._bases.get(logical_name)


_Range = tuple[int, int, str]  # [start, end) of the short names of whom


def _overlap(start: int, end: int, taken: list[_Range]) -> _Range | None:
    for item in taken:
        if start < item[1] and item[0] < end:
            return item
    return None


def _place_short_names(objects: tuple[CosemObject, ...], where: list[str]
                       ) -> tuple[ShortNames, list[str]]:
    """Place the model objects (not the association LN) in the short-name space, as
    the module docstring says; returns the layout and the problems, each prefixed by
    ``where[i]`` (the object's JSON path or name)."""
    problems: list[str] = []
    span_sn = short_name_span(ASSOCIATION_SN)
    taken: list[_Range] = [
        (ASSOCIATION_SN_BASE_NAME, ASSOCIATION_SN_BASE_NAME + span_sn, "the association SN")]
    bases: dict[int, int] = {}
    for i, obj in enumerate(objects):
        if obj.base_name is None:
            continue
        start, end = obj.base_name, obj.base_name + short_name_span(obj.cls)
        hit = _overlap(start, end, taken)
        if hit is not None:
            problems.append(f"{where[i]}.base_name: 0x{start:04X}..0x{end - 1:04X} overlaps "
                            f"0x{hit[0]:04X}..0x{hit[1] - 1:04X} of {hit[2]}")
            continue
        taken.append((start, end, f"{obj.logical_name}"))
        bases[i] = start
    for i, obj in enumerate(objects):
        if (obj.base_name is None and obj.cls is DATA
                and obj.logical_name == _LOGICAL_DEVICE_NAME):
            start = LOGICAL_DEVICE_NAME_BASE_NAME
            end = start + short_name_span(obj.cls)
            if _overlap(start, end, taken) is None:
                taken.append((start, end, f"{obj.logical_name}"))
                bases[i] = start
    # Automatic places only grow, so they need checking against the fixed ones only.
    cursor = AUTO_BASE_NAME_START
    for i, obj in enumerate(objects):
        if i in bases or obj.base_name is not None:
            continue
        span = short_name_span(obj.cls)
        start = -(-cursor // AUTO_BASE_NAME_ALIGN) * AUTO_BASE_NAME_ALIGN
        while (hit := _overlap(start, start + span, taken)) is not None:
            start = -(-hit[1] // AUTO_BASE_NAME_ALIGN) * AUTO_BASE_NAME_ALIGN
        if start + span > AUTO_BASE_NAME_END:
            problems.append(f"{where[i]}: no room left for its short names below "
                            f"0x{AUTO_BASE_NAME_END:04X} (give base_name)")
            continue
        bases[i] = start
        cursor = start + span
    placed = tuple((bases[i], obj) for i, obj in enumerate(objects) if i in bases)
    return ShortNames(((ASSOCIATION_SN_BASE_NAME, _association_sn(placed)), *placed)), problems


@dataclass(frozen=True)
class MeterModel:
    """A validated model: the objects in model order (the association LN first), and
    their SN layout ``short_names`` (the association SN first).  Raises
    :class:`ConfigError` when the objects' base names do not fit."""

    name: str
    seed: int
    objects: tuple[CosemObject, ...]
    source: str = "<model>"
    _by_name: Mapping[Obis, CosemObject] = field(init=False, repr=False, compare=False)
    short_names: ShortNames = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name",
                           MappingProxyType({o.logical_name: o for o in self.objects}))
        served = tuple(o for o in self.objects if o.cls is not ASSOCIATION_LN)
        layout, problems = _place_short_names(served, [str(o.logical_name) for o in served])
        if problems:
            raise ConfigError(f"{self.source}: the short names do not fit",
                              [f"{self.source}: {p}" for p in problems])
        object.__setattr__(self, "short_names", layout)

    def find(self, logical_name: Obis) -> CosemObject | None:
        return self._by_name.get(logical_name)


class Meter:
    """The meter being served: one model, shared by every connection.

    ``live`` makes values change with time: ``started`` (aware) is when the meter
    started, and each read's ``now`` gives the elapsed time.  ``quirks``: how the
    profiles answer range accesses (``--profile-quirk``).
    """

    def __init__(self, model: MeterModel, *, live: bool = False,
                 started: datetime | None = None,
                 quirks: ProfileQuirks | None = None) -> None:
        if live and started is None:
            raise LocalProtocolError("a live meter needs its start time")
        self.model = model
        self.live = live
        self.started = started
        #: seconds the live clock is ahead of the real time: ``--clock-drift``, then
        #: what SET of the clock's time and its methods make of it (dlmsd.sim.clock)
        self.clock_offset = 0.0
        #: preset_adjusting_time's (preset, validity start, validity end), as instants
        self.clock_preset: tuple[datetime, datetime, datetime] | None = None
        self.quirks = quirks if quirks is not None else ProfileQuirks()

    def lookup(self, class_id: int, logical_name: Obis) -> CosemObject | DataAccessResult:
        """The object addressed by a descriptor, or why not: ``object-undefined`` for a
        logical name the meter does not have, ``object-class-inconsistent`` for one it
        has with another class."""
        obj = self.model.find(logical_name)
        if obj is None:
            return DataAccessResult.OBJECT_UNDEFINED
        if obj.cls.class_id != class_id:
            return DataAccessResult.OBJECT_CLASS_INCONSISTENT
        return obj

    def _context(self, now: datetime, association: AssociationView) -> ReadContext:
        elapsed = 0.0
        if self.live and self.started is not None:
            elapsed = (now - self.started).total_seconds()
        return ReadContext(now, elapsed, self.live, self.model.seed, association,
                           quirks=self.quirks, clock_offset=self.clock_offset)

    def read(self, class_id: int, logical_name: Obis, attribute: int, *,
             now: datetime, association: AssociationView,
             selection: SelectiveAccessDescriptor | None = None) -> Data | DataAccessResult:
        """LN referencing: one attribute by class id, logical name and index, with
        selective access when ``selection`` is given."""
        obj = self.lookup(class_id, logical_name)
        if isinstance(obj, DataAccessResult):
            return obj
        return obj.read(attribute, self._context(now, association), selection)

    def read_short_name(self, short_name: int, *, now: datetime,
                        association: AssociationView,
                        selection: SelectiveAccessDescriptor | None = None
                        ) -> Data | DataAccessResult:
        """SN referencing: the variable at ``short_name`` (with parameterized access:
        ``selection``).  A name that addresses nothing is ``object-undefined``; a
        method's name is ``read-write-denied`` (every method has no access; reading it
        would invoke it)."""
        target = self.model.short_names.find(short_name)
        if target is None:
            return DataAccessResult.OBJECT_UNDEFINED
        if target.method:
            return DataAccessResult.READ_WRITE_DENIED
        return target.obj.read(target.attribute, self._context(now, association), selection)


# =========================================================================== loading
def bundled_model_path() -> Path:
    """The realistic model shipped with the package (``dlmsd/sim/meter.json``)."""
    return Path(str(resources.files("dlmsd.sim") / "meter.json"))


def load_model(path: str | Path) -> MeterModel:
    """Read and validate a model file; :class:`ConfigError` lists every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read the model: {exc}") from None
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"{source}: not valid JSON: {exc}") from None
    return parse_model(doc, source)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


# =========================================================================== validation
# The JSON Schema (model_schema.json) checks the document's shape, with the messages
# of dlmsd.config.schema_problems; the code below checks what a schema cannot, on the
# parts the schema found well-formed: OBIS codes and unique logical names, A-XDR values
# against their types, ISO dates and times, units, base names and their placement.
_SCHEMA: Final[dict[str, Any]] = json.loads(
    resources.files("dlmsd.sim").joinpath("model_schema.json").read_text("utf-8"))
# An integer is a JSON number without a fraction or exponent: 1.0 is not one.
_TYPES: Final = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, node: isinstance(node, int) and not isinstance(node, bool))
_EXTEND: Final = cast(Callable[..., Any], jsonschema.validators.extend)  # untyped upstream
_VALIDATOR: Final[jsonschema.protocols.Validator] = _EXTEND(
    jsonschema.Draft202012Validator, type_checker=_TYPES)(_SCHEMA)


class _Invalid(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")


_T = TypeVar("_T")


class _Checker:
    """Collects problems, so that one run of the loader reports all of them.  ``dirty``
    holds the JSON paths at or above a schema problem: those parts are not checked
    further (their shape is not what the code expects)."""

    def __init__(self, dirty: frozenset[str]) -> None:
        self.dirty = dirty
        self.problems: list[str] = []

    def run(self, parse: Callable[[], _T]) -> _T | None:
        try:
            return parse()
        except _Invalid as exc:
            self.problems.append(str(exc))
            return None

    def field(self, spec: Mapping[str, Any], key: str, path: str,
              parse: Callable[[Any, str], _T]) -> _T | None:
        """``parse(spec[key], its path)``, if present and well-formed."""
        where = f"{path}.{key}"
        if key not in spec or where in self.dirty:
            return None
        return self.run(lambda: parse(spec[key], where))

    def value(self, spec: Mapping[str, Any], key: str, path: str, default: Any) -> Any:
        """``spec[key]`` if present and well-formed (the schema checked it), else ``default``."""
        if key not in spec or f"{path}.{key}" in self.dirty:
            return default
        return spec[key]


def _not_allowed(path: str, node: object, allowed: str) -> _Invalid:
    return _Invalid(path, f"{show_json(node)} is not allowed: {allowed}")


# Type names: the standard's (``long-unsigned``) and the usual short aliases.
_TYPE_NAMES: Final[dict[str, DataType]] = {
    **{t.asn1_name: t for t in DataType if t is not DataType.COMPACT_ARRAY},
    "bool": DataType.BOOLEAN,
    "int8": DataType.INTEGER, "int16": DataType.LONG, "int32": DataType.DOUBLE_LONG,
    "int64": DataType.LONG64, "uint8": DataType.UNSIGNED, "uint16": DataType.LONG_UNSIGNED,
    "uint32": DataType.DOUBLE_LONG_UNSIGNED, "uint64": DataType.LONG64_UNSIGNED,
}
_MAX_DEPTH: Final = 16


def _iso_datetime(node: str, path: str) -> datetime:
    try:
        return datetime.fromisoformat(node)
    except ValueError:
        raise _not_allowed(path, node, "must be an ISO 8601 date-time "
                                       "(e.g. \"2024-06-01T12:00:00+02:00\")") from None


def _hex(node: str) -> bytes:
    return bytes.fromhex(re.sub(r"[\s:]", "", node))  # the schema checked the digits


def _date_time(spec: Mapping[str, Any], path: str, vpath: str) -> DateTime:
    """A date-time from ``{"value": ISO, "clock_status": n}`` or ``{"hex": 24 digits}``
    (``vpath``: where the ISO value is)."""
    if "hex" in spec:
        return _from_hex(DateTime.from_bytes, spec, path)
    status = ClockStatus(spec["clock_status"]) if "clock_status" in spec else None
    moment = _iso_datetime(spec["value"], vpath)
    try:
        return DateTime.from_datetime(moment, clock_status=status)
    except ValueError as exc:
        raise _Invalid(vpath, f"{show_json(spec['value'])}: {exc}") from None


def _date_time_spec(node: str | Mapping[str, Any], path: str) -> DateTime:
    """An octet-string(12) date-time attribute: an ISO string, or an object as above."""
    if isinstance(node, str):
        return _date_time({"value": node}, path, path)
    return _date_time(node, path, f"{path}.value")


def _typed(spec: Mapping[str, Any], path: str, depth: int = 0) -> tuple[Data, Live | None]:
    """A typed value: ``{"type": "long-unsigned", "value": 2301}`` (see README)."""
    type_ = _TYPE_NAMES[spec["type"]]
    try:
        data = _typed_data(type_, spec, path, depth)
    except LocalProtocolError as exc:  # the Data constructors' range checks
        raise _Invalid(f"{path}.value", f"{show_json(spec.get('value'))}: {exc}") from None
    live = _live(spec["live"]) if "live" in spec else None
    return data, live


def _typed_data(type_: DataType, spec: Mapping[str, Any], path: str, depth: int) -> Data:
    vpath = f"{path}.value"
    value: Any = spec.get("value")
    if type_ in (DataType.NULL_DATA, DataType.DONT_CARE):
        return Data(type_, None)
    if type_ in _INT_RANGES:
        low, high = _INT_RANGES[type_]
        number = int(value)  # an integer, or a decimal string (big values)
        if not low <= number <= high:
            raise _not_allowed(vpath, value, f"must be an integer from {low} to {high} "
                                             f"({type_.asn1_name})")
        return Data(type_, number)
    if type_ is DataType.FLOAT32:
        return Data.float32(float(value))
    if type_ is DataType.FLOAT64:
        return Data.float64(float(value))
    if type_ is DataType.BOOLEAN:
        return Data.boolean(bool(value))
    if type_ is DataType.BIT_STRING:
        return Data.bit_string(str(value))
    if type_ is DataType.OCTET_STRING:
        if "text" in spec:
            return Data.octets(str(spec["text"]).encode("utf-8"))
        return Data.octets(_hex(spec["hex"] if "hex" in spec else str(value)))
    if type_ is DataType.VISIBLE_STRING:
        return Data.visible(str(value))
    if type_ is DataType.UTF8_STRING:
        return Data.utf8(str(value))
    if type_ is DataType.DATE_TIME:
        return Data.date_time(_date_time(spec, path, vpath))
    if type_ is DataType.DATE:
        return Data.date(_date(spec, path))
    if type_ is DataType.TIME:
        return Data.time(_time(spec, path))
    # array, structure
    if depth >= _MAX_DEPTH:
        raise _Invalid(vpath, f"nested deeper than {_MAX_DEPTH} levels")
    items = tuple(_typed(item, f"{vpath}[{i}]", depth + 1)[0] for i, item in enumerate(value))
    if type_ is DataType.ARRAY and len({item.type for item in items}) > 1:
        raise _Invalid(vpath, "the elements of an array must all have the same type "
                              "(use a structure)")
    return Data(type_, items)


def _from_hex(from_bytes: Callable[[bytes], _T], spec: Mapping[str, Any], path: str) -> _T:
    """A date, time or date-time from ``{"hex": digits}``."""
    try:
        return from_bytes(_hex(spec["hex"]))
    except (DecodeError, ValueError) as exc:
        raise _Invalid(f"{path}.hex", f"{show_json(spec['hex'])}: {exc}") from None


def _from_iso(from_text: Callable[[str], _T], spec: Mapping[str, Any], path: str,
              expected: str) -> _T:
    """A date or time from ``{"value": ISO}``; ``expected`` says what the text must be."""
    try:
        return from_text(spec["value"])
    except ValueError:
        raise _not_allowed(f"{path}.value", spec["value"], f"must be {expected}") from None


def _date(spec: Mapping[str, Any], path: str) -> Date:
    if "hex" in spec:
        return _from_hex(Date.from_bytes, spec, path)
    return _from_iso(lambda text: Date.from_date(_py_date.fromisoformat(text)), spec, path,
                     "an ISO date (e.g. \"2024-06-01\")")


def _time(spec: Mapping[str, Any], path: str) -> Time:
    if "hex" in spec:
        return _from_hex(Time.from_bytes, spec, path)
    return _from_iso(lambda text: Time.from_time(_py_time.fromisoformat(text)), spec, path,
                     "an ISO time (e.g. \"12:30:00\")")


def _live(spec: Mapping[str, Any]) -> Live:
    mode = LiveMode(spec["mode"])
    if mode is LiveMode.INCREASE:
        return Live(mode, per_hour=float(spec["per_hour"]))
    return Live(mode, amplitude=float(spec["amplitude"]), period=float(spec.get("period", 60)),
                jitter=float(spec.get("jitter", 0)))


def _unit(node: int | str, path: str) -> int:
    """A unit code of the Blue Book table, or the symbol of exactly one."""
    if isinstance(node, int):
        if node not in UNITS:
            raise _not_allowed(path, node, "must be a unit code of the Blue Book table")
        return node
    codes = [u.code for u in UNITS.values() if u.symbol == node]
    if len(codes) == 1:
        return codes[0]
    if len(codes) > 1:
        raise _Invalid(path, f"{show_json(node)} is the symbol of units {codes}: give the code")
    raise _not_allowed(path, node, "must be a unit symbol (\"Wh\", \"V\", ...) or code")


def _scaler_unit(spec: Mapping[str, Any], path: str, chk: _Checker) -> Data:
    unit = chk.field(spec, "unit", path, _unit)
    # scaler_unit ::= structure { scaler integer, unit enum } (Blue Book 4.3.2)
    return Data.structure(Data.int8(chk.value(spec, "scaler", path, 0)),
                          Data.enum(255 if unit is None else unit))


def _value_source(spec: Mapping[str, Any], key: str, path: str, chk: _Checker,
                  obis: Obis, *, default: Data | None = None) -> _Source | None:
    if key not in spec:
        return None if default is None else _Fixed(default)
    parsed = chk.field(spec, key, path, _typed)
    if parsed is None:
        return None
    data, live = parsed
    if live is None:
        return _Fixed(data)
    return _LiveValue(data, live, f"{obis}:{key}")


def _octets12(spec: Mapping[str, Any], key: str, path: str, chk: _Checker) -> _Source:
    """A date-time attribute of type octet-string(12); unspecified when absent."""
    moment = chk.field(spec, key, path, _date_time_spec) or DateTime()
    return _Fixed(Data.octets(moment.to_bytes()))


def _sources(cls: InterfaceClass, spec: Mapping[str, Any], path: str, chk: _Checker,
             obis: Obis) -> dict[int, _Source | None]:
    if cls is DATA:
        value = _value_source(spec, "value", path, chk, obis)
        if obis == INVOCATION_COUNTER_NAME and value is not None:
            if not (isinstance(value, _Fixed)
                    and value.data.type is DataType.DOUBLE_LONG_UNSIGNED):
                chk.problems.append(f"{path}.value: the invocation counter is a "
                                    "double-long-unsigned without live (the simulator "
                                    "keeps it)")
                return {2: None}
            return {2: _InvocationCounter()}
        return {2: value}
    if cls is REGISTER:
        return {2: _value_source(spec, "value", path, chk, obis),
                3: _Fixed(_scaler_unit(spec, path, chk))}
    status = Data.uint8(0)
    if cls is EXTENDED_REGISTER:
        return {2: _value_source(spec, "value", path, chk, obis),
                3: _Fixed(_scaler_unit(spec, path, chk)),
                4: _value_source(spec, "status", path, chk, obis, default=status),
                5: _octets12(spec, "capture_time", path, chk)}
    if cls is DEMAND_REGISTER:
        return {2: _value_source(spec, "current_average_value", path, chk, obis),
                3: _value_source(spec, "last_average_value", path, chk, obis),
                4: _Fixed(_scaler_unit(spec, path, chk)),
                5: _value_source(spec, "status", path, chk, obis, default=status),
                6: _octets12(spec, "capture_time", path, chk),
                7: _octets12(spec, "start_time_current", path, chk),
                8: _Fixed(Data.uint32(chk.value(spec, "period", path, 900))),
                9: _Fixed(Data.uint16(chk.value(spec, "number_of_periods", path, 1)))}
    return _clock_sources(spec, path, chk)


def _clock_sources(spec: Mapping[str, Any], path: str, chk: _Checker) -> dict[int, _Source | None]:
    moment = chk.field(spec, "time", path, _iso_datetime)
    dst = spec.get("dst", {})
    dst = dst if isinstance(dst, dict) else {}
    at = f"{path}.dst"
    deviation: int = chk.value(dst, "deviation", at, 60)
    enabled: bool = chk.value(dst, "enabled", at, True)
    active: bool = chk.value(dst, "active", at, False)
    # The offset of standard (winter) time: given, or that of "time" without the DST shift.
    offset_default = 0
    offset = moment.utcoffset() if moment is not None else None
    if offset is not None:
        offset_default = int(offset.total_seconds() // 60) - (deviation if active else 0)
    utc_offset: int = chk.value(spec, "utc_offset", path, offset_default)
    status_default = int(ClockStatus.DAYLIGHT_SAVING_ACTIVE) if active else 0
    status: int = chk.value(spec, "status", path, status_default)
    clock_base: int = chk.value(spec, "clock_base", path, 1)
    fixed = DateTime()
    if moment is not None:
        try:
            fixed = DateTime.from_datetime(moment, clock_status=ClockStatus(status))
        except ValueError as exc:
            chk.problems.append(f"{path}.time: {show_json(spec['time'])}: {exc}")
    # EU rule by default: last Sunday of March / October, 02:00 / 03:00 local time.
    begin = DateTime(None, 3, DAY_LAST, 7, 2, 0, 0, 0, None, None)
    end = DateTime(None, 10, DAY_LAST, 7, 3, 0, 0, 0, None, None)
    begin = chk.field(dst, "begin", at, _date_time_spec) or begin
    end = chk.field(dst, "end", at, _date_time_spec) or end
    rules = _ClockRules(utc_offset, enabled, deviation, active, begin, end, status)
    return {
        2: _ClockTime(fixed, rules),
        # time_zone: "deviation of local, normal time to UTC in minutes", with the sign
        # of the date-time deviation field (UTC = local + deviation): CET is -60.
        3: _Fixed(Data.int16(-utc_offset)),
        4: _ClockStatusSource(rules),
        5: _Fixed(Data.octets(begin.to_bytes())),
        6: _Fixed(Data.octets(end.to_bytes())),
        7: _Fixed(Data.int8(deviation)),
        8: _Fixed(Data.boolean(enabled)),
        9: _Fixed(Data.enum(clock_base)),
    }


_REFERENCE: Final = re.compile(r"^\s*(?P<obis>[^:\s]+(?::[^:\s]+)?)\s*:\s*(?P<attr>\d{1,3})\s*$")
_BUFFER: Final = 2  # class 7 attribute 2, the one with access selectors


def _attribute_ref(node: str, path: str) -> tuple[Obis, int]:
    """``"1.0.1.8.0.255:2"``: a logical name and an attribute index."""
    match = _REFERENCE.match(node)
    if match is None:
        raise _not_allowed(path, node, "must be \"OBIS:attribute\" (e.g. \"1.0.1.8.0.255:2\")")
    return _parse_obis(match["obis"], path), int(match["attr"])


def _capture_of(obj: CosemObject, attribute: int, path: str, node: str) -> CaptureObject:
    if obj.profile is not None or obj.cls is PROFILE_GENERIC:
        raise _Invalid(path, f"{show_json(node)}: a profile cannot be captured")
    if not obj.cls.has_attribute(attribute) or (attribute != 1
                                                 and attribute not in obj.sources):
        raise _Invalid(path, f"{show_json(node)}: {obj.cls.name} {obj.logical_name} has no "
                             f"readable attribute {attribute}")
    return CaptureObject(obj.cls.class_id, obj.logical_name, attribute)


def _column(spec: Mapping[str, Any], path: str, by_name: Mapping[Obis, CosemObject]
            ) -> tuple[Column, CosemObject]:
    """One capture object of a profile, and the object it captures."""
    where = f"{path}.object"
    obis, attribute = _attribute_ref(spec["object"], where)
    obj = by_name.get(obis)
    if obj is None:
        raise _Invalid(where, f"{show_json(spec['object'])}: {obis} is not an object of the "
                              "model")
    capture = _capture_of(obj, attribute, where, spec["object"])
    generators = [k for k in ("start", "per_hour", "cycle") if k in spec]
    if obj.cls is CLOCK and attribute == 2:
        if generators:
            raise _Invalid(f"{path}.{generators[0]}", "a clock column is the capture time; "
                                                      "it takes no start, per_hour or cycle")
        return Column(capture, ColumnKind.CLOCK), obj
    if attribute == 1:
        base = Data.octets(obj.logical_name.to_bytes())
    else:
        source = obj.sources[attribute]
        if not isinstance(source, _Fixed | _LiveValue):
            raise _Invalid(where, f"{show_json(spec['object'])}: its value is computed by the "
                                  "simulator and cannot be captured")
        base = source.data
    if not generators:
        return Column(capture, ColumnKind.CONSTANT, base), obj
    if base.type not in _NUMERIC:
        raise _Invalid(f"{path}.{generators[0]}", f"{show_json(spec['object'])} is "
                       f"{base.type.asn1_name}: start, per_hour and cycle need a number")
    if "cycle" in spec and len(generators) > 1:
        raise _Invalid(f"{path}.cycle", "cycle excludes start and per_hour")
    low, high = _INT_RANGES.get(base.type, (0, 0))
    integral = base.type in _INT_RANGES

    def number(value: Any, at: str) -> int | float:
        if integral and (not isinstance(value, int) or not low <= value <= high):
            raise _not_allowed(at, value, f"must be an integer from {low} to {high} "
                                          f"({base.type.asn1_name})")
        return value if integral else float(value)

    if "cycle" in spec:
        values = tuple(number(v, f"{path}.cycle[{i}]") for i, v in enumerate(spec["cycle"]))
        return Column(capture, ColumnKind.CYCLE, base, cycle=values), obj
    start = number(spec.get("start", base.value), f"{path}.start")
    per_hour = spec.get("per_hour", 0)
    if integral and not isinstance(per_hour, int):
        raise _not_allowed(f"{path}.per_hour", per_hour, "must be an integer for an "
                                                         f"{base.type.asn1_name} column")
    return Column(capture, ColumnKind.COUNTER, base, start=start, per_hour=per_hour,
                  low=low, high=high), obj


def _profile_now(clock: CosemObject) -> Callable[[ReadContext], datetime]:
    """The meter's time for a profile: the value of its clock (the real time with
    ``--live``), or the wall clock when that value is not a complete date-time."""
    def now(ctx: ReadContext) -> datetime:
        value = clock.read(2, ctx)
        if isinstance(value, Data) and isinstance(value.value, bytes):
            try:
                moment = DateTime.from_bytes(value.value).to_datetime()
            except DecodeError:
                moment = None
            if moment is not None and moment.tzinfo is not None:
                return moment
        return ctx.now
    return now


def _parse_profile(spec: Mapping[str, Any], path: str, obis: Obis | None, chk: _Checker,
                   by_name: Mapping[Obis, CosemObject]) -> CosemObject | None:
    """A Profile Generic object (see the README's "Profiles"); None when it has a problem."""
    if obis is None or path in chk.dirty:
        return None
    before = len(chk.problems)
    base_name = chk.field(spec, "base_name", path,
                          lambda node, where: _base_name(node, where, PROFILE_GENERIC))
    columns: list[Column] = []
    clocks: list[CosemObject] = []
    for i, item in enumerate(spec["capture_objects"]):
        at = f"{path}.capture_objects[{i}]"
        if at in chk.dirty:
            continue
        parsed = chk.run(functools.partial(_column, item, at, by_name))
        if parsed is not None:
            if any(c.capture == parsed[0].capture for c in columns):
                chk.problems.append(f"{at}.object: {show_json(item['object'])} is captured "
                                    "twice")
                continue
            columns.append(parsed[0])
            if parsed[0].kind is ColumnKind.CLOCK:
                clocks.append(parsed[1])
    if len(chk.problems) == before and not clocks:
        chk.problems.append(f"{path}.capture_objects: a simulated profile needs a clock "
                            "column (e.g. \"0.0.1.0.0.255:2\"): its rows are made from the "
                            "capture time")
    origin = chk.field(spec, "origin", path, _iso_datetime)
    if origin is not None and origin.tzinfo is None:
        chk.problems.append(f"{path}.origin: {show_json(spec['origin'])} has no UTC offset "
                            "(e.g. \"2024-05-22T00:00:00+02:00\")")
    period: int = chk.value(spec, "capture_period", path, 0)
    interval: int | None = chk.value(spec, "interval", path, None) or period or None
    if interval is None and f"{path}.capture_period" not in chk.dirty:
        chk.problems.append(f"{path}.interval: required when capture_period is 0 (the "
                            "seconds between two simulated rows)")
    sort_object: CaptureObject | None = None
    if "sort_object" in spec and f"{path}.sort_object" not in chk.dirty:
        ref = chk.run(lambda: _attribute_ref(spec["sort_object"], f"{path}.sort_object"))
        if ref is not None:
            sort_object = next((c.capture for c in columns
                                if (c.capture.logical_name, c.capture.attribute_index) == ref),
                               None)
            if sort_object is None and len(chk.problems) == before:
                chk.problems.append(f"{path}.sort_object: {show_json(spec['sort_object'])} "
                                    "is not one of the capture objects")
    if len(chk.problems) > before or origin is None or interval is None:
        return None
    clock_source = clocks[0].sources[2]
    assert isinstance(clock_source, _ClockTime)
    entries: int = chk.value(spec, "profile_entries", path, 1)
    profile = Profile(tuple(columns), period, interval, min(entries, MAX_PROFILE_ENTRIES),
                      origin, clock_source.rules, _profile_now(clocks[0]), sort_object)
    sources: dict[int, _Source] = {
        index: _ProfileAttribute(profile, index) for index in range(2, 9)}
    return CosemObject(PROFILE_GENERIC, obis, spec.get("name", ""), MappingProxyType(sources),
                       base_name, profile)


@dataclass(frozen=True)
class _ProfileAttribute:
    """Attributes 2..8 of a profile (values in :mod:`dlmsd.sim.profile`)."""

    profile: Profile
    index: int

    def value(self, ctx: ReadContext) -> Data:
        return self.profile.attribute(self.index, ctx, ctx.quirks)


def _class_of(name: object) -> InterfaceClass | None:
    if isinstance(name, str):
        return CLASSES.get(name)
    if isinstance(name, int) and not isinstance(name, bool):
        return _CLASSES_BY_ID.get(name)
    return None


def _parse_object(spec: Mapping[str, Any], path: str, obis: Obis | None,
                  chk: _Checker) -> CosemObject | None:
    """One object, or None when it has a problem (the schema's or found here)."""
    cls = _class_of(spec.get("class"))
    if cls is None or obis is None:
        return None
    if obis == ASSOCIATION_LN_NAME:
        chk.problems.append(f"{path}.obis: {obis} is the association LN or SN, which is "
                            "generated")
        return None
    before = len(chk.problems)
    base_name = chk.field(spec, "base_name", path,
                          lambda node, where: _base_name(node, where, cls))
    sources = _sources(cls, spec, path, chk, obis)
    if len(chk.problems) > before or path in chk.dirty:
        return None
    return CosemObject(cls, obis, spec.get("name", ""), MappingProxyType(
        {k: v for k, v in sources.items() if v is not None}), base_name)


def _base_name(node: object, path: str, cls: InterfaceClass) -> int:
    """An SN base_name: an integer, or a hex string ("0x2000"), a multiple of 8, with
    room for the class's attributes and methods below 0x10000."""
    value: int | None = None
    if isinstance(node, int) and not isinstance(node, bool):
        value = node
    elif isinstance(node, str) and re.fullmatch(r"0[xX][0-9a-fA-F]{1,4}", node.strip()):
        value = int(node.strip(), 16)
    if value is None:
        raise _Invalid(path, f"{show_json(node)} is not a short name (an integer or \"0x2000\")")
    span = short_name_span(cls)
    if not 0 <= value <= _SHORT_NAME_END - span or value % ATTRIBUTE_STEP:
        raise _Invalid(path, f"{show_json(node)} is not a multiple of 8 from 0 to "
                             f"0x{_SHORT_NAME_END - span:04X} (a {cls.name} takes "
                             f"0x{span:X} short names)")
    return value


def _arcs(values: tuple[int, ...]) -> Data:
    """An OID as the association shows it: structure of unsigned (long-unsigned > 255)."""
    return Data.structure(*(Data.uint16(a) if a > 255 else Data.uint8(a) for a in values))


def _association(objects: list[CosemObject]) -> CosemObject:
    name = "Current association (LN)"
    sources: dict[int, _Source] = {
        2: _Fixed(Data.null()),  # replaced below by the object_list
        3: _Partners(),
        4: _ContextName(),
        5: _ContextInfo(),
        6: _MechanismName(),
        # 7 secret: no access
        8: _Fixed(Data.enum(_ASSOCIATED)),
        9: _Fixed(Data.octets(bytes(6))),  # there is no security setup object
    }
    # The object_list lists the association itself first; its access rights come
    # from the source table above.
    itself = CosemObject(ASSOCIATION_LN, ASSOCIATION_LN_NAME, name, sources)
    sources[2] = _ByLive(
        Data.array(*(o.object_list_element() for o in [itself, *objects])),
        Data.array(*(o.object_list_element(live=True) for o in [itself, *objects])))
    return CosemObject(ASSOCIATION_LN, ASSOCIATION_LN_NAME, name, MappingProxyType(sources))


def _association_sn(placed: tuple[tuple[int, CosemObject], ...]) -> CosemObject:
    name = "Current association (SN)"
    sources: dict[int, _Source] = {
        2: _Fixed(Data.null()),  # replaced below by the object_list
        3: _Fixed(Data.null()),  # and the access_rights_list
        4: _Fixed(Data.octets(bytes(6))),  # there is no security setup object
    }
    # The object_list lists the association itself first (Blue Book 4.4.4).
    itself = CosemObject(ASSOCIATION_SN, ASSOCIATION_LN_NAME, name, sources,
                         ASSOCIATION_SN_BASE_NAME)
    listed = ((ASSOCIATION_SN_BASE_NAME, itself), *placed)
    sources[2] = _Fixed(Data.array(*(o.sn_object_list_element(b) for b, o in listed)))
    sources[3] = _ByLive(Data.array(*(o.sn_access_right(b) for b, o in listed)),
                         Data.array(*(o.sn_access_right(b, live=True) for b, o in listed)))
    return CosemObject(ASSOCIATION_SN, ASSOCIATION_LN_NAME, name, MappingProxyType(sources),
                       ASSOCIATION_SN_BASE_NAME)


def _obis(spec: Mapping[str, Any], path: str, chk: _Checker) -> Obis | None:
    return chk.field(spec, "obis", path, _parse_obis)


def _parse_obis(text: str, path: str) -> Obis:
    try:
        return Obis.parse(text)
    except ValueError as exc:
        raise _Invalid(path, str(exc)) from None


def _dirty(found: list[tuple[SchemaPath, str]]) -> frozenset[str]:
    """The JSON paths at or above each schema problem."""
    return frozenset(json_path(parts[:n], "$") for parts, _ in found
                     for n in range(len(parts) + 1))


_OBJECT_INDEX: Final = re.compile(r"^\$\.objects\[(\d+)\]")


def _object_order(problem: str) -> int:
    match = _OBJECT_INDEX.match(problem)
    return int(match.group(1)) if match else -1


def parse_model(doc: object, source: str = "<model>") -> MeterModel:
    """Validate a decoded model document; :class:`ConfigError` lists every problem,
    each naming its JSON path, the bad value and what is allowed."""
    found = schema_problems(_VALIDATOR, doc, root="$")
    chk = _Checker(_dirty(found))
    objects: list[CosemObject] = []
    top: Mapping[str, Any] = doc if isinstance(doc, dict) else {}
    nodes = top.get("objects")
    paths: list[str] = []
    seen: dict[Obis, str] = {}
    deferred: list[tuple[int, Mapping[str, Any], str, Obis | None]] = []
    for i, node in enumerate(nodes if isinstance(nodes, list) else []):
        path = f"$.objects[{i}]"
        if not isinstance(node, dict):
            continue
        obis = _obis(node, path, chk)
        if obis is not None and obis in seen:
            chk.problems.append(f"{path}.obis: {obis} is already used by {seen[obis]}")
            continue
        if obis is not None:
            seen[obis] = path
        if _class_of(node.get("class")) is PROFILE_GENERIC:
            deferred.append((len(objects), node, path, obis))
            continue
        obj = _parse_object(node, path, obis, chk)
        if obj is not None:
            objects.append(obj)
            paths.append(path)
    # Profiles capture other objects' attributes: they are parsed once all others are.
    by_name = {o.logical_name: o for o in objects}
    inserted = 0
    for index, node, path, obis in deferred:
        obj = _parse_profile(node, path, obis, chk, by_name)
        if obj is not None:
            objects.insert(index + inserted, obj)
            paths.insert(index + inserted, path)
            inserted += 1
    chk.problems += _place_short_names(tuple(objects), paths)[1]
    # Grouped by object (the schema's first within each), in document order.
    problems = sorted([message for _, message in found] + chk.problems, key=_object_order)
    if problems:
        count = len(problems)
        raise ConfigError(f"{source}: {count} problem{'s' if count > 1 else ''} in the model",
                          [f"{source}: {p}" for p in problems])
    return MeterModel(top.get("name", "dlms-sim meter"), top.get("seed", 0),
                      (_association(objects), *objects), source)
