"""dlms-sim MeterServer (pure): association, GET normal/with-list/next, errors; and the
simulator's links (HDLC, wrapper) driven in memory by dlmsd's own client ends."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsd.errors import AssociationRejected, DecodeError, LocalProtocolError
from dlmsd.protocol import hdlc, hdlc_frame, wrapper
from dlmsd.protocol.acse import (
    Aare,
    Aarq,
    AcseServiceUser,
    ApplicationContextName,
    AssociationResult,
    MechanismName,
    Rlre,
    Rlrq,
)
from dlmsd.protocol.apdu import decode_apdu
from dlmsd.protocol.axdr import BitString, Data
from dlmsd.protocol.client import (
    CLIENT_CONFORMANCE,
    Associated,
    GetComplete,
    LnClient,
    SendApdu,
    WithListRefused,
)
from dlmsd.protocol.link import ApduReceived, Connected, Disconnected, HdlcLink, WrapperLink
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.xdlms import (
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    ConfirmedServiceError,
    Conformance,
    CosemAttributeDescriptor,
    CosemAttributeDescriptorWithSelection,
    CosemMethodDescriptor,
    DataAccessResult,
    ExceptionResponse,
    ExceptionServiceError,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
    InitiateRequest,
    SelectiveAccessDescriptor,
    SetRequestNormal,
    SetResponseNormal,
    StateError,
)
from dlmsd.sim.model import AssociationView, Meter, MeterModel, bundled_model_path, load_model
from dlmsd.sim.server import SIM_CONFORMANCE, AssociationState, MeterServer, ServerOptions

NOW = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
ENERGY = CosemAttributeDescriptor(3, Obis(1, 0, 1, 8, 0, 255), 2)
ENERGY_SU = CosemAttributeDescriptor(3, Obis(1, 0, 1, 8, 0, 255), 3)
OBJECT_LIST = CosemAttributeDescriptor(15, Obis(0, 0, 40, 0, 0, 255), 2)
UNKNOWN = CosemAttributeDescriptor(3, Obis(1, 0, 99, 99, 0, 255), 2)


BUNDLED = load_model(bundled_model_path())


@pytest.fixture
def model() -> MeterModel:
    return BUNDLED


def make_server(model: MeterModel, **options: object) -> MeterServer:
    return MeterServer(Meter(model), ServerOptions(**options))  # type: ignore[arg-type]


def aarq(max_pdu: int = 0xFFFF, conformance: Conformance = CLIENT_CONFORMANCE,
         **kwargs: object) -> bytes:
    request = InitiateRequest(proposed_conformance=conformance,
                              client_max_receive_pdu_size=max_pdu)
    return Aarq(user_information=request, **kwargs).to_bytes()  # type: ignore[arg-type]


def associate(server: MeterServer, max_pdu: int = 0xFFFF) -> LnClient:
    """Associate with dlmsd's own LN client (the daemon's application layer)."""
    client = LnClient(max_receive_pdu_size=max_pdu)
    event = client.receive_apdu(server.handle(client.associate(), NOW))
    assert isinstance(event, Associated)
    return client


def get(server: MeterServer, client: LnClient, *descriptors: CosemAttributeDescriptor,
        limit: int | None = None) -> tuple[GetComplete, int]:
    """GET through the daemon's client, following blocks; returns the result and the
    number of response APDUs (each checked against ``limit``)."""
    request = client.get(list(descriptors))
    responses = 0
    while True:
        response = server.handle(request, NOW)
        responses += 1
        if limit is not None:
            assert len(response) <= limit
        event = client.receive_apdu(response)
        if isinstance(event, SendApdu):
            request = event.apdu
            continue
        assert isinstance(event, GetComplete)
        return event, responses


def exception(state: StateError, service: ExceptionServiceError) -> bytes:
    return ExceptionResponse(state, service).to_bytes()


# ====================================================================== association
def test_aarq_is_accepted_with_the_intersection_of_conformances(model: MeterModel) -> None:
    server = make_server(model, max_pdu=512)
    aare = Aare.from_bytes(server.handle(aarq(max_pdu=200), NOW))
    negotiated = aare.check()
    assert negotiated.negotiated_conformance == CLIENT_CONFORMANCE & SIM_CONFORMANCE
    assert negotiated.negotiated_conformance == (
        Conformance.GET | Conformance.SET | Conformance.ACTION | Conformance.SELECTIVE_ACCESS
        | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
        | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE | Conformance.MULTIPLE_REFERENCES)
    assert negotiated.server_max_receive_pdu_size == 512
    assert negotiated.vaa_name == 0x0007
    assert negotiated.negotiated_dlms_version_number == 6
    assert server.state is AssociationState.ASSOCIATED
    assert server.response_limit == 200


def test_lowest_level_mechanism_is_authentication_none(model: MeterModel) -> None:
    server = make_server(model)
    Aare.from_bytes(server.handle(aarq(mechanism_name=MechanismName.LOWEST), NOW)).check()


@pytest.mark.parametrize(("request_kwargs", "diagnostic"), [
    ({"application_context_name": ApplicationContextName.SHORT_NAME_REFERENCING_NO_CIPHERING},
     AcseServiceUser.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED),
    ({"application_context_name": ApplicationContextName.LOGICAL_NAME_REFERENCING_WITH_CIPHERING},
     AcseServiceUser.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED),
    ({"mechanism_name": MechanismName.LOW, "calling_authentication_value": b"12345678"},
     AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED),
    ({"mechanism_name": MechanismName.HIGH_GMAC, "calling_authentication_value": b"x" * 8},
     AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED),
])
def test_unsupported_context_or_mechanism_is_rejected(
        model: MeterModel, request_kwargs: dict[str, object],
        diagnostic: AcseServiceUser) -> None:
    server = make_server(model)
    aare = Aare.from_bytes(server.handle(aarq(**request_kwargs), NOW))  # type: ignore[arg-type]
    assert aare.result is AssociationResult.REJECTED_PERMANENT
    assert aare.diagnostic is diagnostic
    with pytest.raises(AssociationRejected) as info:
        aare.check()
    assert info.value.diagnostic == int(diagnostic) and info.value.source == "user"
    assert server.state is AssociationState.NON_ASSOCIATED


@pytest.mark.parametrize(("initiate", "value"), [
    (InitiateRequest(proposed_dlms_version_number=5), 1),  # dlms-version-too-low
    (InitiateRequest(client_max_receive_pdu_size=11), 3),  # pdu-size-too-short
    (InitiateRequest(proposed_conformance=Conformance.READ | Conformance.WRITE), 2),
])
def test_xdlms_initiate_problems_are_rejected_with_an_initiate_error(
        model: MeterModel, initiate: InitiateRequest, value: int) -> None:
    server = make_server(model)
    aare = Aare.from_bytes(server.handle(Aarq(user_information=initiate).to_bytes(), NOW))
    assert aare.result is AssociationResult.REJECTED_PERMANENT
    assert aare.diagnostic is AcseServiceUser.NO_REASON_GIVEN
    error = aare.user_information
    assert isinstance(error, ConfirmedServiceError)
    assert (int(error.service), int(error.error), error.value) == (1, 6, value)


def test_aarq_without_initiate_request_or_undecodable(model: MeterModel) -> None:
    server = make_server(model)
    aare = Aare.from_bytes(server.handle(Aarq(user_information=None).to_bytes(), NOW))
    assert aare.result is AssociationResult.REJECTED_PERMANENT
    assert isinstance(aare.user_information, ConfirmedServiceError)
    garbage = Aare.from_bytes(server.handle(b"\x60\x03\x01\x02\x03", NOW))
    assert garbage.result is AssociationResult.REJECTED_PERMANENT
    assert garbage.diagnostic is AcseServiceUser.NO_REASON_GIVEN


def test_requests_before_association_get_an_exception_response(model: MeterModel) -> None:
    server = make_server(model)
    refused = exception(StateError.SERVICE_NOT_ALLOWED,
                        ExceptionServiceError.OPERATION_NOT_POSSIBLE)
    assert server.handle(GetRequestNormal(ENERGY).to_bytes(), NOW) == refused
    assert server.handle(GetRequestNext(1).to_bytes(), NOW) == refused
    assert server.handle(SetRequestNormal(ENERGY, Data.uint32(1)).to_bytes(), NOW) == refused
    assert server.handle(b"\xc8\x00", NOW) == refused
    # The daemon's client reports it as a service error.
    assert isinstance(decode_apdu(refused), ExceptionResponse)


def test_release_and_reassociate(model: MeterModel) -> None:
    server = make_server(model)
    associate(server)
    assert Rlre.from_bytes(server.handle(Rlrq().to_bytes(), NOW)).reason is not None
    assert server.state is AssociationState.NON_ASSOCIATED
    assert server.handle(GetRequestNormal(ENERGY).to_bytes(), NOW) == exception(
        StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.OPERATION_NOT_POSSIBLE)
    # RLRQ when not associated is still answered.
    Rlre.from_bytes(server.handle(Rlrq().to_bytes(), NOW))
    client = associate(server)
    event, _ = get(server, client, ENERGY)
    assert event.results == (Data.uint32(123456),)
    server.reset()  # the link went down
    assert server.state is AssociationState.NON_ASSOCIATED


# ====================================================================== GET
def test_get_normal_values_and_errors(model: MeterModel) -> None:
    server = make_server(model)
    client = associate(server)
    assert get(server, client, ENERGY)[0].results == (Data.uint32(123456),)
    assert get(server, client, ENERGY_SU)[0].results == (
        Data.structure(Data.int8(1), Data.enum(30)),)
    for descriptor, result in [
        (UNKNOWN, DataAccessResult.OBJECT_UNDEFINED),
        (CosemAttributeDescriptor(1, ENERGY.instance_id, 2),
         DataAccessResult.OBJECT_CLASS_INCONSISTENT),
        (CosemAttributeDescriptor(3, ENERGY.instance_id, 4), DataAccessResult.OBJECT_UNDEFINED),
        (CosemAttributeDescriptor(15, OBJECT_LIST.instance_id, 7),
         DataAccessResult.READ_WRITE_DENIED),
    ]:
        response = server.handle(GetRequestNormal(descriptor, None, 0xC5).to_bytes(), NOW)
        assert GetResponseNormal.from_bytes(response) == GetResponseNormal(result, 0xC5)


def test_get_with_list_answers_each_attribute_in_order(model: MeterModel) -> None:
    server = make_server(model)
    client = associate(server)
    event, responses = get(server, client, ENERGY, UNKNOWN, ENERGY_SU,
                           CosemAttributeDescriptor(1, Obis(0, 0, 96, 1, 0, 255), 2))
    assert responses == 1
    assert event.results == (Data.uint32(123456), DataAccessResult.OBJECT_UNDEFINED,
                             Data.structure(Data.int8(1), Data.enum(30)),
                             Data.octets(b"12345678"))


def test_object_list_with_block_transfer_at_128_bytes(model: MeterModel) -> None:
    server = make_server(model)
    client = associate(server, max_pdu=128)
    event, responses = get(server, client, OBJECT_LIST, limit=128)
    expected = Meter(model).read(15, OBJECT_LIST.instance_id, 2, now=NOW,
                                 association=server.association_view)
    assert event.results == (expected,)
    assert responses > 10  # ~1.9 KB in blocks of ~115 bytes


def test_server_max_pdu_caps_responses_too(model: MeterModel) -> None:
    server = make_server(model, max_pdu=100)
    client = associate(server)  # the client could take 65535
    event, responses = get(server, client, OBJECT_LIST, limit=100)
    assert isinstance(event.results[0], Data) and responses > 10


def test_with_list_result_in_blocks(model: MeterModel) -> None:
    server = make_server(model)
    client = associate(server, max_pdu=64)
    descriptors = [CosemAttributeDescriptor(1, Obis(0, 128, 128, 0, n, 255), 2)
                   for n in range(25)]
    event, responses = get(server, client, *descriptors, OBJECT_LIST, limit=64)
    meter = Meter(model)
    expected = tuple(meter.read(d.class_id, d.instance_id, d.attribute_id, now=NOW,
                                association=server.association_view)
                     for d in [*descriptors, OBJECT_LIST])
    assert event.results == expected
    assert responses > 20


def test_get_next_block_numbers(model: MeterModel) -> None:
    server = make_server(model)
    associate(server, max_pdu=128)
    first = decode_apdu(server.handle(GetRequestNormal(OBJECT_LIST, None, 0xC3).to_bytes(), NOW))
    assert isinstance(first, GetResponseWithDatablock)
    assert (first.block_number, first.last_block, first.invoke_id_and_priority) == (1, False, 0xC3)
    second = decode_apdu(server.handle(GetRequestNext(1, 0xC3).to_bytes(), NOW))
    assert isinstance(second, GetResponseWithDatablock) and second.block_number == 2
    # The client lost block 2 and acknowledges block 1 again: block 2 is resent.
    again = decode_apdu(server.handle(GetRequestNext(1, 0xC3).to_bytes(), NOW))
    assert again == second
    # A block number out of step ends the long GET.
    wrong = decode_apdu(server.handle(GetRequestNext(7, 0xC3).to_bytes(), NOW))
    assert wrong == GetResponseWithDatablock(
        True, 3, DataAccessResult.DATA_BLOCK_NUMBER_INVALID, 0xC3)
    none = decode_apdu(server.handle(GetRequestNext(2, 0xC3).to_bytes(), NOW))
    assert none == GetResponseWithDatablock(
        True, 2, DataAccessResult.NO_LONG_GET_IN_PROGRESS, 0xC3)


def test_get_next_after_the_last_block_and_after_a_new_get(model: MeterModel) -> None:
    server = make_server(model)
    associate(server, max_pdu=1024)
    first = decode_apdu(server.handle(GetRequestNormal(OBJECT_LIST).to_bytes(), NOW))
    assert isinstance(first, GetResponseWithDatablock) and not first.last_block
    last = first
    while not last.last_block:  # the object list is a few blocks long
        last = decode_apdu(server.handle(GetRequestNext(last.block_number).to_bytes(), NOW))
        assert isinstance(last, GetResponseWithDatablock) and last.block_number > 1
    over = decode_apdu(server.handle(GetRequestNext(last.block_number).to_bytes(), NOW))
    assert over == GetResponseWithDatablock(True, last.block_number,
                                            DataAccessResult.NO_LONG_GET_IN_PROGRESS)
    server.handle(GetRequestNormal(OBJECT_LIST).to_bytes(), NOW)
    server.handle(GetRequestNormal(ENERGY).to_bytes(), NOW)  # ends the long GET
    stale = decode_apdu(server.handle(GetRequestNext(1).to_bytes(), NOW))
    assert stale == GetResponseWithDatablock(True, 1, DataAccessResult.NO_LONG_GET_IN_PROGRESS)


def test_without_block_transfer_an_oversize_result_is_other_reason(model: MeterModel) -> None:
    server = make_server(model)
    client = LnClient(max_receive_pdu_size=128, conformance=Conformance.GET)
    assert isinstance(client.receive_apdu(server.handle(client.associate(), NOW)), Associated)
    response = server.handle(GetRequestNormal(OBJECT_LIST).to_bytes(), NOW)
    assert response == GetResponseNormal(DataAccessResult.OTHER_REASON).to_bytes()


# ====================================================================== --no-get-with-list
def test_no_get_with_list_refuses_and_the_daemon_client_falls_back(model: MeterModel) -> None:
    server = make_server(model, get_with_list=False)
    client = associate(server)
    assert not client.supports_with_list
    assert not server.conformance & Conformance.MULTIPLE_REFERENCES
    request = GetRequestWithList.of(ENERGY, ENERGY_SU).to_bytes()
    assert server.handle(request, NOW) == exception(
        StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.SERVICE_NOT_SUPPORTED)
    # A client that sends it anyway (pretending the meter offered it) falls back.
    client.conformance |= Conformance.MULTIPLE_REFERENCES
    refusal = client.receive_apdu(server.handle(client.get([ENERGY, ENERGY_SU]), NOW))
    assert isinstance(refusal, WithListRefused)
    client.conformance &= ~Conformance.MULTIPLE_REFERENCES
    assert get(server, client, ENERGY)[0].results == (Data.uint32(123456),)
    info = Meter(model).read(15, OBJECT_LIST.instance_id, 5, now=NOW,
                             association=server.association_view)
    assert isinstance(info, Data)
    conformance = info.as_items()[0].value
    assert isinstance(conformance, BitString)
    assert conformance.data == int(SIM_CONFORMANCE & ~Conformance.MULTIPLE_REFERENCES
                                   ).to_bytes(3, "big")


# ====================================================================== SET, ACTION, errors
def test_set_and_action_are_denied(model: MeterModel) -> None:
    server = make_server(model)
    associate(server)

    def set_(descriptor: CosemAttributeDescriptor) -> DataAccessResult:
        response = server.handle(SetRequestNormal(descriptor, Data.uint32(1)).to_bytes(), NOW)
        return SetResponseNormal.from_bytes(response).result

    def action(class_id: int, obis: Obis, method: int) -> ActionResult:
        request = ActionRequestNormal(CosemMethodDescriptor(class_id, obis, method))
        return ActionResponseNormal.from_bytes(server.handle(request.to_bytes(), NOW)).result

    assert set_(ENERGY) is DataAccessResult.READ_WRITE_DENIED
    assert set_(UNKNOWN) is DataAccessResult.OBJECT_UNDEFINED
    assert set_(CosemAttributeDescriptor(3, ENERGY.instance_id, 9)) is (
        DataAccessResult.OBJECT_UNDEFINED)
    assert action(3, ENERGY.instance_id, 1) is ActionResult.READ_WRITE_DENIED
    assert action(3, ENERGY.instance_id, 2) is ActionResult.OBJECT_UNDEFINED
    assert action(8, Obis(0, 0, 1, 0, 0, 255), 6) is ActionResult.READ_WRITE_DENIED
    assert action(3, UNKNOWN.instance_id, 1) is ActionResult.OBJECT_UNDEFINED


def test_services_not_negotiated_unknown_or_malformed(model: MeterModel) -> None:
    server = make_server(model, max_pdu=64)
    client = LnClient(conformance=Conformance.GET)
    client.receive_apdu(server.handle(client.associate(), NOW))
    not_supported = exception(StateError.SERVICE_NOT_ALLOWED,
                              ExceptionServiceError.SERVICE_NOT_SUPPORTED)
    assert server.handle(SetRequestNormal(ENERGY, Data.uint32(1)).to_bytes(), NOW) == (
        not_supported)
    assert server.handle(GetRequestWithList.of(ENERGY, ENERGY).to_bytes(), NOW) == not_supported
    selective = GetRequestNormal(ENERGY, SelectiveAccessDescriptor(1, Data.null()))
    assert server.handle(selective.to_bytes(), NOW) == not_supported
    with_selection = GetRequestWithList((CosemAttributeDescriptorWithSelection(
        ENERGY, SelectiveAccessDescriptor(2, Data.null())),))
    assert server.handle(with_selection.to_bytes(), NOW) == not_supported
    unknown = exception(StateError.SERVICE_UNKNOWN, ExceptionServiceError.SERVICE_NOT_SUPPORTED)
    assert server.handle(bytes.fromhex("C80A30000000"), NOW) == unknown  # glo-get-request
    assert server.handle(bytes.fromhex("C104C1"), NOW) == unknown  # SET with-list
    assert server.handle(bytes.fromhex("61"), NOW) == unknown  # an AARE sent to the meter
    malformed = exception(StateError.SERVICE_UNKNOWN, ExceptionServiceError.OTHER_REASON)
    assert server.handle(GetRequestNormal(ENERGY).to_bytes()[:-2], NOW) == malformed
    assert server.handle(b"", NOW) == malformed
    too_long = GetRequestWithList.of(*[ENERGY] * 8).to_bytes()
    assert len(too_long) > 64
    assert server.handle(too_long, NOW) == exception(
        StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.PDU_TOO_LONG)


@settings(max_examples=200, deadline=None)
@given(apdu=st.binary(max_size=80), associated=st.booleans())
def test_any_bytes_get_a_decodable_answer(apdu: bytes, associated: bool) -> None:
    server = MeterServer(Meter(BUNDLED))
    if associated:
        server.handle(aarq(), NOW)
    response = server.handle(apdu, NOW)
    decode_apdu(response)  # never raises: every answer is a well-formed APDU


@settings(max_examples=200, deadline=None)
@given(prefix=st.sampled_from([b"\xc0\x01", b"\xc0\x02", b"\xc0\x03", b"\xc1\x01", b"\xc3\x01",
                                b"\x60", b"\x62"]),
       rest=st.binary(max_size=60))
def test_fuzz_known_request_heads(prefix: bytes, rest: bytes) -> None:
    server = MeterServer(Meter(BUNDLED))
    server.handle(aarq(), NOW)
    decode_apdu(server.handle(prefix + rest, NOW))


def test_server_options_are_checked() -> None:
    with pytest.raises(LocalProtocolError):
        ServerOptions(max_pdu=11)
    with pytest.raises(LocalProtocolError):
        ServerOptions(client_sap=200)


def test_association_view_reflects_the_options(model: MeterModel) -> None:
    server = make_server(model, max_pdu=300, client_sap=32, server_sap=17)
    assert server.association_view == AssociationView(32, 17, int(SIM_CONFORMANCE), 300, 300, 6)


# ====================================================================== links in memory
def drain_hdlc_client(conn: hdlc.HdlcClientConnection) -> list[hdlc.Event]:
    events = []
    while (event := conn.next_event()) is not hdlc_frame.NEED_DATA:
        events.append(event)
    return events


def pump(link: HdlcLink | WrapperLink, server: MeterServer, data: bytes) -> bytes:
    """What the simulator's I/O loop does with one chunk from the socket."""
    link.receive_data(data)
    out = bytearray()
    while (event := link.next_event()) is not hdlc_frame.NEED_DATA:
        out += link.data_to_send()
        if isinstance(event, ApduReceived):
            out += link.send_apdu(server.handle(event.apdu, NOW))
        else:
            assert isinstance(event, Connected | Disconnected)
            server.reset()
    return bytes(out + link.data_to_send())


