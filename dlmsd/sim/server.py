"""The simulated meter's COSEM server application layer (pure, sans-I/O).

:class:`MeterServer` is one client connection's view of the meter: it takes each
complete request APDU (from the HDLC or wrapper link) and returns the response APDU.
It owns the association (AARQ/AARE, RLRQ/RLRE), the negotiated conformance and PDU
sizes, the GET service with block transfer (LN referencing) and the Read and Write
services with block transfer (SN referencing); values come from the shared
:class:`~dlmsd.sim.model.Meter`.  No I/O, no clock: the caller passes ``now``.

Choices made where the Green Book (DLMS UA 1000-2) leaves room, so that they are
in one place (also in ``dlmsd/sim/README.md``):

* Association: only the context of the configured referencing (LN or SN; with
  ciphering under HighGmac) and the configured authentication mechanism are accepted
  (:mod:`dlmsd.sim.auth`: Low, HLS 2..6, HLS-GMAC with glo-ciphering). Another context
  is rejected (rejected-permanent, acse-service-user
  application-context-name-not-supported); no mechanism where one is required with
  authentication-mechanism-name-required, another mechanism with
  authentication-mechanism-name-not-recognised, a wrong password or a CtoS out of bounds
  with authentication-failure; every AARE names the meter's own context. With HLS the
  association is pending until reply_to_HLS_authentication verifies: only that method
  may be invoked meanwhile (another ACTION or SN access: read-write-denied; a GET:
  ExceptionResponse service-not-allowed, operation-not-possible); a wrong f(StoC) gets
  action-result other-reason (SN: data-access-result other-reason; ours, the Green Book
  names no code) and the association stays pending. A ciphered request that does not
  verify gets ExceptionResponse {service-not-allowed, deciphering-error}, one that
  replays a counter {service-not-allowed, invocation-counter-error, the lowest counter
  accepted}. xDLMS initiate problems give rejected-permanent, acse-service-user
  no-reason-given, and a confirmed-service-error initiate-error in the user-information
  (dlms-version-too-low below version 6, pdu-size-too-short below 12 octets,
  incompatible-conformance when nothing of GET/SET/ACTION, or for SN of
  READ/WRITE/UNCONFIRMED-WRITE, remains). An AARQ while associated starts a new
  association. The InitiateResponse's vaa-name is 0x0007 (LN) or 0xFA00, the base name
  of the Association SN (SN).
* Negotiated conformance = proposed AND what the simulator offers
  (:data:`SIM_CONFORMANCE` or :data:`SIM_SN_CONFORMANCE`, without
  multiple-references under ``--no-get-with-list``).
* Requests other than AARQ/RLRQ before an association are answered with
  ExceptionResponse {state-error service-not-allowed, service-error
  operation-not-possible} (what jDLMS's server does).  A service the association did
  not negotiate (GET-with-list under ``--no-get-with-list``, selective access, ...)
  gets ExceptionResponse {service-not-allowed, service-not-supported}; an APDU the
  simulator does not know gets {service-unknown, service-not-supported}, a malformed
  one {service-unknown, other-reason}; a request longer than the server's max
  receive PDU {service-not-allowed, pdu-too-long}.
* Responses longer than min(client max receive PDU, ``--max-pdu``) are sent with
  GET-Response-With-Datablock; GET-Request-Next must acknowledge the last block sent
  (the same number again resends it), otherwise the long GET ends with
  data-block-number-invalid; without a long GET, no-long-get-in-progress.
* SET and ACTION are offered but every attribute is read-only and every method has
  no access (as the object_list says): read-write-denied, or object-undefined for an
  object or attribute/method the meter does not have.
* Selective access (LN, negotiated with selective-access; SN parameterized-access):
  only a profile's buffer has access selectors (:mod:`dlmsd.sim.profile`); on any
  other attribute it is other-reason.
* SN Read: one result per variable-name, in order (object-undefined for a short name
  that addresses nothing, read-write-denied for a method's); parameterized-access reads
  a profile's buffer selectively (other-reason for another attribute), read-write-denied
  for a method, object-undefined for nothing. A ReadResponse longer than the limit above
  goes out as data-block-results whose raw data is the encoded result list; the client
  acknowledges each block with a ReadRequest of block-number-access (the number of the
  block received), checked as for GET-Request-Next (the same number again resends,
  another ends the read with data-block-number-invalid, none in progress:
  no-long-get-in-progress). Several variables without multiple-references are refused
  with confirmed-service-error read (or write), service, service-unsupported, as SN
  meters without the ExceptionResponse do. Block accesses other than a lone
  block-number-access (requests sent in blocks) are other-reason.
* SN Write: every attribute is read-only and every method has no access: WriteResponse
  read-write-denied (object-undefined for a short name that addresses nothing); the
  values are not looked at.  UnconfirmedWrite is ignored: ``handle`` returns ``b""``
  (nothing to send; the HDLC link acknowledges the frame).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from dlmsd.errors import DecodeError, LocalProtocolError
from dlmsd.protocol.acse import (
    Aare,
    Aarq,
    AcseServiceUser,
    ApplicationContextName,
    AssociationResult,
    ReleaseResponseReason,
    Rlre,
)
from dlmsd.protocol.apdu import decode_apdu
from dlmsd.protocol.axdr import Data, decode_data_all, encode_data, encode_length
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.sn import (
    ASSOCIATION_SN_BASE_NAME,
    BlockNumberAccess,
    DataBlockResult,
    ParameterizedAccess,
    ReadRequest,
    ReadResponse,
    UnconfirmedWriteRequest,
    VariableAccessSpecification,
    VariableName,
    WriteRequest,
    WriteResponse,
    decode_sn_apdu,
    method_short_name,
)
from dlmsd.protocol.xdlms import (
    DLMS_VERSION,
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    ApduTag,
    ConfirmedServiceError,
    ConfirmedServiceErrorChoice,
    Conformance,
    CosemAttributeDescriptor,
    CosemMethodDescriptor,
    DataAccessResult,
    ExceptionResponse,
    ExceptionServiceError,
    GetDataResult,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
    InitiateRequest,
    InitiateResponse,
    SelectiveAccessDescriptor,
    ServiceErrorType,
    SetRequestNormal,
    SetRequestWithDatablock,
    SetRequestWithFirstDatablock,
    SetResponseDatablock,
    SetResponseLastDatablock,
    SetResponseNormal,
    StateError,
)
from dlmsd.sim.auth import CipherError, MeterAuthentication, SimSecurity
from dlmsd.sim.clock import CLOCK_CLASS, invoke_clock, set_clock_time
from dlmsd.sim.model import AssociationView, Meter

__all__ = [
    "MIN_PDU_SIZE",
    "SIM_CONFORMANCE",
    "SIM_SN_CONFORMANCE",
    "AssociationState",
    "MeterServer",
    "Referencing",
    "ServerOptions",
]

#: What the simulator offers with LN referencing (Green Book, conformance block): GET
#: with block transfer, with-list and selective access (the profiles' buffers), SET and
#: ACTION (refused per attribute/method).
SIM_CONFORMANCE: Final = (
    Conformance.GET
    | Conformance.SET
    | Conformance.ACTION
    | Conformance.SELECTIVE_ACCESS
    | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
    | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
    | Conformance.MULTIPLE_REFERENCES
)
#: What it offers with SN referencing: READ with block transfer, several variables per
#: request and parameterized-access; WRITE and unconfirmed-write (refused).
SIM_SN_CONFORMANCE: Final = (
    Conformance.READ
    | Conformance.WRITE
    | Conformance.UNCONFIRMED_WRITE
    | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
    | Conformance.MULTIPLE_REFERENCES
    | Conformance.PARAMETERIZED_ACCESS
)
#: Smallest client max receive PDU size accepted (Green Book: pdu-size-too-short).
MIN_PDU_SIZE: Final = 12
_NO_LIMIT: Final = 0xFFFF  # a client max receive PDU size of 0 means "no limit"
#: The longest value a SET in blocks may bring (octets of its encoding).
_MAX_LONG_SET: Final = 1 << 16
# tag, choice, invoke-id, last-block, block-number(4), raw-data choice
_BLOCK_HEADER: Final = 9
# tag, result count, choice data-block-result, last-block, block-number(2)
_SN_BLOCK_HEADER: Final = 6
_LN_VAA_NAME: Final = 0x0007  # Green Book: the vaa-name of an LN association
# confirmed-service-error service-error service: service-unsupported (2)
_SERVICE_UNSUPPORTED: Final = 2
# Blue Book: reply_to_HLS_authentication, Association LN (class 15) method 1 and
# Association SN (class 12) method 8.
_ASSOCIATION_LN_CLASS: Final = 15
_HLS_METHOD_LN: Final = CosemMethodDescriptor(_ASSOCIATION_LN_CLASS,
                                              Obis.parse("0.0.40.0.0.255"), 1)
_HLS_METHOD_SN: Final = method_short_name(ASSOCIATION_SN_BASE_NAME, 12, 8)


class Referencing(enum.Enum):
    """How the meter's objects are addressed (the ``--referencing`` option)."""

    LN = "LN"
    SN = "SN"


