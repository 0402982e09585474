"""dlms-sim as a separate process (the ``dlms-sim`` command), read by gurux_dlms 1.0.203,
an independent implementation (GPLv2, test-only), over HDLC and the wrapper; values are
compared exactly with the model.  Also the command line: ready line, signals, errors.

gurux renderings met here (gurux's, not the simulator's): a utf8-string with non-ASCII
characters comes back as a hex dump ("5A C3 A4 ..."); the hundredths of a time value
become microseconds x10 (hundredths 50 -> 500 us); a date-time with wildcards is filled
in (year 2000, day 1).  gurux also fails on a GET-Response-With-List that HDLC has to
segment (it parses the first segment alone: IndexError), so with-list is read by gurux
over the wrapper and over HDLC with frames large enough.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dlmsd.protocol.axdr import BitString, Data, DataType, Date, DateTime, Time
from dlmsd.protocol.obis import Obis
from dlmsd.sim.cli import main
from dlmsd.sim.model import AssociationView, Meter, MeterModel, bundled_model_path, load_model
from dlmsd.sim.server import ServerOptions

gurux = pytest.importorskip("gurux_dlms")
from gurux_dlms.enums import Conformance as GuruxConformance  # type: ignore[import-untyped]  # noqa: E402
from gurux_dlms.objects import GXDLMSData, GXDLMSRegister  # type: ignore[import-untyped]  # noqa: E402
from interop.gurux_client import GuruxSession, read_objects  # noqa: E402

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = load_model(bundled_model_path())
READY = re.compile(r"dlms-sim listening(?: hdlc=(?P<hdlc>\S+):(?P<hp>\d+))?"
                   r"(?: wrapper=(?P<wrapper>\S+):(?P<wp>\d+))?$")
HDLC = {"interface": "hdlc", "server_logical": 1, "server_physical": 1, "address_size": 2}
WRAPPER = {"interface": "wrapper", "server_logical": 1}


class SimProcess:
    def __init__(self, proc: subprocess.Popen[str], line: str) -> None:
        self.proc = proc
        self.line = line
        match = READY.match(line)
        assert match is not None, line
        self.ports = {"hdlc": int(match["hp"]) if match["hp"] else 0,
                      "wrapper": int(match["wp"]) if match["wp"] else 0}

    def kwargs(self, kind: str) -> dict[str, Any]:
        base = HDLC if kind == "hdlc" else WRAPPER
        return {"port": self.ports[kind], **base}


def start_sim(*args: str) -> SimProcess:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlmsd.sim.cli", *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    if not ready:
        proc.kill()
        proc.communicate()
        pytest.fail("dlms-sim did not print its ready line")
    line = proc.stdout.readline().rstrip("\n")
    if not line:
        _, err = proc.communicate(timeout=5)
        pytest.fail(f"dlms-sim exited: {err}")
    return SimProcess(proc, line)


def stop_sim(sim: SimProcess, sig: int = signal.SIGTERM) -> tuple[int, str]:
    if sim.proc.poll() is None:
        sim.proc.send_signal(sig)
    try:
        _, err = sim.proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        sim.proc.kill()
        _, err = sim.proc.communicate()
        pytest.fail("dlms-sim did not stop on the signal")
    return sim.proc.returncode, err


@contextlib.contextmanager
def running(*args: str) -> Iterator[SimProcess]:
    sim = start_sim(*args)
    try:
        yield sim
    finally:
        code, err = stop_sim(sim)
        assert code == 0, err
        assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def default_sim() -> Iterator[SimProcess]:
    with running("--hdlc-port", "0", "--wrapper-port", "0") as sim:
        yield sim


@pytest.fixture(scope="module")
def small_sim() -> Iterator[SimProcess]:
    with running("--hdlc-port", "0", "--wrapper-port", "0", "--max-pdu", "128",
                 "--max-info", "32") as sim:
        yield sim


# ------------------------------------------------------------------ expected values
VIEW = AssociationView(16, 1, int(ServerOptions().conformance), 1024, 1024)


def model_value(model: MeterModel, class_id: int, obis: str, attribute: int) -> Any:
    value = Meter(model).read(class_id, Obis.parse(obis), attribute,
                              now=dt.datetime.now(dt.UTC), association=VIEW)
    assert isinstance(value, Data)
    return value


def as_gurux(value: Data) -> Any:
    """The plain Python the gurux harness makes of ``value`` (see the module docstring)."""
    v = value.value
    if isinstance(v, tuple):
        return [as_gurux(item) for item in v]
    if value.type is DataType.UTF8_STRING:
        assert isinstance(v, str)
        return v if v.isascii() else v.encode().hex(" ").upper()
    if isinstance(v, BitString):
        return str(v)
    if isinstance(v, DateTime):
        return v.to_datetime()
    if isinstance(v, Date):
        moment = v.to_date()
        assert moment is not None
        return dt.datetime(moment.year, moment.month, moment.day)
    if isinstance(v, Time):
        assert v.hour is not None and v.minute is not None
        return dt.datetime(1900, 1, 1, v.hour, v.minute, v.second or 0, (v.hundredths or 0) * 10)
    return v


ATTRIBUTES = (
    [(3, o, a) for o in ("1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.7.0.255", "1.0.32.7.0.255",
                         "1.0.31.7.0.255", "1.0.14.7.0.255", "1.0.13.7.0.255",
                         "0.0.96.9.0.255") for a in (1, 2, 3)]
    + [(4, "1.0.1.6.0.255", a) for a in range(1, 6)]
    + [(5, "1.0.1.4.0.255", a) for a in range(1, 10)]
    + [(8, "0.0.1.0.0.255", a) for a in range(1, 10)]
    + [(1, o, 2) for o in ("0.0.42.0.0.255", "0.0.96.1.0.255", "0.0.96.1.1.255", "1.0.0.2.0.255")]
    + [(1, f"0.128.128.0.{n}.255", 2) for n in range(24)]  # 24: wildcards, checked apart
    + [(15, "0.0.40.0.0.255", a) for a in (1, 3, 4, 5, 6, 8, 9)]
)


# ------------------------------------------------------------------ reading
@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
def test_gurux_reads_every_attribute_exactly(default_sim: SimProcess, kind: str) -> None:
    results = read_objects("127.0.0.1", objects=ATTRIBUTES, **default_sim.kwargs(kind))
    for (class_id, obis, attribute), got in zip(ATTRIBUTES, results, strict=True):
        want = model_value(BUNDLED, class_id, obis, attribute)
        assert got.error is None, (obis, attribute, got.error)
        assert got.dlms_type == int(want.type), (obis, attribute)
        assert got.value == as_gurux(want), (obis, attribute)
    by_name = {(r.obis, r.attribute): r for r in results}
    energy = by_name[("1.0.1.8.0.255", 3)]
    assert (energy.scaler, energy.unit) == (1, 30)
    assert by_name[("1.0.1.8.0.255", 2)].value == 123456
    assert (by_name[("1.0.32.7.0.255", 3)].scaler, by_name[("1.0.32.7.0.255", 3)].unit) == (-1, 35)
    assert by_name[("0.128.128.0.15.255", 2)].value == 2**53 + 1
    assert by_name[("0.128.128.0.14.255", 2)].value == 2**64 - 1
    clock = by_name[("0.0.1.0.0.255", 2)]
    assert clock.decoded == dt.datetime(2024, 6, 1, 12, 0,
                                        tzinfo=dt.timezone(dt.timedelta(hours=2)))
    wildcards = read_objects("127.0.0.1", objects=[(1, "0.128.128.0.24.255", 2)],
                             **default_sim.kwargs(kind))
    assert wildcards[0].dlms_type == int(DataType.DATE_TIME)


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
def test_gurux_reads_the_object_list(default_sim: SimProcess, kind: str) -> None:
    (result,) = read_objects("127.0.0.1", objects=[(15, "0.0.40.0.0.255", 2)],
                             **default_sim.kwargs(kind))
    assert result.error is None
    want = model_value(BUNDLED, 15, "0.0.40.0.0.255", 2)
    assert result.value == as_gurux(want)
    listed = {(o["class_id"], o["obis"]) for o in result.decoded}
    assert {(o.cls.class_id, str(o.logical_name)) for o in BUNDLED.objects} == listed
    association = result.decoded[0]
    assert association["version"] == 1
    assert association["attribute_access"][6] == (7, 0)  # secret: no access
    assert all(mode == 1 for i, mode in association["attribute_access"] if i != 7)


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
def test_gurux_errors(default_sim: SimProcess, kind: str) -> None:
    results = read_objects("127.0.0.1", objects=[
        (3, "1.0.99.99.0.255", 2), (3, "1.0.1.8.0.255", 4), (15, "0.0.40.0.0.255", 7),
        (1, "1.0.1.8.0.255", 2), (3, "1.0.1.8.0.255", 2)], **default_sim.kwargs(kind))
    assert [r.error for r in results] == [4, 4, 3, 9, None]


def test_gurux_small_pdu_and_info_segmentation_and_blocks(small_sim: SimProcess) -> None:
    want = model_value(BUNDLED, 15, "0.0.40.0.0.255", 2)
    for kind in ("hdlc", "wrapper"):
        with GuruxSession("127.0.0.1", max_info=128, trace=True, **small_sim.kwargs(kind)) as s:
            if kind == "hdlc":
                assert s.client.hdlcSettings.maxInfoTX == 32
                assert s.client.hdlcSettings.maxInfoRX == 32
            assert s.client.maxReceivePDUSize == 128  # the meter's max PDU, from the AARE
            results = [s.read(15, "0.0.40.0.0.255", 2), s.read(3, "1.0.1.8.0.255", 2),
                       s.read(3, "1.0.1.8.0.255", 3), s.read(1, "0.128.128.0.23.255", 2)]
            received = [data for direction, data in s.frames if direction == "rx"]
        assert results[0].value == as_gurux(want)
        assert results[1].value == 123456 and (results[2].scaler, results[2].unit) == (1, 30)
        assert results[3].value == as_gurux(model_value(BUNDLED, 1, "0.128.128.0.23.255", 2))
        if kind == "hdlc":
            # 32 octets of information + at most 15 of header, flags excluded
            assert max(len(frame) for frame in received) <= 32 + 15 + 2
        assert len(received) > 20


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
def test_gurux_get_with_list(default_sim: SimProcess, kind: str) -> None:
    objects = [(GXDLMSRegister("1.0.1.8.0.255"), 2), (GXDLMSRegister("1.0.1.8.0.255"), 3),
               (GXDLMSRegister("1.0.32.7.0.255"), 2), (GXDLMSData("0.0.96.1.0.255"), 2),
               (GXDLMSData("0.128.128.0.22.255"), 2)]
    with GuruxSession("127.0.0.1", **default_sim.kwargs(kind)) as s:
        assert s.client.negotiatedConformance & GuruxConformance.MULTIPLE_REFERENCES
        values: list[Any] = []
        for message in s.client.readList(objects):
            values += list(s.transact(message).value)
    assert values[0] == 123456
    assert [int(v) for v in values[1]] == [1, 30]
    assert values[2] == 2301
    assert bytes(values[3]) == b"12345678"
    assert [int(v) for v in values[4]] == [1, 2, 3]


def test_gurux_sees_no_get_with_list() -> None:
    with running("--wrapper-port", "0", "--no-get-with-list") as sim, GuruxSession(
            "127.0.0.1", **sim.kwargs("wrapper")) as s:
        assert not s.client.negotiatedConformance & GuruxConformance.MULTIPLE_REFERENCES
        with pytest.raises(ValueError, match="multiple objects"):
            s.client.readList([(GXDLMSRegister("1.0.1.8.0.255"), 2)])
        assert s.read(3, "1.0.1.8.0.255", 2).value == 123456


# ------------------------------------------------------------------ the command line
def test_ready_line_names_both_ports_and_sigint_stops(tmp_path: Path) -> None:
    sim = start_sim("--hdlc-port", "0", "--wrapper-port", "0", "--host", "127.0.0.1")
    try:
        assert sim.ports["hdlc"] > 0 and sim.ports["wrapper"] > 0
        assert sim.line == (f"dlms-sim listening hdlc=127.0.0.1:{sim.ports['hdlc']} "
                            f"wrapper=127.0.0.1:{sim.ports['wrapper']}")
        # A client that connects and vanishes does not stop it.
        with socket.create_connection(("127.0.0.1", sim.ports["hdlc"])) as sock:
            sock.sendall(b"\x7e\xa0\x07\x03")
    finally:
        code, err = stop_sim(sim, signal.SIGINT)
    assert code == 0, err


def test_bad_model_and_bad_arguments_exit_2(tmp_path: Path) -> None:
    model = tmp_path / "m.json"
    model.write_text(json.dumps({"objects": [{"class": "register", "obis": "1.0.1.8.0.255",
                                              "value": {"type": "unsigned", "value": 300}}]}),
                     encoding="utf-8")
    for args, message in [
        (["--model", str(model), "--wrapper-port", "0"], "$.objects[0].value.value: 300"),
        (["--model", str(tmp_path / "none.json"), "--wrapper-port", "0"],
         "cannot read the model"),
        ([], "give --hdlc-port, --wrapper-port, --serial or --pty"),
        (["--hdlc-port", "0", "--address-size", "2", "--logical", "200"], "HDLC server address"),
        (["--wrapper-port", "0", "--max-pdu", "11"], "--max-pdu"),
        (["--hdlc-port", "4061", "--wrapper-port", "4061"], "must differ"),
    ]:
        done = CliRunner().invoke(main, args)
        assert done.exit_code == 2, (args, done.output)
        assert message in done.stderr, (args, done.stderr)
        assert done.stdout == ""


def test_port_in_use_exits_1(default_sim: SimProcess) -> None:
    taken = str(default_sim.ports["wrapper"])
    done = subprocess.run([sys.executable, "-m", "dlmsd.sim.cli", "--wrapper-port", taken],
                          cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert done.returncode == 1
    assert "cannot listen" in done.stderr and done.stdout == ""
