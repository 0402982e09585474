"""xDLMS APDUs with logical name referencing (IEC 62056-5-3, DLMS UA Green Book).

This module owns the bytes of the xDLMS part of an association, the InitiateRequest and
InitiateResponse that travel in the AARQ/AARE user-information (A-XDR), the
``Conformance`` block they negotiate and the confirmed-service-error APDU; of the GET,
SET and ACTION services (the forms a reading client and the meter simulator need); of
the ExceptionResponse; and :class:`BlockReassembler` for GET with blocks.  The ACSE
APDUs around the initiate ones are in :mod:`dlmsd.protocol.acse`, and the one
dispatcher over every APDU dlmsd understands is :func:`dlmsd.protocol.apdu.decode_apdu`.
Ciphered APDUs (glo-/ded-/general-ciphering) are not decoded here.

Conventions (the same as :mod:`dlmsd.protocol.acse`): wire types are frozen
dataclasses with ``to_bytes()`` and ``from_bytes(data)`` (whole buffer); parts of
APDUs also have ``decode(buf, pos) -> (obj, new_pos)``.  Decoding raises only
:class:`DecodeError`; values that cannot be encoded raise :class:`LocalProtocolError`.
Every service APDU has ``invoke_id_and_priority`` as its last field (default 0xC1:
priority high, confirmed, invoke-id 1) and a ``describe()`` one-liner for traces.

Reading one attribute::

    request = GetRequestNormal(CosemAttributeDescriptor(3, Obis(1, 0, 1, 8, 0, 255), 2))
    send(request.to_bytes())                       # C0 01 C1 00 03 01 00 01 08 00 FF 02 00
    response = decode_apdu(received)               # dlmsd.protocol.apdu
    if isinstance(response, GetResponseNormal):
        value = response.data()                    # Data, or raises DataAccessError
    elif isinstance(response, GetResponseWithDatablock):
        blocks = BlockReassembler()
        while (raw := blocks.add(response)) is None:
            send(blocks.next_request().to_bytes())
            response = decode_apdu(...)            # the next GetResponseWithDatablock
        value = decode_data_all(raw)

Secrets: the dedicated key of an InitiateRequest is ``field(repr=False)`` and
``describe()`` prints it as ``***``.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field
from enum import IntFlag
from typing import ClassVar, Final, Self

from dlmsd.errors import (
    DataAccessError,
    DecodeError,
    LocalProtocolError,
    RemoteProtocolError,
    ServiceError,
)
from dlmsd.protocol.axdr import (
    AxdrReader,
    Data,
    DataType,
    LabelledEnum,
    WireEnum,
    check_range,
    decode_whole,
    describe,
    encode_data,
    encode_length,
    node_budget,
)
from dlmsd.protocol.obis import Obis

__all__ = [
    "DEFAULT_CONFORMANCE",
    "DEFAULT_INVOKE_ID_AND_PRIORITY",
    "DLMS_VERSION",
    "ActionRequestNormal",
    "ActionResponseNormal",
    "ActionResult",
    "ApduTag",
    "BlockReassembler",
    "ConfirmedServiceError",
    "ConfirmedServiceErrorChoice",
    "Conformance",
    "CosemAttributeDescriptor",
    "CosemAttributeDescriptorWithSelection",
    "CosemMethodDescriptor",
    "DataAccessResult",
    "ExceptionResponse",
    "ExceptionServiceError",
    "GetDataResult",
    "GetRequest",
    "GetRequestNext",
    "GetRequestNormal",
    "GetRequestWithList",
    "GetResponse",
    "GetResponseNormal",
    "GetResponseWithDatablock",
    "GetResponseWithList",
    "InitiateRequest",
    "InitiateResponse",
    "Reassembler",
    "SelectiveAccessDescriptor",
    "ServiceErrorType",
    "SetRequest",
    "SetRequestNormal",
    "SetRequestWithDatablock",
    "SetRequestWithFirstDatablock",
    "SetResponse",
    "SetResponseDatablock",
    "SetResponseLastDatablock",
    "SetResponseNormal",
    "StateError",
    "decode_conformance",
    "decode_get_data_result_list",
    "encode_conformance",
    "invoke_id_and_priority",
    "set_requests",
]

#: invoke-id 1, service-class confirmed (bit 6), priority high (bit 7).
DEFAULT_INVOKE_ID_AND_PRIORITY: Final = 0xC1

#: The DLMS version number of the current standard (proposed and negotiated).
DLMS_VERSION: Final = 6

_I8: Final = struct.Struct(">b")
_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")
_ATTRIBUTE: Final = struct.Struct(">H6sb")  # class-id, instance-id, attribute/method-id


class ApduTag(LabelledEnum):
    """The first octet of every xDLMS APDU (Green Book, xDLMS-APDU CHOICE)."""

    INITIATE_REQUEST = 0x01
    READ_REQUEST = 0x05
    WRITE_REQUEST = 0x06
    INITIATE_RESPONSE = 0x08
    READ_RESPONSE = 0x0C
    WRITE_RESPONSE = 0x0D
    CONFIRMED_SERVICE_ERROR = 0x0E
    DATA_NOTIFICATION = 0x0F
    UNCONFIRMED_WRITE_REQUEST = 0x16
    INFORMATION_REPORT_REQUEST = 0x18
    GLO_INITIATE_REQUEST = 0x21
    GLO_INITIATE_RESPONSE = 0x28
    GLO_CONFIRMED_SERVICE_ERROR = 0x2E
    AARQ = 0x60
    AARE = 0x61
    RLRQ = 0x62
    RLRE = 0x63
    GET_REQUEST = 0xC0
    SET_REQUEST = 0xC1
    EVENT_NOTIFICATION_REQUEST = 0xC2
    ACTION_REQUEST = 0xC3
    GET_RESPONSE = 0xC4
    SET_RESPONSE = 0xC5
    ACTION_RESPONSE = 0xC7
    GLO_GET_REQUEST = 0xC8
    GLO_SET_REQUEST = 0xC9
    GLO_EVENT_NOTIFICATION_REQUEST = 0xCA
    GLO_ACTION_REQUEST = 0xCB
    GLO_GET_RESPONSE = 0xCC
    GLO_SET_RESPONSE = 0xCD
    GLO_ACTION_RESPONSE = 0xCF
    DED_GET_REQUEST = 0xD0
    DED_SET_REQUEST = 0xD1
    DED_EVENT_NOTIFICATION_REQUEST = 0xD2
    DED_ACTION_REQUEST = 0xD3
    DED_GET_RESPONSE = 0xD4
    DED_SET_RESPONSE = 0xD5
    DED_ACTION_RESPONSE = 0xD7
    EXCEPTION_RESPONSE = 0xD8
    ACCESS_REQUEST = 0xD9
    ACCESS_RESPONSE = 0xDA
    GENERAL_GLO_CIPHERING = 0xDB
    GENERAL_DED_CIPHERING = 0xDC
    GENERAL_CIPHERING = 0xDD
    GENERAL_SIGNING = 0xDF
    GENERAL_BLOCK_TRANSFER = 0xE0


# Green Book, Data-Access-Result ::= ENUMERATED
class DataAccessResult(WireEnum):
    """The result of accessing one attribute (GET, SET)."""

    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_GET_ABORTED = 15
    NO_LONG_GET_IN_PROGRESS = 16
    LONG_SET_ABORTED = 17
    NO_LONG_SET_IN_PROGRESS = 18
    DATA_BLOCK_NUMBER_INVALID = 19
    OTHER_REASON = 250


# Green Book, Action-Result ::= ENUMERATED
class ActionResult(WireEnum):
    """The result of invoking one method (ACTION)."""

    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_ACTION_ABORTED = 15
    NO_LONG_ACTION_IN_PROGRESS = 16
    OTHER_REASON = 250


# Green Book, ExceptionResponse ::= SEQUENCE {
#   state-error [0] IMPLICIT ENUMERATED { service-not-allowed (1), service-unknown (2) },
#   service-error [1] CHOICE { operation-not-possible [1], service-not-supported [2],
#     other-reason [3], pdu-too-long [4], deciphering-error [5],
#     invocation-counter-error [6] IMPLICIT Unsigned32 } }
class StateError(WireEnum):
    SERVICE_NOT_ALLOWED = 1
    SERVICE_UNKNOWN = 2


class ExceptionServiceError(WireEnum):
    OPERATION_NOT_POSSIBLE = 1
    SERVICE_NOT_SUPPORTED = 2
    OTHER_REASON = 3
    PDU_TOO_LONG = 4
    DECIPHERING_ERROR = 5
    INVOCATION_COUNTER_ERROR = 6


def invoke_id_and_priority(invoke_id: int, *, high_priority: bool = True,
                           confirmed: bool = True) -> int:
    """Invoke-Id-And-Priority ::= Unsigned8: bits 0-3 invoke-id, bit 6 service-class
    (1 confirmed), bit 7 priority (1 high)."""
    check_range("invoke-id", invoke_id, 0, 15)
    return invoke_id | (0x40 if confirmed else 0) | (0x80 if high_priority else 0)


def _iid_text(value: int) -> str:
    return f"id={value & 0x0F}"


class _Service:
    """What the GET, SET and ACTION APDUs share: the tag, the service CHOICE and the
    invoke-id-and-priority that open them (``TAG CHOICE iid``), checked on both sides."""

    TAG: ClassVar[int]
    CHOICE: ClassVar[int]
    invoke_id_and_priority: int

    def __post_init__(self) -> None:
        check_range("invoke-id-and-priority", self.invoke_id_and_priority, 0, 255)

    def _head(self) -> bytes:
        return bytes((self.TAG, self.CHOICE, self.invoke_id_and_priority))

    @classmethod
    def _open(cls, data: bytes, what: str) -> tuple[AxdrReader, int]:
        """A reader past the tag and the CHOICE (both checked), and the
        invoke-id-and-priority."""
        r = AxdrReader(data, 0, what)
        r.tag(cls.TAG)
        got_choice = r.u8("choice")
        if got_choice != cls.CHOICE:
            raise DecodeError(f"{r.what}: choice {got_choice}, expected {cls.CHOICE}")
        return r, r.u8("invoke-id-and-priority")


# =========================================================================== Conformance
# Green Book, xDLMS "Conformance block":
#   Conformance ::= [APPLICATION 31] IMPLICIT BIT STRING {
#     reserved-zero(0), general-protection(1), general-block-transfer(2), read(3),
#     write(4), unconfirmed-write(5), delta-value-encoding(6), reserved-seven(7),
#     attribute0-supported-with-set(8), priority-mgmt-supported(9),
#     attribute0-supported-with-get(10), block-transfer-with-get-or-read(11),
#     block-transfer-with-set-or-write(12), block-transfer-with-action(13),
#     multiple-references(14), information-report(15), data-notification(16),
#     access(17), parameterized-access(18), get(19), set(20), selective-access(21),
#     event-notification(22), action(23) } (SIZE(24))
# Encoded 5F 1F 04 00 b0 b1 b2 (tag, length 4, 0 unused bits, 3 octets); BER puts
# bit 0 in the most significant bit of b0.  So bit n of the standard is 1 << (23 - n)
# of the 24-bit big-endian integer b0b1b2: the member values below ARE the wire value.
class Conformance(IntFlag):
    """The xDLMS conformance block; ``int(c)`` is the 24-bit value as sent on the wire."""

    RESERVED_ZERO = 1 << 23
    GENERAL_PROTECTION = 1 << 22
    GENERAL_BLOCK_TRANSFER = 1 << 21
    READ = 1 << 20
    WRITE = 1 << 19
    UNCONFIRMED_WRITE = 1 << 18
    DELTA_VALUE_ENCODING = 1 << 17
    RESERVED_SEVEN = 1 << 16
    ATTRIBUTE0_SUPPORTED_WITH_SET = 1 << 15
    PRIORITY_MGMT_SUPPORTED = 1 << 14
    ATTRIBUTE0_SUPPORTED_WITH_GET = 1 << 13
    BLOCK_TRANSFER_WITH_GET_OR_READ = 1 << 12
    BLOCK_TRANSFER_WITH_SET_OR_WRITE = 1 << 11
    BLOCK_TRANSFER_WITH_ACTION = 1 << 10
    MULTIPLE_REFERENCES = 1 << 9
    INFORMATION_REPORT = 1 << 8
    DATA_NOTIFICATION = 1 << 7
    ACCESS = 1 << 6
    PARAMETERIZED_ACCESS = 1 << 5
    GET = 1 << 4
    SET = 1 << 3
    SELECTIVE_ACCESS = 1 << 2
    EVENT_NOTIFICATION = 1 << 1
    ACTION = 1 << 0

    @classmethod
    def from_bit_numbers(cls, *bits: int) -> Conformance:
        """From the standard's bit numbers (0 = reserved-zero .. 23 = action)."""
        value = 0
        for bit in bits:
            if not 0 <= bit <= 23:
                raise LocalProtocolError(f"conformance bit {bit} outside 0..23")
            value |= 1 << (23 - bit)
        return cls(value)

    def bit_numbers(self) -> tuple[int, ...]:
        """The standard's bit numbers that are set, ascending."""
        return tuple(n for n in range(24) if self.value & (1 << (23 - n)))

    def names(self) -> tuple[str, ...]:
        """The standard's names of the bits set, in bit order, e.g. ``("get", "set")``."""
        return tuple(_CONFORMANCE_NAMES[n] for n in self.bit_numbers())

    def describe(self) -> str:
        return f"0x{self.value:06X}(" + ",".join(self.names()) + ")"


