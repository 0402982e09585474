"""End to end: the meter's invocation counter read through the public client.

`dlms-sim --client-address 1 --auth highgmac` serves the management client (1) ciphered
and, besides it, the public client (16) without authentication; it keeps the last
invocation counter accepted from each client system title for its life (across
associations) and shows the highest in 0.0.43.1.0.255 (Data, attribute 2).

A daemon that lost its counter file (a new state directory) sends counters the meter
already accepted: the meter refuses its AARQ (its glo-initiate-request replays a
counter).  With ``read_invocation_counter`` it first associates as the public client,
reads 0.0.43.1.0.255, and goes on above it: the association succeeds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import tcp_device
from test_e2e_sim import EXPECTED, once, signals_for, simulator

Writer = Callable[..., Path]

CODES = ["1.0.1.8.0.255", "1.0.32.7.0.255"]
TITLES = {"h": "4D4D4D0000000001", "w": "4D4D4D0000000002"}
GREEN_BOOK_EK = "000102030405060708090A0B0C0D0E0F"
GREEN_BOOK_AK = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"


def devices(ports: dict[str, int], referencing: str, **over: Any) -> list[dict[str, Any]]:
    common = {"type": referencing, "logical_address": 1, "timeout_ms": 3000,
              "retry_counter": 1, "client_address": 1, "auth": "HighGmac",
              "block_cipher_key": GREEN_BOOK_EK, "authentication_key": GREEN_BOOK_AK, **over}
    return [
        tcp_device("h", port=ports["hdlc"], address_size=2, physical_address=1,
                   system_title=TITLES["h"], **common),
        tcp_device("w", port=ports["wrapper"], mode="DLMS-WRAPPER",
                   system_title=TITLES["w"], **common),
    ]


def run(write_config: Writer, monkeypatch: pytest.MonkeyPatch, state: Path,
        ports: dict[str, int], referencing: str, **over: Any) -> tuple[int, dict[str, Any], str]:
    monkeypatch.setenv("DLMS_STATE_DIR", str(state))
    path = write_config(devices=devices(ports, referencing, **over),
                        signals=signals_for("h", CODES) + signals_for("w", CODES))
    return once(path, "-d7", "--dlms")


def values(doc: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    return [(s["device_alias"], s["obis"], s["value"], s["status"]) for s in doc["signals"]]


GOOD = [(d, c, EXPECTED[c][0], "ok") for d in ("h", "w") for c in CODES]


@pytest.mark.parametrize("referencing", ["LN", "SN"])
def test_a_lost_counter_is_recovered_through_the_public_client(
        write_config: Writer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        referencing: str) -> None:
    with simulator("--hdlc-port", "0", "--wrapper-port", "0", "--referencing", referencing,
                   "--client-address", "1", "--auth", "highgmac") as ports:
        code, doc, log = run(write_config, monkeypatch, tmp_path / "first", ports,
                             referencing)
        assert code == 0, log[-3000:]
        assert values(doc) == GOOD
        assert "invocation_counter_read" not in log  # not asked for

        # the counter files are lost: the counters start again from 1, which the meter
        # accepted already
        code, doc, log = run(write_config, monkeypatch, tmp_path / "lost", ports,
                             referencing)
        assert code == 1, log[-3000:]
        for device in doc["devices"]:
            assert device["status"] == "offline"
            assert "association rejected" in device["error"], device["error"]

        # with read_invocation_counter: the public client reads 0.0.43.1.0.255 first
        code, doc, log = run(write_config, monkeypatch, tmp_path / "lost-too", ports,
                             referencing, read_invocation_counter=True)
        assert code == 0, log[-3000:]
        assert values(doc) == GOOD
        read = re.findall(r"invocation_counter_read.*?meter_value=(\d+).*?next_counter=(\d+)",
                          log)
        assert len(read) == 2, log[-3000:]  # one per device
        for meter_value, next_counter in read:
            assert int(meter_value) > 1 and int(next_counter) == int(meter_value) + 1
        # the public client's association: client address 16 (HDLC: SNRM from 16; the
        # wrapper: source wPort 16), no authentication, a GET (LN) or READ (SN) of the
        # object, released and disconnected before the management client's SNRM
        assert re.search(r"SNRM\(P\) .*src=16", log), "no SNRM from client 16"
        assert re.search(r"WRAPPER v1 0x0010->0x0001", log), "no wrapper frame from client 16"
        public_aarq = re.findall(r"summary='AARQ (LN|SN) InitiateRequest", log)
        assert len(public_aarq) == 2, log[-3000:]  # plain, no mechanism: one per device
        if referencing == "LN":
            assert log.count("GET.req normal id=1 1/0.0.43.1.0.255/2") == 2
        for device in ("h", "w"):
            lines = [line for line in log.splitlines() if f"device={device}" in line]
            order = [next(i for i, line in enumerate(lines) if key in line)
                     for key in ("client=16", "released client=16", "invocation_counter_read",
                                 "mechanism=high-gmac")]
            assert order == sorted(order), device


def test_the_counter_read_fails_clearly_when_the_object_is_missing(
        write_config: Writer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with simulator("--hdlc-port", "0", "--wrapper-port", "0", "--client-address", "1",
                   "--auth", "highgmac") as ports:
        code, doc, log = run(write_config, monkeypatch, tmp_path / "state", ports, "LN",
                             read_invocation_counter=True,
                             invocation_counter_obis="0.0.43.1.7.255")
    assert code == 1, log[-3000:]
    for device in doc["devices"]:
        assert device["status"] == "offline"
        assert device["error"].startswith(
            "reading the invocation counter 0.0.43.1.7.255 through the public client 16: "
            "0.0.43.1.7.255:2: "), device["error"]


def test_state_dir_comes_from_the_configuration_unless_the_environment_overrides_it(
        write_config: Writer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``state_dir`` in the configuration holds the counters; DLMS_STATE_DIR wins."""
    with simulator("--hdlc-port", "0", "--wrapper-port", "0", "--client-address", "1",
                   "--auth", "highgmac") as ports:
        monkeypatch.delenv("DLMS_STATE_DIR", raising=False)
        configured, overridden = tmp_path / "configured", tmp_path / "overridden"
        path = write_config({"state_dir": str(configured), "devices": devices(ports, "LN"),
                             "signals": signals_for("h", CODES) + signals_for("w", CODES)})
        code, doc, log = once(path)
        assert code == 0, log[-3000:]
        assert values(doc) == GOOD
        files = sorted(p.name for p in (configured / "counters").glob("ic-*.json"))
        assert files == ["ic-h.json", "ic-w.json"]
        before = {p.name: p.read_bytes() for p in (configured / "counters").glob("ic-*")}

        monkeypatch.setenv("DLMS_STATE_DIR", str(overridden))
        code, doc, log = once(path)
        # a new state directory: the counters start again and the meter refuses them
        assert code == 1 and "association rejected" in doc["devices"][0]["error"]
        assert (overridden / "counters" / "ic-h.json").exists()
        assert {p.name: p.read_bytes()
                for p in (configured / "counters").glob("ic-*")} == before