@dataclass(frozen=True)
class ServerOptions:
    """``max_pdu``: the server max receive PDU size, also the cap on responses;
    ``get_with_list``: offer multiple-references; ``client_sap``/``server_sap``: the
    addresses shown in the association's associated_partners_id; ``referencing``: LN
    (GET/SET/ACTION) or SN (READ/WRITE); ``security``: the authentication required
    (:class:`~dlmsd.sim.auth.SimSecurity`, default none)."""

    max_pdu: int = 1024
    get_with_list: bool = True
    client_sap: int = 16
    server_sap: int = 1
    referencing: Referencing = Referencing.LN
    security: SimSecurity = field(default_factory=SimSecurity)

    def __post_init__(self) -> None:
        if not MIN_PDU_SIZE <= self.max_pdu <= 0xFFFF:
            raise LocalProtocolError(f"max_pdu {self.max_pdu} outside {MIN_PDU_SIZE}..65535")
        if not 0 <= self.client_sap <= 0x7F:
            raise LocalProtocolError(f"client SAP {self.client_sap} outside 0..127")
        if not 0 <= self.server_sap <= 0x3FFF:
            raise LocalProtocolError(f"server SAP {self.server_sap} outside 0..16383")
        if not isinstance(self.referencing, Referencing):
            raise LocalProtocolError(f"referencing {self.referencing!r} is not LN or SN")

    @property
    def short_names(self) -> bool:
        return self.referencing is Referencing.SN

    @property
    def conformance(self) -> Conformance:
        offered = SIM_SN_CONFORMANCE if self.short_names else SIM_CONFORMANCE
        if self.get_with_list:
            return offered
        return offered & ~Conformance.MULTIPLE_REFERENCES

    @property
    def context(self) -> ApplicationContextName:
        """The one application context accepted."""
        if self.short_names:
            if self.security.ciphered:
                return ApplicationContextName.SHORT_NAME_REFERENCING_WITH_CIPHERING
            return ApplicationContextName.SHORT_NAME_REFERENCING_NO_CIPHERING
        if self.security.ciphered:
            return ApplicationContextName.LOGICAL_NAME_REFERENCING_WITH_CIPHERING
        return ApplicationContextName.LOGICAL_NAME_REFERENCING_NO_CIPHERING

    @property
    def vaa_name(self) -> int:
        return ASSOCIATION_SN_BASE_NAME if self.short_names else _LN_VAA_NAME


