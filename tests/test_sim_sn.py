"""dlms-sim with SN referencing (``--referencing SN``): the short names of the model, the
pure MeterServer driven in memory by dlmsd's own SnClient (association, READ of one and
several variables, in blocks, errors, WRITE), the links in memory, and loopback TCP over
HDLC and the wrapper."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sim_tcp import TcpMeterClient, port, simulator

from dlmsd.errors import AssociationRejected, ConfigError, LocalProtocolError
from dlmsd.protocol import hdlc, hdlc_frame
from dlmsd.protocol.acse import (
    Aare,
    Aarq,
    AcseServiceUser,
    ApplicationContextName,
    AssociationResult,
    Rlre,
    Rlrq,
)
from dlmsd.protocol.axdr import Data
from dlmsd.protocol.client import (
    Associated,
    GetComplete,
    LnClient,
    Released,
    SendApdu,
    WithListRefused,
)
from dlmsd.protocol.link import ApduReceived, HdlcLink, WrapperLink
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.sn import (
    BlockNumberAccess,
    DataBlockResult,
    ParameterizedAccess,
    ReadDataBlockAccess,
    ReadRequest,
    ReadResponse,
    UnconfirmedWriteRequest,
    VariableName,
    WriteRequest,
    WriteResponse,
    attribute_short_name,
    decode_sn_apdu,
    method_short_name,
    parse_sn_object_list,
)
from dlmsd.protocol.sn_client import SN_CLIENT_CONFORMANCE, SnClient
from dlmsd.protocol.xdlms import (
    ConfirmedServiceError,
    ConfirmedServiceErrorChoice,
    Conformance,
    CosemAttributeDescriptor,
    DataAccessResult,
    ExceptionResponse,
    ExceptionServiceError,
    GetDataResult,
    GetRequestNormal,
    InitiateRequest,
    ServiceErrorType,
    StateError,
)
from dlmsd.sim import model as model_module
from dlmsd.sim.cli import main
from dlmsd.sim.model import (
    ASSOCIATION_SN,
    CLASSES,
    Meter,
    MeterModel,
    bundled_model_path,
    load_model,
    parse_model,
    short_name_span,
)
from dlmsd.sim.server import (
    SIM_SN_CONFORMANCE,
    AssociationState,
    MeterServer,
    Referencing,
    ServerOptions,
)

NOW = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
BUNDLED = load_model(bundled_model_path())
LAYOUT = BUNDLED.short_names


def base(obis: str) -> int:
    found = LAYOUT.base_name(Obis.parse(obis))
    assert found is not None, obis
    return found


ENERGY = base("1.0.1.8.0.255") + 8  # register value
ENERGY_SU = base("1.0.1.8.0.255") + 16  # scaler_unit
ENERGY_RESET = method_short_name(base("1.0.1.8.0.255"), 3, 1)
SERIAL = base("0.0.96.1.0.255") + 8
OBJECT_LIST = 0xFA08
NOTHING = 0x1238  # between objects: addresses nothing


# ====================================================================== short names
def test_bundled_base_names() -> None:
    assert LAYOUT.objects[0] == (0xFA00, LAYOUT.association)
    assert LAYOUT.association.cls is ASSOCIATION_SN
    assert LAYOUT.association.cls.version == 2
    assert base("0.0.42.0.0.255") == 0xFD00  # the Blue Book's reserved base name
    assert [(hex(b), str(o.logical_name)) for b, o in LAYOUT.objects[2:6]] == [
        ("0x100", "0.0.96.1.0.255"), ("0x120", "0.0.96.1.1.255"), ("0x140", "1.0.0.2.0.255"),
        ("0x160", "0.0.1.0.0.255")]
    assert base("1.0.1.8.0.255") == 0x0200  # after the clock's 0x90 short names
    ranges = sorted((b, b + short_name_span(o.cls)) for b, o in LAYOUT.objects)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(ranges))
    assert {str(o.logical_name) for _, o in LAYOUT.objects} == {
        str(o.logical_name) for o in BUNDLED.objects}
    assert all(b % 0x20 == 0 for b, _ in LAYOUT.objects)


@pytest.mark.parametrize(("cls", "span"), [("data", 0x10), ("register", 0x30),
                                           ("extended-register", 0x40),
                                           ("demand-register", 0x58), ("clock", 0x90)])
def test_short_name_spans_leave_room_for_methods(cls: str, span: int) -> None:
    assert short_name_span(CLASSES[cls]) == span
    assert short_name_span(ASSOCIATION_SN) == 0x60  # reply_to_HLS_authentication at 0x58


def _data(obis: str, **extra: Any) -> dict[str, Any]:
    return {"class": "data", "obis": obis, "value": {"type": "unsigned", "value": 1}, **extra}


def test_base_name_overrides_and_automatic_placement() -> None:
    model = parse_model({"objects": [
        {"class": "register", "obis": "1.0.1.8.0.255", "value": {"type": "uint32", "value": 5}},
        _data("0.0.96.1.0.255", base_name=0x0100),
        _data("0.0.42.0.0.255", base_name="0x2000"),
        _data("0.0.96.1.1.255"),
    ]}, "test.json")
    layout = model.short_names
    placed = {str(o.logical_name): b for b, o in layout.objects}
    # 0x0100 is taken by the override: the register goes to the next free 0x20 step.
    assert placed == {"0.0.40.0.0.255": 0xFA00, "1.0.1.8.0.255": 0x0120,
                      "0.0.96.1.0.255": 0x0100, "0.0.42.0.0.255": 0x2000,
                      "0.0.96.1.1.255": 0x0160}
    meter = Meter(model)
    assert meter.read_short_name(0x0128, now=NOW, association=_VIEW) == Data.uint32(5)
    assert meter.read_short_name(0x2008, now=NOW, association=_VIEW) == Data.uint8(1)
    object_list = meter.read_short_name(OBJECT_LIST, now=NOW, association=_VIEW)
    assert isinstance(object_list, Data)
    assert parse_sn_object_list(object_list)[Obis(0, 0, 42, 0, 0, 255)] == (0x2000, 1)


def test_base_name_problems_name_their_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse_model({"objects": [
            _data("0.0.96.1.0.255", base_name=0x0104),
            _data("0.0.96.1.1.255", base_name=0x2000),
            {"class": "register", "obis": "1.0.1.8.0.255", "base_name": 0x2008,
             "value": {"type": "uint32", "value": 5}},
            _data("0.0.96.1.2.255", base_name=0xFA50),
            {"class": "clock", "obis": "0.0.1.0.0.255", "time": "2024-06-01T12:00:00Z",
             "base_name": 0xFF80},
            _data("0.0.96.1.3.255", base_name=True),
            _data("0.0.96.1.4.255", base_name="two"),
        ]}, "test.json")
    text = "\n".join(info.value.problems)
    for fragment in (
        "$.objects[0].base_name: 260 is not a multiple of 8",
        "$.objects[2].base_name: 0x2008..0x2037 overlaps 0x2000..0x200F of 0.0.96.1.1.255",
        "$.objects[3].base_name: 0xFA50..0xFA5F overlaps 0xFA00..0xFA5F of the association SN",
        "$.objects[4].base_name: 65408 is not a multiple of 8 from 0 to 0xFF70 (a clock "
        "takes 0x90 short names)",
        "$.objects[5].base_name: true is not a short name",
        "$.objects[6].base_name: \"two\" is not a short name",
    ):
        assert fragment in text, fragment
    assert len(info.value.problems) == 6


def test_automatic_base_names_stop_below_the_reserved_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert model_module.AUTO_BASE_NAME_END == 0xFA00
    monkeypatch.setattr(model_module, "AUTO_BASE_NAME_END", 0x0200)  # 8 data objects
    objects = [_data(f"0.128.0.0.{n}.255") for n in range(8)]
    assert len(parse_model({"objects": objects}).short_names.objects) == 9
    with pytest.raises(ConfigError) as info:
        parse_model({"objects": [*objects, _data("0.129.0.0.0.255")]})
    assert info.value.problems == ["<model>: $.objects[8]: no room left for its short names "
                                   "below 0x0200 (give base_name)"]


_VIEW = MeterServer(Meter(BUNDLED), ServerOptions(referencing=Referencing.SN)).association_view


def sn_read(short_name: int) -> Data | DataAccessResult:
    return Meter(BUNDLED).read_short_name(short_name, now=NOW, association=_VIEW)


def test_association_sn_attributes() -> None:
    assert sn_read(0xFA00) == Data.octets(bytes([0, 0, 40, 0, 0, 255]))
    object_list = sn_read(OBJECT_LIST)
    assert isinstance(object_list, Data)
    first = object_list.as_items()[0]
    assert first == Data.structure(Data.int16(-1536), Data.uint16(12), Data.uint8(2),
                                   Data.octets(bytes([0, 0, 40, 0, 0, 255])))
    assert parse_sn_object_list(object_list) == {
        o.logical_name: (b, o.cls.class_id) for b, o in LAYOUT.objects}
    rights = sn_read(0xFA10)
    assert isinstance(rights, Data)
    assert len(rights.as_items()) == len(LAYOUT.objects)
    index = next(i for i, (b, _) in enumerate(LAYOUT.objects) if b == base("1.0.1.8.0.255"))
    register_rights = rights.as_items()[index]
    name, attributes, methods = register_rights.as_items()
    assert name == Data.int16(0x0200)
    assert attributes.as_items() == tuple(
        Data.structure(Data.int8(i), Data.enum(1), Data.null()) for i in (1, 2, 3))
    assert methods.as_items() == (Data.structure(Data.int8(1), Data.enum(0)),)
    assert sn_read(0xFA18) == Data.octets(bytes(6))  # security_setup_reference
    assert sn_read(0xFA20) is DataAccessResult.READ_WRITE_DENIED  # method 1
    assert sn_read(0xFA58) is DataAccessResult.READ_WRITE_DENIED  # reply_to_HLS
    assert sn_read(0xFA60) is DataAccessResult.OBJECT_UNDEFINED


def test_every_attribute_reads_the_same_by_short_name_and_by_logical_name() -> None:
    meter = Meter(BUNDLED)
    for base_name, obj in LAYOUT.objects[1:]:
        for attribute in range(1, len(obj.cls.attributes) + 1):
            short_name = attribute_short_name(base_name, attribute)
            assert meter.read_short_name(short_name, now=NOW, association=_VIEW) == (
                meter.read(obj.cls.class_id, obj.logical_name, attribute, now=NOW,
                           association=_VIEW)), (obj.logical_name, attribute)
        for method in range(1, len(obj.cls.methods) + 1):
            name = method_short_name(base_name, obj.cls.class_id, method)
            assert meter.read_short_name(name, now=NOW, association=_VIEW) is (
                DataAccessResult.READ_WRITE_DENIED)


# ====================================================================== association
def make_server(model: MeterModel = BUNDLED, **options: Any) -> MeterServer:
    return MeterServer(Meter(model), ServerOptions(referencing=Referencing.SN, **options))


def associate(server: MeterServer, max_pdu: int = 0xFFFF,
              conformance: Conformance = SN_CLIENT_CONFORMANCE) -> SnClient:
    """Associate with dlmsd's own SN client (the daemon's application layer)."""
    client = SnClient(max_receive_pdu_size=max_pdu, conformance=conformance)
    event = client.receive_apdu(server.handle(client.associate(), NOW))
    assert isinstance(event, Associated)
    return client


def read(server: MeterServer, client: SnClient, *names: int | ParameterizedAccess,
         limit: int | None = None) -> tuple[GetComplete | WithListRefused, int]:
    """READ through the daemon's client, following blocks; returns the event and the
    number of response APDUs (each checked against ``limit``)."""
    request = client.read(list(names))
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
        assert isinstance(event, GetComplete | WithListRefused)
        return event, responses


def values(server: MeterServer, client: SnClient, *names: int,
           limit: int | None = None) -> tuple[GetDataResult, ...]:
    event, _ = read(server, client, *names, limit=limit)
    assert isinstance(event, GetComplete)
    return event.results


def test_sn_aarq_is_accepted_with_vaa_name_and_sn_conformance() -> None:
    server = make_server(max_pdu=512)
    aarq = Aarq(application_context_name=ApplicationContextName.SHORT_NAME_REFERENCING_NO_CIPHERING,
                user_information=InitiateRequest(proposed_conformance=Conformance(0xFFFFFF),
                                                 client_max_receive_pdu_size=200))
    aare = Aare.from_bytes(server.handle(aarq.to_bytes(), NOW))
    assert aare.application_context_name is (
        ApplicationContextName.SHORT_NAME_REFERENCING_NO_CIPHERING)
    initiate = aare.check()
    assert initiate.vaa_name == 0xFA00
    assert initiate.negotiated_conformance == SIM_SN_CONFORMANCE == (
        Conformance.READ | Conformance.WRITE | Conformance.UNCONFIRMED_WRITE
        | Conformance.MULTIPLE_REFERENCES | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
        | Conformance.PARAMETERIZED_ACCESS)
    assert initiate.server_max_receive_pdu_size == 512
    assert server.response_limit == 200
    client = associate(make_server())
    assert client.conformance == SN_CLIENT_CONFORMANCE & SIM_SN_CONFORMANCE
    assert client.vaa_name == 0xFA00 and client.supports_with_list


@pytest.mark.parametrize(("referencing", "proposed"), [
    (Referencing.SN, ApplicationContextName.LOGICAL_NAME_REFERENCING_NO_CIPHERING),
    (Referencing.SN, ApplicationContextName.SHORT_NAME_REFERENCING_WITH_CIPHERING),
    (Referencing.LN, ApplicationContextName.SHORT_NAME_REFERENCING_NO_CIPHERING),
])
def test_the_other_context_is_rejected(referencing: Referencing,
                                       proposed: ApplicationContextName) -> None:
    server = MeterServer(Meter(BUNDLED), ServerOptions(referencing=referencing))
    aarq = Aarq(application_context_name=proposed, user_information=InitiateRequest())
    aare = Aare.from_bytes(server.handle(aarq.to_bytes(), NOW))
    assert aare.result is AssociationResult.REJECTED_PERMANENT
    assert aare.diagnostic is AcseServiceUser.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED
    assert aare.application_context_name is server.options.context
    assert server.state is AssociationState.NON_ASSOCIATED


def test_daemon_clients_of_the_other_referencing_are_rejected() -> None:
    ln = LnClient()
    with pytest.raises(AssociationRejected):
        ln.receive_apdu(make_server().handle(ln.associate(), NOW))
    sn = SnClient()
    with pytest.raises(AssociationRejected):
        sn.receive_apdu(MeterServer(Meter(BUNDLED)).handle(sn.associate(), NOW))


def test_sn_aarq_with_ln_services_only_is_incompatible() -> None:
    server = make_server()
    aarq = Aarq(application_context_name=ApplicationContextName.SHORT_NAME_REFERENCING_NO_CIPHERING,
                user_information=InitiateRequest(proposed_conformance=Conformance.GET))
    aare = Aare.from_bytes(server.handle(aarq.to_bytes(), NOW))
    assert aare.result is AssociationResult.REJECTED_PERMANENT
    error = aare.user_information
    assert isinstance(error, ConfirmedServiceError)
    assert (int(error.service), int(error.error), error.value) == (1, 6, 2)


def test_release_and_services_of_the_wrong_state_or_referencing() -> None:
    server = make_server()
    refused = ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                                ExceptionServiceError.OPERATION_NOT_POSSIBLE).to_bytes()
    assert server.handle(ReadRequest.of(ENERGY).to_bytes(), NOW) == refused
    client = associate(server)
    unknown = ExceptionResponse(StateError.SERVICE_UNKNOWN,
                                ExceptionServiceError.SERVICE_NOT_SUPPORTED).to_bytes()
    descriptor = CosemAttributeDescriptor(3, Obis(1, 0, 1, 8, 0, 255), 2)
    assert server.handle(GetRequestNormal(descriptor).to_bytes(), NOW) == unknown
    assert values(server, client, ENERGY) == (Data.uint32(123456),)
    released = client.receive_apdu(server.handle(client.release(), NOW))
    assert isinstance(released, Released)
    assert server.state is AssociationState.NON_ASSOCIATED
    assert server.handle(ReadRequest.of(ENERGY).to_bytes(), NOW) == refused
    assert isinstance(Rlre.from_bytes(server.handle(Rlrq().to_bytes(), NOW)), Rlre)
    # An LN meter does not know READ in its association.
    ln_server = MeterServer(Meter(BUNDLED))
    ln_server.handle(LnClient().associate(), NOW)
    assert ln_server.handle(ReadRequest.of(ENERGY).to_bytes(), NOW) == unknown


# ====================================================================== READ
def test_read_one_and_several_variables() -> None:
    server = make_server()
    client = associate(server)
    assert values(server, client, ENERGY) == (Data.uint32(123456),)
    event, responses = read(server, client, ENERGY, NOTHING, ENERGY_SU, SERIAL, ENERGY_RESET,
                            0xFD08)
    assert responses == 1
    assert isinstance(event, GetComplete)
    assert event.results == (Data.uint32(123456), DataAccessResult.OBJECT_UNDEFINED,
                             Data.structure(Data.int8(1), Data.enum(30)),
                             Data.octets(b"12345678"), DataAccessResult.READ_WRITE_DENIED,
                             Data.octets(b"SIM0000012345678"))
    # The answer on the wire: one result per variable, in order (Green Book ReadResponse).
    raw = server.handle(ReadRequest.of(ENERGY, NOTHING).to_bytes(), NOW)
    assert raw == bytes.fromhex("0C02 00 060001E240 01 04".replace(" ", ""))


def test_object_list_in_blocks_at_max_pdu_64() -> None:
    server = make_server()
    client = associate(server, max_pdu=64)
    (object_list,) = values(server, client, OBJECT_LIST, limit=64)
    assert object_list == sn_read(OBJECT_LIST)
    assert isinstance(object_list, Data)
    assert len(parse_sn_object_list(object_list)) == len(BUNDLED.objects)
    _, responses = read(server, client, OBJECT_LIST, limit=64)
    assert responses > 12  # ~780 bytes in blocks of 57


def test_server_max_pdu_caps_the_blocks_too() -> None:
    server = make_server(max_pdu=100)
    client = associate(server)  # the client could take 65535
    event, responses = read(server, client, OBJECT_LIST, 0xFA10, limit=100)
    assert isinstance(event, GetComplete)
    assert event.results == (sn_read(OBJECT_LIST), sn_read(0xFA10))
    assert responses > 20


def test_several_variables_in_blocks() -> None:
    server = make_server()
    client = associate(server, max_pdu=64)
    names = [base(f"0.128.128.0.{n}.255") + 8 for n in range(25)]
    event, responses = read(server, client, *names, OBJECT_LIST, NOTHING, limit=64)
    assert isinstance(event, GetComplete)
    assert event.results == tuple(sn_read(n) for n in [*names, OBJECT_LIST, NOTHING])
    assert responses > 15


def test_block_numbers_are_checked() -> None:
    server = make_server()
    associate(server, max_pdu=128)

    def ack(number: int) -> Any:
        request = ReadRequest((BlockNumberAccess(number),)).to_bytes()
        (result,) = ReadResponse.from_bytes(server.handle(request, NOW)).results
        return result

    first = decode_sn_apdu(server.handle(ReadRequest.of(OBJECT_LIST).to_bytes(), NOW))
    assert isinstance(first, ReadResponse)
    (block1,) = first.results
    assert isinstance(block1, DataBlockResult)
    assert (block1.block_number, block1.last_block) == (1, False)
    assert block1.raw_data[:3] == bytes.fromhex("010001")  # one result, data, array
    block2 = ack(1)
    assert isinstance(block2, DataBlockResult) and block2.block_number == 2
    assert ack(1) == block2  # block 2 was lost: acknowledging 1 again resends it
    assert ack(7) is DataAccessResult.DATA_BLOCK_NUMBER_INVALID
    assert ack(2) is DataAccessResult.NO_LONG_GET_IN_PROGRESS
    # To the end, then beyond it; a new READ ends a long one.
    server.handle(ReadRequest.of(OBJECT_LIST).to_bytes(), NOW)
    number, block = 1, block1
    while not block.last_block:
        block = ack(number)
        assert isinstance(block, DataBlockResult)
        number += 1
    assert ack(number) is DataAccessResult.NO_LONG_GET_IN_PROGRESS
    server.handle(ReadRequest.of(OBJECT_LIST).to_bytes(), NOW)
    server.handle(ReadRequest.of(ENERGY).to_bytes(), NOW)
    assert ack(1) is DataAccessResult.NO_LONG_GET_IN_PROGRESS


def test_without_block_transfer_an_oversize_answer_is_other_reason() -> None:
    server = make_server()
    client = associate(server, max_pdu=128, conformance=Conformance.READ)
    assert not client.conformance & Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
    assert values(server, client, OBJECT_LIST) == (DataAccessResult.OTHER_REASON,)


def test_parameterized_access() -> None:
    server = make_server()
    client = associate(server)
    event, _ = read(server, client, ParameterizedAccess(ENERGY, 1, Data.null()),
                    ParameterizedAccess(ENERGY_RESET, 0, Data.int8(0)),
                    ParameterizedAccess(NOTHING, 1, Data.null()), ENERGY)
    assert isinstance(event, GetComplete)
    assert event.results == (DataAccessResult.OTHER_REASON, DataAccessResult.READ_WRITE_DENIED,
                             DataAccessResult.OBJECT_UNDEFINED, Data.uint32(123456))
    # Not negotiated: the request is refused as a whole.
    associate(server, conformance=Conformance.READ)
    request = ReadRequest((ParameterizedAccess(ENERGY, 1, Data.null()),)).to_bytes()
    assert server.handle(request, NOW) == ExceptionResponse(
        StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.SERVICE_NOT_SUPPORTED).to_bytes()


def test_block_accesses_in_a_request_and_malformed_requests() -> None:
    server = make_server()
    associate(server)
    request = ReadRequest((VariableName(ENERGY), BlockNumberAccess(1),
                           ReadDataBlockAccess(True, 1, b"\x01"))).to_bytes()
    assert ReadResponse.from_bytes(server.handle(request, NOW)).results == (
        Data.uint32(123456), DataAccessResult.OTHER_REASON, DataAccessResult.OTHER_REASON)
    malformed = ExceptionResponse(StateError.SERVICE_UNKNOWN,
                                  ExceptionServiceError.OTHER_REASON).to_bytes()
    assert server.handle(b"\x05\x00", NOW) == malformed  # no variable
    assert server.handle(ReadRequest.of(ENERGY).to_bytes()[:-1], NOW) == malformed
    assert server.handle(b"\x06\x00\x00", NOW) == malformed


# ====================================================================== --no-get-with-list
def test_no_get_with_list_refuses_several_variables() -> None:
    server = make_server(get_with_list=False)
    client = associate(server)
    assert not client.supports_with_list
    refusal = ConfirmedServiceError(ConfirmedServiceErrorChoice.READ, ServiceErrorType.SERVICE,
                                    2).to_bytes()
    assert refusal == bytes.fromhex("0E050302")  # read: service service-unsupported
    assert server.handle(ReadRequest.of(ENERGY, ENERGY_SU).to_bytes(), NOW) == refusal
    write = WriteRequest((VariableName(ENERGY), VariableName(SERIAL)),
                         (Data.uint32(1), Data.uint32(2))).to_bytes()
    assert server.handle(write, NOW) == bytes.fromhex("0E060302")
    # A client that sends several anyway (pretending the meter offered it) falls back.
    client.conformance |= Conformance.MULTIPLE_REFERENCES
    event, _ = read(server, client, ENERGY, ENERGY_SU)
    assert isinstance(event, WithListRefused)
    client.conformance &= ~Conformance.MULTIPLE_REFERENCES
    assert values(server, client, ENERGY) == (Data.uint32(123456),)


# ====================================================================== WRITE
def test_write_is_denied_and_unconfirmed_write_is_dropped() -> None:
    server = make_server()
    associate(server)
    request = WriteRequest((VariableName(ENERGY), VariableName(NOTHING),
                            VariableName(ENERGY_RESET), ParameterizedAccess(SERIAL, 1, Data.null()),
                            BlockNumberAccess(1)),
                           (Data.uint32(1),) * 5)
    response = decode_sn_apdu(server.handle(request.to_bytes(), NOW))
    assert response == WriteResponse((
        DataAccessResult.READ_WRITE_DENIED, DataAccessResult.OBJECT_UNDEFINED,
        DataAccessResult.READ_WRITE_DENIED, DataAccessResult.READ_WRITE_DENIED,
        DataAccessResult.OTHER_REASON))
    unconfirmed = UnconfirmedWriteRequest((VariableName(ENERGY),), (Data.uint32(1),))
    assert server.handle(unconfirmed.to_bytes(), NOW) == b""
    assert sn_read(ENERGY) == Data.uint32(123456)
    associate(server, conformance=Conformance.READ)
    assert server.handle(request.to_bytes(), NOW) == ExceptionResponse(
        StateError.SERVICE_NOT_ALLOWED, ExceptionServiceError.SERVICE_NOT_SUPPORTED).to_bytes()


@settings(max_examples=200, deadline=None)
@given(prefix=st.sampled_from([b"\x05", b"\x06", b"\x16", b"\x05\x01", b"\x05\x01\x05",
                                b"\x06\x01\x02", b"\x60", b"\xc0\x01", b""]),
       rest=st.binary(max_size=60), pdu=st.sampled_from([12, 64, 0xFFFF]))
def test_fuzz_any_request_gets_a_decodable_answer(prefix: bytes, rest: bytes, pdu: int) -> None:
    server = make_server()
    associate(server, max_pdu=pdu)
    response = server.handle(prefix + rest, NOW)
    if response:
        decode_sn_apdu(response)  # never raises: every answer is a well-formed APDU
        # AAREs and ExceptionResponses are not capped; a WriteResponse cannot be sent in
        # blocks.
        assert len(response) <= server.response_limit or response[0] in (0x61, 0xD8, 0x0D)
    else:
        assert (prefix + rest)[:1] == b"\x16"


def test_server_options_referencing_is_checked() -> None:
    with pytest.raises(LocalProtocolError, match="not LN or SN"):
        ServerOptions(referencing="SN")  # type: ignore[arg-type]
    assert ServerOptions(referencing=Referencing.SN, get_with_list=False).conformance == (
        SIM_SN_CONFORMANCE & ~Conformance.MULTIPLE_REFERENCES)


def test_cli_referencing_option() -> None:
    done = CliRunner().invoke(main, ["--wrapper-port", "0", "--referencing", "XN"])
    assert done.exit_code == 2 and "--referencing" in done.stderr
    assert "--referencing [ln|sn]" in CliRunner().invoke(main, ["--help"]).stdout.lower()


# ====================================================================== links in memory
def pump(link: HdlcLink | WrapperLink, server: MeterServer, data: bytes) -> bytes:
    """What the simulator's I/O loop does with one chunk (``b""``: acknowledge)."""
    link.receive_data(data)
    out = bytearray()
    while (event := link.next_event()) is not hdlc_frame.NEED_DATA:
        out += link.data_to_send()
        if isinstance(event, ApduReceived):
            response = server.handle(event.apdu, NOW)
            out += link.send_apdu(response) if response else link.acknowledge()
        else:
            server.reset()
    return bytes(out + link.data_to_send())


