"""MeterReader (dlmsd.protocol.reader) against the simulated meter, wholly in memory.

Every test drives a reader built from a device configuration (dlmsd.readers.build_reader)
through tests/memory_meter.py: a fake clock, a wire that carries the reader's frames to
the simulator's link end and MeterServer and its answers back, and faults on that wire
(dropped, corrupted and delayed frames).  No socket, no asyncio, no sleep: time moves
only when the driver advances the fake clock to the reader's timer.

Expected values are the bundled model's (dlmsd/sim/meter.json): energy 1.0.1.8.0.255 is
123456 with scaler 1 in Wh, voltage L1 1.0.32.7.0.255 2301 with scaler -1 in V, the
power factor 1.0.13.7.0.255 982 with scaler -3 and unit 255 (none), the ambient
temperature 0.0.96.9.0.255 float32 21.5 with scaler 0 in °C, the serial number
0.0.96.1.0.255 the octet-string "12345678", the clock 0.0.1.0.0.255 at
2024-06-01T12:00:00+02:00 with DST active (deviation -120, status 0x80).

Two strict xfails record what a late answer over the wrapper still breaks: a resent
AARQ answered twice, and a resent GET whose first block comes twice.
"""

from __future__ import annotations

import itertools
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import serial_device, signal, tcp_device
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from memory_meter import HDLC_LOGICAL, HDLC_PHYSICAL, Clock, MemoryMeter, SerialMeter, Wire

from dlmsd.config import DeviceConfig, parse_config
from dlmsd.errors import AssociationRejected, DlmsTimeout, RemoteProtocolError, TransportError
from dlmsd.protocol import hdlc, hdlc_frame
from dlmsd.protocol import iec62056_21 as iec
from dlmsd.protocol import reader as reader_module
from dlmsd.protocol.acse import MechanismName
from dlmsd.protocol.actions import Send, SetLine, Trace
from dlmsd.protocol.axdr import DateTime
from dlmsd.protocol.client import CounterStart
from dlmsd.protocol.link import HdlcLink
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.reader import (
    AttributeRequest,
    MeterCache,
    MeterQuirks,
    MeterReader,
    ReadAttributes,
    ReaderState,
    ReadResult,
)
from dlmsd.protocol.sn import BlockNumberAccess, ReadRequest
from dlmsd.protocol.xdlms import (
    ExceptionResponse,
    ExceptionServiceError,
    GetRequestNext,
    GetRequestWithList,
    StateError,
)
from dlmsd.readers import build_reader
from dlmsd.secret import Secret
from dlmsd.sim.auth import SimSecurity
from dlmsd.sim.server import Referencing, ServerOptions

TIMEOUT = 1.0  # seconds: timeout_ms 1000 on every device here
PORT_NAME = "127.0.0.1:4059"


def req(key: str, obis: str, class_id: int | None, attribute: int = 2) -> AttributeRequest:
    return AttributeRequest(key, Obis.parse(obis), attribute, class_id)


ENERGY = req("energy", "1.0.1.8.0.255", 3)
VOLTAGE = req("voltage", "1.0.32.7.0.255", None)  # class from the object list
POWER_FACTOR = req("pf", "1.0.13.7.0.255", 3)
TEMPERATURE = req("temp", "0.0.96.9.0.255", 3)
SERIAL = req("serial", "0.0.96.1.0.255", 1)
CLOCK = req("clock", "0.0.1.0.0.255", 8)
MISSING = req("missing", "1.0.99.99.0.255", 3)
# date-times in octet-strings: extended register capture_time (class from the object
# list), demand register capture_time and start_time_current
CAPTURE = req("capture", "1.0.1.6.0.255", None, 5)
DEMAND_CAPTURE = req("demand_capture", "1.0.1.4.0.255", 5, 6)
DEMAND_START = req("demand_start", "1.0.1.4.0.255", 5, 7)
REGISTERS = (ENERGY, req("voltage", "1.0.32.7.0.255", 3), POWER_FACTOR, TEMPERATURE)

#: key -> (value, unit) from the bundled model
EXPECTED: dict[str, tuple[Any, str]] = {
    "energy": (Decimal("1234560"), "Wh"),
    "voltage": (Decimal("230.1"), "V"),
    "pf": (Decimal("0.982"), ""),
    "temp": (Decimal("21.5"), "°C"),
    "serial": ("12345678", ""),
    "clock": ("2024-06-01T12:00:00+02:00", ""),
    "capture": ("2024-05-28T18:15:00+02:00", ""),
    "demand_capture": ("2024-06-01T11:45:00+02:00", ""),
    "demand_start": ("2024-06-01T11:45:00+02:00", ""),
}

KINDS = ["hdlc", "wrapper"]
REFERENCINGS = ["LN", "SN"]
PASSWORD = "Pw-7h1s-1s-s3cr3t"
HLS_SECRET = "Hx!sEcReT-16oct."  # 16 octets (mechanism 2 uses it as an AES-128 key)
BLOCK_CIPHER_KEY = bytes.fromhex("5EC0DE00112233445566778899AABBCC")
AUTHENTICATION_KEY = bytes.fromhex("A0A1A2A3A4A5A6A7A8A9AAABACADAEAF")
CLIENT_TITLE = "4D4D4D0000000001"


# ---------------------------------------------------------------------------- harness


class FakeCounters:
    """The counter store's interface (dlmsd.readers.CounterBook), in memory: our
    counters from 1 up; the meter's must rise."""

    def __init__(self) -> None:
        self._next = itertools.count(1)
        self.issued: list[int] = []
        self.received: list[int] = []
        self.meters: set[tuple[bytes, str]] = set()

    def next(self, device: str) -> int:
        value = next(self._next)
        self.issued.append(value)
        return value

    def check_received(self, device: str, counter: int, *, meter: bytes,
                       key: str) -> CounterStart | None:
        assert not self.received or counter > self.received[-1], "a replayed counter"
        self.received.append(counter)
        self.meters.add((meter, key))
        return None


