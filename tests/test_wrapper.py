"""The IEC 62056-47 wrapper: header codec and the sans-I/O byte stream.

Vector sources:
* ``GURUX_AARQ_FRAME``: produced by gurux_dlms 1.0.203
  ``GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER).aarqRequest()``
  (client wPort 0x10 -> logical device 1); the same header ``00 01 00 10 00 01 00 1F``
  is in front of the same AARQ in public client scripts found with the code index.
* ``AARE_FRAME``: header computed by us (server 1 -> client 0x10, 43 bytes) around the
  Green Book's example AARE (see tests/test_acse.py for its source).
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsd.errors import DecodeError, LocalProtocolError
from dlmsd.protocol.wrapper import (
    HEADER_SIZE,
    NEED_DATA,
    ApduReceived,
    Role,
    WrapperConnection,
    WrapperHeader,
    describe,
)

AARQ = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400401E5DFFFF")
GURUX_AARQ_FRAME = bytes.fromhex("000100100001001F") + AARQ
AARE = bytes.fromhex(
    "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000501F01F40007"
)
AARE_FRAME = bytes.fromhex("000100010010002B") + AARE


def drain(conn: WrapperConnection) -> list[ApduReceived]:
    events = []
    while (event := conn.next_event()) is not NEED_DATA:
        assert isinstance(event, ApduReceived)
        events.append(event)
    return events


# ------------------------------------------------------------------ header
@pytest.mark.parametrize(
    ("frame", "header"),
    [
        (GURUX_AARQ_FRAME, WrapperHeader(source=0x10, destination=0x01, length=0x1F)),
        (AARE_FRAME, WrapperHeader(source=0x01, destination=0x10, length=0x2B)),
    ],
    ids=["gurux-aarq", "green-book-aare"],
)
def test_header_vectors_both_directions(frame: bytes, header: WrapperHeader) -> None:
    assert WrapperHeader.from_bytes(frame[:HEADER_SIZE]) == header
    assert header.to_bytes() == frame[:HEADER_SIZE]
    assert header.length == len(frame) - HEADER_SIZE


def test_header_needs_exactly_eight_bytes() -> None:
    with pytest.raises(DecodeError, match="8 bytes, got 7"):
        WrapperHeader.from_bytes(GURUX_AARQ_FRAME[:7])
    with pytest.raises(DecodeError):
        WrapperHeader.from_bytes(GURUX_AARQ_FRAME[:9])


def test_header_rejects_values_that_do_not_fit() -> None:
    with pytest.raises(LocalProtocolError, match="length 65536"):
        WrapperHeader(1, 1, 0x10000)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
       st.integers(0, 0xFFFF))
def test_header_round_trip(version: int, source: int, destination: int, length: int) -> None:
    header = WrapperHeader(source, destination, length, version)
    data = header.to_bytes()
    assert len(data) == HEADER_SIZE
    assert WrapperHeader.from_bytes(data) == header


def test_describe_frame_and_header() -> None:
    assert describe(GURUX_AARQ_FRAME) == "WRAPPER v1 0x0010->0x0001 len=31"
    assert describe(GURUX_AARQ_FRAME[:20]) == "WRAPPER v1 0x0010->0x0001 len=31 (carries 12)"
    assert describe(b"\x00\x01") == "WRAPPER truncated (2 bytes)"


# ------------------------------------------------------------------ sending
def test_client_sends_from_its_wport_to_the_server() -> None:
    conn = WrapperConnection(client_wport=0x10, server_wport=0x01)
    assert conn.send_apdu(AARQ) == GURUX_AARQ_FRAME


def test_server_sends_from_its_wport_to_the_client() -> None:
    conn = WrapperConnection(client_wport=0x10, server_wport=0x01, role=Role.SERVER)
    assert conn.send_apdu(AARE) == AARE_FRAME


def test_send_checks_the_length_field() -> None:
    conn = WrapperConnection(0x10, 0x01)
    with pytest.raises(LocalProtocolError, match="does not fit"):
        conn.send_apdu(bytes(0x10000))
    with pytest.raises(LocalProtocolError, match="empty"):
        conn.send_apdu(b"")
    assert len(conn.send_apdu(bytes(0xFFFF))) == HEADER_SIZE + 0xFFFF


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(LocalProtocolError):
        WrapperConnection(0x10000, 1)
    with pytest.raises(LocalProtocolError):
        WrapperConnection(0x10, 1, max_apdu_size=0)
    with pytest.raises(LocalProtocolError):
        WrapperConnection(0x10, 1, max_apdu_size=0x10000)


# ------------------------------------------------------------------ receiving
def test_receive_whole_frame() -> None:
    conn = WrapperConnection(0x10, 0x01)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(AARE_FRAME)
    assert drain(conn) == [ApduReceived(AARE, source=0x01, destination=0x10)]
    assert conn.buffered == 0


def test_receive_one_byte_at_a_time() -> None:
    conn = WrapperConnection(0x10, 0x01)
    events: list[ApduReceived] = []
    for i, byte in enumerate(AARE_FRAME):
        conn.receive_data(bytes([byte]))
        got = drain(conn)
        if i < len(AARE_FRAME) - 1:
            assert got == []
        events += got
    assert [e.apdu for e in events] == [AARE]


def test_receive_two_frames_and_a_partial_third_in_one_chunk() -> None:
    conn = WrapperConnection(0x10, 0x01)
    conn.receive_data(AARE_FRAME + AARE_FRAME + AARE_FRAME[:5])
    assert [e.apdu for e in drain(conn)] == [AARE, AARE]
    assert conn.buffered == 5
    conn.receive_data(AARE_FRAME[5:])
    assert [e.apdu for e in drain(conn)] == [AARE]


def test_server_role_receives_gurux_client_frames() -> None:
    conn = WrapperConnection(client_wport=0x10, server_wport=0x01, role=Role.SERVER)
    conn.receive_data(GURUX_AARQ_FRAME)
    assert drain(conn) == [ApduReceived(AARQ, source=0x10, destination=0x01)]


def test_wrong_version_breaks_the_stream() -> None:
    conn = WrapperConnection(0x10, 0x01)
    conn.receive_data(b"\x00\x02" + AARE_FRAME[2:])
    with pytest.raises(DecodeError, match="version 2") as info:
        conn.next_event()
    assert info.value.code == 2
    # Out of step for good: every later call reports the same error.
    with pytest.raises(DecodeError, match="version 2"):
        conn.next_event()
    with pytest.raises(DecodeError, match="version 2"):
        conn.receive_data(AARE_FRAME)
    assert "BROKEN" in conn.describe()


def test_length_above_the_maximum_breaks_the_stream() -> None:
    conn = WrapperConnection(0x10, 0x01, max_apdu_size=32)
    conn.receive_data(AARE_FRAME[:HEADER_SIZE])  # announces 43 bytes
    with pytest.raises(DecodeError, match="length 43 above the maximum APDU size 32"):
        conn.next_event()
    with pytest.raises(DecodeError):
        conn.next_event()


def test_foreign_ports_are_an_error_but_the_stream_stays_in_step() -> None:
    conn = WrapperConnection(0x10, 0x01)
    foreign = WrapperHeader(0x01, 0x11, len(AARE)).to_bytes() + AARE
    conn.receive_data(foreign + AARE_FRAME)
    with pytest.raises(DecodeError, match=r"0x0001->0x0011 .*\(expected 0x0001->0x0010\)"):
        conn.next_event()
    assert drain(conn) == [ApduReceived(AARE, 0x01, 0x10)]


def test_foreign_ports_are_dropped_and_counted_when_not_strict() -> None:
    conn = WrapperConnection(0x10, 0x01, strict_ports=False)
    foreign = WrapperHeader(0x02, 0x10, len(AARE)).to_bytes() + AARE
    conn.receive_data(foreign + foreign + AARE_FRAME)
    assert drain(conn) == [ApduReceived(AARE, 0x01, 0x10)]
    assert conn.dropped_frames == 2
    assert conn.describe() == "wrapper client 0x0010<->0x0001 buffered=0 dropped=2"


def test_empty_apdu_is_reported_and_skipped() -> None:
    conn = WrapperConnection(0x10, 0x01)
    conn.receive_data(WrapperHeader(0x01, 0x10, 0).to_bytes() + AARE_FRAME)
    with pytest.raises(DecodeError, match="empty APDU"):
        conn.next_event()
    assert [e.apdu for e in drain(conn)] == [AARE]


def test_receive_buffer_is_bounded() -> None:
    conn = WrapperConnection(0x10, 0x01, max_apdu_size=64)
    assert conn.max_buffer == 2 * (HEADER_SIZE + 64)
    conn.receive_data(bytes(conn.max_buffer))
    with pytest.raises(DecodeError, match="buffered"):
        conn.receive_data(b"\x00")


# ------------------------------------------------------------------ properties
@settings(max_examples=200, deadline=None)
@given(
    apdus=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=5),
    cuts=st.lists(st.integers(1, 64), max_size=40),
)
def test_any_chunking_delivers_the_same_apdus(apdus: list[bytes], cuts: list[int]) -> None:
    client = WrapperConnection(0x10, 0x01)
    server = WrapperConnection(0x10, 0x01, role=Role.SERVER)
    stream = b"".join(client.send_apdu(apdu) for apdu in apdus)
    received: list[bytes] = []
    pos = 0
    for cut in [*cuts, len(stream)]:
        server.receive_data(stream[pos : pos + cut])
        pos += cut
        received += [e.apdu for e in drain(server)]
        if pos >= len(stream):
            break
    if pos < len(stream):
        server.receive_data(stream[pos:])
        received += [e.apdu for e in drain(server)]
    assert received == apdus


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.binary(max_size=80), max_size=8), strict=st.booleans())
def test_fuzz_any_bytes_only_decode_error(chunks: list[bytes], strict: bool) -> None:
    conn = WrapperConnection(0x10, 0x01, max_apdu_size=128, strict_ports=strict)
    for chunk in chunks:
        try:
            conn.receive_data(chunk)
            for _ in range(len(chunk) + 2):
                if conn.next_event() is NEED_DATA:
                    break
        except DecodeError:
            continue


@settings(max_examples=200, deadline=None)
@given(prefix=st.binary(min_size=8, max_size=8), body=st.binary(max_size=40))
def test_fuzz_headers_with_valid_version(prefix: bytes, body: bytes) -> None:
    conn = WrapperConnection(0x10, 0x01, max_apdu_size=64)
    conn.receive_data(b"\x00\x01" + prefix[2:] + body)
    with contextlib.suppress(DecodeError):
        drain(conn)


# ------------------------------------------------------------------ interop
@pytest.mark.interop
def test_gurux_client_frames_are_read_by_our_server_role() -> None:
    gurux = pytest.importorskip("gurux_dlms")
    enums = pytest.importorskip("gurux_dlms.enums")
    client = gurux.GXDLMSClient(True, 0x10, 1, enums.Authentication.LOW, "12345678",
                                enums.InterfaceType.WRAPPER)
    conn = WrapperConnection(0x10, 0x01, role=Role.SERVER)
    for frame in client.aarqRequest():
        conn.receive_data(bytes(frame))
    (event,) = drain(conn)
    assert event.source == 0x10 and event.destination == 0x01
    assert event.apdu[0] == 0x60
