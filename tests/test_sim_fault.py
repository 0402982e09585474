"""``dlms-sim --fault``: the pure plan (dlmsd/sim/fault.py), and the daemon end to end
(``dlms --once``, a real subprocess) against a simulator that misbehaves on TCP (HDLC
and wrapper) and on a pty: a noisy line is read through, every hostile meter ends in a
clear device error within a bounded time, and both processes end normally."""

from __future__ import annotations

import ast
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import serial_device, tcp_device
from test_e2e_sim import EXPECTED, check_values, once, signals_for, sim_process

from dlmsd.errors import ConfigError
from dlmsd.protocol.hdlc_frame import NEED_DATA, HdlcDeframer
from dlmsd.protocol.xdlms import GetResponseWithDatablock
from dlmsd.sim import fault
from dlmsd.sim.fault import (
    Close,
    Fault,
    FaultPlan,
    Flood,
    Hold,
    Kind,
    Silence,
    Trickle,
    Write,
    check_faults,
    parse_fault,
    split_frames,
)

Writer = Callable[..., Path]
CODES = ["1.0.1.8.0.255", "1.0.32.7.0.255", "0.0.96.1.1.255"]

HDLC_A = bytes.fromhex("7EA0080203219386677E")  # SNRM to 1/1 from 16 (dlmsd's HDLC layer)
WRAPPER_A = bytes.fromhex("0001001000010003C40141")  # a wrapper frame, 3-octet APDU


