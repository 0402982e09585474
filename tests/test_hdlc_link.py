"""Link-layer tests of dlmsd.protocol.hdlc: HdlcClientConnection and
HdlcServerConnection talking to each other in memory, through lines that cut,
pad, corrupt and lose frames."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reader import VOLTAGE, Session

from dlmsd.errors import (
    AnswerLost,
    DecodeError,
    DlmsTimeout,
    LinkOutOfStep,
    LocalProtocolError,
    RemoteProtocolError,
)
from dlmsd.protocol.hdlc import (
    ApduReceived,
    Connected,
    Disconnected,
    Event,
    FrameRejected,
    HdlcClientConnection,
    HdlcClientState,
    HdlcServerConnection,
    PeerBusy,
    ServerState,
)
from dlmsd.protocol.hdlc_frame import (
    NEED_DATA,
    Control,
    Frame,
    FrameTrace,
    FrameType,
    HdlcAddress,
    HdlcParameters,
    encode_server_address,
)
from dlmsd.protocol.link import HdlcLink

SERVER = encode_server_address(1, 17, 2)
SERVER_ADDR = HdlcAddress(1, 17, 2)
CLIENT_ADDR = HdlcAddress(16)


def drain(conn: HdlcClientConnection | HdlcServerConnection) -> list[Event]:
    events = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def split_frames(data: bytes) -> list[bytes]:
    """Cut what a connection produced (whole frames, each with both flags)."""
    frames = []
    pos = 0
    while pos < len(data):
        length = ((data[pos + 1] & 0x07) << 8) | data[pos + 2]
        frames.append(data[pos : pos + length + 2])
        pos += length + 2
    return frames


@dataclass
class Line:
    """One direction of a faulty line. Frames are numbered from 0 in the order
    they are carried; ``corrupt`` and ``drop`` name frame numbers."""

    chunk: int = 0  # deliver in pieces of this size (0: whole)
    noise: bytes = b""  # sent before every frame
    corrupt: set[int] = field(default_factory=set)
    drop: set[int] = field(default_factory=set)
    carried: int = 0
    log: list[bytes] = field(default_factory=list)

    def carry(self, data: bytes) -> Iterator[bytes]:
        stream = bytearray()
        for frame in split_frames(data):
            index = self.carried
            self.carried += 1
            self.log.append(frame)
            if index in self.drop:
                continue
            if index in self.corrupt:
                damaged = bytearray(frame)
                damaged[len(damaged) // 2] ^= 0x24
                frame = bytes(damaged)
            stream += self.noise + frame
        if not self.chunk:
            if stream:
                yield bytes(stream)
            return
        for i in range(0, len(stream), self.chunk):
            yield bytes(stream[i : i + self.chunk])


def deliver(line: Line, data: bytes, conn: HdlcClientConnection | HdlcServerConnection) -> None:
    for piece in line.carry(data):
        conn.receive_data(piece)


@dataclass
class Pair:
    client: HdlcClientConnection
    server: HdlcServerConnection
    up: Line = field(default_factory=Line)  # client -> server
    down: Line = field(default_factory=Line)  # server -> client
    timeouts: int = 0

    def connect(self) -> HdlcParameters:
        out = self.client.connect()
        for _ in range(10):
            deliver(self.up, out, self.server)
            drain(self.server)
            deliver(self.down, self.server.data_to_send(), self.client)
            events = drain(self.client)
            if events:
                assert isinstance(events[0], Connected)
                return events[0].params
            self.timeouts += 1
            out = self.client.retransmit()
        raise AssertionError("no connection")

    def exchange(self, request: bytes, response: bytes, max_steps: int = 2000) -> bytes:
        """Client sends ``request``; the server application answers ``response``.
        When nothing is on the line, the client's timer fires (retransmit)."""
        out = self.client.send_apdu(request)
        got: list[bytes] = []
        served: list[bytes] = []
        for _ in range(max_steps):
            deliver(self.up, out, self.server)
            answer = b""
            for event in drain(self.server):
                assert isinstance(event, ApduReceived)
                served.append(event.apdu)
                answer += self.server.send_apdu(response)
            deliver(self.down, self.server.data_to_send() + answer, self.client)
            for event in drain(self.client):
                assert isinstance(event, ApduReceived)
                got.append(event.apdu)
            if got:
                # The meter's application sees the request once, or again only when
                # the client asked anew after an answer was lost for good (a
                # repeatable request, counted in resyncs).
                assert served == [request] * len(served)
                assert len(served) == 1 or self.client.resyncs > 0
                assert got == [response]
                return got[0]
            out = self.client.data_to_send()
            if not out:
                self.timeouts += 1
                out = self.client.retransmit()
        raise AssertionError("exchange did not finish")


