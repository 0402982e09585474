"""What ``dlmsctl discover`` and ``dlmsctl probe`` decide, without I/O (pure).

* :class:`Discover`: a meter reader job (:mod:`dlmsd.protocol.reader`) that reads the
  association's object list, then attribute 2 of every readable object, every
  scaler_unit and, for a logical device, the SAP assignment (0.0.41.0.0.255), in as
  few requests as the meter allows; it returns a :class:`Discovery`.
* :func:`parse_objects`: the object list with what the daemon's own parser leaves out
  (the version and the access rights of each attribute and method).
* :func:`generate_config`: a configuration with the device and one signal per
  register, extended register, demand register and numeric data object (every
  readable object with ``include_all``), with generated aliases and names.
* :func:`probe_plan`: the combinations ``dlmsctl probe`` tries, in order.

Blue Book (DLMS UA 1000-1 Ed. 14) 4.4.3 (Association LN: object_list and its
access_rights), 4.4.4 (Association SN), 4.4.5 (SAP assignment), 4.3 (registers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from dlmsd.errors import DataAccessError, DecodeError
from dlmsd.protocol.axdr import Data, DataType
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.obis_names import class_name, obis_name
from dlmsd.protocol.reader import Fetch, JobContext, JobRun
from dlmsd.protocol.sn import attribute_short_name
from dlmsd.protocol.units import unit_symbol
from dlmsd.protocol.values import (
    NUMERIC_TYPES,
    Value,
    parse_scaler_unit,
    render,
    scale,
    scaler_unit_attribute,
)
from dlmsd.protocol.xdlms import DataAccessResult, GetDataResult

__all__ = [
    "SAP_ASSIGNMENT",
    "Attempt",
    "CosemObject",
    "Discover",
    "Discovery",
    "ObjectValue",
    "access_text",
    "generate_config",
    "parse_objects",
    "parse_sap_assignment",
    "probe_plan",
]

SAP_ASSIGNMENT: Final = Obis(0, 0, 41, 0, 0, 255)
_SAP_CLASS: Final = 17
_ASSOCIATION_CLASSES: Final = frozenset({12, 15})  # attribute 2 is the object list itself
_PROFILE_CLASS: Final = 7  # buffer: read by profiles, not here
#: What discover publishes as a signal by default (every object with include_all).
_REGISTER_CLASSES: Final = frozenset({3, 4, 5})
_DATA_CLASS: Final = 1

#: Attribute access_mode (Blue Book 4.4.3): short form for the table.
_ATTRIBUTE_ACCESS: Final[dict[int, str]] = {0: "-", 1: "r", 2: "w", 3: "rw", 4: "ar",
                                            5: "aw", 6: "arw"}
_READABLE: Final = frozenset({1, 3, 4, 6})
#: Method access_mode: 0 no-access, 1 access, 2 authenticated-access (a boolean in
#: version 0 of Association LN).
_METHOD_ACCESS: Final[dict[int, str]] = {0: "-", 1: "x", 2: "ax"}


@dataclass(frozen=True)
class CosemObject:
    """One element of the object list. ``attributes`` and ``methods`` are (id, access
    mode) pairs; for SN (no access rights in the list) both are empty."""

    obis: Obis
    class_id: int
    version: int
    attributes: tuple[tuple[int, int], ...] = ()
    methods: tuple[tuple[int, int], ...] = ()
    base_name: int = 0

    def readable(self, attribute: int) -> bool | None:
        """Whether the list lets this association read ``attribute`` (None: it does
        not say)."""
        if not self.attributes:
            return None
        modes = dict(self.attributes)
        return modes.get(attribute) in _READABLE if attribute in modes else None


def access_text(obj: CosemObject) -> str:
    """``1:r 2:rw 3:r m1:x``; ``?`` when the list has no access rights (SN)."""
    if not obj.attributes and not obj.methods:
        return "?"
    parts = [f"{a}:{_ATTRIBUTE_ACCESS.get(m, str(m))}" for a, m in obj.attributes]
    parts += [f"m{a}:{_METHOD_ACCESS.get(m, str(m))}" for a, m in obj.methods]
    return " ".join(parts)


def _int(data: Data, what: str) -> int:
    value = data.value
    if isinstance(value, bool):  # method access_mode of version 0 associations
        return int(value)
    if not isinstance(value, int):
        raise DecodeError(f"{what}: expected an integer, got {data.type.label}")
    return value


def _items(data: Data, what: str) -> tuple[Data, ...]:
    if data.type not in (DataType.ARRAY, DataType.STRUCTURE) or not isinstance(
            data.value, tuple):
        raise DecodeError(f"{what}: expected an array or structure, got {data.type.label}")
    return data.value


def _access_items(data: Data, what: str) -> tuple[tuple[int, int], ...]:
    """attribute_access_descriptor / method_access_descriptor: array of structure
    {id integer, access_mode enum (boolean for methods in version 0), ...}."""
    if data.type is DataType.NULL_DATA:
        return ()
    pairs = []
    for index, item in enumerate(_items(data, what)):
        fields = _items(item, f"{what}[{index}]")
        if len(fields) < 2:
            raise DecodeError(f"{what}[{index}]: expected structure{{id, access_mode, ...}}")
        pairs.append((_int(fields[0], f"{what}[{index}].id"),
                      _int(fields[1], f"{what}[{index}].access_mode")))
    return tuple(pairs)


def parse_objects(value: Data, *, short_names: bool) -> list[CosemObject]:
    """The object list of Association LN (``short_names`` False: structure {class_id,
    version, logical_name, access_rights {attribute_access, method_access}}) or SN
    (structure {base_name, class_id, version, logical_name}), in the meter's order; a
    repeated logical name keeps its first element, as the daemon's parser does."""
    seen: set[Obis] = set()
    objects: list[CosemObject] = []
    for index, item in enumerate(_items(value, "object_list")):
        at = f"object_list[{index}]"
        fields = _items(item, at)
        if len(fields) < (4 if short_names else 3):
            raise DecodeError(f"{at}: too few fields ({len(fields)})")
        if short_names:
            base, class_id, version = (_int(f, at) for f in fields[:3])
            name = fields[3].value
            attributes: tuple[tuple[int, int], ...] = ()
            methods: tuple[tuple[int, int], ...] = ()
        else:
            class_id, version = _int(fields[0], f"{at}.class_id"), _int(fields[1], at)
            name, base = fields[2].value, 0
            attributes = methods = ()
            if len(fields) > 3 and fields[3].type is DataType.STRUCTURE:
                rights = _items(fields[3], f"{at}.access_rights")
                if rights:
                    attributes = _access_items(rights[0], f"{at}.attribute_access")
                if len(rights) > 1:
                    methods = _access_items(rights[1], f"{at}.method_access")
        if not isinstance(name, bytes) or len(name) != 6:
            raise DecodeError(f"{at}: logical_name is not an octet-string of 6")
        obis = Obis.from_bytes(name)
        if obis in seen:
            continue
        seen.add(obis)
        objects.append(CosemObject(obis, class_id, version, attributes, methods,
                                   base & 0xFFFF))
    return objects