_CONFORMANCE_HEADER: Final = bytes((0x5F, 0x1F, 0x04, 0x00))
_CONFORMANCE_NAMES: Final = {
    24 - member.value.bit_length(): (member.name or "").lower().replace("_", "-")
    for member in Conformance
}


def encode_conformance(conformance: Conformance) -> bytes:
    """The A-XDR encoding ``5F 1F 04 00 b0 b1 b2`` of a conformance block."""
    return _CONFORMANCE_HEADER + int(conformance).to_bytes(3, "big")


def decode_conformance(buf: bytes, pos: int) -> tuple[Conformance, int]:
    """Decode ``5F 1F 04 uu b0 b1 b2`` at ``buf[pos]``; returns ``(conformance, new_pos)``.

    Also accepted: ``5F 04 uu b0 b1 b2``, the tag written in one octet, as some
    Landis+Gyr SN meters send it (a captured AARE in tests/test_sn_client.py).
    """
    reader = AxdrReader(buf, pos, "conformance")
    header = reader.take(2, "conformance tag")
    if header == b"\x5f\x04":
        pass  # short form: the length octet has been read with the tag
    elif header + reader.take(1, "conformance length") != _CONFORMANCE_HEADER[:3]:
        got = buf[pos:reader.pos].hex(" ").upper()
        raise DecodeError(f"conformance: expected 5F 1F 04, got {got}")
    unused = reader.u8("conformance unused bits")
    if unused > 7:
        raise DecodeError(f"conformance: {unused} unused bits (at most 7)")
    value = int.from_bytes(reader.take(3, "conformance bits"), "big")
    return Conformance(value), reader.pos


#: The proposed conformance of the Green Book's example AARQ (``00 7E 1F``):
#: priority-mgmt-supported, attribute0-supported-with-get, block transfer with
#: get/set/action, multiple-references, get, set, selective-access,
#: event-notification, action.
DEFAULT_CONFORMANCE: Final = Conformance(0x007E1F)