def make_pair(
    *,
    client_info: tuple[int, int] = (32, 32),
    server_info: tuple[int, int] = (128, 128),
    up: Line | None = None,
    down: Line | None = None,
    max_apdu_size: int = 65535,
) -> Pair:
    client = HdlcClientConnection(
        16,
        SERVER,
        max_info_tx=client_info[0],
        max_info_rx=client_info[1],
        max_apdu_size=max_apdu_size,
    )
    server = HdlcServerConnection(SERVER, max_info_tx=server_info[0], max_info_rx=server_info[1])
    return Pair(client, server, up or Line(), down or Line())


def state_of(client: HdlcClientConnection) -> HdlcClientState:
    """The state, read through a call so that mypy does not narrow it."""
    return client.state


def payload(n: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) % 256 for i in range(n))


def server_frame(control: Control, info: bytes = b"", segmented: bool = False) -> bytes:
    return Frame(CLIENT_ADDR, SERVER_ADDR, control, info, segmented).to_bytes()


def connected_client(max_info: int = 128) -> HdlcClientConnection:
    client = HdlcClientConnection(16, SERVER, max_info_tx=max_info, max_info_rx=max_info)
    client.connect()
    ua = HdlcParameters(max_info, max_info).to_bytes(include_defaults=True)
    client.receive_data(server_frame(Control(FrameType.UA, True), ua))
    assert drain(client) == [Connected(HdlcParameters(max_info, max_info))]
    return client


# ---------------------------------------------------------------------------
# Connection set-up and negotiation
# ---------------------------------------------------------------------------


def test_negotiation_takes_the_smaller_value_per_direction() -> None:
    pair = make_pair(client_info=(32, 64), server_info=(128, 48))
    params = pair.connect()
    # client tx <= server rx 48 -> 32; client rx <= server tx 128 -> 64
    assert params == HdlcParameters(32, 64, 1, 1)
    assert pair.client.params == params
    assert pair.server.params == HdlcParameters(64, 32, 1, 1)
    ua = Frame.from_bytes(pair.down.log[0])
    assert ua.control == Control(FrameType.UA, True)
    assert HdlcParameters.from_bytes(ua.information) == HdlcParameters(64, 32)


def test_default_snrm_has_no_information_field() -> None:
    client = HdlcClientConnection(16, encode_server_address(1, None, 1))
    # Task brief / gurux default snrmRequest().
    assert client.connect() == bytes.fromhex("7EA0070321930F017E")


def test_ua_of_the_pastebin_trace_negotiates_down() -> None:
    # pastebin.com/7HTFDmEv: the client proposed 1500/1500, the meter's UA
    # states tx 248, rx 62 (its own view): we may send 62 and receive 248.
    client = HdlcClientConnection(
        32, encode_server_address(1, 8821, 4), max_info_tx=1500, max_info_rx=1500
    )
    snrm = Frame.from_bytes(client.connect())
    assert HdlcParameters.from_bytes(snrm.information) == HdlcParameters(1500, 1500)
    client.receive_data(
        bytes.fromhex("7EA02141000288EB73B8BB8180120501F806013E070400000001080400000001480E7E")
    )
    assert drain(client) == [Connected(HdlcParameters(62, 248, 1, 1))]
    assert client.deframer.max_frame_length == 248 + 15


def test_ua_of_kmethy_gives_defaults() -> None:
    client = HdlcClientConnection(16, encode_server_address(1, 17, 4))
    assert client.connect() == bytes.fromhex("7EA00A00020023219318717E")  # Kmethy's SNRM
    client.receive_data(
        bytes.fromhex("7EA023210002002373F6C58180140502008006020080070400000001080400000001CE6A7E")
    )
    assert drain(client) == [Connected(HdlcParameters())]


def test_ua_without_information_means_defaults() -> None:
    client = HdlcClientConnection(16, SERVER, max_info_tx=1000, max_info_rx=1000)
    client.connect()
    client.receive_data(server_frame(Control(FrameType.UA, True)))
    assert drain(client) == [Connected(HdlcParameters(128, 128, 1, 1))]


def test_server_offering_more_than_proposed_is_capped() -> None:
    client = HdlcClientConnection(16, SERVER, max_info_tx=64, max_info_rx=64)
    client.connect()
    ua = HdlcParameters(2030, 2030, 7, 7).to_bytes(include_defaults=True)
    client.receive_data(server_frame(Control(FrameType.UA, True), ua))
    assert drain(client) == [Connected(HdlcParameters(64, 64, 1, 1))]


def test_lost_ua_is_recovered_by_resending_snrm() -> None:
    pair = make_pair(down=Line(drop={0}))
    pair.connect()
    assert pair.timeouts == 1
    assert pair.up.log[0] == pair.up.log[1]  # the same SNRM twice
    assert pair.client.retransmissions == 1
    assert pair.client.state is HdlcClientState.IDLE


def test_snrm_refused_with_dm() -> None:
    client = HdlcClientConnection(16, SERVER)
    client.connect()
    client.receive_data(server_frame(Control(FrameType.DM, True)))
    assert drain(client) == [Disconnected("DM")]
    assert client.state is HdlcClientState.DISCONNECTED
    assert client.params is None