def device(kind: str, referencing: str = "LN", base: Path | None = None,
           **over: Any) -> DeviceConfig:
    """A TCP device for the in-memory meter (HDLC address 1/17, or wPort 1)."""
    link = ({"mode": "DLMS-WRAPPER", "logical_address": 1} if kind == "wrapper" else
            {"address_size": 2, "logical_address": 1, "physical_address": 17})
    settings = {"type": referencing, "timeout_ms": int(TIMEOUT * 1000), "retry_counter": 2,
                **link, **over}
    doc = {"devices": [tcp_device("m", **settings)], "signals": [signal(device="m")]}
    return parse_config(doc, base=base).devices[0]


class Session:
    """A reader, the meter it talks to and the wire between them."""

    def __init__(self, kind: str, referencing: str = "LN", *,
                 options: ServerOptions | None = None, quirks: MeterQuirks | None = None,
                 cache: MeterCache | None = None,
                 counters: FakeCounters | None = None, clock: Clock | None = None,
                 base: Path | None = None, refuse_with_list: bool = False,
                 max_info: int = 128, **over: Any) -> None:
        if options is None:
            options = ServerOptions(referencing=Referencing(referencing))
        self.counters = counters if counters is not None else FakeCounters()
        self.quirks = quirks if quirks is not None else MeterQuirks()
        self.reader: MeterReader = build_reader(
            device(kind, referencing, base, **over), quirks=self.quirks,
            counters=lambda: self.counters, cache=cache)
        self.meter = MemoryMeter(kind, options, refuse_with_list=refuse_with_list,
                                 max_info=max_info)
        self.wire = Wire(self.reader, self.meter, clock if clock is not None else Clock())

    def open(self) -> None:
        reader = self.reader
        reader.open(self.wire.now, bytes(range(reader.settings.challenge_size)))
        self.wire.run(lambda: reader.state is ReaderState.READY)

    def read(self, *requests: AttributeRequest) -> dict[str, ReadResult]:
        reader = self.reader
        reader.submit(ReadAttributes(requests), self.wire.now)
        self.wire.run(lambda: reader.state is not ReaderState.BUSY)
        assert reader.state is ReaderState.READY
        results: list[ReadResult] = reader.result
        assert [r.key for r in results] == [r.key for r in requests]
        return {r.key: r for r in results}

    def close(self) -> None:
        reader = self.reader
        reader.close(self.wire.now)
        self.wire.run(lambda: reader.state is ReaderState.CLOSED)


def check(results: dict[str, ReadResult], *keys: str) -> None:
    """The results of ``keys`` are the model's values, exactly (type included)."""
    for key in keys:
        result = results[key]
        value, unit = EXPECTED[key]
        assert result.error is None, result
        assert type(result.value) is type(value) and result.value == value, result
        if isinstance(value, Decimal):  # exactly: 230.1, not 230.10000000000001
            assert str(result.value) == str(value)
        assert result.unit == unit, result


# ---------------------------------------------------------- 1. reading, LN and SN


@pytest.mark.parametrize("referencing", REFERENCINGS)
@pytest.mark.parametrize("kind", KINDS)
def test_open_read_and_close(kind: str, referencing: str) -> None:
    """LN and SN over HDLC and the wrapper: registers come scaled with their unit,
    a Data object and the clock rendered, an OBIS the meter lacks is an error of its
    signal only; close releases (the meter saw RLRQ) and, on HDLC, disconnects."""
    session = Session(kind, referencing)
    session.open()
    results = session.read(ENERGY, VOLTAGE, MISSING, POWER_FACTOR, TEMPERATURE, SERIAL,
                           CLOCK, CAPTURE, DEMAND_CAPTURE, DEMAND_START)
    check(results, "energy", "voltage", "pf", "temp", "serial", "clock", "capture",
          "demand_capture", "demand_start")
    # the raw value stays available beside the rendered one
    raw = results["capture"].raw
    assert isinstance(raw, str) and len(raw) == 24  # the octet-string in hex
    assert DateTime.from_bytes(bytes.fromhex(raw)).isoformat() == results["capture"].value
    missing = results["missing"]
    assert missing.value is None and missing.error is not None
    assert "1.0.99.99.0.255" in missing.error
    if referencing == "LN":  # addressed by class and OBIS: the meter says object-undefined
        assert "object-undefined" in missing.error
    else:  # SN: the short name comes from the object list, which lacks it
        assert "not in the meter's object list" in missing.error
    session.close()
    assert session.reader.state is ReaderState.CLOSED
    assert session.meter.saw_release
    assert session.wire.named("released")
    assert session.meter.link_events == (["up", "down"] if kind == "hdlc" else [])
    assert not session.wire.named("retry")


# ------------------------------------------------------------------ 2. authentication


