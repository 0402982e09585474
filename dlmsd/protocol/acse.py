"""ACSE APDUs of DLMS/COSEM (IEC 62056-5-3, DLMS UA Green Book) and what they carry.

This module owns the association: AARQ, AARE, RLRQ and RLRE (BER encoded, ISO/IEC
8650-1 as profiled by the Green Book), the xDLMS InitiateRequest/InitiateResponse in
their user-information (A-XDR), the ``Conformance`` block, the confirmed-service-error
APDU, and :func:`association_rejected` which turns a rejecting AARE into a readable
:class:`~dlmsd.errors.AssociationRejected`.  It also holds :class:`WireEnum`, the
enum base for codes read off the wire.

Every wire type is a frozen dataclass with ``to_bytes()`` and ``from_bytes(data)``
(the whole of ``data``, trailing bytes are a :class:`DecodeError`); the ones that are
also parts of other APDUs have ``decode(buf, pos) -> (obj, new_pos)``.  Decoding raises
only :class:`DecodeError`; building a value that cannot be encoded raises
:class:`LocalProtocolError`.  Pure: no I/O, no clock, no logging.

A client associates like this::

    aarq = Aarq(mechanism_name=MechanismName.LOW, calling_authentication_value=password,
                user_information=InitiateRequest(client_max_receive_pdu_size=1200))
    send(aarq.to_bytes())
    aare = Aare.from_bytes(received)      # or xdlms.decode_apdu(received)
    negotiated = aare.check()             # InitiateResponse, or raises AssociationRejected
    negotiated.server_max_receive_pdu_size, negotiated.negotiated_conformance

Secrets: the calling-authentication-value (password or HLS challenge) and the
dedicated key are ``field(repr=False)`` and ``describe()`` prints them as ``***``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Final

from dlmsd.errors import AssociationRejected, DecodeError, LocalProtocolError, ServiceError
from dlmsd.protocol.axdr import AxdrReader, decode_length, encode_length

__all__ = [
    "DEFAULT_CONFORMANCE",
    "DLMS_VERSION",
    "Aare",
    "Aarq",
    "AcseServiceProvider",
    "AcseServiceUser",
    "AcseTag",
    "ApplicationContextName",
    "AssociationResult",
    "ConfirmedServiceError",
    "ConfirmedServiceErrorChoice",
    "Conformance",
    "InitiateRequest",
    "InitiateResponse",
    "MechanismName",
    "ReleaseRequestReason",
    "ReleaseResponseReason",
    "Rlre",
    "Rlrq",
    "ServiceErrorType",
    "WireEnum",
    "association_rejected",
    "decode_conformance",
    "encode_conformance",
]

#: The DLMS version number of the current standard (proposed and negotiated).
DLMS_VERSION: Final = 6

_U8: Final = struct.Struct(">B")
_I8: Final = struct.Struct(">b")
_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")


# =========================================================================== enums
class WireEnum(IntEnum):
    """An ``IntEnum`` for codes read off the wire.

    A meter may send a code this version of the standard does not define; rejecting
    the whole APDU for it would hide what the meter meant, so an unknown integer
    becomes a pseudo-member named ``UNKNOWN_<n>`` (``R(7).label == "unknown-7"``).
    """

    @classmethod
    def _missing_(cls, value: object) -> WireEnum | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        return member

    @property
    def label(self) -> str:
        """The standard's spelling, e.g. ``read-write-denied``."""
        return self.name.lower().replace("_", "-")

    def describe(self) -> str:
        """The spelling and the code, e.g. ``read-write-denied (3)``."""
        return f"{self.label} ({int(self)})"


class AcseTag(IntEnum):
    """Tags of the ACSE APDUs ([APPLICATION n], constructed)."""

    AARQ = 0x60
    AARE = 0x61
    RLRQ = 0x62
    RLRE = 0x63


# Green Book, "COSEM application context names":
#   {joint-iso-ccitt(2) country(16) country-name(756) identified-organization(5)
#    DLMS-UA(8) application-context(1) context-id(x)}
_CONTEXT_PREFIX: Final = (2, 16, 756, 5, 8, 1)
# Green Book, "COSEM authentication mechanism names":
#   {2 16 756 5 8 authentication-mechanism-name(2) mechanism-id(x)}
_MECHANISM_PREFIX: Final = (2, 16, 756, 5, 8, 2)