def test_bad_max_info_settings() -> None:
    with pytest.raises(LocalProtocolError):
        HdlcClientConnection(16, SERVER, max_info_tx=2031)
    with pytest.raises(LocalProtocolError):
        HdlcServerConnection(SERVER, max_info_rx=31)
    with pytest.raises(LocalProtocolError):
        HdlcClientConnection(16, b"\x02\x02\x03")


# ---------------------------------------------------------------------------
# Data transfer with segmentation
# ---------------------------------------------------------------------------


def test_1000_octets_both_ways_with_max_info_32() -> None:
    pair = make_pair(client_info=(32, 32), server_info=(32, 32))
    pair.connect()
    request, response = payload(1000, 1), payload(1000, 2)
    assert pair.exchange(request, response) == response
    assert pair.timeouts == 0
    up = [Frame.from_bytes(f) for f in pair.up.log[1:]]
    down = [Frame.from_bytes(f) for f in pair.down.log[1:]]
    # 1003 octets with the LLC header: 32 I frames each way, 31 RRs each way.
    up_i = [f for f in up if f.control.type is FrameType.I]
    down_i = [f for f in down if f.control.type is FrameType.I]
    assert len(up_i) == len(down_i) == 32
    assert all(len(f.information) <= 32 for f in up_i + down_i)
    assert [f.segmented for f in up_i] == [True] * 31 + [False]
    assert up_i[0].information.startswith(b"\xe6\xe6\x00")
    assert down_i[0].information.startswith(b"\xe6\xe7\x00")
    assert sum(f.control.type is FrameType.RR for f in up) == 31
    assert sum(f.control.type is FrameType.RR for f in down) == 31
    # N(S) runs modulo 8 on both sides.
    assert [f.control.ns for f in up_i[:10]] == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]
    assert pair.client.state is HdlcClientState.IDLE
    assert pair.server.state is ServerState.IDLE
    # And the next exchange continues the sequence numbers.
    assert pair.exchange(b"\xc0\x01\xc1", b"\xc4\x01\xc1\x00") == b"\xc4\x01\xc1\x00"


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_chunked_delivery_with_noise_between_frames(chunk: int) -> None:
    noise = b"\x00\xff\x13\xa0"
    pair = make_pair(up=Line(chunk=chunk, noise=noise), down=Line(chunk=chunk, noise=noise))
    pair.connect()
    response = payload(700, 3)
    assert pair.exchange(payload(300), response) == response
    assert pair.timeouts == 0
    assert pair.client.deframer.crc_errors == pair.server.deframer.crc_errors == 0
    assert pair.client.deframer.garbage_bytes > 0


@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("index", [1, 5, 12])
def test_corrupted_frame_is_dropped_counted_and_recovered(direction: str, index: int) -> None:
    line = Line(corrupt={index})
    pair = make_pair(**{direction: line})  # type: ignore[arg-type]
    pair.connect()
    request, response = payload(500, 4), payload(500, 5)
    assert pair.exchange(request, response) == response
    receiver = pair.server if direction == "up" else pair.client
    assert receiver.deframer.crc_errors == 1
    assert pair.timeouts == 1
    assert pair.client.duplicates == pair.server.duplicates == 0


@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("index", [1, 2, 16, 17, 31])
def test_lost_frame_is_recovered(direction: str, index: int) -> None:
    line = Line(drop={index})
    pair = make_pair(**{direction: line})  # type: ignore[arg-type]
    pair.connect()
    request, response = payload(500, 6), payload(500, 7)
    assert pair.exchange(request, response) == response
    assert pair.timeouts == 1


def test_lost_final_response_is_replayed_on_the_repeated_request() -> None:
    # Short request and response: up 0 SNRM, 1 I; down 0 UA, 1 I (lost).
    pair = make_pair(down=Line(drop={1}))
    pair.connect()
    assert pair.exchange(b"\xc0\x01", b"\xc4\x01") == b"\xc4\x01"
    assert pair.up.log[2] == pair.up.log[1]  # the request frame again, N(S)=0
    assert pair.down.log[1] == pair.down.log[2]  # the server replayed the same I frame
    assert pair.server.retransmissions == 1 and pair.server.duplicates == 1
    assert pair.client.resyncs == 0


def test_answer_lost_for_good_is_asked_anew() -> None:
    """A meter that does not replay (gurux's 1.0.203 ignores a repeated I frame): the
    second retransmit sends the request as a new frame, acknowledging the lost one,
    and the link takes the meter's numbering from its next frame."""
    client = connected_client()
    first = Frame.from_bytes(client.send_apdu(b"\xc0\x01"))
    assert first.control == Control(FrameType.I, True, 0, 0)
    assert Frame.from_bytes(client.retransmit()).control == first.control  # ignored
    anew = Frame.from_bytes(client.retransmit())
    assert anew.control == Control(FrameType.I, True, 1, 1) and anew.information == (
        first.information)
    client.receive_data(server_frame(Control(FrameType.I, True, 1, 2), b"\xe6\xe7\x00\xc4"))
    assert drain(client) == [ApduReceived(b"\xc4")]
    assert client.resyncs == 1 and client.state is HdlcClientState.IDLE
    nxt = Frame.from_bytes(client.send_apdu(b"\xc0\x02"))
    assert nxt.control == Control(FrameType.I, True, 2, 2)  # in step again