def parse_sap_assignment(value: Data) -> list[tuple[int, str]]:
    """SAP_assignment_list (Blue Book 4.4.5): array of structure {SAP long-unsigned,
    logical_device_name octet-string} -> [(SAP, name)]."""
    out = []
    for index, item in enumerate(_items(value, "SAP_assignment_list")):
        fields = _items(item, f"SAP_assignment_list[{index}]")
        if len(fields) != 2 or not isinstance(fields[1].value, bytes | str):
            raise DecodeError(f"SAP_assignment_list[{index}]: expected structure{{SAP, "
                              "logical_device_name}}")
        name = fields[1].value
        text = name.decode("latin-1") if isinstance(name, bytes) else name
        out.append((_int(fields[0], f"SAP_assignment_list[{index}].SAP"), text))
    return out


@dataclass(frozen=True)
class ObjectValue:
    """One object of the list with what was read of it."""

    obj: CosemObject
    value: Value = None
    unit: str = ""
    #: why attribute 2 was not read (read False), or what is wrong with the value read
    #: (a register whose scaler_unit failed: the raw value is shown)
    error: str | None = None
    numeric: bool = False  # attribute 2 is a number (a register's value or a data object's)
    read: bool = False  # attribute 2 was read

    @property
    def name(self) -> str:
        return obis_name(self.obj.obis)


@dataclass(frozen=True)
class Discovery:
    objects: tuple[ObjectValue, ...]
    sap_assignment: tuple[tuple[int, str], ...] = ()
    #: why the SAP assignment is missing, when it is
    sap_error: str | None = None