# =========================================================================== xDLMS initiate
# Green Book, xDLMS "InitiateRequest":
#   InitiateRequest ::= SEQUENCE {
#     dedicated-key                  OCTET STRING OPTIONAL,
#     response-allowed               BOOLEAN DEFAULT TRUE,
#     proposed-quality-of-service    [0] IMPLICIT Integer8 OPTIONAL,
#     proposed-dlms-version-number   Unsigned8,
#     proposed-conformance           Conformance,
#     client-max-receive-pdu-size    Unsigned16 }
# A-XDR: OPTIONAL and DEFAULT components are preceded by 00 (absent/default) or 01.
@dataclass(frozen=True)
class InitiateRequest:
    """The xDLMS InitiateRequest (tag 0x01) carried in the AARQ user-information."""

    proposed_conformance: Conformance = DEFAULT_CONFORMANCE
    client_max_receive_pdu_size: int = 0xFFFF
    proposed_dlms_version_number: int = DLMS_VERSION
    dedicated_key: bytes | None = field(default=None, repr=False)
    response_allowed: bool = True
    proposed_quality_of_service: int | None = None

    TAG = ApduTag.INITIATE_REQUEST

    def __post_init__(self) -> None:
        check_range("client-max-receive-pdu-size", self.client_max_receive_pdu_size, 0, 0xFFFF)
        check_range("proposed-dlms-version-number", self.proposed_dlms_version_number, 0, 255)
        check_range("proposed-conformance", int(self.proposed_conformance), 0, 0xFFFFFF)
        if self.proposed_quality_of_service is not None:
            check_range("proposed-quality-of-service", self.proposed_quality_of_service, -128, 127)

    def to_bytes(self) -> bytes:
        out = bytearray((self.TAG,))
        if self.dedicated_key is None:
            out.append(0)
        else:
            out += b"\x01" + encode_length(len(self.dedicated_key)) + self.dedicated_key
        out += b"\x00" if self.response_allowed else b"\x01\x00"
        if self.proposed_quality_of_service is None:
            out.append(0)
        else:
            out += b"\x01" + _I8.pack(self.proposed_quality_of_service)
        out.append(self.proposed_dlms_version_number)
        out += encode_conformance(self.proposed_conformance)
        out += _U16.pack(self.client_max_receive_pdu_size)
        return bytes(out)

    @classmethod
    def decode(cls, buf: bytes, pos: int = 0) -> tuple[InitiateRequest, int]:
        r = AxdrReader(buf, pos, "InitiateRequest")
        r.tag(cls.TAG)
        key = r.octet_string("dedicated-key") if r.present("dedicated-key") else None
        allowed = r.boolean("response-allowed") if r.present("response-allowed") else True
        qos = (r.i8("proposed-quality-of-service")
               if r.present("proposed-quality-of-service") else None)
        version = r.u8("proposed-dlms-version-number")
        conformance, r.pos = decode_conformance(r.buf, r.pos)
        size = r.u16("client-max-receive-pdu-size")
        return cls(conformance, size, version, key, allowed, qos), r.pos

    @classmethod
    def from_bytes(cls, data: bytes) -> InitiateRequest:
        return decode_whole(cls.decode, data, "InitiateRequest")

    def describe(self) -> str:
        key = " dedicated-key=***" if self.dedicated_key is not None else ""
        return (f"InitiateRequest v{self.proposed_dlms_version_number} "
                f"max-pdu={self.client_max_receive_pdu_size} "
                f"conformance={Conformance(self.proposed_conformance).describe()}{key}")


# Green Book, xDLMS "InitiateResponse":
#   InitiateResponse ::= SEQUENCE {
#     negotiated-quality-of-service  [0] IMPLICIT Integer8 OPTIONAL,
#     negotiated-dlms-version-number Unsigned8,
#     negotiated-conformance         Conformance,
#     server-max-receive-pdu-size    Unsigned16,
#     vaa-name                       ObjectName }   -- 0x0007 for LN, 0xFA00 for SN
@dataclass(frozen=True)
class InitiateResponse:
    """The xDLMS InitiateResponse (tag 0x08) carried in the AARE user-information.

    ``vaa_name`` is kept as the unsigned 16-bit value (0x0007 LN, 0xFA00 SN).
    """

    negotiated_conformance: Conformance
    server_max_receive_pdu_size: int
    negotiated_dlms_version_number: int = DLMS_VERSION
    vaa_name: int = 0x0007
    negotiated_quality_of_service: int | None = None

    TAG = ApduTag.INITIATE_RESPONSE

    def __post_init__(self) -> None:
        check_range("server-max-receive-pdu-size", self.server_max_receive_pdu_size, 0, 0xFFFF)
        check_range("negotiated-dlms-version-number", self.negotiated_dlms_version_number, 0, 255)
        check_range("negotiated-conformance", int(self.negotiated_conformance), 0, 0xFFFFFF)
        check_range("vaa-name", self.vaa_name, 0, 0xFFFF)
        if self.negotiated_quality_of_service is not None:
            check_range("negotiated-quality-of-service", self.negotiated_quality_of_service,
                        -128, 127)

    def to_bytes(self) -> bytes:
        out = bytearray((self.TAG,))
        if self.negotiated_quality_of_service is None:
            out.append(0)
        else:
            out += b"\x01" + _I8.pack(self.negotiated_quality_of_service)
        out.append(self.negotiated_dlms_version_number)
        out += encode_conformance(self.negotiated_conformance)
        out += _U16.pack(self.server_max_receive_pdu_size) + _U16.pack(self.vaa_name)
        return bytes(out)

    @classmethod
    def decode(cls, buf: bytes, pos: int = 0) -> tuple[InitiateResponse, int]:
        r = AxdrReader(buf, pos, "InitiateResponse")
        r.tag(cls.TAG)
        qos = (r.i8("negotiated-quality-of-service")
               if r.present("negotiated-quality-of-service") else None)
        version = r.u8("negotiated-dlms-version-number")
        conformance, r.pos = decode_conformance(r.buf, r.pos)
        size = r.u16("server-max-receive-pdu-size")
        vaa = r.u16("vaa-name")
        return cls(conformance, size, version, vaa, qos), r.pos

    @classmethod
    def from_bytes(cls, data: bytes) -> InitiateResponse:
        return decode_whole(cls.decode, data, "InitiateResponse")

    def describe(self) -> str:
        return (f"InitiateResponse v{self.negotiated_dlms_version_number} "
                f"max-pdu={self.server_max_receive_pdu_size} vaa=0x{self.vaa_name:04X} "
                f"conformance={Conformance(self.negotiated_conformance).describe()}")


# ======================================================================= confirmed-service-error
# Green Book, xDLMS:
#   ConfirmedServiceError ::= CHOICE {
#     initiateError [1] ServiceError, getStatus [2], getNameList [3],
#     getVariableAttribute [4], read [5], write [6], getDataSetAttribute [7],
#     getTIAttribute [8], changeScope [9], start [10], stop [11], resume [12],
#     makeUsable [13], initiateLoad [14], loadSegment [15], terminateLoad [16],
#     initiateUpLoad [17], upLoadSegment [18], terminateUpLoad [19] }
#   ServiceError ::= CHOICE {
#     application-reference [0], hardware-resource [1], vde-state-error [2],
#     service [3], definition [4], access [5], initiate [6], load-data-set [7],
#     change-scope [8], task [9], other [10] }   -- each IMPLICIT ENUMERATED
# A-XDR: 0E <choice> <service-error choice> <enumerated value>.
class ConfirmedServiceErrorChoice(WireEnum):
    INITIATE_ERROR = 1
    GET_STATUS = 2
    GET_NAME_LIST = 3
    GET_VARIABLE_ATTRIBUTE = 4
    READ = 5
    WRITE = 6
    GET_DATA_SET_ATTRIBUTE = 7
    GET_TI_ATTRIBUTE = 8
    CHANGE_SCOPE = 9
    START = 10
    STOP = 11
    RESUME = 12
    MAKE_USABLE = 13
    INITIATE_LOAD = 14
    LOAD_SEGMENT = 15
    TERMINATE_LOAD = 16
    INITIATE_UP_LOAD = 17
    UP_LOAD_SEGMENT = 18
    TERMINATE_UP_LOAD = 19


class ServiceErrorType(WireEnum):
    APPLICATION_REFERENCE = 0
    HARDWARE_RESOURCE = 1
    VDE_STATE_ERROR = 2
    SERVICE = 3
    DEFINITION = 4
    ACCESS = 5
    INITIATE = 6
    LOAD_DATA_SET = 7
    CHANGE_SCOPE = 8
    TASK = 9
    OTHER = 10


# The ENUMERATED values of each ServiceError alternative, by value.
_SERVICE_ERROR_VALUES: Final[dict[int, tuple[str, ...]]] = {
    0: ("other", "time-elapsed", "application-unreachable", "application-reference-invalid",
        "application-context-unsupported", "provider-communication-error", "deciphering-error"),
    1: ("other", "memory-unavailable", "processor-resource-unavailable",
        "mass-storage-unavailable", "other-resource-unavailable"),
    2: ("other", "no-dlms-context", "loading-data-set", "status-nochange", "status-inoperable"),
    3: ("other", "pdu-size", "service-unsupported"),
    4: ("other", "object-undefined", "object-class-inconsistent", "object-attribute-inconsistent"),
    5: ("other", "scope-of-access-violated", "object-access-violated", "hardware-fault",
        "object-unavailable"),
    6: ("other", "dlms-version-too-low", "incompatible-conformance", "pdu-size-too-short",
        "refused-by-the-VDE-Handler"),
    7: ("other", "primitive-out-of-sequence", "not-loadable", "dataset-size-too-large",
        "not-awaited-segment", "interpretation-failure", "storage-failure",
        "data-set-not-ready"),
    9: ("other", "no-remote-control", "ti-stopped", "ti-running", "ti-unusable"),
}


