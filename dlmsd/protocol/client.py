"""The COSEM client application layer for LN referencing (pure, sans-I/O).

Above a link (HDLC or wrapper) that delivers whole APDUs, :class:`LnClient` builds the
client's requests and turns the meter's answers into events:

* ``associate()`` -> AARQ; the AARE gives :class:`Associated` (negotiated conformance
  and PDU size) or raises :class:`~dlmsd.errors.AssociationRejected`.
* ``get(descriptors)`` -> GET-Request-Normal (one) or GET-Request-With-List (several);
  the answer gives :class:`GetComplete` with one result per descriptor, in order, or
  :class:`SendApdu` while a long answer comes in blocks (the GET-Request-Next to send
  is carried in the event), or :class:`WithListRefused` when the meter rejects a
  with-list request (so the caller falls back to single GETs).
* ``set(target, value)`` -> SET-Request-Normal, or for a value longer than the meter's
  max PDU the SET-Request-With-First-Datablock (block transfer negotiated): its answer
  gives :class:`SendApdu` with the next SET-Request-With-Datablock while the meter
  acknowledges blocks, and :class:`SetComplete` with the meter's data-access-result.
* ``action(method, parameter)`` -> ACTION-Request-Normal; the answer gives
  :class:`ActionComplete` (the action-result and the return parameters, if any).
* ``release()`` -> RLRQ; the RLRE gives :class:`Released`.

A response whose invoke-id is not the pending request's is reported as
:class:`StaleResponse` (a late answer to an earlier, resent request) and changes nothing.

Green Book (DLMS UA 1000-2), 9.4.6 "xDLMS services": GET with block transfer, 9.3 ACSE.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, cast

from dlmsd.errors import (
    AssociationRejected,
    DataAccessError,
    DecodeError,
    DlmsdError,
    LocalProtocolError,
    RemoteProtocolError,
    RequestTooLarge,
    ServiceError,
)
from dlmsd.protocol.acse import (
    Aare,
    Aarq,
    ApplicationContextName,
    AssociationResult,
    MechanismName,
    ReleaseRequestReason,
    Rlrq,
    association_rejected,
)
from dlmsd.protocol.apdu import decode_apdu, describe_apdu
from dlmsd.protocol.axdr import Data, DataType, decode_data_all
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.security import (
    AuthenticationFailure,
    SecurityControl,
    is_ciphered,
    protect,
    unprotect,
)
from dlmsd.protocol.security import describe as security_describe
from dlmsd.protocol.security_hls import HlsKeys, client_reply, new_challenge, verify_server_reply
from dlmsd.protocol.xdlms import (
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    BlockReassembler,
    ConfirmedServiceError,
    Conformance,
    CosemAttributeDescriptor,
    CosemMethodDescriptor,
    DataAccessResult,
    ExceptionResponse,
    GetDataResult,
    GetRequestNormal,
    GetRequestWithList,
    GetResponse,
    GetResponseNormal,
    GetResponseWithDatablock,
    InitiateRequest,
    InitiateResponse,
    Reassembler,
    SelectiveAccessDescriptor,
    SetRequest,
    SetResponseDatablock,
    SetResponseLastDatablock,
    SetResponseNormal,
    decode_get_data_result_list,
    set_requests,
)

__all__ = [
    "ASSOCIATION_LN",
    "ASSOCIATION_LN_CLASS",
    "CLIENT_CONFORMANCE",
    "ActionComplete",
    "Associated",
    "Authenticate",
    "Ciphering",
    "ClientBase",
    "ClientEvent",
    "ClientState",
    "CounterCheck",
    "CounterStart",
    "Directory",
    "GetComplete",
    "LnClient",
    "MethodTarget",
    "Released",
    "SelectionRefused",
    "SendApdu",
    "SetComplete",
    "StaleResponse",
    "Target",
    "WithListRefused",
    "parse_object_list",
]

ASSOCIATION_LN = Obis(0, 0, 40, 0, 0, 255)
ASSOCIATION_LN_CLASS = 15
OBJECT_LIST_ATTRIBUTE = 2  # Blue Book: object_list of Association LN (15) and SN (12)
REPLY_TO_HLS_AUTHENTICATION = 1  # Association LN method 1

# What the client proposes (Green Book 9.4.6.1 conformance block): GET with blocks and
# with-list (multiple-references), selective access, SET (with blocks) and ACTION.
CLIENT_CONFORMANCE = (
    Conformance.GET
    | Conformance.SET
    | Conformance.ACTION
    | Conformance.SELECTIVE_ACCESS
    | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
    | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
    | Conformance.MULTIPLE_REFERENCES
    | Conformance.ATTRIBUTE0_SUPPORTED_WITH_GET
    | Conformance.PRIORITY_MGMT_SUPPORTED
)


class CounterStart(enum.Enum):
    """Why the meter's invocation counters start a new sequence (for a log line)."""

    FIRST = "no counter known for the device yet"
    NEW_METER = "a new meter system title"
    NEW_KEY = "new keys for this meter"


class CounterCheck(Protocol):
    """The replay check of the meter's counters: ``counter`` of an APDU whose tag
    verified, from the meter of system title ``meter``, under the keys ``key`` names
    (a fingerprint, never a key).  Raises if the counter does not rise; returns why a
    new sequence starts, or None."""

    def __call__(self, counter: int, *, meter: bytes, key: str) -> CounterStart | None: ...