def test_hdlc_link_acknowledges_an_unconfirmed_write() -> None:
    address = hdlc_frame.encode_server_address(1, 1, 2)
    link = HdlcLink.meter(address, 16, max_info=128, max_apdu_size=2048)
    server = make_server()
    conn = hdlc.HdlcClientConnection(16, address)
    client = SnClient()

    def exchange(frame: bytes) -> list[hdlc.Event]:
        conn.receive_data(pump(link, server, frame))
        events = []
        while (event := conn.next_event()) is not hdlc_frame.NEED_DATA:
            events.append(event)
        return events

    assert isinstance(exchange(conn.connect())[0], hdlc.Connected)
    (aare,) = exchange(conn.send_apdu(client.associate()))
    assert isinstance(aare, hdlc.ApduReceived)
    assert isinstance(client.receive_apdu(aare.apdu), Associated)
    write = UnconfirmedWriteRequest((VariableName(ENERGY),), (Data.uint32(1),)).to_bytes()
    answer = pump(link, server, conn.send_apdu(write, confirmed=False))
    rr = hdlc_frame.Frame.from_bytes(answer)
    assert rr.control.type is hdlc_frame.FrameType.RR and rr.control.pf and not rr.information
    conn.receive_data(answer)
    assert conn.next_event() is hdlc_frame.NEED_DATA
    (reply,) = exchange(conn.send_apdu(client.read([ENERGY])))
    assert isinstance(reply, hdlc.ApduReceived)
    event = client.receive_apdu(reply.apdu)
    assert isinstance(event, GetComplete) and event.results == (Data.uint32(123456),)
    wrapper_link = WrapperLink.meter(1, 16, max_apdu_size=2048)
    assert wrapper_link.acknowledge() == b""