@dataclass(frozen=True)
class ConfirmedServiceError:
    """confirmed-service-error APDU (tag 0x0E), e.g. an initiate error in the AARE."""

    service: ConfirmedServiceErrorChoice
    error: ServiceErrorType
    value: int

    TAG = ApduTag.CONFIRMED_SERVICE_ERROR

    def __post_init__(self) -> None:
        check_range("confirmed-service-error choice", int(self.service), 0, 255)
        check_range("service-error choice", int(self.error), 0, 255)
        check_range("service-error value", self.value, 0, 255)

    @property
    def value_label(self) -> str:
        names = _SERVICE_ERROR_VALUES.get(int(self.error), ())
        return names[self.value] if self.value < len(names) else f"value-{self.value}"

    def describe(self) -> str:
        """E.g. ``confirmed-service-error initiate-error: initiate dlms-version-too-low (6/1)``."""
        return (f"confirmed-service-error {self.service.label}: {self.error.label} "
                f"{self.value_label} ({int(self.error)}/{self.value})")

    def to_error(self) -> ServiceError:
        return ServiceError(self.describe(), code=self.value)

    def to_bytes(self) -> bytes:
        return bytes((self.TAG, int(self.service), int(self.error), self.value))

    @classmethod
    def decode(cls, buf: bytes, pos: int = 0) -> tuple[ConfirmedServiceError, int]:
        r = AxdrReader(buf, pos, "confirmed-service-error")
        r.tag(cls.TAG)
        service = ConfirmedServiceErrorChoice(r.u8("service choice"))
        error = ServiceErrorType(r.u8("service-error choice"))
        return cls(service, error, r.u8("service-error value")), r.pos

    @classmethod
    def from_bytes(cls, data: bytes) -> ConfirmedServiceError:
        return decode_whole(cls.decode, data, "confirmed-service-error")


# =========================================================================== descriptors
class _CosemDescriptor:
    """What the attribute and method descriptors share: class-id Unsigned16,
    instance-id OCTET STRING (SIZE(6)), then an Integer8 index (``_INDEX``)."""

    _WHAT: ClassVar[str]
    _INDEX: ClassVar[str]  # the subclass's field name of the index
    _PREFIX: ClassVar[str]  # before the index in describe(): "" or "m"
    class_id: int
    instance_id: Obis

    @property
    def index(self) -> int:
        """The attribute-id or method-id."""
        value: int = getattr(self, self._INDEX)
        return value

    def __post_init__(self) -> None:
        check_range("class-id", self.class_id, 0, 0xFFFF)
        check_range(self._INDEX.replace("_", "-"), self.index, -128, 127)

    @functools.cached_property
    def _octets(self) -> bytes:
        return _ATTRIBUTE.pack(self.class_id, self.instance_id.to_bytes(), self.index)

    def to_bytes(self) -> bytes:
        # encoded once (a value object): the client keeps its descriptors, and every
        # scan's request carries the same ones
        return self._octets

    @classmethod
    def decode(cls, buf: bytes, pos: int = 0) -> tuple[Self, int]:
        r = AxdrReader(buf, pos, cls._WHAT)
        return cls.read(r), r.pos

    @classmethod
    def read(cls, r: AxdrReader) -> Self:
        """One descriptor at ``r``'s position (its errors name the descriptor)."""
        if r.remaining < _ATTRIBUTE.size:
            raise DecodeError(f"{cls._WHAT}: truncated at offset {r.pos} reading descriptor "
                              f"(need {_ATTRIBUTE.size} bytes, have {r.remaining})")
        start = r.pos
        r.pos += _ATTRIBUTE.size
        # (a class is hashable; mypy takes the dataclass's __hash__ for the class's)
        descriptor = _descriptor_of(cls, bytes(r.buf[start:r.pos]))  # type: ignore[arg-type]
        assert isinstance(descriptor, cls)
        return descriptor

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        return decode_whole(cls.decode, data, cls._WHAT)

    def describe(self) -> str:
        return f"{self.class_id}/{self.instance_id}/{self._PREFIX}{self.index}"


@functools.lru_cache(maxsize=1024)
def _descriptor_of(cls: type[_CosemDescriptor], octets: bytes) -> _CosemDescriptor:
    """A descriptor as received: a value object, the same ones in every request of a
    scan, so each is made once (bounded)."""
    class_id, instance, index = _ATTRIBUTE.unpack(octets)
    return cls(class_id, Obis.from_bytes(instance), index)  # type: ignore[call-arg]


# Green Book: Cosem-Attribute-Descriptor ::= SEQUENCE { class-id Unsigned16,
#   instance-id OCTET STRING (SIZE(6)), attribute-id Integer8 }
@dataclass(frozen=True)
class CosemAttributeDescriptor(_CosemDescriptor):
    """class-id, instance-id (logical name), attribute-id: ``3/1.0.1.8.0.255/2``."""

    _WHAT: ClassVar[str] = "Cosem-Attribute-Descriptor"
    _INDEX: ClassVar[str] = "attribute_id"
    _PREFIX: ClassVar[str] = ""
    class_id: int
    instance_id: Obis
    attribute_id: int


# Green Book: Cosem-Method-Descriptor ::= SEQUENCE { class-id Unsigned16,
#   instance-id OCTET STRING (SIZE(6)), method-id Integer8 }
@dataclass(frozen=True)
class CosemMethodDescriptor(_CosemDescriptor):
    """class-id, instance-id, method-id: ``15/0.0.40.0.0.255/m1``."""

    _WHAT: ClassVar[str] = "Cosem-Method-Descriptor"
    _INDEX: ClassVar[str] = "method_id"
    _PREFIX: ClassVar[str] = "m"
    class_id: int
    instance_id: Obis
    method_id: int


# Green Book: Selective-Access-Descriptor ::= SEQUENCE { access-selector Unsigned8,
#   access-parameters Data }
@dataclass(frozen=True)
class SelectiveAccessDescriptor:
    """Selective access: ``access_selector`` (1 by range, 2 by entry for profiles...)."""

    access_selector: int
    access_parameters: Data

    def __post_init__(self) -> None:
        check_range("access-selector", self.access_selector, 0, 255)

    def to_bytes(self) -> bytes:
        return bytes((self.access_selector,)) + encode_data(self.access_parameters)

    @classmethod
    def decode(cls, buf: bytes, pos: int = 0) -> tuple[SelectiveAccessDescriptor, int]:
        r = AxdrReader(buf, pos, "Selective-Access-Descriptor")
        selector = r.u8("access-selector")
        return cls(selector, r.data("access-parameters")), r.pos

    @classmethod
    def from_bytes(cls, data: bytes) -> SelectiveAccessDescriptor:
        return decode_whole(cls.decode, data, "Selective-Access-Descriptor")

    def describe(self) -> str:
        return f"sel={self.access_selector} {describe(self.access_parameters, limit=4)}"


def _encode_selection(selection: SelectiveAccessDescriptor | None) -> bytes:
    return b"\x00" if selection is None else b"\x01" + selection.to_bytes()


def _decode_selection(r: AxdrReader) -> SelectiveAccessDescriptor | None:
    if not r.present("access-selection"):
        return None
    selection, r.pos = SelectiveAccessDescriptor.decode(r.buf, r.pos)
    return selection


def _describe_selection(selection: SelectiveAccessDescriptor | None) -> str:
    return "" if selection is None else f" {selection.describe()}"


# Green Book: Cosem-Attribute-Descriptor-With-Selection ::= SEQUENCE {
#   cosem-attribute-descriptor Cosem-Attribute-Descriptor,
#   access-selection Selective-Access-Descriptor OPTIONAL }
@dataclass(frozen=True)
class CosemAttributeDescriptorWithSelection:
    """One item of a GET/SET with-list: a descriptor and an optional selection."""

    descriptor: CosemAttributeDescriptor
    access_selection: SelectiveAccessDescriptor | None = None

    def to_bytes(self) -> bytes:
        return self.descriptor.to_bytes() + _encode_selection(self.access_selection)

    @classmethod
    def decode(cls, buf: bytes, pos: int = 0) -> tuple[CosemAttributeDescriptorWithSelection, int]:
        r = AxdrReader(buf, pos, "Cosem-Attribute-Descriptor-With-Selection")
        return cls.read(r), r.pos

    @classmethod
    def read(cls, r: AxdrReader) -> CosemAttributeDescriptorWithSelection:
        """One item at ``r``'s position."""
        return cls(CosemAttributeDescriptor.read(r), _decode_selection(r))

    @classmethod
    def from_bytes(cls, data: bytes) -> CosemAttributeDescriptorWithSelection:
        return decode_whole(cls.decode, data, "Cosem-Attribute-Descriptor-With-Selection")

    def describe(self) -> str:
        return self.descriptor.describe() + _describe_selection(self.access_selection)