@dataclass(frozen=True)
class Ciphering:
    """Ciphering of every xDLMS APDU (glo-ciphering; ded-ciphering with a dedicated key),
    Green Book 9.2.7.  The suite is the security control byte's (0, 1 or 2).

    The counters are the caller's (they persist): ``next_counter`` gives a fresh
    invocation counter for each APDU we protect; ``accept_counter`` sees the meter's
    counter of each APDU whose tag verified, with the system title it was deciphered
    with and ``key_id`` (which keys: a one-way fingerprint the caller made, so that
    the counter book never sees a key), and raises if it does not increase.
    """

    security_control: SecurityControl
    system_title: bytes
    block_cipher_key: bytes = field(repr=False)
    authentication_key: bytes = field(repr=False)
    next_counter: Callable[[], int] = field(repr=False)
    accept_counter: CounterCheck = field(repr=False)
    #: Sent in the (encrypted) InitiateRequest; once the association is established
    #: (after HLS pass 4) every APDU is ded-ciphered with it (Green Book 9.2.7.2.2).
    dedicated_key: bytes | None = field(default=None, repr=False)
    #: Names the keys for the counter book (dlmsd.readers.key_fingerprint).
    key_id: str = ""


class ClientState(enum.Enum):
    IDLE = "idle"
    ASSOCIATING = "associating"
    AUTHENTICATING = "authenticating"
    ASSOCIATED = "associated"
    WAITING = "waiting for a response"
    RELEASING = "releasing"


@dataclass(frozen=True)
class Associated:
    conformance: Conformance
    server_max_receive_pdu_size: int
    aare: Aare


@dataclass(frozen=True)
class GetComplete:
    """One result per requested descriptor: a Data value or a DataAccessResult."""

    results: tuple[GetDataResult, ...]


@dataclass(frozen=True)
class SendApdu:
    """Send this APDU (a GET-Request-Next) and wait for the next block."""

    apdu: bytes
    block_number: int


@dataclass(frozen=True)
class WithListRefused:
    """The meter refused a GET-Request-With-List; read the attributes one by one."""

    reason: str


@dataclass(frozen=True)
class SetComplete:
    """The meter's answer to a SET (LN) or WRITE (SN) of one attribute."""

    result: DataAccessResult


@dataclass(frozen=True)
class ActionComplete:
    """The meter's answer to an ACTION (LN) or a method invoked by WRITE (SN):
    ``data`` is the return parameters (None: none)."""

    result: ActionResult
    data: GetDataResult | None = None


@dataclass(frozen=True)
class SelectionRefused:
    """The meter refused a read with selective access (LN) or parameterized access (SN)
    with an ExceptionResponse or a confirmed-service-error: the association goes on."""

    reason: str


@dataclass(frozen=True)
class StaleResponse:
    invoke_id: int


@dataclass(frozen=True)
class Released:
    pass


@dataclass(frozen=True)
class Authenticate:
    """HLS pass 3: send this ACTION (reply_to_HLS_authentication) and pass its answer."""

    apdu: bytes


#: What one attribute read addresses: an LN attribute descriptor, or an SN short name.
Target = CosemAttributeDescriptor | int
#: A meter's objects as its association's object_list gives them:
#: OBIS -> (class_id, base_name); the base_name is 0 for LN referencing.
Directory = dict[Obis, tuple[int, int]]
#: What one method invocation addresses: an LN method descriptor, or an SN short name.
MethodTarget = CosemMethodDescriptor | int

ClientEvent = (Associated | GetComplete | SendApdu | WithListRefused | StaleResponse | Released
               | Authenticate | SelectionRefused | SetComplete | ActionComplete)

# What a meter may answer unciphered in a ciphered association: ExceptionResponse,
# confirmed-service-error, RLRE, AARE.
_NEVER_CIPHERED = frozenset({b"\xd8", b"\x0e", b"\x63", b"\x61"})


def allowed_calls(request: str) -> dict[ClientState, frozenset[str]]:
    """Which local calls each state allows (the transitions happen in the methods),
    for a client whose read request is called ``request``."""
    calls = {state: frozenset[str]() for state in ClientState}
    calls[ClientState.IDLE] = frozenset({"associate"})
    calls[ClientState.ASSOCIATED] = frozenset({request, "set", "action", "release"})
    return calls