def test_hdlc_link_serves_the_daemon_client_with_segmentation(model: MeterModel) -> None:
    address = hdlc_frame.encode_server_address(1, 17, 2)
    link = HdlcLink.meter(address, 16, max_info=32, max_apdu_size=2048)
    server = MeterServer(Meter(model))
    conn = hdlc.HdlcClientConnection(16, address, max_info_tx=128, max_info_rx=128)
    client = LnClient(max_receive_pdu_size=256)

    def exchange(frame: bytes) -> list[hdlc.Event]:
        events: list[hdlc.Event] = []
        out = frame
        while out:
            # Garbage between frames costs nothing.
            conn.receive_data(pump(link, server, b"\x00\x7e\x7e" + out))
            events += drain_hdlc_client(conn)
            out = conn.data_to_send()
        return events

    (connected,) = exchange(conn.connect())
    assert isinstance(connected, hdlc.Connected)
    assert connected.params.max_info_rx == 32 and connected.params.max_info_tx == 32
    (aare,) = exchange(conn.send_apdu(client.associate()))
    assert isinstance(aare, hdlc.ApduReceived)
    assert isinstance(client.receive_apdu(aare.apdu), Associated)
    request = client.get([OBJECT_LIST])
    while True:
        (answer,) = exchange(conn.send_apdu(request))
        assert isinstance(answer, hdlc.ApduReceived)
        event = client.receive_apdu(answer.apdu)
        if isinstance(event, SendApdu):
            request = event.apdu
            continue
        assert isinstance(event, GetComplete)
        break
    assert event.results[0] == Meter(model).read(
        15, OBJECT_LIST.instance_id, 2, now=NOW, association=server.association_view)
    (down,) = exchange(conn.disconnect())
    assert isinstance(down, hdlc.Disconnected) and down.reason == "UA"
    assert server.state is AssociationState.NON_ASSOCIATED