def _keys(tmp_path: Path) -> tuple[dict[str, Any], Secret, bytes]:
    """P-256 key files for the client and the meter's public key; returns the device
    keys, the meter's signing scalar and the client's public point."""
    client = ec.generate_private_key(ec.SECP256R1())
    meter = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "client.pem").write_bytes(client.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (tmp_path / "meter.pub").write_bytes(meter.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    point = client.public_key().public_bytes(serialization.Encoding.X962,
                                             serialization.PublicFormat.UncompressedPoint)
    scalar = meter.private_numbers().private_value.to_bytes(32, "big")
    keys = {"auth": "HighEcdsa", "system_title": CLIENT_TITLE,
            "client_private_key": "client.pem", "server_public_key": "meter.pub"}
    return keys, Secret(scalar), point


def _gmac(policy: str) -> tuple[dict[str, Any], SimSecurity]:
    keys = {"auth": "HighGmac", "system_title": CLIENT_TITLE, "security": policy,
            "block_cipher_key": BLOCK_CIPHER_KEY.hex(),
            "authentication_key": AUTHENTICATION_KEY.hex()}
    return keys, SimSecurity(MechanismName.HIGH_GMAC, block_cipher_key=Secret(BLOCK_CIPHER_KEY),
                             authentication_key=Secret(AUTHENTICATION_KEY), security=policy)


SECRET_MECHANISMS = {
    "Low": MechanismName.LOW, "High": MechanismName.HIGH, "HighMd5": MechanismName.HIGH_MD5,
    "HighSha1": MechanismName.HIGH_SHA1, "HighSha256": MechanismName.HIGH_SHA256,
}
AUTH_CASES = ["None", *SECRET_MECHANISMS, "HighGmac-authentication", "HighGmac-encryption",
              "HighGmac-both", "HighEcdsa", "HighEcdsa-both"]


def _security(name: str, tmp_path: Path) -> tuple[dict[str, Any], SimSecurity]:
    if name == "None":
        return {}, SimSecurity()
    if name in SECRET_MECHANISMS:
        secret = PASSWORD if name == "Low" else HLS_SECRET
        keys: dict[str, Any] = {"auth": name, "password": secret}
        if name == "HighSha256":
            keys["system_title"] = CLIENT_TITLE
        return keys, SimSecurity(SECRET_MECHANISMS[name], Secret(secret.encode()))
    if name.startswith("HighGmac-"):
        return _gmac(name.removeprefix("HighGmac-"))
    keys, scalar, point = _keys(tmp_path)
    ciphered = name == "HighEcdsa-both"
    if ciphered:
        keys |= {"block_cipher_key": BLOCK_CIPHER_KEY.hex(),
                 "authentication_key": AUTHENTICATION_KEY.hex()}
    return keys, SimSecurity(MechanismName.HIGH_ECDSA, signing_key=scalar,
                             client_public_key=point, ecdsa_ciphering=ciphered,
                             block_cipher_key=Secret(BLOCK_CIPHER_KEY),
                             authentication_key=Secret(AUTHENTICATION_KEY))


# The first octet of a data request: plain GET / SN Read, or glo-ciphered.
PLAIN_REQUEST = {"LN": 0xC0, "SN": 0x05}
CIPHERED_REQUEST = {"LN": 0xC8, "SN": 0x25}
PASS_3 = {"LN": {False: 0xC3, True: 0xCB}, "SN": {False: 0x05, True: 0x25}}


@pytest.mark.parametrize("referencing", REFERENCINGS)
@pytest.mark.parametrize("name", AUTH_CASES)
def test_every_authentication_mechanism(name: str, referencing: str, tmp_path: Path) -> None:
    """Each mechanism associates, LN and SN (HLS through pass 3 and 4; HighGmac with
    each security policy and HighEcdsa with ciphering glo-cipher every request, with
    the invocation counters of the counter store going up on both sides), reads the
    model's values and releases."""
    keys, security = _security(name, tmp_path)
    kind = "hdlc" if referencing == "LN" else "wrapper"
    options = ServerOptions(referencing=Referencing(referencing), security=security)
    session = Session(kind, referencing, options=options, base=tmp_path, **keys)
    session.open()
    check(session.read(ENERGY, SERIAL), "energy", "serial")
    session.close()
    assert session.meter.saw_release
    data = [apdu[0] for apdu in session.meter.requests if apdu[0] not in (0x60, 0x62)]
    ciphered = name.startswith("HighGmac") or name == "HighEcdsa-both"
    if security.hls:  # pass 3 first: reply_to_HLS_authentication (LN ACTION, SN Read)
        assert data[0] == PASS_3[referencing][ciphered]
        data = data[1:]
    assert data and set(data) == {(CIPHERED_REQUEST if ciphered else PLAIN_REQUEST)[
        referencing]}
    if ciphered:
        # ours: AARQ, f(StoC) (HighGmac only), pass 3 and each request; the meter's:
        # AARE, pass 4 and each answer
        gmac = name.startswith("HighGmac")
        assert session.counters.issued == list(range(1, len(data) + 3 + gmac))
        assert len(session.counters.received) == len(data) + 2
    else:
        assert session.counters.issued == session.counters.received == []


@pytest.mark.parametrize("referencing", REFERENCINGS)
@pytest.mark.parametrize("name", list(SECRET_MECHANISMS))
def test_wrong_password_is_rejected(name: str, referencing: str) -> None:
    """A wrong password (Low) or HLS secret (High*: the meter finds f(StoC) wrong)
    fails the association with AssociationRejected, and the reader is FAILED."""
    mechanism = SECRET_MECHANISMS[name]
    security = SimSecurity(mechanism, Secret(b"0123456789ABCDEF"))
    options = ServerOptions(referencing=Referencing(referencing), security=security)
    keys: dict[str, Any] = {"auth": name, "password": HLS_SECRET}
    if name == "HighSha256":
        keys["system_title"] = CLIENT_TITLE
    session = Session("hdlc", referencing, options=options, **keys)
    with pytest.raises(AssociationRejected):
        session.open()
    assert session.reader.state is ReaderState.FAILED


@pytest.mark.parametrize("referencing", REFERENCINGS)
def test_high_short_secret_zero_padded_like_the_simulator(referencing: str) -> None:
    """auth High with a secret shorter than 16 octets: the reader pads it with zero
    octets to 16 (as gurux does) and so does dlms-sim; the association goes through
    pass 3 and 4 and reads.  A meter holding the padded secret written out in full
    accepts it as well (the padding is zeros at the end), one with another short
    secret does not."""
    short = b"Sh0rt!Hx"
    for meter_secret in (short, short + bytes(16 - len(short))):
        security = SimSecurity(MechanismName.HIGH, Secret(meter_secret))
        options = ServerOptions(referencing=Referencing(referencing), security=security)
        session = Session("hdlc", referencing, options=options, auth="High",
                          password=short.decode())
        session.open()
        check(session.read(ENERGY, SERIAL), "energy", "serial")
        session.close()
        assert session.meter.saw_release
    security = SimSecurity(MechanismName.HIGH, Secret(b"Sh0rt!Hy"))
    options = ServerOptions(referencing=Referencing(referencing), security=security)
    session = Session("hdlc", referencing, options=options, auth="High",
                      password=short.decode())
    with pytest.raises(AssociationRejected) as info:
        session.open()
    assert short.decode() not in str(info.value)


# ------------------------------------------------------------ 3. refused with-list


@pytest.mark.parametrize("referencing", REFERENCINGS)
def test_refused_with_list_falls_back_and_is_remembered(referencing: str) -> None:
    """A meter that offers multiple-references but refuses a GET-with-list (SN: a Read
    of several variables): the reader falls back to one attribute per request, notes
    it, sets quirks.no_get_with_list, and a NEW reader with the same quirks sends single
    requests from its first one."""
    quirks = MeterQuirks()
    first = Session("hdlc", referencing, quirks=quirks, refuse_with_list=True)
    first.open()
    check(first.read(*REGISTERS), "energy", "voltage", "pf", "temp")
    assert first.meter.with_list_requests() == 1  # the refused one
    assert first.wire.named("get_with_list_refused")
    assert quirks.no_get_with_list
    # the next job of this association: single requests straight away
    before = len(first.meter.requests)
    check(first.read(ENERGY, POWER_FACTOR), "energy", "pf")
    assert len(first.meter.requests) - before == 2
    assert first.meter.with_list_requests() == 1
    first.close()

    second = Session("hdlc", referencing, quirks=quirks, refuse_with_list=True)
    second.open()
    check(second.read(*REGISTERS), "energy", "voltage", "pf", "temp")
    assert second.meter.with_list_requests() == 0
    reads = second.meter.attributes_read()
    if referencing == "SN":
        reads = reads[1:]  # the object list (for the short names) comes first
    assert all(len(attrs) == 1 for attrs in reads if attrs)
    assert len([attrs for attrs in reads if attrs]) == 2 * len(REGISTERS)  # scalers, values
    assert not second.wire.named("get_with_list_refused")


def test_meter_without_multiple_references_is_read_one_by_one() -> None:
    """dlms-sim --no-get-with-list (ServerOptions get_with_list=False) leaves
    multiple-references out of the negotiated conformance: the reader never asks for a
    list, so nothing is refused and there is no quirk to learn."""
    quirks = MeterQuirks()
    session = Session("wrapper", options=ServerOptions(get_with_list=False), quirks=quirks)
    session.open()
    check(session.read(*REGISTERS), "energy", "voltage", "pf", "temp")
    assert session.meter.with_list_requests() == 0
    assert len(session.meter.reads()) == 2 * len(REGISTERS)
    assert not quirks.no_get_with_list


# ------------------------------------------------------------------ 4. scaler cache


@pytest.mark.parametrize("referencing", REFERENCINGS)
def test_scaler_unit_is_read_once_per_association(referencing: str) -> None:
    """The second ReadAttributes of an association does not read scaler_unit again
    (the meter sees only the value attributes); a new association without the meter's
    cache (tests/test_meter_change.py has the one with it) reads it again."""
    session = Session("hdlc", referencing)
    session.open()
    check(session.read(*REGISTERS), "energy", "voltage", "pf", "temp")
    first = session.meter.attributes_read()
    scalers = sorted((str(r.obis), 3) for r in REGISTERS)
    values = sorted((str(r.obis), 2) for r in REGISTERS)
    assert sorted(a for attrs in first for a in attrs if a[1] == 3) == scalers
    check(session.read(*REGISTERS), "energy", "voltage", "pf", "temp")
    second = session.meter.attributes_read()[len(first):]
    assert [sorted(attrs) for attrs in second] == [values]
    session.close()

    again = Session("hdlc", referencing)
    again.open()
    check(again.read(ENERGY), "energy")
    assert ("1.0.1.8.0.255", 3) in {a for attrs in again.meter.attributes_read()
                                     for a in attrs}


# ------------------------------------------------------------------------ 5. resends


def _opened(kind: str, referencing: str = "LN", **over: Any) -> Session:
    session = Session(kind, referencing, **over)
    session.open()
    return session


RESEND_CASES = [("hdlc", "LN"), ("hdlc", "SN"), ("wrapper", "LN")]


@pytest.mark.parametrize(("kind", "referencing"), RESEND_CASES)
def test_dropped_request_is_resent(kind: str, referencing: str) -> None:
    """A request lost on the way to the meter: after the timeout the reader resends
    (wrapper: the same frame; HDLC: RR with poll, the meter's RR shows the I frame was
    lost and it is sent again) and the values come out right."""
    session = _opened(kind, referencing)
    wire = session.wire
    wire.drop_to_meter = {wire.sent_to_meter + 1}
    start = wire.now
    check(session.read(ENERGY, SERIAL), "energy", "serial")
    (retry,) = wire.named("retry")
    assert retry.fields["attempt"] == 2 and retry.fields["of"] == 3
    assert retry.level == "warning"
    assert wire.now == start + TIMEOUT  # one timeout spent, nothing more
    session.close()


@pytest.mark.parametrize(("kind", "referencing"), RESEND_CASES)
def test_dropped_answer_is_recovered(kind: str, referencing: str) -> None:
    """An answer lost on the way back: the reader resends after the timeout and gets
    the answer (HDLC: the meter sends its last I frame again on the RR poll; wrapper
    LN: the meter answers the resent request, with the same invoke-id)."""
    session = _opened(kind, referencing)
    wire = session.wire
    wire.drop_to_client = {wire.sent_to_client + 1}
    check(session.read(ENERGY, SERIAL), "energy", "serial")
    assert len(wire.named("retry")) == 1
    session.close()
    assert session.reader.state is ReaderState.CLOSED


@pytest.mark.parametrize(("kind", "referencing"), RESEND_CASES)
def test_no_retries_ends_in_timeout(kind: str, referencing: str) -> None:
    """With retry_counter 0 a dropped request is not resent: DlmsTimeout after one
    timeout, naming the request awaited, and the reader is FAILED."""
    session = _opened(kind, referencing, retry_counter=0)
    wire = session.wire
    wire.drop_to_meter = {wire.sent_to_meter + 1}
    start = wire.now
    with pytest.raises(DlmsTimeout) as caught:
        session.read(ENERGY)
    # the first request of the job: the register's scaler_unit (attribute 3)
    what = "GET 3/1.0.1.8.0.255/3" if referencing == "LN" else "READ 0x"
    assert str(caught.value).startswith(f"no answer to {what}")
    assert f"from {PORT_NAME} (1 attempt of 1000 ms)" in str(caught.value)
    assert wire.now == start + TIMEOUT
    assert not wire.named("retry")
    assert session.reader.state is ReaderState.FAILED


def test_all_resends_lost_ends_in_timeout() -> None:
    """Every frame lost after the request: retry_counter resends, then DlmsTimeout
    after (retries + 1) timeouts, naming the attempts."""
    session = _opened("hdlc")
    wire = session.wire
    wire.drop_to_meter = range(wire.sent_to_meter + 1, 1000)
    start = wire.now
    with pytest.raises(DlmsTimeout, match=r"no answer to GET .*\(3 attempts of 1000 ms\)"):
        session.read(ENERGY)
    assert [n.fields["attempt"] for n in wire.named("retry")] == [2, 3]
    assert wire.now == start + 3 * TIMEOUT


def test_sn_over_the_wrapper_is_not_resent() -> None:
    """SN has no invoke-id: over the wrapper a resent Read could be answered twice, so
    a lost answer ends in DlmsTimeout after one attempt, even with retries set."""
    session = _opened("wrapper", "SN")
    wire = session.wire
    wire.drop_to_client = {wire.sent_to_client + 1}
    with pytest.raises(DlmsTimeout, match=r"\(1 attempt of 1000 ms\)"):
        session.read(ENERGY)
    assert not wire.named("retry")


# ---------------------------------------------------------------------- 6. corruption


@pytest.mark.parametrize("direction", ["to_meter", "to_client"])
@pytest.mark.parametrize("referencing", REFERENCINGS)
def test_corrupted_frame_is_dropped_and_resent(direction: str, referencing: str) -> None:
    """One HDLC frame with a bad FCS (the request, or the answer) is dropped by the
    receiving HDLC layer; the resend after the timeout recovers the values."""
    session = _opened("hdlc", referencing)
    wire, meter = session.wire, session.meter
    if direction == "to_meter":
        wire.corrupt_to_meter = {wire.sent_to_meter + 1}
    else:
        wire.corrupt_to_client = {wire.sent_to_client + 1}
    link = meter.link
    assert isinstance(link, HdlcLink)
    dropped = link.dropped
    check(session.read(ENERGY, VOLTAGE), "energy", "voltage")
    assert len(wire.named("retry")) == 1
    if direction == "to_meter":
        assert link.dropped == dropped + 1
    session.close()


# -------------------------------------------------------------------------- 7. blocks


def test_ln_with_list_answer_in_get_blocks() -> None:
    """A meter with a max PDU of 64 octets answers a GET-with-list in GET blocks (the
    reader asks with GET-Request-Next); the values come out right."""
    session = _opened("hdlc", options=ServerOptions(max_pdu=64), max_info=32)
    texts = (SERIAL, req("manufacturer", "0.0.96.1.1.255", 1),
             req("hello", "0.128.128.0.6.255", 1), req("name", "0.0.42.0.0.255", 1),
             req("firmware", "1.0.0.2.0.255", 1))
    results = session.read(*texts)
    assert [results[r.key].value for r in texts] == [
        "12345678", "dlms-sim", "Hello, meter!", "SIM0000012345678", "SIM-FW 1.4.2"]
    reads = session.meter.reads()
    assert any(isinstance(r, GetRequestNext) for r in reads)
    assert session.meter.with_list_requests() == 1
    check(session.read(ENERGY, VOLTAGE), "energy", "voltage")  # object list in blocks too


def test_ln_with_list_longer_than_the_meter_max_pdu_is_split() -> None:
    """Found by scripts/fuzz: seven attributes in one GET-with-list (74 octets) do not
    fit a meter's 64-octet max PDU; the reader halves the list until they do, instead
    of failing every scan with "exceeds the meter's max PDU"."""
    session = _opened("hdlc", options=ServerOptions(max_pdu=64), max_info=32)
    texts = (SERIAL, req("manufacturer", "0.0.96.1.1.255", 1),
             req("hello", "0.128.128.0.6.255", 1), req("name", "0.0.42.0.0.255", 1),
             req("firmware", "1.0.0.2.0.255", 1))
    results = session.read(*texts, ENERGY, VOLTAGE)
    check(results, "serial", "energy", "voltage")
    assert results["firmware"].value == "SIM-FW 1.4.2"
    lists = [r for r in session.meter.reads() if isinstance(r, GetRequestWithList)]
    assert lists and max(len(r.attributes) for r in lists) < 7
    assert sum(len(r.attributes) for r in lists) >= 7 - 1  # at most one read alone


def test_sn_read_answer_in_read_blocks() -> None:
    """SN with a max PDU of 64: the object list and a multi-variable Read come in READ
    blocks (block-number-access); the values come out right."""
    options = ServerOptions(max_pdu=64, referencing=Referencing.SN)
    session = _opened("wrapper", "SN", options=options)
    texts = (SERIAL, req("manufacturer", "0.0.96.1.1.255", 1),
             req("hello", "0.128.128.0.6.255", 1), req("name", "0.0.42.0.0.255", 1),
             req("firmware", "1.0.0.2.0.255", 1))
    results = session.read(*texts, ENERGY, VOLTAGE)
    check(results, "serial", "energy", "voltage")
    assert [results[r.key].value for r in texts] == [
        "12345678", "dlms-sim", "Hello, meter!", "SIM0000012345678", "SIM-FW 1.4.2"]
    reads = [r for r in session.meter.reads() if isinstance(r, ReadRequest)]
    blocks = [isinstance(r.variables[0], BlockNumberAccess) for r in reads]
    assert blocks[0] is False and blocks[1] is True  # the object list
    # a Read of several variables answered in blocks too
    several = [i for i, r in enumerate(reads) if len(r.variables) > 1]
    assert any(blocks[i + 1] for i in several if i + 1 < len(reads))


# -------------------------------------------------------------- 8. stale answers


def test_late_answer_after_the_resend_is_stale() -> None:
    """Wrapper, LN: an answer delayed past the timeout arrives after the resend; the
    reader takes it (its invoke-id is the request's), and the meter's answer to the
    resend, arriving during the next request, is a stale_response naming the old
    invoke-id; every value is right."""
    session = _opened("wrapper")
    wire = session.wire
    wire.delay_to_client = {wire.sent_to_client + 1: 1.5 * TIMEOUT}
    check(session.read(ENERGY, SERIAL), "energy", "serial")
    assert len(wire.named("retry")) == 1
    # the scaler_unit GET, its resend (the same invoke-id), then the values' GET
    scaler, resent, values = session.meter.invoke_ids()
    assert scaler == resent != values
    (stale,) = wire.named("stale_response")
    assert stale.fields["invoke_id"] == scaler
    check(session.read(POWER_FACTOR, TEMPERATURE), "pf", "temp")
    session.close()


def test_stale_answers_do_not_extend_the_deadline() -> None:
    """Wrapper, LN: a meter that keeps sending a stale answer (an old invoke-id) every
    0.35 s and never the right one: the reader sets them aside (noting the first few),
    resends, and still ends in DlmsTimeout exactly (retries + 1) timeouts after the
    request, naming how many it set aside."""
    session = _opened("wrapper")
    wire = session.wire
    check(session.read(SERIAL), "serial")
    old = wire.answers[-1]
    wire.drop_to_client = range(wire.sent_to_client + 1, 1000)
    start = wire.now
    for tick in range(1, 40):
        wire.inject(old, start + 0.35 * tick)
    with pytest.raises(DlmsTimeout,
                       match=r"\(3 attempts of 1000 ms, 8 stale answers set aside\)"):
        session.read(ENERGY)  # 8 stale answers: at 0.35 .. 2.8 s
    assert wire.now == start + 3 * TIMEOUT
    # the first few are noted, then one line says the rest are only counted
    assert len(wire.named("stale_response")) == reader_module.STALE_NOTES
    assert len(wire.named("stale_responses_suppressed")) == 1
    assert len(wire.named("retry")) == 2


def test_replayed_hdlc_frames_are_named_in_the_error() -> None:
    """HDLC, LN: a meter that replays an I frame we already have (its N(S) unchanged,
    as dlms-sim --fault stale-flood does) every 0.35 s and never answers: the link
    sets the replays aside (not delivered twice) and the error says how many, as it
    says the stale answers over the wrapper."""
    session = _opened("hdlc")
    wire = session.wire
    check(session.read(SERIAL), "serial")
    old = wire.answers[-1]  # the last I frame of the meter's, received already
    link = session.reader.link
    assert isinstance(link, HdlcLink)
    before = link.connection.duplicates
    wire.drop_to_client = range(wire.sent_to_client + 1, 1000)
    start = wire.now
    for tick in range(1, 40):
        wire.inject(old, start + 0.35 * tick)
    with pytest.raises(DlmsTimeout) as caught:
        session.read(ENERGY)
    replayed = link.connection.duplicates - before
    assert replayed >= 8
    assert f"(3 attempts of 1000 ms, {replayed} replayed frames set aside)" in str(
        caught.value)
    # (a replay is acknowledged with RR once per attempt, which gives it its time again)
    assert wire.now <= start + 6 * TIMEOUT


FLOOD_CHUNK = b"\x7e\xa0" * 2048  # 4 KiB of false frame starts (dlms-sim flag-flood)


def _flooded(session: Session, chunks: int) -> float:
    """Drop the meter's answers from now on and flood the reader with ``chunks`` of
    FLOOD_CHUNK, one every millisecond; the time it starts."""
    wire = session.wire
    wire.drop_to_client = range(wire.sent_to_client + 1, 10_000)
    start = wire.now
    for k in range(chunks):
        wire.inject(FLOOD_CHUNK, start + 0.001 * (k + 1))
    return start


def test_a_flood_ends_each_attempt_after_max_noise_octets() -> None:
    """HDLC: noise and no frame (7E A0 ..., as dlms-sim --fault flag-flood sends) ends
    an attempt when MAX_NOISE_OCTETS of it came, not at its timeout, and the error
    names the noise; the release under the same flood is as short."""
    session = _opened("hdlc")
    per_attempt = reader_module.MAX_NOISE_OCTETS // (len(FLOOD_CHUNK) // 2) + 1
    start = _flooded(session, 4 * per_attempt)
    with pytest.raises(DlmsTimeout, match=r"\(3 attempts of 1000 ms, \d+ octets of noise "
                       r"\(an attempt ends after 65536\) set aside\)"):
        session.read(ENERGY)
    wire = session.wire
    assert wire.now < start + 3 * per_attempt * 0.001 + 1e-6  # no timeout waited for
    failed = wire.now
    session.close()  # its DISC goes unanswered, under the rest of the flood
    assert wire.now < failed + per_attempt * 0.001 + 1e-6 < (
        failed + reader_module.RELEASE_TIMEOUT_S)
    assert [n.fields["attempt"] for n in wire.named("flooded")] == [1, 2, 3, 1]
    assert "disconnect_unanswered" in [n.event for n in wire.notes]


def test_noise_below_the_bound_waits_for_the_timeout() -> None:
    """Less noise than MAX_NOISE_OCTETS in an attempt: the attempt has its timeout, and
    the answer after the noise is still taken."""
    session = _opened("hdlc")
    wire = session.wire
    start = wire.now
    wire.inject(FLOOD_CHUNK * 8, start + 0.001)  # 16 KiB of noise before the answer
    check(session.read(ENERGY), "energy")
    assert not wire.named("flooded") and not wire.named("retry")
    assert wire.now < start + TIMEOUT


# Known failures (strict: they must keep failing with exactly this error until fixed).


def test_late_aare_over_the_wrapper() -> None:
    """Wrapper, LN: the AARE delayed past the timeout arrives after the resent AARQ, and
    the meter answers the resent one too; the second AARE is stale (the association
    stands) and the next read works."""
    session = Session("wrapper")
    session.wire.delay_to_client = {1: 1.5 * TIMEOUT}
    session.open()
    check(session.read(ENERGY), "energy")
    stale = session.wire.named("stale_response")
    assert len(stale) == 1 and stale[0].fields == {"invoke_id": 0}


def test_late_first_block_over_the_wrapper() -> None:
    """Wrapper, LN: the first GET block of the object list delayed past the timeout
    arrives after the resend; the resent GET restarts the meter's long GET, so block 1
    comes twice: the repeat is stale and the read completes."""
    session = _opened("wrapper")
    wire = session.wire
    wire.delay_to_client = {wire.sent_to_client + 1: 1.5 * TIMEOUT}
    check(session.read(VOLTAGE), "voltage")  # the class comes from the object list
    assert len(wire.named("stale_response")) == 1


# ---------------------------------------------- mode E (a serial line, IEC 62056-21)


def test_mode_e_opening_then_hdlc() -> None:
    """A serial device in mode IEC: the reader opens the line at 300 Bd 7E1 with
    "/?!" CR LF, takes the identification, selects 9600 Bd with the ACK, switches the
    line and then runs HDLC with the simulated serial line (which switched too), back
    to the opening after DISC."""
    doc = {"devices": [serial_device("m", "/dev/ttyS0", HDLC_PHYSICAL, mode="IEC",
                                     logical_address=HDLC_LOGICAL, retry_counter=2)],
           "signals": [signal(device="m")]}
    reader = build_reader(parse_config(doc).devices[0], quirks=MeterQuirks(),
                          counters=FakeCounters)
    identification = iec.IdentificationMessage("SIM", "5", "dlms-sim", "2")  # 9600 Bd
    meter = SerialMeter(HDLC_PHYSICAL, identification)
    wire = Wire(reader, meter)
    reader.open(wire.now, bytes(16))
    wire.run(lambda: reader.state is ReaderState.READY)
    assert wire.line_settings == [SetLine(iec.OPENING_LINE), SetLine((9600, 8, "N", 1))]
    assert meter.line_settings == [SetLine((9600, 8, "N", 1))]
    assert wire.frames_to_meter[:2] == [b"/?!\r\n", b"\x06252\r\n"]  # request, ACK
    (identified,) = wire.named("iec_identified")
    assert identified.fields["baud_rate"] == 9600 and identified.fields["hdlc"]
    reader.submit(ReadAttributes((ENERGY, SERIAL)), wire.now)
    wire.run(lambda: reader.state is ReaderState.READY)
    check({r.key: r for r in reader.result}, "energy", "serial")
    reader.close(wire.now)
    wire.run(lambda: reader.state is ReaderState.CLOSED)
    assert meter.line.in_opening  # DISC: the line is back at 300 Bd, waiting


def test_mode_e_without_enhanced_hdlc_reads_with_a_warning() -> None:
    """gurux's example meter identifies itself as "/GRX5Gurux" CR LF, without the
    enhanced identification \\2 (Gurux/Gurux.DLMS.Net Development/GXDLMSServer.cs with
    the example's FlaID "GRX", 9600 Bd, device address "Gurux"; see
    tests/test_iec62056_21.py).  The reader selects mode E all the same, as gurux's
    client does, warns once, and reads through dlms-sim's serial line."""
    doc = {"devices": [serial_device("m", "/dev/ttyS0", HDLC_PHYSICAL, mode="IEC",
                                     logical_address=HDLC_LOGICAL, retry_counter=2)],
           "signals": [signal(device="m")]}
    reader = build_reader(parse_config(doc).devices[0], quirks=MeterQuirks(),
                          counters=FakeCounters)
    identification = iec.IdentificationMessage("GRX", "5", "Gurux")
    assert identification.to_bytes() == b"/GRX5Gurux\r\n"
    meter = SerialMeter(HDLC_PHYSICAL, identification)
    wire = Wire(reader, meter)
    reader.open(wire.now, bytes(16))
    wire.run(lambda: reader.state is ReaderState.READY)
    assert wire.frames_to_meter[:2] == [b"/?!\r\n", b"\x06252\r\n"]  # request, ACK
    assert meter.line_settings == [SetLine((9600, 8, "N", 1))]
    (identified,) = wire.named("iec_identified")
    assert identified.fields["identification"] == "Gurux" and not identified.fields["hdlc"]
    (warning,) = wire.named("iec_hdlc_not_announced")
    assert warning.level == "warning" and warning.fields["enhanced"] == "none"
    assert "force" not in str(warning.fields)
    reader.submit(ReadAttributes((ENERGY, SERIAL)), wire.now)
    wire.run(lambda: reader.state is ReaderState.READY)
    check({r.key: r for r in reader.result}, "energy", "serial")
    reader.close(wire.now)
    wire.run(lambda: reader.state is ReaderState.CLOSED)


def test_mode_e_with_enhanced_hdlc_does_not_warn() -> None:
    doc = {"devices": [serial_device("m", "/dev/ttyS0", HDLC_PHYSICAL, mode="IEC",
                                     logical_address=HDLC_LOGICAL)],
           "signals": [signal(device="m")]}
    reader = build_reader(parse_config(doc).devices[0], quirks=MeterQuirks(),
                          counters=FakeCounters)
    wire = Wire(reader, SerialMeter(HDLC_PHYSICAL,
                                    iec.IdentificationMessage("SIM", "5", "dlms-sim", "2")))
    reader.open(wire.now, bytes(16))
    wire.run(lambda: reader.state is ReaderState.READY)
    assert wire.named("iec_identified") and not wire.named("iec_hdlc_not_announced")


# ------------------------------------------------------------------------ 9. the clock


@pytest.mark.parametrize("kind", KINDS)
def test_timer_is_now_plus_timeout(kind: str) -> None:
    """get_timer() is exactly now + timeout after each request (the caller's clock,
    whatever its origin), None when nothing is awaited."""
    session = Session(kind, clock=Clock(now=5_000_000.25))
    reader, wire = session.reader, session.wire
    reader.open(wire.now, bytes(16))
    assert reader.get_timer() == 5_000_000.25 + TIMEOUT
    wire.run(lambda: reader.state is ReaderState.READY)
    assert reader.get_timer() is None
    wire.clock.now += 123.5  # time passes between jobs
    reader.submit(ReadAttributes((ENERGY,)), wire.now)
    assert reader.get_timer() == wire.now + TIMEOUT
    wire.delay_to_client = {wire.sent_to_client + 1: 0.25}
    wire.act()
    wire.step()  # the scaler_unit answer, 0.25 s later: the value request goes out
    assert reader.get_timer() == wire.now + TIMEOUT == 5_000_000.25 + 123.5 + 0.25 + TIMEOUT


def test_reader_reads_no_real_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole session with a resend, HLS and ciphering runs with the time module's
    clocks and sleep disabled: only the fake clock moves, and it moves by seconds
    while the test takes far less."""
    keys, security = _gmac("both")
    options = ServerOptions(security=security)
    session = Session("hdlc", options=options, **keys)

    def forbidden(*_args: object) -> float:
        raise AssertionError("the reader looked at the real clock")

    started = time.perf_counter()
    with monkeypatch.context() as patch:
        for name in ("time", "monotonic", "perf_counter", "sleep", "time_ns",
                     "monotonic_ns"):
            patch.setattr(time, name, forbidden)
        session.open()
        session.wire.drop_to_meter = {session.wire.sent_to_meter + 1}
        check(session.read(ENERGY, VOLTAGE, CLOCK), "energy", "voltage", "clock")
        session.close()
    assert session.wire.now - 1000.0 == TIMEOUT
    assert time.perf_counter() - started < TIMEOUT


# ---------------------------------------------------------- 10. release on every path


class RefusingRelease(MemoryMeter):
    """A meter that answers the RLRQ with an ExceptionResponse instead of an RLRE."""

    def _answer(self, apdu: bytes) -> bytes:
        if apdu[:1] == b"\x62":  # RLRQ
            return ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                                     ExceptionServiceError.OPERATION_NOT_POSSIBLE).to_bytes()
        return super()._answer(apdu)


def test_a_refused_release_still_disconnects_the_link() -> None:
    """An RLRQ answered with something else than an RLRE still ends in DISC on HDLC, so
    the meter's link (and its association slot) is not left held."""
    session = Session("hdlc")
    session.meter = RefusingRelease("hdlc", session.meter.options)
    session.wire.meter = session.meter
    session.open()
    session.close()
    assert session.reader.state is ReaderState.CLOSED
    assert session.meter.link_events == ["up", "down"]
    notes = [n.event for n in session.wire.notes]
    assert "release_unanswered" in notes and "disconnect_unanswered" not in notes


def test_a_link_lost_with_the_answer_is_a_transport_error() -> None:
    """The meter answers and, in the same chunk, drops the link (DM): the reader fails
    with the link's loss (not with the next request it could no longer send)."""
    session = Session("hdlc")
    session.open()
    reader = session.reader
    reader.submit(ReadAttributes((ENERGY,)), session.wire.now)
    session.wire.act()  # the GET goes out; its answer is in flight
    answer = session.wire._in_flight.pop(0)[2]
    dm = hdlc_frame.Frame(hdlc_frame.HdlcAddress(16), hdlc_frame.HdlcAddress(
        HDLC_LOGICAL, HDLC_PHYSICAL, 2), hdlc_frame.Control(hdlc_frame.FrameType.DM, True))
    with pytest.raises(TransportError, match=r"HDLC disconnected \(DM\) while waiting"):
        reader.receive_data(answer + dm.to_bytes(), session.wire.now)
    assert reader.state is ReaderState.FAILED


def test_a_failure_drops_what_was_queued_for_the_failed_exchange() -> None:
    """Over the wrapper the answer (a scaler_unit: the value's GET is queued next) and
    a malformed APDU come in one chunk; the malformed one fails the exchange, and the
    queued GET is not sent afterwards (the close releases instead)."""
    session = Session("wrapper")
    session.open()
    reader = session.reader
    reader.submit(ReadAttributes((ENERGY,)), session.wire.now)
    session.wire.act()
    answer = session.wire._in_flight.pop(0)[2]
    garbage = bytes.fromhex("0001 0001 0010 0002 c401")  # a GET response cut short
    with pytest.raises(RemoteProtocolError):
        reader.receive_data(answer + garbage, session.wire.now)
    assert reader.state is ReaderState.FAILED
    actions = reader.actions()
    assert not [a for a in actions if isinstance(a, Send)]
    assert [a.direction for a in actions if isinstance(a, Trace) and a.data is None] == [
        "rx", "tx", "rx"]  # the answer, the GET that was dropped, the bad APDU


@pytest.mark.parametrize("name", ["None", "High", "HighGmac-both"])
def test_only_plain_repeatable_requests_may_be_asked_anew(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader tells the HDLC link which requests the meter may be given again as a
    new frame: plain GETs and the AARQ, not HLS pass 3 (an ACTION) and nothing ciphered
    (its invocation counter would repeat)."""
    seen: list[tuple[int, bool]] = []
    real = hdlc.HdlcClientConnection.send_apdu

    def record(self: hdlc.HdlcClientConnection, apdu: bytes, *, confirmed: bool = True,
               repeatable: bool = True) -> bytes:
        seen.append((apdu[0], repeatable))
        return real(self, apdu, confirmed=confirmed, repeatable=repeatable)

    monkeypatch.setattr(hdlc.HdlcClientConnection, "send_apdu", record)
    keys, security = _security(name, tmp_path)
    session = Session("hdlc", options=ServerOptions(security=security), base=tmp_path, **keys)
    session.open()
    check(session.read(ENERGY), "energy")
    ciphered = name.startswith("HighGmac")
    for tag, repeatable in seen:
        if tag == 0x60:  # AARQ: the InitiateRequest is ciphered inside, the AARQ is not
            assert repeatable is not ciphered
        elif tag in (0xC3, 0xCB):  # reply_to_HLS_authentication
            assert repeatable is False
        else:
            assert repeatable is not ciphered, hex(tag)
    assert any(tag in (0xC3, 0xCB) for tag, _ in seen) is bool(security.hls)
