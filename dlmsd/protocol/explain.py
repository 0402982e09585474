"""Explain DLMS/COSEM bytes field by field, as a tree (pure, sans-I/O).

This module owns what ``dlmsctl decode`` shows: it takes the octets of HDLC frames
(IEC 62056-46), wrapper frames (IEC 62056-47), bare APDUs (Green Book, DLMS UA 1000-2,
9.3 ACSE and 9.5 xDLMS ASN.1) or bare A-XDR ``Data`` (IEC 62056-6-2) and returns a
:class:`Node` tree in which every field is named and carries its own raw octets.  It
reuses the codecs of :mod:`dlmsd.protocol` for the meaning (HDLC addresses, control
and parameters, the wrapper header, deciphering, A-XDR values, OBIS, units, enums)
and walks the octets itself only to know where each field starts.

:class:`Explainer` keeps what a sequence of frames needs: HDLC segments and
general-block-transfer blocks are reassembled per (device, direction), system titles
seen in an AARQ/AARE are remembered to decipher the APDUs that follow, and a dedicated
key seen in a deciphered InitiateRequest is used (never shown).

Bad input never raises out of :meth:`Explainer.explain`: the tree built so far is
returned with an ``error`` node naming the offset and what was expected there.
Keys, passwords and dedicated keys never appear in a node.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from dlmsd.errors import DecodeError, DlmsdError
from dlmsd.protocol import security
from dlmsd.protocol.acse import (
    AcseServiceProvider,
    AcseServiceUser,
    ApplicationContextName,
    AssociationResult,
    MechanismName,
    ReleaseRequestReason,
    ReleaseResponseReason,
)
from dlmsd.protocol.axdr import (
    MAX_DEPTH,
    Data,
    DataType,
    DateTime,
    decode_data,
    decode_length,
    encode_length,
)
from dlmsd.protocol.hdlc_frame import (
    LLC_COMMAND,
    LLC_RESPONSE,
    Control,
    FrameType,
    HdlcAddress,
    HdlcParameters,
    crc16_x25,
)
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.push import GbtReassembler, GeneralBlockTransfer
from dlmsd.protocol.units import UNITS
from dlmsd.protocol.values import CLOCK_CLASS, render
from dlmsd.protocol.wrapper import WrapperHeader
from dlmsd.protocol.xdlms import (
    ActionResult,
    ConfirmedServiceError,
    ConfirmedServiceErrorChoice,
    Conformance,
    DataAccessResult,
    ExceptionServiceError,
    ServiceErrorType,
    StateError,
)
from dlmsd.secret import Secret

__all__ = [
    "CLASS_NAMES",
    "KINDS",
    "MAX_INPUT",
    "Explainer",
    "Keys",
    "Node",
    "render_text",
]

#: Most octets one call explains (a large load profile fits many times over).
MAX_INPUT: Final = 4 << 20
#: What the input may be taken as (``auto`` guesses from the first octets).
KINDS: Final = ("auto", "hdlc", "wrapper", "apdu", "data")
#: Octets of raw data shown on one line before the rest is elided.
_RAW_SHOWN: Final = 32

#: COSEM interface classes by class_id (Blue Book, DLMS UA 1000-1 Ed. 14, 4.1.3 list of
#: interface classes).
CLASS_NAMES: Final[dict[int, str]] = {
    1: "Data", 3: "Register", 4: "Extended register", 5: "Demand register",
    6: "Register activation", 7: "Profile generic", 8: "Clock", 9: "Script table",
    10: "Schedule", 11: "Special days table", 12: "Association SN", 15: "Association LN",
    17: "SAP assignment", 18: "Image transfer", 19: "IEC local port setup",
    20: "Activity calendar", 21: "Register monitor", 22: "Single action schedule",
    23: "IEC HDLC setup", 24: "IEC twisted pair (1) setup", 25: "M-Bus port setup",
    26: "Utility tables", 27: "Modem configuration", 28: "Auto answer", 29: "Auto connect",
    30: "COSEM data protection", 40: "Push setup", 41: "TCP-UDP setup", 42: "IPv4 setup",
    43: "MAC address setup", 44: "PPP setup", 45: "GPRS modem setup", 46: "SMTP setup",
    47: "GSM diagnostic", 48: "IPv6 setup", 61: "Register table", 62: "Compact data",
    63: "Status mapping", 64: "Security setup", 65: "Parameter monitor",
    67: "Sensor manager", 68: "Arbitrator", 70: "Disconnect control", 71: "Limiter",
    72: "M-Bus client", 73: "Wireless mode Q channel", 74: "M-Bus master port setup",
    90: "G3-PLC MAC layer counters", 101: "ZigBee SAS startup", 111: "Account",
    112: "Credit", 113: "Charge", 115: "Token gateway", 122: "Function control",
    123: "Array manager", 124: "Communication port protection",
}

_LN_VAA: Final = 0x0007  # vaa-name of an LN association (Green Book, InitiateResponse)
_ST_SIZE: Final = security.SYSTEM_TITLE_SIZE


# =========================================================================== the tree
@dataclass
class Node:
    """One part of the input: its name, meaning, raw octets and parts.

    ``raw`` is the octets that belong to this node itself (for a container, its tag and
    length; its parts carry the rest); ``offset`` is where they start in ``context``.
    """

    name: str
    value: str = ""
    raw: bytes = b""
    offset: int | None = None
    note: str = ""
    children: list[Node] = field(default_factory=list)
    error: bool = False

    def add(self, child: Node) -> Node:
        self.children.append(child)
        return child

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, name: str) -> Node | None:
        """The first node named ``name`` in this tree (depth first), or None."""
        return next((n for n in self.walk() if n.name == name), None)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name}
        if self.value:
            doc["value"] = self.value
        if self.note:
            doc["note"] = self.note
        if self.raw:
            doc["raw"] = self.raw.hex().upper()
        if self.offset is not None:
            doc["offset"] = self.offset
        if self.error:
            doc["error"] = True
        if self.children:
            doc["children"] = [c.to_json() for c in self.children]
        return doc


def _hex(raw: bytes) -> str:
    if len(raw) <= _RAW_SHOWN:
        return raw.hex(" ").upper()
    return f"{raw[:_RAW_SHOWN].hex(' ').upper()} … ({len(raw)} bytes)"


def render_text(node: Node, indent: int = 0) -> list[str]:
    """The tree as indented lines: ``name: value (note)  [raw]``."""
    line = "  " * indent + node.name
    if node.value:
        line += f": {node.value}"
    if node.note:
        line += f"  ({node.note})"
    if node.raw:
        line += f"  [{_hex(node.raw)}]"
    lines = [line]
    for child in node.children:
        lines += render_text(child, indent + 1)
    return lines


class Bad(Exception):
    """Input that is not what was expected at ``offset`` of ``context``."""

    def __init__(self, context: str, offset: int, expected: str) -> None:
        super().__init__(f"{context}: at offset {offset}: expected {expected}")
        self.context = context
        self.offset = offset
        self.expected = expected


# =========================================================================== keys
@dataclass(frozen=True)
class Keys:
    """What deciphering needs; held as :class:`Secret`, never shown.

    ``system_titles`` are the senders' (client and/or meter) system titles to try; those
    seen in an AARQ/AARE of the input are tried after them.
    """

    block_cipher_key: Secret | None = field(default=None, repr=False)
    authentication_key: Secret | None = field(default=None, repr=False)
    dedicated_key: Secret | None = field(default=None, repr=False)
    system_titles: tuple[bytes, ...] = ()


# =========================================================================== cursor
class _Cur:
    """A bounded cursor over one part of the input that builds nodes as it reads."""

    def __init__(self, buf: bytes, context: str, end: int | None = None, pos: int = 0) -> None:
        self.buf = buf
        self.context = context
        self.pos = pos
        self.end = len(buf) if end is None else end

    @property
    def left(self) -> int:
        return self.end - self.pos

    def bad(self, expected: str, at: int | None = None) -> Bad:
        return Bad(self.context, self.pos if at is None else at, expected)

    def take(self, n: int, expected: str) -> bytes:
        if n > self.left:
            raise self.bad(f"{expected} ({n} bytes), but {self.left} left")
        raw = self.buf[self.pos:self.pos + n]
        self.pos += n
        return raw

    def peek(self, expected: str) -> int:
        if not self.left:
            raise self.bad(f"{expected}, but the input ends")
        return self.buf[self.pos]

    def leaf(self, parent: Node, name: str, n: int, show: Callable[[bytes], str],
             note: Callable[[bytes], str] | None = None) -> bytes:
        at = self.pos
        raw = self.take(n, name)
        parent.add(Node(name, show(raw), raw, at, note(raw) if note else ""))
        return raw

    def u8(self, parent: Node, name: str, show: Callable[[int], str] = str) -> int:
        raw = self.leaf(parent, name, 1, lambda b: show(b[0]))
        return raw[0]

    def u16(self, parent: Node, name: str, show: Callable[[int], str] = str) -> int:
        raw = self.leaf(parent, name, 2, lambda b: show(int.from_bytes(b, "big")))
        return int.from_bytes(raw, "big")

    def u32(self, parent: Node, name: str, show: Callable[[int], str] = str) -> int:
        raw = self.leaf(parent, name, 4, lambda b: show(int.from_bytes(b, "big")))
        return int.from_bytes(raw, "big")

    def boolean(self, parent: Node, name: str) -> bool:
        return bool(self.u8(parent, name, lambda v: "true" if v else "false"))

    def length(self, parent: Node | None, name: str) -> int:
        at = self.pos
        if not self.left:
            raise self.bad(f"{name}, but the input ends")
        try:
            n, end = decode_length(self.buf, at)
        except DecodeError as exc:
            raise self.bad(f"{name}: {exc}") from None
        if end > self.end:
            raise self.bad(f"{name}, but the part ends")
        self.pos = end
        if parent is not None:
            parent.add(Node(name, str(n), self.buf[at:end], at))
        return n

    def count(self, parent: Node, name: str, min_size: int = 1) -> int:
        at = self.pos
        n = self.length(parent, name)
        if n * min_size > self.left:
            raise self.bad(f"{n} items in {self.left} bytes left", at)
        return n

    def octets(self, parent: Node, name: str, show: Callable[[bytes], str] | None = None,
               note: Callable[[bytes], str] | None = None) -> bytes:
        """An A-XDR OCTET STRING: length, then the octets (one node)."""
        at = self.pos
        n = self.length(None, f"{name} length")
        raw = self.take(n, name)
        text = show(raw) if show else (raw.hex(" ").upper() if raw else "(empty)")
        parent.add(Node(name, text, self.buf[at:self.pos], at, note(raw) if note else ""))
        return raw

    def optional(self, parent: Node, name: str) -> bool:
        flag = self.peek(f"{name} presence flag (00 or 01)")
        if flag > 1:
            raise self.bad(f"{name} presence flag 00 or 01, got {flag:02X}")
        self.pos += 1
        parent.add(Node(f"{name} present", "yes" if flag else "no", bytes((flag,)),
                        self.pos - 1))
        return bool(flag)

    def expect_end(self, parent: Node) -> None:
        if self.left:
            at = self.pos
            raw = self.take(self.left, "trailing")
            parent.add(Node("trailing bytes", f"{len(raw)} bytes after the end", raw, at,
                            error=True))


def _enum(cls: Any) -> Callable[[int], str]:
    def show(value: int) -> str:
        try:
            return f"{cls(value).label} ({value})"
        except ValueError:
            return f"unknown ({value})"
    return show


def _named_choice(names: dict[int, str]) -> Callable[[int], str]:
    def show(value: int) -> str:
        return f"{names.get(value, 'unknown')} ({value})"
    return show


def _iid(value: int) -> str:
    service = "confirmed" if value & 0x40 else "unconfirmed"
    priority = "high" if value & 0x80 else "normal"
    return f"invoke-id {value & 0x0F}, {service}, priority {priority} (0x{value:02X})"


def _long_iid(value: int) -> str:
    parts = [f"long-invoke-id {value & 0xFFFFFF}",
             "confirmed" if value & (1 << 30) else "unconfirmed",
             "priority high" if value & (1 << 31) else "priority normal"]
    if value & (1 << 29):
        parts.append("break on error")
    if value & (1 << 28):
        parts.append("self-descriptive")
    return ", ".join(parts) + f" (0x{value:08X})"


def _printable(raw: bytes) -> bool:
    return bool(raw) and all(0x20 <= b < 0x7F for b in raw)


def _date_time_text(raw: bytes) -> str | None:
    """ISO text of 12 octets that are a plausible COSEM date-time, else None."""
    if len(raw) != 12 or not (
            (1 <= raw[2] <= 12 or raw[2] >= 0xFD) and (1 <= raw[3] <= 31 or raw[3] >= 0xFD)
            and (raw[5] < 24 or raw[5] == 0xFF) and (raw[6] < 60 or raw[6] == 0xFF)):
        return None  # cheaply ruled out before the full check
    text = render(Data.octets(raw), CLOCK_CLASS, 2)
    return text if isinstance(text, str) and text != raw.hex().upper() else None


def _octet_note(raw: bytes) -> str:
    """What an octet-string inside data holds: an OBIS code, a date-time, text."""
    if len(raw) == 6 and not _printable(raw):
        return f"OBIS {Obis.from_bytes(raw)}"
    stamp = _date_time_text(raw)
    if stamp is not None:
        return f"date-time {stamp}"
    if _printable(raw):
        return f"text {raw.decode('ascii')!r}"
    return ""


def _obis_show(raw: bytes) -> str:
    return str(Obis.from_bytes(raw))


# =========================================================================== A-XDR data
_DATA_TYPES: Final = {int(t): t for t in DataType}
_DATA_LABELS: Final = {t: t.label for t in DataType}

def _data_value(d: Data) -> str:
    v = d.value
    if d.type is DataType.NULL_DATA:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, bytes):
        return _hex(v) if v else "(empty)"
    if isinstance(v, str):
        if len(v) <= 2 * _RAW_SHOWN:
            return repr(v)
        return f"{v[:2 * _RAW_SHOWN]!r}… ({len(v)} characters)"
    if isinstance(v, DateTime):
        return v.isoformat()
    if isinstance(v, tuple):
        return f"{len(v)} elements"
    return str(v)


def _data(c: _Cur, parent: Node, name: str, depth: int = 0, in_array: bool = False
          ) -> Data | None:
    """One A-XDR Data at the cursor: a node per value, containers with their parts.

    Returns the value for the small leaves callers interpret (None for containers).
    """
    at = c.pos
    if at >= c.end:
        raise c.bad(f"{name}: a Data tag, but the input ends")
    tag = c.buf[at]
    kind = _DATA_TYPES.get(tag)
    if kind is None:
        raise c.bad(f"{name}: a Data tag, got 0x{tag:02X}")
    label = _DATA_LABELS[kind]
    if kind in (DataType.ARRAY, DataType.STRUCTURE):
        if depth >= MAX_DEPTH:
            raise c.bad(f"{name}: data nested at most {MAX_DEPTH} deep")
        c.pos += 1
        n = c.length(None, f"{label} element count")
        if n > c.left:
            raise c.bad(f"{n} elements of the {label}, but {c.left} bytes left", at)
        node = parent.add(Node(name, f"{label}, {n} elements", c.buf[at:c.pos], at))
        items = [_data(c, node, f"[{i}]", depth + 1, kind is DataType.ARRAY)
                 for i in range(n)]
        # An array of {integer, enum} is a list of method access rights, not scalers.
        if kind is DataType.STRUCTURE and n == 2 and not in_array:
            node.note = _scaler_unit_note(items)
        elif kind is DataType.STRUCTURE:
            node.note = _object_note(items)
        return None
    try:
        # The whole buffer (no copy per value); a value past this part's end is bad.
        value, end = decode_data(c.buf, at)
    except DecodeError as exc:
        raise c.bad(f"{name}: a valid {label} ({exc})") from None
    if end > c.end:
        raise c.bad(f"{name}: a {label} within the {c.end - at} bytes left")
    raw = c.buf[at:end]
    c.pos = end
    node = parent.add(Node(name, f"{label} {_data_value(value)}".rstrip(), raw, at))
    if kind is DataType.COMPACT_ARRAY:
        node.value = f"compact-array, {len(value.as_items())} elements"
        for i, item in enumerate(value.as_items()):
            node.add(Node(f"[{i}]", f"{item.type.label} {_data_value(item)}"))
    elif isinstance(value.value, bytes):
        node.note = _octet_note(value.value)
    return value


def _object_note(items: list[Data | None]) -> str:
    """A structure naming a COSEM object (an object list entry, a capture object):
    a long-unsigned class_id and a 6-octet logical name."""
    class_id = next((d.as_int() for d in items if d is not None
                     and d.type is DataType.LONG_UNSIGNED and d.as_int() in CLASS_NAMES), None)
    name = next((d.as_bytes() for d in items if d is not None
                 and d.type is DataType.OCTET_STRING and len(d.as_bytes()) == 6), None)
    if class_id is None or name is None:
        return ""
    return f"{CLASS_NAMES[class_id]} {Obis.from_bytes(name)}"


def _scaler_unit_note(items: list[Data | None]) -> str:
    scaler, unit = items
    if (scaler is None or unit is None or scaler.type is not DataType.INTEGER
            or unit.type is not DataType.ENUM):
        return ""
    known = UNITS.get(unit.as_int())
    if known is None:
        return ""
    return f"scaler_unit: 10^{scaler.as_int()} {known.symbol} ({known.name})"


# =========================================================================== xDLMS parts
def _class_show(value: int) -> str:
    return f"{value} ({CLASS_NAMES.get(value, 'unknown class')})"


def _descriptor(c: _Cur, parent: Node, name: str, member: str) -> tuple[int, bytes, int]:
    at = c.pos
    node = parent.add(Node(name, offset=at))
    class_id = c.u16(node, "class-id", _class_show)
    ln = c.leaf(node, "instance-id", 6, _obis_show)
    index = c.leaf(node, member, 1, lambda b: str(struct.unpack(">b", b)[0]))[0]
    node.value = (f"{CLASS_NAMES.get(class_id, f'class {class_id}')} "
                  f"{Obis.from_bytes(ln)} {member.split('-')[0]} {index}")
    return class_id, ln, index


def _selection(c: _Cur, parent: Node) -> None:
    if c.optional(parent, "access-selection"):
        node = parent.add(Node("access-selection", offset=c.pos))
        c.u8(node, "access-selector")
        _data(c, node, "access-parameters")


def _get_data_result(c: _Cur, parent: Node, name: str) -> None:
    node = parent.add(Node(name, offset=c.pos))
    choice = c.u8(node, "choice", _named_choice({0: "data", 1: "data-access-result"}))
    if choice == 0:
        _data(c, node, "data")
        node.value = "data"
    elif choice == 1:
        dar = c.u8(node, "data-access-result", _enum(DataAccessResult))
        node.value = _enum(DataAccessResult)(dar)
    else:
        raise c.bad("Get-Data-Result choice 00 (data) or 01 (data-access-result)", c.pos - 1)


def _datablock_sa(c: _Cur, parent: Node) -> None:
    node = parent.add(Node("datablock", offset=c.pos))
    c.boolean(node, "last-block")
    c.u32(node, "block-number")
    c.octets(node, "raw-data", lambda b: f"{len(b)} bytes")


def _conformance(c: _Cur, parent: Node) -> None:
    at = c.pos
    head = c.take(4, "conformance header 5F 1F 04 00")
    if head != bytes((0x5F, 0x1F, 0x04, 0x00)):
        raise c.bad(f"conformance header 5F 1F 04 00, got {head.hex(' ').upper()}", at)
    bits = c.take(3, "conformance bits")
    conf = Conformance(int.from_bytes(bits, "big"))
    parent.add(Node("conformance", ", ".join(conf.names()) or "(none)", head + bits, at))


# =========================================================================== explainer
@dataclass
class _Blocks:
    """Per device: the GET/ACTION data blocks of a long answer under way."""

    with_list: bool = False
    parts: list[bytes] = field(default_factory=list)
    size: int = 0


@dataclass
class _Flow:
    """Per (device, direction): HDLC segments and GBT blocks under way."""

    segments: list[bytes] = field(default_factory=list)
    segment_size: int = 0
    gbt: GbtReassembler = field(default_factory=GbtReassembler)


class Explainer:
    """Explains inputs one after the other, keeping what a session carries between
    them (see the module docstring).  ``explain`` returns top-level nodes: the frame
    and, when a frame completes a segmented APDU, the reassembled APDU after it."""

    def __init__(self, keys: Keys | None = None) -> None:
        self.keys = keys or Keys()
        self._titles: list[bytes] = []
        self._dedicated: Secret | None = self.keys.dedicated_key
        self._flows: dict[tuple[str, str], _Flow] = {}
        self._key: tuple[str, str] = ("", "")
        self._device = ""
        self._direction = ""
        self._blocks: dict[str, _Blocks] = {}
        #: The mechanism of the AARQ/AARE being read (a password or a challenge?) and
        #: which release APDU is being read (the reason's enumeration).
        self._mechanism: MechanismName | None = None
        self._release = ""

    # ------------------------------------------------------------------ entry
    def explain(self, data: bytes, *, kind: str = "auto", direction: str = "",
                device: str = "") -> list[Node]:
        """Explain one input; never raises for bad input (see :class:`Node.error`)."""
        self._key = (device, direction)
        self._device = device
        self._direction = direction
        out: list[Node] = []
        if len(data) > MAX_INPUT:
            out.append(Node("error", f"input of {len(data)} bytes exceeds {MAX_INPUT}",
                            error=True))
            return out
        guessed = kind == "auto"
        if guessed:
            kind = self._guess(data)
        if kind == "hdlc":
            self._hdlc_stream(data, out)
        elif kind == "wrapper":
            self._wrapper_stream(data, out)
        elif kind == "data":
            root = Node("A-XDR data", f"{len(data)} bytes")
            out.append(root)
            self._guard(root, self._bare_data, data, root)
        else:
            node = self.apdu(data, "APDU")
            if node.error and guessed:
                # An A-XDR value whose tag is also an APDU tag (0x01 array, 0x0F integer..)
                data_root = Node("A-XDR data", f"{len(data)} bytes",
                                 note=f"not a valid {node.name}")
                if self._guard(data_root, self._bare_data, data, data_root) and not any(
                        n.error for n in data_root.walk()):
                    node = data_root
            out.append(node)
        return out

    @staticmethod
    def _guess(data: bytes) -> str:
        if data[:1] == b"\x7e":
            return "hdlc"
        if len(data) >= 8 and data[:2] == b"\x00\x01":
            (length,) = struct.unpack_from(">H", data, 6)
            if length <= len(data) - 8:
                return "wrapper"
        if data and (data[0] in _APDU_NAMES or security.is_ciphered(data)):
            return "apdu"
        return "data"

    @staticmethod
    def _guard(root: Node, work: Callable[..., None], *args: Any) -> bool:
        try:
            work(*args)
        except Bad as exc:
            root.add(Node("error", str(exc), offset=exc.offset, error=True))
            root.error = True
            return False
        return True

    def _flow(self) -> _Flow:
        return self._flows.setdefault(self._key, _Flow())

    def _bare_data(self, data: bytes, root: Node) -> None:
        c = _Cur(data, "A-XDR data")
        _data(c, root, "data")
        c.expect_end(root)

    # ------------------------------------------------------------------ HDLC
    def _hdlc_stream(self, data: bytes, out: list[Node]) -> None:
        pos = 0
        number = 0
        while pos < len(data):
            if data[pos] == 0x7E and (pos + 1 == len(data) or data[pos + 1] == 0x7E):
                pos += 1  # an inter-frame flag
                continue
            number += 1
            root = Node(f"HDLC frame {number}" if number > 1 or pos else "HDLC frame",
                        offset=pos)
            out.append(root)
            c = _Cur(data, "HDLC input", pos=pos)
            ok = self._guard(root, self._hdlc_frame, c, root, out)
            if not ok:
                return
            pos = c.pos
            if pos < len(data) and data[pos] != 0x7E and data[pos - 1] == 0x7E:
                pos -= 1  # the closing flag opens the next frame as well

    def _hdlc_frame(self, c: _Cur, root: Node, out: list[Node]) -> None:
        start = c.pos
        flag = c.peek("flag 7E")
        if flag != 0x7E:
            raise c.bad(f"flag 7E at the start of an HDLC frame, got {flag:02X}")
        c.leaf(root, "flag", 1, lambda b: "7E")
        fmt_at = c.pos
        fmt = int.from_bytes(c.take(2, "frame format"), "big")
        c.pos = fmt_at
        if fmt >> 12 != 0xA:
            raise c.bad(f"frame format type A (A0..AF), got {fmt >> 8:02X}")
        length = fmt & 0x7FF
        segmented = bool(fmt & 0x800)
        c.leaf(root, "format", 2, lambda b: f"type 3, segmentation {int(segmented)}, "
               f"length {length}")
        if length < 7:
            raise c.bad(f"a frame length of at least 7, got {length}", fmt_at)
        if length + 2 > c.end - start:
            raise c.bad(f"the rest of an HDLC frame of length {length} "
                        f"({length + 2 - (c.end - start)} bytes missing)", fmt_at)
        end = start + 1 + length  # the closing flag
        if c.buf[end] != 0x7E:
            raise c.bad(f"closing flag 7E, got {c.buf[end]:02X}", end)
        fc = _Cur(c.buf, c.context, end=end - 2, pos=c.pos)
        dst = self._address(fc, root, "destination address")
        src = self._address(fc, root, "source address")
        ctrl_at = fc.pos
        raw = fc.take(1, "control field")
        try:
            control = Control.from_byte(raw[0])
        except DecodeError as exc:
            raise c.bad(f"a control field: {exc}", ctrl_at) from None
        root.add(Node("control", str(control), raw, ctrl_at))
        info = b""
        if fc.left:
            hcs_at = fc.pos
            hcs = fc.take(2, "header check sequence")
            expect = crc16_x25(c.buf[start + 1:hcs_at])
            good = int.from_bytes(hcs, "little") == expect
            root.add(Node("HCS", "ok" if good else f"MISMATCH (computed {expect:04X})",
                          hcs, hcs_at, error=not good))
            info_at = fc.pos
            info = fc.take(fc.left, "information")
            info_node = root.add(Node("information", f"{len(info)} bytes", offset=info_at))
        fcs_at = end - 2
        fcs = c.buf[fcs_at:end]
        expect = crc16_x25(c.buf[start + 1:fcs_at])
        good = int.from_bytes(fcs, "little") == expect
        root.add(Node("FCS", "ok" if good else f"MISMATCH (computed {expect:04X})", fcs,
                      fcs_at, error=not good))
        root.add(Node("flag", "7E", b"\x7e", end))
        c.pos = end + 1
        if not self._direction:
            # Direction unknown (bare hex): segments and blocks are kept per sender.
            self._key = (self._device, f"from {src}")
        root.value = (f"{control} seg={int(segmented)} dst={dst} src={src}, "
                      f"{length + 2} bytes")
        if not info:
            return
        if control.type in (FrameType.SNRM, FrameType.UA):
            self._hdlc_parameters(info, info_node)
        elif control.type is FrameType.FRMR:
            info_node.value = f"{len(info)} bytes: rejected frame {info.hex(' ').upper()}"
        elif control.type in (FrameType.I, FrameType.UI):
            self._hdlc_information(info, info_node, segmented, out, root)

    def _address(self, c: _Cur, parent: Node, name: str) -> HdlcAddress:
        at = c.pos
        n = 0
        while True:
            b = c.buf[at + n] if at + n < c.end else None
            if b is None or n >= 4:
                raise c.bad(f"{name}: 1, 2 or 4 octets, the last with bit 0 set", at)
            n += 1
            if b & 1:
                break
        raw = c.take(n, name)
        try:
            address = HdlcAddress.from_bytes(raw)
        except DecodeError as exc:
            raise c.bad(f"{name}: {exc}", at) from None
        text = (f"{address.upper}" if address.lower is None else
                f"upper {address.upper}, lower {address.lower}")
        parent.add(Node(name, f"{text} ({n} byte{'s' if n > 1 else ''})", raw, at))
        return address

    @staticmethod
    def _hdlc_parameters(info: bytes, node: Node) -> None:
        try:
            params = HdlcParameters.from_bytes(info)
        except DlmsdError as exc:
            node.add(Node("error", f"parameter negotiation: {exc}", error=True))
            node.error = True
            return
        node.value = "parameter negotiation"
        node.raw = info[:3]
        c = _Cur(info, "HDLC parameters", pos=3)
        names = {5: "max info field length transmit", 6: "max info field length receive",
                 7: "window size transmit", 8: "window size receive"}
        while c.left >= 2:
            at = c.pos
            ident, size = c.take(2, "parameter")
            raw = c.take(size, "parameter value")
            node.add(Node(names.get(ident, f"parameter 0x{ident:02X}"),
                          str(int.from_bytes(raw, "big")), info[at:c.pos], at))
        node.note = (f"max info tx {params.max_info_tx}, rx {params.max_info_rx}, window tx "
                     f"{params.window_tx}, rx {params.window_rx}")

    def _hdlc_information(self, info: bytes, node: Node, segmented: bool,
                          out: list[Node], frame: Node) -> None:
        flow = self._flow()
        first = not flow.segments
        body = info
        if first:
            llc = info[:3]
            if llc in (LLC_COMMAND, LLC_RESPONSE):
                kind = "command (client to meter)" if llc == LLC_COMMAND else \
                    "response (meter to client)"
                node.add(Node("LLC", kind, llc))
                body = info[3:]
            else:
                node.add(Node("LLC", "missing (expected E6 E6 00 or E6 E7 00); the APDU "
                              "starts at once"))
        if segmented or flow.segments:
            flow.segments.append(body)
            flow.segment_size += len(body)
            if flow.segment_size > MAX_INPUT:
                flow.segments.clear()
                flow.segment_size = 0
                node.add(Node("error", "segments exceed the input bound", error=True))
                return
            node.add(Node("segment", f"{len(flow.segments)} of an APDU, {len(body)} bytes",
                          body))
            if segmented:
                return
            whole = b"".join(flow.segments)
            count = len(flow.segments)
            flow.segments.clear()
            flow.segment_size = 0
            apdu = self.apdu(whole, "APDU")
            apdu.note = f"reassembled from {count} HDLC segments"
            out.append(apdu)
            return
        node.add(self.apdu(body, "APDU"))

    # ------------------------------------------------------------------ wrapper
    def _wrapper_stream(self, data: bytes, out: list[Node]) -> None:
        pos = 0
        number = 0
        while pos < len(data):
            number += 1
            root = Node("wrapper frame" if number == 1 else f"wrapper frame {number}",
                        offset=pos)
            out.append(root)
            c = _Cur(data, "wrapper input", pos=pos)
            if not self._guard(root, self._wrapper_frame, c, root):
                return
            pos = c.pos

    def _wrapper_frame(self, c: _Cur, root: Node) -> None:
        at = c.pos
        head = c.take(8, "wrapper header (version, source wPort, destination wPort, length)")
        try:
            header = WrapperHeader.from_bytes(head)
        except DlmsdError as exc:
            raise c.bad(f"a wrapper header: {exc}", at) from None
        c.pos = at
        c.u16(root, "version")
        c.u16(root, "source wPort")
        c.u16(root, "destination wPort")
        c.u16(root, "length")
        if header.length > c.left:
            raise c.bad(f"{header.length} bytes of APDU, but {c.left} left", at + 6)
        apdu = c.take(header.length, "APDU")
        root.value = (f"wPort {header.source} -> {header.destination}, "
                      f"{header.length} bytes")
        root.add(self.apdu(apdu, "APDU"))

    # ------------------------------------------------------------------ APDU
    def apdu(self, data: bytes, context: str) -> Node:
        """One whole APDU as a node (with an error node inside if it is bad)."""
        root = Node(context, f"{len(data)} bytes")
        if not data:
            root.add(Node("error", f"{context}: empty", error=True))
            root.error = True
            return root
        c = _Cur(data, context)
        self._guard(root, lambda: self._apdu(c, root))
        if root.error:
            return root
        c.expect_end(root)
        return root

    def _apdu(self, c: _Cur, root: Node) -> None:
        tag = c.peek("an APDU tag")
        name = _APDU_NAMES.get(tag) or security.tag_name(tag)
        root.name = name
        if tag in _APDU_NAMES:
            handler = _HANDLERS.get(tag)
            if handler is None:
                c.leaf(root, "tag", 1, lambda b: f"{name} (0x{b[0]:02X})")
                root.add(Node("note", "decoding this APDU is not supported; its bytes:",
                              c.take(c.left, "body")))
                return
            c.leaf(root, "tag", 1, lambda b: f"{name} (0x{b[0]:02X})")
            handler(self, c, root)
        elif security.is_ciphered(bytes((tag,))):
            self._ciphered(c, root)
        else:
            raise c.bad(f"an APDU tag, got 0x{tag:02X}")

    # ACSE ---------------------------------------------------------------
    def _ber(self, c: _Cur, parent: Node, elements: dict[int, str]) -> None:
        length = c.length(parent, "length")
        if length > c.left:
            raise c.bad(f"{length} bytes of content, but {c.left} left", c.pos - 1)
        inner = _Cur(c.buf, c.context, end=c.pos + length, pos=c.pos)
        while inner.left:
            at = inner.pos
            tag = inner.buf[at]
            name = elements.get(tag, f"element 0x{tag:02X}")
            inner.pos += 1
            n = inner.length(None, f"{name} length")
            content = inner.take(n, name)
            node = parent.add(Node(name, raw=inner.buf[at:inner.pos - n], offset=at))
            self._acse_element(tag, name, content, node, inner.pos - n)
        c.pos = inner.pos

    def _acse_element(self, tag: int, name: str, content: bytes, node: Node, at: int) -> None:
        def inner(show: str, raw: bytes = content, offset: int = at) -> None:
            node.add(Node("value", show, raw, offset))
        if name == "application-context-name" or name == "mechanism-name":
            arcs_raw = content[2:] if name == "application-context-name" else content
            last = arcs_raw[-1] if arcs_raw else -1
            if name == "application-context-name":
                try:
                    node.value = ApplicationContextName(last).name.lower().replace("_", "-")
                except ValueError:
                    node.value = f"unknown ({content.hex()})"
            else:
                node.value = _enum(MechanismName)(last)
            inner("OID " + content.hex(" ").upper())
        elif name in ("calling-AP-title", "responding-AP-title", "called-AP-title"):
            title = content[2:] if content[:1] == b"\x04" else content
            node.value = f"system title {title.hex().upper()}"
            if _printable(title[:3]):
                node.note = f"manufacturer {title[:3].decode()}"
            if len(title) == _ST_SIZE and title not in self._titles:
                self._titles.append(bytes(title))
            inner(title.hex(" ").upper())
        elif name in ("calling-authentication-value", "responding-authentication-value"):
            value = content[2:] if len(content) > 2 else b""
            if self._mechanism == MechanismName.LOW or self._mechanism is None:
                node.value = f"password, {len(value)} bytes (not shown)"
                node.raw = b""
            else:
                node.value = f"challenge, {len(value)} bytes"
                inner(value.hex(" ").upper(), content, at)
        elif name in ("sender-acse-requirements", "responder-acse-requirements"):
            node.value = "authentication" if content[-1:] and content[-1] & 0x80 else "none"
            inner(content.hex(" ").upper())
        elif name == "result":
            node.value = _enum(AssociationResult)(content[-1] if content else -1)
            inner(content.hex(" ").upper())
        elif name == "result-source-diagnostic":
            source = content[0] if content else 0
            code = content[-1] if content else 0
            cls = AcseServiceUser if source == 0xA1 else AcseServiceProvider
            node.value = f"{cls(0).source}: {_enum(cls)(code)}"
            inner(content.hex(" ").upper())
        elif name == "protocol-version":
            node.value = content.hex(" ").upper()
        elif name == "reason":
            cls2 = ReleaseRequestReason if self._release == "rlrq" else ReleaseResponseReason
            node.value = _enum(cls2)(content[0] if content else -1)
            inner(content.hex(" ").upper())
        elif name == "user-information":
            if content[:1] != b"\x04":
                node.add(Node("error", "user-information: expected an octet string (04)",
                              error=True))
                return
            c = _Cur(content, "user-information", pos=1)
            n = c.length(node, "octet string length")
            payload = c.take(n, "xDLMS APDU")
            node.add(self.apdu(payload, "xDLMS APDU"))
        else:
            node.value = content.hex(" ").upper()


    def _aarq(self, c: _Cur, root: Node) -> None:
        self._mechanism = self._peek_mechanism(c, 0x8B)
        self._ber(c, root, _AARQ_ELEMENTS)

    def _aare(self, c: _Cur, root: Node) -> None:
        self._mechanism = self._peek_mechanism(c, 0x89)
        self._ber(c, root, _AARE_ELEMENTS)

    def _rlrq(self, c: _Cur, root: Node) -> None:
        self._release = "rlrq"
        self._ber(c, root, _RELEASE_ELEMENTS)

    def _rlre(self, c: _Cur, root: Node) -> None:
        self._release = "rlre"
        self._ber(c, root, _RELEASE_ELEMENTS)

    @staticmethod
    def _peek_mechanism(c: _Cur, tag: int) -> MechanismName | None:
        """The mechanism named in the A-ASSOCIATE APDU (to know a password from a
        challenge before reaching the authentication value)."""
        buf = c.buf
        try:
            length, pos = decode_length(buf, c.pos)
        except DecodeError:
            return None
        end = min(pos + length, len(buf))
        while pos + 2 <= end:
            t = buf[pos]
            try:
                n, body = decode_length(buf, pos + 1)
            except DecodeError:
                return None
            if t == tag and n:
                try:
                    return MechanismName(buf[body + n - 1])
                except ValueError:
                    return None
            pos = body + n
        return None

    # xDLMS initiate ------------------------------------------------------
    def _initiate_request(self, c: _Cur, root: Node) -> None:
        if c.optional(root, "dedicated-key"):
            at = c.pos
            n = c.length(None, "dedicated-key length")
            key = c.take(n, "dedicated-key")
            self._dedicated = Secret(key)
            root.add(Node("dedicated-key", f"{n} bytes (not shown; used to decipher what "
                          "follows)", offset=at))
        if c.optional(root, "response-allowed"):
            c.boolean(root, "response-allowed")
        if c.optional(root, "proposed-quality-of-service"):
            c.u8(root, "proposed-quality-of-service")
        c.u8(root, "proposed-dlms-version-number")
        _conformance(c, root)
        c.u16(root, "client-max-receive-pdu-size")

    def _initiate_response(self, c: _Cur, root: Node) -> None:
        if c.optional(root, "negotiated-quality-of-service"):
            c.u8(root, "negotiated-quality-of-service")
        c.u8(root, "negotiated-dlms-version-number")
        _conformance(c, root)
        c.u16(root, "server-max-receive-pdu-size")
        c.u16(root, "vaa-name", lambda v: f"0x{v:04X}" + (" (LN)" if v == _LN_VAA else " (SN)"))

    def _confirmed_service_error(self, c: _Cur, root: Node) -> None:
        c.u8(root, "service", _enum(ConfirmedServiceErrorChoice))
        service = c.buf[c.pos - 1]
        kind = c.u8(root, "service-error", _enum(ServiceErrorType))

        def label(v: int) -> str:
            error = ConfirmedServiceError(ConfirmedServiceErrorChoice(service),
                                          ServiceErrorType(kind), v)
            return f"{error.value_label} ({v})"
        c.u8(root, "error", label)

    def _exception(self, c: _Cur, root: Node) -> None:
        c.u8(root, "state-error", _enum(StateError))
        err = c.u8(root, "service-error", _enum(ExceptionServiceError))
        if err == ExceptionServiceError.INVOCATION_COUNTER_ERROR:
            c.u32(root, "invocation-counter")

    # GET / SET / ACTION --------------------------------------------------
    def _choice(self, c: _Cur, root: Node, names: dict[int, str]) -> int:
        choice = c.peek("the service choice")
        if choice not in names:
            raise c.bad(f"a choice of {', '.join(f'{k} ({v})' for k, v in names.items())}, "
                        f"got {choice}")
        c.u8(root, "choice", lambda v: f"{names[v]} ({v})")
        root.name += f" ({names[choice]})"
        c.u8(root, "invoke-id-and-priority", _iid)
        return choice

    def _get_request(self, c: _Cur, root: Node) -> None:
        choice = self._choice(c, root, {1: "normal", 2: "next", 3: "with-list"})
        if choice != 2:
            self._blocks[self._key[0]] = _Blocks(with_list=choice == 3)
        if choice == 1:
            _descriptor(c, root, "cosem-attribute-descriptor", "attribute-id")
            _selection(c, root)
        elif choice == 2:
            c.u32(root, "block-number")
        else:
            n = c.count(root, "attribute count", 9)
            for i in range(n):
                item = root.add(Node(f"[{i}]"))
                _descriptor(c, item, "cosem-attribute-descriptor", "attribute-id")
                _selection(c, item)

    def _get_response(self, c: _Cur, root: Node) -> None:
        choice = self._choice(c, root, {1: "normal", 2: "with-datablock", 3: "with-list"})
        if choice == 1:
            _get_data_result(c, root, "result")
        elif choice == 2:
            block = root.add(Node("result", offset=c.pos))
            c.boolean(block, "last-block")
            c.u32(block, "block-number")
            sel = c.u8(block, "choice", _named_choice({0: "raw-data",
                                                       1: "data-access-result"}))
            if sel == 0:
                raw = c.octets(block, "raw-data", lambda b: f"{len(b)} bytes")
                self._datablock(root, raw, block.children[0].value == "true", "GET")
            elif sel == 1:
                c.u8(block, "data-access-result", _enum(DataAccessResult))
            else:
                raise c.bad("DataBlock-G result choice 00 or 01", c.pos - 1)
        else:
            n = c.count(root, "result count", 2)
            for i in range(n):
                _get_data_result(c, root, f"[{i}]")

    def _datablock(self, root: Node, raw: bytes, last: bool, service: str) -> None:
        """Keep a block of a long answer; after the last one, decode them all."""
        blocks = self._blocks.setdefault(self._key[0], _Blocks())
        blocks.parts.append(raw)
        blocks.size += len(raw)
        if blocks.size > MAX_INPUT:
            self._blocks.pop(self._key[0], None)
            root.add(Node("error", f"{service} blocks exceed {MAX_INPUT} bytes", error=True))
            root.error = True
            return
        if not last:
            return
        whole = b"".join(blocks.parts)
        count = len(blocks.parts)
        self._blocks.pop(self._key[0], None)
        node = root.add(Node(f"{service} data reassembled from {count} blocks",
                             f"{len(whole)} bytes"))
        c = _Cur(whole, node.name)

        def work() -> None:
            if blocks.with_list:
                n = c.count(node, "result count", 2)
                for i in range(n):
                    _get_data_result(c, node, f"[{i}]")
            else:
                _data(c, node, "data")
            c.expect_end(node)
        self._guard(node, work)

    def _set_request(self, c: _Cur, root: Node) -> None:
        choice = self._choice(c, root, {1: "normal", 2: "with-first-datablock",
                                        3: "with-datablock", 4: "with-list",
                                        5: "with-list-and-first-datablock"})
        if choice in (1, 2):
            _descriptor(c, root, "cosem-attribute-descriptor", "attribute-id")
            _selection(c, root)
            if choice == 1:
                _data(c, root, "value")
            else:
                _datablock_sa(c, root)
        elif choice == 3:
            _datablock_sa(c, root)
        else:
            n = c.count(root, "attribute count", 9)
            for i in range(n):
                item = root.add(Node(f"[{i}]"))
                _descriptor(c, item, "cosem-attribute-descriptor", "attribute-id")
                _selection(c, item)
            if choice == 4:
                m = c.count(root, "value count")
                for i in range(m):
                    _data(c, root, f"value [{i}]")
            else:
                _datablock_sa(c, root)

    def _set_response(self, c: _Cur, root: Node) -> None:
        choice = self._choice(c, root, {1: "normal", 2: "datablock", 3: "last-datablock",
                                        4: "last-datablock-with-list", 5: "with-list"})
        dar = _enum(DataAccessResult)
        if choice == 1:
            c.u8(root, "result", dar)
        elif choice == 2:
            c.u32(root, "block-number")
        elif choice == 3:
            c.u8(root, "result", dar)
            c.u32(root, "block-number")
        else:
            n = c.count(root, "result count")
            for i in range(n):
                c.u8(root, f"result [{i}]", dar)
            if choice == 4:
                c.u32(root, "block-number")

    def _action_request(self, c: _Cur, root: Node) -> None:
        choice = self._choice(c, root, {1: "normal", 2: "next-pblock", 3: "with-list",
                                        4: "with-first-pblock",
                                        5: "with-list-and-first-pblock", 6: "with-pblock"})
        if choice in (1, 4):
            _descriptor(c, root, "cosem-method-descriptor", "method-id")
            if choice == 4:
                _datablock_sa(c, root)
            elif c.optional(root, "method-invocation-parameters"):
                _data(c, root, "method-invocation-parameters")
        elif choice == 2:
            c.u32(root, "block-number")
        elif choice == 6:
            _datablock_sa(c, root)
        else:
            n = c.count(root, "method count", 9)
            for i in range(n):
                _descriptor(c, root, f"cosem-method-descriptor [{i}]", "method-id")
            if choice == 3:
                m = c.count(root, "parameter count")
                for i in range(m):
                    _data(c, root, f"method-invocation-parameters [{i}]")
            else:
                _datablock_sa(c, root)

    def _action_result(self, c: _Cur, parent: Node, name: str) -> None:
        node = parent.add(Node(name, offset=c.pos))
        result = c.u8(node, "result", _enum(ActionResult))
        node.value = _enum(ActionResult)(result)
        if c.optional(node, "return-parameters"):
            _get_data_result(c, node, "return-parameters")

    def _action_response(self, c: _Cur, root: Node) -> None:
        choice = self._choice(c, root, {1: "normal", 2: "with-pblock", 3: "with-list",
                                        4: "next-pblock"})
        if choice == 1:
            self._action_result(c, root, "single-response")
        elif choice == 2:
            block = root.add(Node("pblock", offset=c.pos))
            c.boolean(block, "last-block")
            c.u32(block, "block-number")
            c.octets(block, "raw-data", lambda b: f"{len(b)} bytes")
        elif choice == 3:
            n = c.count(root, "result count")
            for i in range(n):
                self._action_result(c, root, f"[{i}]")
        else:
            c.u32(root, "block-number")

    def _event_notification(self, c: _Cur, root: Node) -> None:
        if c.optional(root, "time"):
            c.octets(root, "time", note=_octet_note)
        _descriptor(c, root, "cosem-attribute-descriptor", "attribute-id")
        _data(c, root, "attribute-value")

    # pushes -------------------------------------------------------------
    def _data_notification(self, c: _Cur, root: Node) -> None:
        c.u32(root, "long-invoke-id-and-priority", _long_iid)
        at = c.pos
        stamp = c.octets(root, "date-time", lambda b: _date_time_text(b) or (
            b.hex(" ").upper() if b else "(none)"))
        if stamp and len(stamp) != 12:
            raise c.bad(f"a date-time of 0 or 12 octets, got {len(stamp)}", at)
        _data(c, root, "notification-body")

    def _general_block_transfer(self, c: _Cur, root: Node) -> None:
        at = c.pos - 1
        c.u8(root, "block-control", lambda v: (
            f"last-block {'yes' if v & 0x80 else 'no'}, streaming "
            f"{'yes' if v & 0x40 else 'no'}, window {v & 0x3F} (0x{v:02X})"))
        number = c.u16(root, "block-number")
        c.u16(root, "block-number-ack")
        data = c.octets(root, "block-data", lambda b: f"{len(b)} bytes")
        try:
            block = GeneralBlockTransfer.from_bytes(c.buf[at:c.pos])
            whole = self._flow().gbt.add(block)
        except DecodeError as exc:
            raise c.bad(f"a general-block-transfer block: {exc}", at) from None
        root.value = f"block {number}, {len(data)} bytes"
        if whole is not None:
            inner = self.apdu(whole, "APDU")
            inner.note = "reassembled from the general-block-transfer blocks"
            root.add(inner)

    # SN ---------------------------------------------------------------
    def _variable(self, c: _Cur, parent: Node, name: str) -> None:
        node = parent.add(Node(name, offset=c.pos))
        kind = c.u8(node, "choice", lambda v: f"{_SN_ACCESS.get(v, 'unknown')} ({v})")
        node.value = _SN_ACCESS.get(kind, "unknown")
        if kind == 2:
            c.u16(node, "variable-name", lambda v: f"0x{v:04X}")
        elif kind == 4:
            c.u16(node, "variable-name", lambda v: f"0x{v:04X}")
            c.u8(node, "selector")
            _data(c, node, "parameter")
        elif kind == 5:
            c.u16(node, "block-number")
        elif kind == 6:
            c.boolean(node, "last-block")
            c.u16(node, "block-number")
            c.octets(node, "raw-data", lambda b: f"{len(b)} bytes")
        elif kind == 7:
            c.boolean(node, "last-block")
            c.u16(node, "block-number")
        else:
            raise c.bad("Variable-Access-Specification choice 2, 4, 5, 6 or 7", c.pos - 1)

    def _read_request(self, c: _Cur, root: Node) -> None:
        n = c.count(root, "variable count", 2)
        for i in range(n):
            self._variable(c, root, f"[{i}]")

    def _write_request(self, c: _Cur, root: Node) -> None:
        self._read_request(c, root)
        m = c.count(root, "value count")
        for i in range(m):
            _data(c, root, f"value [{i}]")

    def _read_response(self, c: _Cur, root: Node) -> None:
        n = c.count(root, "result count", 2)
        for i in range(n):
            node = root.add(Node(f"[{i}]", offset=c.pos))
            kind = c.u8(node, "choice", lambda v: f"{_SN_READ.get(v, 'unknown')} ({v})")
            node.value = _SN_READ.get(kind, "unknown")
            if kind == 0:
                _data(c, node, "data")
            elif kind == 1:
                c.u8(node, "data-access-result", _enum(DataAccessResult))
            elif kind == 2:
                c.boolean(node, "last-block")
                c.u16(node, "block-number")
                c.octets(node, "raw-data", lambda b: f"{len(b)} bytes")
            elif kind == 3:
                c.u16(node, "block-number")
            else:
                raise c.bad("Read-Response choice 0, 1, 2 or 3", c.pos - 1)

    def _write_response(self, c: _Cur, root: Node) -> None:
        n = c.count(root, "result count")
        for i in range(n):
            node = root.add(Node(f"[{i}]", offset=c.pos))
            kind = c.u8(node, "choice", lambda v: f"{_SN_WRITE.get(v, 'unknown')} ({v})")
            node.value = _SN_WRITE.get(kind, "unknown")
            if kind == 1:
                c.u8(node, "data-access-result", _enum(DataAccessResult))
            elif kind == 2:
                c.u16(node, "block-number")
            elif kind != 0:
                raise c.bad("Write-Response choice 0, 1 or 2", c.pos - 1)

    def _information_report(self, c: _Cur, root: Node) -> None:
        flag = c.peek("current-time: 00, 01 or 0C")
        # gurux writes the 12-octet date-time with its length only (no presence flag)
        if flag == 0x0C or c.optional(root, "current-time"):
            c.octets(root, "current-time", note=_octet_note)
        self._write_request(c, root)

    # ciphering --------------------------------------------------------
    def _ciphered(self, c: _Cur, root: Node) -> None:
        start = c.pos
        tag = c.u8(root, "tag", lambda v: f"{security.tag_name(v)} (0x{v:02X})")
        carried: bytes | None = None
        if tag in (security.GENERAL_GLO_CIPHERING, security.GENERAL_DED_CIPHERING):
            carried = c.octets(root, "system-title", lambda b: b.hex().upper())
        n = c.length(root, "length")
        if n != c.left:
            raise c.bad(f"{n} bytes of ciphered content to the end, {c.left} follow",
                        c.pos - 1)
        self._security_header(c, root)
        payload = c.take(c.left, "ciphered payload")
        root.add(Node("ciphered payload", f"{len(payload)} bytes", payload,
                      c.pos - len(payload)))
        self._decipher(c.buf[start:], root, carried)

    def _security_header(self, c: _Cur, root: Node) -> security.SecurityControl:
        at = c.pos
        sc_raw = c.take(1, "security control")[0]
        sc = security.SecurityControl.from_byte(sc_raw)
        root.add(Node("security control", f"0x{sc_raw:02X}: suite {sc.suite}, "
                      f"{sc.label}" + (", broadcast key" if sc.broadcast else "")
                      + (", compressed" if sc.compression else ""), bytes((sc_raw,)), at))
        c.u32(root, "invocation counter")
        return sc

    def _decipher(self, apdu: bytes, root: Node, carried: bytes | None) -> None:
        k = self.keys
        dedicated = security.is_dedicated(apdu)
        missing = []
        if dedicated and self._dedicated is None:
            missing.append("the dedicated key (from the configuration, or seen in a "
                           "deciphered AARQ)")
        if not dedicated and k.block_cipher_key is None:
            missing.append("--block-cipher-key")
        sc = security.SecurityControl.from_byte(apdu[_sc_offset(apdu)])
        if sc.authentication and k.authentication_key is None:
            missing.append("--authentication-key")
        titles = [carried] if carried else [*k.system_titles, *self._titles]
        if not titles:
            missing.append("--system-title (the sender's; or an AARQ/AARE earlier in the "
                           "input)")
        if missing:
            root.add(Node("not deciphered", "needs " + ", ".join(missing)))
            return
        error = ""
        for title in dict.fromkeys(titles):
            try:
                plain, _ = security.unprotect(
                    apdu, system_title=title, block_cipher_key=k.block_cipher_key,
                    authentication_key=k.authentication_key, dedicated_key=self._dedicated)
            except DlmsdError as exc:
                error = str(exc)
                continue
            inner = root.add(Node("deciphered APDU", f"system title {title.hex().upper()}"))
            inner.add(self.apdu(plain, "APDU"))
            return
        root.add(Node("not deciphered", error, error=True))
        root.error = True

    def _general_ciphering(self, c: _Cur, root: Node) -> None:
        c.octets(root, "transaction-id")
        originator = c.octets(root, "originator-system-title", lambda b: b.hex().upper())
        c.octets(root, "recipient-system-title", lambda b: b.hex().upper())
        c.octets(root, "date-time", note=_octet_note)
        c.octets(root, "other-information")
        key_info = c.optional(root, "key-info")
        kind = -1
        if key_info:
            kind = c.u8(root, "key-info choice", lambda v: {
                0: "identified-key (0)", 1: "wrapped-key (1)", 2: "agreed-key (2)"}.get(
                    v, f"unknown ({v})"))
            if kind == 0:
                c.u8(root, "key-id", lambda v: {0: "global-unicast-encryption-key (0)",
                                                1: "global-broadcast-encryption-key (1)"
                                                }.get(v, f"unknown ({v})"))
            elif kind == 1:
                c.u8(root, "kek-id")
                c.octets(root, "key-ciphered-data", lambda b: f"{len(b)} bytes")
            elif kind == 2:
                c.octets(root, "key-parameters")
                c.octets(root, "key-ciphered-data", lambda b: f"{len(b)} bytes")
            else:
                raise c.bad("key-info choice 0, 1 or 2", c.pos - 1)
        at = c.pos
        n = c.length(root, "ciphered-content length")
        if n != c.left:
            raise c.bad(f"{n} bytes of ciphered content to the end, {c.left} follow", at)
        content = c.buf[c.pos:c.end]
        self._security_header(c, root)
        payload = c.take(c.left, "ciphered payload")
        root.add(Node("ciphered payload", f"{len(payload)} bytes", payload,
                      c.pos - len(payload)))
        if kind in (1, 2):
            root.add(Node("not deciphered", "wrapped and agreed keys are not supported"))
            return
        # Without key-info (or with the global unicast key) the content is protected as
        # a general-glo-ciphering APDU from the originator would be.
        equivalent = (bytes((security.GENERAL_GLO_CIPHERING,)) + encode_length(len(originator))
                      + originator + encode_length(len(content)) + content)
        self._decipher(equivalent, root, originator or None)


def _sc_offset(apdu: bytes) -> int:
    """Where the security control octet of a glo-/ded-/general- APDU is."""
    pos = 1
    if apdu[0] in (security.GENERAL_GLO_CIPHERING, security.GENERAL_DED_CIPHERING):
        n, pos = decode_length(apdu, 1)
        pos += n
    _, pos = decode_length(apdu, pos)
    return pos


_SN_ACCESS: Final = {2: "variable-name", 4: "parameterized-access", 5: "block-number-access",
                     6: "read-data-block-access", 7: "write-data-block-access"}
_SN_READ: Final = {0: "data", 1: "data-access-result", 2: "data-block-result",
                   3: "block-number"}
_SN_WRITE: Final = {0: "success", 1: "data-access-result", 2: "block-number"}

# Green Book 9.3 (ACSE APDUs, BER): the context-specific tags of each element.
_AARQ_ELEMENTS: Final = {
    0x80: "protocol-version", 0xA1: "application-context-name", 0xA2: "called-AP-title",
    0xA3: "called-AE-qualifier", 0xA4: "called-AP-invocation-id",
    0xA5: "called-AE-invocation-id", 0xA6: "calling-AP-title", 0xA7: "calling-AE-qualifier",
    0xA8: "calling-AP-invocation-id", 0xA9: "calling-AE-invocation-id",
    0x8A: "sender-acse-requirements", 0x8B: "mechanism-name",
    0xAC: "calling-authentication-value", 0xBD: "implementation-information",
    0xBE: "user-information",
}
_AARE_ELEMENTS: Final = {
    0x80: "protocol-version", 0xA1: "application-context-name", 0xA2: "result",
    0xA3: "result-source-diagnostic", 0xA4: "responding-AP-title",
    0xA5: "responding-AE-qualifier", 0xA6: "responding-AP-invocation-id",
    0xA7: "responding-AE-invocation-id", 0x88: "responder-acse-requirements",
    0x89: "mechanism-name", 0xAA: "responding-authentication-value",
    0xBD: "implementation-information", 0xBE: "user-information",
}
_RELEASE_ELEMENTS: Final = {0x80: "reason", 0xBE: "user-information"}

_APDU_NAMES: Final[dict[int, str]] = {
    0x01: "initiate-request", 0x05: "read-request", 0x06: "write-request",
    0x08: "initiate-response", 0x0C: "read-response", 0x0D: "write-response",
    0x0E: "confirmed-service-error", 0x0F: "data-notification",
    0x16: "unconfirmed-write-request", 0x18: "information-report-request",
    0x60: "AARQ", 0x61: "AARE", 0x62: "RLRQ", 0x63: "RLRE",
    0xC0: "get-request", 0xC1: "set-request", 0xC2: "event-notification-request",
    0xC3: "action-request", 0xC4: "get-response", 0xC5: "set-response",
    0xC7: "action-response", 0xD8: "exception-response", 0xD9: "access-request",
    0xDA: "access-response", 0xDD: "general-ciphering", 0xDF: "general-signing",
    0xE0: "general-block-transfer",
}

_HANDLERS: Final[dict[int, Callable[[Explainer, _Cur, Node], None]]] = {
    0x01: Explainer._initiate_request, 0x08: Explainer._initiate_response,
    0x0E: Explainer._confirmed_service_error, 0x0F: Explainer._data_notification,
    0x05: Explainer._read_request, 0x06: Explainer._write_request,
    0x0C: Explainer._read_response, 0x0D: Explainer._write_response,
    0x16: Explainer._write_request, 0x18: Explainer._information_report,
    0x60: Explainer._aarq, 0x61: Explainer._aare, 0x62: Explainer._rlrq,
    0x63: Explainer._rlre, 0xC0: Explainer._get_request, 0xC1: Explainer._set_request,
    0xC2: Explainer._event_notification, 0xC3: Explainer._action_request,
    0xC4: Explainer._get_response, 0xC5: Explainer._set_response,
    0xC7: Explainer._action_response, 0xD8: Explainer._exception,
    0xDD: Explainer._general_ciphering, 0xE0: Explainer._general_block_transfer,
}
