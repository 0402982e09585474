"""xDLMS service APDUs with short name referencing (IEC 62056-5-3, DLMS UA Green Book).

This module owns the bytes of the SN services: ReadRequest/ReadResponse,
WriteRequest/WriteResponse, UnconfirmedWriteRequest and InformationReportRequest, the
``Variable-Access-Specification`` CHOICE they share, the reassembly of a ReadResponse
sent in blocks (:class:`SnBlockReassembler`), the short-name arithmetic of the COSEM
interface classes, and the parser of the Association SN ``object_list``.
:func:`decode_sn_apdu` decodes these and hands every other tag to
:func:`dlmsd.protocol.apdu.decode_apdu` (ACSE, ExceptionResponse, confirmed-service-error),
so it is the one dispatcher of an SN association.  Pure: no I/O, no clock, no logging.

Conventions (the same as :mod:`dlmsd.protocol.xdlms`): wire types are frozen dataclasses
with ``to_bytes()`` and ``from_bytes(data)`` (whole buffer, trailing bytes are a
:class:`DecodeError`); parts of APDUs also have ``decode(buf, pos) -> (obj, new_pos)``.
Decoding raises only :class:`DecodeError`; values that cannot be encoded raise
:class:`LocalProtocolError`.  SN APDUs carry no invoke-id.

Short names (``ObjectName ::= Integer16``) are kept as the unsigned 16-bit value the
two octets spell (0xFA08, not -1528), as meters and tools print them.

Reading two attributes::

    request = ReadRequest.of(0x1208, 0xFD08)      # 05 02 02 12 08 02 FD 08
    response = decode_sn_apdu(received)           # ReadResponse
    response.results                              # (Data | DataAccessResult, ...)

A value too long for one APDU comes as ``ReadResponse(DataBlockResult(...),)``; each
block is acknowledged with ``SnBlockReassembler.next_request()`` (a ReadRequest with
block-number-access) and the reassembled raw data is decoded by :func:`decode_read_blocks`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import ClassVar, Final, Self

from dlmsd.errors import DataAccessError, DecodeError, LocalProtocolError
from dlmsd.protocol.apdu import Apdu, decode_apdu
from dlmsd.protocol.axdr import (
    AxdrReader,
    Data,
    DataType,
    DateTime,
    check_range,
    decode_data_all,
    decode_whole,
    describe,
    encode_data,
    encode_length,
)
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.xdlms import ApduTag, DataAccessResult, Reassembler

__all__ = [
    "ASSOCIATION_SN_BASE_NAME",
    "ATTRIBUTE_STEP",
    "FIRST_METHOD_OFFSET",
    "LOGICAL_DEVICE_NAME_BASE_NAME",
    "AnySnApdu",
    "BlockNumber",
    "BlockNumberAccess",
    "DataBlockResult",
    "InformationReportRequest",
    "ParameterizedAccess",
    "ReadDataBlockAccess",
    "ReadRequest",
    "ReadResponse",
    "ReadResult",
    "SnApdu",
    "SnBlockReassembler",
    "UnconfirmedWriteRequest",
    "VariableAccessSpecification",
    "VariableAccessTag",
    "VariableName",
    "WriteDataBlockAccess",
    "WriteRequest",
    "WriteResponse",
    "WriteResult",
    "attribute_short_name",
    "base_name_of",
    "decode_read_blocks",
    "decode_read_result_list",
    "decode_sn_apdu",
    "decode_variable_access",
    "describe_sn_apdu",
    "method_short_name",
    "parse_sn_object_list",
]

_U16: Final = struct.Struct(">H")


def _check_name(value: int) -> None:
    check_range("short name", value, 0, 0xFFFF)


def _check_block(value: int) -> None:
    check_range("block-number", value, 0, 0xFFFF)


def _tuple_of(name: str, value: object, kinds: type | tuple[type, ...]) -> None:
    if not isinstance(value, tuple) or not all(isinstance(item, kinds) for item in value):
        raise LocalProtocolError(f"{name} must be a tuple of {_kind_names(kinds)}")


def _kind_names(kinds: type | tuple[type, ...]) -> str:
    items = kinds if isinstance(kinds, tuple) else (kinds,)
    return " | ".join(k.__name__ for k in items)


def _choice(r: AxdrReader, expected: int) -> None:
    got = r.u8("choice")
    if got != expected:
        raise DecodeError(f"{r.what}: choice {got} at offset {r.pos - 1}, expected {expected}")


def _name_text(short_name: int) -> str:
    return f"0x{short_name:04X}"


# =========================================================================== Variable-Access
# Green Book, xDLMS (SN services):
#   Variable-Access-Specification ::= CHOICE {
#     variable-name            [2] IMPLICIT ObjectName,
#     -- detailed-access       [3] is not used in DLMS/COSEM
#     parameterized-access     [4] IMPLICIT Parameterized-Access,
#     block-number-access      [5] IMPLICIT Block-Number-Access,
#     read-data-block-access   [6] IMPLICIT Read-Data-Block-Access,
#     write-data-block-access  [7] IMPLICIT Write-Data-Block-Access }
#   ObjectName ::= Integer16
#   Parameterized-Access ::= SEQUENCE { variable-name ObjectName, selector Unsigned8,
#                                       parameter Data }
#   Block-Number-Access ::= SEQUENCE { block-number Unsigned16 }
#   Read-Data-Block-Access ::= SEQUENCE { last-block BOOLEAN, block-number Unsigned16,
#                                         raw-data OCTET STRING }
#   Write-Data-Block-Access ::= SEQUENCE { last-block BOOLEAN, block-number Unsigned16 }
# A-XDR: the CHOICE index as one octet, then the alternative.
class VariableAccessTag(IntEnum):
    """The CHOICE index of each Variable-Access-Specification alternative."""

    VARIABLE_NAME = 2
    DETAILED_ACCESS = 3
    PARAMETERIZED_ACCESS = 4
    BLOCK_NUMBER_ACCESS = 5
    READ_DATA_BLOCK_ACCESS = 6
    WRITE_DATA_BLOCK_ACCESS = 7


@dataclass(frozen=True)
class VariableName:
    """variable-name [2]: one attribute (or method) by its short name."""

    short_name: int

    CHOICE = VariableAccessTag.VARIABLE_NAME

    def __post_init__(self) -> None:
        _check_name(self.short_name)

    def to_bytes(self) -> bytes:
        return bytes((self.CHOICE,)) + _U16.pack(self.short_name)

    @classmethod
    def decode(cls, buf: bytes, pos: int = 0) -> tuple[VariableName, int]:
        r = AxdrReader(buf, pos, "variable-name")
        _choice(r, cls.CHOICE)
        return cls(r.u16("ObjectName")), r.pos

    @classmethod
    def from_bytes(cls, data: bytes) -> VariableName:
        return decode_whole(cls.decode, data, "variable-name")

    def describe(self) -> str:
        return _name_text(self.short_name)


@dataclass(frozen=True)
class ParameterizedAccess:
    """parameterized-access [4]: read with a selector and parameter (SN selective access,
    e.g. selector 1 = range of a profile buffer), or call a method with parameters."""

    short_name: int
    selector: int
    parameter: Data

    CHOICE = VariableAccessTag.PARAMETERIZED_ACCESS

    def __post_init__(self) -> None:
        _check_name(self.short_name)
        check_range("selector", self.selector, 0, 255)
        if not isinstance(self.parameter, Data):
            raise LocalProtocolError("parameterized-access parameter must be Data")

    def to_bytes(self) -> bytes:
        return (bytes((self.CHOICE,)) + _U16.pack(self.short_name) + bytes((self.selector,))
                + encode_data(self.parameter))

    @classmethod
    def decode(cls, buf: bytes, pos: int = 0) -> tuple[ParameterizedAccess, int]:
        r = AxdrReader(buf, pos, "parameterized-access")
        _choice(r, cls.CHOICE)
        name = r.u16("variable-name")
        selector = r.u8("selector")
        return cls(name, selector, r.data("parameter")), r.pos

    @classmethod
    def from_bytes(cls, data: bytes) -> ParameterizedAccess:
        return decode_whole(cls.decode, data, "parameterized-access")

    def describe(self) -> str:
        return (f"{_name_text(self.short_name)} sel={self.selector} "
                f"{describe(self.parameter, limit=4)}")


@dataclass(frozen=True)
class BlockNumberAccess:
    """block-number-access [5]: acknowledges block ``block_number`` of a ReadResponse
    and asks for the next one."""

    block_number: int

    CHOICE = VariableAccessTag.BLOCK_NUMBER_ACCESS

    def __post_init__(self) -> None:
        _check_block(self.block_number)

    def to_bytes(self) -> bytes:
        return bytes((self.CHOICE,)) + _U16.pack(self.block_number)

    @classmethod
    def decode(cls, buf: bytes, pos: int = 0) -> tuple[BlockNumberAccess, int]:
        r = AxdrReader(buf, pos, "block-number-access")
        _choice(r, cls.CHOICE)
        return cls(r.u16("block-number")), r.pos

    @classmethod
    def from_bytes(cls, data: bytes) -> BlockNumberAccess:
        return decode_whole(cls.decode, data, "block-number-access")

    def describe(self) -> str:
        return f"block-number-access {self.block_number}"


@dataclass(frozen=True)
class _RawDataBlock:
    """The shape read-data-block-access [6] and data-block-result [2] share: the
    CHOICE index, last-block BOOLEAN, block-number Unsigned16, raw-data OCTET STRING."""

    last_block: bool
    block_number: int
    raw_data: bytes

    CHOICE: ClassVar[int]
    _WHAT: ClassVar[str]

    def __post_init__(self) -> None:
        _check_block(self.block_number)
        if not isinstance(self.raw_data, bytes):
            raise LocalProtocolError(f"{self._WHAT} raw-data must be bytes")

    def to_bytes(self) -> bytes:
        return (bytes((self.CHOICE, 1 if self.last_block else 0)) + _U16.pack(self.block_number)
                + encode_length(len(self.raw_data)) + self.raw_data)

    @classmethod
    def decode(cls, buf: bytes, pos: int = 0) -> tuple[Self, int]:
        r = AxdrReader(buf, pos, cls._WHAT)
        _choice(r, cls.CHOICE)
        last = r.boolean("last-block")
        number = r.u16("block-number")
        return cls(last, number, r.octet_string("raw-data")), r.pos

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        return decode_whole(cls.decode, data, cls._WHAT)


@dataclass(frozen=True)
class ReadDataBlockAccess(_RawDataBlock):
    """read-data-block-access [6]: one block of a ReadRequest too long for one APDU."""

    CHOICE: ClassVar[int] = VariableAccessTag.READ_DATA_BLOCK_ACCESS
    _WHAT: ClassVar[str] = "read-data-block-access"

    def describe(self) -> str:
        last = " last" if self.last_block else ""
        return f"read-data-block {self.block_number}{last} {len(self.raw_data)} bytes"


@dataclass(frozen=True)
class WriteDataBlockAccess:
    """write-data-block-access [7]: one block of a WriteRequest too long for one APDU
    (its raw data travels in the list-of-data as one octet-string)."""

    last_block: bool
    block_number: int

    CHOICE = VariableAccessTag.WRITE_DATA_BLOCK_ACCESS

    def __post_init__(self) -> None:
        _check_block(self.block_number)

    def to_bytes(self) -> bytes:
        return bytes((self.CHOICE, 1 if self.last_block else 0)) + _U16.pack(self.block_number)

    @classmethod
    def decode(cls, buf: bytes, pos: int = 0) -> tuple[WriteDataBlockAccess, int]:
        r = AxdrReader(buf, pos, "write-data-block-access")
        _choice(r, cls.CHOICE)
        last = r.boolean("last-block")
        return cls(last, r.u16("block-number")), r.pos

    @classmethod
    def from_bytes(cls, data: bytes) -> WriteDataBlockAccess:
        return decode_whole(cls.decode, data, "write-data-block-access")

    def describe(self) -> str:
        return f"write-data-block {self.block_number}{' last' if self.last_block else ''}"


VariableAccessSpecification = (
    VariableName | ParameterizedAccess | BlockNumberAccess | ReadDataBlockAccess
    | WriteDataBlockAccess
)
_VARIABLE_ACCESS_KINDS: Final = (VariableName, ParameterizedAccess, BlockNumberAccess,
                                 ReadDataBlockAccess, WriteDataBlockAccess)
_VARIABLE_DECODERS: Final[dict[int, Callable[[bytes, int],
                                             tuple[VariableAccessSpecification, int]]]] = {
    VariableAccessTag.VARIABLE_NAME: VariableName.decode,
    VariableAccessTag.PARAMETERIZED_ACCESS: ParameterizedAccess.decode,
    VariableAccessTag.BLOCK_NUMBER_ACCESS: BlockNumberAccess.decode,
    VariableAccessTag.READ_DATA_BLOCK_ACCESS: ReadDataBlockAccess.decode,
    VariableAccessTag.WRITE_DATA_BLOCK_ACCESS: WriteDataBlockAccess.decode,
}
# The shortest alternative (variable-name, block-number-access) takes 3 octets.
_MIN_VARIABLE_ACCESS: Final = 3


def decode_variable_access(buf: bytes, pos: int = 0) -> tuple[VariableAccessSpecification, int]:
    """Decode one Variable-Access-Specification at ``buf[pos]``: ``(item, new_pos)``."""
    if not 0 <= pos < len(buf):
        raise DecodeError(f"Variable-Access-Specification: truncated at offset {pos}")
    choice = buf[pos]
    decoder = _VARIABLE_DECODERS.get(choice)
    if decoder is not None:
        return decoder(buf, pos)
    if choice == VariableAccessTag.DETAILED_ACCESS:
        raise DecodeError(f"Variable-Access-Specification: detailed-access [3] at offset {pos} "
                          "is not used in DLMS/COSEM")
    raise DecodeError(f"Variable-Access-Specification: unknown choice {choice} at offset {pos}")


def _encode_variables(variables: tuple[VariableAccessSpecification, ...]) -> bytes:
    return encode_length(len(variables)) + b"".join(v.to_bytes() for v in variables)


def _decode_variables(r: AxdrReader, field_name: str) -> tuple[VariableAccessSpecification, ...]:
    count = r.sequence_count(field_name, _MIN_VARIABLE_ACCESS)
    items: list[VariableAccessSpecification] = []
    for _ in range(count):
        item, r.pos = decode_variable_access(r.buf, r.pos)
        items.append(item)
    return tuple(items)


def _encode_values(values: tuple[Data, ...]) -> bytes:
    return encode_length(len(values)) + b"".join(encode_data(v) for v in values)


def _decode_values(r: AxdrReader) -> tuple[Data, ...]:
    count = r.sequence_count("list-of-data", 1)
    return tuple(r.data(f"list-of-data item {i + 1}") for i in range(count))


def _describe_writes(variables: tuple[VariableAccessSpecification, ...],
                     values: tuple[Data, ...]) -> str:
    if len(variables) == len(values):
        return "[" + ", ".join(f"{v.describe()} = {describe(d, limit=4)}"
                               for v, d in zip(variables, values, strict=True)) + "]"
    return ("[" + ", ".join(v.describe() for v in variables) + "] = ["
            + ", ".join(describe(d, limit=4) for d in values) + "]")


# =========================================================================== results
# Green Book: ReadResponse ::= SEQUENCE OF CHOICE {
#   data               [0] Data,
#   data-access-error  [1] IMPLICIT Data-Access-Result,
#   data-block-result  [2] IMPLICIT Data-Block-Result,
#   block-number       [3] IMPLICIT Unsigned16 }
#   Data-Block-Result ::= SEQUENCE { last-block BOOLEAN, block-number Unsigned16,
#                                    raw-data OCTET STRING }
# WriteResponse ::= SEQUENCE OF CHOICE {
#   success [0] IMPLICIT NULL, data-access-error [1] IMPLICIT Data-Access-Result,
#   block-number [2] Unsigned16 }
@dataclass(frozen=True)
class DataBlockResult(_RawDataBlock):
    """data-block-result [2]: one block of a ReadResponse too long for one APDU.

    The raw data of all blocks together is the encoded list of results (SEQUENCE OF
    CHOICE { data, data-access-error }), see :func:`decode_read_blocks`.
    """

    CHOICE: ClassVar[int] = 2
    _WHAT: ClassVar[str] = "data-block-result"

    def describe(self) -> str:
        last = " last" if self.last_block else ""
        return (f"data-block-result block={self.block_number}{last} "
                f"raw-data {len(self.raw_data)} bytes")


@dataclass(frozen=True)
class BlockNumber:
    """block-number (ReadResponse [3], WriteResponse [2]): the server acknowledges block
    ``block_number`` of a request the client sent in blocks."""

    block_number: int

    def __post_init__(self) -> None:
        _check_block(self.block_number)

    def describe(self) -> str:
        return f"block-number {self.block_number}"


ReadResult = Data | DataAccessResult | DataBlockResult | BlockNumber
#: One WriteResponse item: success [0] is ``DataAccessResult.SUCCESS``.
WriteResult = DataAccessResult | BlockNumber

_READ_DATA: Final = 0  # the CHOICE data [0] of a read result
_READ_BLOCK_NUMBER: Final = 3
_WRITE_BLOCK_NUMBER: Final = 2


def _encode_read_result(result: ReadResult) -> bytes:
    if isinstance(result, DataAccessResult):
        return bytes((1, int(result)))
    if isinstance(result, DataBlockResult):
        return result.to_bytes()
    if isinstance(result, BlockNumber):
        return bytes((_READ_BLOCK_NUMBER,)) + _U16.pack(result.block_number)
    if isinstance(result, Data):
        return bytes((_READ_DATA,)) + encode_data(result)
    raise LocalProtocolError(f"not a ReadResponse result: {type(result).__name__}")


def _decode_read_result(r: AxdrReader, field_name: str, *, blocks: bool = True) -> ReadResult:
    at = r.pos
    choice = r.u8(f"{field_name} choice")
    if choice == _READ_DATA:
        return r.data(field_name)
    if choice == 1:
        return DataAccessResult(r.u8(f"{field_name} data-access-error"))
    if blocks and choice == DataBlockResult.CHOICE:
        block, r.pos = DataBlockResult.decode(r.buf, at)
        return block
    if blocks and choice == _READ_BLOCK_NUMBER:
        return BlockNumber(r.u16(f"{field_name} block-number"))
    allowed = ("0 data, 1 data-access-error, 2 data-block-result, 3 block-number" if blocks
               else "0 data, 1 data-access-error")
    raise DecodeError(f"{r.what}: {field_name} choice {choice} at offset {at} ({allowed})")


def _describe_read_result(result: ReadResult) -> str:
    if isinstance(result, DataAccessResult):
        return result.label
    if isinstance(result, DataBlockResult | BlockNumber):
        return result.describe()
    return describe(result, limit=8)


def _encode_write_result(result: WriteResult) -> bytes:
    if isinstance(result, BlockNumber):
        return bytes((_WRITE_BLOCK_NUMBER,)) + _U16.pack(result.block_number)
    if isinstance(result, DataAccessResult):
        return b"\x00" if result is DataAccessResult.SUCCESS else bytes((1, int(result)))
    raise LocalProtocolError(f"not a WriteResponse result: {type(result).__name__}")


def _decode_write_result(r: AxdrReader, field_name: str) -> WriteResult:
    at = r.pos
    choice = r.u8(f"{field_name} choice")
    if choice == 0:
        return DataAccessResult.SUCCESS
    if choice == 1:
        # data-access-error(success) contradicts itself; it is read as success.
        return DataAccessResult(r.u8(f"{field_name} data-access-error"))
    if choice == _WRITE_BLOCK_NUMBER:
        return BlockNumber(r.u16(f"{field_name} block-number"))
    raise DecodeError(f"{r.what}: {field_name} choice {choice} at offset {at} "
                      "(0 success, 1 data-access-error, 2 block-number)")


# =========================================================================== APDUs
# Green Book: ReadRequest ::= SEQUENCE OF Variable-Access-Specification
@dataclass(frozen=True)
class ReadRequest:
    """Read one or more variables: the SN counterpart of GET (several = GET-with-list)."""

    variables: tuple[VariableAccessSpecification, ...]

    TAG = ApduTag.READ_REQUEST

    def __post_init__(self) -> None:
        _tuple_of("ReadRequest variables", self.variables, _VARIABLE_ACCESS_KINDS)

    @classmethod
    def of(cls, *short_names: int) -> ReadRequest:
        """A ReadRequest of plain variable-names: ``ReadRequest.of(0xFA08)``."""
        return cls(tuple(VariableName(name) for name in short_names))

    def to_bytes(self) -> bytes:
        return bytes((self.TAG,)) + _encode_variables(self.variables)

    @classmethod
    def from_bytes(cls, data: bytes) -> ReadRequest:
        r = AxdrReader(data, 0, "ReadRequest")
        r.tag(cls.TAG)
        variables = _decode_variables(r, "variable-access-specification")
        r.expect_end()
        return cls(variables)

    def describe(self) -> str:
        """E.g. ``READ.req [0xFA08, 0x1208]``."""
        return "READ.req [" + ", ".join(v.describe() for v in self.variables) + "]"


@dataclass(frozen=True)
class ReadResponse:
    """One result per variable of the ReadRequest, in order; or one data-block-result."""

    results: tuple[ReadResult, ...]

    TAG = ApduTag.READ_RESPONSE

    def __post_init__(self) -> None:
        _tuple_of("ReadResponse results", self.results,
                  (Data, DataAccessResult, DataBlockResult, BlockNumber))

    def to_bytes(self) -> bytes:
        return (bytes((self.TAG,)) + encode_length(len(self.results))
                + b"".join(_encode_read_result(result) for result in self.results))

    @classmethod
    def from_bytes(cls, data: bytes) -> ReadResponse:
        r = AxdrReader(data, 0, "ReadResponse")
        r.tag(cls.TAG)
        count = r.sequence_count("result list", 2)
        results = tuple(_decode_read_result(r, f"result {i + 1}") for i in range(count))
        r.expect_end()
        return cls(results)

    def describe(self) -> str:
        """E.g. ``READ.res [double-long-unsigned 5, object-undefined]``."""
        return "READ.res [" + ", ".join(_describe_read_result(x) for x in self.results) + "]"


# Green Book: WriteRequest ::= SEQUENCE {
#   variable-access-specification SEQUENCE OF Variable-Access-Specification,
#   list-of-data                  SEQUENCE OF Data }
#   UnconfirmedWriteRequest ::= the same SEQUENCE
@dataclass(frozen=True)
class _WriteBody:
    """The SEQUENCE shared by WriteRequest and UnconfirmedWriteRequest (counts are not
    forced equal on decoding: the meter judges)."""

    variables: tuple[VariableAccessSpecification, ...]
    values: tuple[Data, ...]

    TAG = ApduTag.WRITE_REQUEST
    NAME = "WriteRequest"
    LABEL = "WRITE.req"

    def __post_init__(self) -> None:
        _tuple_of(f"{self.NAME} variables", self.variables, _VARIABLE_ACCESS_KINDS)
        _tuple_of(f"{self.NAME} values", self.values, Data)

    def to_bytes(self) -> bytes:
        return (bytes((self.TAG,)) + _encode_variables(self.variables)
                + _encode_values(self.values))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        r = AxdrReader(data, 0, cls.NAME)
        r.tag(cls.TAG)
        variables = _decode_variables(r, "variable-access-specification")
        values = _decode_values(r)
        r.expect_end()
        return cls(variables, values)

    def describe(self) -> str:
        """E.g. ``WRITE.req [0x1208 = double-long 5]``."""
        return f"{self.LABEL} {_describe_writes(self.variables, self.values)}"


@dataclass(frozen=True)
class WriteRequest(_WriteBody):
    """Write one value per variable; the meter answers with a WriteResponse."""


@dataclass(frozen=True)
class UnconfirmedWriteRequest(_WriteBody):
    """A WriteRequest the server does not answer (meters also push these)."""

    TAG = ApduTag.UNCONFIRMED_WRITE_REQUEST
    NAME = "UnconfirmedWriteRequest"
    LABEL = "UNCONFIRMED-WRITE.req"


@dataclass(frozen=True)
class WriteResponse:
    """One result per written variable: ``DataAccessResult.SUCCESS`` is success [0].

    data-access-error(success), which contradicts itself, is decoded as success and
    therefore re-encoded as success [0].
    """

    results: tuple[WriteResult, ...]

    TAG = ApduTag.WRITE_RESPONSE

    def __post_init__(self) -> None:
        _tuple_of("WriteResponse results", self.results, (DataAccessResult, BlockNumber))

    def check(self) -> None:
        """Raise :class:`~dlmsd.errors.DataAccessError` for the first failed variable."""
        for index, result in enumerate(self.results, start=1):
            if isinstance(result, DataAccessResult) and result is not DataAccessResult.SUCCESS:
                raise DataAccessError(f"WRITE refused for variable {index}: {result.describe()}",
                                      int(result))

    def to_bytes(self) -> bytes:
        return (bytes((self.TAG,)) + encode_length(len(self.results))
                + b"".join(_encode_write_result(result) for result in self.results))

    @classmethod
    def from_bytes(cls, data: bytes) -> WriteResponse:
        r = AxdrReader(data, 0, "WriteResponse")
        r.tag(cls.TAG)
        count = r.sequence_count("result list", 1)
        results = tuple(_decode_write_result(r, f"result {i + 1}") for i in range(count))
        r.expect_end()
        return cls(results)

    def describe(self) -> str:
        """E.g. ``WRITE.res [success, read-write-denied]``."""
        items = (x.describe() if isinstance(x, BlockNumber) else x.label for x in self.results)
        return "WRITE.res [" + ", ".join(items) + "]"


# Green Book: InformationReportRequest ::= SEQUENCE {
#   current-time                   GeneralizedTime OPTIONAL,
#   variable-access-specification  SEQUENCE OF Variable-Access-Specification,
#   list-of-data                   SEQUENCE OF Data }
# A-XDR: OPTIONAL is a presence octet (00 absent, 01 present); GeneralizedTime is
# encoded as a VisibleString, i.e. length + octets.  gurux_dlms (and devices built on
# it) write the time as a length octet alone, 0C + a 12-octet COSEM date-time: a first
# octet of 0x0C is read that way (it cannot be a presence flag).
_GURUX_TIME_LENGTH: Final = 12


@dataclass(frozen=True)
class InformationReportRequest:
    """An unsolicited report of variables pushed by the meter.

    ``current_time`` holds the octets of the GeneralizedTime as received (a 12-octet
    COSEM date-time in practice, see :meth:`time_as_date_time`), or None.
    """

    variables: tuple[VariableAccessSpecification, ...]
    values: tuple[Data, ...]
    current_time: bytes | None = None

    TAG = ApduTag.INFORMATION_REPORT_REQUEST

    def __post_init__(self) -> None:
        _tuple_of("InformationReportRequest variables", self.variables, _VARIABLE_ACCESS_KINDS)
        _tuple_of("InformationReportRequest values", self.values, Data)
        if self.current_time is not None and not isinstance(self.current_time, bytes):
            raise LocalProtocolError("current_time must be bytes or None")

    def time_as_date_time(self) -> DateTime | None:
        """``current_time`` as a COSEM date-time when it has 12 octets, else None.

        Raises :class:`DecodeError` for 12 octets that are no valid date-time.
        """
        if self.current_time is None or len(self.current_time) != _GURUX_TIME_LENGTH:
            return None
        return DateTime.from_bytes(self.current_time)

    def to_bytes(self) -> bytes:
        out = bytearray((self.TAG,))
        if self.current_time is None:
            out.append(0)
        else:
            out += b"\x01" + encode_length(len(self.current_time)) + self.current_time
        return bytes(out) + _encode_variables(self.variables) + _encode_values(self.values)

    @classmethod
    def from_bytes(cls, data: bytes) -> InformationReportRequest:
        r = AxdrReader(data, 0, "InformationReportRequest")
        r.tag(cls.TAG)
        flag = r.u8("current-time presence flag")
        current_time: bytes | None
        if flag == 0:
            current_time = None
        elif flag == 1:
            current_time = r.octet_string("current-time")
        elif flag == _GURUX_TIME_LENGTH:
            current_time = r.take(_GURUX_TIME_LENGTH, "current-time")
        else:
            raise DecodeError(f"InformationReportRequest: current-time flag 0x{flag:02X} at "
                              "offset 1 (expected 00, 01, or 0C for a bare date-time)")
        variables = _decode_variables(r, "variable-access-specification")
        values = _decode_values(r)
        r.expect_end()
        return cls(variables, values, current_time)

    def describe(self) -> str:
        time = ""
        if self.current_time is not None:
            try:
                when = self.time_as_date_time()
            except DecodeError:
                when = None
            time = f" time={when if when is not None else self.current_time.hex().upper()}"
        return f"INFORMATION-REPORT.req{time} {_describe_writes(self.variables, self.values)}"


# =========================================================================== dispatch
SnApdu = (ReadRequest | ReadResponse | WriteRequest | UnconfirmedWriteRequest | WriteResponse
          | InformationReportRequest)
#: What :func:`decode_sn_apdu` returns: an SN service APDU or one of apdu.decode_apdu's.
AnySnApdu = SnApdu | Apdu

_SN_DECODERS: Final[dict[int, Callable[[bytes], SnApdu]]] = {
    ApduTag.READ_REQUEST: ReadRequest.from_bytes,
    ApduTag.WRITE_REQUEST: WriteRequest.from_bytes,
    ApduTag.READ_RESPONSE: ReadResponse.from_bytes,
    ApduTag.WRITE_RESPONSE: WriteResponse.from_bytes,
    ApduTag.UNCONFIRMED_WRITE_REQUEST: UnconfirmedWriteRequest.from_bytes,
    ApduTag.INFORMATION_REPORT_REQUEST: InformationReportRequest.from_bytes,
}


def decode_sn_apdu(buf: bytes) -> AnySnApdu:
    """Decode one whole APDU of an SN association, dispatching on its tag.

    The SN service tags (05, 06, 0C, 0D, 16, 18) are decoded here; every other tag goes
    to :func:`dlmsd.protocol.apdu.decode_apdu` (AARE, RLRE, ExceptionResponse,
    confirmed-service-error ...).  Raises :class:`DecodeError` (only) for malformed
    input, trailing bytes, and unknown or unsupported tags, naming the tag in hex.
    """
    if not buf:
        raise DecodeError("empty APDU")
    decoder = _SN_DECODERS.get(buf[0])
    if decoder is not None:
        return decoder(bytes(buf))
    return decode_apdu(bytes(buf))


def describe_sn_apdu(buf: bytes) -> str:
    """One line for traces; never raises (undecodable input is described as such)."""
    try:
        return decode_sn_apdu(buf).describe()
    except DecodeError as exc:
        return f"undecodable APDU ({len(buf)} bytes): {exc}"


# =========================================================================== blocks
# Green Book, "Read service with block transfer" (paraphrase): when the results do not
# fit one APDU, the server sends ReadResponse { data-block-result } blocks numbered
# 1, 2, ...; the client acknowledges each block but the last with a ReadRequest
# { block-number-access (the number of the block received) }; the raw-data of all
# blocks is the encoded list of results.  Captured meters agree: block 1 of an object
# list starts 01 00 (one result, choice data), a single-block answer of one name is
# 0C 01 02 01 0001 0F 01 00 0A 0B "ZIP01769326", and block 2 is asked for with
# 05 01 05 0001 (tohasan/hdlc-translator tests); EnergyICT's SN client (DLMS
# AbstractCosemObject) also skips "01 00" in block 1 and acknowledges the number received.
def decode_read_result_list(buf: bytes) -> tuple[Data | DataAccessResult, ...]:
    """Decode ``SEQUENCE OF CHOICE { data [0], data-access-error [1] }`` filling ``buf``."""
    r = AxdrReader(buf, 0, "read result list")
    count = r.sequence_count("result list", 2)
    results: list[Data | DataAccessResult] = []
    for i in range(count):
        item = _decode_read_result(r, f"result {i + 1}", blocks=False)
        assert isinstance(item, Data | DataAccessResult)
        results.append(item)
    r.expect_end()
    return tuple(results)


def decode_read_blocks(raw: bytes, count: int) -> tuple[Data | DataAccessResult, ...]:
    """The ``count`` results carried by the reassembled raw data of a blocked ReadResponse.

    The raw data is the encoded result list (see above).  gurux_dlms servers send the
    bare Data of a single variable instead; for ``count == 1`` that form is accepted
    when the list form does not decode.  Raises :class:`DecodeError` otherwise, or
    when the list holds another number of results than ``count``.
    """
    try:
        results = decode_read_result_list(raw)
    except DecodeError as exc:
        if count != 1:
            raise
        try:
            return (decode_data_all(raw),)
        except DecodeError:
            raise exc from None
    if len(results) != count:
        raise DecodeError(f"blocked ReadResponse: {len(results)} results for {count} variables")
    return results


class SnBlockReassembler(Reassembler):
    """Collects the data-block-results of one long Read (pure bookkeeping).

    Blocks must arrive numbered 1, 2, 3...; a wrong number raises
    :class:`RemoteProtocolError` naming the expected and received numbers, and more
    than ``max_size`` bytes or ``max_blocks`` blocks raise :class:`RemoteProtocolError`.
    The client sends :meth:`next_request` after each block but the last.  The count
    of the first result's array or structure is checked as soon as it has arrived, as
    for a long GET (:class:`~dlmsd.protocol.xdlms.Reassembler`).
    """

    _SERVICE = "READ"
    _TRANSFER = "long read"
    _MAX_BLOCK_NUMBER = 0xFFFF  # block-number Unsigned16

    def __init__(self, *, max_size: int = 1 << 20, max_blocks: int = 10_000) -> None:
        super().__init__(max_size=max_size, max_blocks=max_blocks, data_value=True)

    def _data_start(self) -> int | None:
        # The raw data is the result list (see decode_read_blocks): its quantity, then
        # the first result, CHOICE data [0] and its Data.  A gurux_dlms server sends
        # the bare Data instead, which starts with its tag.  Read either way the count
        # found is that of a real array or structure, or too small to refuse anything.
        head = self._list_head()
        if head is None:
            return None
        _, at = head
        if self._parts[at] == _READ_DATA:
            return at + 1
        return 0 if self._parts[0] in (DataType.ARRAY, DataType.STRUCTURE) else -1

    def add(self, block: DataBlockResult) -> bytes | None:
        """Take one block; returns the whole raw data after the last one, else None."""
        self._check_number(block.block_number)
        self._append(block.block_number, block.raw_data)
        return self._finish(block.block_number, block.last_block)

    def next_request(self) -> ReadRequest:
        """The ReadRequest acknowledging the last block received."""
        return ReadRequest((BlockNumberAccess(self._acknowledged()),))


# =========================================================================== short names
# Blue Book (DLMS UA 1000-1), "Referencing methods" and the "short name" column of every
# interface class table: with SN referencing each object has a base_name x (its
# logical_name attribute); attribute n is at x + 0x08 * (n - 1), and the methods follow
# at a class-specific offset from x.
ATTRIBUTE_STEP: Final = 0x08

#: Blue Book table "Reserved base_names for SN referencing": the current Association SN.
#: It is also the vaa-name an SN server puts in its InitiateResponse.
ASSOCIATION_SN_BASE_NAME: Final = 0xFA00
#: Blue Book reserved base_name of the COSEM logical device name (Data 0.0.42.0.0.255);
#: its value (FD08) is read in both SN captures used by the tests.
LOGICAL_DEVICE_NAME_BASE_NAME: Final = 0xFD00

#: class_id -> offset of method 1 from the base_name (method m at x + offset + 8*(m-1)),
#: from the Blue Book class tables; None: the class has no methods.  Only the classes
#: whose offsets we have checked are listed (gurux_dlms' C# table agrees):
#:   1 Data                 no methods
#:   3 Register             reset x+0x28
#:   4 Extended register    reset x+0x38
#:   5 Demand register      reset x+0x48, next_period x+0x50
#:   7 Profile generic      reset x+0x58, capture x+0x60 (v0 also 0x68, 0x70)
#:   8 Clock                adjust_to_quarter x+0x60 ... shift_time x+0x88
#:  12 Association SN       read_by_logicalname x+0x20 ... reply_to_HLS_authentication
#:                          (method 8) x+0x58
#:  15 Association LN       reply_to_HLS_authentication x+0x60 ...
FIRST_METHOD_OFFSET: Final[Mapping[int, int | None]] = MappingProxyType({
    1: None,
    3: 0x28,
    4: 0x38,
    5: 0x48,
    7: 0x58,
    8: 0x60,
    12: 0x20,
    15: 0x60,
})


def attribute_short_name(base_name: int, attribute: int) -> int:
    """The short name of ``attribute`` (1 = logical_name) of the object at ``base_name``."""
    _check_name(base_name)
    check_range("attribute", attribute, 1, 0x2000)
    name = base_name + ATTRIBUTE_STEP * (attribute - 1)
    if name > 0xFFFF:
        raise LocalProtocolError(f"attribute {attribute} of base_name 0x{base_name:04X} "
                                 "is beyond 0xFFFF")
    return name


def base_name_of(short_name: int, attribute: int) -> int:
    """The base_name of the object whose ``attribute`` is at ``short_name``."""
    _check_name(short_name)
    check_range("attribute", attribute, 1, 0x2000)
    base = short_name - ATTRIBUTE_STEP * (attribute - 1)
    if base < 0:
        raise LocalProtocolError(f"short name 0x{short_name:04X} cannot hold attribute "
                                 f"{attribute} (base_name would be negative)")
    return base


def method_short_name(base_name: int, class_id: int, method: int) -> int:
    """The short name of ``method`` of the object of ``class_id`` at ``base_name``.

    Raises :class:`LocalProtocolError` for a class without methods and for classes
    whose method offset is not in :data:`FIRST_METHOD_OFFSET` (unknown here).
    """
    _check_name(base_name)
    check_range("method", method, 1, 0x2000)
    if class_id not in FIRST_METHOD_OFFSET:
        raise LocalProtocolError(f"class {class_id}: the short-name offset of its methods is "
                                 "unknown here (not in FIRST_METHOD_OFFSET)")
    offset = FIRST_METHOD_OFFSET[class_id]
    if offset is None:
        raise LocalProtocolError(f"class {class_id} has no methods")
    name = base_name + offset + ATTRIBUTE_STEP * (method - 1)
    if name > 0xFFFF:
        raise LocalProtocolError(f"method {method} of base_name 0x{base_name:04X} is beyond "
                                 "0xFFFF")
    return name


# =========================================================================== object list
_INTEGER_TYPES: Final = frozenset({
    DataType.INTEGER, DataType.LONG, DataType.DOUBLE_LONG, DataType.UNSIGNED,
    DataType.LONG_UNSIGNED, DataType.DOUBLE_LONG_UNSIGNED, DataType.ENUM,
})


def parse_sn_object_list(value: Data) -> dict[Obis, tuple[int, int]]:
    """object_list of Association SN (Blue Book, class 12 attribute 2) -> {OBIS: (base_name,
    class_id)}.

    object_list ::= array object_list_element; object_list_element ::= structure {
    base_name long, class_id long-unsigned, version unsigned, logical_name octet-string }.
    base_name is a ``long`` (Integer16) on the wire: it is returned as the unsigned short
    name (-1536 -> 0xFA00).  The first element of a repeated logical name wins.
    """
    if value.type is not DataType.ARRAY or not isinstance(value.value, tuple):
        raise DecodeError("SN object_list is not an array")
    objects: dict[Obis, tuple[int, int]] = {}
    for index, item in enumerate(value.value):
        fields = item.value
        if (item.type is not DataType.STRUCTURE or not isinstance(fields, tuple)
                or len(fields) < 4 or any(f.type not in _INTEGER_TYPES for f in fields[:3])
                or not isinstance(fields[3].value, bytes)):
            raise DecodeError(f"SN object_list element {index} is not structure"
                              "{base_name, class_id, version, logical_name}")
        base, class_id = fields[0].value, fields[1].value
        assert isinstance(base, int) and isinstance(class_id, int)
        if not -0x8000 <= base <= 0xFFFF:
            raise DecodeError(f"SN object_list element {index}: base_name {base} is not 16 bits")
        if not 0 <= class_id <= 0xFFFF:
            raise DecodeError(f"SN object_list element {index}: class_id {class_id} is not "
                              "16 bits")
        objects.setdefault(Obis.from_bytes(fields[3].value), (base & 0xFFFF, class_id))
    return objects