@dataclass(frozen=True)
class Discover:
    """The job (see the module text). ``short_names``: the association is SN."""

    short_names: bool = False

    def run(self, context: JobContext) -> JobRun[Discovery]:
        client = context.client
        target = client.object_list_target()
        raw = (yield Fetch((target,)))[0]
        if isinstance(raw, DataAccessResult):
            raise DataAccessError(f"cannot read the object list ({client.name_of(target)}): "
                                  f"{raw.describe()}; {client.OBJECT_LIST_HINT}", int(raw))
        objects = parse_objects(raw, short_names=self.short_names)
        directory = client.parse_object_list(raw)
        values: dict[Obis, tuple[int, Any]] = {}  # obis -> (index in targets, ...)
        targets: list[Any] = []
        skipped: dict[Obis, str] = {}
        scaler_at: dict[Obis, int] = {}
        for obj in objects:
            why = _not_read(obj)
            if why is not None:
                skipped[obj.obis] = why
                continue
            outcome = client.target(obj.obis, 2, obj.class_id, 0, directory)
            if isinstance(outcome, str):
                skipped[obj.obis] = outcome
                continue
            values[obj.obis] = (len(targets), outcome[1])
            targets.append(outcome[1])
            su = scaler_unit_attribute(obj.class_id, 2)
            if su is not None:
                scaler_at[obj.obis] = len(targets)
                targets.append(client.sibling(outcome[1], 2, su))
        results: list[GetDataResult] = (yield Fetch(tuple(targets))) if targets else []
        out = []
        sap: tuple[tuple[int, str], ...] = ()
        sap_error: str | None = "the meter has no SAP assignment object (0.0.41.0.0.255)"
        for obj in objects:
            if obj.obis in skipped:
                out.append(ObjectValue(obj, error=skipped[obj.obis]))
                continue
            index = values[obj.obis][0]
            got = results[index]
            scaler = results[scaler_at[obj.obis]] if obj.obis in scaler_at else None
            item = _value_of(obj, got, scaler)
            out.append(item)
            if obj.obis == SAP_ASSIGNMENT and obj.class_id == _SAP_CLASS:
                if isinstance(got, DataAccessResult):
                    sap_error = f"SAP assignment: {got.describe()}"
                else:
                    try:
                        sap, sap_error = tuple(parse_sap_assignment(got)), None
                    except DecodeError as exc:
                        sap_error = f"SAP assignment: {exc}"
        return Discovery(tuple(out), sap, sap_error)


def _not_read(obj: CosemObject) -> str | None:
    """Why attribute 2 of ``obj`` is not read, or None."""
    if obj.class_id in _ASSOCIATION_CLASSES:
        return "the object list (read above)"
    if obj.class_id == _PROFILE_CLASS:
        return "a profile: its buffer is not read here"
    if obj.readable(2) is False:
        return "attribute 2 is not readable in this association"
    return None


def _value_of(obj: CosemObject, got: GetDataResult, scaler: GetDataResult | None
              ) -> ObjectValue:
    if isinstance(got, DataAccessResult):
        return ObjectValue(obj, error=got.describe())
    numeric = got.type in NUMERIC_TYPES and got.type is not DataType.BOOLEAN
    if scaler is None:
        return ObjectValue(obj, render(got, obj.class_id, 2), numeric=numeric, read=True)
    if isinstance(scaler, DataAccessResult):
        return ObjectValue(obj, render(got, obj.class_id, 2),
                           error=f"scaler_unit: {scaler.describe()}", numeric=numeric,
                           read=True)
    try:
        factor, unit = parse_scaler_unit(scaler)
        value: Decimal = scale(got, factor)
    except DecodeError as exc:
        return ObjectValue(obj, render(got, obj.class_id, 2), error=str(exc), numeric=numeric,
                           read=True)
    return ObjectValue(obj, value, unit_symbol(unit), numeric=True, read=True)


# ------------------------------------------------------------------ configuration


def _slug(text: str) -> str:
    text = re.sub(r"-(?=[A-Za-z])", "minus ", text.replace("+", "plus ").replace("|", " "))
    text = text.lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def signal_objects(discovery: Discovery, *, include_all: bool) -> list[ObjectValue]:
    """The objects that become signals: registers and numeric data objects that read
    without error; with ``include_all`` every object whose attribute 2 was read."""
    chosen = []
    for item in discovery.objects:
        if not item.read or item.error is not None:
            continue
        cls = item.obj.class_id
        if include_all or cls in _REGISTER_CLASSES or (cls == _DATA_CLASS and item.numeric):
            chosen.append(item)
    return chosen


