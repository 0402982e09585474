"""ACSE APDUs of DLMS/COSEM (IEC 62056-5-3, DLMS UA Green Book) and what they carry.

This module owns the association: AARQ, AARE, RLRQ and RLRE (BER encoded, ISO/IEC
8650-1 as profiled by the Green Book) and :func:`association_rejected` which turns a
rejecting AARE into a readable :class:`~dlmsd.errors.AssociationRejected`.  What their
user-information carries (the xDLMS InitiateRequest/InitiateResponse with the
``Conformance`` block, or a confirmed-service-error) is xDLMS: it is encoded and
decoded by :mod:`dlmsd.protocol.xdlms`.

Every wire type is a frozen dataclass with ``to_bytes()`` and ``from_bytes(data)``
(the whole of ``data``, trailing bytes are a :class:`DecodeError`); the ones that are
also parts of other APDUs have ``decode(buf, pos) -> (obj, new_pos)``.  Decoding raises
only :class:`DecodeError`; building a value that cannot be encoded raises
:class:`LocalProtocolError`.  Pure: no I/O, no clock, no logging.

A client associates like this::

    aarq = Aarq(mechanism_name=MechanismName.LOW, calling_authentication_value=password,
                user_information=InitiateRequest(client_max_receive_pdu_size=1200))
    send(aarq.to_bytes())
    aare = Aare.from_bytes(received)      # or apdu.decode_apdu(received)
    negotiated = aare.check()             # InitiateResponse, or raises AssociationRejected
    negotiated.server_max_receive_pdu_size, negotiated.negotiated_conformance

Secrets: the calling-authentication-value (password or HLS challenge) is
``field(repr=False)`` and ``describe()`` prints it as ``***`` (the dedicated key in the
InitiateRequest likewise, in :mod:`dlmsd.protocol.xdlms`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar, Final, Self

from dlmsd.errors import AssociationRejected, DecodeError, LocalProtocolError
from dlmsd.protocol.axdr import (
    LabelledEnum,
    WireEnum,
    check_range,
    decode_length,
    encode_length,
)
from dlmsd.protocol.xdlms import ConfirmedServiceError, InitiateRequest, InitiateResponse

__all__ = [
    "Aare",
    "Aarq",
    "AcseServiceProvider",
    "AcseServiceUser",
    "AcseTag",
    "ApplicationContextName",
    "AssociationResult",
    "MechanismName",
    "ReleaseRequestReason",
    "ReleaseResponseReason",
    "Rlre",
    "Rlrq",
    "association_rejected",
]


# =========================================================================== enums
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


class MechanismName(LabelledEnum):
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
            check_range("calling-AE-invocation-id", self.calling_ae_invocation_id,
                        -(2**31), 2**31 - 1)
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


_UserInformation = InitiateRequest | InitiateResponse | ConfirmedServiceError | bytes


@dataclass(frozen=True)
class _Release:
    """What RLRQ and RLRE share: an optional reason [0] (each has its own enum) and an
    optional user-information [30] (each decodes its own xDLMS APDU in it)."""

    reason: WireEnum | None
    user_information: _UserInformation | None = None

    TAG: ClassVar[int]
    _NAME: ClassVar[str]
    _REASON: ClassVar[type[WireEnum]]

    @staticmethod
    def _user_information(payload: bytes) -> _UserInformation:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        body = b"" if self.reason is None else _ber(0x80, _encode_integer(int(self.reason)))
        if self.user_information is not None:
            body += _user_information_element(_payload(self.user_information))
        return _ber(self.TAG, body)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        reason, payload = _release_parts(data, cls.TAG, cls._NAME)
        info = None if payload is None else cls._user_information(payload)
        return cls(None if reason is None else cls._REASON(reason), info)

    def describe(self) -> str:
        reason = "" if self.reason is None else f" {self.reason.label}"
        return f"{self._NAME}{reason}" + _describe_user_information(self.user_information)


@dataclass(frozen=True)
class Rlrq(_Release):
    """The A-RELEASE request. With ciphered contexts the user-information carries
    an (often ciphered) InitiateRequest."""

    reason: ReleaseRequestReason | None = ReleaseRequestReason.NORMAL
    user_information: InitiateRequest | bytes | None = None

    TAG = AcseTag.RLRQ
    _NAME = "RLRQ"
    _REASON = ReleaseRequestReason
    _user_information = staticmethod(_initiate_request_or_raw)


@dataclass(frozen=True)
class Rlre(_Release):
    """The A-RELEASE response."""

    reason: ReleaseResponseReason | None = ReleaseResponseReason.NORMAL
    user_information: InitiateResponse | ConfirmedServiceError | bytes | None = None

    TAG = AcseTag.RLRE
    _NAME = "RLRE"
    _REASON = ReleaseResponseReason
    _user_information = staticmethod(_initiate_response_or_raw)