class AssociationState(enum.Enum):
    NON_ASSOCIATED = "non-associated"
    PENDING = "association-pending"  # HLS: waiting for reply_to_HLS_authentication
    ASSOCIATED = "associated"


# The services each association state accepts (APDU tags), by referencing; anything
# else is refused with an ExceptionResponse (see the module docstring).
_ASSOCIATION_ONLY: Final = frozenset({ApduTag.AARQ, ApduTag.RLRQ})
#: Answers sent in clear in a ciphered association: ExceptionResponse has no ciphered
#: form, and the glo-confirmedServiceError (0x2E) is not implemented here.
_CLEAR_ANSWERS: Final = frozenset({ApduTag.EXCEPTION_RESPONSE, ApduTag.CONFIRMED_SERVICE_ERROR})
_ACCEPTED: Final[dict[Referencing, dict[AssociationState, frozenset[int]]]] = {
    Referencing.LN: {
        AssociationState.NON_ASSOCIATED: _ASSOCIATION_ONLY,
        AssociationState.PENDING: _ASSOCIATION_ONLY | {ApduTag.ACTION_REQUEST},
        AssociationState.ASSOCIATED: _ASSOCIATION_ONLY | {
            ApduTag.GET_REQUEST, ApduTag.SET_REQUEST, ApduTag.ACTION_REQUEST},
    },
    Referencing.SN: {
        AssociationState.NON_ASSOCIATED: _ASSOCIATION_ONLY,
        AssociationState.PENDING: _ASSOCIATION_ONLY | {
            ApduTag.READ_REQUEST, ApduTag.WRITE_REQUEST},
        AssociationState.ASSOCIATED: _ASSOCIATION_ONLY | {
            ApduTag.READ_REQUEST, ApduTag.WRITE_REQUEST, ApduTag.UNCONFIRMED_WRITE_REQUEST},
    },
}
# The xDLMS services an association must keep at least one of (else
# incompatible-conformance).
_SERVICES: Final[dict[Referencing, Conformance]] = {
    Referencing.LN: Conformance.GET | Conformance.SET | Conformance.ACTION,
    Referencing.SN: Conformance.READ | Conformance.WRITE | Conformance.UNCONFIRMED_WRITE,
}
# The request forms decode_apdu understands: a tag/choice outside these is unknown.
_KNOWN_CHOICES: Final[dict[int, frozenset[int]]] = {
    ApduTag.GET_REQUEST: frozenset({1, 2, 3}),
    ApduTag.SET_REQUEST: frozenset({1, 2, 3}),
    ApduTag.ACTION_REQUEST: frozenset({1}),
}