def generate_config(device: Mapping[str, Any], discovery: Discovery, *,
                    include_all: bool = False) -> dict[str, Any]:
    """A whole configuration: ``device`` (its keys as in a configuration file) and one
    signal per chosen object (:func:`signal_objects`), each with its class_id, so the
    daemon does not read the object list to find it; aliases are
    ``<device_alias>_<name>`` (the standard name, or the OBIS code), unique."""
    alias = str(device["device_alias"])
    signals: list[dict[str, Any]] = []
    used: set[str] = set()
    for item in signal_objects(discovery, include_all=include_all):
        obj = item.obj
        dotted = str(obj.obis)
        name = item.name
        base = f"{alias}_{_slug(name) if name else 'obis_' + dotted.replace('.', '_')}"
        signal_alias, n = base, 2
        while signal_alias in used:
            signal_alias, n = f"{base}_{n}", n + 1
        used.add(signal_alias)
        entry: dict[str, Any] = {
            "signal_name": name or f"{class_name(obj.class_id)} {dotted}",
            "device_alias": alias, "signal_alias": signal_alias,
            "obis": dotted, "class_id": obj.class_id}
        if obj.base_name:
            entry["address"] = attribute_short_name(obj.base_name, 2)
        signals.append(entry)
    return {"devices": [dict(device)], "signals": signals}


# ------------------------------------------------------------------ probe


@dataclass(frozen=True)
class Attempt:
    """One combination: device keys as in a configuration (mode, client and server
    addresses)."""

    settings: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        s = self.settings
        mode = s["mode"]
        if mode == "DLMS-WRAPPER":
            server = f"wPort {s['logical_address']}"
        elif s.get("serial_number"):
            server = f"serial-number address (SN {s['serial_number']}, 4 bytes)"
        elif s["address_size"] == 1:
            server = f"server {s['physical_address']} (1 byte)"
        else:
            server = (f"server logical {s['logical_address']} physical "
                      f"{s['physical_address']} ({s['address_size']} bytes)")
        return f"{mode} client {s['client_address']} {server}"


#: The usual combinations (IEC 62056-46 6.4.2; the public client 16, the management
#: client 1 and 32, often the reading client; the management logical device 1, or 0;
#: physical addresses 1, 16 and 17, common defaults of meters).
PROBE_CLIENTS: Final = (16, 1, 32)
PROBE_LOGICAL: Final = (0, 1)
PROBE_PHYSICAL: Final = (1, 16, 17)
PROBE_SIZES: Final = (1, 2, 4)


def _hdlc_addresses(serial_number: int) -> list[dict[str, int]]:
    """Server addresses: the serial-number one first (when given), then 1-byte (the
    one octet is the address itself: 1, 16, 17), 2 and 4 bytes (logical 0 and 1 with
    physical 1, 16, 17)."""
    out: list[dict[str, int]] = []
    if serial_number:
        out.append({"serial_number": serial_number, "logical_address": 1,
                    "physical_address": 0, "address_size": 4})
    for size in PROBE_SIZES:
        if size == 1:
            out += [{"logical_address": 0, "physical_address": p, "address_size": 1}
                    for p in PROBE_PHYSICAL]
            continue
        out += [{"logical_address": logical, "physical_address": p, "address_size": size}
                for logical in PROBE_LOGICAL for p in PROBE_PHYSICAL]
    return out


def probe_plan(*, tcp: bool, serial_number: int = 0, modes: Iterable[str] | None = None,
               clients: Iterable[int] = PROBE_CLIENTS) -> list[Attempt]:
    """Every combination to try, in order: over TCP the wrapper (wPort 1) and HDLC;
    on a serial line IEC 62056-21 mode E (300 Bd, then HDLC) and HDLC.  For each mode
    each client, and for HDLC each server address (:func:`_hdlc_addresses`)."""
    allowed = ("DLMS-WRAPPER", "DLMS-HDLC") if tcp else ("IEC", "DLMS-HDLC")
    chosen = list(allowed) if modes is None else [m for m in allowed if m in set(modes)]
    attempts: list[Attempt] = []
    for mode in chosen:
        for client in clients:
            if mode == "DLMS-WRAPPER":
                attempts.append(Attempt({"mode": mode, "client_address": client,
                                         "logical_address": 1}))
                continue
            attempts += [Attempt({"mode": mode, "client_address": client, **address})
                         for address in _hdlc_addresses(serial_number)]
    return attempts
