"""HDLC wire types for DLMS/COSEM (IEC 62056-46 MAC and LLC sublayers), sans-I/O.

This module owns the bytes: the FCS-16, HDLC addresses, the control field, the
SNRM/UA parameter negotiation field, the LLC header, whole frames and the
deframer that cuts a byte stream into frames. The link state machines that use
them live in :mod:`dlmsd.protocol.hdlc` (which re-exports everything here).

Clause numbers refer to IEC 62056-46:2002+A1:2006 (the same text is in the DLMS
UA Green Book, chapter "Data link layer using HDLC"). Text in quotation marks is
quoted; text marked "paraphrase" restates a rule in our own words.

Nothing here does I/O, reads a clock or logs.
"""

from __future__ import annotations

import enum
import functools
import re
import struct
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple, TypeVar

from dlmsd.errors import DecodeError, LocalProtocolError

__all__ = [
    "DEFAULT_MAX_INFO",
    "DEFAULT_WINDOW",
    "FLAG",
    "LLC_COMMAND",
    "LLC_RESPONSE",
    "MAX_FRAME_LENGTH",
    "NEED_DATA",
    "ChecksumError",
    "Control",
    "Frame",
    "FrameTrace",
    "FrameType",
    "HdlcAddress",
    "HdlcDeframer",
    "HdlcParameters",
    "NeedData",
    "add_llc",
    "crc16_x25",
    "decode_server_address",
    "describe_frame",
    "encode_client_address",
    "encode_server_address",
    "next_state",
    "strip_llc",
]


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return self.value


#: Returned by ``next_frame()`` / ``next_event()`` when more bytes are needed.
NEED_DATA: Final = _Sentinel.NEED_DATA
NeedData = Literal[_Sentinel.NEED_DATA]

_StateT = TypeVar("_StateT", bound=enum.Enum)
_TriggerT = TypeVar("_TriggerT", bound=enum.Enum)


def next_state(transitions: Mapping[_StateT, Mapping[_TriggerT, _StateT]], state: _StateT,
               trigger: _TriggerT) -> _StateT:
    """The state ``trigger`` leads to from ``state`` in a state machine's table (the
    HDLC client's, the mode E opening's); :class:`LocalProtocolError` when the table
    has no such move, i.e. the caller asked for something out of order."""
    new = transitions[state].get(trigger)
    if new is None:
        raise LocalProtocolError(f"cannot {trigger.value} in state {state.name}")
    return new


# ---------------------------------------------------------------------------
# FCS / HCS
# ---------------------------------------------------------------------------
# IEC 62056-46, 6.4.1 (paraphrase): the HCS and the FCS are both the 16-bit
# frame check sequence of ISO/IEC 13239 (polynomial x^16 + x^12 + x^5 + 1,
# reflected, preset to all ones, ones' complement of the remainder sent, least
# significant octet first). This is CRC-16/X.25, the same as RFC 1662's FCS-16.


def _make_crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE: Final = _make_crc_table()