# Green Book: Get-Data-Result ::= CHOICE { data [0] Data,
#   data-access-result [1] IMPLICIT Data-Access-Result }
GetDataResult = Data | DataAccessResult
_GET_DATA: Final = 0  # the CHOICE data [0] of a Get-Data-Result


def _encode_get_data_result(result: GetDataResult) -> bytes:
    if isinstance(result, DataAccessResult):
        return bytes((1, int(result)))
    return bytes((_GET_DATA,)) + encode_data(result)


def _decode_get_data_result(r: AxdrReader, field_name: str, item: int = 0) -> GetDataResult:
    """One Get-Data-Result; ``item`` (from 1) is its place in a list, named in errors."""
    if r.end - r.pos > 1 and r.buf[r.pos] == _GET_DATA:  # the common case: no name made
        r.pos += 1
        return r.data(field_name)
    if item:
        field_name = f"{field_name} {item}"
    choice = r.u8(f"{field_name} choice")
    if choice == 0:
        return r.data(field_name)
    if choice == 1:
        return DataAccessResult(r.u8(f"{field_name} data-access-result"))
    raise DecodeError(
        f"{r.what}: {field_name} choice {choice} at offset {r.pos - 1} "
        "(0 data, 1 data-access-result)"
    )


def _describe_result(result: GetDataResult | ActionResult) -> str:
    if isinstance(result, DataAccessResult | ActionResult):
        return result.label
    return describe(result, limit=8)


def decode_get_data_result_list(buf: bytes) -> tuple[GetDataResult, ...]:
    """Decode ``SEQUENCE OF Get-Data-Result`` filling ``buf``: the reassembled raw
    data of a GET with-list answered in blocks."""
    r = AxdrReader(buf, 0, "Get-Data-Result list")
    count = r.sequence_count("result list", 2)
    results = tuple([_decode_get_data_result(r, "result", i + 1) for i in range(count)])
    r.expect_end()
    return results


# =========================================================================== GET
# Green Book: Get-Request ::= CHOICE { get-request-normal [1],
#   get-request-next [2], get-request-with-list [3] }
#   Get-Request-Normal ::= SEQUENCE { invoke-id-and-priority,
#     cosem-attribute-descriptor, access-selection Selective-Access-Descriptor OPTIONAL }
@dataclass(frozen=True)
class GetRequestNormal(_Service):
    descriptor: CosemAttributeDescriptor
    access_selection: SelectiveAccessDescriptor | None = None
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.GET_REQUEST
    CHOICE = 1

    def to_bytes(self) -> bytes:
        return (self._head()
                + self.descriptor.to_bytes() + _encode_selection(self.access_selection))

    @classmethod
    def from_bytes(cls, data: bytes) -> GetRequestNormal:
        r, iid = cls._open(data, "GET-Request-Normal")
        descriptor, r.pos = CosemAttributeDescriptor.decode(data, r.pos)
        selection = _decode_selection(r)
        r.expect_end()
        return cls(descriptor, selection, iid)

    def describe(self) -> str:
        return (f"GET.req normal {_iid_text(self.invoke_id_and_priority)} "
                f"{self.descriptor.describe()}{_describe_selection(self.access_selection)}")


#   Get-Request-Next ::= SEQUENCE { invoke-id-and-priority, block-number Unsigned32 }
@dataclass(frozen=True)
class GetRequestNext(_Service):
    """Asks for the block after ``block_number`` (the last block received)."""

    block_number: int
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.GET_REQUEST
    CHOICE = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("block-number", self.block_number, 0, 0xFFFFFFFF)

    def to_bytes(self) -> bytes:
        return (self._head()
                + _U32.pack(self.block_number))

    @classmethod
    def from_bytes(cls, data: bytes) -> GetRequestNext:
        r, iid = cls._open(data, "GET-Request-Next")
        block = r.u32("block-number")
        r.expect_end()
        return cls(block, iid)

    def describe(self) -> str:
        return f"GET.req next {_iid_text(self.invoke_id_and_priority)} block={self.block_number}"


#   Get-Request-With-List ::= SEQUENCE { invoke-id-and-priority,
#     attribute-descriptor-list SEQUENCE OF Cosem-Attribute-Descriptor-With-Selection }
@dataclass(frozen=True)
class GetRequestWithList(_Service):
    attributes: tuple[CosemAttributeDescriptorWithSelection, ...]
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.GET_REQUEST
    CHOICE = 3

    @classmethod
    def of(cls, *descriptors: CosemAttributeDescriptor,
           invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY) -> GetRequestWithList:
        """A with-list request without selective access."""
        items = tuple(CosemAttributeDescriptorWithSelection(d) for d in descriptors)
        return cls(items, invoke_id_and_priority)

    def to_bytes(self) -> bytes:
        out = bytearray(self._head())
        out += encode_length(len(self.attributes))
        for item in self.attributes:
            out += item.to_bytes()
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> GetRequestWithList:
        r, iid = cls._open(data, "GET-Request-With-List")
        count = r.sequence_count("attribute-descriptor-list", _ATTRIBUTE.size + 1)
        items = []
        for _ in range(count):
            items.append(CosemAttributeDescriptorWithSelection.read(r))
        r.expect_end()
        return cls(tuple(items), iid)

    def describe(self) -> str:
        items = ", ".join(item.describe() for item in self.attributes)
        return f"GET.req with-list {_iid_text(self.invoke_id_and_priority)} [{items}]"


# Green Book: Get-Response ::= CHOICE { get-response-normal [1],
#   get-response-with-datablock [2], get-response-with-list [3] }
#   Get-Response-Normal ::= SEQUENCE { invoke-id-and-priority, result Get-Data-Result }
@dataclass(frozen=True)
class GetResponseNormal(_Service):
    result: GetDataResult
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.GET_RESPONSE
    CHOICE = 1

    def data(self) -> Data:
        """The value, or :class:`DataAccessError` naming the data-access-result."""
        if isinstance(self.result, DataAccessResult):
            raise DataAccessError(f"GET refused: {self.result.describe()}", int(self.result))
        return self.result

    def to_bytes(self) -> bytes:
        return (self._head()
                + _encode_get_data_result(self.result))

    @classmethod
    def from_bytes(cls, data: bytes) -> GetResponseNormal:
        r, iid = cls._open(data, "GET-Response-Normal")
        result = _decode_get_data_result(r, "result")
        r.expect_end()
        return cls(result, iid)

    def describe(self) -> str:
        return (f"GET.res normal {_iid_text(self.invoke_id_and_priority)} "
                f"{_describe_result(self.result)}")


#   Get-Response-With-Datablock ::= SEQUENCE { invoke-id-and-priority, result DataBlock-G }
#   DataBlock-G ::= SEQUENCE { last-block BOOLEAN, block-number Unsigned32,
#     result CHOICE { raw-data [0] IMPLICIT OCTET STRING,
#                     data-access-result [1] IMPLICIT Data-Access-Result } }
@dataclass(frozen=True)
class GetResponseWithDatablock(_Service):
    """One block of a long GET: ``raw_data`` is a piece of the encoded result, or the
    data-access-result that ended the transfer."""

    last_block: bool
    block_number: int
    raw_data: bytes | DataAccessResult
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.GET_RESPONSE
    CHOICE = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("block-number", self.block_number, 0, 0xFFFFFFFF)

    def to_bytes(self) -> bytes:
        out = bytearray(self._head())
        out.append(1 if self.last_block else 0)
        out += _U32.pack(self.block_number)
        if isinstance(self.raw_data, DataAccessResult):
            out += bytes((1, int(self.raw_data)))
        else:
            out += b"\x00" + encode_length(len(self.raw_data)) + self.raw_data
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> GetResponseWithDatablock:
        r, iid = cls._open(data, "GET-Response-With-Datablock")
        last = r.boolean("last-block")
        block = r.u32("block-number")
        choice = r.u8("result choice")
        raw: bytes | DataAccessResult
        if choice == 0:
            raw = r.octet_string("raw-data")
        elif choice == 1:
            raw = DataAccessResult(r.u8("data-access-result"))
        else:
            raise DecodeError(
                f"{r.what}: result choice {choice} (0 raw-data, 1 data-access-result)")
        r.expect_end()
        return cls(last, block, raw, iid)

    def describe(self) -> str:
        body = (self.raw_data.label if isinstance(self.raw_data, DataAccessResult)
                else f"raw-data {len(self.raw_data)} bytes")
        last = " last" if self.last_block else ""
        return (f"GET.res with-datablock {_iid_text(self.invoke_id_and_priority)} "
                f"block={self.block_number}{last} {body}")


