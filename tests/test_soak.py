"""scripts/soak: its counting (fed made-up daemon lines), a short real soak (the daemon
against dlms-sim meters) and that it leaves no process behind when interrupted."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SOAK = REPO / "scripts" / "soak"


def load_soak() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("soak_script", str(SOAK))
    spec = importlib.util.spec_from_loader("soak_script", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak_script"] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module


def line(when: float, event: str, **fields: Any) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))
    millis = f"{when % 1:.3f}"[1:]
    return json.dumps({"event": event, **fields, "level": "debug",
                       "timestamp": f"{stamp}{millis}+00:00"}) + "\n"


def test_counting_from_the_daemon_lines() -> None:
    """Expected scans run from the first connect; an outage costs its scans; lines after
    the end do not count; latencies give max and p99."""
    soak = load_soak()
    log = soak.DaemonLog(io.StringIO())
    start = 1_700_000_000.0
    log.feed(line(start, "dlms_starting"))
    log.feed("not json\n")
    log.feed(line(start + 0.5, "connected", device="m"))
    for k in range(10):  # ticks at 0.5 .. 9.5; scans 3 and 4 lost to an outage
        if k in (3, 4):
            continue
        log.feed(line(start + 0.5 + k + 0.01, "scan_done", device="m", ms=10.0 + k))
    log.feed(line(start + 3.6, "device_offline", device="m", error="timed out"))
    log.feed(line(start + 5.4, "connected", device="m"))
    log.feed(line(start + 11.0, "scan_done", device="m", ms=1.0))  # after the end
    meter = soak.Meter("m", "healthy", "hdlc", "hdlc", 1)
    report = soak.device_report(meter, log.devices["m"], start, start + 10.5, 1.0)
    assert report["expected"] == 10 and report["expected_from"] == "first_connect"
    assert report["done"] == 8 and report["completed"] == 0.8
    assert report["connect_s"] == 0.5
    assert report["latency_ms_max"] == 19.0 and report["latency_ms_p99"] == 19.0
    assert report["latency_ms_median"] == 15.0
    assert (report["connects"], report["offline"], report["state"]) == (2, 1, "online")
    assert report["errors"] == {"timed out": 1}
    assert log.not_json == ["not json"] and log.started.is_set()
    never = soak.device_report(soak.Meter("x", "hostile", "garbage", "hdlc", 2), None,
                               start, start + 10.5, 1.0)
    assert (never["expected"], never["done"], never["expected_from"]) == (10, 0, "start")
    summary = soak.group_summary([report, never])
    assert (summary["done"], summary["expected"], summary["completed"]) == (8, 20, 0.4)


def run_soak(*args: str, timeout: float = 90) -> tuple[int, dict[str, Any], str]:
    result = subprocess.run([sys.executable, str(SOAK), "--json", *args],
                            capture_output=True, text=True, timeout=timeout, check=False)
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, report, result.stderr


def test_short_soak_healthy_meters() -> None:
    code, report, stderr = run_soak("--meters", "3", "--minutes", "0.2",
                                    "--report-every", "3")
    assert code == 0, (stderr, report)
    healthy = [d for d in report["devices"] if d["group"] == "healthy"]
    assert [d["link"] for d in healthy] == ["hdlc", "wrapper", "hdlc"]
    for device in healthy:
        assert device["expected"] >= 9, device  # 12 s at 1 s, minus the start-up
        assert device["done"] >= device["expected"] * 0.9, device
        assert device["offline"] == 0 and device["connects"] == 1, device
        assert 0 < device["latency_ms_max"] < 1000, device
    assert report["groups"]["healthy"]["completed"] >= 0.99
    assert report["healthy_completed"] == report["groups"]["healthy"]["completed"]
    assert report["ok"] is True
    daemon = report["daemon"]
    assert len(daemon["rss_samples"]) >= 4 and daemon["rss_kb_end"] > 10_000
    assert daemon["cpu_s"] > 0 and daemon["exit_code"] == 0
    assert daemon["not_json_lines"] == []


def test_short_soak_with_the_hostile_meters() -> None:
    """Every hostile kind is started and misbehaves (its meter is mostly not read);
    the healthy meters beside it are read. Whether they keep 99 % is the figure the
    script reports (exit 1 below it), not asserted here: it is a timing on a shared
    machine."""
    code, report, stderr = run_soak("--meters", "2", "--minutes", "0.1", "--hostile",
                                    "--report-every", "3")
    assert code in (0, 1), stderr
    hostile = {d["kind"]: d for d in report["devices"] if d["group"] == "hostile"}
    assert list(hostile) == list(load_soak().HOSTILE) == report["run"]["hostile"]
    assert hostile["flag-flood"]["link"] == "hdlc"
    assert all(d["expected"] >= 4 for d in hostile.values()), hostile
    assert report["groups"]["hostile"]["completed"] < 0.5, hostile
    healthy = [d for d in report["devices"] if d["group"] == "healthy"]
    assert len(healthy) == 2 and all(d["done"] > 0 for d in healthy), healthy
    assert report["ok"] == (code == 0)
    assert report["daemon"]["exit_code"] == 0
    assert report["daemon"]["not_json_lines"] == []


def test_short_soak_with_noisy_meters_and_one_hostile_kind(tmp_path: Path) -> None:
    """--noisy SPEC puts --noisy-meters meters behind dlms-sim --fault SPEC, reported
    as their own group; --hostile-kind starts only that kind; --workdir keeps the
    configuration and logs; the exit status follows --min-complete."""
    code, report, stderr = run_soak(
        "--meters", "1", "--minutes", "0.1", "--noisy", "drop-reply:5", "--noisy-meters",
        "1", "--hostile-kind", "close-after-aare", "--meters-per-sim", "1",
        "--report-every", "3", "--min-complete", "1.0", "--workdir", str(tmp_path))
    groups = {d["group"] for d in report["devices"]}
    assert groups == {"healthy", "noisy", "hostile"}, report["devices"]
    noisy = [d for d in report["devices"] if d["group"] == "noisy"]
    assert len(noisy) == 1 and noisy[0]["done"] > 0, noisy
    assert [d["kind"] for d in report["devices"] if d["group"] == "hostile"] == [
        "close-after-aare"]
    assert (tmp_path / "dlms.json").is_file() and (tmp_path / "dlms.log").is_file()
    assert report["ok"] == (code == 0), stderr


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for row in status.splitlines():
            if row.startswith("PPid:") and int(row.split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_soak_leaves_nothing_behind(signum: int, tmp_path: Path) -> None:
    """Run directly (its #! line), interrupted once the daemon scans: exit 130 and
    the daemon and simulators are gone."""
    proc = subprocess.Popen([str(SOAK), "--meters", "2", "--minutes", "5",
                             "--meters-per-sim", "1", "--workdir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        log = tmp_path / "dlms.log"
        while time.monotonic() < deadline:
            if log.exists() and '"scan_done"' in log.read_text():
                break
            time.sleep(0.2)
        else:
            pytest.fail("the daemon did not scan within 30 s")
        started = children_of(proc.pid)
        assert len(started) == 3  # two dlms-sim, one dlms
        os.kill(proc.pid, signum)
        _, stderr = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):  # also after a failure: no unclosed pipe
            if stream is not None:
                stream.close()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert [pid for pid in started if alive(pid)] == []
