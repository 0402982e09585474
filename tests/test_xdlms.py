"""xDLMS GET/SET/ACTION APDUs, ExceptionResponse, decode_apdu and BlockReassembler.

Vector sources (each vector names one):

* SPODES: a real meter session (SPODES meter KPZ101000017410) logged in the test data
  of the PyPI package DLMS_Firmware_updater 0.2.0, found with the code index.
* U9N: u9n/dlms-cosem ``tests/test_xdlms/test_get.py`` / ``test_action.py`` (byte
  strings only; BSL code read for reference, nothing taken).
* GOCOSEM: milanbella/gocosem ``dlms_test.go`` - it gives the body after the
  invoke-id; the C4 0x / C0 03 tag, choice and invoke-id (C1) in front are ours.
* GURUX: bytes produced by gurux_dlms 1.0.203 in this venv (``GXDLMSClient.read``,
  ``readList``, ``write``, ``method``, ``receiverReady``).
* EMULATOR: ``D8 01 01`` as answered by a public C# meter emulator (code index).
* OURS: computed by us from the Green Book ASN.1 (said so where used).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsd.errors import DataAccessError, DecodeError, LocalProtocolError, RemoteProtocolError
from dlmsd.protocol.apdu import Apdu, decode_apdu, describe_apdu
from dlmsd.protocol.axdr import Data, decode_data_all, encode_data
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.xdlms import (
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    BlockReassembler,
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
    SelectiveAccessDescriptor,
    SetRequestNormal,
    SetResponseNormal,
    StateError,
    decode_get_data_result_list,
    invoke_id_and_priority,
)

REGISTER = CosemAttributeDescriptor(3, Obis(1, 0, 1, 8, 0, 255), 2)
HLS_REPLY = bytes.fromhex("2E244593CB559310DCC1E5DAF95C68E2")
HLS_RESULT = bytes.fromhex("C00358CF9C0CF4A6DAEA044D222D4C32")
DIGEST = bytes.fromhex("83C3B5C9F028F5671087392B3BDCB850")
GOCOSEM_BLOCK = bytes.fromhex("0932" + "01020304050607080910111213141516171819202122232425262728")


@dataclass(frozen=True)
class Vector:
    name: str
    source: str
    hex: str
    obj: Apdu
    text: str | None = None  # expected describe(), when checked

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.hex)


VECTORS = [
    Vector("get-normal-register", "GURUX read(Register 1.0.1.8.0.255, 2)",
           "C001C100030100010800FF0200", GetRequestNormal(REGISTER),
           "GET.req normal id=1 3/1.0.1.8.0.255/2"),
    Vector("get-normal-serial", "SPODES", "C001C100010000 2A0000FF0200".replace(" ", ""),
           GetRequestNormal(CosemAttributeDescriptor(1, Obis(0, 0, 42, 0, 0, 255), 2))),
    Vector("get-normal-u9n", "U9N", "C001C1000100002B0100FF0200",
           GetRequestNormal(CosemAttributeDescriptor(1, Obis(0, 0, 43, 1, 0, 255), 2))),
    Vector("get-next", "U9N", "C002C100000001", GetRequestNext(1),
           "GET.req next id=1 block=1"),
    Vector("get-with-list-u9n", "U9N",
           "C003C102000100002A0000FF0200000800000100 00FF0200".replace(" ", ""),
           GetRequestWithList.of(CosemAttributeDescriptor(1, Obis(0, 0, 42, 0, 0, 255), 2),
                                 CosemAttributeDescriptor(8, Obis(0, 0, 1, 0, 0, 255), 2)),
           "GET.req with-list id=1 [1/0.0.42.0.0.255/2, 8/0.0.1.0.0.255/2]"),
    Vector("get-with-list-gocosem", "GOCOSEM body",
           "C003C102000100008000 00FF0200000100008001 00FF0200".replace(" ", ""),
           GetRequestWithList.of(CosemAttributeDescriptor(1, Obis(0, 0, 128, 0, 0, 255), 2),
                                 CosemAttributeDescriptor(1, Obis(0, 0, 128, 1, 0, 255), 2))),
    Vector("get-response-u32", "U9N", "C401C1000600001391",
           GetResponseNormal(Data.uint32(5009)),
           "GET.res normal id=1 double-long-unsigned 5009"),
    Vector("get-response-error", "U9N", "C401C10101",
           GetResponseNormal(DataAccessResult.HARDWARE_FAULT),
           "GET.res normal id=1 hardware-fault"),
    Vector("get-response-octets", "SPODES",
           "C401C100090F4B505A313031303030303137343130",
           GetResponseNormal(Data.octets(b"KPZ101000017410"))),
    Vector("get-response-visible", "SPODES",
           "C401C1000A12303030385057524D5F4D324D5F315F46345F",
           GetResponseNormal(Data.visible("0008PWRM_M2M_1_F4_"))),
    Vector("get-response-enum", "SPODES", "C401C1001606", GetResponseNormal(Data.enum(6))),
    Vector("get-response-array", "SPODES",
           "C401C100010102030600 02BB9C0910".replace(" ", "") + DIGEST.hex() + "0910"
           + DIGEST.hex(),
           GetResponseNormal(Data.array(Data.structure(
               Data.uint32(0x0002BB9C), Data.octets(DIGEST), Data.octets(DIGEST))))),
    Vector("get-response-datablock", "GOCOSEM body",
           "C402C1" + "00" + "00000001" + "00" + "1E" + GOCOSEM_BLOCK.hex(),
           GetResponseWithDatablock(False, 1, GOCOSEM_BLOCK),
           "GET.res with-datablock id=1 block=1 raw-data 30 bytes"),
    Vector("get-response-datablock-aborted", "OURS", "C402C1010000000501" + "0F",
           GetResponseWithDatablock(True, 5, DataAccessResult.LONG_GET_ABORTED),
           "GET.res with-datablock id=1 block=5 last long-get-aborted"),
    Vector("get-response-with-list", "GOCOSEM body",
           "C403C1" + "02" + "0009040102030400" + "0A03303030",
           GetResponseWithList((Data.octets(bytes.fromhex("01020304")), Data.visible("000"))),
           "GET.res with-list id=1 [octet-string 01020304, visible-string '000']"),
    Vector("get-response-with-list-error", "OURS", "C403C102000600000007" + "0104",
           GetResponseWithList((Data.uint32(7), DataAccessResult.OBJECT_UNDEFINED))),
    Vector("set-request", "GURUX write(Data 0.0.42.0.0.255 = 42)",
           "C101C1000100002A0000FF0200050000002A",
           SetRequestNormal(CosemAttributeDescriptor(1, Obis(0, 0, 42, 0, 0, 255), 2),
                            Data.int32(42)),
           "SET.req normal id=1 1/0.0.42.0.0.255/2 = double-long 42"),
    Vector("set-response", "OURS", "C501C100", SetResponseNormal(DataAccessResult.SUCCESS),
           "SET.res normal id=1 success"),
    Vector("action-hls-reply", "SPODES",
           "C301C1000F0000280003FF01010910" + HLS_REPLY.hex(),
           ActionRequestNormal(CosemMethodDescriptor(15, Obis(0, 0, 40, 0, 3, 255), 1),
                               Data.octets(HLS_REPLY))),
    Vector("action-image-initiate", "SPODES",
           "C301C100120000 2C0000FF0101020209 10465E30857684D141C0F232E9F502B5E1060002F96C"
           .replace(" ", ""),
           ActionRequestNormal(CosemMethodDescriptor(18, Obis(0, 0, 44, 0, 0, 255), 1),
                               Data.structure(
                                   Data.octets(bytes.fromhex("465E30857684D141C0F232E9F502B5E1")),
                                   Data.uint32(0x0002F96C)))),
    Vector("action-no-parameters", "U9N", "C301C0000F0000280000FF0100",
           ActionRequestNormal(CosemMethodDescriptor(15, Obis(0, 0, 40, 0, 0, 255), 1),
                               invoke_id_and_priority=0xC0),
           "ACTION.req normal id=0 15/0.0.40.0.0.255/m1"),
    Vector("action-response-hls", "SPODES", "C701C10001000910" + HLS_RESULT.hex(),
           ActionResponseNormal(ActionResult.SUCCESS, Data.octets(HLS_RESULT))),
    Vector("action-response-plain", "U9N", "C701C00000",
           ActionResponseNormal(ActionResult.SUCCESS, invoke_id_and_priority=0xC0),
           "ACTION.res normal id=0 success"),
    Vector("action-response-dar", "U9N", "C701C0000101FA",
           ActionResponseNormal(ActionResult.SUCCESS, DataAccessResult.OTHER_REASON, 0xC0),
           "ACTION.res normal id=0 success -> other-reason"),
    Vector("exception", "EMULATOR", "D80101",
           ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                             ExceptionServiceError.OPERATION_NOT_POSSIBLE),
           "exception-response service-not-allowed: operation-not-possible"),
    Vector("exception-ic", "OURS", "D8010600000100",
           ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                             ExceptionServiceError.INVOCATION_COUNTER_ERROR, 256),
           "exception-response service-not-allowed: invocation-counter-error "
           "(expected invocation counter 256)"),
]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector_encodes(vector: Vector) -> None:
    assert vector.obj.to_bytes().hex().upper() == vector.hex.upper()


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector_decodes(vector: Vector) -> None:
    assert type(vector.obj).from_bytes(vector.data) == vector.obj
    assert decode_apdu(vector.data) == vector.obj
    if vector.text is not None:
        assert vector.obj.describe() == vector.text
        assert describe_apdu(vector.data) == vector.text


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector_trailing_and_truncated(vector: Vector) -> None:
    with pytest.raises(DecodeError, match="trailing"):
        decode_apdu(vector.data + b"\x00")
    for cut in range(len(vector.data)):
        if vector.data[0] == 0xC7 and cut == 4:
            continue  # ACTION.res ending after its result is accepted on purpose
        with pytest.raises(DecodeError):
            decode_apdu(vector.data[:cut])


# ------------------------------------------------------------------ parts with a position
def test_descriptor_decodes_at_a_position_and_leaves_trailing_bytes() -> None:
    buf = b"\xFF\xFF" + REGISTER.to_bytes() + b"\x01\x02"
    assert CosemAttributeDescriptor.decode(buf, 2) == (REGISTER, 11)
    assert CosemAttributeDescriptor.from_bytes(REGISTER.to_bytes()) == REGISTER
    with pytest.raises(DecodeError, match="trailing"):
        CosemAttributeDescriptor.from_bytes(REGISTER.to_bytes() + b"\x00")
    method = CosemMethodDescriptor(15, Obis(0, 0, 40, 0, 0, 255), 1)
    assert CosemMethodDescriptor.decode(method.to_bytes() + b"\x00", 0) == (method, 9)


def test_selective_access_by_entry_round_trip() -> None:
    # OURS: profile generic buffer, access selector 2 (entry descriptor), entries 1..10.
    selection = SelectiveAccessDescriptor(2, Data.structure(
        Data.uint32(1), Data.uint32(10), Data.uint16(1), Data.uint16(0)))
    request = GetRequestNormal(CosemAttributeDescriptor(7, Obis(1, 0, 99, 1, 0, 255), 2),
                               selection)
    data = request.to_bytes()
    assert data.hex().upper() == (
        "C001C100070100630100FF0201" + "02" + "020406000000010600 00000A12000112 0000"
        .replace(" ", ""))
    assert decode_apdu(data) == request
    assert request.describe() == ("GET.req normal id=1 7/1.0.99.1.0.255/2 sel=2 "
                                  "structure{double-long-unsigned 1, double-long-unsigned 10, "
                                  "long-unsigned 1, long-unsigned 0}")
    item = CosemAttributeDescriptorWithSelection(REGISTER, selection)
    assert CosemAttributeDescriptorWithSelection.from_bytes(item.to_bytes()) == item


def test_invoke_id_and_priority() -> None:
    assert invoke_id_and_priority(1) == 0xC1
    assert invoke_id_and_priority(5, high_priority=False) == 0x45
    assert invoke_id_and_priority(0, confirmed=False) == 0x80
    with pytest.raises(LocalProtocolError):
        invoke_id_and_priority(16)
    assert GetRequestNext(3, invoke_id_and_priority(7)).describe() == "GET.req next id=7 block=3"


def test_range_checks_on_build() -> None:
    with pytest.raises(LocalProtocolError, match="class-id"):
        CosemAttributeDescriptor(0x10000, Obis(0, 0, 1, 0, 0, 255), 2)
    with pytest.raises(LocalProtocolError, match="attribute-id"):
        CosemAttributeDescriptor(1, Obis(0, 0, 1, 0, 0, 255), 128)
    with pytest.raises(LocalProtocolError, match="block-number"):
        GetRequestNext(2**32)
    with pytest.raises(LocalProtocolError, match="invoke-id-and-priority"):
        GetRequestNormal(REGISTER, invoke_id_and_priority=256)
    with pytest.raises(LocalProtocolError, match="invocation_counter"):
        ExceptionResponse(StateError.SERVICE_UNKNOWN, ExceptionServiceError.OTHER_REASON, 5)


def test_negative_attribute_id_is_integer8() -> None:
    # OURS: Cosem-Attribute-Descriptor attribute-id is Integer8 (manufacturer attributes < 0).
    descriptor = CosemAttributeDescriptor(1, Obis(0, 0, 96, 1, 0, 255), -1)
    assert descriptor.to_bytes()[-1] == 0xFF
    assert CosemAttributeDescriptor.from_bytes(descriptor.to_bytes()) == descriptor


# ------------------------------------------------------------------ results and errors
def test_data_access_result_has_every_value_of_the_standard() -> None:
    expected = {0: "success", 1: "hardware-fault", 2: "temporary-failure",
                3: "read-write-denied", 4: "object-undefined", 9: "object-class-inconsistent",
                11: "object-unavailable", 12: "type-unmatched", 13: "scope-of-access-violated",
                14: "data-block-unavailable", 15: "long-get-aborted",
                16: "no-long-get-in-progress", 17: "long-set-aborted",
                18: "no-long-set-in-progress", 19: "data-block-number-invalid",
                250: "other-reason"}
    assert {int(r): r.label for r in DataAccessResult} == expected
    assert {int(r) for r in ActionResult} == {0, 1, 2, 3, 4, 9, 11, 12, 13, 14, 15, 16, 250}
    assert ActionResult.NO_LONG_ACTION_IN_PROGRESS.label == "no-long-action-in-progress"


def test_unknown_data_access_result_is_kept() -> None:
    # OURS: a meter answering data-access-result 7 (undefined) - the code survives.
    response = GetResponseNormal.from_bytes(bytes.fromhex("C401C10107"))
    assert int(response.result) == 7  # type: ignore[arg-type]
    assert response.describe() == "GET.res normal id=1 unknown-7"
    with pytest.raises(DataAccessError, match=r"unknown-7 \(7\)") as info:
        response.data()
    assert info.value.result == 7
    assert response.to_bytes() == bytes.fromhex("C401C10107")


def test_get_response_data_raises_data_access_error() -> None:
    with pytest.raises(DataAccessError, match=r"GET refused: read-write-denied \(3\)") as info:
        GetResponseNormal(DataAccessResult.READ_WRITE_DENIED).data()
    assert info.value.result == 3
    assert GetResponseNormal(Data.uint8(1)).data() == Data.uint8(1)


def test_set_and_action_checks() -> None:
    SetResponseNormal(DataAccessResult.SUCCESS).check()
    with pytest.raises(DataAccessError, match="SET refused: type-unmatched"):
        SetResponseNormal(DataAccessResult.TYPE_UNMATCHED).check()
    returned = ActionResponseNormal(ActionResult.SUCCESS, Data.octets(b"ab")).check()
    assert returned == Data.octets(b"ab")
    with pytest.raises(DataAccessError, match="ACTION refused: read-write-denied"):
        ActionResponseNormal(ActionResult.READ_WRITE_DENIED).check()
    with pytest.raises(DataAccessError, match="return-parameters refused: other-reason"):
        ActionResponseNormal(ActionResult.SUCCESS, DataAccessResult.OTHER_REASON).check()


def test_exception_response_to_error() -> None:
    error = ExceptionResponse(StateError.SERVICE_UNKNOWN,
                              ExceptionServiceError.PDU_TOO_LONG).to_error()
    assert str(error) == "exception-response service-unknown: pdu-too-long"
    assert error.code == 4


def test_action_response_without_optional_flag_is_accepted() -> None:
    # Some meters end ACTION.res after the result; read as "no return-parameters".
    assert ActionResponseNormal.from_bytes(bytes.fromhex("C701C100")) == ActionResponseNormal(
        ActionResult.SUCCESS)


# ------------------------------------------------------------------ dispatch
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty APDU"),
        (b"\xAB\x01", "unknown APDU tag 0xAB"),
        (b"\x00", "unknown APDU tag 0x00"),
        (bytes.fromhex("CC0102"), r"glo-get-response \(0xCC\) is not supported"),
        (bytes.fromhex("0F00000001"), r"data-notification \(0x0F\) is not supported"),
        (bytes.fromhex("C004C1"), r"get-request \(0xC0\) choice 4 is not supported"),
        (bytes.fromhex("C4"), "truncated before its choice"),
        (bytes.fromhex("C401C102"),
         r"result choice 2 at offset 3 \(0 data, 1 data-access-result\)"),
        (bytes.fromhex("C403C105"), "count of 5 at offset 4 exceeds the 0 bytes"),
        (bytes.fromhex("C403C1FF"), "invalid first byte 0xFF"),
        (bytes.fromhex("C402C10200000001020304"), "result choice 2"),
        (bytes.fromhex("C001C100030100010800FF0202"), "presence flag 0x02"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.hex(),
)
def test_decode_apdu_errors_name_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_apdu(data)
    assert describe_apdu(data).startswith("undecodable APDU")


def test_with_list_count_is_bounded_by_the_bytes_left() -> None:
    # OURS: a count of 100 descriptors in a 13-byte APDU; 2 in 14 (each takes 10 or more).
    with pytest.raises(DecodeError, match="count of 100 at offset 4 exceeds the 9 bytes"):
        decode_apdu(bytes.fromhex("C003C164") + REGISTER.to_bytes())
    with pytest.raises(DecodeError, match="2 items cannot fit the 10 bytes left"):
        decode_apdu(bytes.fromhex("C003C102") + REGISTER.to_bytes() + b"\x00")


# ------------------------------------------------------------------ BlockReassembler
def _blocks(raw: bytes, size: int) -> list[GetResponseWithDatablock]:
    parts = [raw[i : i + size] for i in range(0, len(raw), size)]
    return [GetResponseWithDatablock(n == len(parts), n, part)
            for n, part in enumerate(parts, start=1)]


def test_reassembler_happy_path() -> None:
    value = Data.array(*[Data.uint32(i) for i in range(100)])
    raw = encode_data(value)
    blocks = _blocks(raw, 64)
    reassembler = BlockReassembler()
    results = []
    for block in blocks:
        results.append(reassembler.add(block))
        if not block.last_block:
            assert reassembler.next_request() == GetRequestNext(block.block_number)
    assert results[:-1] == [None] * (len(blocks) - 1)
    assert results[-1] == raw
    assert decode_data_all(raw) == value
    assert reassembler.complete and reassembler.size == len(raw)
    with pytest.raises(LocalProtocolError, match="already complete"):
        reassembler.add(blocks[-1])


def test_reassembler_rejects_a_wrong_block_number() -> None:
    reassembler = BlockReassembler()
    reassembler.add(GetResponseWithDatablock(False, 1, b"ab"))
    with pytest.raises(RemoteProtocolError, match="GET block number 3, expected 2") as info:
        reassembler.add(GetResponseWithDatablock(False, 3, b"cd"))
    assert info.value.code == 3
    with pytest.raises(RemoteProtocolError, match="GET block number 0, expected 1"):
        BlockReassembler().add(GetResponseWithDatablock(True, 0, b""))


def test_reassembler_reports_an_aborted_transfer() -> None:
    reassembler = BlockReassembler()
    reassembler.add(GetResponseWithDatablock(False, 1, b"ab"))
    with pytest.raises(DataAccessError, match="aborted at block 2: long-get-aborted") as info:
        reassembler.add(GetResponseWithDatablock(True, 2, DataAccessResult.LONG_GET_ABORTED))
    assert info.value.result == 15


def test_reassembler_bounds_size_and_blocks() -> None:
    reassembler = BlockReassembler(max_size=10)
    reassembler.add(GetResponseWithDatablock(False, 1, bytes(6)))
    with pytest.raises(RemoteProtocolError, match="exceeds 10 bytes"):
        reassembler.add(GetResponseWithDatablock(False, 2, bytes(6)))
    few = BlockReassembler(max_blocks=2)
    few.add(GetResponseWithDatablock(False, 1, b""))
    with pytest.raises(RemoteProtocolError, match="exceeds 2 blocks"):
        few.add(GetResponseWithDatablock(False, 2, b""))
    with pytest.raises(LocalProtocolError, match="no block"):
        BlockReassembler().next_request()


def test_with_list_answered_in_blocks() -> None:
    # OURS: the raw data of a with-list in blocks is SEQUENCE OF Get-Data-Result.
    results = (Data.uint32(1), DataAccessResult.OBJECT_UNAVAILABLE, Data.visible("x"))
    raw = GetResponseWithList(results).to_bytes()[3:]
    assert decode_get_data_result_list(raw) == results
    with pytest.raises(DecodeError, match="trailing"):
        decode_get_data_result_list(raw + b"\x00")


def test_with_list_in_blocks_is_reassembled_with_its_checks() -> None:
    # OURS: a healthy with-list of three results in 4-octet blocks still comes whole.
    results = (Data.array(*[Data.uint32(i) for i in range(5)]),
               DataAccessResult.OBJECT_UNAVAILABLE, Data.visible("x"))
    raw = GetResponseWithList(results).to_bytes()[3:]
    reassembler = BlockReassembler(results=3)
    out = [reassembler.add(block) for block in _blocks(raw, 4)]
    assert out[-1] == raw and decode_get_data_result_list(raw) == results


def test_with_list_in_blocks_refuses_a_wrong_quantity_at_its_first_block() -> None:
    # The null bomb of dlms-sim --fault null-bomb answers a with-list of 10 with a bare
    # array in blocks: the quantity (its first octet, 01) is not 10.
    with pytest.raises(RemoteProtocolError, match="1 results for 10 attributes, at block 1"):
        BlockReassembler(results=10).add(
            GetResponseWithDatablock(False, 1, bytes.fromhex("0184001000000000")))


def test_with_list_in_blocks_refuses_a_null_bomb_in_its_first_result() -> None:
    # quantity 2, result 1: data [0], an array claiming 2**24 values; 1 MiB at most.
    raw = bytes.fromhex("0200018401000000") + bytes(32)
    with pytest.raises(RemoteProtocolError, match=r"array of 16777216 values exceeds the "
                       r"limit .* at block 1"):
        BlockReassembler(results=2).add(GetResponseWithDatablock(False, 1, raw))
    # the same count in a data-access-result list is not looked at
    fine = BlockReassembler(results=2)
    assert fine.add(GetResponseWithDatablock(False, 1, bytes.fromhex("02010400"))) is None


# ------------------------------------------------------------------ properties
simple_data = st.one_of(
    st.integers(0, 2**32 - 1).map(Data.uint32),
    st.integers(-(2**15), 2**15 - 1).map(Data.int16),
    st.binary(max_size=40).map(Data.octets),
    st.booleans().map(Data.boolean),
    st.just(Data.null()),
)
data_values = st.recursive(
    simple_data,
    lambda inner: st.lists(inner, max_size=4).map(lambda items: Data.structure(*items)),
    max_leaves=8,
)
descriptors = st.builds(
    CosemAttributeDescriptor, st.integers(0, 0xFFFF),
    st.tuples(*[st.integers(0, 255)] * 6).map(lambda g: Obis(*g)), st.integers(-128, 127))
selections = st.none() | st.builds(SelectiveAccessDescriptor, st.integers(0, 255), data_values)
iids = st.integers(0, 255)
results = st.one_of(data_values, st.sampled_from(list(DataAccessResult)))

apdus: st.SearchStrategy[Apdu] = st.one_of(
    st.builds(GetRequestNormal, descriptors, selections, iids),
    st.builds(GetRequestNext, st.integers(0, 2**32 - 1), iids),
    st.builds(GetRequestWithList, st.lists(
        st.builds(CosemAttributeDescriptorWithSelection, descriptors, selections),
        max_size=4).map(tuple), iids),
    st.builds(GetResponseNormal, results, iids),
    st.builds(GetResponseWithDatablock, st.booleans(), st.integers(0, 2**32 - 1),
              st.binary(max_size=300) | st.sampled_from(list(DataAccessResult)), iids),
    st.builds(GetResponseWithList, st.lists(results, max_size=5).map(tuple), iids),
    st.builds(SetRequestNormal, descriptors, data_values, selections, iids),
    st.builds(SetResponseNormal, st.sampled_from(list(DataAccessResult)), iids),
    st.builds(ActionRequestNormal, st.builds(
        CosemMethodDescriptor, st.integers(0, 0xFFFF),
        st.tuples(*[st.integers(0, 255)] * 6).map(lambda g: Obis(*g)), st.integers(-128, 127)),
        st.none() | data_values, iids),
    st.builds(ActionResponseNormal, st.sampled_from(list(ActionResult)), st.none() | results, iids),
)


@settings(max_examples=300, deadline=None)
@given(apdus)
def test_apdu_round_trip(apdu: Apdu) -> None:
    data = apdu.to_bytes()
    assert decode_apdu(data) == apdu
    assert isinstance(describe_apdu(data), str)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_any_bytes_decode_or_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_apdu(data)
    assert isinstance(describe_apdu(data), str)


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_fuzz_mutated_vectors_decode_or_decode_error(data: st.DataObject) -> None:
    vector = data.draw(st.sampled_from(VECTORS))
    raw = bytearray(vector.data)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError):
        decode_apdu(bytes(raw))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0xC0, 0xC1, 0xC3, 0xC4, 0xC5, 0xC7, 0xD8, 0x0E, 0x60, 0x61, 0x62, 0x63]),
       st.binary(max_size=48))
def test_fuzz_known_tags_decode_or_decode_error(tag: int, body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_apdu(bytes([tag]) + body)


# ------------------------------------------------------------ interop (gurux_dlms, tests only)
def _gurux() -> tuple[Any, Any, Any]:
    return (pytest.importorskip("gurux_dlms"), pytest.importorskip("gurux_dlms.enums"),
            pytest.importorskip("gurux_dlms.objects"))


def _frames(result: Any) -> list[bytes]:
    out: list[bytes] = []
    for item in result if isinstance(result, list) else [result]:
        out += _frames(item) if isinstance(item, list) else [bytes(item)]
    return out


def _apdu(frames: Any) -> Apdu:
    (frame,) = _frames(frames)
    return decode_apdu(frame[8:])  # after the wrapper header


def _send(client: Any, apdu: bytes, reply: Any = None) -> Any:
    gurux, _, _ = _gurux()
    frame = bytes.fromhex("000100010010") + len(apdu).to_bytes(2, "big") + apdu
    reply = gurux.GXReplyData() if reply is None else reply
    client.getData(gurux.GXByteBuffer(frame), reply)
    return reply


def _associated_client() -> Any:
    from dlmsd.protocol.acse import Aare
    from dlmsd.protocol.xdlms import Conformance, InitiateResponse

    gurux, enums, _ = _gurux()
    client = gurux.GXDLMSClient(True, 0x10, 1, enums.Authentication.NONE, None,
                                enums.InterfaceType.WRAPPER)
    client.aarqRequest()
    aare = Aare(user_information=InitiateResponse(Conformance(0x007E1F), 1024))
    client.parseAareResponse(_send(client, aare.to_bytes()).data)
    return client


@pytest.mark.interop
def test_gurux_read_is_decoded_and_our_answer_read_back() -> None:
    _, _, objects = _gurux()
    client = _associated_client()
    request = _apdu(client.read(objects.GXDLMSRegister("1.0.1.8.0.255"), 2))
    assert request == GetRequestNormal(REGISTER)
    assert _send(client, GetResponseNormal(Data.uint32(123456)).to_bytes()).value == 123456


@pytest.mark.interop
def test_gurux_reads_our_data_access_result() -> None:
    _, _, objects = _gurux()
    client = _associated_client()
    _apdu(client.read(objects.GXDLMSRegister("1.0.1.8.0.255"), 2))
    reply = _send(client, GetResponseNormal(DataAccessResult.READ_WRITE_DENIED).to_bytes())
    assert reply.error == 3


@pytest.mark.interop
def test_gurux_read_list_and_our_list_answer() -> None:
    _, _, objects = _gurux()
    client = _associated_client()
    register, data = objects.GXDLMSRegister("1.0.1.8.0.255"), objects.GXDLMSData("0.0.42.0.0.255")
    request = _apdu(client.readList([(register, 2), (data, 2)]))
    assert request == GetRequestWithList.of(
        REGISTER, CosemAttributeDescriptor(1, Obis(0, 0, 42, 0, 0, 255), 2))
    reply = _send(client, GetResponseWithList(
        (Data.uint32(7), DataAccessResult.OBJECT_UNDEFINED)).to_bytes())
    assert list(reply.value) == [7, None]


@pytest.mark.interop
def test_gurux_follows_our_blocks_with_get_next() -> None:
    _, _, objects = _gurux()
    client = _associated_client()
    _apdu(client.read(objects.GXDLMSRegister("1.0.1.8.0.255"), 2))
    value = Data.array(*[Data.uint32(i) for i in range(50)])
    reply = None
    for block in _blocks(encode_data(value), 64):
        reply = _send(client, block.to_bytes(), reply)
        if reply.isMoreData():
            assert _apdu(client.receiverReady(reply)) == GetRequestNext(block.block_number)
    assert reply is not None and list(reply.value) == list(range(50))


@pytest.mark.interop
def test_gurux_read_rows_by_entry_is_decoded() -> None:
    _, _, objects = _gurux()
    client = _associated_client()
    profile = objects.GXDLMSProfileGeneric("1.0.99.1.0.255")
    request = _apdu(client.readRowsByEntry(profile, 1, 10))
    assert isinstance(request, GetRequestNormal)
    assert request.descriptor == CosemAttributeDescriptor(7, Obis(1, 0, 99, 1, 0, 255), 2)
    assert request.access_selection is not None
    assert request.access_selection.access_selector == 2
    assert request.access_selection.access_parameters.as_items()[:2] == (
        Data.uint32(1), Data.uint32(10))
    assert request.to_bytes() == _frames(client.readRowsByEntry(profile, 1, 10))[0][8:]


@pytest.mark.interop
def test_gurux_write_and_method_are_decoded() -> None:
    _, enums, objects = _gurux()
    client = _associated_client()
    data = objects.GXDLMSData("0.0.42.0.0.255")
    data.value = 42
    write = _apdu(client.write(data, 2))
    assert write == SetRequestNormal(CosemAttributeDescriptor(1, Obis(0, 0, 42, 0, 0, 255), 2),
                                     Data.int32(42))
    assert _send(client, SetResponseNormal(DataAccessResult.SUCCESS).to_bytes()).error == 0
    association = objects.GXDLMSAssociationLogicalName()
    method = _apdu(client.method(association, 1, bytes(range(16)), enums.DataType.OCTET_STRING))
    assert method == ActionRequestNormal(
        CosemMethodDescriptor(15, Obis(0, 0, 40, 0, 0, 255), 1), Data.octets(bytes(range(16))))
    reply = _send(client, ActionResponseNormal(ActionResult.SUCCESS, Data.octets(b"x" * 16))
                  .to_bytes())
    assert bytes(reply.value) == b"x" * 16


@pytest.mark.interop
def test_gurux_understands_our_exception_response() -> None:
    _, _, objects = _gurux()
    client = _associated_client()
    _apdu(client.read(objects.GXDLMSRegister("1.0.1.8.0.255"), 2))
    response = ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                                 ExceptionServiceError.OPERATION_NOT_POSSIBLE)
    with pytest.raises(Exception, match="Service not allowed"):  # gurux's own exception type
        _send(client, response.to_bytes())
