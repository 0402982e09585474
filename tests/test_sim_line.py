"""The meter side of IEC 62056-21 mode E (ModeEServer) and the simulated serial line
(SerialLine), pure.  The client side they are checked against is the daemon's
ModeEOpening, whose own vectors (real identification strings) are in
tests/test_iec62056_21.py; the octets of the messages are the standard's (6.3.1-6.3.3,
as quoted there)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dlmsd.errors import LocalProtocolError
from dlmsd.protocol import iec62056_21 as iec
from dlmsd.protocol.hdlc import HdlcClientConnection
from dlmsd.protocol.hdlc_frame import NEED_DATA, encode_server_address
from dlmsd.sim.line import INACTIVITY_TIMEOUT, Note, Send, SerialLine, SetLine
from dlmsd.sim.model import Meter, bundled_model_path, load_model
from dlmsd.sim.server import MeterServer

NOW = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
SIM = iec.IdentificationMessage("SIM", "5", "dlms-sim", "2")
FAST = iec.IdentificationMessage("SIm", "6", "fast", "2")


def feed_all(server: iec.ModeEServer, data: bytes, *, bytewise: bool) -> list[object]:
    events: list[object] = []
    chunks = [data[i:i + 1] for i in range(len(data))] if bytewise else [data]
    for chunk in chunks:
        server.receive_data(chunk)
        while (event := server.next_event()) is not NEED_DATA:
            events.append(event)
    return events


@pytest.mark.parametrize("bytewise", [False, True])
def test_request_answer_option_switch(bytewise: bool) -> None:
    server = iec.ModeEServer({"": SIM})
    events = feed_all(server, b"/?!\r\n", bytewise=bytewise)
    assert events == [iec.RequestReceived("", SIM)]
    assert events[0].min_reaction_time == iec.REACTION_TIME_MIN  # type: ignore[attr-defined]
    assert server.waiting_for_option
    # ACK '2' '5' '2' CR LF then the first octets of an SNRM: not one is lost
    events = feed_all(server, b"\x06252\r\n\x7e\xa0\x08", bytewise=bytewise)
    if bytewise:
        assert events == [iec.SwitchLine(9600, trailing=b"")]
    else:
        assert events == [iec.SwitchLine(9600, trailing=b"\x7e\xa0\x08")]
    assert not server.waiting_for_option


def test_client_and_server_openings_agree() -> None:
    """The daemon's ModeEOpening and the simulator's ModeEServer, octet for octet."""
    client = iec.ModeEOpening(address="0017", max_baud=4800, echo=False)
    server = iec.ModeEServer({"17": FAST})
    server.receive_data(client.start())
    request = server.next_event()
    assert request == iec.RequestReceived("0017", FAST)
    assert isinstance(request, iec.RequestReceived) and request.answer is not None
    assert request.min_reaction_time == iec.REACTION_TIME_MIN_FAST  # lower-case 3rd letter
    client.receive_data(request.answer.to_bytes())
    identified = client.next_event()
    assert isinstance(identified, iec.Identified) and identified.baud_rate == 19200
    ack = client.acknowledge()
    assert ack == b"\x06242\r\n"  # capped at 4800 by the client
    server.receive_data(ack + b"\x7e")
    assert server.next_event() == iec.SwitchLine(4800, trailing=b"\x7e")
    client.receive_data(b"")
    assert client.next_event() == iec.SwitchLine(4800)


def test_noise_and_hdlc_before_the_request_are_dropped() -> None:
    server = iec.ModeEServer({"": SIM})
    noise = b"\x7e\xa0\x08\x02\x23\x21\x93/x\x00/"
    events = feed_all(server, noise + b"?!\r\n", bytewise=False)
    assert events == [iec.RequestReceived("", SIM)]
    assert server.garbage_bytes == len(noise) - 1


def test_request_for_another_address_is_not_answered() -> None:
    server = iec.ModeEServer({"17": SIM})
    assert feed_all(server, b"/?18!\r\n", bytewise=False) == [iec.RequestReceived("18", None)]
    assert not server.waiting_for_option
    # "/?!" has no meter either when no "" entry exists
    assert feed_all(server, b"/?!\r\n", bytewise=False) == [iec.RequestReceived("", None)]


@pytest.mark.parametrize(("ack", "reason"), [
    (b"\x06050\r\n", "only ACK '2' Z '2'"),      # data readout
    (b"\x06251\r\n", "only ACK '2' Z '2'"),      # programming mode
    (b"\x06262\r\n", "'6' is not one of '0'..'5'"),  # above the rate announced
    (b"\x0629\x32\r\n", "is not one of"),          # reserved character
])
def test_option_select_refused(ack: bytes, reason: str) -> None:
    server = iec.ModeEServer({"": SIM})
    feed_all(server, b"/?!\r\n", bytewise=False)
    events = feed_all(server, ack, bytewise=False)
    assert len(events) == 1 and isinstance(events[0], iec.OptionRefused)
    assert reason in events[0].reason
    assert not server.waiting_for_option


def test_new_request_instead_of_the_ack_starts_again() -> None:
    server = iec.ModeEServer({"": SIM})
    feed_all(server, b"/?!\r\n", bytewise=False)
    assert feed_all(server, b"/?!\r\n", bytewise=False) == [iec.RequestReceived("", SIM)]


def test_overlong_request_is_skipped() -> None:
    server = iec.ModeEServer({"": SIM})
    junk = b"/?" + b"A" * 40
    assert feed_all(server, junk + b"/?!\r\n", bytewise=True) == [iec.RequestReceived("", SIM)]


def test_server_identification_must_be_mode_e() -> None:
    with pytest.raises(LocalProtocolError, match="must announce"):
        iec.ModeEServer({"": iec.IdentificationMessage("SIM", "E", "mode-b", "2")})
    # without \2, as gurux's example meter answers ("/GRX5Gurux", see
    # tests/test_iec62056_21.py): served
    gurux = iec.IdentificationMessage("GRX", "5", "Gurux")
    server = iec.ModeEServer({"": gurux})
    assert feed_all(server, b"/?!\r\n", bytewise=False) == [iec.RequestReceived("", gurux)]
    assert feed_all(server, b"\x06252\r\n", bytewise=False) == [iec.SwitchLine(9600)]
    with pytest.raises(LocalProtocolError, match="no identification"):
        iec.ModeEServer({})


# ---------------------------------------------------------------------- SerialLine
def servers(*physicals: int) -> dict[int, MeterServer]:
    meter = Meter(load_model(bundled_model_path()))
    return {p: MeterServer(meter) for p in physicals}


def client_for(physical: int) -> HdlcClientConnection:
    return HdlcClientConnection(16, encode_server_address(1, physical, 2))


def sent(actions: list[object]) -> bytes:
    return b"".join(a.data for a in actions if isinstance(a, Send))


def connect(line: SerialLine, physical: int) -> tuple[HdlcClientConnection, list[object]]:
    client = client_for(physical)
    actions: list[object] = list(line.receive_data(client.connect(), NOW))
    client.receive_data(sent(actions))
    return client, actions


def test_only_the_addressed_meter_answers() -> None:
    line = SerialLine(servers(17, 18, 19))
    assert line.initial_settings == (9600, 8, "N", 1)
    assert line.timeout() is None  # no opening, no timer
    for physical in (17, 18, 19):
        client, actions = connect(line, physical)
        assert client.next_event() is not NEED_DATA  # UA: connected
        ups = [a for a in actions if isinstance(a, Note) and a.event == "link_up"]
        assert [a.fields["physical"] for a in ups] == [physical]
    # nobody has 20: silence
    assert sent(line.receive_data(client_for(20).connect(), NOW)) == b""


def test_unplugged_meter_is_silent() -> None:
    line = SerialLine(servers(17, 18))
    line.remove(18)
    assert sent(line.receive_data(client_for(18).connect(), NOW)) == b""
    _client, actions = connect(line, 17)
    assert sent(actions)


def test_mode_e_line_opens_switches_and_returns_on_disc() -> None:
    line = SerialLine(servers(17, 18), identification=SIM)
    assert line.in_opening and line.initial_settings == (300, 7, "E", 1)
    # an HDLC frame before the opening is line noise
    assert sent(line.receive_data(client_for(17).connect(), NOW)) == b""
    actions = line.receive_data(b"/?18!\r\n", NOW)
    assert Send(SIM.to_bytes(), iec.REACTION_TIME_MIN) in actions
    assert line.timeout() == iec.REACTION_TIME_MAX + iec.TIMEOUT_MARGIN
    client = client_for(18)
    actions = line.receive_data(b"\x06252\r\n" + client.connect(), NOW)
    assert SetLine((9600, 8, "N", 1)) in actions
    assert not line.in_opening and line.timeout() == INACTIVITY_TIMEOUT
    # the SNRM that came with the ACK was answered after the switch
    assert actions.index(SetLine((9600, 8, "N", 1))) < max(
        i for i, a in enumerate(actions) if isinstance(a, Send))
    client.receive_data(sent(actions))
    assert client.next_event() is not NEED_DATA
    actions = line.receive_data(client.disconnect(), NOW)
    ua_then_back = [type(a).__name__ for a in actions if not isinstance(a, Note)]
    assert ua_then_back == ["Send", "SetLine"]
    assert actions[-1] == SetLine((300, 7, "E", 1)) and line.in_opening


def test_mode_e_timers() -> None:
    line = SerialLine(servers(17), identification=SIM)
    assert line.timeout() is None  # waiting for a request: no timer
    line.receive_data(b"/?!\r\n", NOW)
    assert line.on_timeout() == [Note("iec_no_option_select")]
    assert line.timeout() is None
    line.receive_data(b"/?!\r\n", NOW)
    line.receive_data(b"\x06252\r\n", NOW)
    assert not line.in_opening
    assert line.on_timeout()[-1] == SetLine((300, 7, "E", 1))
    assert line.in_opening


def test_request_while_in_hdlc_restarts_the_opening() -> None:
    line = SerialLine(servers(17), identification=SIM)
    line.receive_data(b"/?!\r\n", NOW)
    line.receive_data(b"\x06252\r\n", NOW)
    actions = line.receive_data(b"/?!\r\n", NOW)
    assert actions[1] == SetLine((300, 7, "E", 1))
    assert Send(SIM.to_bytes(), iec.REACTION_TIME_MIN) in actions
