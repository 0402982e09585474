"""SN service APDUs (Read/Write/UnconfirmedWrite/InformationReport), block reassembly,
short-name arithmetic and the Association SN object list.

Vector sources (each vector names one):

* TOHASAN: tohasan/hdlc-translator ``src/test/groovy/org/tohasan/hdlctranslator/apdu/
  ApduFrameSpec.groovy`` - frames of a Russian SN meter (logical device name
  "ZIP01769326", calling AP title "EGM69326"); the HDLC frames of two of them are in
  ``hdlc/HdlcFrameSpec.groovy`` and their FCS checks (test below).
* PDUXML: tohasan/pdu-translator ``src/test/groovy/org/tohasan/pduxml/lib/
  XmlPduTranslatorSpec.groovy`` and ``AppRunnerSpec.groovy`` (a profile read of 2017).
* LG: a captured Landis+Gyr SN session (meter 51282380) in a public
  ``test_full_session.py`` found with the code index (the index does not name its
  repository); every HDLC frame's HCS and FCS checks (test below).
* ENERGYICT: EnergyICT ``ObisCodeMapperTest.errorRegisterTest`` (DLMSZMD, an L+G ZMD SN
  meter), the answer ``E6E7000C0100090400810019``.
* GURUX: bytes produced by gurux_dlms 1.0.203 in this venv (``useLogicalNameReferencing
  =False``, InterfaceType.PDU): read, readList, write, method, GXDLMSNotify.generateReport.
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
from dlmsd.protocol.acse import Aare, Aarq, ApplicationContextName
from dlmsd.protocol.axdr import Data, DateTime, decode_data_all, encode_data
from dlmsd.protocol.hdlc_frame import Frame, strip_llc
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.sn import (
    ASSOCIATION_SN_BASE_NAME,
    FIRST_METHOD_OFFSET,
    LOGICAL_DEVICE_NAME_BASE_NAME,
    BlockNumber,
    BlockNumberAccess,
    DataBlockResult,
    InformationReportRequest,
    ParameterizedAccess,
    ReadDataBlockAccess,
    ReadRequest,
    ReadResponse,
    SnApdu,
    SnBlockReassembler,
    UnconfirmedWriteRequest,
    VariableName,
    WriteDataBlockAccess,
    WriteRequest,
    WriteResponse,
    attribute_short_name,
    base_name_of,
    decode_read_blocks,
    decode_read_result_list,
    decode_sn_apdu,
    decode_variable_access,
    describe_sn_apdu,
    method_short_name,
    parse_sn_object_list,
)
from dlmsd.protocol.xdlms import Conformance, DataAccessResult, ExceptionResponse, InitiateResponse

ZIP_NAME = bytes.fromhex("0A0B5A49503031373639333236")  # visible-string "ZIP01769326"
B2G = bytes.fromhex("0A084232473576333561")  # visible-string "B2G5v35a"
PROFILE_RANGE = Data.structure(  # PDUXML: range descriptor of a profile read
    Data.structure(Data.uint16(8), Data.octets(bytes.fromhex("0000010000FF")), Data.int8(2),
                   Data.uint16(0)),
    Data.octets(bytes.fromhex("07DA041E050E2522618000FF")),
    Data.octets(bytes.fromhex("FFFFFFFFFFFFFFFFFF8000FF")),
    Data.array(),
)
PROFILE_BLOCK1 = bytes.fromhex(
    "01000155021D090C07E10418010E0120FF8000001204201101120000"
    + "150000000000000000" * 8)
LG_DEVICE_ID = bytes.fromhex("422E4D344343505453434D444F2E303437392E41543053547647736172485350"
                             "706E61676C").decode("latin-1")


@dataclass(frozen=True)
class Vector:
    name: str
    source: str
    hex: str
    obj: SnApdu
    text: str | None = None  # expected describe(), when checked

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.hex.replace(" ", ""))


VECTORS = [
    Vector("read-ldn", "TOHASAN", "05 01 02 FD08", ReadRequest.of(0xFD08), "READ.req [0xFD08]"),
    Vector("read-object-list", "TOHASAN", "05 01 02 FA08", ReadRequest.of(0xFA08)),
    Vector("read-next-block", "TOHASAN", "05 01 05 0001",
           ReadRequest((BlockNumberAccess(1),)), "READ.req [block-number-access 1]"),
    Vector("read-two", "LG", "05 02 02 FD08 02 FF08", ReadRequest.of(0xFD08, 0xFF08),
           "READ.req [0xFD08, 0xFF08]"),
    Vector("read-3848", "LG", "05 01 02 3848", ReadRequest.of(0x3848)),
    Vector("read-c1c8", "LG", "05 01 02 C1C8", ReadRequest.of(0xC1C8)),
    Vector("read-cf08", "PDUXML", "05 01 02 CF08", ReadRequest.of(0xCF08)),
    Vector("read-gurux", "GURUX read(Register sn=0x1200, 2)", "05 01 02 1208",
           ReadRequest.of(0x1208)),
    Vector("read-parameterized", "PDUXML",
           "05 01 04 C008 01 0204 0204 120008 0906 0000010000FF 0F02 120000"
           " 090C 07DA041E050E2522618000FF 090C FFFFFFFFFFFFFFFFFF8000FF 0100",
           ReadRequest((ParameterizedAccess(0xC008, 1, PROFILE_RANGE),)),
           "READ.req [0xC008 sel=1 structure{structure{long-unsigned 8, octet-string "
           "0000010000ff, integer 2, long-unsigned 0}, octet-string 07da041e050e2522618000ff,"
           " octet-string ffffffffffffffffff8000ff, array{}}]"),
    Vector("read-data-block-access", "OURS", "05 01 06 01 0002 03 010203",
           ReadRequest((ReadDataBlockAccess(True, 2, b"\x01\x02\x03"),)),
           "READ.req [read-data-block 2 last 3 bytes]"),
    Vector("response-ldn-one-block", "TOHASAN",
           "0C 01 02 01 0001 0F 0100" + ZIP_NAME.hex(),
           ReadResponse((DataBlockResult(True, 1, b"\x01\x00" + ZIP_NAME),)),
           "READ.res [data-block-result block=1 last raw-data 15 bytes]"),
    Vector("response-software-id", "TOHASAN", "0C 01 02 01 0001 0C 0100" + B2G.hex(),
           ReadResponse((DataBlockResult(True, 1, b"\x01\x00" + B2G),))),
    Vector("response-two-in-one-block", "TOHASAN",
           "0C 01 02 01 0001 17 02 00" + B2G.hex() + "00" + B2G.hex(),
           ReadResponse((DataBlockResult(True, 1, b"\x02\x00" + B2G + b"\x00" + B2G),))),
    Vector("response-first-block", "TOHASAN", "0C 01 02 00 0001 05 0100120008",
           ReadResponse((DataBlockResult(False, 1, bytes.fromhex("0100120008")),)),
           "READ.res [data-block-result block=1 raw-data 5 bytes]"),
    Vector("response-profile-block-1", "PDUXML", "0C 01 02 00 0001 64" + PROFILE_BLOCK1.hex(),
           ReadResponse((DataBlockResult(False, 1, PROFILE_BLOCK1),))),
    Vector("response-two", "LG",
           "0C 02 00 0910 4C475A35313238323338300000000000 00 0A03 423332",
           ReadResponse((Data.octets(b"LGZ51282380" + bytes(5)), Data.visible("B32"))),
           "READ.res [octet-string 4c475a35313238323338300000000000, visible-string 'B32']"),
    Vector("response-visible", "LG", "0C 01 00 0A25" + LG_DEVICE_ID.encode("latin-1").hex(),
           ReadResponse((Data.visible(LG_DEVICE_ID),))),
    Vector("response-octets", "LG", "0C 01 00 0913 02CB0000FF0000043000045000048001048002",
           ReadResponse((Data.octets(bytes.fromhex("02CB0000FF0000043000045000048001048002")),))),
    Vector("response-serial", "LG", "0C 01 00 0A08 3531323832333830",
           ReadResponse((Data.visible("51282380"),)), "READ.res [visible-string '51282380']"),
    Vector("response-zmd", "ENERGYICT", "0C 01 00 0904 00810019",
           ReadResponse((Data.octets(bytes.fromhex("00810019")),))),
    Vector("response-errors", "OURS", "0C 02 01 04 00 06 00000005",
           ReadResponse((DataAccessResult.OBJECT_UNDEFINED, Data.uint32(5))),
           "READ.res [object-undefined, double-long-unsigned 5]"),
    Vector("response-block-number", "OURS", "0C 01 03 0002", ReadResponse((BlockNumber(2),)),
           "READ.res [block-number 2]"),
    Vector("write-gurux", "GURUX write(Data sn=0x2000, 2) = 42", "06 01 02 2008 01 05 0000002A",
           WriteRequest((VariableName(0x2008),), (Data.int32(42),)),
           "WRITE.req [0x2008 = double-long 42]"),
    Vector("write-method-gurux", "GURUX method(AssociationSN, 8, 16 x 01)",
           "06 01 02 FA58 01 0910" + "01" * 16,
           WriteRequest((VariableName(0xFA58),), (Data.octets(b"\x01" * 16),))),
    Vector("write-block", "OURS", "06 01 07 00 0001 01 0902 6162",
           WriteRequest((WriteDataBlockAccess(False, 1),), (Data.octets(b"ab"),)),
           "WRITE.req [write-data-block 1 = octet-string 6162]"),
    Vector("write-response", "OURS", "0D 03 00 01 03 02 0001",
           WriteResponse((DataAccessResult.SUCCESS, DataAccessResult.READ_WRITE_DENIED,
                          BlockNumber(1))),
           "WRITE.res [success, read-write-denied, block-number 1]"),
    Vector("unconfirmed-write", "OURS", "16 01 02 1208 01 06 00000005",
           UnconfirmedWriteRequest((VariableName(0x1208),), (Data.uint32(5),)),
           "UNCONFIRMED-WRITE.req [0x1208 = double-long-unsigned 5]"),
    Vector("information-report", "GURUX GXDLMSNotify.generateReport(Register sn=0x1200, 2)",
           "18 00 01 02 1208 01 05 00000005",
           InformationReportRequest((VariableName(0x1208),), (Data.int32(5),)),
           "INFORMATION-REPORT.req [0x1208 = double-long 5]"),
    Vector("information-report-time", "OURS", "18 01 0C 07E801020203040500800000"
           " 01 02 1208 01 05 00000005",
           InformationReportRequest((VariableName(0x1208),), (Data.int32(5),),
                                    bytes.fromhex("07E801020203040500800000"))),
]


def test_vector_sources_are_named() -> None:
    assert all(v.source for v in VECTORS)
    assert len({v.name for v in VECTORS}) == len(VECTORS)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector_encodes(vector: Vector) -> None:
    assert vector.obj.to_bytes().hex().upper() == vector.data.hex().upper()


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector_decodes(vector: Vector) -> None:
    assert type(vector.obj).from_bytes(vector.data) == vector.obj
    assert decode_sn_apdu(vector.data) == vector.obj
    if vector.text is not None:
        assert vector.obj.describe() == vector.text
        assert describe_sn_apdu(vector.data) == vector.text


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector_trailing_and_truncated(vector: Vector) -> None:
    with pytest.raises(DecodeError, match="trailing"):
        decode_sn_apdu(vector.data + b"\x00")
    for cut in range(len(vector.data)):
        with pytest.raises(DecodeError):
            decode_sn_apdu(vector.data[:cut])


# ------------------------------------------------------------------ the captures themselves
# The HDLC frames around the vectors: a valid HCS and FCS says the bytes are what the
# meter (or the tool that captured it) sent, not retyped.
CAPTURED_FRAMES = [
    ("TOHASAN HdlcFrameSpec", "7EA0140002A0AD03323A58E6E600050102FD0810D37E", "read-ldn"),
    ("TOHASAN HdlcFrameSpec", "7EA025030002A0AD528D39E6E7000C01020100010F01000A0B5A4950303137"
     "3639333236 8C6F7E", "response-ldn-one-block"),
    ("LG", "7EA0170002346921320F15E6E600050202FD0802FF0854587E", "read-two"),
    ("LG", "7EA02A2100023469529DEAE6E7000C020009104C475A35313238323338300000000000000A0342"
     "3332F5367E", "response-two"),
    ("LG", "7EA01400023469215451BBE6E600050102384806257E", "read-3848"),
    ("LG", "7EA0392100023469740EB3E6E7000C01000A25422E4D344343505453434D444F2E303437392E41"
     "543053547647736172485350706E61676C69607E", "response-visible"),
    ("LG", "7EA01400023469217641B9E6E600050102C1C81E0A7E", "read-c1c8"),
    ("LG", "7EA027210002346996FA44E6E7000C0100091302CB0000FF0000043000045000048001048002F19F"
     "7E", "response-octets"),
    ("LG", "7EA01C2100023469B84E2CE6E7000C01000A0835313238323338304B217E", "response-serial"),
]


@pytest.mark.parametrize(("source", "frame", "vector"), CAPTURED_FRAMES,
                         ids=lambda v: v if len(v) < 30 else "")
def test_captured_hdlc_frames_carry_the_vectors(source: str, frame: str, vector: str) -> None:
    decoded = Frame.from_bytes(bytes.fromhex(frame.replace(" ", "")))
    response = vector.startswith("response")
    apdu = strip_llc(decoded.information, response=response)
    (expected,) = [v for v in VECTORS if v.name == vector]
    assert apdu == expected.data
    assert decode_sn_apdu(apdu) == expected.obj


def test_captured_blocks_carry_the_result_list() -> None:
    # TOHASAN/PDUXML: the raw-data of data-block-results starts with the SEQUENCE OF count
    # and the CHOICE (01 00), not with the bare Data - as the Green Book has it.
    for name in ("response-ldn-one-block", "response-software-id", "response-first-block",
                 "response-profile-block-1"):
        (vector,) = [v for v in VECTORS if v.name == name]
        block = vector.obj.results[0]  # type: ignore[union-attr]
        assert isinstance(block, DataBlockResult)
        assert block.raw_data[:2] == b"\x01\x00"
    (two,) = [v for v in VECTORS if v.name == "response-two-in-one-block"]
    block = two.obj.results[0]  # type: ignore[union-attr]
    assert isinstance(block, DataBlockResult)
    assert decode_read_blocks(block.raw_data, 2) == (Data.visible("B2G5v35a"),) * 2
    (ldn,) = [v for v in VECTORS if v.name == "response-ldn-one-block"]
    ldn_block = ldn.obj.results[0]  # type: ignore[union-attr]
    assert isinstance(ldn_block, DataBlockResult)
    assert decode_read_blocks(ldn_block.raw_data, 1) == (Data.visible("ZIP01769326"),)


# ------------------------------------------------------------------ parts and dispatch
def test_variable_access_parts_decode_at_a_position() -> None:
    buf = b"\xFF" + VariableName(0xFA08).to_bytes() + b"\x00"
    assert decode_variable_access(buf, 1) == (VariableName(0xFA08), 4)
    assert VariableName.decode(buf, 1) == (VariableName(0xFA08), 4)
    for item in (ParameterizedAccess(0xC008, 2, Data.uint32(1)), BlockNumberAccess(7),
                 ReadDataBlockAccess(False, 3, b"xyz"), WriteDataBlockAccess(True, 9)):
        data = item.to_bytes()
        assert type(item).from_bytes(data) == item
        assert decode_variable_access(data + b"\x00", 0) == (item, len(data))
        with pytest.raises(DecodeError, match="trailing"):
            type(item).from_bytes(data + b"\x00")
    assert DataBlockResult.from_bytes(DataBlockResult(True, 2, b"a").to_bytes()) == (
        DataBlockResult(True, 2, b"a"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty APDU"),
        (b"\xAB\x01", "unknown APDU tag 0xAB"),
        (bytes.fromhex("0501030000"), r"detailed-access \[3\] at offset 2 is not used"),
        (bytes.fromhex("0501091208"), "unknown choice 9 at offset 2"),
        (bytes.fromhex("0C010400"), r"result 1 choice 4 at offset 2 \(0 data"),
        (bytes.fromhex("0D0103"), r"result 1 choice 3 at offset 2 \(0 success"),
        (bytes.fromhex("0C05"), "count of 5 at offset 2 exceeds the 0 bytes"),
        (bytes.fromhex("0C0300000000"), "result list of 3 items cannot fit the 4 bytes"),
        (bytes.fromhex("0564021208"), "count of 100 at offset 2 exceeds"),
        (bytes.fromhex("050302120802FD08"), "3 items cannot fit the 6 bytes"),
        (bytes.fromhex("0C01FF00"), "choice 255"),
        (bytes.fromhex("0C80"), "invalid first byte 0x80"),
        (bytes.fromhex("180200"), "current-time flag 0x02"),
        (bytes.fromhex("0C 01 00 63".replace(" ", "")), "unknown Data tag 99"),
        (bytes.fromhex("0F00000001"), r"data-notification \(0x0F\) is not supported"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.hex(),
)
def test_decode_errors_name_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_sn_apdu(data)
    assert describe_sn_apdu(data).startswith("undecodable APDU")


def test_other_tags_go_to_the_ln_dispatcher() -> None:
    exception = bytes.fromhex("D80101")
    assert decode_sn_apdu(exception) == ExceptionResponse.from_bytes(exception)
    aare = Aare(application_context_name=ApplicationContextName.SHORT_NAME_REFERENCING_NO_CIPHERING,
                user_information=InitiateResponse(Conformance(0x1C1320), 122, vaa_name=0xFA00))
    assert decode_sn_apdu(aare.to_bytes()) == aare
    assert describe_sn_apdu(aare.to_bytes()).startswith("AARE accepted SN")


def test_build_checks() -> None:
    with pytest.raises(LocalProtocolError, match="short name 65536"):
        VariableName(0x10000)
    with pytest.raises(LocalProtocolError, match="short name -1"):
        ReadRequest.of(-1)
    with pytest.raises(LocalProtocolError, match="selector 256"):
        ParameterizedAccess(1, 256, Data.null())
    with pytest.raises(LocalProtocolError, match="block-number 65536"):
        BlockNumberAccess(0x10000)
    with pytest.raises(LocalProtocolError, match="must be a tuple"):
        ReadRequest([VariableName(1)])  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="values must be a tuple of Data"):
        WriteRequest((VariableName(1),), (5,))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="ReadResponse results"):
        ReadResponse(("x",))  # type: ignore[arg-type]


def test_write_response_check_and_canonical_success() -> None:
    WriteResponse((DataAccessResult.SUCCESS, BlockNumber(1))).check()
    with pytest.raises(DataAccessError, match="variable 2: type-unmatched") as info:
        WriteResponse((DataAccessResult.SUCCESS, DataAccessResult.TYPE_UNMATCHED)).check()
    assert info.value.result == 12
    # OURS: data-access-error(success) reads as success and is re-encoded as success [0].
    response = WriteResponse.from_bytes(bytes.fromhex("0D010100"))
    assert response == WriteResponse((DataAccessResult.SUCCESS,))
    assert response.to_bytes() == bytes.fromhex("0D0100")


def test_unknown_data_access_result_is_kept() -> None:
    # OURS: a data-access-error 7 (undefined) survives decoding and encoding.
    response = ReadResponse.from_bytes(bytes.fromhex("0C010107"))
    (result,) = response.results
    assert isinstance(result, DataAccessResult) and int(result) == 7
    assert response.describe() == "READ.res [unknown-7]"
    assert response.to_bytes() == bytes.fromhex("0C010107")


def test_information_report_time_forms() -> None:
    when = bytes.fromhex("07E801020203040500800000")  # 2024-01-02 03:04:05
    body = bytes.fromhex("01021208010500000005")
    # OURS, in the form gurux_dlms' getSNPdu writes and handleInformationReport reads:
    # a bare length octet 0C and the 12-octet date-time, no presence flag.
    report = InformationReportRequest.from_bytes(b"\x18\x0C" + when + body)
    assert report.current_time == when
    date_time = report.time_as_date_time()
    assert isinstance(date_time, DateTime) and date_time.to_bytes() == when
    assert report.to_bytes() == b"\x18\x01\x0C" + when + body  # re-encoded in A-XDR form
    assert "time=" in report.describe()
    odd = InformationReportRequest((VariableName(1),), (Data.null(),), b"20240102")
    assert odd.time_as_date_time() is None and "time=3230323430313032" in odd.describe()
    assert InformationReportRequest.from_bytes(odd.to_bytes()) == odd


def test_unconfirmed_write_is_not_a_write_request() -> None:
    write = WriteRequest((VariableName(0x1208),), (Data.uint32(5),))
    unconfirmed = UnconfirmedWriteRequest(write.variables, write.values)
    assert write.to_bytes()[1:] == unconfirmed.to_bytes()[1:]
    assert not isinstance(unconfirmed, WriteRequest)
    assert decode_sn_apdu(write.to_bytes()) == write
    assert decode_sn_apdu(unconfirmed.to_bytes()) == unconfirmed


# ------------------------------------------------------------------ block reassembly
def _blocks(raw: bytes, size: int) -> list[DataBlockResult]:
    parts = [raw[i : i + size] for i in range(0, len(raw), size)] or [b""]
    return [DataBlockResult(n == len(parts), n, part) for n, part in enumerate(parts, start=1)]


def test_reassembler_happy_path() -> None:
    value = Data.array(*[Data.uint32(i) for i in range(100)])
    raw = ReadResponse((value,)).to_bytes()[1:]  # the result list: 01 00 + Data
    reassembler = SnBlockReassembler()
    out = []
    for block in _blocks(raw, 64):
        out.append(reassembler.add(block))
        if not block.last_block:
            assert reassembler.next_request() == ReadRequest(
                (BlockNumberAccess(block.block_number),))
    assert out[-1] == raw and all(x is None for x in out[:-1])
    assert decode_read_blocks(raw, 1) == (value,)
    assert reassembler.complete and reassembler.size == len(raw)
    with pytest.raises(LocalProtocolError, match="already complete"):
        reassembler.add(DataBlockResult(True, 9, b""))
    # TOHASAN: the acknowledgement of block 1 is 05 01 05 00 01.
    first = SnBlockReassembler()
    first.add(DataBlockResult(False, 1, b"\x01"))
    assert first.next_request().to_bytes() == bytes.fromhex("0501050001")


def test_reassembler_rejects_wrong_numbers_and_bounds() -> None:
    reassembler = SnBlockReassembler()
    reassembler.add(DataBlockResult(False, 1, b"ab"))
    with pytest.raises(RemoteProtocolError, match="READ block number 3, expected 2") as info:
        reassembler.add(DataBlockResult(False, 3, b"cd"))
    assert info.value.code == 3
    with pytest.raises(RemoteProtocolError, match="block number 0, expected 1"):
        SnBlockReassembler().add(DataBlockResult(True, 0, b""))
    small = SnBlockReassembler(max_size=10)
    small.add(DataBlockResult(False, 1, bytes(6)))
    with pytest.raises(RemoteProtocolError, match="exceeds 10 bytes"):
        small.add(DataBlockResult(False, 2, bytes(6)))
    few = SnBlockReassembler(max_blocks=2)
    few.add(DataBlockResult(False, 1, b""))
    with pytest.raises(RemoteProtocolError, match="exceeds 2 blocks"):
        few.add(DataBlockResult(False, 2, b""))
    with pytest.raises(LocalProtocolError, match="no block"):
        SnBlockReassembler().next_request()
    with pytest.raises(LocalProtocolError, match="positive"):
        SnBlockReassembler(max_size=0)


def test_decode_read_blocks_forms() -> None:
    value = Data.visible("x")
    # the list form, several results, one refused
    raw = ReadResponse((value, DataAccessResult.READ_WRITE_DENIED)).to_bytes()[1:]
    assert decode_read_result_list(raw) == (value, DataAccessResult.READ_WRITE_DENIED)
    assert decode_read_blocks(raw, 2) == (value, DataAccessResult.READ_WRITE_DENIED)
    with pytest.raises(DecodeError, match="2 results for 3 variables"):
        decode_read_blocks(raw, 3)
    # gurux_dlms servers put the bare Data of one variable in the blocks
    assert decode_read_blocks(encode_data(value), 1) == (value,)
    with pytest.raises(DecodeError):
        decode_read_blocks(encode_data(value), 2)
    with pytest.raises(DecodeError, match="trailing"):
        decode_read_blocks(raw + b"\x00", 2)
    # a block result inside the raw data is not allowed
    with pytest.raises(DecodeError, match=r"choice 2 at offset 1 \(0 data, 1 data-access"):
        decode_read_result_list(bytes.fromhex("010201000100"))


# ------------------------------------------------------------------ short names
def test_attribute_short_names() -> None:
    assert attribute_short_name(ASSOCIATION_SN_BASE_NAME, 2) == 0xFA08  # TOHASAN FA08
    assert attribute_short_name(LOGICAL_DEVICE_NAME_BASE_NAME, 2) == 0xFD08  # TOHASAN, LG
    assert attribute_short_name(0x1200, 1) == 0x1200
    assert attribute_short_name(0x1200, 3) == 0x1210  # a register's scaler_unit
    assert base_name_of(0x1208, 2) == 0x1200
    assert base_name_of(0xFA08, 2) + 8 * (3 - 1) == 0xFA10
    with pytest.raises(LocalProtocolError, match="beyond 0xFFFF"):
        attribute_short_name(0xFFF8, 3)
    with pytest.raises(LocalProtocolError, match="attribute 0"):
        attribute_short_name(0x1200, 0)
    with pytest.raises(LocalProtocolError, match="negative"):
        base_name_of(0x0008, 3)


@pytest.mark.parametrize(
    ("class_id", "method", "offset"),
    [
        (3, 1, 0x28),   # Register reset
        (4, 1, 0x38),   # Extended register reset
        (5, 1, 0x48),   # Demand register reset
        (5, 2, 0x50),   # Demand register next_period
        (7, 1, 0x58),   # Profile generic reset
        (7, 2, 0x60),   # Profile generic capture
        (8, 1, 0x60),   # Clock adjust_to_quarter
        (8, 6, 0x88),   # Clock shift_time
        (12, 1, 0x20),  # Association SN read_by_logicalname
        (12, 8, 0x58),  # Association SN reply_to_HLS_authentication
        (15, 1, 0x60),  # Association LN reply_to_HLS_authentication
    ],
)
def test_method_short_names(class_id: int, method: int, offset: int) -> None:
    assert method_short_name(0x4000, class_id, method) == 0x4000 + offset


def test_method_short_names_unknown_or_absent() -> None:
    with pytest.raises(LocalProtocolError, match="class 1 has no methods"):
        method_short_name(0x1000, 1, 1)
    with pytest.raises(LocalProtocolError, match="class 9: the short-name offset of its "
                                                 "methods is unknown"):
        method_short_name(0x1000, 9, 1)
    with pytest.raises(LocalProtocolError, match="method 0"):
        method_short_name(0x1000, 3, 0)
    with pytest.raises(LocalProtocolError, match="beyond 0xFFFF"):
        method_short_name(0xFFF0, 8, 1)
    assert set(FIRST_METHOD_OFFSET) == {1, 3, 4, 5, 7, 8, 12, 15}


# ------------------------------------------------------------------ object list
def _element(base: int, class_id: int, obis: str, version: int = 0) -> Data:
    return Data.structure(Data.int16(base), Data.uint16(class_id), Data.uint8(version),
                          Data.octets(Obis.parse(obis).to_bytes()))


def test_parse_sn_object_list_from_captured_elements() -> None:
    # TOHASAN: the first elements of a captured Association SN object_list (block 1:
    # 01 00 01 82 01 4F 02 04 10 0000 12 0003 11 00 09 06 01000F0800FF 02 04 10 0018 ...).
    raw = bytes.fromhex("0102" "020410000012000311000906" "01000F0800FF"
                        "020410001812000311000906" "01000F0801FF")
    objects = parse_sn_object_list(decode_data_all(raw))
    assert objects == {Obis(1, 0, 15, 8, 0, 255): (0x0000, 3),
                       Obis(1, 0, 15, 8, 1, 255): (0x0018, 3)}


def test_parse_sn_object_list_base_names_and_errors() -> None:
    # OURS: FA00 as a long is -1536; the first of a repeated logical name wins.
    value = Data.array(_element(-1536, 12, "0.0.40.0.0.255", 2),
                       _element(0x1200, 3, "1.0.1.8.0.255"),
                       _element(0x1300, 1, "1.0.1.8.0.255"))
    assert parse_sn_object_list(value) == {Obis(0, 0, 40, 0, 0, 255): (0xFA00, 12),
                                           Obis(1, 0, 1, 8, 0, 255): (0x1200, 3)}
    with pytest.raises(DecodeError, match="not an array"):
        parse_sn_object_list(Data.uint8(1))
    with pytest.raises(DecodeError, match="element 0 is not structure"):
        parse_sn_object_list(Data.array(Data.structure(Data.int16(1), Data.uint16(3))))
    with pytest.raises(DecodeError, match="element 0 is not structure"):
        parse_sn_object_list(Data.array(Data.structure(
            Data.visible("x"), Data.uint16(3), Data.uint8(0), Data.octets(bytes(6)))))
    with pytest.raises(DecodeError, match="OBIS logical name needs 6 bytes"):
        parse_sn_object_list(Data.array(Data.structure(
            Data.int16(1), Data.uint16(3), Data.uint8(0), Data.octets(bytes(5)))))
    with pytest.raises(DecodeError, match="base_name 70000"):
        parse_sn_object_list(Data.array(Data.structure(
            Data.uint32(70000), Data.uint16(3), Data.uint8(0), Data.octets(bytes(6)))))


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
names = st.integers(0, 0xFFFF)
blocks = st.integers(0, 0xFFFF)
variables = st.one_of(
    st.builds(VariableName, names),
    st.builds(ParameterizedAccess, names, st.integers(0, 255), data_values),
    st.builds(BlockNumberAccess, blocks),
    st.builds(ReadDataBlockAccess, st.booleans(), blocks, st.binary(max_size=300)),
    st.builds(WriteDataBlockAccess, st.booleans(), blocks),
)
variable_lists = st.lists(variables, max_size=4).map(tuple)
value_lists = st.lists(data_values, max_size=4).map(tuple)
dars = st.sampled_from(list(DataAccessResult))
read_results = st.one_of(
    data_values, dars,
    st.builds(DataBlockResult, st.booleans(), blocks, st.binary(max_size=300)),
    st.builds(BlockNumber, blocks),
)
write_results = st.one_of(dars, st.builds(BlockNumber, blocks))

apdus: st.SearchStrategy[SnApdu] = st.one_of(
    st.builds(ReadRequest, variable_lists),
    st.builds(ReadResponse, st.lists(read_results, max_size=5).map(tuple)),
    st.builds(WriteRequest, variable_lists, value_lists),
    st.builds(UnconfirmedWriteRequest, variable_lists, value_lists),
    st.builds(WriteResponse, st.lists(write_results, max_size=5).map(tuple)),
    st.builds(InformationReportRequest, variable_lists, value_lists,
              st.none() | st.binary(max_size=20)),
)


@settings(max_examples=400, deadline=None)
@given(apdus)
def test_apdu_round_trip(apdu: SnApdu) -> None:
    data = apdu.to_bytes()
    assert decode_sn_apdu(data) == apdu
    assert type(apdu).from_bytes(data) == apdu
    assert isinstance(describe_sn_apdu(data), str)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_any_bytes_decode_or_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_sn_apdu(data)
    assert isinstance(describe_sn_apdu(data), str)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([0x05, 0x06, 0x0C, 0x0D, 0x16, 0x18]), st.binary(max_size=48))
def test_fuzz_sn_tags_decode_or_decode_error(tag: int, body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_sn_apdu(bytes([tag]) + body)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_fuzz_mutated_vectors_decode_or_decode_error(data: st.DataObject) -> None:
    vector = data.draw(st.sampled_from(VECTORS))
    raw = bytearray(vector.data)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError):
        decode_sn_apdu(bytes(raw))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.integers(1, 3))
def test_fuzz_read_blocks_decode_or_decode_error(raw: bytes, count: int) -> None:
    with contextlib.suppress(DecodeError):
        decode_read_blocks(raw, count)


# ------------------------------------------------------------ interop (gurux_dlms, tests only)
def _gurux() -> tuple[Any, Any, Any]:
    return (pytest.importorskip("gurux_dlms"), pytest.importorskip("gurux_dlms.enums"),
            pytest.importorskip("gurux_dlms.objects"))


def _one(frames: Any) -> bytes:
    if isinstance(frames, list):
        (frame,) = frames
        return _one(frame)
    return bytes(frames)


def _gurux_client(conformance: int = 0x1C1B20, pdu: int = 500) -> Any:
    gurux, enums, _ = _gurux()
    client = gurux.GXDLMSClient(False, 0x10, 1, enums.Authentication.NONE, None,
                                enums.InterfaceType.PDU)
    client.aarqRequest()
    aare = Aare(application_context_name=ApplicationContextName.SHORT_NAME_REFERENCING_NO_CIPHERING,
                user_information=InitiateResponse(Conformance(conformance), pdu, vaa_name=0xFA00))
    client.parseAareResponse(_gurux_send(client, aare.to_bytes()).data)
    return client


def _gurux_send(client: Any, apdu: bytes, reply: Any = None) -> Any:
    gurux, _, _ = _gurux()
    reply = gurux.GXReplyData() if reply is None else reply
    client.getData(gurux.GXByteBuffer(apdu), reply)
    return reply


def _register(objects: Any, short_name: int = 0x1200) -> Any:
    register = objects.GXDLMSRegister("1.0.1.8.0.255")
    register.shortName = short_name
    return register


@pytest.mark.interop
def test_gurux_sn_aarq_is_decoded_and_our_aare_understood() -> None:
    gurux, enums, _ = _gurux()
    for auth, password in ((enums.Authentication.NONE, None), (enums.Authentication.LOW, "pw")):
        client = gurux.GXDLMSClient(False, 0x10, 1, auth, password, enums.InterfaceType.PDU)
        aarq = Aarq.from_bytes(_one(client.aarqRequest()))
        assert aarq.application_context_name is (
            ApplicationContextName.SHORT_NAME_REFERENCING_NO_CIPHERING)
        assert aarq.initiate_request is not None
        assert aarq.initiate_request.proposed_conformance == Conformance(0x1C0320)  # as TOHASAN
        assert aarq.calling_authentication_value == (None if password is None else b"pw")
    client = _gurux_client(conformance=0x1C1320, pdu=122)  # the TOHASAN meter's AARE values
    assert client.settings.maxPduSize == 122
    negotiated = client.settings.negotiatedConformance
    flags = enums.Conformance
    for flag in (flags.READ, flags.WRITE, flags.UN_CONFIRMED_WRITE,
                 flags.BLOCK_TRANSFER_WITH_GET_OR_READ, flags.MULTIPLE_REFERENCES,
                 flags.INFORMATION_REPORT, flags.PARAMETERIZED_ACCESS):
        assert negotiated & flag, flag
    for flag in (flags.GET, flags.SET, flags.ACTION, flags.BLOCK_TRANSFER_WITH_SET_OR_WRITE):
        assert not negotiated & flag, flag


@pytest.mark.interop
def test_gurux_read_and_read_list_are_decoded() -> None:
    _, _, objects = _gurux()
    client = _gurux_client()
    register = _register(objects)
    assert decode_sn_apdu(_one(client.read(register, 2))) == ReadRequest.of(0x1208)
    assert decode_sn_apdu(_one(client.read(register, 3))) == ReadRequest.of(0x1210)
    data = objects.GXDLMSData("0.0.42.0.0.255")
    data.shortName = LOGICAL_DEVICE_NAME_BASE_NAME
    request = decode_sn_apdu(_one(client.readList([(register, 2), (data, 2), (register, 3)])))
    assert request == ReadRequest.of(0x1208, 0xFD08, 0x1210)


@pytest.mark.interop
def test_gurux_reads_our_read_responses() -> None:
    _, _, objects = _gurux()
    client = _gurux_client()
    client.read(_register(objects), 2)
    reply = _gurux_send(client, ReadResponse((Data.uint32(123456),)).to_bytes())
    assert (reply.value, reply.error) == (123456, 0)
    client.read(_register(objects), 2)
    reply = _gurux_send(client, ReadResponse((DataAccessResult.READ_WRITE_DENIED,)).to_bytes())
    assert reply.error == 3
    # the LG capture's two-variable answer, as gurux reads it
    client.readList([(_register(objects), 2), (_register(objects, 0xFF00), 2)])
    (two,) = [v for v in VECTORS if v.name == "response-two"]
    reply = _gurux_send(client, two.data)
    assert [bytes(reply.value[0]), reply.value[1]] == [b"LGZ51282380" + bytes(5), "B32"]


@pytest.mark.interop
def test_gurux_write_method_and_report_are_decoded() -> None:
    gurux, enums, objects = _gurux()
    client = _gurux_client()
    data = objects.GXDLMSData("0.0.42.0.0.255")
    data.shortName = 0x2000
    data.value = 42
    write = decode_sn_apdu(_one(client.write(data, 2)))
    assert write == WriteRequest((VariableName(0x2008),), (Data.int32(42),))
    assert _gurux_send(client, WriteResponse((DataAccessResult.SUCCESS,)).to_bytes()).error == 0
    association = objects.GXDLMSAssociationShortName()  # base_name 0xFA00
    for method in (1, 8):
        request = decode_sn_apdu(_one(client.method(association, method, b"\x01" * 16,
                                                    enums.DataType.OCTET_STRING)))
        assert isinstance(request, WriteRequest)
        assert request.variables == (VariableName(method_short_name(0xFA00, 12, method)),)
    ln_association = objects.GXDLMSAssociationLogicalName()
    ln_association.shortName = 0xFB00
    request = decode_sn_apdu(_one(client.method(ln_association, 1, b"\x02" * 16,
                                                enums.DataType.OCTET_STRING)))
    assert isinstance(request, WriteRequest)
    assert request.variables == (VariableName(method_short_name(0xFB00, 15, 1)),)
    notify = gurux.GXDLMSNotify(False, 0x10, 1, enums.InterfaceType.PDU)
    register = _register(objects)
    register.value = 5
    report = decode_sn_apdu(_one(notify.generateReport(None, [(register, 2)])))
    assert report == InformationReportRequest((VariableName(0x1208),), (Data.int32(5),))


@pytest.mark.interop
def test_gurux_object_list_is_parsed() -> None:
    gurux, _, objects = _gurux()
    association = objects.GXDLMSAssociationShortName()
    for cls, obis, short_name in ((objects.GXDLMSRegister, "1.0.1.8.0.255", 0x1200),
                                  (objects.GXDLMSClock, "0.0.1.0.0.255", 0x2000),
                                  (objects.GXDLMSData, "0.0.42.0.0.255", 0xFD00)):
        item = cls(obis)
        item.shortName = short_name
        association.objectList.append(item)
    association.objectList.append(association)
    settings_ = gurux.GXDLMSSettings(False, None)  # the server branch is broken
    event = gurux.ValueEventArgs(settings_, association, 2, 0, None)
    raw = bytes(association.getValue(settings_, event))
    assert parse_sn_object_list(decode_data_all(raw)) == {
        Obis(1, 0, 1, 8, 0, 255): (0x1200, 3), Obis(0, 0, 1, 0, 0, 255): (0x2000, 8),
        Obis(0, 0, 42, 0, 0, 255): (0xFD00, 1), Obis(0, 0, 40, 0, 0, 255): (0xFA00, 12)}


@pytest.mark.interop
def test_gurux_stock_bug_sn_block_transfer() -> None:
    # gurux_dlms 1.0.203 (Python) cannot read any SN data-block-result: its
    # readResponseDataBlockResult calls GXReplyData.setTotalCount, which does not exist.
    # So no block sequence of ours can be cross-checked with it; this test tells when
    # that changes.
    _, _, objects = _gurux()
    client = _gurux_client()
    client.read(_register(objects), 2)
    block = ReadResponse((DataBlockResult(True, 1, b"\x01\x00" + encode_data(Data.uint8(1))),))
    with pytest.raises(AttributeError, match="setTotalCount"):
        _gurux_send(client, block.to_bytes())