def test_a_request_that_must_not_run_twice_is_not_asked_anew() -> None:
    client = connected_client()
    first = client.send_apdu(b"\xc1\x01", repeatable=False)
    assert client.retransmit() == first
    assert client.retransmit() == first
    assert client.resyncs == 0


def test_segment_lost_for_good_spoils_the_answer_which_is_asked_anew() -> None:
    """A meter that takes our RR for the lost segment's acknowledgement and goes on
    with the next one (gurux's): the rest of that answer is read and dropped, and the
    request goes again as a new frame; its answer is delivered whole."""
    client = connected_client()
    client.send_apdu(b"\xc0\x01")
    seg = server_frame(Control(FrameType.I, True, 0, 1), b"\xe6\xe7\x00\xc4\x01",
                       segmented=True)
    client.receive_data(seg)
    assert drain(client) == [] and client.data_to_send()  # RR: the next segment, please
    # segment N(S)=1 is lost; the meter sends N(S)=2 (segmented) and N(S)=3 (last)
    client.receive_data(server_frame(Control(FrameType.I, True, 2, 1), b"\x02",
                                     segmented=True))
    assert drain(client) == []
    assert Frame.from_bytes(client.data_to_send()).control == Control(FrameType.RR, True,
                                                                      0, 3)
    client.receive_data(server_frame(Control(FrameType.I, True, 3, 1), b"\x03"))
    assert drain(client) == []  # spoilt: not delivered
    anew = Frame.from_bytes(client.data_to_send())
    assert anew.control == Control(FrameType.I, True, 1, 4)  # the request, as new
    client.receive_data(server_frame(Control(FrameType.I, True, 4, 2), b"\xe6\xe7\x00\xc4"))
    assert drain(client) == [ApduReceived(b"\xc4")]
    assert client.resyncs == 1


def test_lost_request_is_resent_on_the_timeout() -> None:
    """No answer: the first retransmit is the request frame itself (issue 12: a poll
    puts meters that count it, gurux's, out of step), and the meter takes it."""
    pair = make_pair(up=Line(drop={1}))
    pair.connect()
    assert pair.exchange(b"\xc0\x01", b"\xc4\x01") == b"\xc4\x01"
    assert pair.up.log[1] == pair.up.log[2]  # the same I frame, N(S)=0, again
    assert Frame.from_bytes(pair.up.log[2]).control == Control(FrameType.I, True, 0, 0)
    assert pair.client.retransmissions == 1 and pair.client.resyncs == 0


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 400),
    st.integers(0, 400),
    st.integers(32, 80),
    st.integers(32, 80),
    st.sets(st.integers(1, 40), max_size=3),
    st.sets(st.integers(1, 40), max_size=3),
    st.sets(st.integers(1, 40), max_size=3),
    st.integers(0, 9),
)
def test_random_faults_never_lose_or_duplicate_an_apdu(
    request_size: int,
    response_size: int,
    client_info: int,
    server_info: int,
    drop_up: set[int],
    drop_down: set[int],
    corrupt: set[int],
    chunk: int,
) -> None:
    pair = make_pair(
        client_info=(client_info, client_info),
        server_info=(server_info, server_info),
        up=Line(chunk=chunk, drop=drop_up, corrupt=corrupt),
        down=Line(chunk=chunk, drop=drop_down, corrupt=corrupt - drop_down),
    )
    pair.connect()
    for k in range(2):
        response = payload(response_size, k)
        assert pair.exchange(payload(request_size, k), response) == response


# ---------------------------------------------------------------------------
# Sequence numbers, duplicates, busy peer
# ---------------------------------------------------------------------------


def test_duplicate_segment_is_not_delivered_twice() -> None:
    client = connected_client()
    client.send_apdu(b"\xc0\x01")
    seg0 = server_frame(Control(FrameType.I, True, 0, 1), b"\xe6\xe7\x00\xc4", segmented=True)
    client.receive_data(seg0)
    assert drain(client) == []
    rr = Frame.from_bytes(client.data_to_send())
    assert rr.control == Control(FrameType.RR, True, 0, 1)
    client.receive_data(seg0)  # the server did not get our RR and sent it again
    assert drain(client) == []
    assert client.duplicates == 1
    assert Frame.from_bytes(client.data_to_send()).control == Control(FrameType.RR, True, 0, 1)
    client.receive_data(server_frame(Control(FrameType.I, True, 1, 1), b"\x01\x02"))
    assert drain(client) == [ApduReceived(b"\xc4\x01\x02")]
    client.receive_data(server_frame(Control(FrameType.I, True, 1, 1), b"\x01\x02"))
    assert drain(client) == []  # a late copy of the last frame, ignored
    assert client.duplicates == 2
    assert client.data_to_send() == b""