# ====================================================================== loopback TCP
class SnTcpClient(TcpMeterClient):
    """test_sim_tcp's client ends, with dlmsd's SnClient as the application layer."""

    def __init__(self, kind: str, tcp_port: int, *, max_pdu: int = 0xFFFF,
                 **kwargs: Any) -> None:
        super().__init__(kind, tcp_port, **kwargs)
        self.sn = SnClient(max_receive_pdu_size=max_pdu)

    async def open(self) -> Associated:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        if self.kind == "hdlc":
            event = await self._events(self.hdlc.connect())
            assert isinstance(event, hdlc.Connected), event
        associated = self.sn.receive_apdu(await self.request(self.sn.associate()))
        assert isinstance(associated, Associated)
        return associated

    async def read(self, *names: int) -> GetComplete:
        event = self.sn.receive_apdu(await self.request(self.sn.read(list(names))))
        while isinstance(event, SendApdu):
            event = self.sn.receive_apdu(await self.request(event.apdu))
        assert isinstance(event, GetComplete)
        return event

    async def close(self) -> None:
        try:
            released = self.sn.receive_apdu(await self.request(self.sn.release()))
            assert isinstance(released, Released)
            if self.kind == "hdlc":
                event = await self._events(self.hdlc.disconnect())
                assert isinstance(event, hdlc.Disconnected)
        finally:
            assert self.writer is not None
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def sn_client(kind: str, tcp_port: int, **kwargs: Any) -> AsyncIterator[SnTcpClient]:
    client = SnTcpClient(kind, tcp_port, **kwargs)
    await client.open()
    try:
        yield client
    finally:
        await client.close()


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
async def test_sn_over_tcp_with_segmentation_and_blocks(kind: str) -> None:
    async with simulator(referencing=Referencing.SN, max_pdu=128, max_info=32) as sim, \
            sn_client(kind, port(sim, kind)) as client:
        assert client.sn.server_max_receive_pdu_size == 128 and client.sn.vaa_name == 0xFA00
        before = client.responses
        event = await client.read(OBJECT_LIST)
        assert event.results == (sn_read(OBJECT_LIST),)
        assert client.responses - before > 6  # data-block-results, block by block
        names = [ENERGY, ENERGY_SU, SERIAL, base("1.0.32.7.0.255") + 8, NOTHING]
        event = await client.read(*names)
        assert event.results == tuple(sn_read(n) for n in names)
        assert event.results[3] == Data.uint16(2301)
