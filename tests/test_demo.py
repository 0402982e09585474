"""scripts/demo, the README's first command: the simulator, the daemon with its HTTP API
and dlms-top in front, showing the simulator's values; Ctrl-C stops all of them."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_demo_shows_the_live_table_and_stops_on_ctrl_c() -> None:
    # free ports of its own (DEMO_*_PORT), not the demo's 4061/4059 and 8080, which
    # other tests may expect nobody to listen on
    port, hdlc, wrapper = _free_port(), _free_port(), _free_port()
    proc = subprocess.Popen([str(ROOT / "scripts/demo")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "DEMO_HTTP_PORT": str(port),
                                 "DEMO_HDLC_PORT": str(hdlc),
                                 "DEMO_WRAPPER_PORT": str(wrapper)})
    seen = b""
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        # a frame of dlms-top with both simulated meters read
        while time.monotonic() < deadline and not (
                f"device sim_hdlc 127.0.0.1:{hdlc}: online".encode() in seen
                and f"device sim_wrapper 127.0.0.1:{wrapper}: online".encode() in seen):
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
        text = seen.decode(errors="replace")
        last = text.split("\x1b[H\x1b[2J")[-1]
        assert f"dlms-top http://127.0.0.1:{port}" in last, text[-3000:]
        assert f"device sim_wrapper 127.0.0.1:{wrapper}: online" in last, text[-3000:]
        assert "hdlc_energy_import" in last and " Wh " in last and "12345678" in last
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err
    # the daemon (its HTTP API) and the simulator are gone
    for _ in range(50):
        if not (_listening(port) or _listening(hdlc)):
            break
        time.sleep(0.1)
    assert not _listening(port) and not _listening(hdlc) and not _listening(wrapper)
    assert "dlms_starting" in (ROOT / ".demo/dlms.log").read_text()