def test_wrong_ns_from_server_is_a_remote_protocol_error() -> None:
    client = connected_client()
    client.send_apdu(b"\xc0\x01")
    client.receive_data(server_frame(Control(FrameType.I, True, 3, 1), b"\xe6\xe7\x00\xc4"))
    with pytest.raises(RemoteProtocolError, match="expected N\\(S\\)=0"):
        drain(client)
    assert client.state is HdlcClientState.ERROR
    with pytest.raises(LocalProtocolError, match="ERROR"):
        client.send_apdu(b"\xc0")
    assert Frame.from_bytes(client.disconnect()).control.type is FrameType.DISC


def test_wrong_nr_from_server_is_a_remote_protocol_error() -> None:
    client = connected_client()
    client.send_apdu(b"\xc0\x01")
    client.receive_data(server_frame(Control(FrameType.RR, True, 0, 5)))
    with pytest.raises(RemoteProtocolError, match="N\\(R\\) must be 1"):
        drain(client)


def test_response_without_llc_is_a_decode_error() -> None:
    client = connected_client()
    client.send_apdu(b"\xc0\x01")
    client.receive_data(server_frame(Control(FrameType.I, True, 0, 1), b"\xc4\x01"))
    with pytest.raises(DecodeError, match="LLC"):
        drain(client)
    assert client.state is HdlcClientState.ERROR


def test_reassembly_is_bounded_by_max_apdu_size() -> None:
    pair = make_pair(max_apdu_size=100)
    pair.connect()
    with pytest.raises(RemoteProtocolError, match="max_apdu_size=100"):
        pair.exchange(b"\xc0\x01", payload(300))
    assert pair.client.state is HdlcClientState.ERROR
    pair.client.disconnect()


def test_rnr_while_sending_waits_for_a_poll() -> None:
    client = connected_client(max_info=32)
    first = Frame.from_bytes(client.send_apdu(payload(60)))
    assert first.segmented
    client.receive_data(server_frame(Control(FrameType.RNR, True, 0, 1)))
    assert drain(client) == [PeerBusy(1)]
    assert client.data_to_send() == b""  # no next segment while the server is busy
    poll = Frame.from_bytes(client.retransmit())
    assert poll.control == Control(FrameType.RR, True, 0, 0)
    client.receive_data(server_frame(Control(FrameType.RR, True, 0, 1)))
    assert drain(client) == []
    nxt = Frame.from_bytes(client.data_to_send())
    assert nxt.control == Control(FrameType.I, True, 1, 0)
    assert client.peer_busy is False


def test_server_busy_answers_rnr_to_a_poll() -> None:
    pair = make_pair()
    pair.connect()
    deliver(pair.up, pair.client.send_apdu(b"\xc0\x01\xc1"), pair.server)
    assert drain(pair.server) == [ApduReceived(b"\xc0\x01\xc1")]
    assert pair.server.state is ServerState.PROCESSING
    # The application is slow; the client's timer fires and it polls.
    deliver(pair.up, pair.client.retransmit(), pair.server)
    assert drain(pair.server) == []
    deliver(pair.down, pair.server.data_to_send(), pair.client)
    assert drain(pair.client) == [PeerBusy(1)]
    assert pair.client.state is HdlcClientState.AWAITING_RESPONSE
    assert pair.client.peer_busy
    deliver(pair.down, pair.server.send_apdu(b"\xc4\x01"), pair.client)
    assert drain(pair.client) == [ApduReceived(b"\xc4\x01")]
    assert state_of(pair.client) is HdlcClientState.IDLE
    assert not pair.client.peer_busy


def test_unconfirmed_service_acknowledged_with_rr() -> None:
    pair = make_pair()
    pair.connect()
    deliver(pair.up, pair.client.send_apdu(b"\x0e\x01", confirmed=False), pair.server)
    assert drain(pair.server) == [ApduReceived(b"\x0e\x01")]
    deliver(pair.down, pair.server.acknowledge(), pair.client)
    assert drain(pair.client) == []
    assert pair.client.state is HdlcClientState.IDLE


# ---------------------------------------------------------------------------
# Release, DM, FRMR
# ---------------------------------------------------------------------------


def test_disconnect_with_ua() -> None:
    pair = make_pair()
    pair.connect()
    deliver(pair.up, pair.client.disconnect(), pair.server)
    assert drain(pair.server) == [Disconnected("DISC")]
    assert pair.server.state is ServerState.DISCONNECTED
    deliver(pair.down, pair.server.data_to_send(), pair.client)
    assert drain(pair.client) == [Disconnected("UA")]
    assert pair.client.state is HdlcClientState.DISCONNECTED
    with pytest.raises(LocalProtocolError, match="DISCONNECTED"):
        pair.client.send_apdu(b"\xc0")


