"""Self-check of the gurux_dlms interop harness: gurux client <-> gurux meter.

These prove tests/interop/gurux_client.py and gurux_meter.py against each other before
either is pointed at dlmsd's own client or simulator.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .gurux_client import GuruxClientError, GuruxSession, read_objects, read_register
from .gurux_meter import GuruxMeter

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
HLS_SECRET = b"0123456789ABCDEF"
LLS_PASSWORD = b"12345678"

# What the default gurux meter holds, spelled out literally (class, obis, attr) -> value.
EXPECTED = {
    (3, "1.0.1.8.0.255", 2): (12345678, 6),       # double-long-unsigned
    (3, "1.0.1.8.0.255", 3): ([0, 30], 2),        # scaler 0, Wh
    (3, "1.0.2.8.0.255", 2): (4321, 6),
    (3, "1.0.2.8.0.255", 3): ([3, 30], 2),        # scaler +3, Wh
    (3, "1.0.32.7.0.255", 2): (2301, 18),         # long-unsigned
    (3, "1.0.32.7.0.255", 3): ([-1, 35], 2),      # scaler -1, V
    (3, "1.0.31.7.0.255", 2): (5123, 5),          # double-long
    (3, "1.0.31.7.0.255", 3): ([-3, 33], 2),      # scaler -3, A
    (3, "1.0.14.7.0.255", 2): (50.0, 23),         # float32
    (3, "1.0.14.7.0.255", 3): ([0, 44], 2),       # Hz
    (1, "0.0.96.1.0.255", 2): ("GRX-12345678", 10),       # visible-string
    (1, "0.0.42.0.0.255", 2): (b"GRX0000012345678", 9),   # octet-string
    (8, "0.0.1.0.0.255", 2): (bytes.fromhex("07e80506ff070809000000" "00"), 9),
}
EXPECTED_OBJECT_LIST = [
    (3, 0, "1.0.1.8.0.255"),
    (3, 0, "1.0.2.8.0.255"),
    (3, 0, "1.0.32.7.0.255"),
    (3, 0, "1.0.31.7.0.255"),
    (3, 0, "1.0.14.7.0.255"),
    (1, 0, "0.0.96.1.0.255"),
    (1, 0, "0.0.42.0.0.255"),
    (8, 0, "0.0.1.0.0.255"),
    (15, 2, "0.0.40.0.0.255"),
]
ENERGY = (3, "1.0.1.8.0.255", 2)


def client_kwargs(interface: str, **over: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {"interface": interface, "timeout": 2.0}
    if interface == "hdlc":
        kw.update(server_logical=1, server_physical=17, address_size=2)
    kw.update(over)
    return kw


def first_apdu_byte(frame: bytes, interface: str) -> int | None:
    """First APDU byte of a wrapper frame or of an unsegmented HDLC I-frame."""
    if interface == "wrapper":
        return frame[8] if len(frame) > 8 else None
    llc = frame.find(b"\xe6\xe6\x00")
    return frame[llc + 3] if llc >= 0 and len(frame) > llc + 3 else None


def meter_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("gurux-meter")]


@pytest.fixture(autouse=True)
def no_leftover_meter_threads() -> Iterator[None]:
    yield
    assert meter_threads() == []


@pytest.fixture(params=["hdlc", "wrapper"])
def interface(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def meter(interface: str) -> Iterator[GuruxMeter]:
    with GuruxMeter(interface, trace=True) as m:
        yield m
    assert m.errors == []


# --------------------------------------------------------------------------- reads
@pytest.mark.parametrize("auth", ["none", "low"])
def test_reads_every_object_exactly(meter: GuruxMeter, interface: str, auth: str) -> None:
    password = LLS_PASSWORD if auth == "low" else None
    objects = [*EXPECTED, (15, "0.0.40.0.0.255", 2)]
    results = read_objects(meter.host, meter.port, objects=objects,
                           **client_kwargs(interface, authentication=auth, password=password))

    by_key = {(r.class_id, r.obis, r.attribute): r for r in results}
    for key, (value, dlms_type) in EXPECTED.items():
        r = by_key[key]
        assert r.error is None, key
        assert (r.value, r.dlms_type) == (value, dlms_type), key
        assert type(r.value) is type(value), key
    su = by_key[(3, "1.0.32.7.0.255", 3)]
    assert (su.scaler, su.unit) == (-1, 35)
    clock = by_key[(8, "0.0.1.0.0.255", 2)]
    assert clock.decoded == dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    olist = by_key[(15, "0.0.40.0.0.255", 2)]
    assert olist.dlms_type == 1  # array
    assert [(o["class_id"], o["version"], o["obis"]) for o in olist.decoded] == \
        EXPECTED_OBJECT_LIST
    register = olist.decoded[0]
    assert register["attribute_access"] == [(1, 1), (2, 1), (3, 1)]  # read-only
    meter.wait_idle()
    assert meter.events == ["connect", "associated", "released", "disconnect"]


def test_read_register_helper(meter: GuruxMeter, interface: str) -> None:
    got = read_register(meter.host, meter.port, "1.0.31.7.0.255", **client_kwargs(interface))
    assert got == {"value": 5123, "scaler": -3, "unit": 33, "scaled": pytest.approx(5.123)}


def test_undefined_object_is_a_per_object_error(meter: GuruxMeter, interface: str) -> None:
    missing, energy = read_objects(meter.host, meter.port,
                                   objects=[(3, "1.0.99.99.0.255", 2), ENERGY],
                                   **client_kwargs(interface))
    assert (missing.error, missing.value) == (4, None)  # object-undefined
    assert energy.value == 12345678


# --------------------------------------------------------------------------- HLS
@pytest.mark.parametrize("auth", ["high", "md5", "sha1", "sha256", "gmac"])
def test_hls(meter: GuruxMeter, interface: str, auth: str) -> None:
    (r,) = read_objects(meter.host, meter.port, objects=[ENERGY],
                        **client_kwargs(interface, authentication=auth, password=HLS_SECRET))
    assert r.value == 12345678
    meter.wait_idle()
    assert meter.events == ["connect", "associated", "released", "disconnect"]


@pytest.mark.parametrize(("auth", "password"), [("low", b"wrong"),
                                                ("md5", b"0123456789ABCDEX"),
                                                ("gmac", None)])
def test_bad_credentials_are_rejected(interface: str, auth: str,
                                      password: bytes | None) -> None:
    keys = {"authentication_key": bytes(16)} if auth == "gmac" else {}
    with GuruxMeter(interface) as m, pytest.raises(GuruxClientError):
        read_objects(m.host, m.port, objects=[ENERGY],
                     **client_kwargs(interface, authentication=auth, password=password,
                                     **keys))
    m.wait_idle()
    assert "associated" not in m.events


def test_meter_refuses_mechanisms_it_does_not_offer(interface: str) -> None:
    with GuruxMeter(interface, authentications={"none"}) as m:
        with pytest.raises(GuruxClientError, match="rejected"):
            read_objects(m.host, m.port, objects=[ENERGY],
                         **client_kwargs(interface, authentication="low",
                                         password=LLS_PASSWORD))
        (r,) = read_objects(m.host, m.port, objects=[ENERGY], **client_kwargs(interface))
    assert r.value == 12345678


# --------------------------------------------------------------------------- ciphering
@pytest.mark.parametrize(("security", "auth", "general"), [
    ("auth", "none", True),
    ("enc", "none", True),
    ("authenc", "none", True),   # general-glo-ciphering (0xDB)
    ("authenc", "none", False),  # glo-get-request (0xC8)
    ("authenc", "gmac", True),   # HLS via glo-action-request (0xCB)
])
def test_ciphered(meter: GuruxMeter, interface: str, security: str, auth: str,
                  general: bool) -> None:
    results = read_objects(
        meter.host, meter.port, objects=[ENERGY, (15, "0.0.40.0.0.255", 2)],
        **client_kwargs(interface, security=security, authentication=auth,
                        general_protection=general, invocation_counter=10))
    assert results[0].value == 12345678
    assert len(results[1].value) == len(EXPECTED_OBJECT_LIST)
    # What really went over the wire: requests after the AARQ are ciphered APDUs.
    tags = {first_apdu_byte(f, interface) for d, f in meter.frames if d == "rx"}
    assert 0xC0 not in tags  # no plain GET-Request
    assert (0xDB if general else 0xC8) in tags  # general-glo-ciphering / glo-get-request
    if auth == "gmac":
        assert 0xCB in tags  # reply_to_HLS_authentication as glo-action-request


# --------------------------------------------------------------------------- framing
def test_hdlc_segmentation_and_block_transfer() -> None:
    with GuruxMeter("hdlc", max_info=32, trace=True) as m:
        s = GuruxSession(m.host, m.port, **client_kwargs("hdlc", max_info=64, max_pdu=64,
                                                         trace=True))
        with s:
            assert (s.client.hdlcSettings.maxInfoTX, s.client.hdlcSettings.maxInfoRX) == \
                (32, 32)
            r = s.read(15, "0.0.40.0.0.255", 2)
            su = s.read(3, "1.0.2.8.0.255", 3)
    assert [o["obis"] for o in r.decoded] == [o[2] for o in EXPECTED_OBJECT_LIST]
    assert su.decoded == (3, 30)
    tx = [f for d, f in m.frames if d == "tx"]
    assert max(len(f) for f in tx) <= 32 + 9  # info field + HDLC overhead (2-byte address)
    assert any(f[1] & 0x08 for f in tx), "no segmented HDLC frame (S bit) sent"
    # GET-Request-Next (C0 02) was used, i.e. block transfer happened on top.
    assert any(b"\xc0\x02" in f for d, f in m.frames if d == "rx")
    assert m.errors == []


def test_meter_max_pdu_is_negotiated_down() -> None:
    with GuruxMeter("wrapper", max_pdu=100, trace=True) as m:
        s = GuruxSession(m.host, m.port, **client_kwargs("wrapper", trace=True))
        with s:
            assert s.client.maxReceivePDUSize == 100  # from the AARE
            r = s.read(15, "0.0.40.0.0.255", 2)
    assert len(r.decoded) == len(EXPECTED_OBJECT_LIST)
    responses = [f for d, f in m.frames if d == "tx"]
    assert max(len(f) - 8 for f in responses) <= 100  # no APDU above the negotiated size
    assert m.errors == []


def test_wrapper_block_transfer() -> None:
    with GuruxMeter("wrapper", trace=True) as m:
        (r,) = read_objects(m.host, m.port, objects=[(15, "0.0.40.0.0.255", 2)],
                            **client_kwargs("wrapper", max_pdu=64))
    assert len(r.decoded) == len(EXPECTED_OBJECT_LIST)
    assert sum(b"\xc0\x02" in f for d, f in m.frames if d == "rx") >= 3
    assert m.errors == []


# --------------------------------------------------------------------------- addressing
@pytest.mark.parametrize(("meter_kw", "first_frame_addr"), [
    ({"server_logical": 1, "server_physical": None, "address_size": 1}, "03"),
    ({"server_logical": 1, "server_physical": 17, "address_size": 2}, "0223"),
    ({"server_logical": 1, "server_physical": 17, "address_size": 4}, "00020023"),
    ({"server_logical": 5, "server_physical": 0x1234, "address_size": 4}, "000a4869"),
    ({"serial_number": 12345678}, "0002682d"),  # physical 6678, logical 1
])
def test_hdlc_server_addressing(meter_kw: dict[str, Any],
                                first_frame_addr: str) -> None:
    with GuruxMeter("hdlc", **meter_kw) as m:
        s = GuruxSession(m.host, m.port, interface="hdlc", timeout=2.0, trace=True,
                         **meter_kw)
        with s:
            assert s.read(*ENERGY).value == 12345678
    snrm = s.frames[0][1]
    assert snrm[3:3 + len(first_frame_addr) // 2].hex() == first_frame_addr
    assert m.errors == []


@pytest.mark.parametrize("interface", ["hdlc", "wrapper"])
def test_wrong_server_address_gets_no_answer(interface: str) -> None:
    wrong = ({"server_physical": 18} if interface == "hdlc"
             else {"wrapper_server_address": 5})
    with GuruxMeter(interface) as m:
        t0 = time.monotonic()
        with pytest.raises(GuruxClientError, match="timeout"):
            read_objects(m.host, m.port, objects=[ENERGY],
                         **client_kwargs(interface, timeout=0.3, **wrong))
        assert time.monotonic() - t0 < 1.5


# --------------------------------------------------------------------------- lifecycle
def test_meter_stops_cleanly_with_a_client_still_connected() -> None:
    m = GuruxMeter("hdlc").start()
    port = m.port
    idle = socket.create_connection((m.host, port), timeout=1)
    try:
        deadline = time.monotonic() + 2
        while m.events.count("connect") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()
        m.stop()
        assert time.monotonic() - t0 < 1.0
        assert idle.recv(10) == b""  # the meter closed its side
    finally:
        idle.close()
    with pytest.raises(OSError):
        socket.create_connection((m.host, port), timeout=0.5).close()


def test_subprocess_entry_points() -> None:
    """gurux_meter runs as a script, gurux_client as `python -m tests.interop...`."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    meter = subprocess.Popen(
        [sys.executable, str(REPO / "tests/interop/gurux_meter.py"), "--interface", "wrapper"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO, env=env)
    try:
        assert meter.stdout is not None
        line = meter.stdout.readline()
        assert line.startswith("PORT "), line
        port = int(line.split()[1])
        out = subprocess.run(
            [sys.executable, "-m", "tests.interop.gurux_client", "--port", str(port),
             "--interface", "wrapper", "--authentication", "low", "--password", "12345678",
             "--object", "3:1.0.1.8.0.255:2", "--object", "3:1.0.32.7.0.255:3",
             "--object", "1:0.0.42.0.0.255:2"],
            capture_output=True, text=True, cwd=REPO, env=env, timeout=20, check=False)
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)
        assert [g["value"] for g in got] == [12345678, [-1, 35],
                                             {"hex": b"GRX0000012345678".hex()}]
        assert (got[1]["scaler"], got[1]["unit"]) == (-1, 35)
    finally:
        meter.terminate()
        code = meter.wait(timeout=5)
        if meter.stdout is not None:
            meter.stdout.close()
        assert code == 0