#   Get-Response-With-List ::= SEQUENCE { invoke-id-and-priority,
#     result SEQUENCE OF Get-Data-Result }
@dataclass(frozen=True)
class GetResponseWithList(_Service):
    results: tuple[GetDataResult, ...]
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.GET_RESPONSE
    CHOICE = 3

    def to_bytes(self) -> bytes:
        out = bytearray(self._head())
        out += encode_length(len(self.results))
        for result in self.results:
            out += _encode_get_data_result(result)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> GetResponseWithList:
        r, iid = cls._open(data, "GET-Response-With-List")
        count = r.sequence_count("result list", 2)
        results = tuple([_decode_get_data_result(r, "result", i + 1) for i in range(count)])
        r.expect_end()
        return cls(results, iid)

    def describe(self) -> str:
        items = ", ".join(_describe_result(result) for result in self.results)
        return f"GET.res with-list {_iid_text(self.invoke_id_and_priority)} [{items}]"


# =========================================================================== SET
# Green Book: Set-Request-Normal ::= SEQUENCE { invoke-id-and-priority,
#   cosem-attribute-descriptor, access-selection OPTIONAL, value Data }

# Green Book: Get-Request ::= CHOICE { get-request-normal, get-request-next,
#   get-request-with-list }; Get-Response ::= CHOICE { get-response-normal,
#   get-response-with-datablock, get-response-with-list }
GetRequest = GetRequestNormal | GetRequestNext | GetRequestWithList
GetResponse = GetResponseNormal | GetResponseWithDatablock | GetResponseWithList

@dataclass(frozen=True)
class SetRequestNormal(_Service):
    descriptor: CosemAttributeDescriptor
    value: Data
    access_selection: SelectiveAccessDescriptor | None = None
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.SET_REQUEST
    CHOICE = 1

    def to_bytes(self) -> bytes:
        return (self._head()
                + self.descriptor.to_bytes() + _encode_selection(self.access_selection)
                + encode_data(self.value))

    @classmethod
    def from_bytes(cls, data: bytes) -> SetRequestNormal:
        r, iid = cls._open(data, "SET-Request-Normal")
        descriptor, r.pos = CosemAttributeDescriptor.decode(data, r.pos)
        selection = _decode_selection(r)
        value = r.data("value")
        r.expect_end()
        return cls(descriptor, value, selection, iid)

    def describe(self) -> str:
        return (f"SET.req normal {_iid_text(self.invoke_id_and_priority)} "
                f"{self.descriptor.describe()}{_describe_selection(self.access_selection)} "
                f"= {describe(self.value, limit=8)}")


# Green Book: Set-Response-Normal ::= SEQUENCE { invoke-id-and-priority,
#   result Data-Access-Result }
@dataclass(frozen=True)
class SetResponseNormal(_Service):
    result: DataAccessResult
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.SET_RESPONSE
    CHOICE = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("data-access-result", int(self.result), 0, 255)

    def check(self) -> None:
        """Raise :class:`DataAccessError` unless the result is success."""
        if self.result is not DataAccessResult.SUCCESS:
            raise DataAccessError(f"SET refused: {self.result.describe()}", int(self.result))

    def to_bytes(self) -> bytes:
        return self._head() + bytes((int(self.result),))

    @classmethod
    def from_bytes(cls, data: bytes) -> SetResponseNormal:
        r, iid = cls._open(data, "SET-Response-Normal")
        result = DataAccessResult(r.u8("result"))
        r.expect_end()
        return cls(result, iid)

    def describe(self) -> str:
        return f"SET.res normal {_iid_text(self.invoke_id_and_priority)} {self.result.label}"


# Green Book: Set-Request ::= CHOICE { set-request-normal [1],
#   set-request-with-first-datablock [2], set-request-with-datablock [3],
#   set-request-with-list [4], set-request-with-list-and-first-datablock [5] }
#   DataBlock-SA ::= SEQUENCE { last-block BOOLEAN, block-number Unsigned32,
#     raw-data OCTET STRING }
def _encode_block_sa(last_block: bool, block_number: int, raw_data: bytes) -> bytes:
    return (bytes((1 if last_block else 0,)) + _U32.pack(block_number)
            + encode_length(len(raw_data)) + raw_data)


def _decode_block_sa(r: AxdrReader) -> tuple[bool, int, bytes]:
    last = r.boolean("last-block")
    number = r.u32("block-number")
    return last, number, r.octet_string("raw-data")


def _describe_block(last_block: bool, block_number: int, raw_data: bytes) -> str:
    return f"block={block_number}{' last' if last_block else ''} raw-data {len(raw_data)} bytes"


#   Set-Request-With-First-Datablock ::= SEQUENCE { invoke-id-and-priority,
#     cosem-attribute-descriptor, access-selection [0] IMPLICIT Selective-Access-Descriptor
#     OPTIONAL, datablock DataBlock-SA }
@dataclass(frozen=True)
class SetRequestWithFirstDatablock(_Service):
    """The first block of a long SET: ``raw_data`` is the start of the encoded value."""

    descriptor: CosemAttributeDescriptor
    last_block: bool
    block_number: int
    raw_data: bytes
    access_selection: SelectiveAccessDescriptor | None = None
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.SET_REQUEST
    CHOICE = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("block-number", self.block_number, 0, 0xFFFFFFFF)

    def to_bytes(self) -> bytes:
        return (self._head() + self.descriptor.to_bytes()
                + _encode_selection(self.access_selection)
                + _encode_block_sa(self.last_block, self.block_number, self.raw_data))

    @classmethod
    def from_bytes(cls, data: bytes) -> SetRequestWithFirstDatablock:
        r, iid = cls._open(data, "SET-Request-With-First-Datablock")
        descriptor, r.pos = CosemAttributeDescriptor.decode(data, r.pos)
        selection = _decode_selection(r)
        last, number, raw = _decode_block_sa(r)
        r.expect_end()
        return cls(descriptor, last, number, raw, selection, iid)

    def describe(self) -> str:
        return (f"SET.req with-first-datablock {_iid_text(self.invoke_id_and_priority)} "
                f"{self.descriptor.describe()}{_describe_selection(self.access_selection)} "
                + _describe_block(self.last_block, self.block_number, self.raw_data))


#   Set-Request-With-Datablock ::= SEQUENCE { invoke-id-and-priority,
#     datablock DataBlock-SA }
@dataclass(frozen=True)
class SetRequestWithDatablock(_Service):
    """A further block of a long SET."""

    last_block: bool
    block_number: int
    raw_data: bytes
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.SET_REQUEST
    CHOICE = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("block-number", self.block_number, 0, 0xFFFFFFFF)

    def to_bytes(self) -> bytes:
        return self._head() + _encode_block_sa(self.last_block, self.block_number,
                                               self.raw_data)

    @classmethod
    def from_bytes(cls, data: bytes) -> SetRequestWithDatablock:
        r, iid = cls._open(data, "SET-Request-With-Datablock")
        last, number, raw = _decode_block_sa(r)
        r.expect_end()
        return cls(last, number, raw, iid)

    def describe(self) -> str:
        return (f"SET.req with-datablock {_iid_text(self.invoke_id_and_priority)} "
                + _describe_block(self.last_block, self.block_number, self.raw_data))


# Green Book: Set-Response ::= CHOICE { set-response-normal [1],
#   set-response-datablock [2], set-response-last-datablock [3],
#   set-response-last-datablock-with-list [4], set-response-with-list [5] }
#   Set-Response-Datablock ::= SEQUENCE { invoke-id-and-priority, block-number Unsigned32 }
@dataclass(frozen=True)
class SetResponseDatablock(_Service):
    """The meter took block ``block_number`` of a long SET and waits for the next."""

    block_number: int
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.SET_RESPONSE
    CHOICE = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("block-number", self.block_number, 0, 0xFFFFFFFF)

    def to_bytes(self) -> bytes:
        return self._head() + _U32.pack(self.block_number)

    @classmethod
    def from_bytes(cls, data: bytes) -> SetResponseDatablock:
        r, iid = cls._open(data, "SET-Response-Datablock")
        number = r.u32("block-number")
        r.expect_end()
        return cls(number, iid)

    def describe(self) -> str:
        return (f"SET.res datablock {_iid_text(self.invoke_id_and_priority)} "
                f"block={self.block_number}")


