"""Interop of dlmsd.protocol.hdlc with gurux_dlms, an independent
implementation (GPLv2; used here in tests only, never by dlmsd itself).

Both roles: gurux as the client against our HdlcServerConnection, and our
HdlcClientConnection against gurux's server-side frame parser
(``GXDLMS.getData`` with server settings) and its receiver-ready frames.
"""

from __future__ import annotations

from typing import Any

import pytest

from dlmsd.protocol.hdlc import (
    ApduReceived,
    Connected,
    Event,
    HdlcClientConnection,
    HdlcServerConnection,
)
from dlmsd.protocol.hdlc_frame import (
    NEED_DATA,
    Control,
    Frame,
    FrameType,
    HdlcAddress,
    HdlcDeframer,
    HdlcParameters,
    encode_server_address,
)

gurux = pytest.importorskip("gurux_dlms")
from gurux_dlms import (  # type: ignore[import-untyped]  # noqa: E402
    GXByteBuffer,
    GXDLMSClient,
    GXDLMSTranslator,
    GXReplyData,
)
from gurux_dlms.enums import (  # type: ignore[import-untyped]  # noqa: E402
    Authentication,
    InterfaceType,
    RequestTypes,
    TranslatorOutputType,
)
from gurux_dlms.GXDLMS import GXDLMS  # type: ignore[import-untyped]  # noqa: E402
from gurux_dlms.GXDLMSSettings import (  # type: ignore[import-untyped]  # noqa: E402
    GXDLMSSettings,
)

pytestmark = pytest.mark.interop

# AARE from the Gurux Director trace gist.github.com/knogi/f3d4853b936164882e5ed653498e7b61
AARE = bytes.fromhex(
    "61820029A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000101D03EF0007"
)


def _gurux_client(logical: int, physical: int | None, size: int, max_info: tuple[int, int]) -> Any:
    combined = GXDLMSClient.getServerAddress(logical, physical or 0, size) if size > 1 else logical
    client = GXDLMSClient(True, 16, combined, Authentication.NONE, None, InterfaceType.HDLC)
    client.serverAddressSize = size
    client.hdlcSettings.maxInfoTX, client.hdlcSettings.maxInfoRX = max_info
    return client


def _drain(conn: HdlcClientConnection | HdlcServerConnection) -> list[Event]:
    events = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
    return events


@pytest.mark.parametrize(
    ("logical", "physical", "size"), [(1, None, 1), (1, 17, 2), (1, 1259, 4), (0x3FFF, 0x3FFF, 4)]
)
@pytest.mark.parametrize("max_info", [(128, 128), (32, 32), (1010, 1010), (2030, 2030), (64, 256)])
def test_our_snrm_is_byte_identical_to_gurux(
    logical: int, physical: int | None, size: int, max_info: tuple[int, int]
) -> None:
    theirs = bytes(_gurux_client(logical, physical, size, max_info).snrmRequest())
    ours = HdlcClientConnection(
        16,
        encode_server_address(logical, physical, size),
        max_info_tx=max_info[0],
        max_info_rx=max_info[1],
    ).connect()
    assert ours == theirs
    frame = Frame.from_bytes(theirs)
    assert frame.destination == HdlcAddress(logical, physical, size)
    assert frame.control == Control(FrameType.SNRM, True)
    assert HdlcParameters.from_bytes(frame.information) == HdlcParameters(*max_info)


def test_recorded_segmented_aarq_vector_is_what_gurux_produces() -> None:
    client = _gurux_client(1, 1259, 4, (32, 128))
    frames = [bytes(f) for f in client.aarqRequest()]
    assert [f.hex().upper() for f in frames] == [
        "7EA829000212D721105834E6E600601DA109060760857405080101BE10040E01000000065F1F040061867E",
        "7EA011000212D721125032401E5DFFFF95AC7E",
    ]
    deframer = HdlcDeframer()
    deframer.receive_data(b"".join(frames))
    first, second = deframer.next_frame(), deframer.next_frame()
    assert isinstance(first, Frame) and isinstance(second, Frame)
    assert first.segmented and not second.segmented