def test_hdlc_link_ignores_other_client_addresses(model: MeterModel) -> None:
    address = hdlc_frame.encode_server_address(1, 1, 2)
    link = HdlcLink.meter(address, 16, max_info=128, max_apdu_size=2048)
    server = MeterServer(Meter(model))
    stranger = hdlc.HdlcClientConnection(1, address)
    assert pump(link, server, stranger.connect()) == b""
    assert link.ignored_frames == 1
    other_meter = hdlc.HdlcClientConnection(16, hdlc_frame.encode_server_address(1, 2, 2))
    assert pump(link, server, other_meter.connect()) == b""
    ours = hdlc.HdlcClientConnection(16, address)
    ours.receive_data(pump(link, server, ours.connect()))
    assert isinstance(drain_hdlc_client(ours)[0], hdlc.Connected)


def test_wrapper_link_serves_and_drops_foreign_wports(model: MeterModel) -> None:
    link = WrapperLink.meter(1, 16, max_apdu_size=2048)
    server = MeterServer(Meter(model))
    ours = wrapper.WrapperConnection(16, 1)
    stranger = wrapper.WrapperConnection(1, 1)
    client = LnClient()
    assert pump(link, server, stranger.send_apdu(client.associate())) == b""
    assert link.ignored_frames == 1
    client = LnClient()
    ours.receive_data(pump(link, server, ours.send_apdu(client.associate())))
    reply = ours.next_event()
    assert isinstance(reply, wrapper.ApduReceived)
    assert isinstance(client.receive_apdu(reply.apdu), Associated)
    # Two requests in one TCP segment are answered in order.
    first, second = client.get([ENERGY]), None
    chunk = ours.send_apdu(first) + ours.send_apdu(GetRequestNormal(ENERGY_SU).to_bytes())
    ours.receive_data(pump(link, server, chunk))
    answers = []
    while (event := ours.next_event()) is not wrapper.NEED_DATA:
        assert isinstance(event, wrapper.ApduReceived)
        answers.append(decode_apdu(event.apdu))
    assert answers == [GetResponseNormal(Data.uint32(123456), 0xC1),
                       GetResponseNormal(Data.structure(Data.int8(1), Data.enum(30)))]
    assert second is None
    with pytest.raises(DecodeError):
        pump(link, server, b"\x00\x02\x00\x10\x00\x01\x00\x01\x00")  # version 2: out of step