#   Set-Response-Last-Datablock ::= SEQUENCE { invoke-id-and-priority,
#     result Data-Access-Result, block-number Unsigned32 }
@dataclass(frozen=True)
class SetResponseLastDatablock(_Service):
    """The meter's result of a long SET, after its last block."""

    result: DataAccessResult
    block_number: int
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.SET_RESPONSE
    CHOICE = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("data-access-result", int(self.result), 0, 255)
        check_range("block-number", self.block_number, 0, 0xFFFFFFFF)

    def check(self) -> None:
        """Raise :class:`DataAccessError` unless the result is success."""
        if self.result is not DataAccessResult.SUCCESS:
            raise DataAccessError(f"SET refused: {self.result.describe()}", int(self.result))

    def to_bytes(self) -> bytes:
        return self._head() + bytes((int(self.result),)) + _U32.pack(self.block_number)

    @classmethod
    def from_bytes(cls, data: bytes) -> SetResponseLastDatablock:
        r, iid = cls._open(data, "SET-Response-Last-Datablock")
        result = DataAccessResult(r.u8("result"))
        number = r.u32("block-number")
        r.expect_end()
        return cls(result, number, iid)

    def describe(self) -> str:
        return (f"SET.res last-datablock {_iid_text(self.invoke_id_and_priority)} "
                f"block={self.block_number} {self.result.label}")


SetRequest = SetRequestNormal | SetRequestWithFirstDatablock | SetRequestWithDatablock
SetResponse = SetResponseNormal | SetResponseDatablock | SetResponseLastDatablock


def _room(space: int) -> int:
    """The most raw-data octets that fit in ``space`` octets with their length."""
    room = space - 1
    while room > 0 and len(encode_length(room)) + room > space:
        room -= 1
    return room


def set_requests(descriptor: CosemAttributeDescriptor, value: Data, *, max_apdu: int,
                 invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY,
                 ) -> tuple[SetRequest, ...]:
    """The SET of ``value``: one SET-Request-Normal when it fits in ``max_apdu`` octets
    (0: no limit), else a SET-Request-With-First-Datablock and SET-Request-With-Datablocks
    (numbered from 1, Green Book 9.4.6.3 "Transferring long service data") each of at
    most ``max_apdu`` octets.  The caller sends them one by one, each after the meter's
    Set-Response-Datablock acknowledging the one before."""
    normal = SetRequestNormal(descriptor, value, invoke_id_and_priority=invoke_id_and_priority)
    if not max_apdu or len(normal.to_bytes()) <= max_apdu:
        return (normal,)
    raw = encode_data(value)
    # the first block: tag, choice, iid (3), the descriptor (9), the selection flag (1);
    # every block: last-block (1), block-number (4), raw-data's length and octets
    first_room = _room(max_apdu - 3 - 9 - 1 - 5)
    room = _room(max_apdu - 3 - 5)
    if first_room < 1:
        raise LocalProtocolError(f"a SET in blocks needs a max PDU above 19 octets, not "
                                 f"{max_apdu}")
    pieces = [raw[:first_room]]
    pieces += [raw[start:start + room] for start in range(first_room, len(raw), room)]
    last = len(pieces)
    requests: list[SetRequest] = [SetRequestWithFirstDatablock(
        descriptor, last == 1, 1, pieces[0], invoke_id_and_priority=invoke_id_and_priority)]
    requests += [SetRequestWithDatablock(number == last, number, piece, invoke_id_and_priority)
                 for number, piece in enumerate(pieces[1:], start=2)]
    return tuple(requests)


# =========================================================================== ACTION
# Green Book: Action-Request-Normal ::= SEQUENCE { invoke-id-and-priority,
#   cosem-method-descriptor, method-invocation-parameters Data OPTIONAL }
@dataclass(frozen=True)
class ActionRequestNormal(_Service):
    """E.g. HLS pass 3: ``reply_to_HLS_authentication``, method 1 of class 15."""

    descriptor: CosemMethodDescriptor
    parameters: Data | None = None
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.ACTION_REQUEST
    CHOICE = 1

    def to_bytes(self) -> bytes:
        params = b"\x00" if self.parameters is None else b"\x01" + encode_data(self.parameters)
        return (self._head()
                + self.descriptor.to_bytes() + params)

    @classmethod
    def from_bytes(cls, data: bytes) -> ActionRequestNormal:
        r, iid = cls._open(data, "ACTION-Request-Normal")
        descriptor, r.pos = CosemMethodDescriptor.decode(data, r.pos)
        params = r.data("method-invocation-parameters") if r.present("parameters") else None
        r.expect_end()
        return cls(descriptor, params, iid)

    def describe(self) -> str:
        params = "" if self.parameters is None else f" ({describe(self.parameters, limit=4)})"
        return (f"ACTION.req normal {_iid_text(self.invoke_id_and_priority)} "
                f"{self.descriptor.describe()}{params}")


# Green Book: Action-Response-Normal ::= SEQUENCE { invoke-id-and-priority,
#   single-response Action-Response-With-Optional-Data }
#   Action-Response-With-Optional-Data ::= SEQUENCE { result Action-Result,
#     return-parameters Get-Data-Result OPTIONAL }
@dataclass(frozen=True)
class ActionResponseNormal(_Service):
    result: ActionResult
    return_parameters: GetDataResult | None = None
    invoke_id_and_priority: int = DEFAULT_INVOKE_ID_AND_PRIORITY

    TAG = ApduTag.ACTION_RESPONSE
    CHOICE = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("action-result", int(self.result), 0, 255)

    def check(self) -> Data | None:
        """The returned data (or None); raises :class:`DataAccessError` unless success."""
        if self.result is not ActionResult.SUCCESS:
            raise DataAccessError(f"ACTION refused: {self.result.describe()}", int(self.result))
        if isinstance(self.return_parameters, DataAccessResult):
            raise DataAccessError(
                f"ACTION return-parameters refused: {self.return_parameters.describe()}",
                int(self.return_parameters),
            )
        return self.return_parameters

    def to_bytes(self) -> bytes:
        out = self._head() + bytes((int(self.result),))
        if self.return_parameters is None:
            return out + b"\x00"
        return out + b"\x01" + _encode_get_data_result(self.return_parameters)

    @classmethod
    def from_bytes(cls, data: bytes) -> ActionResponseNormal:
        r, iid = cls._open(data, "ACTION-Response-Normal")
        result = ActionResult(r.u8("result"))
        # Some meters end the APDU after the result; the OPTIONAL flag is then absent.
        params = None
        if r.remaining and r.present("return-parameters"):
            params = _decode_get_data_result(r, "return-parameters")
        r.expect_end()
        return cls(result, params, iid)

    def describe(self) -> str:
        params = ("" if self.return_parameters is None
                  else f" -> {_describe_result(self.return_parameters)}")
        return (f"ACTION.res normal {_iid_text(self.invoke_id_and_priority)} "
                f"{self.result.label}{params}")


# =========================================================================== exception
@dataclass(frozen=True)
class ExceptionResponse:
    """ExceptionResponse (0xD8): the server could not even parse or run the request.

    ``invocation_counter`` is only present with invocation-counter-error.
    """

    state_error: StateError
    service_error: ExceptionServiceError
    invocation_counter: int | None = None

    TAG = ApduTag.EXCEPTION_RESPONSE

    def __post_init__(self) -> None:
        check_range("state-error", int(self.state_error), 0, 255)
        check_range("service-error", int(self.service_error), 0, 255)
        counter_error = self.service_error is ExceptionServiceError.INVOCATION_COUNTER_ERROR
        if counter_error != (self.invocation_counter is not None):
            raise LocalProtocolError(
                "invocation_counter is given exactly with invocation-counter-error")
        if self.invocation_counter is not None:
            check_range("invocation-counter", self.invocation_counter, 0, 0xFFFFFFFF)

    def to_bytes(self) -> bytes:
        out = bytes((self.TAG, int(self.state_error), int(self.service_error)))
        if self.invocation_counter is not None:
            out += _U32.pack(self.invocation_counter)
        return out

    @classmethod
    def from_bytes(cls, data: bytes) -> ExceptionResponse:
        r = AxdrReader(data, 0, "ExceptionResponse")
        r.tag(cls.TAG)
        state = StateError(r.u8("state-error"))
        service = ExceptionServiceError(r.u8("service-error"))
        counter = None
        if service is ExceptionServiceError.INVOCATION_COUNTER_ERROR:
            counter = r.u32("invocation-counter")
        r.expect_end()
        return cls(state, service, counter)

    def describe(self) -> str:
        """E.g. ``exception-response service-not-allowed: operation-not-possible``."""
        text = f"exception-response {self.state_error.label}: {self.service_error.label}"
        if self.invocation_counter is not None:
            text += f" (expected invocation counter {self.invocation_counter})"
        return text

    def to_error(self) -> ServiceError:
        return ServiceError(self.describe(), code=int(self.service_error))