def crc16_x25(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/X.25 of ``data`` (check value: ``b"123456789"`` -> ``0x906E``)."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


_CHECK = struct.Struct("<H")  # HCS/FCS go on the wire least significant octet first


# ---------------------------------------------------------------------------
# Addresses
# ---------------------------------------------------------------------------
# IEC 62056-46, 6.4.2: "The client address shall always be expressed on one
# byte." The server address may be divided into two parts: the upper HDLC
# address addresses a logical device, the lower HDLC address a physical device
# on the multi-drop. "The upper HDLC address shall always be present. The lower
# HDLC address may be omitted if it is not required."
# (paraphrase) Each address octet carries 7 address bits; its least significant
# bit is the extension bit: 0 = another address octet follows, 1 = last octet.
# A server address is 1 octet (upper only), 2 octets (upper and lower, 7 bits
# each) or 4 octets (upper and lower, 14 bits each).

_ADDRESS_SIZES: Final = (1, 2, 4)
_MAX_ADDRESS_OCTETS: Final = 4


@dataclass(frozen=True)
class HdlcAddress:
    """One HDLC address: ``upper`` (logical device or client SAP), ``lower``
    (physical device; ``None`` in the 1-octet form) and ``size`` in octets."""

    upper: int
    lower: int | None = None
    size: int = 1

    def __post_init__(self) -> None:
        if self.size not in _ADDRESS_SIZES:
            raise LocalProtocolError(f"HDLC address size must be 1, 2 or 4, not {self.size}")
        limit = 0x7F if self.size <= 2 else 0x3FFF
        if not 0 <= self.upper <= limit:
            raise LocalProtocolError(
                f"upper HDLC address {self.upper} out of range 0..{limit} for size {self.size}"
            )
        if self.size == 1:
            if self.lower is not None:
                raise LocalProtocolError("a 1-octet HDLC address has no lower address")
        elif self.lower is None or not 0 <= self.lower <= limit:
            raise LocalProtocolError(
                f"lower HDLC address {self.lower} out of range 0..{limit} for size {self.size}"
            )

    def to_bytes(self) -> bytes:
        if self.size == 1:
            return bytes([(self.upper << 1) | 1])
        lower = self.lower if self.lower is not None else 0
        if self.size == 2:
            return bytes([self.upper << 1, (lower << 1) | 1])
        return bytes(
            [
                (self.upper >> 7) << 1,
                (self.upper & 0x7F) << 1,
                (lower >> 7) << 1,
                ((lower & 0x7F) << 1) | 1,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> HdlcAddress:
        """Decode exactly one address (all of ``data``)."""
        size = len(data)
        if size not in _ADDRESS_SIZES:
            raise DecodeError(f"HDLC address of {size} octets (must be 1, 2 or 4)")
        if any(b & 1 for b in data[:-1]) or not data[-1] & 1:
            raise DecodeError(f"HDLC address {data.hex()} has misplaced extension bits")
        values = [b >> 1 for b in data]
        if size == 1:
            return cls(values[0], None, 1)
        if size == 2:
            return cls(values[0], values[1], 2)
        return cls((values[0] << 7) | values[1], (values[2] << 7) | values[3], 4)

    def __str__(self) -> str:
        return str(self.upper) if self.lower is None else f"{self.upper}/{self.lower}"


def _address_length(data: bytes | bytearray, start: int, end: int) -> int | None:
    """Octets of the address starting at ``start``: 1, 2 or 4; ``None`` when
    ``data[start:end]`` is too short to tell; raises DecodeError when invalid."""
    for i in range(start, min(end, start + _MAX_ADDRESS_OCTETS)):
        if data[i] & 1:
            length = i - start + 1
            if length not in _ADDRESS_SIZES:
                raise DecodeError(f"HDLC address of {length} octets (must be 1, 2 or 4)")
            return length
    if end - start >= _MAX_ADDRESS_OCTETS:
        raise DecodeError("HDLC address longer than 4 octets")
    return None


def encode_server_address(logical: int, physical: int | None = None, size: int = 4) -> bytes:
    """Server address octets from the logical device (upper HDLC address) and the
    physical device (lower HDLC address).

    ``size`` 1 carries only ``logical``; 2 gives 7 bits to each; 4 gives 14 bits
    to each. The daemon's combined integer is ``logical << 7 | physical`` for
    size 2 and ``logical << 14 | physical`` for size 4.
    """
    return HdlcAddress(logical, None if size == 1 else physical, size).to_bytes()


def decode_server_address(data: bytes) -> HdlcAddress:
    """The reverse of :func:`encode_server_address` (``.upper`` is the logical
    device, ``.lower`` the physical device, ``.size`` the octet count)."""
    return HdlcAddress.from_bytes(data)


def encode_client_address(sap: int) -> bytes:
    """The 1-octet client address (e.g. 16 = public client -> ``0x21``)."""
    return HdlcAddress(sap, None, 1).to_bytes()


# ---------------------------------------------------------------------------
# Control field
# ---------------------------------------------------------------------------
# IEC 62056-46, 6.4.3, control field formats (bit 7 .. bit 0; R = N(R),
# S = N(S), P/F = poll/final bit):
#     I     R R R P/F S S S 0
#     RR    R R R P/F 0 0 0 1
#     RNR   R R R P/F 0 1 0 1
#     SNRM  1 0 0  P  0 0 1 1
#     DISC  0 1 0  P  0 0 1 1
#     UA    0 1 1  F  0 0 1 1
#     DM    0 0 0  F  1 1 1 1
#     FRMR  1 0 0  F  0 1 1 1
#     UI    0 0 0 P/F 0 0 1 1


class FrameType(enum.IntEnum):
    """Frame types of IEC 62056-46; the value is the control octet with the
    P/F bit and the sequence numbers cleared."""

    I = 0x00  # noqa: E741  (the standard's name)
    RR = 0x01
    RNR = 0x05
    UI = 0x03
    DM = 0x0F
    DISC = 0x43
    UA = 0x63
    SNRM = 0x83
    FRMR = 0x87


_PF_BIT: Final = 0x10
_SUPERVISORY: Final = {0x01: FrameType.RR, 0x05: FrameType.RNR}
_UNNUMBERED: Final = {
    t.value: t
    for t in (
        FrameType.UI,
        FrameType.DM,
        FrameType.DISC,
        FrameType.UA,
        FrameType.SNRM,
        FrameType.FRMR,
    )
}
_SEQUENCED: Final = frozenset({FrameType.I, FrameType.RR, FrameType.RNR})


@dataclass(frozen=True)
class Control:
    """A decoded control field. ``ns`` is only meaningful for I frames, ``nr``
    for I, RR and RNR frames; both must be 0 otherwise."""

    type: FrameType
    pf: bool = False
    ns: int = 0
    nr: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.ns <= 7 and 0 <= self.nr <= 7):
            raise LocalProtocolError(f"N(S)={self.ns}, N(R)={self.nr} out of range 0..7")
        if self.type is not FrameType.I and self.ns:
            raise LocalProtocolError(f"{self.type.name} frames carry no N(S)")
        if self.type not in _SEQUENCED and self.nr:
            raise LocalProtocolError(f"{self.type.name} frames carry no N(R)")

    def to_byte(self) -> int:
        value = int(self.type) | (_PF_BIT if self.pf else 0)
        if self.type in _SEQUENCED:
            value |= self.nr << 5
        if self.type is FrameType.I:
            value |= self.ns << 1
        return value

    @classmethod
    def from_byte(cls, value: int) -> Control:
        pf = bool(value & _PF_BIT)
        if not value & 0x01:
            return cls(FrameType.I, pf, (value >> 1) & 7, value >> 5)
        if not value & 0x02:
            kind = _SUPERVISORY.get(value & 0x0F)
            if kind is None:
                # REJ (0x09) and SREJ (0x0D) exist in ISO/IEC 13239, not in 62056-46.
                raise DecodeError(f"supervisory control field 0x{value:02X} is not RR or RNR")
            return cls(kind, pf, 0, value >> 5)
        kind = _UNNUMBERED.get(value & ~_PF_BIT & 0xFF)
        if kind is None:
            raise DecodeError(f"unknown unnumbered control field 0x{value:02X}")
        return cls(kind, pf)

    def __str__(self) -> str:
        args = []
        if self.type is FrameType.I:
            args.append(f"ns={self.ns}")
        if self.type in _SEQUENCED:
            args.append(f"nr={self.nr}")
        if self.pf:
            args.append("F" if self.type in (FrameType.UA, FrameType.DM, FrameType.FRMR) else "P")
        return f"{self.type.name}({','.join(args)})"


# ---------------------------------------------------------------------------
# Parameter negotiation (SNRM / UA information field)
# ---------------------------------------------------------------------------
# IEC 62056-46, 6.4.4 (paraphrase): the information field of SNRM and UA may
# carry the HDLC parameter negotiation field of ISO/IEC 13239: format
# identifier 0x81, group identifier 0x80, group length, then parameters
# (identifier, length, value): 0x05 maximum information field length -
# transmit, 0x06 maximum information field length - receive, 0x07 window size -
# transmit, 0x08 window size - receive. A missing field or parameter means the
# default: 128 octets and window 1. Each station states the values from its own
# point of view; the values in UA are those the server will use and must not
# exceed what the SNRM offered (the smaller value in each direction applies).

DEFAULT_MAX_INFO: Final = 128
DEFAULT_WINDOW: Final = 1
_FORMAT_ID: Final = 0x81
_GROUP_ID: Final = 0x80


class _Parameter(NamedTuple):
    ident: int
    name: str  # the HdlcParameters field
    default: int
    window: bool  # a window size (always 4 octets), else a maximum information length


#: The negotiated parameters, in the order they are sent.
_PARAMETERS: Final = (
    _Parameter(0x05, "max_info_tx", DEFAULT_MAX_INFO, window=False),
    _Parameter(0x06, "max_info_rx", DEFAULT_MAX_INFO, window=False),
    _Parameter(0x07, "window_tx", DEFAULT_WINDOW, window=True),
    _Parameter(0x08, "window_rx", DEFAULT_WINDOW, window=True),
)


@dataclass(frozen=True)
class HdlcParameters:
    """HDLC parameters as seen by the station that states them."""

    max_info_tx: int = DEFAULT_MAX_INFO
    max_info_rx: int = DEFAULT_MAX_INFO
    window_tx: int = DEFAULT_WINDOW
    window_rx: int = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        for parameter in _PARAMETERS:
            value = getattr(self, parameter.name)
            if not 1 <= value <= 0xFFFFFFFF:
                raise LocalProtocolError(f"HDLC parameter {parameter.name}={value} out of range")

    def to_bytes(self, *, include_defaults: bool = False) -> bytes:
        """The negotiation field, or ``b""`` when every value is the default and
        ``include_defaults`` is false (a SNRM then proposes the defaults).

        Lengths are 1 octet when the value fits, else 2 (else 4) for the maximum
        information field lengths, and always 4 for the window sizes.
        """
        params = bytearray()
        for ident, name, default, is_window in _PARAMETERS:
            value: int = getattr(self, name)
            if value == default and not include_defaults:
                continue
            size = 4 if is_window or value > 0xFFFF else 1 if value <= 0xFF else 2
            params += bytes([ident, size]) + value.to_bytes(size, "big")
        if not params:
            return b""
        return bytes([_FORMAT_ID, _GROUP_ID, len(params)]) + params

    @classmethod
    def from_bytes(cls, data: bytes) -> HdlcParameters:
        """Decode a negotiation field; ``b""`` gives the defaults. Unknown
        parameter identifiers are skipped."""
        if not data:
            return cls()
        if len(data) < 3 or data[0] != _FORMAT_ID or data[1] != _GROUP_ID:
            raise DecodeError(f"not an HDLC parameter negotiation field: {data[:3].hex()}")
        # Tolerated quirk: gurux_dlms 1.0.203's server sends group length 00 before
        # 18 octets of parameters; the parameters themselves are still checked below.
        # Any other mismatch is an error.
        if data[2] != len(data) - 3 and data[2] != 0:
            raise DecodeError(
                f"negotiation group length {data[2]} but {len(data) - 3} octets follow"
            )
        values = {parameter.ident: parameter.default for parameter in _PARAMETERS}
        pos = 3
        while pos < len(data):
            if pos + 2 > len(data):
                raise DecodeError("truncated HDLC parameter")
            ident, size = data[pos], data[pos + 1]
            pos += 2
            if pos + size > len(data):
                raise DecodeError(f"HDLC parameter 0x{ident:02X} of {size} octets is truncated")
            if ident in values:
                if size not in (1, 2, 4):
                    raise DecodeError(f"HDLC parameter 0x{ident:02X} has length {size}")
                value = int.from_bytes(data[pos : pos + size], "big")
                if value == 0:
                    raise DecodeError(f"HDLC parameter 0x{ident:02X} is zero")
                values[ident] = value
            pos += size
        return cls(*(values[parameter.ident] for parameter in _PARAMETERS))

    def reversed(self) -> HdlcParameters:
        """The same values from the peer's point of view (tx <-> rx)."""
        return HdlcParameters(self.max_info_rx, self.max_info_tx, self.window_rx, self.window_tx)

    def limited_by(self, other: HdlcParameters) -> HdlcParameters:
        """The smaller value of each field (both from the same point of view)."""
        return HdlcParameters(
            min(self.max_info_tx, other.max_info_tx),
            min(self.max_info_rx, other.max_info_rx),
            min(self.window_tx, other.window_tx),
            min(self.window_rx, other.window_rx),
        )


# ---------------------------------------------------------------------------
# LLC
# ---------------------------------------------------------------------------
# IEC 62056-46, 5 (LLC sublayer), paraphrase: an LLC PDU is destination LSAP
# 0xE6, source LSAP 0xE6 (command, client -> server) or 0xE7 (response, server
# -> client), LLC quality 0x00, then the information. A segmented APDU carries
# the LLC header only once, at the start of the first segment.

LLC_COMMAND: Final = b"\xe6\xe6\x00"
LLC_RESPONSE: Final = b"\xe6\xe7\x00"


def add_llc(apdu: bytes, *, response: bool) -> bytes:
    """Prefix the LLC header (``E6 E7 00`` when ``response`` else ``E6 E6 00``)."""
    return (LLC_RESPONSE if response else LLC_COMMAND) + apdu


def strip_llc(data: bytes, *, response: bool) -> bytes:
    """Remove the expected LLC header; DecodeError when it is not there."""
    header = LLC_RESPONSE if response else LLC_COMMAND
    if not data.startswith(header):
        raise DecodeError(f"expected LLC header {header.hex()}, got {data[:3].hex() or 'nothing'}")
    return data[len(header) :]


# ---------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------
# IEC 62056-46, 6.4.1, HDLC frame format type 3:
#     Flag | Frame format | Dest. address | Src. address | Control | HCS | Information | FCS | Flag
# Frame format field (16 bits): format type 1010, segmentation bit S, 11-bit
# frame length. "The value of the frame length subfield is the count of octets
# in the frame excluding the opening and closing frame flag sequences."
# (paraphrase) The HCS covers the octets between the opening flag and the HCS
# and is present only when there is an information field. The FCS covers the
# whole frame between the flags, HCS and information included. Frames are not
# octet-stuffed: a flag octet may occur inside a frame, so frames are cut by
# their length, and the octet at that position must be the closing flag. One
# flag may both close a frame and open the next one.

FLAG: Final = 0x7E
MAX_FRAME_LENGTH: Final = 0x7FF  # the 11-bit length field
_FORMAT_TYPE_3: Final = 0xA
_SEGMENTATION_BIT: Final = 0x0800
_FORMAT = struct.Struct(">H")
_MIN_FRAME_LENGTH: Final = 7  # format 2 + dst 1 + src 1 + control 1 + FCS 2


def _byte_class(values: Iterable[int]) -> bytes:
    return b"[" + b"".join(re.escape(bytes([v])) for v in values) + b"]"


_ODD: Final = _byte_class(range(1, 256, 2))
_EVEN: Final = _byte_class(range(0, 256, 2))
_ADDRESS: Final = b"(?:" + _ODD + b"|" + _EVEN + _ODD + b"|" + _EVEN * 3 + _ODD + b")"
#: A frame start the deframer has to look at closely: flag, format type 3 (its length
#: octets) and two well-formed addresses.  Anything before the next one is skipped
#: in bulk, counted as the octet-by-octet scan would count it.
_PLAUSIBLE_START: Final = re.compile(rb"\x7e[\xa0-\xaf]." + _ADDRESS * 2, re.DOTALL)
def _octet_table(test: Callable[[int], bool]) -> bytes:
    """A ``bytes.translate`` table: octet -> 1 where ``test`` holds, else 0."""
    return bytes(1 if test(v) else 0 for v in range(256))


#: Octet classes of the bulk skip's counting (see ``HdlcDeframer._skip``).
_IS_FLAG: Final = _octet_table(lambda v: v == FLAG)
_IS_TYPE_3: Final = _octet_table(lambda v: v >> 4 == _FORMAT_TYPE_3)


@functools.lru_cache(maxsize=8)
def _length_tables(limit: int) -> tuple[bytes, bytes, bytes]:
    """For a format-type-3 first format octet and the second one: the length field
    (IEC 62056-46, 6.4.3: the low 11 bits of the two) exceeds ``limit`` when the first
    octet's length bits exceed those of ``limit`` (table 1), or equal them (table 2)
    and the second octet exceeds the low octet of ``limit`` (table 3)."""
    high, low = divmod(limit, 256)
    return (_octet_table(lambda v: v >> 4 == _FORMAT_TYPE_3 and v & 0x07 > high),
            _octet_table(lambda v: v >> 4 == _FORMAT_TYPE_3 and v & 0x07 == high),
            _octet_table(lambda v: v > low))


def _mask(buf: bytearray, start: int, stop: int, table: bytes) -> int:
    """One bit per octet of ``buf[start:stop]`` (the first the most significant, each
    octet's bit at the same place in its own octet) that is 1 where ``table`` maps the
    octet to 1: octet classes ANDed and counted as integers, in C."""
    return int.from_bytes(buf[start:stop].translate(table).ljust(stop - start, b"\0"))


#: Octets from a flag that decide whether ``_PLAUSIBLE_START`` matches there.
_START_OCTETS: Final = 1 + 2 + 2 * _MAX_ADDRESS_OCTETS
#: Fewer octets than this before the next plausible start are left to the scan.
_BULK_MIN: Final = 16
_HEADER_OVERHEAD: Final = 15  # format 2 + dst 4 + src 4 + control 1 + HCS 2 + FCS 2


class ChecksumError(DecodeError):
    """The HCS or FCS of a frame does not match its contents."""


@dataclass(frozen=True)
class Frame:
    """One HDLC frame (format type 3) of DLMS/COSEM."""

    destination: HdlcAddress
    source: HdlcAddress
    control: Control
    information: bytes = b""
    segmented: bool = False

    def __post_init__(self) -> None:
        if self.length > MAX_FRAME_LENGTH:
            raise LocalProtocolError(
                f"HDLC frame length {self.length} exceeds {MAX_FRAME_LENGTH} octets"
            )

    @property
    def length(self) -> int:
        """The frame length field: octets between the flags."""
        header = 2 + self.destination.size + self.source.size + 1
        return header + (2 + len(self.information) if self.information else 0) + 2

    def to_bytes(self) -> bytes:
        fmt = (_FORMAT_TYPE_3 << 12) | (_SEGMENTATION_BIT if self.segmented else 0) | self.length
        body = bytearray(_FORMAT.pack(fmt))
        body += self.destination.to_bytes()
        body += self.source.to_bytes()
        body.append(self.control.to_byte())
        if self.information:
            body += _CHECK.pack(crc16_x25(body))
            body += self.information
        body += _CHECK.pack(crc16_x25(body))
        return bytes([FLAG]) + bytes(body) + bytes([FLAG])

    @classmethod
    def from_bytes(cls, data: bytes) -> Frame:
        """Decode exactly one frame, both flags included.

        Raises :class:`ChecksumError` for a bad HCS/FCS and :class:`DecodeError`
        for anything else that is not a valid frame.
        """
        size = len(data)
        if size < _MIN_FRAME_LENGTH + 2:
            raise DecodeError(f"HDLC frame of {size} octets is too short")
        if data[0] != FLAG or data[-1] != FLAG:
            raise DecodeError("HDLC frame does not start and end with the flag 0x7E")
        (fmt,) = _FORMAT.unpack_from(data, 1)
        if fmt >> 12 != _FORMAT_TYPE_3:
            raise DecodeError(f"HDLC frame format type {fmt >> 12:X} (expected A)")
        length = fmt & MAX_FRAME_LENGTH
        if length != size - 2:
            raise DecodeError(f"HDLC frame length field {length} but {size - 2} octets sent")
        end = size - 1  # index of the closing flag
        if _CHECK.unpack_from(data, end - 2)[0] != crc16_x25(data[1 : end - 2]):
            raise ChecksumError("HDLC frame check sequence (FCS) mismatch")
        dst_len = _address_length(data, 3, end - 2)
        if dst_len is None:
            raise DecodeError("HDLC destination address runs into the FCS")
        src_len = _address_length(data, 3 + dst_len, end - 2)
        if src_len is None:
            raise DecodeError("HDLC source address runs into the FCS")
        ctrl_at = 3 + dst_len + src_len
        if ctrl_at >= end - 2:
            raise DecodeError("HDLC frame has no control field")
        control = _control_of(data[ctrl_at])
        rest = end - 2 - (ctrl_at + 1)  # octets between control and FCS
        information = b""
        if rest:
            if rest < 2:
                raise DecodeError(f"{rest} stray octet(s) between control field and FCS")
            hcs_at = ctrl_at + 1
            if _CHECK.unpack_from(data, hcs_at)[0] != crc16_x25(data[1:hcs_at]):
                raise ChecksumError("HDLC header check sequence (HCS) mismatch")
            information = bytes(data[hcs_at + 2 : end - 2])
        return cls(
            _address_of(bytes(data[3 : 3 + dst_len])),
            _address_of(bytes(data[3 + dst_len : ctrl_at])),
            control,
            information,
            bool(fmt & _SEGMENTATION_BIT),
        )

    def summary(self) -> str:
        """One line for a trace, e.g. ``I(ns=1,nr=0,P) seg=0 info=23B dst=1/1259 src=16``."""
        return (
            f"{self.control} seg={int(self.segmented)} info={len(self.information)}B "
            f"dst={self.destination} src={self.source}"
        )


# Addresses and control fields are value objects, and a link's frames repeat the same
# few: each is decoded once (bounded; errors are not kept, they are raised each time).
_address_of: Final = functools.lru_cache(maxsize=256)(HdlcAddress.from_bytes)
_control_of: Final = functools.lru_cache(maxsize=256)(Control.from_byte)  # 256 octets


def describe_frame(frame: bytes | Frame) -> str:
    """One human line for a frame (raw octets or decoded); never raises."""
    if isinstance(frame, Frame):
        return frame.summary()
    try:
        return Frame.from_bytes(frame).summary()
    except DecodeError as exc:
        return f"invalid frame ({exc}) {len(frame)}B"


@dataclass(frozen=True)
class FrameTrace:
    """One frame as it went over the line, for a ``--dlms`` trace or a flight
    recorder: ``direction`` is ``"tx"`` or ``"rx"``; ``frame`` is ``None`` and
    ``error`` says why when received octets were dropped."""

    direction: Literal["tx", "rx"]
    raw: bytes
    frame: Frame | None = None
    error: str | None = None

    def summary(self) -> str:
        if self.frame is not None:
            return self.frame.summary()
        return f"dropped: {self.error} {len(self.raw)}B"


TraceHook = Callable[[FrameTrace], None]


# ---------------------------------------------------------------------------
# Deframer
# ---------------------------------------------------------------------------


@dataclass
class HdlcDeframer:
    """Cuts a byte stream into :class:`Frame` objects.

    Feed any chunks with :meth:`receive_data`; take frames with
    :meth:`next_frame`. Octets before a frame start are skipped and counted in
    ``garbage_bytes``; a frame with a bad HCS/FCS is dropped and counted in
    ``crc_errors``; any other malformed frame in ``format_errors``; a frame
    whose length field exceeds ``max_frame_length`` in ``overflows``. None of
    these ever raise: the deframer resynchronises on the next flag. The
    unparsed buffer never holds more than ``max_frame_length + 2`` octets.
    """

    max_frame_length: int = MAX_FRAME_LENGTH
    trace: TraceHook | None = None
    #: Skip runs without a plausible frame start in bulk (traced as one dropped run);
    #: False looks at every false start one by one (the reference the tests compare).
    bulk_skip: bool = True
    crc_errors: int = 0
    format_errors: int = 0
    garbage_bytes: int = 0
    overflows: int = 0
    frames: int = 0
    _buf: bytearray = field(default_factory=bytearray, repr=False)
    _ready: deque[Frame] = field(default_factory=deque, repr=False)

    def receive_data(self, data: bytes) -> None:
        self._buf += data
        self._scan()

    def next_frame(self) -> Frame | NeedData:
        return self._ready.popleft() if self._ready else NEED_DATA

    @property
    def buffered(self) -> int:
        """Octets held that are not yet a whole frame."""
        return len(self._buf)

    def set_max_info(self, max_info: int) -> None:
        """Bound frames to ``max_info`` octets of information plus the largest header."""
        self.max_frame_length = min(MAX_FRAME_LENGTH, max_info + _HEADER_OVERHEAD)

    def _drop(self, raw: bytes | bytearray, error: str) -> None:
        if self.trace is not None:
            self.trace(FrameTrace("rx", bytes(raw), None, error))

    def _skip(self, buf: bytearray, i: int, stop: int) -> None:
        """Count ``buf[i:stop]``, which holds no plausible frame start, as the scan
        below would have: its flags are not garbage, every other octet is; each flag
        with format type 3 is an overflow when its length field is too large, else
        a format error (a length too small, or addresses that are not well formed)."""
        self.garbage_bytes += stop - i - buf.count(FLAG, i, stop)
        # A start at k: buf[k] a flag, buf[k + 1] of format type 3 (buf[k + 2], its
        # length's low octet, is there: the look-ahead is at least a start long).
        starts = _mask(buf, i, stop, _IS_FLAG) & _mask(buf, i + 1, stop + 1, _IS_TYPE_3)
        if not starts:
            return
        if self.max_frame_length >= MAX_FRAME_LENGTH:  # no length field exceeds it
            self.format_errors += starts.bit_count()
            return
        above, equal, low = _length_tables(self.max_frame_length)
        over = starts & (_mask(buf, i + 1, stop + 1, above) | (
            _mask(buf, i + 1, stop + 1, equal) & _mask(buf, i + 2, stop + 2, low)))
        self.overflows += over.bit_count()
        self.format_errors += starts.bit_count() - over.bit_count()

    def _scan(self) -> None:
        buf = self._buf
        n = len(buf)
        i = 0
        # The daemon always traces (its flight recorder): the skip is bulk all the same,
        # else a "7E A0" flood costs a Python step and a trace per false start.
        bulk = self.bulk_skip
        traced = self.trace is not None
        plausible = -1  # the next plausible start found, or -1
        while i < n:
            if bulk and i > plausible:
                # Skip in C up to the next start worth a close look (or up to the
                # octets that cannot decide yet): linear in the garbage, however many
                # false starts ("7E A0 7E A0 ...") it holds.  A few octets are left to
                # the scan below, which is cheaper for them.
                match = _PLAUSIBLE_START.search(buf, i)
                plausible = match.start() if match else n
                stop = plausible if match else max(i, n - _START_OCTETS)
                if stop - i >= _BULK_MIN:
                    if traced:
                        self._drop(buf[i:stop], f"{stop - i} octets without a frame start")
                    self._skip(buf, i, stop)
                    i = stop
            start = buf.find(FLAG, i)
            if start < 0:
                self.garbage_bytes += n - i
                i = n
                break
            self.garbage_bytes += start - i
            i = start
            if n - i < 2:
                break
            if buf[i + 1] == FLAG:  # repeated flag (inter-frame fill)
                i += 1
                continue
            if buf[i + 1] >> 4 != _FORMAT_TYPE_3:
                # A closing flag followed by noise, or noise that is a 0x7E:
                # not a frame start. The octets after it count as garbage.
                i += 1
                continue
            if n - i < 3:
                break
            (fmt,) = _FORMAT.unpack_from(buf, i + 1)
            length = fmt & MAX_FRAME_LENGTH
            if length < _MIN_FRAME_LENGTH:
                self.format_errors += 1
                if traced:
                    self._drop(buf[i : i + 3], f"frame length {length} too small")
                i += 1
                continue
            if length > self.max_frame_length:
                self.overflows += 1
                if traced:
                    self._drop(buf[i : i + 3], f"frame length {length} > {self.max_frame_length}")
                i += 1
                continue
            verdict = self._check_header(buf, i, n, length)
            if verdict == "need":
                break
            if verdict != "ok":
                # The header itself is broken, so its length cannot be trusted:
                # resynchronise on the next flag after this one.
                if traced:
                    self._drop(buf[i : min(n, i + length + 2)], verdict)
                i += 1
                continue
            end = i + length + 1  # index of the closing flag
            if end >= n:
                break
            if buf[end] != FLAG:
                self.format_errors += 1
                if traced:
                    self._drop(buf[i : end + 1], "no closing flag at the frame length")
                i += 1
                continue
            raw = bytes(buf[i : end + 1])
            try:
                frame = Frame.from_bytes(raw)
            except ChecksumError as exc:
                self.crc_errors += 1
                self._drop(raw, str(exc))
            except DecodeError as exc:
                self.format_errors += 1
                self._drop(raw, str(exc))
            else:
                self.frames += 1
                self._ready.append(frame)
                if self.trace is not None:
                    self.trace(FrameTrace("rx", raw, frame))
            i = end  # the closing flag may open the next frame
        del buf[:i]

    def _check_header(self, buf: bytearray, i: int, n: int, length: int) -> str:
        """Validate the addresses and, when present, the HCS as soon as they have
        arrived, so that noise that looks like a frame start does not make us
        wait for a long bogus frame. Returns "ok", "need" or an error text (and
        counts the error)."""
        end = i + 1 + length  # exclusive end of the frame body
        try:
            dst = _address_length(buf, i + 3, min(n, end - 2))
            if dst is None:
                return "need" if n < end - 2 else self._format_error("address runs into FCS")
            src = _address_length(buf, i + 3 + dst, min(n, end - 2))
            if src is None:
                return "need" if n < end - 2 else self._format_error("address runs into FCS")
        except DecodeError as exc:
            return self._format_error(str(exc))
        hcs_at = i + 3 + dst + src + 1
        if hcs_at + 2 > end - 2:
            return "ok"  # no information field, the FCS covers the header
        if hcs_at + 2 > n:
            return "need"
        if _CHECK.unpack_from(buf, hcs_at)[0] != crc16_x25(buf[i + 1 : hcs_at]):
            self.crc_errors += 1
            return "HDLC header check sequence (HCS) mismatch"
        return "ok"

    def _format_error(self, text: str) -> str:
        self.format_errors += 1
        return text
