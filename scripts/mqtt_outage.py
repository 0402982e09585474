"""A broker outage in a running daemon: published, queued, dropped; and the RSS MQTT adds.

Starts a private mosquitto (persistence on, so the subscriber's QoS 1 session survives
the broker's restart), one ``dlms-sim`` (wrapper over TCP) and a real ``dlms`` daemon
reading ``--signals`` registers every ``--scan-ms`` with ``"publish": "scan"`` (every
read is a publication), and a paho subscriber on ``dlms/#``.  After ``--before`` s the
broker is stopped for ``--outage`` s, then started again; ``--after`` s after the
daemon's reconnection it is stopped with SIGTERM.  Printed: the reads made during the
outage (from the payloads' ``ts``), what the daemon published, queued at the reconnect
and dropped (its ``mqtt_connected`` / ``mqtt_stopped`` log lines), and what the
subscriber got.

Then the memory, as a ratio in the same run: VmRSS and VmHWM (/proc) of the daemon
with MQTT at the end of its run (after the outage, its queue drained) against the same
daemon and configuration without the ``mqtt`` object after ``--rss-s`` s.

    python scripts/mqtt_outage.py [--outage 60] [--queue-size 10000] [--signals 20]
        [--scan-ms 500] [--before 5] [--after 10] [--rss-s 10]
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

REGISTERS = ["1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.7.0.255", "1.0.32.7.0.255",
             "1.0.31.7.0.255", "1.0.14.7.0.255", "1.0.13.7.0.255", "0.0.96.9.0.255",
             "1.0.1.6.0.255", "1.0.52.7.0.255"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Broker:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nuser {getpass.getuser()}\n"
                             "allow_anonymous true\npersistence true\n"
                             f"persistence_location {workdir}/\nmax_queued_messages 0\n")
        self.exe = shutil.which("mosquitto") or shutil.which("mosquitto",
                                                             path="/usr/sbin:/sbin")
        if self.exe is None:
            sys.exit("mosquitto is not installed (apt-get install mosquitto)")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.exe is not None
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        sys.exit("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class Subscriber:
    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=f"outage-{uuid.uuid4().hex[:6]}",
                                  clean_session=False)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda c, *_: c.subscribe("dlms/#", qos=1)
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def rss_kib(pid: int) -> tuple[int, int]:
    text = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    hwm = int(re.search(r"VmHWM:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    return rss, hwm


def write_config(path: Path, sim_port: int, args: argparse.Namespace,
                 broker_port: int | None) -> None:
    doc: dict[str, Any] = {
        "devices": [{"name": "sim", "device_alias": "m", "protocol": "DLMS",
                     "client_address": 16, "ip": "127.0.0.1", "port": sim_port,
                     "mode": "DLMS-WRAPPER", "logical_address": 1,
                     "scan_rate_ms": args.scan_ms}],
        "signals": [{"signal_name": f"r{i}", "device_alias": "m", "signal_alias": f"r{i}",
                     "obis": REGISTERS[i % len(REGISTERS)]} for i in range(args.signals)],
        "state_dir": str(path.parent),
    }
    if broker_port is not None:
        doc["mqtt"] = {"host": "127.0.0.1", "port": broker_port, "client_id": "outage",
                       "publish": "scan", "queue_size": args.queue_size}
    path.write_text(json.dumps(doc))


def daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "dlmsd", "-c", str(config), "-d6",
                                 "--log-format", "json"], stdout=out, stderr=out)


def events(log: Path, name: str) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if doc.get("event") == name:
            found.append(doc)
    return found


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.1)


def epoch(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outage", type=float, default=60)
    parser.add_argument("--queue-size", type=int, default=10000)
    parser.add_argument("--signals", type=int, default=20)
    parser.add_argument("--scan-ms", type=int, default=500)
    parser.add_argument("--before", type=float, default=5)
    parser.add_argument("--after", type=float, default=10)
    parser.add_argument("--rss-s", type=float, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mqtt-outage-"))
    broker = Broker(work)
    broker.start()
    sub = Subscriber(broker.port)
    sim = subprocess.Popen([sys.executable, "-c", "from dlmsd.sim.cli import main; main()",
                            "--wrapper-port", "0"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        assert sim.stdout is not None
        sim_port = int(re.findall(r"wrapper=[\d.]+:(\d+)", sim.stdout.readline())[0])
        config, log = work / "dlms.json", work / "dlms.log"
        write_config(config, sim_port, args, broker.port)
        proc = daemon(config, log)
        wait_for(lambda: len(events(log, "mqtt_connected")) >= 1, "the daemon's connection")
        time.sleep(args.before)
        broker.stop()
        down = time.time()
        time.sleep(args.outage)
        up = time.time()
        broker.start()
        wait_for(lambda: len(events(log, "mqtt_connected")) >= 2, "the reconnection")
        time.sleep(args.after)
        rss_mqtt = rss_kib(proc.pid)
        stop(proc)
        time.sleep(0.5)
        sub.close()
        with sub.lock:
            got = list(sub.messages)
        values = [(t, json.loads(p)) for t, p in got if t.count("/") == 2
                  and not t.endswith("/status")]
        unique = {(t, doc["ts"]) for t, doc in values}
        in_outage = {(t, ts) for t, ts in unique if down <= epoch(ts) <= up}
        connects = events(log, "mqtt_connected")
        stopped = events(log, "mqtt_stopped")
        full = events(log, "mqtt_queue_full")
        last = stopped[-1] if stopped else {}
        print(f"outage {args.outage:.0f} s, {args.signals} signals every {args.scan_ms} ms "
              f"(publish scan), queue_size {args.queue_size}")
        print(f"  daemon: published {last.get('published')}, dropped {last.get('dropped')}, "
              f"still queued at stop {last.get('queued')}; at the reconnect: queued "
              f"{connects[-1].get('queued') if len(connects) > 1 else '?'}, dropped while "
              f"away {connects[-1].get('dropped_while_away') if len(connects) > 1 else '?'}; "
              f"mqtt_queue_full logged {len(full)} time(s); connects {len(connects)}")
        print(f"  subscriber: {len(values)} value messages, {len(unique)} distinct reads, "
              f"{len(in_outage)} of them read during the outage "
              f"(expected about {args.outage * 1000 / args.scan_ms * args.signals:.0f})")
        # the memory: the same daemon without mqtt, for the same time
        plain = work / "plain.json"
        write_config(plain, sim_port, args, None)
        proc = daemon(plain, work / "plain.log")
        time.sleep(args.rss_s)
        rss_plain = rss_kib(proc.pid)
        stop(proc)
        print(f"  RSS without mqtt {rss_plain[0]} KiB (peak {rss_plain[1]}), with mqtt "
              f"{rss_mqtt[0]} KiB (peak {rss_mqtt[1]}): ratio {rss_mqtt[0] / rss_plain[0]:.2f}, "
              f"+{rss_mqtt[0] - rss_plain[0]} KiB")
    finally:
        sim.terminate()
        sim.wait(10)
        if sim.stdout is not None:
            sim.stdout.close()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