class ApplicationContextName(IntEnum):
    """The context-id of the COSEM application context name (last OID arc)."""

    LOGICAL_NAME_REFERENCING_NO_CIPHERING = 1
    SHORT_NAME_REFERENCING_NO_CIPHERING = 2
    LOGICAL_NAME_REFERENCING_WITH_CIPHERING = 3
    SHORT_NAME_REFERENCING_WITH_CIPHERING = 4

    @property
    def oid(self) -> tuple[int, ...]:
        return (*_CONTEXT_PREFIX, int(self))

    @property
    def short(self) -> str:
        """``LN``, ``SN``, ``LN-ciphered`` or ``SN-ciphered``."""
        ref = "LN" if self.value in (1, 3) else "SN"
        return ref + ("-ciphered" if self.value >= 3 else "")

    @property
    def ciphered(self) -> bool:
        return self.value >= 3


class MechanismName(IntEnum):
    """The mechanism-id of the COSEM authentication mechanism name (last OID arc)."""

    LOWEST = 0  # COSEM_lowest_level_security_mechanism_name
    LOW = 1  # COSEM_low_level_security_mechanism_name (password)
    HIGH = 2  # COSEM_high_level_security_mechanism_name (manufacturer specific)
    HIGH_MD5 = 3
    HIGH_SHA1 = 4
    HIGH_GMAC = 5
    HIGH_SHA256 = 6
    HIGH_ECDSA = 7

    @property
    def oid(self) -> tuple[int, ...]:
        return (*_MECHANISM_PREFIX, int(self))

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


class AssociationResult(WireEnum):
    """Association-result ::= INTEGER (ISO/IEC 8650-1)."""

    ACCEPTED = 0
    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class AcseServiceUser(WireEnum):
    """Associate-source-diagnostic, acse-service-user [1] INTEGER."""

    NULL = 0
    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2
    CALLING_AP_TITLE_NOT_RECOGNIZED = 3
    CALLING_AP_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 4
    CALLING_AE_QUALIFIER_NOT_RECOGNIZED = 5
    CALLING_AE_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 6
    CALLED_AP_TITLE_NOT_RECOGNIZED = 7
    CALLED_AP_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 8
    CALLED_AE_QUALIFIER_NOT_RECOGNIZED = 9
    CALLED_AE_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 10
    AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED = 11
    AUTHENTICATION_MECHANISM_NAME_REQUIRED = 12
    AUTHENTICATION_FAILURE = 13
    AUTHENTICATION_REQUIRED = 14

    @property
    def source(self) -> str:
        return "acse-service-user"


class AcseServiceProvider(WireEnum):
    """Associate-source-diagnostic, acse-service-provider [2] INTEGER."""

    NULL = 0
    NO_REASON_GIVEN = 1
    NO_COMMON_ACSE_VERSION = 2

    @property
    def source(self) -> str:
        return "acse-service-provider"


class ReleaseRequestReason(WireEnum):
    NORMAL = 0
    URGENT = 1
    USER_DEFINED = 30


class ReleaseResponseReason(WireEnum):
    NORMAL = 0
    NOT_FINISHED = 1
    USER_DEFINED = 30


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