def test_disc_to_a_disconnected_server_gets_dm() -> None:
    pair = make_pair()
    deliver(pair.up, pair.client.disconnect(), pair.server)
    assert drain(pair.server) == []
    deliver(pair.down, pair.server.data_to_send(), pair.client)
    assert drain(pair.client) == [Disconnected("DM")]


def test_server_answers_dm_to_i_frames_when_disconnected() -> None:
    server = HdlcServerConnection(SERVER)
    frame = Frame(SERVER_ADDR, CLIENT_ADDR, Control(FrameType.I, True), b"\xe6\xe6\x00\xc0")
    server.receive_data(frame.to_bytes())
    assert drain(server) == []
    dm = Frame.from_bytes(server.data_to_send())
    assert dm == Frame(CLIENT_ADDR, SERVER_ADDR, Control(FrameType.DM, True))


def test_dm_while_connected_drops_the_link() -> None:
    client = connected_client()
    client.send_apdu(b"\xc0\x01")
    client.receive_data(server_frame(Control(FrameType.DM, True)))
    assert drain(client) == [Disconnected("DM")]
    assert client.state is HdlcClientState.DISCONNECTED
    assert client.params is None


def test_lost_ua_to_disc_is_recovered() -> None:
    pair = make_pair(down=Line(drop={1}))
    pair.connect()
    deliver(pair.up, pair.client.disconnect(), pair.server)
    drain(pair.server)
    deliver(pair.down, pair.server.data_to_send(), pair.client)
    assert drain(pair.client) == []
    again = pair.client.retransmit()
    assert Frame.from_bytes(again).control == Control(FrameType.DISC, True)
    deliver(pair.up, again, pair.server)
    drain(pair.server)
    deliver(pair.down, pair.server.data_to_send(), pair.client)
    assert drain(pair.client) == [Disconnected("DM")]  # the server had already left


def test_frmr_is_reported_and_the_link_can_be_reset() -> None:
    client = connected_client()
    client.send_apdu(b"\xc0\x01")
    client.receive_data(server_frame(Control(FrameType.FRMR, True), bytes([0x10, 0x00, 0x04])))
    (event,) = drain(client)
    assert isinstance(event, FrameRejected)
    assert event.rejected_control == 0x10
    assert event.reasons == ("Y",)
    assert client.state is HdlcClientState.REJECTED
    with pytest.raises(LocalProtocolError, match="REJECTED"):
        client.send_apdu(b"\xc0")
    assert Frame.from_bytes(client.connect()).control.type is FrameType.SNRM


def test_server_rejects_an_unparsable_snrm_with_frmr() -> None:
    server = HdlcServerConnection(SERVER)
    snrm = Frame(SERVER_ADDR, CLIENT_ADDR, Control(FrameType.SNRM, True), b"\x81\x80\x09")
    server.receive_data(snrm.to_bytes())
    assert drain(server) == []
    frmr = Frame.from_bytes(server.data_to_send())
    assert frmr.control.type is FrameType.FRMR
    assert FrameRejected(frmr.information).reasons == ("X",)
    assert server.state is ServerState.DISCONNECTED


# ---------------------------------------------------------------------------
# Addressing on a shared bus
# ---------------------------------------------------------------------------


def test_two_meters_on_one_bus() -> None:
    client = HdlcClientConnection(16, SERVER)
    ours = HdlcServerConnection(SERVER)
    other = HdlcServerConnection(encode_server_address(1, 18, 2))
    snrm = client.connect()
    for server in (ours, other):
        server.receive_data(snrm)
    assert drain(ours) == [Connected(HdlcParameters())]
    assert drain(other) == []
    assert other.data_to_send() == b""
    assert other.ignored_frames == 1
    ua = ours.data_to_send()
    # The other meter's traffic (here: a UA addressed to us but from 1/18) and
    # the echo of our own frame are not ours.
    stray = Frame(CLIENT_ADDR, HdlcAddress(1, 18, 2), Control(FrameType.UA, True)).to_bytes()
    client.receive_data(snrm + stray + ua)
    assert drain(client) == [Connected(HdlcParameters())]
    assert client.ignored_frames == 2


def test_server_ignores_a_second_client_while_connected() -> None:
    server = HdlcServerConnection(SERVER)
    server.receive_data(HdlcClientConnection(16, SERVER).connect())
    drain(server)
    server.data_to_send()
    intruder = Frame(SERVER_ADDR, HdlcAddress(1), Control(FrameType.DISC, True))
    server.receive_data(intruder.to_bytes())
    assert drain(server) == []
    assert server.state is ServerState.IDLE
    assert server.client_address == 16


# ---------------------------------------------------------------------------
# Local misuse, transitions, trace
# ---------------------------------------------------------------------------


