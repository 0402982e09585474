"""The COSEM client application layer for SN referencing (pure, sans-I/O).

:class:`SnClient` is the short-name counterpart of :class:`dlmsd.protocol.client.LnClient`
and produces the same events, so the session can drive either:

* ``associate(challenge)`` -> AARQ with the SN application context
  (``SHORT_NAME_REFERENCING_NO_CIPHERING``, or ``..._WITH_CIPHERING`` when ciphering)
  and the SN conformance bits; the AARE gives :class:`Associated` or raises
  :class:`~dlmsd.errors.AssociationRejected`.  With HLS (mechanisms 2..7) the AARE gives
  :class:`~dlmsd.protocol.client.Authenticate`: pass 3, reply_to_HLS_authentication
  (the Association SN's method 8, at vaa-name + 0x58) invoked by a ReadRequest with
  parameterized-access whose parameter is f(StoC); its ReadResponse carries f(CtoS),
  checked before :class:`Associated` (a data-access-result is a rejection).
* With ciphering (HighGmac) every APDU after the AARQ goes glo-ciphered
  (glo-read-request 0x25, glo-read-response 0x2C), exactly as in LN
  (:class:`~dlmsd.protocol.client.ClientBase`).
* ``read(variables)`` -> one ReadRequest for one or several short names (several is the
  SN counterpart of GET-with-list); the ReadResponse gives :class:`GetComplete` with one
  result per variable, in order (a Data value or a DataAccessResult), or
  :class:`SendApdu` while a long answer comes in blocks (the ReadRequest with
  block-number-access to send is carried in the event), or :class:`WithListRefused`
  when the meter rejects several variables in one request (ExceptionResponse,
  confirmed-service-error, or an answer for the first variable only).
* ``set(short_name, value)`` -> WriteRequest of one variable; the WriteResponse gives
  :class:`~dlmsd.protocol.client.SetComplete`.  ``action(short_name, parameter)`` invokes
  a method the SN way: with SN referencing a method has a short name of its own
  (``method_short_name``, the Blue Book's class tables) and is invoked by writing it
  (no return data; the parameter is the data written) or by reading it with
  parameterized-access (return data, as reply_to_HLS_authentication is here).
  gurux_dlms's SN client invokes methods by a WriteRequest too (``GXDLMSClient.method``).
  The WriteResponse gives :class:`~dlmsd.protocol.client.ActionComplete`.  A
  WRITE in blocks (write-data-block-access) is not implemented: a value that does not
  fit in the meter's max PDU is refused (RequestTooLarge).
* ``release()`` -> RLRQ; the RLRE gives :class:`Released`.

Matching responses to requests: SN APDUs carry no invoke-id, so this client allows
strictly one outstanding request and takes the next ReadResponse as its answer (after
checking that it has one result per variable).  Over HDLC the link layer makes that
safe: I-frames carry send and receive sequence numbers, so a resent request or a
repeated answer is recognised as a duplicate by the receiving link layer and an APDU
is delivered at most once (IEC 62056-46).  Over the TCP wrapper a resend after a
timeout can be answered twice, and the late copy would be taken for the answer to the
next request: a session should therefore not resend an SN request on the wrapper, but
drop the association.
What the client can recognise as stale it reports as :class:`StaleResponse` (with
``invoke_id`` 0) and changes nothing: a repeat of the block just received during a
long read, and reports the meter pushes unasked (InformationReportRequest,
UnconfirmedWriteRequest), which are not kept.

Green Book (DLMS UA 1000-2), xDLMS services for SN referencing: Read with block
transfer; 9.3 ACSE.
"""

from __future__ import annotations

from collections.abc import Sequence