def _check(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LocalProtocolError(f"{name} {value!r} outside {low}..{high}")


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

    TAG = 0x01

    def __post_init__(self) -> None:
        _check("client-max-receive-pdu-size", self.client_max_receive_pdu_size, 0, 0xFFFF)
        _check("proposed-dlms-version-number", self.proposed_dlms_version_number, 0, 255)
        _check("proposed-conformance", int(self.proposed_conformance), 0, 0xFFFFFF)
        if self.proposed_quality_of_service is not None:
            _check("proposed-quality-of-service", self.proposed_quality_of_service, -128, 127)

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
        tag = r.u8("tag")
        if tag != cls.TAG:
            raise DecodeError(f"InitiateRequest: tag 0x{tag:02X}, expected 0x01")
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
        value, pos = cls.decode(data, 0)
        AxdrReader(data, pos, "InitiateRequest").expect_end()
        return value

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

    TAG = 0x08

    def __post_init__(self) -> None:
        _check("server-max-receive-pdu-size", self.server_max_receive_pdu_size, 0, 0xFFFF)
        _check("negotiated-dlms-version-number", self.negotiated_dlms_version_number, 0, 255)
        _check("negotiated-conformance", int(self.negotiated_conformance), 0, 0xFFFFFF)
        _check("vaa-name", self.vaa_name, 0, 0xFFFF)
        if self.negotiated_quality_of_service is not None:
            _check("negotiated-quality-of-service", self.negotiated_quality_of_service, -128, 127)

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
        tag = r.u8("tag")
        if tag != cls.TAG:
            raise DecodeError(f"InitiateResponse: tag 0x{tag:02X}, expected 0x08")
        qos = (r.i8("negotiated-quality-of-service")
               if r.present("negotiated-quality-of-service") else None)
        version = r.u8("negotiated-dlms-version-number")
        conformance, r.pos = decode_conformance(r.buf, r.pos)
        size = r.u16("server-max-receive-pdu-size")
        vaa = r.u16("vaa-name")
        return cls(conformance, size, version, vaa, qos), r.pos

    @classmethod
    def from_bytes(cls, data: bytes) -> InitiateResponse:
        value, pos = cls.decode(data, 0)
        AxdrReader(data, pos, "InitiateResponse").expect_end()
        return value

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

    TAG = 0x0E

    def __post_init__(self) -> None:
        _check("confirmed-service-error choice", int(self.service), 0, 255)
        _check("service-error choice", int(self.error), 0, 255)
        _check("service-error value", self.value, 0, 255)

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
        tag = r.u8("tag")
        if tag != cls.TAG:
            raise DecodeError(f"confirmed-service-error: tag 0x{tag:02X}, expected 0x0E")
        service = ConfirmedServiceErrorChoice(r.u8("service choice"))
        error = ServiceErrorType(r.u8("service-error choice"))
        return cls(service, error, r.u8("service-error value")), r.pos

    @classmethod
    def from_bytes(cls, data: bytes) -> ConfirmedServiceError:
        value, pos = cls.decode(data, 0)
        AxdrReader(data, pos, "confirmed-service-error").expect_end()
        return value


# =========================================================================== BER
# ISO/IEC 8825-1 (BER), as used by the ACSE APDUs: identifier octet(s), definite
# length (the same form as the A-XDR length, so the one codec of axdr is used),
# contents.  Tags 0..30 take one identifier octet; 31 and above continue in
# base-128 octets (only met in elements we skip).
_MAX_TAG_OCTETS: Final = 4
_MAX_OID_ARCS: Final = 32
_MAX_INTEGER_OCTETS: Final = 8


def _ber_tlv(buf: bytes, pos: int, end: int, what: str) -> tuple[int, int, int]:
    """Read one TLV inside ``buf[:end]``: returns ``(tag, content_start, content_end)``.

    ``tag`` is the identifier octets as one integer (``0xBE`` or ``0x5F1F``).
    """
    if pos >= end:
        raise DecodeError(f"{what}: truncated at offset {pos} (expected a tag)")
    tag = buf[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        for _ in range(_MAX_TAG_OCTETS):
            if pos >= end:
                raise DecodeError(f"{what}: truncated tag at offset {pos}")
            octet = buf[pos]
            pos += 1
            tag = tag << 8 | octet
            if not octet & 0x80:
                break
        else:
            raise DecodeError(f"{what}: tag longer than {_MAX_TAG_OCTETS} octets at offset {pos}")
    if pos >= end:
        raise DecodeError(f"{what}: truncated at offset {pos} (no length for tag 0x{tag:02X})")
    length, start = decode_length(buf if end == len(buf) else buf[:end], pos)
    if length > end - start:
        raise DecodeError(
            f"{what}: element 0x{tag:02X} at offset {pos - 1} has length {length}, "
            f"only {end - start} bytes remain"
        )
    return tag, start, start + length


def _ber(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(content)) + content


def _encode_oid(arcs: tuple[int, ...]) -> bytes:
    first = arcs[0] * 40 + arcs[1]
    out = bytearray()
    for arc in (first, *arcs[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def _decode_oid(content: bytes, what: str) -> tuple[int, ...]:
    if not content:
        raise DecodeError(f"{what}: empty OBJECT IDENTIFIER")
    if content[-1] & 0x80:
        raise DecodeError(f"{what}: OBJECT IDENTIFIER ends inside a sub-identifier")
    subids: list[int] = []
    value = 0
    octets = 0
    for octet in content:
        value = value << 7 | (octet & 0x7F)
        octets += 1
        if octets > 5:  # 35 bits: far more than any arc a COSEM name has
            raise DecodeError(f"{what}: OBJECT IDENTIFIER sub-identifier too long")
        if not octet & 0x80:
            subids.append(value)
            value = 0
            octets = 0
        if len(subids) > _MAX_OID_ARCS:
            raise DecodeError(f"{what}: OBJECT IDENTIFIER with more than {_MAX_OID_ARCS} arcs")
    first = subids[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return (*head, *subids[1:])


def _oid_text(arcs: tuple[int, ...]) -> str:
    return ".".join(str(a) for a in arcs)


def _encode_integer(value: int) -> bytes:
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return value.to_bytes(size, "big", signed=True)


def _decode_integer(content: bytes, what: str) -> int:
    if not 1 <= len(content) <= _MAX_INTEGER_OCTETS:
        raise DecodeError(f"{what}: INTEGER of {len(content)} octets")
    return int.from_bytes(content, "big", signed=True)


def _explicit_integer(content: bytes, what: str) -> int:
    """``[n] EXPLICIT INTEGER``: the content is one universal INTEGER (02 len value)."""
    tag, start, end = _ber_tlv(content, 0, len(content), what)
    if tag != 0x02 or end != len(content):
        raise DecodeError(f"{what}: expected one INTEGER (02), got tag 0x{tag:02X}")
    return _decode_integer(content[start:end], what)


_CONTEXT_IDS: Final = frozenset(int(m) for m in ApplicationContextName)
_MECHANISM_IDS: Final = frozenset(int(m) for m in MechanismName)


def _context_name(content: bytes, what: str) -> ApplicationContextName:
    tag, start, end = _ber_tlv(content, 0, len(content), what)
    if tag != 0x06 or end != len(content):
        raise DecodeError(f"{what}: expected an OBJECT IDENTIFIER (06), got tag 0x{tag:02X}")
    arcs = _decode_oid(content[start:end], what)
    if arcs[:-1] != _CONTEXT_PREFIX or arcs[-1] not in _CONTEXT_IDS:
        raise DecodeError(f"{what}: unknown application context name {_oid_text(arcs)}")
    return ApplicationContextName(arcs[-1])


def _mechanism(content: bytes, what: str) -> MechanismName:
    arcs = _decode_oid(content, what)
    if arcs[:-1] != _MECHANISM_PREFIX or arcs[-1] not in _MECHANISM_IDS:
        raise DecodeError(f"{what}: unknown authentication mechanism name {_oid_text(arcs)}")
    return MechanismName(arcs[-1])


def _authentication_value(content: bytes, what: str) -> bytes:
    # Authentication-value ::= CHOICE { charstring [0] IMPLICIT GraphicString,
    #   bitstring [1] IMPLICIT BIT STRING, external [2], other [3] }; COSEM uses charstring.
    tag, start, end = _ber_tlv(content, 0, len(content), what)
    if tag != 0x80 or end != len(content):
        raise DecodeError(f"{what}: only the charstring form (80) is supported, got 0x{tag:02X}")
    return content[start:end]


def _ap_title(content: bytes, what: str) -> bytes:
    # The Green Book carries the system title as AP-title form 2 wrapped in an
    # OCTET STRING: A6 0A 04 08 <8 octets>.
    tag, start, end = _ber_tlv(content, 0, len(content), what)
    if tag != 0x04 or end != len(content):
        raise DecodeError(f"{what}: expected an OCTET STRING (04), got tag 0x{tag:02X}")
    return content[start:end]


def _acse_requirements(content: bytes, what: str) -> bool:
    # ACSE-requirements ::= BIT STRING { authentication(0), ... }: first octet is the
    # number of unused bits, bit 0 is the most significant bit of the next octet.
    if not content or content[0] > 7:
        raise DecodeError(f"{what}: malformed BIT STRING {content.hex(' ').upper()}")
    return len(content) > 1 and bool(content[1] & 0x80)


_REQUIREMENTS_AUTHENTICATION: Final = b"\x07\x80"


def _user_information_octets(content: bytes, what: str) -> bytes:
    # user-information [30] EXPLICIT Association-information; Association-information
    # ::= OCTET STRING holding the (possibly ciphered) xDLMS APDU.
    tag, start, end = _ber_tlv(content, 0, len(content), what)
    if tag != 0x04 or end != len(content):
        raise DecodeError(f"{what}: expected an OCTET STRING (04), got tag 0x{tag:02X}")
    return content[start:end]


def _user_information_element(payload: bytes) -> bytes:
    return _ber(0xBE, _ber(0x04, payload))


def _apdu_content(data: bytes, tag: int, what: str) -> bytes:
    """Check the outer [APPLICATION n] TLV fills ``data`` and return its content."""
    if not data:
        raise DecodeError(f"{what}: empty APDU")
    if data[0] != tag:
        raise DecodeError(f"{what}: tag 0x{data[0]:02X}, expected 0x{tag:02X}")
    _, start, end = _ber_tlv(data, 0, len(data), what)
    if end != len(data):
        raise DecodeError(f"{what}: {len(data) - end} trailing bytes after the APDU")
    return data[start:end]


def _elements(content: bytes, what: str) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(content):
        tag, start, end = _ber_tlv(content, pos, len(content), what)
        out.append((tag, content[start:end]))
        pos = end
    return out


def _initiate_request_or_raw(payload: bytes) -> InitiateRequest | bytes:
    if payload[:1] == bytes((InitiateRequest.TAG,)):
        return InitiateRequest.from_bytes(payload)
    return payload  # ciphered (glo-/ded-initiateRequest) or unknown: the caller decides


def _initiate_response_or_raw(payload: bytes) -> InitiateResponse | ConfirmedServiceError | bytes:
    if payload[:1] == bytes((InitiateResponse.TAG,)):
        return InitiateResponse.from_bytes(payload)
    if payload[:1] == bytes((ConfirmedServiceError.TAG,)):
        return ConfirmedServiceError.from_bytes(payload)
    return payload


def _payload(value: InitiateRequest | InitiateResponse | ConfirmedServiceError | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.to_bytes()


def _describe_user_information(
    value: InitiateRequest | InitiateResponse | ConfirmedServiceError | bytes | None,
) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        tag = f"0x{value[0]:02X}" if value else "empty"
        return f" user-information=<{len(value)} bytes, tag {tag}>"
    return f" {value.describe()}"


# =========================================================================== AARQ
# Green Book / ISO/IEC 8650-1, AARQ-apdu ::= [APPLICATION 0] IMPLICIT SEQUENCE {
#   protocol-version             [0] IMPLICIT BIT STRING {version1(0)} DEFAULT {version1},
#   application-context-name     [1] Application-context-name,
#   called-AP-title [2], called-AE-qualifier [3], called-AP-invocation-id [4],
#   called-AE-invocation-id [5], calling-AP-title [6], calling-AE-qualifier [7],
#   calling-AP-invocation-id [8], calling-AE-invocation-id [9]      -- all OPTIONAL,
#   sender-acse-requirements     [10] IMPLICIT ACSE-requirements OPTIONAL,
#   mechanism-name               [11] IMPLICIT Mechanism-name OPTIONAL,
#   calling-authentication-value [12] EXPLICIT Authentication-value OPTIONAL,
#   application-context-name-list [13], implementation-information [29] OPTIONAL,
#   user-information             [30] EXPLICIT Association-information OPTIONAL }
@dataclass(frozen=True)
class Aarq:
    """The A-ASSOCIATE request.

    ``sender-acse-requirements`` (authentication) is sent exactly when a
    ``mechanism_name`` is given; on decoding it is read but not kept (the mechanism
    says it).  protocol-version is left out (its default, version1).
    ``calling_ae_invocation_id`` is the client user identification, when used.
    """

    application_context_name: ApplicationContextName = (
        ApplicationContextName.LOGICAL_NAME_REFERENCING_NO_CIPHERING
    )
    user_information: InitiateRequest | bytes | None = field(default_factory=InitiateRequest)
    mechanism_name: MechanismName | None = None
    calling_authentication_value: bytes | None = field(default=None, repr=False)
    calling_ap_title: bytes | None = None
    calling_ae_invocation_id: int | None = None

    TAG = AcseTag.AARQ

    def __post_init__(self) -> None:
        if self.calling_ae_invocation_id is not None:
            _check("calling-AE-invocation-id", self.calling_ae_invocation_id, -(2**31), 2**31 - 1)
        if self.calling_authentication_value is not None and self.mechanism_name is None:
            raise LocalProtocolError("calling-authentication-value needs a mechanism-name")

    def to_bytes(self) -> bytes:
        body = bytearray(_ber(0xA1, _ber(0x06, _encode_oid(self.application_context_name.oid))))
        if self.calling_ap_title is not None:
            body += _ber(0xA6, _ber(0x04, self.calling_ap_title))
        if self.calling_ae_invocation_id is not None:
            body += _ber(0xA9, _ber(0x02, _encode_integer(self.calling_ae_invocation_id)))
        if self.mechanism_name is not None:
            body += _ber(0x8A, _REQUIREMENTS_AUTHENTICATION)
            body += _ber(0x8B, _encode_oid(self.mechanism_name.oid))
        if self.calling_authentication_value is not None:
            body += _ber(0xAC, _ber(0x80, self.calling_authentication_value))
        if self.user_information is not None:
            body += _user_information_element(_payload(self.user_information))
        return _ber(self.TAG, bytes(body))

    @classmethod
    def from_bytes(cls, data: bytes) -> Aarq:
        what = "AARQ"
        context: ApplicationContextName | None = None
        mechanism: MechanismName | None = None
        auth_value: bytes | None = None
        ap_title: bytes | None = None
        ae_id: int | None = None
        user_info: InitiateRequest | bytes | None = None
        for tag, content in _elements(_apdu_content(data, cls.TAG, what), what):
            if tag == 0xA1:
                context = _context_name(content, f"{what} application-context-name")
            elif tag == 0xA6:
                ap_title = _ap_title(content, f"{what} calling-AP-title")
            elif tag == 0xA9:
                ae_id = _explicit_integer(content, f"{what} calling-AE-invocation-id")
            elif tag == 0x8A:
                _acse_requirements(content, f"{what} sender-acse-requirements")
            elif tag == 0x8B:
                mechanism = _mechanism(content, f"{what} mechanism-name")
            elif tag == 0xAC:
                auth_value = _authentication_value(content, f"{what} calling-authentication-value")
            elif tag == 0xBE:
                payload = _user_information_octets(content, f"{what} user-information")
                user_info = _initiate_request_or_raw(payload)
            # protocol-version, called-*, other calling-* and implementation-information
            # are not used by COSEM: skipped.
        if context is None:
            raise DecodeError(f"{what}: application-context-name missing")
        if auth_value is not None and mechanism is None:
            raise DecodeError(f"{what}: calling-authentication-value without mechanism-name")
        return cls(context, user_info, mechanism, auth_value, ap_title, ae_id)

    @property
    def initiate_request(self) -> InitiateRequest | None:
        return self.user_information if isinstance(self.user_information, InitiateRequest) else None

    def describe(self) -> str:
        """One line for traces; the authentication value is masked."""
        parts = [f"AARQ {self.application_context_name.short}"]
        if self.mechanism_name is not None:
            parts.append(f"mechanism={self.mechanism_name.label}")
        if self.calling_authentication_value is not None:
            parts.append("auth=***")
        if self.calling_ap_title is not None:
            parts.append(f"calling-AP-title={self.calling_ap_title.hex().upper()}")
        if self.calling_ae_invocation_id is not None:
            parts.append(f"calling-AE-invocation-id={self.calling_ae_invocation_id}")
        return " ".join(parts) + _describe_user_information(self.user_information)


# =========================================================================== AARE
# Green Book / ISO/IEC 8650-1, AARE-apdu ::= [APPLICATION 1] IMPLICIT SEQUENCE {
#   protocol-version [0] DEFAULT {version1},  application-context-name [1],
#   result [2] Association-result,  result-source-diagnostic [3] Associate-source-diagnostic,
#   responding-AP-title [4], responding-AE-qualifier [5], responding-AP-invocation-id [6],
#   responding-AE-invocation-id [7]                                  -- all OPTIONAL,
#   responder-acse-requirements [8] IMPLICIT ACSE-requirements OPTIONAL,
#   mechanism-name [9] IMPLICIT Mechanism-name OPTIONAL,
#   responding-authentication-value [10] EXPLICIT Authentication-value OPTIONAL,
#   implementation-information [29] OPTIONAL,
#   user-information [30] EXPLICIT Association-information OPTIONAL }
#   Associate-source-diagnostic ::= CHOICE {
#     acse-service-user [1] INTEGER {...}, acse-service-provider [2] INTEGER {...} }
@dataclass(frozen=True)
class Aare:
    """The A-ASSOCIATE response.

    ``diagnostic`` is an :class:`AcseServiceUser` or :class:`AcseServiceProvider`
    value: its type says which source it came from.  ``user_information`` is the
    InitiateResponse when accepted, a ConfirmedServiceError (e.g. initiate error)
    when the xDLMS part was refused, raw bytes when ciphered, or None.
    ``responding_authentication_value`` is the server's challenge (StoC) in HLS.
    responder-acse-requirements is sent exactly when a ``mechanism_name`` is given.
    """

    result: AssociationResult = AssociationResult.ACCEPTED
    diagnostic: AcseServiceUser | AcseServiceProvider = AcseServiceUser.NULL
    application_context_name: ApplicationContextName = (
        ApplicationContextName.LOGICAL_NAME_REFERENCING_NO_CIPHERING
    )
    user_information: InitiateResponse | ConfirmedServiceError | bytes | None = None
    responding_ap_title: bytes | None = None
    mechanism_name: MechanismName | None = None
    responding_authentication_value: bytes | None = None

    TAG = AcseTag.AARE

    def to_bytes(self) -> bytes:
        body = bytearray(_ber(0xA1, _ber(0x06, _encode_oid(self.application_context_name.oid))))
        body += _ber(0xA2, _ber(0x02, _encode_integer(int(self.result))))
        source = 0xA1 if isinstance(self.diagnostic, AcseServiceUser) else 0xA2
        body += _ber(0xA3, _ber(source, _ber(0x02, _encode_integer(int(self.diagnostic)))))
        if self.responding_ap_title is not None:
            body += _ber(0xA4, _ber(0x04, self.responding_ap_title))
        if self.mechanism_name is not None:
            body += _ber(0x88, _REQUIREMENTS_AUTHENTICATION)
            body += _ber(0x89, _encode_oid(self.mechanism_name.oid))
        if self.responding_authentication_value is not None:
            body += _ber(0xAA, _ber(0x80, self.responding_authentication_value))
        if self.user_information is not None:
            body += _user_information_element(_payload(self.user_information))
        return _ber(self.TAG, bytes(body))

    @classmethod
    def from_bytes(cls, data: bytes) -> Aare:
        what = "AARE"
        context: ApplicationContextName | None = None
        result: AssociationResult | None = None
        diagnostic: AcseServiceUser | AcseServiceProvider | None = None
        ap_title: bytes | None = None
        mechanism: MechanismName | None = None
        auth_value: bytes | None = None
        user_info: InitiateResponse | ConfirmedServiceError | bytes | None = None
        for tag, content in _elements(_apdu_content(data, cls.TAG, what), what):
            if tag == 0xA1:
                context = _context_name(content, f"{what} application-context-name")
            elif tag == 0xA2:
                value = _explicit_integer(content, f"{what} result")
                _check_wire_byte(value, f"{what} result")
                result = AssociationResult(value)
            elif tag == 0xA3:
                diagnostic = _diagnostic(content, f"{what} result-source-diagnostic")
            elif tag == 0xA4:
                ap_title = _ap_title(content, f"{what} responding-AP-title")
            elif tag == 0x88:
                _acse_requirements(content, f"{what} responder-acse-requirements")
            elif tag == 0x89:
                mechanism = _mechanism(content, f"{what} mechanism-name")
            elif tag == 0xAA:
                auth_value = _authentication_value(
                    content, f"{what} responding-authentication-value")
            elif tag == 0xBE:
                payload = _user_information_octets(content, f"{what} user-information")
                user_info = _initiate_response_or_raw(payload)
            # protocol-version, responding-AE-*, implementation-information: skipped.
        if context is None:
            raise DecodeError(f"{what}: application-context-name missing")
        if result is None:
            raise DecodeError(f"{what}: result missing")
        if diagnostic is None:
            raise DecodeError(f"{what}: result-source-diagnostic missing")
        return cls(result, diagnostic, context, user_info, ap_title, mechanism, auth_value)

    @property
    def accepted(self) -> bool:
        return self.result is AssociationResult.ACCEPTED

    @property
    def initiate_response(self) -> InitiateResponse | None:
        info = self.user_information
        return info if isinstance(info, InitiateResponse) else None

    def check(self) -> InitiateResponse:
        """The negotiated values, or :class:`AssociationRejected` when not accepted.

        Raises :class:`DecodeError` when accepted but the user-information holds no
        plain InitiateResponse (a ciphered one must be deciphered by the caller).
        """
        if not self.accepted:
            raise association_rejected(self)
        if isinstance(self.user_information, ConfirmedServiceError):
            raise self.user_information.to_error()
        response = self.initiate_response
        if response is None:
            raise DecodeError("AARE accepted without a plain xDLMS InitiateResponse")
        return response

    def describe(self) -> str:
        """One line for traces, e.g. ``AARE accepted LN user:null InitiateResponse ...``."""
        parts = [f"AARE {self.result.label} {self.application_context_name.short}",
                 f"{_source_short(self.diagnostic)}:{self.diagnostic.label}"]
        if self.mechanism_name is not None:
            parts.append(f"mechanism={self.mechanism_name.label}")
        if self.responding_ap_title is not None:
            parts.append(f"responding-AP-title={self.responding_ap_title.hex().upper()}")
        if self.responding_authentication_value is not None:
            parts.append(f"StoC=<{len(self.responding_authentication_value)} bytes>")
        return " ".join(parts) + _describe_user_information(self.user_information)


def _check_wire_byte(value: int, what: str) -> None:
    if not 0 <= value <= 255:
        raise DecodeError(f"{what}: value {value} outside 0..255")


def _diagnostic(content: bytes, what: str) -> AcseServiceUser | AcseServiceProvider:
    tag, start, end = _ber_tlv(content, 0, len(content), what)
    if end != len(content) or tag not in (0xA1, 0xA2):
        raise DecodeError(f"{what}: expected acse-service-user (A1) or -provider (A2), "
                          f"got tag 0x{tag:02X}")
    value = _explicit_integer(content[start:end], what)
    _check_wire_byte(value, what)
    return AcseServiceUser(value) if tag == 0xA1 else AcseServiceProvider(value)


def _source_short(diagnostic: AcseServiceUser | AcseServiceProvider) -> str:
    return "user" if isinstance(diagnostic, AcseServiceUser) else "provider"


def association_rejected(aare: Aare) -> AssociationRejected:
    """A readable :class:`AssociationRejected` for a rejecting AARE, e.g.
    ``association rejected-permanent: authentication-failure (acse-service-user 13)``."""
    diagnostic = aare.diagnostic
    message = (f"association {aare.result.label}: {diagnostic.label} "
               f"({diagnostic.source} {int(diagnostic)})")
    if isinstance(aare.user_information, ConfirmedServiceError):
        message += f"; {aare.user_information.describe()}"
    return AssociationRejected(
        message, result=int(aare.result), diagnostic=int(diagnostic),
        source=_source_short(diagnostic),
    )


# =========================================================================== RLRQ / RLRE
# ISO/IEC 8650-1 as profiled by the Green Book:
#   RLRQ-apdu ::= [APPLICATION 2] IMPLICIT SEQUENCE {
#     reason [0] IMPLICIT Release-request-reason OPTIONAL,
#     user-information [30] EXPLICIT Association-information OPTIONAL }
#   RLRE-apdu ::= [APPLICATION 3] IMPLICIT SEQUENCE {
#     reason [0] IMPLICIT Release-response-reason OPTIONAL,
#     user-information [30] EXPLICIT Association-information OPTIONAL }
def _release_parts(data: bytes, tag: int, what: str) -> tuple[int | None, bytes | None]:
    reason: int | None = None
    payload: bytes | None = None
    for element, content in _elements(_apdu_content(data, tag, what), what):
        if element == 0x80:
            reason = _decode_integer(content, f"{what} reason")
            _check_wire_byte(reason, f"{what} reason")
        elif element == 0xBE:
            payload = _user_information_octets(content, f"{what} user-information")
    return reason, payload


def _release_bytes(tag: int, reason: int | None, payload: bytes | None) -> bytes:
    body = b"" if reason is None else _ber(0x80, _encode_integer(reason))
    if payload is not None:
        body += _user_information_element(payload)
    return _ber(tag, body)


@dataclass(frozen=True)
class Rlrq:
    """The A-RELEASE request. With ciphered contexts the user-information carries
    an (often ciphered) InitiateRequest."""

    reason: ReleaseRequestReason | None = ReleaseRequestReason.NORMAL
    user_information: InitiateRequest | bytes | None = None

    TAG = AcseTag.RLRQ

    def to_bytes(self) -> bytes:
        payload = None if self.user_information is None else _payload(self.user_information)
        reason = None if self.reason is None else int(self.reason)
        return _release_bytes(self.TAG, reason, payload)

    @classmethod
    def from_bytes(cls, data: bytes) -> Rlrq:
        reason, payload = _release_parts(data, cls.TAG, "RLRQ")
        info = None if payload is None else _initiate_request_or_raw(payload)
        return cls(None if reason is None else ReleaseRequestReason(reason), info)

    def describe(self) -> str:
        reason = "" if self.reason is None else f" {self.reason.label}"
        return f"RLRQ{reason}" + _describe_user_information(self.user_information)


@dataclass(frozen=True)
class Rlre:
    """The A-RELEASE response."""

    reason: ReleaseResponseReason | None = ReleaseResponseReason.NORMAL
    user_information: InitiateResponse | ConfirmedServiceError | bytes | None = None

    TAG = AcseTag.RLRE

    def to_bytes(self) -> bytes:
        payload = None if self.user_information is None else _payload(self.user_information)
        reason = None if self.reason is None else int(self.reason)
        return _release_bytes(self.TAG, reason, payload)

    @classmethod
    def from_bytes(cls, data: bytes) -> Rlre:
        reason, payload = _release_parts(data, cls.TAG, "RLRE")
        info = None if payload is None else _initiate_response_or_raw(payload)
        return cls(None if reason is None else ReleaseResponseReason(reason), info)

    def describe(self) -> str:
        reason = "" if self.reason is None else f" {self.reason.label}"
        return f"RLRE{reason}" + _describe_user_information(self.user_information)