def test_local_protocol_errors_name_the_state() -> None:
    client = HdlcClientConnection(16, SERVER)
    with pytest.raises(LocalProtocolError, match="DISCONNECTED"):
        client.send_apdu(b"\xc0")
    with pytest.raises(LocalProtocolError, match="nothing to retransmit in state DISCONNECTED"):
        client.retransmit()
    client.connect()
    with pytest.raises(LocalProtocolError, match="cannot send SNRM in state CONNECTING"):
        client.connect()
    client = connected_client()
    with pytest.raises(LocalProtocolError, match="IDLE"):
        client.retransmit()
    with pytest.raises(LocalProtocolError, match="cannot send SNRM in state IDLE"):
        client.connect()
    client.send_apdu(b"\xc0\x01")
    with pytest.raises(LocalProtocolError, match="AWAITING_RESPONSE"):
        client.send_apdu(b"\xc0\x02")
    server = HdlcServerConnection(SERVER)
    with pytest.raises(LocalProtocolError, match="DISCONNECTED"):
        server.send_apdu(b"\xc4")
    with pytest.raises(LocalProtocolError, match="DISCONNECTED"):
        server.acknowledge()


def test_stray_frames_are_counted_not_fatal() -> None:
    client = connected_client()
    for control in (
        Control(FrameType.UA, True),  # a late UA
        Control(FrameType.UI, False),
        Control(FrameType.SNRM, True),  # a command a server never sends
        Control(FrameType.DISC, True),
    ):
        client.receive_data(server_frame(control, b"\xe6\xe7\x00"))
    assert drain(client) == []
    assert client.ignored_frames == 4
    assert client.state is HdlcClientState.IDLE


def test_late_response_after_an_rr_acknowledgement_is_delivered() -> None:
    client = connected_client()
    client.send_apdu(b"\xc0\x01")
    client.receive_data(server_frame(Control(FrameType.RR, True, 0, 1)))  # "got it"
    assert drain(client) == []
    # a confirmed request: the meter has it, the response is still due (issue 12)
    assert client.state is HdlcClientState.AWAITING_RESPONSE
    client.receive_data(server_frame(Control(FrameType.I, True, 0, 1), b"\xe6\xe7\x00\xc4"))
    assert drain(client) == [ApduReceived(b"\xc4")]
    # The sequence numbers stayed in step for the next exchange.
    nxt = Frame.from_bytes(client.send_apdu(b"\xc0\x02"))
    assert nxt.control == Control(FrameType.I, True, 1, 1)


def test_trace_sees_every_frame_with_raw_octets() -> None:
    seen: list[FrameTrace] = []
    client = HdlcClientConnection(16, SERVER, max_info_tx=32, max_info_rx=32, trace=seen.append)
    server = HdlcServerConnection(SERVER, max_info_tx=32, max_info_rx=32)
    pair = Pair(client, server, Line(), Line(corrupt={2}))
    pair.connect()
    pair.exchange(payload(40), payload(80))
    tx = [t for t in seen if t.direction == "tx"]
    rx = [t for t in seen if t.direction == "rx"]
    assert [t.raw for t in tx] == pair.up.log
    assert [t.frame for t in tx] == [Frame.from_bytes(r) for r in pair.up.log]
    dropped = [t for t in rx if t.frame is None]
    assert len(dropped) == 1 and "FCS" in (dropped[0].error or "")
    assert tx[0].summary() == "SNRM(P) seg=0 info=9B dst=1/17 src=16"
    assert all(t.summary() for t in seen)


def test_a_spoilt_answer_is_bounded_like_any_other() -> None:
    """An answer whose segment went missing is read to its end and dropped, but not
    without limit: past max_apdu_size it is a protocol error, not an endless RR loop."""
    client = HdlcClientConnection(16, SERVER, max_apdu_size=200)
    client.connect()
    client.receive_data(server_frame(Control(FrameType.UA, True)))
    assert isinstance(drain(client)[0], Connected)
    client.send_apdu(b"\xc0\x01")
    client.receive_data(server_frame(Control(FrameType.I, True, 0, 1), b"\xe6\xe7\x00\xc4",
                                     segmented=True))
    drain(client)
    client.data_to_send()
    with pytest.raises(RemoteProtocolError, match="max_apdu_size"):
        for ns in range(2, 40):  # N(S)=1 lost; the rest keeps coming
            client.receive_data(server_frame(Control(FrameType.I, True, ns % 8, 1),
                                             bytes(100), segmented=True))
            drain(client)
            client.data_to_send()


