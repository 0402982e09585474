"""What the HTTP API costs the daemon: RSS and start-up time with and without ``http``.

One ``dlms-sim`` child (wrapper, loopback) is the meter; each run starts the real daemon
(``python -m dlmsd -c CONFIG -d6``) on the same configuration (``--signals`` registers
of one device, scan_rate_ms 500), once without the ``http`` object and once with
``http.listen`` on a free loopback port; the order alternates between repeats.

Measured per run:

* start-up: from spawning the process to its last start line (``started`` from the
  supervisor without HTTP; ``http_listening`` with it), i.e. the interpreter, the
  imports, the configuration and, with HTTP, aiohttp's server;
* RSS (VmRSS of /proc/PID/status) once every signal was read (and with HTTP after
  ``--requests`` requests to each of /api/v1/signals, /api/v1/devices, /metrics and
  /healthz), and VmHWM (the peak);
* the import cost alone: ``python -X importtime -c 'import dlmsd.outputs.http'`` against
  ``import dlmsd.cli`` (cumulative microseconds of the top-level module).

    python scripts/bench_http_memory.py [--repeats 3] [--signals 8] [--requests 200]
                                        [--with-mqtt]

``--with-mqtt``: the runs with HTTP also publish every value to a mosquitto started by
the script on a free port (the daemon with and without both outputs).

Printed: each run, then medians and the ratios with/without in the same run; nothing is
timed against a fixed threshold.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CODES = ["1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.7.0.255", "1.0.32.7.0.255",
         "1.0.31.7.0.255", "1.0.14.7.0.255", "1.0.13.7.0.255", "0.0.96.9.0.255",
         "0.0.96.1.1.255", "0.0.42.0.0.255"]
ENDPOINTS = ("/api/v1/signals", "/api/v1/devices", "/metrics", "/healthz")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for {pid}")


def wait_for(log: Path, proc: subprocess.Popen[bytes], text: str, timeout: float = 30
             ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    raise RuntimeError(f"{text!r} not seen:\n{log.read_text()}")


def signals_ok(url: str, count: int) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            doc = json.loads(answer.read())
    except OSError:
        return False
    return len(doc["signals"]) == count and all(s["status"] == "ok" for s in doc["signals"])


def one_run(work: Path, sim_port: int, signals: int, http: bool, requests: int,
            mqtt_port: int | None = None) -> dict[str, float]:
    codes = CODES[:signals]
    doc: dict[str, object] = {
        "devices": [{"name": "M", "device_alias": "m", "protocol": "DLMS",
                     "client_address": 16, "ip": "127.0.0.1", "port": sim_port,
                     "mode": "DLMS-WRAPPER", "logical_address": 1, "scan_rate_ms": 500}],
        "signals": [{"signal_name": c, "device_alias": "m", "signal_alias": f"s{i}",
                     "obis": c, "log": 0} for i, c in enumerate(codes)]}
    port = free_port()
    if http:
        doc["http"] = {"listen": f"127.0.0.1:{port}"}
        if mqtt_port is not None:
            doc["mqtt"] = {"host": "127.0.0.1", "port": mqtt_port, "client_id": "bench"}
    config = work / f"dlms-{'http' if http else 'plain'}.json"
    config.write_text(json.dumps(doc))
    log = work / "daemon.log"
    with log.open("w") as out:
        began = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "dlmsd", "-c", str(config), "-d6"],
                                stdout=subprocess.DEVNULL, stderr=out)
        try:
            wait_for(log, proc, "http_listening" if http else "started")
            startup = time.monotonic() - began
            # every signal read once: from the API, or (without it) from the log
            deadline = time.monotonic() + 30
            if http:
                base = f"http://127.0.0.1:{port}"
                while not signals_ok(base + "/api/v1/signals", len(codes)):
                    if time.monotonic() > deadline:
                        raise RuntimeError("signals not ok")
                    time.sleep(0.05)
                for _ in range(requests):
                    for path in ENDPOINTS:
                        with urllib.request.urlopen(base + path, timeout=5) as answer:
                            answer.read()
            else:
                while log.read_text().count("signal_update") < len(codes):
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"signals not read:\n{log.read_text()}")
                    time.sleep(0.05)
            if http and mqtt_port is not None:
                wait_for(log, proc, "mqtt_connected")
            time.sleep(1.0)  # a few more scans
            rss, hwm = status_kb(proc.pid, "VmRSS"), status_kb(proc.pid, "VmHWM")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {"startup_s": startup, "rss_kb": rss, "hwm_kb": hwm}


def import_us(module: str) -> int:
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                            capture_output=True, text=True, check=True)
    total = 0
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)$", line.rstrip())
        if match and match.group(2) == module:
            total = int(match.group(1))
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--signals", type=int, default=8, choices=range(1, len(CODES) + 1))
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--with-mqtt", action="store_true",
                        help="the 'http' runs publish to a mosquitto (started here) too")
    args = parser.parse_args()
    broker: subprocess.Popen[bytes] | None = None
    mqtt_port: int | None = None
    if args.with_mqtt:
        mqtt_port = free_port()
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        broker = subprocess.Popen([mosquitto, "-p", str(mqtt_port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    sim = subprocess.Popen([sys.executable, "-m", "dlmsd.sim.cli", "--host", "127.0.0.1",
                            "--wrapper-port", "0"], stdout=subprocess.PIPE, text=True)
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline()
        match = re.search(r"wrapper=[\d.]+:(\d+)", line)
        if match is None:
            raise RuntimeError(f"simulator did not start: {line!r}")
        with tempfile.TemporaryDirectory() as tmp:
            for n in range(args.repeats):
                for http in ((False, True) if n % 2 == 0 else (True, False)):
                    got = one_run(Path(tmp), int(match.group(1)), args.signals, http,
                                  args.requests, mqtt_port)
                    results[http].append(got)
                    print(f"run {n + 1} {'http   ' if http else 'no http'}: start-up "
                          f"{got['startup_s'] * 1000:.0f} ms, RSS {got['rss_kb'] / 1024:.1f} "
                          f"MiB, peak {got['hwm_kb'] / 1024:.1f} MiB")
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        if broker is not None:
            broker.terminate()
            broker.wait(timeout=10)
        if sim.stdout is not None:
            sim.stdout.close()
    print()
    for key, label, scale, unit in (("startup_s", "start-up", 1000, "ms"),
                                    ("rss_kb", "RSS", 1 / 1024, "MiB"),
                                    ("hwm_kb", "peak RSS", 1 / 1024, "MiB")):
        plain = statistics.median(r[key] for r in results[False])
        with_http = statistics.median(r[key] for r in results[True])
        print(f"{label:9} median: no http {plain * scale:.1f} {unit}, http "
              f"{with_http * scale:.1f} {unit}, +{(with_http - plain) * scale:.1f} {unit}, "
              f"ratio {with_http / plain:.2f}")
    cli, http_mod = import_us("dlmsd.cli"), import_us("dlmsd.outputs.http")
    print(f"import    dlmsd.cli {cli / 1000:.0f} ms, dlmsd.outputs.http (with dlmsd.cli, "
          f"aiohttp, prometheus_client) {http_mod / 1000:.0f} ms, ratio {http_mod / cli:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