def test_with_list_response_decodes_as_with_list(model: MeterModel) -> None:
    server = make_server(model)
    associate(server)
    response = decode_apdu(server.handle(GetRequestWithList.of(ENERGY, UNKNOWN).to_bytes(), NOW))
    assert response == GetResponseWithList((Data.uint32(123456),
                                            DataAccessResult.OBJECT_UNDEFINED))


HDLC_ADDRESS = hdlc_frame.encode_server_address(1, 1, 2)
_GOOD = hdlc.HdlcClientConnection(16, HDLC_ADDRESS)
SNRM = _GOOD.connect()


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.one_of(st.binary(max_size=60), st.just(SNRM),
                                 st.sampled_from([b"\x7e", b"\x7e\xa0", SNRM[:7]])),
                       max_size=8))
def test_fuzz_hdlc_link_never_raises(chunks: list[bytes]) -> None:
    link = HdlcLink.meter(HDLC_ADDRESS, 16, max_info=32, max_apdu_size=2048)
    server = MeterServer(Meter(BUNDLED))
    for chunk in chunks:
        pump(link, server, chunk)


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.binary(max_size=40), max_size=6))
def test_fuzz_wrapper_link_raises_only_decode_error(chunks: list[bytes]) -> None:
    link = WrapperLink.meter(1, 16, max_apdu_size=2048)
    server = MeterServer(Meter(BUNDLED))
    header = wrapper.WrapperHeader(16, 1, 0).to_bytes()[:6]
    with contextlib.suppress(DecodeError):
        for chunk in chunks:
            # Well-formed headers with random APDUs, and random bytes.
            pump(link, server, header + len(chunk).to_bytes(2, "big") + chunk)
            pump(link, server, chunk)
