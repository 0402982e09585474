"""The floor: a plain table-driven decoder and encoder of the benchmark's frames.

What the least Python can do with the same octets: one CRC table, one dispatch table
per A-XDR tag, precompiled ``struct`` formats, no objects but tuples and lists.  It
checks HCS and FCS, lengths and tags (a wrong one raises ``ValueError``), and nothing
of the protocol state; it is the yardstick of issue 16 ("every path at most 3 times
the floor"), not a codec to use.  Clauses: IEC 62056-46 (HDLC frame format type 3,
HCS/FCS CRC-16/X.25), IEC 62056-6-2 / Green Book (A-XDR data, GET APDUs).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


CRC = _crc_table()


def crc16(data: bytes, start: int, stop: int) -> int:
    crc, table = 0xFFFF, CRC
    for i in range(start, stop):
        crc = (crc >> 8) ^ table[(crc ^ data[i]) & 0xFF]
    return crc ^ 0xFFFF


# ------------------------------------------------------------------------ HDLC
def frame_info(frame: bytes) -> tuple[int, bytes]:
    """(control, information) of one frame, flags included; HCS and FCS checked."""
    n = len(frame)
    if frame[0] != 0x7E or frame[-1] != 0x7E or ((frame[1] & 7) << 8 | frame[2]) != n - 2:
        raise ValueError("not a frame")
    pos = 3
    while not frame[pos] & 1:  # destination address: ends with an odd octet
        pos += 1
    pos += 1
    while not frame[pos] & 1:  # source address
        pos += 1
    pos += 1
    control = frame[pos]
    pos += 1
    if (frame[n - 2] << 8 | frame[n - 3]) != crc16(frame, 1, n - 3):
        raise ValueError("FCS")
    if pos == n - 3:
        return control, b""
    if (frame[pos + 1] << 8 | frame[pos]) != crc16(frame, 1, pos):
        raise ValueError("HCS")
    return control, frame[pos + 2:n - 3]


def apdu_of(frames: list[bytes]) -> bytes:
    """The APDU carried by a frame or a run of segments (LLC header removed)."""
    info = b"".join(frame_info(f)[1] for f in frames)
    return info[3:]


def frames_of(header: bytes, controls: list[int], apdu: bytes, llc: bytes,
              max_info: int) -> list[bytes]:
    """Frame ``llc + apdu`` in segments of ``max_info`` with the given controls;
    ``header`` is the addresses (destination, source)."""
    info = llc + apdu
    chunks = [info[i:i + max_info] for i in range(0, len(info), max_info)]
    out = []
    for k, chunk in enumerate(chunks):
        seg = 0x0800 if k < len(chunks) - 1 else 0
        length = 2 + len(header) + 1 + 2 + len(chunk) + 2
        head = bytearray(struct.pack(">H", 0xA000 | seg | length))
        head += header
        head.append(controls[k])
        hcs = crc16(head, 0, len(head))
        head += bytes((hcs & 0xFF, hcs >> 8))
        head += chunk
        fcs = crc16(head, 0, len(head))
        head += bytes((fcs & 0xFF, fcs >> 8))
        out.append(b"\x7e" + bytes(head) + b"\x7e")
    return out


# ------------------------------------------------------------------------ A-XDR
_FIXED: dict[int, struct.Struct] = {
    3: struct.Struct(">?"), 5: struct.Struct(">i"), 6: struct.Struct(">I"),
    15: struct.Struct(">b"), 16: struct.Struct(">h"), 17: struct.Struct(">B"),
    18: struct.Struct(">H"), 20: struct.Struct(">q"), 21: struct.Struct(">Q"),
    22: struct.Struct(">B"), 23: struct.Struct(">f"), 24: struct.Struct(">d"),
}
_FIXED_BYTES = {25: 12, 26: 5, 27: 4}  # date-time, date, time: kept as octets

Decoder = Callable[[bytes, int], tuple[Any, int]]
DECODE: list[Decoder | None] = [None] * 256


def _length(buf: bytes, pos: int) -> tuple[int, int]:
    n = buf[pos]
    if n < 0x80:
        return n, pos + 1
    k = n & 0x7F
    return int.from_bytes(buf[pos + 1:pos + 1 + k], "big"), pos + 1 + k


def decode(buf: bytes, pos: int) -> tuple[Any, int]:
    decoder = DECODE[buf[pos]]
    if decoder is None:
        raise ValueError(f"tag {buf[pos]}")
    return decoder(buf, pos + 1)


def _sequence(buf: bytes, pos: int) -> tuple[Any, int]:
    n, pos = _length(buf, pos)
    items = []
    for _ in range(n):
        item, pos = decode(buf, pos)
        items.append(item)
    return items, pos


def _octets(buf: bytes, pos: int) -> tuple[Any, int]:
    n, pos = _length(buf, pos)
    if pos + n > len(buf):
        raise ValueError("octet-string overruns")
    return buf[pos:pos + n], pos + n


def _null(buf: bytes, pos: int) -> tuple[Any, int]:
    return None, pos


def _fixed(fmt: struct.Struct) -> Decoder:
    size, unpack = fmt.size, fmt.unpack_from

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        return unpack(buf, pos)[0], pos + size
    return dec


def _raw(size: int) -> Decoder:
    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        return buf[pos:pos + size], pos + size
    return dec


DECODE[0] = _null
DECODE[1] = DECODE[2] = _sequence
DECODE[9] = DECODE[10] = DECODE[12] = _octets
for _tag, _fmt in _FIXED.items():
    DECODE[_tag] = _fixed(_fmt)
for _tag, _size in _FIXED_BYTES.items():
    DECODE[_tag] = _raw(_size)


def _encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def encode(tag: int, value: Any, out: bytearray) -> None:
    """A-XDR of ``(tag, value)``; sequences are lists of (tag, value) pairs."""
    out.append(tag)
    fmt = _FIXED.get(tag)
    if fmt is not None:
        out += fmt.pack(value)
    elif tag in (1, 2):
        out += _encode_length(len(value))
        for item_tag, item in value:
            encode(item_tag, item, out)
    elif tag in (9, 10, 12):
        out += _encode_length(len(value))
        out += value
    elif tag in _FIXED_BYTES:
        out += value
    elif tag != 0:
        raise ValueError(f"tag {tag}")


def typed(buf: bytes, pos: int) -> tuple[tuple[int, Any], int]:
    """Decode keeping the tags, for the encoder: (tag, value or list of (tag, value))."""
    tag = buf[pos]
    if tag in (1, 2):
        n, pos = _length(buf, pos + 1)
        items = []
        for _ in range(n):
            item, pos = typed(buf, pos)
            items.append(item)
        return (tag, items), pos
    value, pos = decode(buf, pos)
    return (tag, value), pos


# ------------------------------------------------------------------------ GET APDUs
def get_response(apdu: bytes, keep_tags: bool = False) -> list[Any]:
    """GET-Response-Normal or -With-List: the list of results (value, or (1, dar))."""
    if apdu[0] != 0xC4:
        raise ValueError("not a GET-Response")
    dec = typed if keep_tags else decode
    if apdu[1] == 1:
        if apdu[3] != 0:
            return [(1, apdu[4])]
        value, pos = dec(apdu, 4)
        results = [value]
    elif apdu[1] == 3:
        n, pos = _length(apdu, 3)
        results = []
        for _ in range(n):
            if apdu[pos] == 0:
                value, pos = dec(apdu, pos + 1)
                results.append(value)
            else:
                results.append((1, apdu[pos + 1]))
                pos += 2
    else:
        raise ValueError("GET-Response choice")
    if pos != len(apdu):
        raise ValueError("trailing octets")
    return results


def encode_get_response(kind: int, iid: int, results: list[tuple[int, Any]]) -> bytes:
    out = bytearray((0xC4, kind, iid))
    if kind == 3:
        out += _encode_length(len(results))
    for tag, value in results:
        out.append(0)
        encode(tag, value, out)
    return bytes(out)


_DESCRIPTOR = struct.Struct(">H6sbB")


def get_request_with_list(apdu: bytes) -> list[tuple[int, bytes, int]]:
    if apdu[0] != 0xC0 or apdu[1] != 3:
        raise ValueError("not a GET-Request-With-List")
    n, pos = _length(apdu, 3)
    items = []
    for _ in range(n):
        class_id, obis, attribute, selection = _DESCRIPTOR.unpack_from(apdu, pos)
        if selection:
            raise ValueError("selective access")
        items.append((class_id, obis, attribute))
        pos += 10
    if pos != len(apdu):
        raise ValueError("trailing octets")
    return items


def encode_get_request_with_list(iid: int, items: list[tuple[int, bytes, int]]) -> bytes:
    out = bytearray((0xC0, 3, iid))
    out += _encode_length(len(items))
    for class_id, obis, attribute in items:
        out += _DESCRIPTOR.pack(class_id, obis, attribute, 0)
    return bytes(out)