from dlmsd.errors import (
    DecodeError,
    LocalProtocolError,
    RemoteProtocolError,
    RequestTooLarge,
    ServiceError,
)
from dlmsd.protocol.acse import ApplicationContextName
from dlmsd.protocol.axdr import Data
from dlmsd.protocol.client import (
    OBJECT_LIST_ATTRIBUTE,
    ActionComplete,
    ClientBase,
    ClientEvent,
    ClientState,
    Directory,
    MethodTarget,
    SelectionRefused,
    SendApdu,
    SetComplete,
    StaleResponse,
    Target,
    WithListRefused,
    allowed_calls,
    described,
)
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.sn import (
    ASSOCIATION_SN_BASE_NAME,
    BlockNumber,
    DataBlockResult,
    InformationReportRequest,
    ParameterizedAccess,
    ReadRequest,
    ReadResponse,
    SnBlockReassembler,
    UnconfirmedWriteRequest,
    VariableName,
    WriteRequest,
    WriteResponse,
    attribute_short_name,
    base_name_of,
    decode_read_blocks,
    decode_sn_apdu,
    describe_sn_apdu,
    method_short_name,
    parse_sn_object_list,
)
from dlmsd.protocol.xdlms import (
    ActionResult,
    ConfirmedServiceError,
    Conformance,
    DataAccessResult,
    ExceptionResponse,
    GetDataResult,
    InitiateResponse,
    SelectiveAccessDescriptor,
)

__all__ = [
    "ASSOCIATION_SN_CLASS",
    "NO_INVOKE_ID",
    "REPLY_TO_HLS_AUTHENTICATION_SN",
    "SN_CLIENT_CONFORMANCE",
    "SnClient",
]

#: What the client proposes (Green Book conformance block, the SN services): read,
#: write, unconfirmed-write, block transfer with read and with write, several variables
#: per request (multiple-references), information-report, parameterized-access.  The
#: same block (1C 1B 20) as a captured SN AARQ (tohasan/hdlc-translator tests).
SN_CLIENT_CONFORMANCE = (
    Conformance.READ
    | Conformance.WRITE
    | Conformance.UNCONFIRMED_WRITE
    | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
    | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
    | Conformance.MULTIPLE_REFERENCES
    | Conformance.INFORMATION_REPORT
    | Conformance.PARAMETERIZED_ACCESS
)

#: Blue Book, Association SN (class 12): reply_to_HLS_authentication is method 8,
#: invoked by READ with parameterized-access (its answer carries f(CtoS)).
ASSOCIATION_SN_CLASS = 12
REPLY_TO_HLS_AUTHENTICATION_SN = 8
#: parameterized-access to a method: the selector is not used (0).
_METHOD_SELECTOR = 0

#: StaleResponse.invoke_id for SN, which has no invoke-id.
NO_INVOKE_ID = 0


