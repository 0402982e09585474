"""Codecs of the APDUs that meters push or wrap: data-notification and
general-block-transfer (pure, sans-I/O).

DLMS UA Green Book (DLMS UA 1000-2) Ed. 10, 9.5 "xDLMS APDUs" (ASN.1, paraphrase)::

    Data-Notification ::= SEQUENCE {                                   -- [15] 0x0F
        long-invoke-id-and-priority   Long-Invoke-Id-And-Priority,     -- Unsigned32
        date-time                     OCTET STRING,                    -- 0 or 12 octets
        notification-body             Notification-Body }              -- one Data

    General-Block-Transfer ::= SEQUENCE {                              -- [224] 0xE0
        block-control   Unsigned8,  -- bit 7 last-block, bit 6 streaming,
                                    -- bits 0-5 window (1..63)
        block-number        Unsigned16,
        block-number-ack    Unsigned16,
        block-data          OCTET STRING }

Long-Invoke-Id-And-Priority: bits 0-23 long-invoke-id, bit 28 self-descriptive, bit 29
processing-option (break on error), bit 30 service-class (1 confirmed), bit 31 priority
(1 high).  The blocks of a general-block-transfer carry consecutive slices of one APDU;
:class:`GbtReassembler` puts them back together, bounded in size and count.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from dlmsd.errors import DecodeError, LocalProtocolError
from dlmsd.protocol.axdr import AxdrReader, Data, DateTime, check_range, encode_data, encode_length

__all__ = [
    "DATA_NOTIFICATION",
    "GENERAL_BLOCK_TRANSFER",
    "DataNotification",
    "GbtReassembler",
    "GeneralBlockTransfer",
]

DATA_NOTIFICATION: Final = 0x0F
GENERAL_BLOCK_TRANSFER: Final = 0xE0
_DATE_TIME_SIZE: Final = 12
_GBT_HEAD: Final = struct.Struct(">BHH")


@dataclass(frozen=True)
class DataNotification:
    """data-notification (0x0F): a push of one Data, with an optional date-time."""

    long_invoke_id_and_priority: int
    body: Data
    date_time: bytes = b""  # the octets as sent: empty, or a 12-octet COSEM date-time

    def __post_init__(self) -> None:
        check_range("long-invoke-id-and-priority", self.long_invoke_id_and_priority,
                    0, 0xFFFFFFFF)
        if not isinstance(self.body, Data):
            raise LocalProtocolError("DataNotification body must be Data")

    @property
    def long_invoke_id(self) -> int:
        return self.long_invoke_id_and_priority & 0xFFFFFF

    @property
    def confirmed(self) -> bool:
        return bool(self.long_invoke_id_and_priority & (1 << 30))

    @property
    def high_priority(self) -> bool:
        return bool(self.long_invoke_id_and_priority & (1 << 31))

    def time_as_date_time(self) -> DateTime | None:
        """The date-time, when it has 12 octets (DecodeError if they are no date-time)."""
        if len(self.date_time) != _DATE_TIME_SIZE:
            return None
        return DateTime.from_bytes(self.date_time)

    def to_bytes(self) -> bytes:
        return (bytes((DATA_NOTIFICATION,)) + self.long_invoke_id_and_priority.to_bytes(4, "big")
                + encode_length(len(self.date_time)) + self.date_time + encode_data(self.body))

    @classmethod
    def from_bytes(cls, data: bytes) -> DataNotification:
        r = AxdrReader(bytes(data), 0, "data-notification")
        r.tag(DATA_NOTIFICATION)
        iid = r.u32("long-invoke-id-and-priority")
        stamp = r.octet_string("date-time")
        if stamp and len(stamp) != _DATE_TIME_SIZE:
            raise DecodeError(f"data-notification: date-time of {len(stamp)} octets "
                              f"(expected 0 or {_DATE_TIME_SIZE})")
        body = r.data("notification-body")
        r.expect_end()
        return cls(iid, body, stamp)


@dataclass(frozen=True)
class GeneralBlockTransfer:
    """general-block-transfer (0xE0): one block of a longer APDU."""

    block_number: int
    block_data: bytes
    last_block: bool = False
    streaming: bool = False
    window: int = 1
    block_number_ack: int = 0

    def __post_init__(self) -> None:
        check_range("block-number", self.block_number, 0, 0xFFFF)
        check_range("block-number-ack", self.block_number_ack, 0, 0xFFFF)
        check_range("window", self.window, 0, 63)

    @property
    def block_control(self) -> int:
        return (0x80 if self.last_block else 0) | (0x40 if self.streaming else 0) | self.window

    def to_bytes(self) -> bytes:
        return (bytes((GENERAL_BLOCK_TRANSFER,))
                + _GBT_HEAD.pack(self.block_control, self.block_number, self.block_number_ack)
                + encode_length(len(self.block_data)) + self.block_data)

    @classmethod
    def from_bytes(cls, data: bytes) -> GeneralBlockTransfer:
        r = AxdrReader(bytes(data), 0, "general-block-transfer")
        r.tag(GENERAL_BLOCK_TRANSFER)
        control = r.u8("block-control")
        number = r.u16("block-number")
        ack = r.u16("block-number-ack")
        block = r.octet_string("block-data")
        r.expect_end()
        return cls(number, block, bool(control & 0x80), bool(control & 0x40), control & 0x3F,
                   ack)


class GbtReassembler:
    """Joins the blocks of one general-block-transfer into the APDU they carry.

    ``add`` returns the whole APDU after the last block, else None.  A block out of
    sequence, or more than ``max_size`` octets or ``max_blocks`` blocks, is a
    :class:`DecodeError` (and the blocks so far are dropped).
    """

    def __init__(self, *, max_size: int = 1 << 20, max_blocks: int = 10_000) -> None:
        self.max_size = max_size
        self.max_blocks = max_blocks
        self._parts: list[bytes] = []
        self._size = 0
        self._next: int | None = None

    @property
    def pending(self) -> int:
        """Blocks held, waiting for the last one."""
        return len(self._parts)

    def add(self, block: GeneralBlockTransfer) -> bytes | None:
        if self._next is not None and block.block_number != self._next:
            expected = self._next
            self.reset()
            raise DecodeError(f"general-block-transfer block {block.block_number} out of "
                              f"sequence (expected {expected})")
        self._size += len(block.block_data)
        if self._size > self.max_size or len(self._parts) >= self.max_blocks:
            self.reset()
            raise DecodeError(f"general-block-transfer larger than {self.max_size} octets "
                              f"or {self.max_blocks} blocks")
        self._parts.append(block.block_data)
        self._next = (block.block_number + 1) & 0xFFFF
        if not block.last_block:
            return None
        whole = b"".join(self._parts)
        self.reset()
        return whole

    def reset(self) -> None:
        self._parts.clear()
        self._size = 0
        self._next = None