class ClientBase:
    """What every COSEM client shares, LN or SN: the association's life cycle, HLS
    (passes 1, 2 and 4; pass 3 is :meth:`_hls_request`, the one referencing-specific
    step) and the ciphering of every APDU.

    Subclasses set ``ALLOWED`` (which local calls each state allows),
    ``CONTEXTS`` (the application context without and with ciphering) and
    ``CONFORMANCE`` (what they propose), and implement ``_hls_request``, the
    referencing methods and ``_reset_requests`` (their request bookkeeping).
    """

    ALLOWED: ClassVar[dict[ClientState, frozenset[str]]]
    #: Responses name their request (LN invoke-id). Without (SN), a request resent on
    #: a link that does not number its frames (the wrapper) could be answered twice
    #: and the late answer taken for the next request's: such requests are not resent.
    HAS_INVOKE_ID: ClassVar[bool]
    #: What to set on a signal when the object list cannot be read.
    OBJECT_LIST_HINT: ClassVar[str]
    CONTEXTS: ClassVar[tuple[ApplicationContextName, ApplicationContextName]]
    CONFORMANCE: ClassVar[Conformance]
    state: ClientState
    conformance: Conformance
    server_max_receive_pdu_size: int
    mechanism: MechanismName | None
    _blocks: object | None
    _set_blocks: tuple[object, ...] = ()

    def __init__(
        self,
        *,
        max_receive_pdu_size: int = 0xFFFF,
        conformance: Conformance | None = None,
        mechanism: MechanismName | None = None,
        authentication_value: bytes | None = None,
        hls: HlsKeys | None = None,
        ciphering: Ciphering | None = None,
        max_response_size: int = 1 << 20,
    ) -> None:
        if ciphering is not None and hls is None:
            raise LocalProtocolError("ciphering needs an HLS mechanism (HighGmac, HighEcdsa)")
        self.max_receive_pdu_size = max_receive_pdu_size
        self.proposed_conformance = conformance if conformance is not None else self.CONFORMANCE
        self.mechanism = hls.mechanism if hls is not None else mechanism
        self._authentication_value = authentication_value
        self._hls = hls
        self._cipher = ciphering
        #: the plain APDUs behind the last ciphered ones, for a decrypted trace summary
        self.last_plain_tx = b""
        self.last_plain_rx = b""
        self._ctos = b""
        self._stoc = b""
        #: The attribute descriptors made (value objects: a client serves one
        #: association, and the signals read the same ones every scan).
        self._descriptors: dict[tuple[int, Obis, int], CosemAttributeDescriptor] = {}
        self._server_title: bytes | None = None
        self._aare: Aare | None = None
        self._dedicated = False  # ded-ciphering: the association is established
        #: new sequences of the meter's counters, (system title, why), for the caller's
        #: log (taken by :meth:`take_counter_starts`)
        self._counter_starts: list[tuple[bytes, CounterStart]] = []
        if ciphering is not None and ciphering.dedicated_key is not None and not (
                SecurityControl.of(ciphering.security_control).encryption):
            raise LocalProtocolError("a dedicated key is sent in the encrypted "
                                     "InitiateRequest: the security policy must encrypt")
        self.max_response_size = max_response_size
        self.state = ClientState.IDLE
        self.conformance = Conformance(0)
        self.server_max_receive_pdu_size = 0
        self._reset_requests()

    def _reset_requests(self) -> None:
        raise NotImplementedError

    @property
    def pending_octets(self) -> int:
        """Raw data octets of a long GET or READ collected so far (0 without one)."""
        blocks = self._blocks
        return blocks.size if isinstance(blocks, Reassembler) else 0

    @property
    def ciphered(self) -> bool:
        """Every APDU of the association is ciphered (each with a fresh counter)."""
        return self._cipher is not None

    @property
    def context(self) -> ApplicationContextName:
        """The application context proposed (ciphered when the APDUs are)."""
        return self.CONTEXTS[self._cipher is not None]

    def __repr__(self) -> str:  # never shows the authentication value
        return f"{type(self).__name__}(state={self.state.value}, mechanism={self.mechanism})"

    def _check(self, call: str) -> None:
        if call not in self.ALLOWED[self.state]:
            raise LocalProtocolError(f"cannot {call} in client state {self.state.value}")

    @property
    def supports_with_list(self) -> bool:
        """Several attributes per request (multiple-references) were negotiated."""
        return bool(self.conformance & Conformance.MULTIPLE_REFERENCES)

    # -- referencing: what the LN and SN clients each implement ----------------------

    def associate(self, challenge: bytes = b"") -> bytes:
        """The AARQ. With HLS, ``challenge`` is CtoS (random octets the caller draws:
        this module takes no randomness of its own)."""
        return self._aarq(challenge)

    def receive_apdu(self, apdu: bytes) -> ClientEvent:
        """Handle one whole APDU from the meter."""
        if self._released(apdu):
            return Released()
        if self.state is not ClientState.ASSOCIATING:
            apdu = self._unprotect(apdu)
        response = self._decode(apdu)
        if isinstance(response, StaleResponse):
            return response
        if isinstance(response, Aare) and self.state is not ClientState.ASSOCIATING:
            # A late second AARE: the answer to a resent AARQ (the wrapper cannot tell
            # the meter that the first one arrived). The association stands.
            return StaleResponse(0)
        if self.state is ClientState.ASSOCIATING:
            aare = self._accepted(response)
            self._initiated(self._initiate_of(aare))
            return self._established(aare)
        if self.state is ClientState.AUTHENTICATING:
            return self._on_hls_reply(response)
        if self.state is ClientState.RELEASING:
            raise RemoteProtocolError(f"expected RLRE, got {described(response)}")
        if self.state is ClientState.WAITING:
            return self._on_response(response)
        raise RemoteProtocolError(
            f"unexpected APDU in client state {self.state.value}: {described(response)}")

    def _decode(self, apdu: bytes) -> object:
        """The plain APDU decoded (or a StaleResponse for one that answers nothing)."""
        raise NotImplementedError

    def _initiated(self, initiate: InitiateResponse) -> None:
        """The meter's InitiateResponse was accepted (SN keeps its vaa-name)."""

    def _on_hls_reply(self, response: object) -> ClientEvent:
        raise NotImplementedError

    def _on_response(self, response: object) -> ClientEvent:
        """The answer to the pending read request."""
        raise NotImplementedError

    def object_list_target(self) -> Target:
        """The current association's object_list (attribute 2)."""
        raise NotImplementedError

    def parse_object_list(self, value: Data) -> Directory:
        raise NotImplementedError

    def needs_object_list(self, class_id: int | None, short_name: int) -> bool:
        """Whether an attribute given so needs the object list to be addressed."""
        raise NotImplementedError

    def target(self, obis: Obis, attribute: int, class_id: int | None, short_name: int,
               directory: Directory) -> tuple[int, Target] | str:
        """(class_id, what to request) for an attribute, or why it cannot be read."""
        raise NotImplementedError

    def sibling(self, target: Target, attribute: int, other: int) -> Target:
        """The same object's attribute ``other`` (e.g. the scaler_unit of a value)."""
        raise NotImplementedError

    def request(self, targets: Sequence[Target],
                selection: SelectiveAccessDescriptor | None = None) -> bytes:
        """One request reading ``targets`` (GET-with-list or a multi-variable READ);
        with ``selection``, the one target read with selective access (LN) or
        parameterized access (SN)."""
        raise NotImplementedError

    def describe_request(self, targets: Sequence[Target]) -> str:
        raise NotImplementedError

    def method_target(self, obis: Obis, class_id: int, method: int,
                      directory: Directory) -> MethodTarget | str:
        """What to invoke for method ``method`` of an object, or why it cannot be."""
        raise NotImplementedError

    def set(self, target: Target, value: Data) -> bytes:
        """The (first) request writing ``value`` to ``target`` (SET, SN: WRITE)."""
        raise NotImplementedError

    def set_exchanges(self, target: Target, value: Data) -> int:
        """How many requests :meth:`set` of ``value`` takes (blocks: more than one)."""
        return 1

    def action(self, method: MethodTarget, parameter: Data | None) -> bytes:
        """The request invoking ``method`` (ACTION, SN: WRITE of the method's name)."""
        raise NotImplementedError

    def name_of(self, target: Target) -> str:
        """How a target is written in messages (``0.0.40.0.0.255:2``, ``0xFA08``)."""
        raise NotImplementedError

    def describe(self, apdu: bytes) -> str:
        """One line for a plain APDU of this referencing; never raises."""
        raise NotImplementedError

    def summary(self, apdu: bytes, direction: str) -> str:
        """One line for an APDU as sent or received (``direction`` "tx" or "rx"): a
        ciphered one by its clear header and, once known, the deciphered APDU's
        summary; never the keys."""
        return self.deferred_summary(apdu, direction)()

    def deferred_summary(self, apdu: bytes, direction: str) -> Callable[[], str]:
        """:meth:`summary`, to be made when (if) the trace is printed: what it needs
        of the client's state (the deciphered APDU just handled) is taken now, so that
        it says the same whenever it is made."""
        apdu = bytes(apdu)
        describe = self.describe  # pure: the APDU's octets alone
        if not is_ciphered(apdu):
            return lambda: describe(apdu)
        plain = bytes(self.last_plain_tx if direction == "tx" else self.last_plain_rx)

        def ciphered() -> str:
            text = security_describe(apdu)
            return f"{text}; decrypted: {describe(plain)}" if plain else text

        return ciphered

    def release(self) -> bytes:
        self._check("release")
        self.state = ClientState.RELEASING
        return Rlrq(reason=ReleaseRequestReason.NORMAL).to_bytes()

    def abort(self) -> None:
        """The link is gone: forget the association."""
        self.state = ClientState.IDLE
        self._dedicated = False
        self._blocks = None
        self.conformance = Conformance(0)

    def cancel_request(self) -> None:
        """Give up waiting for the pending request (after the caller's retries ran out)."""
        if self.state is ClientState.WAITING:
            self.state = ClientState.ASSOCIATED
            self._blocks = None
            self._set_blocks = ()

    def _released(self, apdu: bytes) -> bool:
        """Any RLRE ends the association; some meters get its length wrong (gurux
        1.0.203 counts 14 for 20 octets), which must not keep it open."""
        if self.state is ClientState.RELEASING and apdu[:1] == b"\x63":
            self.abort()
            return True
        return False

    def _accepted(self, response: object) -> Aare:
        """The AARE, if the association was accepted; raises otherwise."""
        if not isinstance(response, Aare):
            self.state = ClientState.IDLE
            raise RemoteProtocolError(f"expected AARE, got {described(response)}")
        if response.result is not AssociationResult.ACCEPTED:
            self.state = ClientState.IDLE
            raise association_rejected(response)
        return response

    def _no_initiate_response(self, aare: Aare) -> RemoteProtocolError:
        self.state = ClientState.IDLE
        info = aare.user_information
        detail = info.describe() if isinstance(info, ConfirmedServiceError) else "none"
        return RemoteProtocolError(f"AARE accepted without an InitiateResponse ({detail})")

    def _negotiated(self, initiate: InitiateResponse) -> None:
        self.conformance = Conformance(initiate.negotiated_conformance)
        self.server_max_receive_pdu_size = initiate.server_max_receive_pdu_size

    def _check_size(self, apdu: bytes, what: str) -> None:
        if self.server_max_receive_pdu_size and len(apdu) > self.server_max_receive_pdu_size:
            raise RequestTooLarge(f"{what} of {len(apdu)} bytes exceeds the meter's max PDU "
                                  f"{self.server_max_receive_pdu_size}")

    def _complete(self, results: tuple[GetDataResult, ...]) -> GetComplete:
        self.state = ClientState.ASSOCIATED
        return GetComplete(results)

    # -- association ----------------------------------------------------------------

    def _aarq(self, challenge: bytes) -> bytes:
        """The AARQ. With HLS, ``challenge`` is CtoS (random octets the caller draws:
        this module takes no randomness of its own)."""
        self._check("associate")
        value = self._authentication_value
        if self._hls is not None:
            self._ctos = new_challenge(challenge)
            value = self._ctos
        self._dedicated = False
        initiate = InitiateRequest(
            proposed_conformance=self.proposed_conformance,
            client_max_receive_pdu_size=self.max_receive_pdu_size,
            dedicated_key=self._cipher.dedicated_key if self._cipher is not None else None,
        )
        title = self._hls.system_title if self._hls is not None else None
        user_information: InitiateRequest | bytes = initiate
        if self._cipher is not None:
            # glo-initiate-request in the user-information, the context with ciphering
            title = self._cipher.system_title
            user_information = self._protect(initiate.to_bytes())
        aarq = Aarq(
            application_context_name=self.context,
            user_information=user_information,
            mechanism_name=self.mechanism,
            calling_authentication_value=value,
            calling_ap_title=title,
        )
        self.state = ClientState.ASSOCIATING
        return aarq.to_bytes()

    def _initiate_of(self, response: Aare) -> InitiateResponse:
        """The accepted AARE's InitiateResponse (deciphered when ciphered); raises
        when there is none or, ciphered, it does not verify."""
        answered = response.application_context_name
        if answered.short.split("-")[0] != self.context.short.split("-")[0]:
            self.state = ClientState.IDLE
            raise RemoteProtocolError(
                f"AARE accepted with the {answered.short} application context; "
                f"{self.context.short} was proposed")
        self._server_title = response.responding_ap_title
        initiate = response.initiate_response
        info = response.user_information
        if initiate is None and isinstance(info, bytes) and self._cipher is not None:
            try:
                plain = self._unprotect(info)
            except AuthenticationFailure as exc:
                self.state = ClientState.IDLE
                # Wrong keys: back off like a wrong password (meters lock out).
                raise AssociationRejected(
                    f"the meter's ciphered InitiateResponse does not verify ({exc}); check "
                    "block_cipher_key, authentication_key and system_title",
                    result=1, diagnostic=None, source="user") from None
            initiate = InitiateResponse.from_bytes(plain) if plain[:1] == b"\x08" else None
            if initiate is None:
                self.state = ClientState.IDLE
                error = ConfirmedServiceError.from_bytes(plain)
                raise RemoteProtocolError(f"AARE accepted with {error.describe()}")
        if initiate is None:
            raise self._no_initiate_response(response)
        self._negotiated(initiate)
        return initiate

    def _established(self, response: Aare) -> ClientEvent:
        """After the InitiateResponse: associated, or HLS pass 3 to send."""
        if self._hls is not None:
            return self._hls_pass_3(response)
        self.state = ClientState.ASSOCIATED
        return Associated(self.conformance, self.server_max_receive_pdu_size, response)

    # Green Book 9.2.7.4, HLS: pass 1 CtoS in the AARQ, pass 2 StoC in the AARE, pass 3
    # f(StoC) to the meter by reply_to_HLS_authentication (Association LN method 1 by
    # ACTION, Association SN method 8 by READ with parameterized-access), pass 4 f(CtoS)
    # back in its response, checked here.
    def _hls_pass_3(self, aare: Aare) -> ClientEvent:
        assert self._hls is not None
        stoc = aare.responding_authentication_value
        if not stoc:
            self.state = ClientState.IDLE
            raise RemoteProtocolError("HLS: the AARE carries no server challenge (StoC)")
        self._stoc = stoc
        self._aare = aare
        counter = (self._cipher.next_counter() if self._cipher is not None
                   and self._hls.mechanism is MechanismName.HIGH_GMAC else None)
        reply = client_reply(self._hls, stoc=stoc, ctos=self._ctos,
                             server_system_title=self._server_title,
                             invocation_counter=counter)
        self.state = ClientState.AUTHENTICATING
        return Authenticate(self._protect(self._hls_request(reply)))

    def _hls_request(self, reply: bytes) -> bytes:
        """The plain APDU that invokes reply_to_HLS_authentication with ``reply``."""
        raise NotImplementedError

    def _hls_refused(self, reason: str) -> AssociationRejected:
        # The meter did not accept f(StoC): our secret is not the meter's.
        return AssociationRejected(
            f"HLS authentication failed: the meter refused our reply ({reason})",
            result=1, diagnostic=13, source="user")

    def _hls_verify(self, data: Data | None) -> ClientEvent:
        """Pass 4: ``data`` is the meter's answer to reply_to_HLS_authentication."""
        assert self._hls is not None and self._aare is not None
        self.state = ClientState.IDLE
        if data is None or not isinstance(data.value, bytes):
            raise RemoteProtocolError("HLS: the meter's reply_to_HLS_authentication answer "
                                      "carries no f(CtoS)")
        try:
            meter_counter = verify_server_reply(self._hls, data.value, stoc=self._stoc,
                                                ctos=self._ctos,
                                                server_system_title=self._server_title)
        except AuthenticationFailure:
            why = ("its signature is not made with the key of server_public_key"
                   if self._hls.mechanism is MechanismName.HIGH_ECDSA
                   else "the meter does not hold our secret")
            raise AssociationRejected(
                f"HLS authentication failed: the meter's reply f(CtoS) does not verify "
                f"({why})", result=1, diagnostic=13, source="user") from None
        # The counter inside f(CtoS) is not fed to the replay check: the reply is
        # bound to our fresh challenge CtoS, so it cannot be replayed anyway, and meters
        # (gurux's among them) reuse the counter of their AARE there.
        del meter_counter
        self.state = ClientState.ASSOCIATED
        self._dedicated = self._cipher is not None and self._cipher.dedicated_key is not None
        return Associated(self.conformance, self.server_max_receive_pdu_size, self._aare)

    # -- ciphering ----------------------------------------------------------------

    def _protect(self, apdu: bytes) -> bytes:
        cipher = self._cipher
        if cipher is None:
            return apdu
        self.last_plain_tx = apdu
        return protect(apdu, security_control=cipher.security_control,
                       system_title=cipher.system_title,
                       invocation_counter=cipher.next_counter(),
                       block_cipher_key=cipher.block_cipher_key,
                       authentication_key=cipher.authentication_key,
                       dedicated_key=cipher.dedicated_key, dedicated=self._dedicated)

    def _unprotect(self, apdu: bytes) -> bytes:
        self.last_plain_rx = b""
        cipher = self._cipher
        if not is_ciphered(apdu):
            if cipher is not None and apdu[:1] not in _NEVER_CIPHERED:
                raise RemoteProtocolError(
                    f"the meter answered unciphered ({apdu[:1].hex().upper()}) although the "
                    "association is ciphered")
            return apdu
        if cipher is None:
            raise RemoteProtocolError("the meter answered ciphered, but no keys are configured")
        # ded- answers only once we use the dedicated key ourselves
        plain, header = unprotect(apdu, system_title=self._server_title,
                                  block_cipher_key=cipher.block_cipher_key,
                                  authentication_key=cipher.authentication_key,
                                  dedicated_key=cipher.dedicated_key if self._dedicated
                                  else None,
                                  require=cipher.security_control)
        start = cipher.accept_counter(header.invocation_counter, meter=header.system_title,
                                      key=cipher.key_id)
        if start is not None:
            self._counter_starts.append((header.system_title, start))
        self.last_plain_rx = plain
        return plain

    def take_counter_starts(self) -> list[tuple[bytes, CounterStart]]:
        """The meter's counters that started a new sequence since the last call: (its
        system title, why)."""
        starts, self._counter_starts = self._counter_starts, []
        return starts


