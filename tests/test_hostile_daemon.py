"""The daemon against the hostile simulated meters of ``dlms-sim --fault`` where the
shared end-to-end table (tests/test_sim_fault.py) does not reach: SN referencing over
HDLC as well as the wrapper, and what the device error says and how soon it comes.
A real ``dlms --once`` subprocess against a real simulator, as there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_sim_fault import KINDS, Writer, _run


def _sn_run(tmp_path: Path, write_config: Writer, spec: str, *, timeout_ms: int,
            retries: int) -> tuple[dict[str, dict[str, Any]], float]:
    """One SN simulator with ``--fault spec`` on both TCP links, one ``dlms --once``
    reading it through both: the device documents by alias, and how long it took."""
    code, doc, err, sim_log, elapsed = _run(
        tmp_path, write_config, spec, timeout_ms=timeout_ms, retries=retries,
        sim_args=("--referencing", "SN"), type="SN")
    assert code == 1, err
    assert "Traceback" not in err
    for kind in KINDS:
        assert f"fault={spec}" in sim_log and f"link={kind}" in sim_log
    return {d["device_alias"]: d for d in doc["devices"]}, elapsed


def test_sn_null_bomb_is_refused_at_the_first_block(tmp_path: Path,
                                                    write_config: Writer) -> None:
    # Before: SN read 1034 blocks (12 s over HDLC, 2 s on the wrapper) until "long read
    # exceeds 1048576 bytes at block 1034"; LN refused at block 1 from the array count.
    devices, elapsed = _sn_run(tmp_path, write_config, "null-bomb", timeout_ms=500,
                               retries=3)
    for kind in KINDS:
        error = devices[kind]["error"]
        assert devices[kind]["status"] == "offline"
        assert "long read of array of 1048576 values exceeds the limit" in error, error
        assert "at block 1" in error and "at block 10" not in error, error
    assert elapsed < 8  # the start of two processes, two associations, one block each


@pytest.mark.parametrize("spec", ["huge-length", "stall-mid-block", "slow-loris"])
def test_sn_hostile_meter_over_hdlc_and_wrapper_is_bounded(
        tmp_path: Path, write_config: Writer, spec: str) -> None:
    timeout_ms, retries = 400, 1
    devices, elapsed = _sn_run(tmp_path, write_config, spec, timeout_ms=timeout_ms,
                               retries=retries)
    for kind in KINDS:
        assert devices[kind]["status"] == "offline" and devices[kind]["error"]
    assert elapsed < timeout_ms / 1000 * (retries + 1) * 3 + 5