@dataclass
class _LongTransfer:
    """An answer sent in blocks: the whole raw data, and the last block sent."""

    raw: bytes
    block_size: int
    sent: int = field(default=0, kw_only=True)

    @property
    def blocks(self) -> int:
        return max(1, -(-len(self.raw) // self.block_size))

    def _piece(self, number: int) -> tuple[bool, bytes]:
        """Send block ``number``: whether it is the last, and its raw data."""
        start = (number - 1) * self.block_size
        self.sent = number
        return number >= self.blocks, self.raw[start:start + self.block_size]


@dataclass
class _LongGet(_LongTransfer):
    """A GET answered in blocks."""

    invoke_id_and_priority: int

    def block(self, number: int) -> GetResponseWithDatablock:
        last, piece = self._piece(number)
        return GetResponseWithDatablock(last, number, piece, self.invoke_id_and_priority)


class _LongRead(_LongTransfer):
    """An SN Read answered in blocks: the raw data is the encoded result list."""

    def block(self, number: int) -> bytes:
        last, piece = self._piece(number)
        return ReadResponse((DataBlockResult(last, number, piece),)).to_bytes()


def _dispatch(decode: Callable[[bytes], object], apdu: bytes,
              handlers: dict[type, Callable[[Any], bytes]]) -> bytes:
    """Decode a request and hand it to the handler of its type; a request that does not
    decode is {service-unknown, other-reason}, one without a handler (the callers'
    checks let none through) {service-unknown, service-not-supported}."""
    try:
        request = decode(apdu)
    except DecodeError:
        return _exception(StateError.SERVICE_UNKNOWN, ExceptionServiceError.OTHER_REASON)
    handler = handlers.get(type(request))
    if handler is None:
        return _exception(StateError.SERVICE_UNKNOWN, ExceptionServiceError.SERVICE_NOT_SUPPORTED)
    return handler(request)


def _exception(state: StateError, service: ExceptionServiceError) -> bytes:
    return ExceptionResponse(state, service).to_bytes()


def _read_result(result: DataAccessResult) -> bytes:
    return ReadResponse((result,)).to_bytes()


class MeterServer:
    """One client's association with the simulated meter.

    ``handle(apdu, now)`` answers one request APDU (every request gets an answer);
    ``reset()`` forgets the association when the link goes down or restarts (HDLC
    SNRM/DISC, TCP close).  ``state``, ``conformance``, ``client_max_pdu`` describe
    the current association.
    """

    def __init__(self, meter: Meter, options: ServerOptions | None = None) -> None:
        self.meter = meter
        self.options = options if options is not None else ServerOptions()
        self.state = AssociationState.NON_ASSOCIATED
        self.conformance = Conformance(0)
        self.client_max_pdu = 0
        self._long: _LongGet | None = None
        self._long_read: _LongRead | None = None
        #: a SET in blocks under way: the attribute, the raw data so far, the last block
        self._long_set: tuple[CosemAttributeDescriptor, bytearray, int] | None = None
        self._auth = MeterAuthentication(self.options.security)

    # ------------------------------------------------------------------ public
    def reset(self) -> None:
        self.state = AssociationState.NON_ASSOCIATED
        self.conformance = Conformance(0)
        self.client_max_pdu = 0
        self._long = None
        self._long_read = None
        self._long_set = None
        self._auth = MeterAuthentication(self.options.security)

    @property
    def response_limit(self) -> int:
        """The largest response APDU: min(client max receive PDU, our max PDU)."""
        client = self.client_max_pdu or _NO_LIMIT
        return min(client, self.options.max_pdu)

    @property
    def association_view(self) -> AssociationView:
        return AssociationView(
            client_sap=self.options.client_sap, server_sap=self.options.server_sap,
            conformance=int(self.options.conformance),
            max_receive_pdu_size=self.options.max_pdu,
            max_send_pdu_size=self.options.max_pdu, dlms_version=DLMS_VERSION,
            mechanism=int(self.options.security.mechanism),
            ciphered=self.options.security.ciphered,
            invocation_counter=self.options.security.invocation_counter)

    def handle(self, apdu: bytes, now: datetime) -> bytes:
        """The response to one complete request APDU; ``b""`` for an unconfirmed
        service (nothing to send)."""
        if not apdu:
            return _exception(StateError.SERVICE_UNKNOWN, ExceptionServiceError.OTHER_REASON)
        if (self._auth.ciphered and self.state is not AssociationState.NON_ASSOCIATED
                and apdu[0] not in _ASSOCIATION_ONLY):
            try:
                plain = self._auth.unprotect(apdu)
            except CipherError as exc:
                service = ExceptionServiceError(exc.service_error)
                return ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, service,
                                         exc.counter).to_bytes()
            response = self._handle_plain(plain, now)
            if response and response[0] in _CLEAR_ANSWERS:
                return response
            return self._auth.protect(response) if response else response
        return self._handle_plain(apdu, now)

    def _handle_plain(self, apdu: bytes, now: datetime) -> bytes:
        tag = apdu[0]
        if tag == ApduTag.AARQ:
            return self._associate(apdu)
        if tag == ApduTag.RLRQ:
            return self._release()
        if tag not in _ACCEPTED[self.options.referencing][self.state]:
            if self.state is not AssociationState.ASSOCIATED:
                # Green Book, ExceptionResponse: the service is not allowed in the
                # current state (no application association).
                return _exception(StateError.SERVICE_NOT_ALLOWED,
                                  ExceptionServiceError.OPERATION_NOT_POSSIBLE)
            return _exception(StateError.SERVICE_UNKNOWN,
                              ExceptionServiceError.SERVICE_NOT_SUPPORTED)
        if len(apdu) > self.options.max_pdu:
            return _exception(StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.PDU_TOO_LONG)
        if self.options.short_names:
            return self._handle_sn(apdu, now)
        choices = _KNOWN_CHOICES.get(tag, frozenset())
        if len(apdu) < 2 or apdu[1] not in choices:
            return _exception(StateError.SERVICE_UNKNOWN,
                              ExceptionServiceError.SERVICE_NOT_SUPPORTED)
        return _dispatch(decode_apdu, apdu, {
            GetRequestNormal: lambda request: self._get_normal(request, now),
            GetRequestNext: self._get_next,
            GetRequestWithList: lambda request: self._get_with_list(request, now),
            SetRequestNormal: lambda request: self._set(request, now),
            SetRequestWithFirstDatablock: lambda request: self._set_first_block(request, now),
            SetRequestWithDatablock: lambda request: self._set_block(request, now),
            ActionRequestNormal: lambda request: self._action(request, now),
        })

    # ------------------------------------------------------------------ ACSE
    def _reject(self, diagnostic: AcseServiceUser,
                error: ConfirmedServiceError | None = None) -> bytes:
        return Aare(AssociationResult.REJECTED_PERMANENT, diagnostic,
                    application_context_name=self.options.context,
                    user_information=error).to_bytes()

    def _associate(self, apdu: bytes) -> bytes:
        # Green Book 9.3.2 (A-ASSOCIATE): a new AARQ replaces the association.
        self.reset()
        try:
            aarq = Aarq.from_bytes(apdu)
        except DecodeError:
            # Includes OIDs that are not COSEM context/mechanism names (the decoder
            # does not return them), so the diagnostic cannot be more precise.
            return self._reject(AcseServiceUser.NO_REASON_GIVEN)
        if aarq.application_context_name is not self.options.context:
            return self._reject(AcseServiceUser.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED)
        auth = self._auth
        refused = auth.check_aarq(aarq)
        if refused is not None:
            return self._reject(refused)
        initiate = aarq.initiate_request
        if auth.ciphered:
            initiate = None
            if isinstance(aarq.user_information, bytes):
                try:
                    initiate = InitiateRequest.from_bytes(
                        auth.unprotect(aarq.user_information))
                except (CipherError, DecodeError):
                    return self._reject(AcseServiceUser.AUTHENTICATION_FAILURE)
                auth.dedicated_key = initiate.dedicated_key
        failure: int | None = None
        conformance = Conformance(0)
        if initiate is None:
            failure = 0  # other: no (plain) InitiateRequest
        elif initiate.proposed_dlms_version_number < DLMS_VERSION:
            failure = 1  # dlms-version-too-low
        elif 0 < initiate.client_max_receive_pdu_size < MIN_PDU_SIZE:
            failure = 3  # pdu-size-too-short
        else:
            conformance = Conformance(initiate.proposed_conformance) & self.options.conformance
            if not conformance & _SERVICES[self.options.referencing]:
                failure = 2  # incompatible-conformance
        if failure is not None or initiate is None:
            error = ConfirmedServiceError(ConfirmedServiceErrorChoice.INITIATE_ERROR,
                                          ServiceErrorType.INITIATE, failure or 0)
            return self._reject(AcseServiceUser.NO_REASON_GIVEN, error)
        security = self.options.security
        self.state = AssociationState.PENDING if security.hls else AssociationState.ASSOCIATED
        self.conformance = conformance
        self.client_max_pdu = initiate.client_max_receive_pdu_size
        response = InitiateResponse(conformance, self.options.max_pdu, DLMS_VERSION,
                                    self.options.vaa_name)
        info: InitiateResponse | bytes = response
        if auth.ciphered:
            info = auth.protect(response.to_bytes())  # glo-initiate-response
        hls = security.hls
        return Aare(AssociationResult.ACCEPTED,
                    AcseServiceUser.AUTHENTICATION_REQUIRED if hls else AcseServiceUser.NULL,
                    application_context_name=self.options.context,
                    user_information=info,
                    responding_ap_title=security.system_title if hls else None,
                    mechanism_name=security.mechanism if hls else None,
                    responding_authentication_value=auth.stoc if hls else None).to_bytes()

    def _release(self) -> bytes:
        # Green Book 9.3.3 (A-RELEASE): the reason does not change the answer, so the
        # RLRQ is not decoded; even a malformed one releases the association.
        self.reset()
        return Rlre(ReleaseResponseReason.NORMAL).to_bytes()

    # ------------------------------------------------------------------ GET
    def _negotiated(self, needed: Conformance) -> bool:
        return bool(self.conformance & needed)

    def _not_supported(self) -> bytes:
        return _exception(StateError.SERVICE_NOT_ALLOWED,
                          ExceptionServiceError.SERVICE_NOT_SUPPORTED)

    def _read(self, descriptor: CosemAttributeDescriptor, now: datetime,
              selection: SelectiveAccessDescriptor | None = None) -> GetDataResult:
        return self.meter.read(descriptor.class_id, descriptor.instance_id,
                               descriptor.attribute_id, now=now,
                               association=self.association_view, selection=selection)

    def _get_normal(self, request: GetRequestNormal, now: datetime) -> bytes:
        self._long = None  # a new GET ends a long GET in progress
        if not self._negotiated(Conformance.GET):
            return self._not_supported()
        if (request.access_selection is not None
                and not self._negotiated(Conformance.SELECTIVE_ACCESS)):
            return self._not_supported()
        iid = request.invoke_id_and_priority
        result = self._read(request.descriptor, now, request.access_selection)
        response = GetResponseNormal(result, iid).to_bytes()
        if len(response) <= self.response_limit or isinstance(result, DataAccessResult):
            return response
        return self._start_blocks(encode_data(result), iid, 1)

    def _get_with_list(self, request: GetRequestWithList, now: datetime) -> bytes:
        self._long = None
        if not self._negotiated(Conformance.MULTIPLE_REFERENCES):
            # What a meter without multiple-references does: the with-list form of
            # GET is a service outside the negotiated conformance.
            return self._not_supported()
        if (any(item.access_selection is not None for item in request.attributes)
                and not self._negotiated(Conformance.SELECTIVE_ACCESS)):
            return self._not_supported()
        iid = request.invoke_id_and_priority
        results = tuple(self._read(item.descriptor, now, item.access_selection)
                        for item in request.attributes)
        response = GetResponseWithList(results, iid).to_bytes()
        if len(response) <= self.response_limit:
            return response
        # The raw data of a with-list answered in blocks is the SEQUENCE OF
        # Get-Data-Result: the response without its tag, choice and invoke-id.
        return self._start_blocks(response[3:], iid, len(results))

    def _start_blocks(self, raw: bytes, iid: int, count: int) -> bytes:
        """Green Book 9.4.6.3 (GET with block transfer): the first block of ``raw``."""
        if not self._negotiated(Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ):
            if count > 1:
                return GetResponseWithList(
                    (DataAccessResult.OTHER_REASON,) * count, iid).to_bytes()
            return GetResponseNormal(DataAccessResult.OTHER_REASON, iid).to_bytes()
        limit = self.response_limit
        block_size = limit - _BLOCK_HEADER - len(encode_length(limit))
        self._long = _LongGet(raw, block_size, iid)
        return self._long.block(1).to_bytes()

    def _get_next(self, request: GetRequestNext) -> bytes:
        long_get = self._long
        iid = request.invoke_id_and_priority
        finished = long_get is not None and long_get.sent >= long_get.blocks
        if long_get is None or (finished and request.block_number == long_get.sent):
            self._long = None
            return GetResponseWithDatablock(
                True, request.block_number, DataAccessResult.NO_LONG_GET_IN_PROGRESS,
                iid).to_bytes()
        if request.block_number == long_get.sent:
            return long_get.block(long_get.sent + 1).to_bytes()
        if request.block_number == long_get.sent - 1:
            # The client did not get the last block: it acknowledges the one before.
            return long_get.block(long_get.sent).to_bytes()
        self._long = None
        return GetResponseWithDatablock(
            True, long_get.sent + 1, DataAccessResult.DATA_BLOCK_NUMBER_INVALID,
            iid).to_bytes()

    # ------------------------------------------------------------------ SET, ACTION
    def _set(self, request: SetRequestNormal, now: datetime) -> bytes:
        self._long = None
        self._long_set = None
        if not self._negotiated(Conformance.SET) or request.access_selection is not None:
            return self._not_supported()
        result = self._write(request.descriptor, request.value, now)
        return SetResponseNormal(result, request.invoke_id_and_priority).to_bytes()

    def _write(self, descriptor: CosemAttributeDescriptor, value: Data,
               now: datetime) -> DataAccessResult:
        obj = self.meter.lookup(descriptor.class_id, descriptor.instance_id)
        if isinstance(obj, DataAccessResult):
            return obj
        if not obj.cls.has_attribute(descriptor.attribute_id):
            return DataAccessResult.OBJECT_UNDEFINED
        if obj.cls.class_id == CLOCK_CLASS:  # the live clock's time is settable
            return set_clock_time(self.meter, obj, descriptor.attribute_id, value, now)
        return DataAccessResult.READ_WRITE_DENIED  # every other attribute is read-only

    # Green Book 9.4.6.3, SET with block transfer: the client sends the value's
    # encoding in numbered blocks (from 1); the server acknowledges each with
    # Set-Response-Datablock and answers the last with Set-Response-Last-Datablock.
    def _set_first_block(self, request: SetRequestWithFirstDatablock, now: datetime) -> bytes:
        self._long = None
        self._long_set = None
        iid = request.invoke_id_and_priority
        if (not self._negotiated(Conformance.SET)
                or not self._negotiated(Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE)
                or request.access_selection is not None):
            return self._not_supported()
        if request.block_number != 1:
            return SetResponseLastDatablock(DataAccessResult.DATA_BLOCK_NUMBER_INVALID,
                                            request.block_number, iid).to_bytes()
        self._long_set = (request.descriptor, bytearray(request.raw_data), 1)
        if request.last_block:
            return self._set_done(iid, 1, now)
        return SetResponseDatablock(1, iid).to_bytes()

    def _set_block(self, request: SetRequestWithDatablock, now: datetime) -> bytes:
        iid = request.invoke_id_and_priority
        long_set = self._long_set
        if long_set is None:
            return SetResponseLastDatablock(DataAccessResult.NO_LONG_SET_IN_PROGRESS,
                                            request.block_number, iid).to_bytes()
        descriptor, raw, last = long_set
        if request.block_number != last + 1:
            self._long_set = None
            return SetResponseLastDatablock(DataAccessResult.DATA_BLOCK_NUMBER_INVALID,
                                            request.block_number, iid).to_bytes()
        raw += request.raw_data
        if len(raw) > _MAX_LONG_SET:
            self._long_set = None
            return SetResponseLastDatablock(DataAccessResult.LONG_SET_ABORTED,
                                            request.block_number, iid).to_bytes()
        self._long_set = (descriptor, raw, request.block_number)
        if request.last_block:
            return self._set_done(iid, request.block_number, now)
        return SetResponseDatablock(request.block_number, iid).to_bytes()

    def _set_done(self, iid: int, block: int, now: datetime) -> bytes:
        assert self._long_set is not None
        descriptor, raw, _last = self._long_set
        self._long_set = None
        try:
            value = decode_data_all(bytes(raw))
        except DecodeError:
            result = DataAccessResult.TYPE_UNMATCHED
        else:
            result = self._write(descriptor, value, now)
        return SetResponseLastDatablock(result, block, iid).to_bytes()

    def _action(self, request: ActionRequestNormal, now: datetime) -> bytes:
        self._long = None
        if not self._negotiated(Conformance.ACTION):
            return self._not_supported()
        descriptor = request.descriptor
        iid = request.invoke_id_and_priority
        if self.state is AssociationState.PENDING:
            if descriptor != _HLS_METHOD_LN:
                return ActionResponseNormal(ActionResult.READ_WRITE_DENIED, None,
                                            iid).to_bytes()
            reply = self._hls_reply(request.parameters)
            if reply is None:
                return ActionResponseNormal(ActionResult.OTHER_REASON, None, iid).to_bytes()
            return ActionResponseNormal(ActionResult.SUCCESS, Data.octets(reply),
                                        iid).to_bytes()
        obj = self.meter.lookup(descriptor.class_id, descriptor.instance_id)
        result = ActionResult.READ_WRITE_DENIED  # every other method has no access
        if isinstance(obj, DataAccessResult):
            result = ActionResult(int(obj))
        elif not obj.cls.has_method(descriptor.method_id):
            result = ActionResult.OBJECT_UNDEFINED
        elif obj.cls.class_id == CLOCK_CLASS:
            result = invoke_clock(self.meter, obj, descriptor.method_id, request.parameters,
                                  now)
        return ActionResponseNormal(result, None, request.invoke_id_and_priority).to_bytes()

    def _hls_reply(self, parameters: Data | None) -> bytes | None:
        """Passes 3 and 4 of HLS: f(CtoS) for a correct f(StoC), else None."""
        if parameters is None or not isinstance(parameters.value, bytes):
            return None
        reply = self._auth.reply(parameters.value)
        if reply is not None:
            self.state = AssociationState.ASSOCIATED
        return reply

    # ------------------------------------------------------------------ SN services
    def _handle_sn(self, apdu: bytes, now: datetime) -> bytes:
        return _dispatch(decode_sn_apdu, apdu, {
            ReadRequest: lambda request: self._sn_read(request, now),
            WriteRequest: lambda request: self._sn_write(request, now),
            UnconfirmedWriteRequest: self._sn_unconfirmed_write,
        })

    def _sn_unconfirmed_write(self, request: UnconfirmedWriteRequest) -> bytes:
        # Green Book: an unconfirmed service has no response; every attribute is
        # read-only, so the write is dropped.
        self._long_read = None
        return b""

    def _sn_refusal(self, variables: tuple[VariableAccessSpecification, ...],
                    service: Conformance, error: ConfirmedServiceErrorChoice) -> bytes | None:
        """Why a Read/Write request is refused as a whole, or None."""
        if not variables:
            return _exception(StateError.SERVICE_UNKNOWN, ExceptionServiceError.OTHER_REASON)
        if not self._negotiated(service):
            return self._not_supported()
        if (any(isinstance(v, ParameterizedAccess) for v in variables)
                and not self._negotiated(Conformance.PARAMETERIZED_ACCESS)):
            return self._not_supported()
        if len(variables) > 1 and not self._negotiated(Conformance.MULTIPLE_REFERENCES):
            # What an SN meter without multiple-references answers (it predates the
            # ExceptionResponse): confirmed-service-error, service, service-unsupported.
            return ConfirmedServiceError(error, ServiceErrorType.SERVICE,
                                         _SERVICE_UNSUPPORTED).to_bytes()
        return None

    def _sn_read(self, request: ReadRequest, now: datetime) -> bytes:
        variables = request.variables
        if len(variables) == 1 and isinstance(variables[0], BlockNumberAccess):
            return self._sn_next_block(variables[0].block_number)
        self._long_read = None  # a new Read ends a long Read in progress
        refusal = self._sn_refusal(variables, Conformance.READ, ConfirmedServiceErrorChoice.READ)
        if refusal is not None:
            return refusal
        results = tuple(self._sn_read_one(item, now) for item in variables)
        response = ReadResponse(results).to_bytes()
        if len(response) <= self.response_limit:
            return response
        if not self._negotiated(Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ):
            return ReadResponse((DataAccessResult.OTHER_REASON,) * len(results)).to_bytes()
        # Green Book, Read with block transfer: the raw data of the blocks is the
        # encoded list of results, i.e. the ReadResponse without its tag.
        limit = self.response_limit
        self._long_read = _LongRead(response[1:],
                                    limit - _SN_BLOCK_HEADER - len(encode_length(limit)))
        return self._long_read.block(1)

    def _sn_read_one(self, item: VariableAccessSpecification,
                     now: datetime) -> Data | DataAccessResult:
        if self.state is AssociationState.PENDING:
            # Only reply_to_HLS_authentication, invoked with its parameter.
            if isinstance(item, ParameterizedAccess) and item.short_name == _HLS_METHOD_SN:
                reply = self._hls_reply(item.parameter)
                return DataAccessResult.OTHER_REASON if reply is None else Data.octets(reply)
            return DataAccessResult.READ_WRITE_DENIED
        if isinstance(item, VariableName):
            return self.meter.read_short_name(item.short_name, now=now,
                                              association=self.association_view)
        if isinstance(item, ParameterizedAccess):
            target = self.meter.model.short_names.find(item.short_name)
            if target is None:
                return DataAccessResult.OBJECT_UNDEFINED
            if target.method:
                return DataAccessResult.READ_WRITE_DENIED  # every method: no access
            # Selective access (a profile's buffer; other-reason for any other attribute).
            return self.meter.read_short_name(
                item.short_name, now=now, association=self.association_view,
                selection=SelectiveAccessDescriptor(item.selector, item.parameter))
        return DataAccessResult.OTHER_REASON  # a request in blocks: not supported

    def _sn_next_block(self, number: int) -> bytes:
        """The client acknowledges block ``number`` and asks for the next one."""
        long_read = self._long_read
        finished = long_read is not None and long_read.sent >= long_read.blocks
        if long_read is None or (finished and number == long_read.sent):
            self._long_read = None
            return _read_result(DataAccessResult.NO_LONG_GET_IN_PROGRESS)
        if number == long_read.sent:
            return long_read.block(long_read.sent + 1)
        if number == long_read.sent - 1:
            # The client did not get the last block: it acknowledges the one before.
            return long_read.block(long_read.sent)
        self._long_read = None
        return _read_result(DataAccessResult.DATA_BLOCK_NUMBER_INVALID)

    def _sn_write(self, request: WriteRequest, now: datetime) -> bytes:
        self._long_read = None
        variables = request.variables
        refusal = self._sn_refusal(variables, Conformance.WRITE,
                                   ConfirmedServiceErrorChoice.WRITE)
        if refusal is not None:
            return refusal
        results: list[DataAccessResult] = []
        if self.state is AssociationState.PENDING:
            # Only reply_to_HLS_authentication; a write has no data to return f(CtoS) in.
            for item, value in zip(variables, request.values, strict=False):
                if isinstance(item, VariableName) and item.short_name == _HLS_METHOD_SN:
                    ok = self._hls_reply(value) is not None
                    results.append(DataAccessResult.SUCCESS if ok
                                   else DataAccessResult.OTHER_REASON)
                else:
                    results.append(DataAccessResult.READ_WRITE_DENIED)
            return WriteResponse(tuple(results)).to_bytes()
        for item, value in zip(variables, request.values, strict=False):
            if isinstance(item, VariableName):
                results.append(self._sn_write_one(item.short_name, value, now))
            elif isinstance(item, ParameterizedAccess):
                found = self.meter.model.short_names.find(item.short_name) is not None
                results.append(DataAccessResult.READ_WRITE_DENIED if found
                               else DataAccessResult.OBJECT_UNDEFINED)
            else:
                results.append(DataAccessResult.OTHER_REASON)  # a write in blocks
        # a variable without its value (fewer values than variables): other-reason
        results += [DataAccessResult.OTHER_REASON] * (len(variables) - len(results))
        return WriteResponse(tuple(results)).to_bytes()

    def _sn_write_one(self, short_name: int, value: Data, now: datetime) -> DataAccessResult:
        """Blue Book, SN referencing: writing an attribute's short name sets it; writing
        a method's invokes the method with the value as its parameter (the live clock's
        time and methods; every other attribute is read-only, every method has no
        access)."""
        target = self.meter.model.short_names.find(short_name)
        if target is None:
            return DataAccessResult.OBJECT_UNDEFINED
        if target.obj.cls.class_id != CLOCK_CLASS:
            return DataAccessResult.READ_WRITE_DENIED
        if target.method:
            result = invoke_clock(self.meter, target.obj, target.method, value, now)
            return DataAccessResult(int(result))
        return set_clock_time(self.meter, target.obj, target.attribute, value, now)
