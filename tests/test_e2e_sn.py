"""End to end with SN referencing: `dlms --once --json` (a real subprocess, device
``"type": "SN"``) against `dlms-sim --referencing SN` (another one), over HDLC and the
wrapper.  The expected published values are test_e2e_sim.py's (the bundled model's);
the short names come from the simulator's own layout of that model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import tcp_device
from test_e2e_sim import EXPECTED, check_values, once, signals_for, simulator

from dlmsd.protocol.obis import Obis
from dlmsd.sim.model import bundled_model_path, load_model

Writer = Callable[..., Path]
LAYOUT = load_model(bundled_model_path()).short_names
CODES = list(EXPECTED)
# A READ of several variables, as the daemon's --dlms trace shows it.
SEVERAL = re.compile(r"READ\.req \[0x[0-9A-F]{4}, ")


def base(obis: str) -> int:
    found = LAYOUT.base_name(Obis.parse(obis))
    assert found is not None, obis
    return found


def sn_device(alias: str, port: int, kind: str) -> dict[str, Any]:
    if kind == "hdlc":
        return tcp_device(alias, port=port, type="SN", address_size=2, logical_address=1,
                          physical_address=1)
    return tcp_device(alias, port=port, type="SN", mode="DLMS-WRAPPER", logical_address=1)


def run(write_config: Writer, kind: str, *sim_args: str,
        signals: list[dict[str, Any]] | None = None) -> tuple[dict[str, Any], str]:
    with simulator(f"--{kind}-port", "0", "--referencing", "SN", *sim_args) as ports:
        path = write_config(devices=[sn_device("s", ports[kind], kind)],
                            signals=signals if signals is not None else signals_for("s", CODES))
        code, doc, log = once(path, "-d7", "--dlms")
    assert code == 0, log
    return doc, log


def test_hdlc_every_value_through_the_object_list(write_config: Writer) -> None:
    doc, log = run(write_config, "hdlc")
    check_values(doc, CODES)
    assert "READ.req [0xFA08]" in log  # the Association SN object_list (vaa-name + 8)
    assert SEVERAL.search(log)  # several variables per READ (multiple-references)
    assert "data-block-result" not in log


def test_wrapper_every_value_through_the_object_list(write_config: Writer) -> None:
    doc, log = run(write_config, "wrapper")
    check_values(doc, CODES)
    assert "READ.req [0xFA08]" in log and SEVERAL.search(log)


def test_signals_by_short_name_and_class_without_the_object_list(write_config: Writer) -> None:
    """``address`` is the short name of the attribute read (base_name + 8 for attribute
    2); the scaler_unit is found next to it (register +8, demand register +0x10)."""
    objects = {"1.0.1.8.0.255": 3, "1.0.32.7.0.255": 3, "1.0.14.7.0.255": 3,
               "1.0.1.6.0.255": 4, "1.0.1.4.0.255": 5, "0.0.1.0.0.255": 8,
               "0.0.96.1.0.255": 1, "0.0.42.0.0.255": 1, "0.128.128.0.14.255": 1,
               "0.128.128.0.23.255": 1}
    signals = [{"signal_name": obis, "device_alias": "s", "signal_alias": f"s_{i}",
                "obis": obis, "address": base(obis) + 8, "class_id": class_id}
               for i, (obis, class_id) in enumerate(objects.items())]
    doc, log = run(write_config, "wrapper", signals=signals)
    check_values(doc, list(objects))
    assert "0xFA08" not in log  # the object list was not read
    assert f"0x{base('1.0.1.4.0.255') + 0x18:04X}" in log  # demand register scaler_unit


def test_no_get_with_list_reads_one_variable_per_request(write_config: Writer) -> None:
    doc, log = run(write_config, "wrapper", "--no-get-with-list")
    check_values(doc, CODES)
    assert "READ.req [0xFA08]" in log
    assert not SEVERAL.search(log)  # the meter did not offer multiple-references
    assert len(re.findall(r"READ\.req \[0x", log)) > len(CODES)  # + each scaler_unit


def test_block_transfer_at_max_pdu_128(write_config: Writer) -> None:
    """Max PDU 128 and max info 32: the object list and the multi-variable answers come
    in data-block-results, each APDU in several HDLC segments."""
    doc, log = run(write_config, "hdlc", "--max-pdu", "128", "--max-info", "32")
    check_values(doc, CODES)
    assert "data-block-result block=2" in log
    assert "READ.req [block-number-access 1]" in log
    assert "seg=1" in log  # segmented I frames