# ====================================================================== pure plan
def test_fault_module_is_pure() -> None:
    tree = ast.parse(Path(fault.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert not imported & {"asyncio", "socket", "serial", "time", "threading"}


@pytest.mark.parametrize(("spec", "parsed"), [
    ("drop-request:3", Fault(Kind.DROP_REQUEST, every=3)),
    ("drop-reply:1", Fault(Kind.DROP_REPLY, every=1)),
    ("CORRUPT:7", Fault(Kind.CORRUPT, every=7)),
    ("delay:250", Fault(Kind.DELAY, every=1, ms=250)),
    ("delay:250:4", Fault(Kind.DELAY, every=4, ms=250)),
    ("disconnect:9", Fault(Kind.DISCONNECT, every=9)),
    ("slow-loris", Fault(Kind.SLOW_LORIS, ms=500)),
    ("slow-loris:20", Fault(Kind.SLOW_LORIS, ms=20)),
    *((kind.value, Fault(kind)) for kind in sorted(fault.HOSTILE, key=lambda k: k.value)
      if kind is not Kind.SLOW_LORIS),
])
def test_parse_fault(spec: str, parsed: Fault) -> None:
    assert parse_fault(spec) == parsed
    assert parse_fault(str(parsed)) == parsed


@pytest.mark.parametrize(("spec", "message"), [
    ("drop", "unknown fault 'drop'"),
    ("drop-reply", "write drop-reply:N"),
    ("drop-reply:0", "N must be a whole number >= 1, not '0'"),
    ("corrupt:x", "not 'x'"),
    ("delay:1:2:3", "delay:MS or delay:MS:N"),
    ("garbage:3", "garbage takes no argument"),
    ("slow-loris:0", "MS must be a whole number >= 1"),
])
def test_parse_fault_errors_name_the_spec(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_fault(spec)
    assert f"--fault {spec!r}" in str(info.value) and message in str(info.value)


def test_check_faults() -> None:
    check_faults((parse_fault("drop-reply:3"), parse_fault("corrupt:5"),
                  parse_fault("garbage")))
    with pytest.raises(ConfigError, match="one hostile meter at a time"):
        check_faults((parse_fault("garbage"), parse_fault("flag-flood")))
    with pytest.raises(ConfigError, match="corrupt given twice"):
        check_faults((parse_fault("corrupt:3"), parse_fault("corrupt:4")))
    with pytest.raises(ConfigError, match="stale-flood: not on a serial line"):
        check_faults((parse_fault("stale-flood"),), serial=True)


@pytest.mark.parametrize(("kind", "frame"), [("hdlc", HDLC_A), ("wrapper", WRAPPER_A)])
def test_split_frames_whole_bytewise_and_trailing(kind: str, frame: bytes) -> None:
    buffer = bytearray(frame * 3 + frame[:4])
    assert split_frames(kind, buffer) == [frame] * 3
    assert bytes(buffer) == frame[:4]
    buffer.clear()
    got: list[bytes] = []
    for octet in frame * 2:
        buffer.append(octet)
        got += split_frames(kind, buffer)
    assert got == [frame, frame] and not buffer


def test_split_hdlc_hands_on_noise_between_frames() -> None:
    buffer = bytearray(b"\x01\x02" + HDLC_A + b"\x7e" + HDLC_A)
    assert split_frames("hdlc", buffer) == [b"\x01\x02", HDLC_A, b"\x7e", HDLC_A]


def test_drop_request_drops_every_nth_frame_of_the_client() -> None:
    plan = FaultPlan((parse_fault("drop-request:2"),), "hdlc")
    seen = b"".join(plan.incoming(bytes([octet])) for octet in HDLC_A * 5)
    assert seen == HDLC_A * 3 and plan.dropped_requests() == 2


def _writes(actions: list[Any]) -> list[bytes]:
    return [a.data for a in actions if isinstance(a, Write)]


def test_drop_reply_corrupt_delay_disconnect_per_frame() -> None:
    plan = FaultPlan(tuple(map(parse_fault, ("drop-reply:3", "corrupt:2", "delay:40:4",
                                             "disconnect:6"))), "hdlc")
    sent: list[Any] = []
    for _ in range(7):
        sent += plan.outgoing(HDLC_A)
    writes = _writes(sent)
    # 1 kept, 2 corrupt, 3 dropped (b""), 4 corrupt after a hold, 5 kept, 6 dropped, close
    assert writes[0] == HDLC_A and writes[2] == b"" and writes[5] == b""
    assert writes[1] != HDLC_A and writes[3] != HDLC_A and writes[4] == HDLC_A
    holds = [a for a in sent if isinstance(a, Hold)]
    assert [h.seconds for h in holds] == [0.04]
    assert isinstance(sent[-1], Close) and plan.outgoing(HDLC_A) == []
    # a corrupted HDLC frame has a bad FCS: the client's deframer drops it
    deframer = HdlcDeframer()
    deframer.receive_data(writes[1])
    assert deframer.next_frame() is NEED_DATA and deframer.crc_errors == 1


def test_wrapper_corruption_spoils_the_invoke_id() -> None:
    spoilt = fault.corrupt_frame("wrapper", WRAPPER_A)
    assert spoilt[:10] == WRAPPER_A[:10] and spoilt[10] == WRAPPER_A[10] ^ 1


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
def test_garbage_is_no_frame(kind: str) -> None:
    plan = FaultPlan((parse_fault("garbage"),), kind, random.Random(1))
    for _ in range(50):
        (write,) = plan.outgoing(HDLC_A if kind == "hdlc" else WRAPPER_A)
        assert isinstance(write, Write) and write.data
        if kind == "hdlc":
            assert 0x7E not in write.data
        else:
            assert write.data[:2] != b"\x00\x01"


AARE = b"\x61\x03\xa1\x01\x00"  # only its tag matters to the plan
GET = bytes.fromhex("C001C1000301000108 00FF0200".replace(" ", ""))
ANSWER = bytes.fromhex("C401C100060012D680")


def _associated(spec: str, kind: str = "wrapper") -> FaultPlan:
    plan = FaultPlan((parse_fault(spec),), kind)
    assert plan.on_apdu(b"\x60", AARE, 1024) == AARE
    return plan


def test_stale_flood_answers_with_an_old_invoke_id_forever() -> None:
    plan = _associated("stale-flood")
    assert plan.outgoing(AARE) == [Write(AARE)]
    stale = plan.on_apdu(GET, ANSWER, 1024)
    assert stale[2] == 0xC0 and stale[:2] + stale[3:] == ANSWER[:2] + ANSWER[3:]
    (flood,) = plan.outgoing(b"FRAME")
    assert isinstance(flood, Flood) and flood.unit == b"FRAME"
    assert 0.005 <= flood.interval[0] <= flood.interval[1] <= 0.010
    assert plan.outgoing(b"more") == []  # the flood is the only answer from now on


def test_huge_length_claims_four_gib() -> None:
    plan = _associated("huge-length", "hdlc")
    answer = plan.on_apdu(GET, ANSWER, 1024)
    assert answer.startswith(bytes.fromhex("C401C100 09 84FFFFFFFF".replace(" ", "")))
    wrapper = _associated("huge-length")
    frame = bytes.fromhex("00010001001000") + bytes([len(ANSWER)]) + ANSWER
    (write,) = wrapper.outgoing(frame)
    assert isinstance(write, Write) and write.data[6:8] == b"\xff\xff"


def test_null_bomb_blocks() -> None:
    plan = _associated("null-bomb")
    first = GetResponseWithDatablock.from_bytes(plan.on_apdu(GET, ANSWER, 256))
    assert not first.last_block and first.block_number == 1
    assert isinstance(first.raw_data, bytes)
    assert first.raw_data.startswith(b"\x01\x84\x00\x10\x00\x00")  # array of 1048576
    assert set(first.raw_data[6:]) == {0}
    size, blocks = len(first.raw_data), 1
    while True:
        nxt = bytes.fromhex("C002C1") + blocks.to_bytes(4, "big")
        block = GetResponseWithDatablock.from_bytes(plan.on_apdu(nxt, ANSWER, 256))
        blocks += 1
        assert block.block_number == blocks and isinstance(block.raw_data, bytes)
        size += len(block.raw_data)
        if block.last_block:
            break
    assert size >= fault.NULL_BOMB_SIZE and len(plan.on_apdu(nxt, ANSWER, 256)) <= 256


def test_stall_mid_block_sends_the_first_block_only() -> None:
    plan = _associated("stall-mid-block", "hdlc")
    block = bytes.fromhex("C402C100000000010081")
    assert plan.on_apdu(GET, block, 128) == block
    (write,) = plan.outgoing(HDLC_A + HDLC_A)
    assert isinstance(write, Write) and write.data == HDLC_A
    assert plan.outgoing(HDLC_A) == []


def test_stall_mid_block_stalls_a_segmented_hdlc_answer_after_its_first_segment() -> None:
    """An answer short enough for one GET response but longer than max_info goes out
    in HDLC segments (frame format 0xA8: the S bit): the first one only, then nothing."""
    plan = _associated("stall-mid-block", "hdlc")
    segment = bytes([0x7E, 0xA8]) + HDLC_A[2:]
    assert plan.on_apdu(GET, ANSWER, 128) == ANSWER  # not a block answer
    (write,) = plan.outgoing(segment + HDLC_A)
    assert isinstance(write, Write) and write.data == segment
    assert plan.outgoing(HDLC_A) == []
    whole = _associated("stall-mid-block", "hdlc")
    whole.on_apdu(GET, ANSWER, 128)
    assert whole.outgoing(HDLC_A) == [Write(HDLC_A)]  # an unsegmented answer goes out


def test_close_after_aare_and_flag_flood_and_slow_loris() -> None:
    close = _associated("close-after-aare")
    assert [type(a) for a in close.outgoing(AARE)] == [Write, Close]
    flags = _associated("flag-flood", "hdlc")
    assert flags.outgoing(AARE) == [Write(AARE)]
    flags.on_apdu(GET, ANSWER, 1024)
    (flood,) = flags.outgoing(HDLC_A)
    assert isinstance(flood, Flood) and set(flood.unit) == {0x7E, 0xA0}
    slow = FaultPlan((parse_fault("slow-loris:30"),), "hdlc")
    (trickle,) = slow.outgoing(HDLC_A)
    assert trickle == Trickle(HDLC_A, 0.03, trickle.note)
    assert Silence().note == ""


# ====================================================================== end to end
@contextmanager
def faulty_sim(tmp_path: Path, *args: str) -> Iterator[tuple[dict[str, int], Path,
                                                               subprocess.Popen[str]]]:
    """``dlms-sim`` with ``args`` at -d7, its log in a file (a pipe could fill up)."""
    log = tmp_path / f"sim{time.monotonic_ns()}.log"
    with log.open("w") as sink, sim_process("--host", "127.0.0.1", "-d7", *args,
                                            stderr=sink) as (line, proc):
        ports = {name: int(port) for name, port in re.findall(r"(\w+)=[\d.]+:(\d+)", line)}
        assert ports, f"simulator did not start: {line!r}"
        yield ports, log, proc


def _device(kind: str, port: int, **over: Any) -> dict[str, Any]:
    mode = {"mode": "DLMS-WRAPPER"} if kind == "wrapper" else {
        "address_size": 2, "physical_address": 1}
    return tcp_device(kind, port=port, logical_address=1, **mode, **over)


KINDS = ("hdlc", "wrapper")


def _run(tmp_path: Path, write_config: Writer, spec: str, *, timeout_ms: int,
         retries: int, sim_args: tuple[str, ...] = (),
         **device: Any) -> tuple[int, dict[str, Any], str, str, float]:
    """One simulator with ``--fault spec`` (and ``sim_args``) on both TCP links, read by
    one ``dlms --once`` through two devices (``hdlc`` and ``wrapper``, polled side by
    side, with the settings ``device`` besides)."""
    with faulty_sim(tmp_path, "--hdlc-port", "0", "--wrapper-port", "0", *sim_args,
                    "--fault", spec) as (ports, log, proc):
        config = write_config(
            devices=[_device(kind, ports[kind], timeout_ms=timeout_ms,
                             retry_counter=retries, **device) for kind in KINDS],
            signals=[s for kind in KINDS for s in signals_for(kind, CODES)])
        started = time.monotonic()
        code, doc, err = once(config)
        elapsed = time.monotonic() - started
        assert proc.poll() is None, "the simulator died"
    return code, doc, err, log.read_text(encoding="utf-8"), elapsed


def _values(doc: dict[str, Any], device: str) -> dict[str, Any]:
    return {s["obis"]: (s["value"], s["unit"]) for s in doc["signals"]
            if s["device_alias"] == device and s["status"] == "ok"}


@pytest.mark.parametrize("spec", ["drop-request:4", "drop-reply:5", "corrupt:5",
                                  "delay:200:2"])
def test_noisy_line_is_read_through(tmp_path: Path, write_config: Writer, spec: str) -> None:
    code, doc, err, sim_log, _elapsed = _run(tmp_path, write_config, spec,
                                             timeout_ms=500, retries=3)
    assert code == 0, err
    for kind in KINDS:
        assert _values(doc, kind) == {code: EXPECTED[code] for code in CODES}
        assert f"fault={spec} link={kind}" in sim_log  # the fault did act on both links


# What the device error must say (a part of it), by fault and link.
HOSTILE_ERRORS: dict[tuple[str, str], str] = {
    ("garbage", "hdlc"): "no answer to SNRM",
    ("garbage", "wrapper"): "expected 1: stream out of step",
    ("stale-flood", "hdlc"): "replayed frames set aside",
    ("stale-flood", "wrapper"): "stale answers set aside",
    ("huge-length", "hdlc"): "4294967295",
    ("huge-length", "wrapper"): "no answer to GET",
    ("null-bomb", "hdlc"): "exceeds the limit",
    ("null-bomb", "wrapper"): "exceeds the limit",
    ("slow-loris", "hdlc"): "no answer to SNRM",
    ("slow-loris", "wrapper"): "no answer to AARQ",
    ("stall-mid-block", "hdlc"): "no answer to GET",
    ("stall-mid-block", "wrapper"): "block 1",
    ("close-after-aare", "hdlc"): "TCP 127.0.0.1:",
    ("close-after-aare", "wrapper"): "TCP 127.0.0.1:",
    ("flag-flood", "hdlc"): "octets of noise (an attempt ends after",
    ("flag-flood", "wrapper"): "stream out of step",
}


@pytest.mark.parametrize("spec", sorted({name for name, _ in HOSTILE_ERRORS}))
def test_hostile_meter_ends_in_a_device_error(tmp_path: Path, write_config: Writer,
                                              spec: str) -> None:
    timeout_ms, retries = 400, 1
    code, doc, err, sim_log, elapsed = _run(tmp_path, write_config, spec,
                                            timeout_ms=timeout_ms, retries=retries)
    assert code == 1, err
    assert "Traceback" not in err
    devices = {d["device_alias"]: d for d in doc["devices"]}
    for kind in KINDS:
        assert devices[kind]["status"] == "offline"
        assert HOSTILE_ERRORS[spec, kind] in devices[kind]["error"], devices[kind]
        assert not _values(doc, kind)
        assert f"fault={spec}" in sim_log and f"link={kind}" in sim_log
    # bounded: the attempts of one request, the release and the process's own start
    assert elapsed < timeout_ms / 1000 * (retries + 1) * 3 + 5


@pytest.mark.parametrize(("spec", "message"), [
    ("stale-flood", "2 results for 1 variables"),  # SN's stale answer: one result more
    ("null-bomb", "exceeds"),
    ("huge-length", "no answer to READ"),
])
def test_hostile_sn_meter_on_the_wrapper(tmp_path: Path, write_config: Writer, spec: str,
                                         message: str) -> None:
    with faulty_sim(tmp_path, "--wrapper-port", "0", "--referencing", "SN",
                    "--fault", spec) as (ports, log, _proc):
        config = write_config(devices=[_device("wrapper", ports["wrapper"], type="SN",
                                               timeout_ms=400, retry_counter=1)],
                              signals=signals_for("wrapper", CODES))
        code, doc, err = once(config)
    assert code == 1, err
    assert message in doc["devices"][0]["error"]
    assert f"fault={spec}" in log.read_text(encoding="utf-8")


def test_disconnect_ends_the_read_with_a_device_error(tmp_path: Path,
                                                      write_config: Writer) -> None:
    code, doc, _err, sim_log, _elapsed = _run(tmp_path, write_config, "disconnect:2",
                                              timeout_ms=500, retries=1)
    assert code == 1
    for device in doc["devices"]:
        assert "TCP 127.0.0.1:" in device["error"]
    assert sim_log.count("closed after reply 2") == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--fault", "drop"], "--fault 'drop': unknown fault 'drop'"),
    (["--fault", "delay:x"], "--fault 'delay:x': MS must be a whole number"),
    (["--fault", "garbage", "--fault", "null-bomb"], "one hostile meter at a time"),
    (["--pty", "--fault", "close-after-aare"], "not on a serial line"),
])
def test_fault_command_line_errors(args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-c", "from dlmsd.sim.cli import main; main()",
                             "--wrapper-port", "0", *args], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 2
    assert message in result.stderr


def test_help_names_every_fault() -> None:
    result = subprocess.run([sys.executable, "-c", "from dlmsd.sim.cli import main; main()",
                             "--help"], capture_output=True, text=True, timeout=30,
                            check=True)
    text = "".join(result.stdout.split())  # click wraps lines at hyphens
    for kind in Kind:
        assert kind.value in text


# ====================================================================== pty
@pytest.mark.parametrize(("spec", "read_through"), [
    ("drop-reply:4", True), ("corrupt:4", True), ("drop-request:4", True),
    ("garbage", False),
])
def test_faults_on_a_pty(write_config: Writer, spec: str, read_through: bool) -> None:
    with sim_process("--pty", "-d7", "--physical", "17", "--fault", spec,
                     stderr=subprocess.PIPE) as (line, proc):
        match = re.search(r"serial=(\S+)", line)
        assert match, f"simulator did not start: {line!r}"
        config = write_config(devices=[serial_device("m", match.group(1), 17,
                                                     timeout_ms=400, retry_counter=3)],
                              signals=signals_for("m", CODES))
        started = time.monotonic()
        code, doc, err = once(config)
        elapsed = time.monotonic() - started
        proc.terminate()
        _out, sim_log = proc.communicate(timeout=10)
    assert "fault" in sim_log
    if read_through:
        assert code == 0, err
        check_values(doc, CODES)
    else:
        assert code == 1
        assert "no answer to SNRM" in doc["devices"][0]["error"]
        assert elapsed < 0.4 * 4 * 3 + 5