# --------------------------------------------------------------- meters that change

OTHER_EK = "A1A2A3A4A5A6A7A8A9AAABACADAEAFB0"
OTHER_AK = "C1C2C3C4C5C6C7C8C9CACBCCCDCECFD0"


def swap(write_config: Writer, monkeypatch: pytest.MonkeyPatch, state: Path, title: str,
         counter: int, ek: str = GREEN_BOOK_EK,
         ak: str = GREEN_BOOK_AK) -> tuple[int, dict[str, Any], str]:
    """One --once run of the daemon (state directory ``state``) against a dlms-sim over
    the wrapper with system title ``title``, its invocation counter starting at
    ``counter``, and the keys ``ek``/``ak`` (the daemon configured with the same)."""
    with simulator("--wrapper-port", "0", "--client-address", "1", "--auth", "highgmac",
                   "--system-title", title, "--invocation-counter", str(counter),
                   "--block-cipher-key", ek, "--authentication-key", ak) as ports:
        monkeypatch.setenv("DLMS_STATE_DIR", str(state))
        device = tcp_device("w", port=ports["wrapper"], mode="DLMS-WRAPPER", type="LN",
                            logical_address=1, timeout_ms=3000, retry_counter=1,
                            client_address=1, auth="HighGmac", system_title=TITLES["w"],
                            block_cipher_key=ek, authentication_key=ak)
        path = write_config(devices=[device], signals=signals_for("w", CODES))
        return once(path, "-d7")


def test_a_swapped_meter_is_read_at_once_a_replay_is_refused_new_keys_start_afresh(
        write_config: Writer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The device's meter is replaced by one with another system title whose counter is
    back at 1: read at once, with a notice naming the device and the new title.  The
    same meter starting again at 1 (a replay of what it sent) is refused.  Given new
    keys (meter and configuration), it starts afresh again.  No key is on disk."""
    state = tmp_path / "state"
    good = [("w", c, EXPECTED[c][0], "ok") for c in CODES]
    first, second = "4D4D4D00000000A1", "4D4D4D00000000B2"

    code, doc, log = swap(write_config, monkeypatch, state, first, 1000)
    assert code == 0, log[-3000:]
    assert values(doc) == good

    code, doc, log = swap(write_config, monkeypatch, state, second, 1)
    assert code == 0, log[-3000:]  # before: "not above the last accepted", offline
    assert values(doc) == good
    fresh = [line for line in log.splitlines() if "invocation_counter_new_sequence" in line]
    assert len(fresh) == 1, log[-3000:]
    assert "device=w" in fresh[0] and f"system_title={second}" in fresh[0]
    assert "a new meter system title" in fresh[0]

    code, doc, log = swap(write_config, monkeypatch, state, second, 1)  # a replay
    assert code == 1, log[-3000:]
    error = doc["devices"][0]["error"]
    assert "replayed or stale" in error and f"system title {second}" in error, error
    assert "invocation_counter_new_sequence" not in log

    code, doc, log = swap(write_config, monkeypatch, state, second, 1, OTHER_EK, OTHER_AK)
    assert code == 0, log[-3000:]
    assert values(doc) == good
    assert re.search(rf"invocation_counter_new_sequence.*reason='?new keys for this meter"
                     rf".*system_title={second}|system_title={second}.*new keys", log), \
        log[-3000:]

    text = (state / "counters" / "ic-w.json").read_text(encoding="utf-8")
    saved = json.loads(text)
    assert saved["format"] == "dlmsd-invocation-counters/2"
    assert [m["system_title"] for m in saved["meters"]] == [first, second, second]
    for key in (GREEN_BOOK_EK, GREEN_BOOK_AK, OTHER_EK, OTHER_AK):
        assert key.lower() not in text.lower()