class SnClient(ClientBase):
    """One client's view of one association, SN referencing, with HLS and ciphering."""

    ALLOWED = allowed_calls("read")
    _pending_kind: str
    CONFORMANCE = SN_CLIENT_CONFORMANCE
    HAS_INVOKE_ID = False
    OBJECT_LIST_HINT = "set address and class_id on the signals"
    CONTEXTS = (ApplicationContextName.SHORT_NAME_REFERENCING_NO_CIPHERING,
                ApplicationContextName.SHORT_NAME_REFERENCING_WITH_CIPHERING)

    def _reset_requests(self) -> None:
        #: The base_name of the current Association SN (its object_list is at +8),
        #: from the InitiateResponse vaa-name.
        self.vaa_name = ASSOCIATION_SN_BASE_NAME
        self._pending_count = 0
        self._pending_selective = False
        self._blocks: SnBlockReassembler | None = None
        self._pending_kind = "read"  # or "set", "action": a WriteRequest

    # ------------------------------------------------------------------ requests

    def read(self, variables: Sequence[int | ParameterizedAccess]) -> bytes:
        """One ReadRequest for the short names (or parameterized accesses) given."""
        self._check("read")
        if not variables:
            raise LocalProtocolError("READ needs at least one variable")
        if len(variables) > 1 and not self.supports_with_list:
            raise LocalProtocolError("the meter did not accept multiple-references")
        items: list[VariableName | ParameterizedAccess] = []
        for item in variables:
            if isinstance(item, ParameterizedAccess):
                if not self.conformance & Conformance.PARAMETERIZED_ACCESS:
                    raise LocalProtocolError("the meter did not accept parameterized-access")
                items.append(item)
            else:
                items.append(VariableName(item))
        apdu = self._protect(ReadRequest(tuple(items)).to_bytes())
        if self.server_max_receive_pdu_size and len(apdu) > self.server_max_receive_pdu_size:
            raise RequestTooLarge(
                f"READ of {len(apdu)} bytes exceeds the meter's max PDU "
                f"{self.server_max_receive_pdu_size}; request fewer variables at once")
        self._pending_count = len(items)
        self._pending_selective = any(isinstance(i, ParameterizedAccess) for i in items)
        self._blocks = None
        self._pending_kind = "read"
        self.state = ClientState.WAITING
        return apdu

    def _write(self, short_name: int, value: Data, kind: str) -> bytes:
        self._check(kind)
        if not isinstance(short_name, int):
            raise LocalProtocolError(f"an SN {kind} addresses a short name, not {short_name!r}")
        apdu = self._protect(WriteRequest((VariableName(short_name),), (value,)).to_bytes())
        self._check_size(apdu, "WRITE")
        self._pending_count = 1
        self._blocks = None
        self._pending_kind = kind
        self.state = ClientState.WAITING
        return apdu

    def set(self, target: Target, value: Data) -> bytes:
        assert isinstance(target, int), target
        return self._write(target, value, "set")

    def action(self, method: MethodTarget, parameter: Data | None) -> bytes:
        # A WriteRequest always carries data: a method without parameter gets
        # integer 0, as the Blue Book's clock methods 1..4 take ("data ::= integer(0)").
        assert isinstance(method, int), method
        return self._write(method, parameter if parameter is not None else Data.int8(0),
                           "action")

    def method_target(self, obis: Obis, class_id: int, method: int,
                      directory: Directory) -> MethodTarget | str:
        entry = directory.get(obis)
        if entry is None:
            return (f"OBIS {obis} is not in the meter's object list "
                    "(its base_name is needed to invoke a method)")
        try:
            return method_short_name(entry[1], class_id, method)
        except LocalProtocolError as exc:
            return str(exc)

    # -------------------------------------------------------------- referencing

    def object_list_target(self) -> Target:
        return attribute_short_name(self.vaa_name, OBJECT_LIST_ATTRIBUTE)

    def parse_object_list(self, value: Data) -> Directory:
        return {obis: (class_id, base) for obis, (base, class_id)
                in parse_sn_object_list(value).items()}

    def needs_object_list(self, class_id: int | None, short_name: int) -> bool:
        return not short_name or class_id is None

    def target(self, obis: Obis, attribute: int, class_id: int | None, short_name: int,
               directory: Directory) -> tuple[int, Target] | str:
        entry = directory.get(obis)
        if class_id is None and entry is not None:
            class_id = entry[0]
        if short_name and class_id is not None:
            return class_id, short_name
        if entry is None or class_id is None:
            return (f"OBIS {obis} is not in the meter's object list "
                    "(set address and class_id on the signal)")
        return class_id, attribute_short_name(entry[1], attribute)

    def sibling(self, target: Target, attribute: int, other: int) -> Target:
        assert isinstance(target, int)
        return attribute_short_name(base_name_of(target, attribute), other)

    def request(self, targets: Sequence[Target],
                selection: SelectiveAccessDescriptor | None = None) -> bytes:
        names = [t for t in targets if isinstance(t, int)]
        if selection is None:
            return self.read(names)
        if len(names) != 1:
            raise LocalProtocolError("parameterized access is for one variable at a time")
        # Blue Book 4.1.4 (SN): an attribute read with selective access is a READ with
        # parameterized-access: the attribute's short name, the access selector and the
        # access parameters.
        return self.read([ParameterizedAccess(names[0], selection.access_selector,
                                              selection.access_parameters)])

    def describe_request(self, targets: Sequence[Target]) -> str:
        names = [t for t in targets if isinstance(t, int)]
        return "READ " + ", ".join(f"0x{n:04X}" for n in names[:3]) + (
            f" +{len(names) - 3}" if len(names) > 3 else "")

    def name_of(self, target: Target) -> str:
        return f"0x{target:04X}" if isinstance(target, int) else str(target)

    def describe(self, apdu: bytes) -> str:
        return describe_sn_apdu(apdu)

    # ----------------------------------------------------------------- responses

    def _decode(self, apdu: bytes) -> object:
        response = decode_sn_apdu(apdu)
        if isinstance(response, InformationReportRequest | UnconfirmedWriteRequest):
            return StaleResponse(NO_INVOKE_ID)  # pushed unasked: nothing to answer
        return response

    def _initiated(self, initiate: InitiateResponse) -> None:
        self.vaa_name = initiate.vaa_name

    def _hls_request(self, reply: bytes) -> bytes:
        method = method_short_name(self.vaa_name, ASSOCIATION_SN_CLASS,
                                   REPLY_TO_HLS_AUTHENTICATION_SN)
        access = ParameterizedAccess(method, _METHOD_SELECTOR, Data.octets(reply))
        return ReadRequest((access,)).to_bytes()

    def _on_hls_reply(self, response: object) -> ClientEvent:
        if isinstance(response, ReadResponse) and len(response.results) == 1:
            result = response.results[0]
            if isinstance(result, DataAccessResult):
                self.state = ClientState.IDLE
                raise self._hls_refused(result.describe())
            if isinstance(result, Data):
                return self._hls_verify(result)
        self.state = ClientState.IDLE
        raise RemoteProtocolError("HLS: expected the ReadResponse to reply_to_HLS_"
                                  f"authentication, got {described(response)}")

    def _fail(self, message: str) -> RemoteProtocolError:
        self.state = ClientState.ASSOCIATED
        self._blocks = None
        return RemoteProtocolError(message)

    def _on_response(self, response: object) -> ClientEvent:
        if isinstance(response, ExceptionResponse | ConfirmedServiceError):
            error = (response.to_error() if isinstance(response, ExceptionResponse)
                     else ServiceError(f"meter answered {response.describe()}"))
            in_blocks = self._blocks is not None
            self.state = ClientState.ASSOCIATED
            self._blocks = None
            if self._pending_count > 1 and not in_blocks:
                return WithListRefused(str(error))
            if self._pending_selective:
                return SelectionRefused(str(error))
            raise error
        if self._pending_kind != "read":
            return self._on_write(response)
        if not isinstance(response, ReadResponse):
            raise self._fail(f"expected a ReadResponse, got {described(response)}")
        results = response.results
        if len(results) == 1 and isinstance(results[0], DataBlockResult):
            return self._on_block(results[0])
        plain: list[GetDataResult] = []
        for result in results:
            if isinstance(result, DataBlockResult):
                raise self._fail("ReadResponse mixes a data-block-result with other results")
            if isinstance(result, BlockNumber):
                raise self._fail(f"ReadResponse holds {result.describe()}, which acknowledges "
                                 "a request sent in blocks; none was")
            plain.append(result)
        if self._blocks is not None:
            # The meter ends a long read with a data-access-error instead of a block.
            self._blocks = None
            if len(plain) == 1 and isinstance(plain[0], DataAccessResult):
                return self._complete((plain[0],) * self._pending_count)
            raise self._fail(f"expected the next block, got {response.describe()}")
        if len(plain) == self._pending_count:
            return self._complete(tuple(plain))
        if self._pending_count > 1 and len(plain) == 1:
            # A meter without multiple-references answers the first variable only,
            # or refuses the request with one data-access-error: read one by one.
            self.state = ClientState.ASSOCIATED
            return WithListRefused(f"meter answered a {self._pending_count}-variable read "
                                   f"with {response.describe()}")
        raise self._fail(f"ReadResponse: {len(plain)} results for {self._pending_count} "
                         "variables")

    def _on_write(self, response: object) -> ClientEvent:
        if not isinstance(response, WriteResponse):
            raise self._fail(f"expected a WriteResponse, got {described(response)}")
        if len(response.results) != 1 or not isinstance(response.results[0], DataAccessResult):
            raise self._fail(f"expected one result for one variable written, got "
                             f"{response.describe()}")
        result = response.results[0]
        self.state = ClientState.ASSOCIATED
        if self._pending_kind == "set":
            return SetComplete(result)
        # Action-Result and Data-Access-Result share their values for the results a
        # write can give (success 0 .. other-reason 250, Green Book)
        return ActionComplete(ActionResult(int(result)))

    def _on_block(self, block: DataBlockResult) -> ClientEvent:
        if self._blocks is None:
            self._blocks = SnBlockReassembler(max_size=self.max_response_size)
        elif self._blocks.last_received and block.block_number == self._blocks.last_received:
            return StaleResponse(NO_INVOKE_ID)  # the block just taken, sent again
        try:
            raw = self._blocks.add(block)
        except RemoteProtocolError as exc:
            raise self._fail(str(exc)) from None
        if raw is None:
            request = self._blocks.next_request()
            return SendApdu(self._protect(request.to_bytes()), self._blocks.last_received)
        self._blocks = None
        try:
            results = decode_read_blocks(raw, self._pending_count)
        except DecodeError:
            self.state = ClientState.ASSOCIATED
            raise
        return self._complete(results)