def test_gurux_client_against_our_server_with_segmentation_both_ways() -> None:
    client = _gurux_client(1, 17, 2, (32, 32))
    server = HdlcServerConnection(encode_server_address(1, 17, 2))

    server.receive_data(bytes(client.snrmRequest()))
    assert _drain(server) == [Connected(HdlcParameters(32, 32))]
    reply = GXReplyData()
    assert client.getData(GXByteBuffer(server.data_to_send()), reply)
    client.parseUAResponse(reply.data)
    assert (client.hdlcSettings.maxInfoTX, client.hdlcSettings.maxInfoRX) == (32, 32)

    # gurux segments its AARQ; our server acknowledges each segment with RR,
    # which gurux accepts, and delivers one APDU.
    frames = [bytes(f) for f in client.aarqRequest()]
    assert len(frames) > 1
    delivered: list[bytes] = []
    for frame in frames:
        server.receive_data(frame)
        delivered += [e.apdu for e in _drain(server) if isinstance(e, ApduReceived)]
        rr = server.data_to_send()
        if frame is not frames[-1]:
            assert Frame.from_bytes(rr).control.type is FrameType.RR
            assert client.getData(GXByteBuffer(rr), GXReplyData())
    infos = b"".join(Frame.from_bytes(f).information for f in frames)
    assert delivered == [infos[3:]]

    # Our server answers with a segmented AARE; gurux reassembles it, asking for
    # each segment with its own RR, and parses it.
    out = server.send_apdu(AARE)
    reply = GXReplyData()
    segments = 0
    while True:
        assert client.getData(GXByteBuffer(out), reply)
        segments += 1
        if not reply.moreData & RequestTypes.FRAME:
            break
        server.receive_data(bytes(client.receiverReady(reply)))
        assert _drain(server) == []
        out = server.data_to_send()
    assert segments == 2
    assert bytes(reply.data.array()) == AARE
    client.parseAareResponse(reply.data)  # raises if gurux rejects it


def test_our_client_against_gurux_server_side_parser() -> None:
    settings = GXDLMSSettings(True, None)
    settings.interfaceType = InterfaceType.HDLC
    settings.serverAddress = GXDLMSClient.getServerAddress(1, 17, 2)
    settings.clientAddress = 16

    client = HdlcClientConnection(16, encode_server_address(1, 17, 2), max_info_tx=32)
    snrm = client.connect()
    reply = GXReplyData()
    assert GXDLMS.getData(settings, GXByteBuffer(snrm), reply, None)
    assert reply.command == 0x93  # SNRM
    assert bytes(reply.data.array()) == HdlcParameters(32, 128).to_bytes()
    settings.resetFrameSequence()
    ua = Frame(
        HdlcAddress(16),
        HdlcAddress(1, 17, 2),
        Control(FrameType.UA, True),
        HdlcParameters(32, 32).to_bytes(include_defaults=True),
    )
    client.receive_data(ua.to_bytes())
    assert _drain(client) == [Connected(HdlcParameters(32, 32))]

    # A 203-octet request in 7 segments: gurux checks every N(S)/N(R) and the
    # segmentation bit, answers each non-final segment with RR, which our
    # client takes as the go-ahead for the next segment.
    apdu = bytes.fromhex("C001C1") + bytes(range(200))
    out = client.send_apdu(apdu)
    reply = GXReplyData()
    frames = 0
    while True:
        assert GXDLMS.getData(settings, GXByteBuffer(out), reply, None)
        frames += 1
        if not reply.moreData & RequestTypes.FRAME:
            break
        client.receive_data(bytes(GXDLMS.receiverReady(settings, reply)))
        assert _drain(client) == []
        out = client.data_to_send()
    assert frames == 7
    assert bytes(reply.data.array()) == apdu


def test_gurux_translator_reads_our_frames() -> None:
    translator = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    client = HdlcClientConnection(
        16, encode_server_address(1, 17, 4), max_info_tx=1010, max_info_rx=512
    )
    xml = translator.messageToXml(GXByteBuffer(client.connect()))
    assert '<TargetAddress Value="4011" />' in xml  # gurux's 1 << 14 | 17
    assert '<MaxInfoTX Value="1010" />' in xml
    assert '<MaxInfoRX Value="512" />' in xml