# =========================================================================== blocks
class Reassembler:
    """The bookkeeping of a transfer in blocks, shared by :class:`BlockReassembler`
    (GET) and :class:`dlmsd.protocol.sn.SnBlockReassembler` (READ).

    Blocks must arrive numbered 1, 2, 3...; a wrong number raises
    :class:`RemoteProtocolError` naming the expected and received numbers, and more
    than ``max_size`` bytes or ``max_blocks`` blocks (or a block number the service
    cannot count past) raise :class:`RemoteProtocolError`.  With ``data_value``, the
    array or structure count of the Data the raw data holds is checked as soon as it
    has arrived (usually at block 1): a count that ``max_size`` or the A-XDR node budget
    cannot hold raises :class:`RemoteProtocolError` at once, not a megabyte later.
    """

    _SERVICE: ClassVar[str]  # in the block-number error: "GET", "READ"
    _TRANSFER: ClassVar[str]  # in the limit errors: "long GET", "long read"
    _MAX_BLOCK_NUMBER: ClassVar[int]  # the largest block number the service can carry

    def __init__(self, *, max_size: int = 1 << 20, max_blocks: int = 10_000,
                 data_value: bool = False) -> None:
        if max_size < 1 or max_blocks < 1:
            raise LocalProtocolError("max_size and max_blocks must be positive")
        self.max_size = max_size
        self.max_blocks = max_blocks
        self.expected_block = 1
        self.complete = False
        self._parts = bytearray()
        # The raw data holds a Data (at _data_start()): its array or structure count,
        # in the first octets, is checked as soon as it has arrived.
        self._check_header = data_value

    @property
    def size(self) -> int:
        """Raw data bytes collected so far."""
        return len(self._parts)

    @property
    def last_received(self) -> int:
        """The number of the last block taken (0 before the first)."""
        return self.expected_block - 1

    def _check_number(self, block_number: int) -> None:
        if self.complete:
            raise LocalProtocolError(
                f"{self._TRANSFER} already complete; start a new {type(self).__name__}")
        if block_number != self.expected_block:
            raise RemoteProtocolError(
                f"{self._SERVICE} block number {block_number}, expected {self.expected_block}",
                code=block_number,
            )

    def _append(self, block_number: int, raw_data: bytes) -> None:
        if len(self._parts) + len(raw_data) > self.max_size:
            raise RemoteProtocolError(
                f"{self._TRANSFER} exceeds {self.max_size} bytes at block {block_number}")
        self._parts += raw_data
        if self._check_header:
            self._check_count(block_number)

    def _data_start(self) -> int | None:
        """Where the Data whose count is checked starts in the raw data: None while
        that is not known yet, -1 when there is none to check.  GET: at once."""
        return 0

    def _list_head(self) -> tuple[int, int] | None:
        """For raw data that is a result list (an A-XDR quantity, then the results,
        each a CHOICE): the quantity and where the first result's choice is, once
        they have arrived (else None)."""
        parts = self._parts
        if not parts:
            return None
        first = parts[0]
        at = 1 + (first & 0x7F if first & 0x80 else 0)
        if len(parts) <= at:
            return None
        return (int.from_bytes(parts[1:at]) if first & 0x80 else first), at

    def _check_count(self, block_number: int) -> None:
        """Refuse at once an array or structure that the whole transfer could not
        hold or that decoding it would refuse (the node budget of ``max_size``)."""
        parts = self._parts
        at = self._data_start()
        if at is None or len(parts) < at + 2:
            return  # not all here yet: checked again after the next block
        self._check_header = False
        if at < 0 or parts[at] not in (DataType.ARRAY, DataType.STRUCTURE):
            return
        first = parts[at + 1]
        header = 2 + (first & 0x7F if first & 0x80 else 0)
        if len(parts) < at + header:
            self._check_header = True  # the count is not all here yet
            return
        count = int.from_bytes(parts[at + 2:at + header]) if first & 0x80 else first
        budget = node_budget(self.max_size) - 1
        if at + header + count > self.max_size or count > budget:
            raise RemoteProtocolError(
                f"{self._TRANSFER} of {DataType(parts[at]).asn1_name} of {count} values "
                f"exceeds the limit of {min(budget, self.max_size - at - header)} values "
                f"for a response of at most {self.max_size} bytes, at block {block_number}")

    def _finish(self, block_number: int, last_block: bool) -> bytes | None:
        if last_block:
            self.complete = True
            return bytes(self._parts)
        limit = min(self.max_blocks, self._MAX_BLOCK_NUMBER)
        if block_number >= limit:
            raise RemoteProtocolError(
                f"{self._TRANSFER} exceeds {limit} blocks", code=block_number)
        self.expected_block += 1
        return None

    def _acknowledged(self) -> int:
        """The number the next request acknowledges: the last block received."""
        if self.complete or self.expected_block == 1:
            raise LocalProtocolError("no block to acknowledge")
        return self.last_received


class BlockReassembler(Reassembler):
    """Collects the blocks of one long GET (Get-Response-With-Datablock).

    Pure bookkeeping; the client sends :meth:`next_request` after each block.
    Blocks must arrive numbered 1, 2, 3... (Green Book, "GET service with block
    transfer"); a wrong number raises :class:`RemoteProtocolError` naming the
    expected and received numbers, a data-access-result instead of raw data
    raises :class:`DataAccessError`, and more than ``max_size`` bytes or
    ``max_blocks`` blocks raise :class:`RemoteProtocolError`.
    """

    _SERVICE = "GET"
    _TRANSFER = "long GET"
    _MAX_BLOCK_NUMBER = 0xFFFFFFFF  # block-number Unsigned32

    def __init__(
        self, *, max_size: int = 1 << 20, max_blocks: int = 10_000, data_value: bool = False,
        results: int = 0,
    ) -> None:
        super().__init__(max_size=max_size, max_blocks=max_blocks,
                         data_value=data_value or results > 0)
        self._invoke_id_and_priority = DEFAULT_INVOKE_ID_AND_PRIORITY
        # GET-with-list of ``results`` attributes: the raw data is the list of results
        # (Green Book, Get-Response-With-List in blocks: its quantity, then each
        # Get-Data-Result, CHOICE data [0] or data-access-result [1]).
        self._results = results

    def _data_start(self) -> int | None:
        """A GET-with-list's quantity must be the number of attributes asked for
        (checked at the block that brings it); the count checked is that of the first
        result's Data."""
        if not self._results:
            return 0
        head = self._list_head()
        if head is None:
            return None
        quantity, at = head
        if quantity != self._results:
            raise RemoteProtocolError(
                f"{self._TRANSFER} with-list: {quantity} results for {self._results} "
                f"attributes, at block {self.expected_block}")
        return at + 1 if self._parts[at] == _GET_DATA else -1

    def add(self, block: GetResponseWithDatablock) -> bytes | None:
        """Take one block; returns the whole raw data after the last one, else None."""
        self._check_number(block.block_number)
        if isinstance(block.raw_data, DataAccessResult):
            raise DataAccessError(
                f"long GET aborted at block {block.block_number}: {block.raw_data.describe()}",
                int(block.raw_data),
            )
        self._append(block.block_number, block.raw_data)
        self._invoke_id_and_priority = block.invoke_id_and_priority
        return self._finish(block.block_number, block.last_block)

    def next_request(self) -> GetRequestNext:
        """The GET next acknowledging the last block received."""
        return GetRequestNext(self._acknowledged(), self._invoke_id_and_priority)
