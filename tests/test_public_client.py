"""The public client and the meter's invocation counter (read_invocation_counter).

* the configuration keys read_invocation_counter, invocation_counter_obis and
  public_client_address (dlmsd.config);
* dlms-sim's links serving the configured client SAP or the public SAP, whichever sends
  the first frame, for the connection's life (dlmsd.protocol.link), driven by frames of the
  daemon's own client-side HDLC and wrapper classes;
* the meter's counters kept across associations, per client system title, and shown
  live in 0.0.43.1.0.255 to the public client (dlmsd.sim.auth, .model, .server, .cli),
  driven by the daemon's LnClient with HLS-GMAC and ciphering, pure (no sockets).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import tcp_device
from test_config import Writer, problems_of
from test_config_ecdsa import ecdsa_device, write_client_key, write_meter_key

from dlmsd.config import INVOCATION_COUNTER_OBIS, load_config
from dlmsd.errors import AssociationRejected, ConfigError
from dlmsd.protocol import hdlc, hdlc_frame, wrapper
from dlmsd.protocol.acse import (
    Aare,
    AcseServiceUser,
    ApplicationContextName,
    AssociationResult,
    MechanismName,
)
from dlmsd.protocol.axdr import Data
from dlmsd.protocol.client import Associated, Authenticate, Ciphering, GetComplete, LnClient
from dlmsd.protocol.link import (
    ApduReceived,
    Connected,
    Disconnected,
    HdlcLink,
    LinkEvent,
    WrapperLink,
)
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.security import SecurityControl
from dlmsd.protocol.security_hls import HlsKeys
from dlmsd.protocol.xdlms import CosemAttributeDescriptor, DataAccessResult, GetRequestNormal
from dlmsd.sim.auth import DEFAULT_AUTHENTICATION_KEY, DEFAULT_BLOCK_CIPHER_KEY, SimSecurity
from dlmsd.sim.cli import SimSettings
from dlmsd.sim.model import (
    AssociationView,
    Meter,
    MeterModel,
    bundled_model_path,
    load_model,
    parse_model,
)
from dlmsd.sim.server import AssociationState, MeterServer, ServerOptions

NOW = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
CTOS = bytes(range(0x10, 0x20))
TITLE_A = bytes.fromhex("4D4D4D0000000001")
TITLE_B = bytes.fromhex("4D4D4D0000000002")
MODEL = load_model(bundled_model_path())
COUNTER = CosemAttributeDescriptor(1, Obis(0, 0, 43, 1, 0, 255), 2)
ENERGY = CosemAttributeDescriptor(3, Obis(1, 0, 1, 8, 0, 255), 2)
PARTNERS = CosemAttributeDescriptor(15, Obis(0, 0, 40, 0, 0, 255), 3)
ST = "4D4D4D0000BC614E"
EK16 = "000102030405060708090A0B0C0D0E0F"
AK16 = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
GMAC: dict[str, Any] = {"auth": "HighGmac", "system_title": ST, "block_cipher_key": EK16,
                        "authentication_key": AK16}
HDLC_ADDRESS = hdlc_frame.encode_server_address(1, 1, 2)
ANSWER = bytes.fromhex("C401C100060000002A")  # a GET response: any APDU will do here


# =================================================================== configuration
def device_of(write_config: Writer, **over: Any) -> Any:
    config = load_config(write_config(devices=[tcp_device(**over)], signals=[]))
    assert len(config.devices) == 1
    return config, config.devices[0]


def test_defaults(write_config: Writer) -> None:
    config, dev = device_of(write_config, **GMAC)
    assert dev.read_invocation_counter is False
    assert dev.invocation_counter_obis == Obis(0, 0, 43, 1, 0, 255) == INVOCATION_COUNTER_OBIS
    assert dev.public_client_address == 16
    assert config.warnings == ()


@pytest.mark.parametrize(("raw", "expected"), [(1, True), (True, True), (0, False),
                                               (False, False)])
def test_read_invocation_counter_flag(write_config: Writer, raw: object,
                                      expected: bool) -> None:
    # the management client (1): the public client (16) is another one
    config, dev = device_of(write_config, read_invocation_counter=raw, client_address=1,
                            **GMAC)
    assert dev.read_invocation_counter is expected
    assert dev.ciphered
    assert config.warnings == ()


def test_read_invocation_counter_flag_refuses_other_values(write_config: Writer) -> None:
    problems = problems_of(write_config(devices=[tcp_device(read_invocation_counter=2,
                                                            **GMAC)], signals=[]))
    assert problems == ["devices[0].read_invocation_counter: 2 is not allowed: must be one "
                        "of 0, 1, true, false"]


@pytest.mark.parametrize(("text", "expected"), [
    ("0.0.43.1.1.255", Obis(0, 0, 43, 1, 1, 255)),
    ("0-0:43.1.3*255", Obis(0, 0, 43, 1, 3, 255)),
    ("0-0:43.1.2", Obis(0, 0, 43, 1, 2, 255)),
    (" 0.0.43.1.0.255 ", Obis(0, 0, 43, 1, 0, 255)),
])
def test_invocation_counter_obis_is_parsed(write_config: Writer, text: str,
                                           expected: Obis) -> None:
    _, dev = device_of(write_config, invocation_counter_obis=text, read_invocation_counter=1,
                       **GMAC)
    assert dev.invocation_counter_obis == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("0.0.43.1", "devices[0].invocation_counter_obis: OBIS code '0.0.43.1' is not in the "
                 "form 'A.B.C.D.E.F' (1.0.1.8.0.255) or 'A-B:C.D.E*F' (1-0:1.8.0*255, "
                 "1-0:1.8.0)"),
    ("0.0.43.1.0.256", "devices[0].invocation_counter_obis: OBIS code '0.0.43.1.0.256': "
                       "group value 256 is not in 0..255"),
    ("counter", "devices[0].invocation_counter_obis: OBIS code 'counter' is not in the "
                "form 'A.B.C.D.E.F' (1.0.1.8.0.255) or 'A-B:C.D.E*F' (1-0:1.8.0*255, "
                "1-0:1.8.0)"),
])
def test_bad_invocation_counter_obis_is_one_problem(write_config: Writer, text: str,
                                                    problem: str) -> None:
    problems = problems_of(write_config(devices=[tcp_device(
        invocation_counter_obis=text, read_invocation_counter=1, **GMAC)], signals=[]))
    assert problems == [problem]


def test_invocation_counter_obis_must_be_a_string(write_config: Writer) -> None:
    problems = problems_of(write_config(devices=[tcp_device(invocation_counter_obis=43)],
                                        signals=[]))
    assert problems == ["devices[0].invocation_counter_obis: 43 is not allowed: must be a "
                        "string"]


@pytest.mark.parametrize(("raw", "mode", "expected"), [
    ("10", "DLMS-HDLC", 16), ("0x11", "DLMS-HDLC", 17), ("0X1a", "DLMS-HDLC", 26),
    (17, "DLMS-HDLC", 17), ("7F", "DLMS-HDLC", 127), (0, "DLMS-HDLC", 0),
    (128, "DLMS-WRAPPER", 128), ("FFFF", "DLMS-WRAPPER", 0xFFFF),
])
def test_public_client_address_is_parsed(write_config: Writer, raw: object, mode: str,
                                         expected: int) -> None:
    _, dev = device_of(write_config, public_client_address=raw, mode=mode, **GMAC)
    assert dev.public_client_address == expected
    assert dev.client_address == 16  # the configured client is another setting


@pytest.mark.parametrize(("raw", "mode", "problem"), [
    ("zz", "DLMS-HDLC", 'devices[0].public_client_address: "zz" is not a hex number: write '
                        'hex as a string ("10", "0x10") or a decimal integer'),
    ("", "DLMS-HDLC", 'devices[0].public_client_address: "" is not a hex number: write '
                      'hex as a string ("10", "0x10") or a decimal integer'),
    (128, "DLMS-HDLC", "devices[0].public_client_address: 128 is not allowed: must be from "
                       "0 to 127 for mode DLMS-HDLC"),
    ("80", "DLMS-HDLC", "devices[0].public_client_address: 128 is not allowed: must be from "
                        "0 to 127 for mode DLMS-HDLC"),
    (-1, "DLMS-HDLC", "devices[0].public_client_address: -1 is not allowed: must be from "
                      "0 to 127 for mode DLMS-HDLC"),
    (0x10000, "DLMS-WRAPPER", "devices[0].public_client_address: 65536 is not allowed: must "
                              "be from 0 to 65535 for mode DLMS-WRAPPER"),
    (True, "DLMS-HDLC", "devices[0].public_client_address: true is not allowed: must be an "
                        "integer or a string"),
    (1.5, "DLMS-HDLC", "devices[0].public_client_address: 1.5 is not allowed: must be an "
                       "integer or a string"),
])
def test_bad_public_client_address_is_one_problem(write_config: Writer, raw: object,
                                                  mode: str, problem: str) -> None:
    problems = problems_of(write_config(devices=[tcp_device(
        public_client_address=raw, mode=mode, read_invocation_counter=1, **GMAC)],
        signals=[]))
    assert problems == [problem]


def test_every_counter_problem_is_listed_at_once(write_config: Writer) -> None:
    problems = problems_of(write_config(devices=[tcp_device(
        invocation_counter_obis="x", public_client_address="g", **GMAC)], signals=[]))
    assert [p.split(":")[0] for p in problems] == [
        "devices[0].invocation_counter_obis", "devices[0].public_client_address"]


@pytest.mark.parametrize(("auth", "over"), [
    ("None", {}),
    ("Low", {"password": "00000000"}),
    ("HighMd5", {"password": "secret"}),
])
def test_read_invocation_counter_without_ciphering_is_warned(
        write_config: Writer, auth: str, over: dict[str, str]) -> None:
    config, dev = device_of(write_config, auth=auth, read_invocation_counter=1, **over)
    assert config.warnings == (
        f"devices[0].read_invocation_counter: set but the device is not ciphered "
        f"(auth {auth}); not used",)
    assert dev.read_invocation_counter is True and not dev.ciphered


def test_read_invocation_counter_off_is_not_warned(write_config: Writer) -> None:
    config, _ = device_of(write_config, read_invocation_counter=0,
                          invocation_counter_obis="0.0.43.1.1.255")
    assert config.warnings == ()


def test_ecdsa_plain_is_warned_ciphered_is_not(write_config: Writer, tmp_path: Path) -> None:
    write_client_key(tmp_path)
    write_meter_key(tmp_path)
    plain = load_config(write_config(devices=[ecdsa_device(read_invocation_counter=1)],
                                     signals=[]))
    assert plain.warnings == ("devices[0].read_invocation_counter: set but the device is "
                              "not ciphered (auth HighEcdsa); not used",)
    assert not plain.devices[0].ciphered
    ciphered = load_config(write_config(devices=[ecdsa_device(
        read_invocation_counter=1, block_cipher_key=EK16, authentication_key=AK16,
        client_address=1)], signals=[]))
    assert ciphered.warnings == ()
    assert ciphered.devices[0].ciphered


def test_ecdsa_with_security_none_is_warned(write_config: Writer, tmp_path: Path) -> None:
    write_client_key(tmp_path)
    write_meter_key(tmp_path)
    config = load_config(write_config(devices=[ecdsa_device(
        read_invocation_counter=1, block_cipher_key=EK16, authentication_key=AK16,
        security="none")], signals=[]))
    assert not config.devices[0].ciphered
    assert [w for w in config.warnings
            if w.startswith("devices[0].read_invocation_counter: ")], config.warnings


# =================================================================== the links
def drive(link: HdlcLink | WrapperLink, data: bytes
          ) -> tuple[list[LinkEvent], bytes]:
    """What the simulator's loop does with one chunk: the link's events, and what goes
    back (every ApduReceived answered with ANSWER)."""
    link.receive_data(data)
    events: list[LinkEvent] = []
    out = bytearray()
    while (event := link.next_event()) is not hdlc_frame.NEED_DATA:
        events.append(event)
        out += link.data_to_send()
        if isinstance(event, ApduReceived):
            out += link.send_apdu(ANSWER)
    out += link.data_to_send()
    return events, bytes(out)


def client_events(conn: hdlc.HdlcClientConnection, data: bytes) -> list[hdlc.Event]:
    conn.receive_data(data)
    events: list[hdlc.Event] = []
    while (event := conn.next_event()) is not hdlc_frame.NEED_DATA:
        events.append(event)
    return events


def hdlc_link(client_sap: int = 1, public_sap: int | None = 16) -> HdlcLink:
    return HdlcLink.meter(HDLC_ADDRESS, client_sap, max_info=128, max_apdu_size=2048,
                          public_sap=public_sap)


def hdlc_connect(link: HdlcLink, sap: int) -> hdlc.HdlcClientConnection:
    """Client ``sap`` connects; assert the link answered with UA."""
    conn = hdlc.HdlcClientConnection(sap, HDLC_ADDRESS)
    events, out = drive(link, conn.connect())
    assert len(events) == 1 and isinstance(events[0], Connected)
    assert [type(e) for e in client_events(conn, out)] == [hdlc.Connected]
    return conn


def hdlc_refused(link: HdlcLink, sap: int) -> None:
    """A SNRM from ``sap`` is dropped: no event, no answer, one more ignored frame."""
    before = link.ignored_frames
    events, out = drive(link, hdlc.HdlcClientConnection(sap, HDLC_ADDRESS).connect())
    assert (events, out) == ([], b"")
    assert link.ignored_frames == before + 1


def hdlc_exchange(link: HdlcLink, conn: hdlc.HdlcClientConnection) -> None:
    request = GetRequestNormal(ENERGY).to_bytes()
    events, out = drive(link, conn.send_apdu(request))
    assert events == [ApduReceived(request)]
    assert client_events(conn, out) == [hdlc.ApduReceived(ANSWER)]


def test_hdlc_bound_to_the_public_client_when_it_comes_first() -> None:
    link = hdlc_link()
    assert link.client_sap == 1  # the configured one before any frame
    public = hdlc_connect(link, 16)
    assert link.client_sap == 16
    hdlc_refused(link, 1)  # the configured client, too late
    assert link.client_sap == 16
    hdlc_exchange(link, public)  # the public client's link was not disturbed
    # a DISC from client 1 does not take down the public client's link
    stranger = hdlc.HdlcClientConnection(1, HDLC_ADDRESS)
    assert drive(link, stranger.disconnect()) == ([], b"")
    assert link.ignored_frames == 2
    hdlc_exchange(link, public)
    # for the connection's life: after the public client's DISC too
    events, _ = drive(link, public.disconnect())
    assert len(events) == 1 and isinstance(events[0], Disconnected)
    hdlc_refused(link, 1)
    assert link.client_sap == 16
    hdlc_connect(link, 16)


def test_hdlc_bound_to_the_configured_client_when_it_comes_first() -> None:
    link = hdlc_link()
    ours = hdlc_connect(link, 1)
    assert link.client_sap == 1
    hdlc_refused(link, 16)
    hdlc_exchange(link, ours)
    assert link.client_sap == 1 and link.ignored_frames == 1
    assert link.dropped == 1


@pytest.mark.parametrize("then", [1, 16])
def test_hdlc_foreign_client_first_is_ignored_and_does_not_bind(then: int) -> None:
    link = hdlc_link()
    hdlc_refused(link, 5)
    assert link.client_sap == 1  # still unbound: the configured one is shown
    conn = hdlc_connect(link, then)
    assert link.client_sap == then
    hdlc_exchange(link, conn)
    hdlc_refused(link, 17 - then)  # 16 -> 1, 1 -> 16: the other one is now foreign
    hdlc_refused(link, 5)
    assert link.ignored_frames == 3


def test_hdlc_without_public_sap_the_public_client_is_ignored() -> None:
    link = hdlc_link(public_sap=None)
    hdlc_refused(link, 16)
    assert link.client_sap == 1
    conn = hdlc_connect(link, 1)
    hdlc_exchange(link, conn)


def test_hdlc_public_sap_equal_to_the_configured_one_serves_only_it() -> None:
    link = hdlc_link(client_sap=16, public_sap=16)
    hdlc_refused(link, 1)
    assert link.client_sap == 16
    hdlc_exchange(link, hdlc_connect(link, 16))


def test_hdlc_frame_for_another_meter_does_not_bind() -> None:
    link = hdlc_link()
    other = hdlc.HdlcClientConnection(16, hdlc_frame.encode_server_address(1, 2, 2))
    assert drive(link, other.connect()) == ([], b"")
    assert link.ignored_frames + link.connection.ignored_frames == 1
    hdlc_connect(link, 1)


# -- wrapper
def wrapper_link(client_sap: int = 1, public_sap: int | None = 16) -> WrapperLink:
    return WrapperLink.meter(1, client_sap, max_apdu_size=2048, public_sap=public_sap)


def wrapper_client(sap: int) -> wrapper.WrapperConnection:
    return wrapper.WrapperConnection(client_wport=sap, server_wport=1)


def wrapper_served(link: WrapperLink, client: wrapper.WrapperConnection,
                   apdu: bytes = b"\x60\x03\xA1\x01\x00") -> None:
    events, out = drive(link, client.send_apdu(apdu))
    assert events == [ApduReceived(apdu)]
    client.receive_data(out)
    assert client.next_event() == wrapper.ApduReceived(ANSWER, 1, client.client_wport)
    assert client.next_event() is wrapper.NEED_DATA


def wrapper_refused(link: WrapperLink, sap: int) -> None:
    before = link.ignored_frames
    events, out = drive(link, wrapper_client(sap).send_apdu(b"\x60\x00"))
    assert (events, out) == ([], b"")
    assert link.ignored_frames == before + 1


def test_wrapper_bound_to_the_public_client_when_it_comes_first() -> None:
    link = wrapper_link()
    assert link.client_sap == 1 and link.ignored_frames == 0
    public = wrapper_client(16)
    wrapper_served(link, public)
    assert link.client_sap == 16
    wrapper_refused(link, 1)
    wrapper_served(link, public)
    wrapper_refused(link, 1)
    assert link.client_sap == 16 and link.ignored_frames == 2


def test_wrapper_bound_to_the_configured_client_when_it_comes_first() -> None:
    link = wrapper_link()
    ours = wrapper_client(1)
    wrapper_served(link, ours)
    assert link.client_sap == 1
    wrapper_refused(link, 16)
    wrapper_served(link, ours)
    assert link.ignored_frames == 1


@pytest.mark.parametrize("sap", [1, 16])
@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5, 7, 8, 9])
def test_wrapper_first_header_split_across_receives(sap: int, cut: int) -> None:
    link = wrapper_link()
    client = wrapper_client(sap)
    apdu = b"\x60\x03\xA1\x01\x00"
    frame = client.send_apdu(apdu)
    assert drive(link, frame[:cut]) == ([], b"")
    events, out = drive(link, frame[cut:])
    assert events == [ApduReceived(apdu)]
    assert link.client_sap == sap
    client.receive_data(out)
    assert client.next_event() == wrapper.ApduReceived(ANSWER, 1, sap)
    wrapper_refused(link, 17 - sap)


def test_wrapper_two_frames_in_one_chunk_split_in_the_first_header() -> None:
    link = wrapper_link()
    public = wrapper_client(16)
    data = public.send_apdu(b"\x60\x01\x01") + wrapper_client(1).send_apdu(b"\x60\x01\x02")
    assert drive(link, data[:1]) == ([], b"")
    events, _ = drive(link, data[1:])
    assert events == [ApduReceived(b"\x60\x01\x01")]
    assert link.client_sap == 16 and link.ignored_frames == 1


def test_wrapper_without_public_sap_the_public_client_is_ignored() -> None:
    link = wrapper_link(public_sap=None)
    wrapper_refused(link, 16)
    assert link.client_sap == 1
    wrapper_served(link, wrapper_client(1))


def test_wrapper_foreign_client_is_ignored() -> None:
    link = wrapper_link()
    wrapper_refused(link, 5)
    wrapper_served(link, wrapper_client(1))
    wrapper_refused(link, 5)
    assert link.ignored_frames == 2


def test_wrapper_foreign_client_first_does_not_bind() -> None:
    link = wrapper_link()
    wrapper_refused(link, 5)
    wrapper_served(link, wrapper_client(16))
    assert link.client_sap == 16


def test_wrapper_frame_for_another_logical_device_does_not_bind() -> None:
    link = wrapper_link()
    other = wrapper.WrapperConnection(client_wport=16, server_wport=2)
    assert drive(link, other.send_apdu(b"\x60\x00")) == ([], b"")
    assert link.ignored_frames == 1
    wrapper_served(link, wrapper_client(1))


# =================================================================== the meter's counters
def gmac_client(start: int, title: bytes = TITLE_A) -> tuple[LnClient, list[int]]:
    """The daemon's client with HLS-GMAC and ciphering, its counters from ``start``;
    the list holds every counter it used."""
    counters = itertools.count(start)
    used: list[int] = []

    def next_counter() -> int:
        used.append(next(counters))
        return used[-1]

    ciphering = Ciphering(SecurityControl.of(0x30), title, DEFAULT_BLOCK_CIPHER_KEY,
                          DEFAULT_AUTHENTICATION_KEY, next_counter, lambda _counter, **_: None)
    hls = HlsKeys(MechanismName.HIGH_GMAC, system_title=title,
                  block_cipher_key=DEFAULT_BLOCK_CIPHER_KEY,
                  authentication_key=DEFAULT_AUTHENTICATION_KEY)
    return LnClient(hls=hls, ciphering=ciphering), used


def gmac_security() -> SimSecurity:
    return SimSecurity(MechanismName.HIGH_GMAC, random=lambda n: bytes(range(0x40, 0x40 + n)))


def meter_server(security: SimSecurity, client_sap: int = 1) -> MeterServer:
    return MeterServer(Meter(MODEL), ServerOptions(security=security, client_sap=client_sap))


def associate(server: MeterServer, client: LnClient) -> None:
    event = client.receive_apdu(server.handle(client.associate(CTOS), NOW))
    assert isinstance(event, Authenticate)
    assert isinstance(client.receive_apdu(server.handle(event.apdu, NOW)), Associated)
    assert server.state is AssociationState.ASSOCIATED


def get(server: MeterServer, client: LnClient, descriptor: CosemAttributeDescriptor
        ) -> Data | DataAccessResult:
    result = client.receive_apdu(server.handle(client.get([descriptor]), NOW))
    assert isinstance(result, GetComplete)
    return result.results[0]


def ciphered_session(security: SimSecurity, start: int, title: bytes = TITLE_A,
                     reads: int = 2) -> list[int]:
    """One ciphered association on a new MeterServer, ``reads`` GETs; the counters used."""
    server = meter_server(security)
    client, used = gmac_client(start, title)
    associate(server, client)
    for _ in range(reads):
        assert get(server, client, ENERGY) == Data.uint32(123456)
    return used


def refused(security: SimSecurity, start: int, title: bytes = TITLE_A) -> Aare:
    server = meter_server(security)
    client, _ = gmac_client(start, title)
    answer = server.handle(client.associate(CTOS), NOW)
    aare = Aare.from_bytes(answer)
    with pytest.raises(AssociationRejected) as info:
        client.receive_apdu(answer)
    assert info.value.diagnostic == int(AcseServiceUser.AUTHENTICATION_FAILURE)
    assert server.state is AssociationState.NON_ASSOCIATED
    return aare


def public_read(security: SimSecurity) -> Data | DataAccessResult:
    server = meter_server(security.public(), client_sap=16)
    client = LnClient()
    assert isinstance(client.receive_apdu(server.handle(client.associate(), NOW)), Associated)
    return get(server, client, COUNTER)


def test_a_second_association_restarting_the_counter_is_refused_in_the_aarq() -> None:
    security = gmac_security()
    used = ciphered_session(security, 1)
    assert used == list(range(1, len(used) + 1)) and len(used) >= 4
    before = dict(security.accepted_counters)
    assert before == {TITLE_A: max(used)}
    aare = refused(security, 1)
    assert aare.result is AssociationResult.REJECTED_PERMANENT
    assert aare.diagnostic is AcseServiceUser.AUTHENTICATION_FAILURE
    assert security.accepted_counters == before  # a refused AARQ moves nothing


@pytest.mark.parametrize("offset", [0, -1, -3])
def test_a_counter_not_above_the_last_is_refused(offset: int) -> None:
    security = gmac_security()
    last = max(ciphered_session(security, 1))
    aare = refused(security, last + offset)
    assert aare.diagnostic is AcseServiceUser.AUTHENTICATION_FAILURE


@pytest.mark.parametrize("offset", [1, 2, 1000])
def test_a_counter_above_the_last_is_accepted(offset: int) -> None:
    security = gmac_security()
    last = max(ciphered_session(security, 1))
    used = ciphered_session(security, last + offset)
    assert used[0] == last + offset
    assert security.accepted_counters == {TITLE_A: max(used)}


def test_the_counters_survive_a_reset_of_the_same_server() -> None:
    security = gmac_security()
    server = meter_server(security)
    client, used = gmac_client(1)
    associate(server, client)
    server.reset()  # the link went down: the association ends, the counters stay
    again, _ = gmac_client(1)
    aare = Aare.from_bytes(server.handle(again.associate(CTOS), NOW))
    assert aare.diagnostic is AcseServiceUser.AUTHENTICATION_FAILURE
    assert security.invocation_counter == max(used)


def test_public_client_reads_the_highest_counter_used() -> None:
    security = gmac_security()
    assert security.invocation_counter == 0
    assert public_read(security) == Data.uint32(0)  # before any ciphered association
    used = ciphered_session(security, 1, reads=3)
    assert public_read(security) == Data.uint32(max(used))
    # the client that lost its counter goes on above what it read: accepted
    value = public_read(security)
    assert isinstance(value, Data) and isinstance(value.value, int)
    more = ciphered_session(security, value.value + 1)
    assert public_read(security) == Data.uint32(max(more))


def test_public_association_shows_the_counter_live() -> None:
    security = gmac_security()
    public = meter_server(security.public(), client_sap=16)
    client = LnClient()
    assert isinstance(client.receive_apdu(public.handle(client.associate(), NOW)), Associated)
    assert get(public, client, COUNTER) == Data.uint32(0)
    first = ciphered_session(security, 1)
    assert get(public, client, COUNTER) == Data.uint32(max(first))
    second = ciphered_session(security, 5000)
    assert get(public, client, COUNTER) == Data.uint32(max(second))
    assert public.association_view.invocation_counter == max(second)
    assert get(public, client, PARTNERS) == Data.structure(Data.int8(16), Data.uint16(1))


def test_client_titles_are_tracked_separately() -> None:
    security = gmac_security()
    used_a = ciphered_session(security, 1, TITLE_A, reads=4)
    used_b = ciphered_session(security, 1, TITLE_B, reads=1)  # B may start at 1
    assert used_b[0] == 1 and max(used_b) < max(used_a)
    assert security.accepted_counters == {TITLE_A: max(used_a), TITLE_B: max(used_b)}
    assert public_read(security) == Data.uint32(max(used_a))  # the highest of all
    # each title keeps its own last counter
    assert refused(security, max(used_b), TITLE_B).diagnostic is (
        AcseServiceUser.AUTHENTICATION_FAILURE)
    assert refused(security, max(used_b) + 1, TITLE_A).diagnostic is (
        AcseServiceUser.AUTHENTICATION_FAILURE)
    used_b2 = ciphered_session(security, max(used_b) + 1, TITLE_B)
    assert security.accepted_counters == {TITLE_A: max(used_a), TITLE_B: max(used_b2)}
    high_b = ciphered_session(security, max(used_a) + 100, TITLE_B)
    assert public_read(security) == Data.uint32(max(high_b))


def test_public_security_has_no_authentication_and_shares_the_counters() -> None:
    security = gmac_security()
    public = security.public()
    assert public.mechanism is MechanismName.LOWEST
    assert not public.ciphered and not public.hls
    assert public.accepted_counters is security.accepted_counters
    assert public.system_title == security.system_title
    security.accepted_counters[TITLE_B] = 41
    assert public.invocation_counter == 41


def test_settings_serve_the_public_client_beside_the_configured_one() -> None:
    security = gmac_security()
    settings = SimSettings(client_address=1, security=security)
    assert settings.public_sap == 16
    assert SimSettings(client_address=16, security=security).public_sap is None
    ours = settings.options_for(1)
    assert ours == settings.options and ours.security is security and ours.client_sap == 1
    theirs = settings.options_for(16)
    assert theirs.client_sap == 16
    assert theirs.security.mechanism is MechanismName.LOWEST
    assert not theirs.security.ciphered
    assert theirs.security.accepted_counters is security.accepted_counters
    assert theirs.context is ApplicationContextName.LOGICAL_NAME_REFERENCING_NO_CIPHERING
    assert (theirs.max_pdu, theirs.server_sap, theirs.referencing) == (
        ours.max_pdu, ours.server_sap, ours.referencing)

    # the configured client, ciphered, on its own association
    server = MeterServer(Meter(MODEL), settings.options_for(1))
    client, used = gmac_client(1)
    associate(server, client)
    assert get(server, client, ENERGY) == Data.uint32(123456)
    # the public client, no authentication, reads what the ciphered client used
    public = MeterServer(Meter(MODEL), settings.options_for(16))
    plain = LnClient()
    assert isinstance(plain.receive_apdu(public.handle(plain.associate(), NOW)), Associated)
    assert get(public, plain, COUNTER) == Data.uint32(max(used))
    assert get(public, plain, PARTNERS) == Data.structure(Data.int8(16), Data.uint16(1))


def test_public_association_refuses_hls_and_the_configured_one_refuses_none() -> None:
    settings = SimSettings(client_address=1, security=gmac_security())
    public = MeterServer(Meter(MODEL), settings.options_for(16))
    client, _ = gmac_client(1)
    aare = Aare.from_bytes(public.handle(client.associate(CTOS), NOW))
    assert aare.result is AssociationResult.REJECTED_PERMANENT
    assert aare.diagnostic is AcseServiceUser.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED
    ours = MeterServer(Meter(MODEL), settings.options_for(1))
    aare = Aare.from_bytes(ours.handle(LnClient().associate(), NOW))
    assert aare.result is AssociationResult.REJECTED_PERMANENT


def test_server_association_view_passes_the_counter() -> None:
    security = gmac_security()
    server = meter_server(security)
    assert server.association_view.invocation_counter == 0
    security.accepted_counters[TITLE_A] = 7
    security.accepted_counters[TITLE_B] = 3
    assert server.association_view.invocation_counter == 7


# =================================================================== the model
def model_with(value: dict[str, Any], obis: str = "0.0.43.1.0.255") -> MeterModel:
    return parse_model({"objects": [{"class": "data", "obis": obis, "value": value}]},
                       "test.json")


def model_problems(value: dict[str, Any] | None, obis: str = "0.0.43.1.0.255") -> list[str]:
    obj: dict[str, Any] = {"class": "data", "obis": obis}
    if value is not None:
        obj["value"] = value
    with pytest.raises(ConfigError) as info:
        parse_model({"objects": [obj]}, "test.json")
    return info.value.problems


def view(counter: int) -> AssociationView:
    return AssociationView(client_sap=16, server_sap=1, conformance=0x001219,
                           max_receive_pdu_size=1024, max_send_pdu_size=1024,
                           invocation_counter=counter)


@pytest.mark.parametrize("obis", ["0.0.43.1.0.255", "0-0:43.1.0*255"])
def test_model_counter_object_shows_the_association_counter(obis: str) -> None:
    meter = Meter(model_with({"type": "double-long-unsigned", "value": 999}, obis))
    name = Obis(0, 0, 43, 1, 0, 255)
    for counter in (0, 77, 2**32 - 1):
        assert meter.read(1, name, 2, now=NOW, association=view(counter)) == (
            Data.uint32(counter))
    assert meter.read(1, name, 1, now=NOW, association=view(5)) == Data.octets(
        name.to_bytes())


def test_other_security_setup_counter_is_an_ordinary_data_object() -> None:
    meter = Meter(model_with({"type": "double-long-unsigned", "value": 999},
                             "0.0.43.1.1.255"))
    assert meter.read(1, Obis(0, 0, 43, 1, 1, 255), 2, now=NOW,
                      association=view(77)) == Data.uint32(999)


def test_bundled_model_counter_object_is_live() -> None:
    meter = Meter(MODEL)
    assert meter.read(1, COUNTER.instance_id, 2, now=NOW, association=view(12)) == (
        Data.uint32(12))


NOT_A_COUNTER = ("test.json: $.objects[0].value: the invocation counter is a "
                 "double-long-unsigned without live (the simulator keeps it)")


@pytest.mark.parametrize("value", [
    {"type": "long-unsigned", "value": 0},
    {"type": "double-long", "value": 0},
    {"type": "long64-unsigned", "value": 0},
    {"type": "octet-string", "hex": "00000000"},
    {"type": "double-long-unsigned", "value": 0, "live": {"mode": "increase",
                                                          "per_hour": 1}},
])
def test_model_counter_of_another_type_or_live_is_a_problem(value: dict[str, Any]) -> None:
    assert model_problems(value) == [NOT_A_COUNTER]


def test_model_counter_problem_is_listed_with_the_others() -> None:
    with pytest.raises(ConfigError) as info:
        parse_model({"objects": [
            {"class": "data", "obis": "0.0.43.1.0.255", "value": {"type": "unsigned",
                                                                   "value": 0}},
            {"class": "data", "obis": "0.0.96.1.0.255", "value": {"type": "octet-string",
                                                                   "hex": "0G"}},
        ]}, "test.json")
    problems = info.value.problems
    assert len(problems) == 2 and problems[0] == NOT_A_COUNTER
    assert problems[1].startswith("test.json: $.objects[1].value.hex: ")