class LnClient(ClientBase):
    """One client's view of one association, LN referencing, with HLS and ciphering."""

    ALLOWED = allowed_calls("get")
    CONFORMANCE = CLIENT_CONFORMANCE
    HAS_INVOKE_ID = True
    OBJECT_LIST_HINT = "set class_id on the signals"
    CONTEXTS = (ApplicationContextName.LOGICAL_NAME_REFERENCING_NO_CIPHERING,
                ApplicationContextName.LOGICAL_NAME_REFERENCING_WITH_CIPHERING)

    def _reset_requests(self) -> None:
        self._invoke_id = 0
        self._pending_count = 0
        self._pending_with_list = False
        self._pending_selective = False
        self._blocks: BlockReassembler | None = None
        self._pending_kind = "get"  # or "set", "action"
        self._set_blocks: tuple[SetRequest, ...] = ()
        self._set_sent = 0  # of _set_blocks

    @property
    def invoke_id(self) -> int:
        return self._invoke_id

    # ------------------------------------------------------------------ requests

    def _next_invoke_id_value(self) -> int:
        # invoke-id is 4 bits
        self._invoke_id = self._invoke_id % 15 + 1
        return self._invoke_id

    def _next_invoke_id(self) -> int:
        # 0xC0 = high priority, confirmed service
        return 0xC0 | self._next_invoke_id_value()

    def get(self, descriptors: Sequence[CosemAttributeDescriptor],
            selection: SelectiveAccessDescriptor | None = None) -> bytes:
        """A GET for one attribute (normal, with ``selection`` if given) or several
        (with-list)."""
        self._check("get")
        if not descriptors:
            raise LocalProtocolError("GET needs at least one attribute")
        if selection is not None and len(descriptors) != 1:
            raise LocalProtocolError("selective access is for one attribute at a time")
        if selection is not None and not self.conformance & Conformance.SELECTIVE_ACCESS:
            raise LocalProtocolError("the meter did not accept selective-access")
        iid = self._next_invoke_id()
        request: GetRequestNormal | GetRequestWithList
        if len(descriptors) == 1:
            request = GetRequestNormal(descriptors[0], selection, invoke_id_and_priority=iid)
        else:
            if not self.supports_with_list:
                raise LocalProtocolError("the meter did not accept multiple-references")
            request = GetRequestWithList.of(*descriptors, invoke_id_and_priority=iid)
        apdu = self._protect(request.to_bytes())
        if self.server_max_receive_pdu_size and len(apdu) > self.server_max_receive_pdu_size:
            raise RequestTooLarge(
                f"GET of {len(apdu)} bytes exceeds the meter's max PDU "
                f"{self.server_max_receive_pdu_size}; request fewer attributes at once")
        self._pending_count = len(descriptors)
        self._pending_with_list = len(descriptors) > 1
        self._pending_selective = selection is not None
        self._blocks = None
        self._pending_kind = "get"
        self.state = ClientState.WAITING
        return apdu

    #: ciphering adds a tag, a length, the security header and the tag to each APDU
    _CIPHER_OVERHEAD = 1 + 3 + 5 + 16

    def set(self, target: Target, value: Data) -> bytes:
        """SET ``value``; in blocks when it does not fit in the meter's max PDU (Green
        Book 9.4.6.3: the client sends block n+1 after the meter's
        Set-Response-Datablock n; the last block's answer is its result)."""
        self._check("set")
        if not isinstance(target, CosemAttributeDescriptor):
            raise LocalProtocolError(f"an LN SET addresses an attribute descriptor, not {target!r}")
        limit = self._set_limit()
        iid = self._next_invoke_id()
        requests = set_requests(target, value, max_apdu=limit, invoke_id_and_priority=iid)
        blocks_ok = bool(self.conformance & Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE)
        if len(requests) > 1 and not blocks_ok:
            raise RequestTooLarge(
                f"SET of {target.describe()} does not fit in the meter's max PDU {limit} and "
                "the meter did not accept block-transfer-with-set")
        apdu = self._protect(requests[0].to_bytes())
        self._check_size(apdu, "SET")
        self._set_blocks, self._set_sent = requests, 1
        self._pending_kind = "set"
        self.state = ClientState.WAITING
        return apdu

    def _set_limit(self) -> int:
        limit = self.server_max_receive_pdu_size
        if limit and self.ciphered:
            limit = max(limit - self._CIPHER_OVERHEAD, 1)
        return limit

    def set_exchanges(self, target: Target, value: Data) -> int:
        if not isinstance(target, CosemAttributeDescriptor):
            return 1
        return len(set_requests(target, value, max_apdu=self._set_limit()))

    def action(self, method: MethodTarget, parameter: Data | None) -> bytes:
        """ACTION-Request-Normal (a parameter that does not fit in the meter's max PDU
        is refused: ACTION with blocks is not implemented)."""
        self._check("action")
        if not isinstance(method, CosemMethodDescriptor):
            raise LocalProtocolError(f"an LN ACTION addresses a method descriptor, not {method!r}")
        request = ActionRequestNormal(method, parameter, self._next_invoke_id())
        apdu = self._protect(request.to_bytes())
        self._check_size(apdu, "ACTION")
        self._pending_kind = "action"
        self.state = ClientState.WAITING
        return apdu

    # -------------------------------------------------------------- referencing

    def method_target(self, obis: Obis, class_id: int, method: int,
                      directory: Directory) -> MethodTarget | str:
        return CosemMethodDescriptor(class_id, obis, method)

    def object_list_target(self) -> Target:
        return CosemAttributeDescriptor(ASSOCIATION_LN_CLASS, ASSOCIATION_LN,
                                        OBJECT_LIST_ATTRIBUTE)

    def parse_object_list(self, value: Data) -> Directory:
        return parse_object_list(value)

    def needs_object_list(self, class_id: int | None, short_name: int) -> bool:
        return class_id is None

    def target(self, obis: Obis, attribute: int, class_id: int | None, short_name: int,
               directory: Directory) -> tuple[int, Target] | str:
        if class_id is None:
            entry = directory.get(obis)
            if entry is None:
                return f"OBIS {obis} is not in the meter's object list"
            class_id = entry[0]
        key = (class_id, obis, attribute)
        descriptor = self._descriptors.get(key)
        if descriptor is None:
            descriptor = self._descriptors[key] = CosemAttributeDescriptor(*key)
        return class_id, descriptor

    def sibling(self, target: Target, attribute: int, other: int) -> Target:
        assert isinstance(target, CosemAttributeDescriptor)
        return CosemAttributeDescriptor(target.class_id, target.instance_id, other)

    def request(self, targets: Sequence[Target],
                selection: SelectiveAccessDescriptor | None = None) -> bytes:
        return self.get([t for t in targets if isinstance(t, CosemAttributeDescriptor)],
                        selection)

    def describe_request(self, targets: Sequence[Target]) -> str:
        first = targets[0]
        assert isinstance(first, CosemAttributeDescriptor)
        return f"GET {first.describe()}" + (f" +{len(targets) - 1}" if len(targets) > 1 else "")

    def name_of(self, target: Target) -> str:
        assert isinstance(target, CosemAttributeDescriptor)
        return f"{target.instance_id}:{target.attribute_id}"

    def describe(self, apdu: bytes) -> str:
        return describe_apdu(apdu)

    # ----------------------------------------------------------------- responses

    def _decode(self, apdu: bytes) -> object:
        return decode_apdu(apdu)

    def _hls_request(self, reply: bytes) -> bytes:
        return ActionRequestNormal(
            CosemMethodDescriptor(ASSOCIATION_LN_CLASS, ASSOCIATION_LN,
                                  REPLY_TO_HLS_AUTHENTICATION),
            Data.octets(reply), 0xC0 | self._next_invoke_id_value()).to_bytes()

    def _on_hls_reply(self, response: object) -> ClientEvent:
        if not isinstance(response, ActionResponseNormal):
            self.state = ClientState.IDLE
            raise RemoteProtocolError(f"HLS: expected the ACTION response, got "
                                      f"{described(response)}")
        try:
            data = response.check()
        except DlmsdError as exc:
            self.state = ClientState.IDLE
            raise self._hls_refused(str(exc)) from None
        return self._hls_verify(data)

    def _on_response(self, response: object) -> ClientEvent:
        if isinstance(response, ExceptionResponse | ConfirmedServiceError):
            error = (response.to_error() if isinstance(response, ExceptionResponse)
                     else ServiceError(f"meter answered {response.describe()}"))
            self.state = ClientState.ASSOCIATED
            self._blocks = None
            self._set_blocks = ()
            if self._pending_with_list and self._pending_kind == "get":
                return WithListRefused(str(error))
            if self._pending_selective:
                return SelectionRefused(str(error))
            raise error
        if self._pending_kind == "set":
            return self._on_set(response)
        if self._pending_kind == "action":
            return self._on_action(response)
        if not isinstance(response, GetResponse):
            raise RemoteProtocolError(f"expected a GET response, got {described(response)}")
        iid = response.invoke_id_and_priority & 0x0F
        if iid != self._invoke_id:
            return StaleResponse(iid)
        if isinstance(response, GetResponseWithDatablock):
            return self._on_block(response)
        if isinstance(response, GetResponseNormal):
            if self._pending_with_list:
                # A meter without with-list support may answer the first attribute
                # only, or refuse with a data-access-result: both mean "one by one".
                self.state = ClientState.ASSOCIATED
                return WithListRefused(f"meter answered a with-list request with "
                                       f"{response.describe()}")
            return self._complete((response.result,))
        if len(response.results) != self._pending_count:
            self.state = ClientState.ASSOCIATED
            raise RemoteProtocolError(f"GET with-list: {len(response.results)} results for "
                                      f"{self._pending_count} attributes")
        return self._complete(response.results)

    def _answers(self, response: object, kinds: type | tuple[type, ...], what: str) -> int | None:
        """The invoke-id of an answer of ``kinds``, None if it answers an earlier request;
        raises for another APDU."""
        if not isinstance(response, kinds):
            self.state = ClientState.ASSOCIATED
            self._set_blocks = ()
            raise RemoteProtocolError(f"expected {what}, got {described(response)}")
        iid = int(cast(Any, response).invoke_id_and_priority) & 0x0F
        return None if iid != self._invoke_id else iid

    def _on_set(self, response: object) -> ClientEvent:
        if self._answers(response, (SetResponseNormal, SetResponseDatablock,
                                    SetResponseLastDatablock), "a SET response") is None:
            assert isinstance(response, SetResponseNormal | SetResponseDatablock
                              | SetResponseLastDatablock)
            return StaleResponse(response.invoke_id_and_priority & 0x0F)
        sent = self._set_sent
        if isinstance(response, SetResponseDatablock):
            if sent > 1 and response.block_number == sent - 1:
                return StaleResponse(self._invoke_id)  # the one before, again (a resend)
            if sent >= len(self._set_blocks) or response.block_number != sent:
                self.state = ClientState.ASSOCIATED
                blocks, self._set_blocks = len(self._set_blocks), ()
                raise RemoteProtocolError(
                    f"SET in blocks: the meter acknowledged block {response.block_number}, "
                    f"block {sent} of {blocks} was sent")
            self._set_sent += 1
            block = self._set_blocks[sent]
            return SendApdu(self._protect(block.to_bytes()), sent + 1)
        self._set_blocks = ()
        self.state = ClientState.ASSOCIATED
        if isinstance(response, SetResponseLastDatablock) and response.block_number != sent:
            raise RemoteProtocolError(f"SET in blocks: the last answer names block "
                                      f"{response.block_number}, block {sent} was sent last")
        assert isinstance(response, SetResponseNormal | SetResponseLastDatablock)
        return SetComplete(response.result)

    def _on_action(self, response: object) -> ClientEvent:
        if self._answers(response, ActionResponseNormal, "an ACTION response") is None:
            assert isinstance(response, ActionResponseNormal)
            return StaleResponse(response.invoke_id_and_priority & 0x0F)
        assert isinstance(response, ActionResponseNormal)
        self.state = ClientState.ASSOCIATED
        return ActionComplete(response.result, response.return_parameters)

    def _on_block(self, block: GetResponseWithDatablock) -> ClientEvent:
        if self._blocks is None:
            self._blocks = BlockReassembler(
                max_size=self.max_response_size, data_value=not self._pending_with_list,
                results=self._pending_count if self._pending_with_list else 0)
        elif self._blocks.last_received and block.block_number == self._blocks.last_received:
            # The block just taken, again: a resent request restarted the meter's long
            # GET (its first answer was late), or the meter resent it. Not an error.
            return StaleResponse(self._invoke_id)
        try:
            raw = self._blocks.add(block)
        except RemoteProtocolError:
            self.state = ClientState.ASSOCIATED
            self._blocks = None
            raise
        except DataAccessError:  # a data-access-result ended the long GET
            self._blocks = None
            assert isinstance(block.raw_data, DataAccessResult)
            return self._complete((block.raw_data,) * self._pending_count)
        if raw is None:
            request = self._blocks.next_request()
            return SendApdu(self._protect(request.to_bytes()), request.block_number)
        self._blocks = None
        try:
            if self._pending_with_list:
                results = decode_get_data_result_list(raw)
                if len(results) != self._pending_count:
                    raise DecodeError(f"{len(results)} results for {self._pending_count} "
                                      "attributes")
                return self._complete(results)
            return self._complete((decode_data_all(raw),))
        except DecodeError:
            self.state = ClientState.ASSOCIATED
            raise


def described(apdu: object) -> str:
    """One line for a decoded APDU of any kind."""
    describe = getattr(apdu, "describe", None)
    return str(describe()) if callable(describe) else type(apdu).__name__


def parse_object_list(value: Data) -> Directory:
    """object_list of Association LN (Blue Book 4.4.3, class 15 attribute 2): array of
    structure {class_id long-unsigned, version unsigned, logical_name octet-string(6),
    access_rights} -> {OBIS: (class_id, 0)}.  The first element of a repeated logical
    name wins."""
    if value.type is not DataType.ARRAY or not isinstance(value.value, tuple):
        raise DecodeError("object_list is not an array")
    objects: Directory = {}
    for index, item in enumerate(value.value):
        fields = item.value
        if (item.type is not DataType.STRUCTURE or not isinstance(fields, tuple)
                or len(fields) < 3 or not isinstance(fields[0].value, int)
                or not isinstance(fields[2].value, bytes)):
            raise DecodeError(f"object_list element {index} is not "
                              "structure{class_id, version, logical_name, ...}")
        objects.setdefault(Obis.from_bytes(fields[2].value), (fields[0].value, 0))
    return objects
