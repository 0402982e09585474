"""Generated configurations: N TCP meters of the benchmark's simulator, 10 registers each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .sim import REGISTERS


def device(alias: str, port: int, link: str, *, scan_rate_ms: int = 10000,
           timeout_ms: int = 5000, ip: str = "127.0.0.1") -> dict[str, Any]:
    return {"name": alias, "device_alias": alias, "protocol": "DLMS", "client_address": 16,
            "ip": ip, "port": port, "mode": "DLMS-WRAPPER" if link == "wrapper" else "DLMS-HDLC",
            "logical_address": 1, "physical_address": 1, "address_size": 2,
            "timeout_ms": timeout_ms, "retry_counter": 1, "reconnect_time": 1000,
            "scan_rate_ms": scan_rate_ms, "max_list_size": 10}


def signals(alias: str, *, class_id: int | None = 3,
            codes: tuple[str, ...] = REGISTERS) -> list[dict[str, Any]]:
    out = []
    for i, code in enumerate(codes):
        signal: dict[str, Any] = {"signal_name": code, "device_alias": alias,
                                  "signal_alias": f"{alias}_{i}", "obis": code}
        if class_id is not None:
            signal["class_id"] = class_id
        out.append(signal)
    return out


def meters(n: int, port: int, link: str, *, scan_rate_ms: int = 10000,
           class_id: int | None = 3, timeout_ms: int = 5000) -> dict[str, Any]:
    """``n`` meters on one simulator port (one TCP connection, one association each)."""
    devices, sigs = [], []
    for k in range(n):
        alias = f"m{k}"
        devices.append(device(alias, port, link, scan_rate_ms=scan_rate_ms,
                              timeout_ms=timeout_ms))
        sigs += signals(alias, class_id=class_id)
    return {"devices": devices, "signals": sigs}


def write(config: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(config), encoding="utf-8")
    return path