def test_answers_out_of_step_again_and_again_end_the_exchange() -> None:
    """A meter whose every answer skips a frame: the request goes anew at most
    MAX_ASK_ANEW times, then the exchange fails instead of going on for ever."""
    client = connected_client()
    client.send_apdu(b"\xc0\x01")
    vr = 0
    with pytest.raises(RemoteProtocolError, match="out of step"):
        for cycle in range(50):
            nr = (1 + cycle) % 8  # each request asked anew is one more frame of ours
            client.receive_data(server_frame(Control(FrameType.I, True, vr % 8, nr),
                                             b"\x00", segmented=True))
            client.receive_data(server_frame(Control(FrameType.I, True, (vr + 2) % 8, nr),
                                             b"\x00"))
            drain(client)
            out = client.data_to_send()
            vr += 3  # in step, one skipped, then the next answer
            del out
    assert client.resyncs >= HdlcClientConnection.MAX_ASK_ANEW


def test_a_replayed_frame_gets_one_rr_per_timeout() -> None:
    client = connected_client()
    client.send_apdu(b"\xc0\x01")
    seg0 = server_frame(Control(FrameType.I, True, 0, 1), b"\xe6\xe7\x00\xc4", segmented=True)
    client.receive_data(seg0)
    drain(client)
    client.data_to_send()  # RR for the next segment
    client.receive_data(seg0 * 5)  # the meter replays it, again and again
    drain(client)
    assert client.duplicates == 5
    assert len(split_frames(client.data_to_send())) == 1


# ---------------------------------------------------------------------------
# A link out of step: set up again (LinkOutOfStep / AnswerLost, the poller's redo)
# ---------------------------------------------------------------------------


def test_frmr_through_the_link_adapter_is_link_out_of_step() -> None:
    """IEC 62056-46 / ISO/IEC 13239: after FRMR the primary sets the link up again;
    the adapter says so with LinkOutOfStep (the poller associates again at once)."""
    link = HdlcLink.client(16, SERVER)
    link.opening()
    link.receive_data(server_frame(Control(FrameType.UA, True)))
    assert isinstance(link.next_event(), Connected)
    link.send_apdu(b"\xc0\x01")
    heard = link.frames_heard
    link.receive_data(server_frame(Control(FrameType.FRMR, True), bytes([0x10, 0x00, 0x04])))
    with pytest.raises(LinkOutOfStep, match=r"FRMR.*Y"):
        link.next_event()
    assert link.frames_heard == heard + 1


def test_numbers_out_of_step_are_link_out_of_step() -> None:
    client = connected_client()
    client.send_apdu(b"\xc0\x01")
    client.receive_data(server_frame(Control(FrameType.RR, True, 0, 5)))
    with pytest.raises(LinkOutOfStep, match="N\\(R\\) must be 1"):
        drain(client)
    client = connected_client()
    client.send_apdu(b"\xc0\x01")
    client.receive_data(server_frame(Control(FrameType.I, True, 4, 1), b"\xe6\xe7\x00\xc4"))
    with pytest.raises(LinkOutOfStep, match="expected N\\(S\\)=0"):
        drain(client)


def test_frames_heard_counts_only_the_meters_frames() -> None:
    client = connected_client()
    assert client.frames_heard == 1  # the UA
    other = Frame(CLIENT_ADDR, HdlcAddress(1, 18, 2), Control(FrameType.RR, True, 0, 0))
    client.receive_data(other.to_bytes())  # another meter on the bus
    bad = bytearray(server_frame(Control(FrameType.RR, True, 0, 0)))
    bad[-2] ^= 0x01  # a bad FCS
    client.receive_data(bytes(bad))
    assert drain(client) == []
    assert client.frames_heard == 1


def test_an_answer_lost_after_the_meter_was_heard_is_answer_lost() -> None:
    """The meter sent the first segment of its answer, then nothing came: it is there
    but out of step (AnswerLost: associate again at once). A meter heard of nothing
    during the exchange times out plainly (DlmsTimeout: offline)."""
    session = Session("hdlc", max_info=32)
    session.open()
    first = session.wire.sent_to_client + 1
    session.wire.drop_to_client = set(range(first + 1, first + 100))
    with pytest.raises(AnswerLost, match="out of step"):
        session.read(VOLTAGE)
    silent = Session("hdlc", max_info=32)
    silent.open()
    first = silent.wire.sent_to_client + 1
    silent.wire.drop_to_client = set(range(first, first + 100))
    with pytest.raises(DlmsTimeout) as info:
        silent.read(VOLTAGE)
    assert not isinstance(info.value, AnswerLost)


@pytest.mark.parametrize("kind", ["wrapper", "hdlc"])
def test_sn_is_not_sent_again_over_the_wrapper_but_is_over_hdlc(kind: str) -> None:
    session = Session(kind, "SN")
    session.open()
    session.wire.drop_to_client = {session.wire.sent_to_client + 1}
    if kind == "hdlc":  # HDLC numbers tell a late answer: sent again on the same link
        assert session.read(VOLTAGE)["voltage"].error is None
        return
    with pytest.raises(AnswerLost, match="SN over the wrapper is not sent again") as info:
        session.read(VOLTAGE)
    assert "(1 attempt of" in str(info.value)
