"""A device's connection settings from ``--config FILE --device ALIAS`` and/or options,
and the session that opens it (shared by ``dlmsctl discover`` and ``dlmsctl probe``).

The settings are the keys of a device in the configuration and go through the same
validation (:func:`dlmsd.config.parse_config`), so a bad value gets the same message
as in a configuration file, naming the option that gave it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from dlmsd.config import Config, DeviceConfig, parse_config
from dlmsd.counters import CounterStore, open_counter_store
from dlmsd.errors import ConfigError
from dlmsd.logsetup import get_trace_logger
from dlmsd.poller import SessionContext
from dlmsd.session import DlmsSession, make_session
from dlmsd.supervisor import serial_settings
from dlmsd.trace import FrameTracer
from dlmsd.transport.bus import SerialBus
from dlmsd.transport.serial import SerialTransport

__all__ = ["OPTION_KEYS", "Target", "connection_options", "device_settings", "open_session",
           "validate"]

#: option (click parameter name) -> device key
OPTION_KEYS: dict[str, str] = {
    "ip": "ip", "port": "port", "serial_port": "device", "mode": "mode",
    "client_address": "client_address", "logical_address": "logical_address",
    "physical_address": "physical_address", "address_size": "address_size",
    "serial_number": "serial_number", "referencing": "type", "auth": "auth",
    "password": "password", "timeout_ms": "timeout_ms", "baudrate": "baudrate",
}
_FLAGS = {key: "--" + name.replace("_", "-") for name, key in OPTION_KEYS.items()}
_MODES = {"hdlc": "DLMS-HDLC", "wrapper": "DLMS-WRAPPER", "iec": "IEC"}


def connection_options(*, probe: bool = False) -> Callable[[Any], Any]:
    """The options naming a meter (``probe``: those that do not name what is probed)."""
    options: list[Any] = [] if probe else [
        click.option("--config", "config_path", type=click.Path(dir_okay=False),
                     help="Take the device from this configuration file (with --device)."),
        click.option("--device", "device_alias", metavar="ALIAS",
                     help="The device_alias of the device in --config."),
    ]
    options += [
        click.option("--ip", metavar="HOST", help="Meter IP address or host name (TCP)."),
        click.option("--port", type=click.IntRange(1, 65535), help="Meter TCP port."),
        click.option("--serial-port", metavar="PATH",
                     help="Serial port: a device path, PORTn or a pyserial URL."),
        click.option("--serial-number", type=click.IntRange(0, 4294967295),
                     help="Meter serial number (the serial-number HDLC address)."),
        click.option("--auth", metavar="NAME",
                     help="Authentication: None, Low, High, HighMd5, HighSha1, HighSha256 "
                          "(HighGmac and HighEcdsa: use --config)."),
        click.option("--password", metavar="TEXT", envvar="DLMSCTL_PASSWORD",
                     help="LLS password or HLS secret (also $DLMSCTL_PASSWORD)."),
        click.option("--timeout-ms", type=int, help="Reply timeout of one exchange."),
        click.option("--baudrate", type=int, help="Serial baud rate."),
    ]
    if not probe:
        options += [
            click.option("--mode", type=click.Choice(sorted(_MODES), case_sensitive=False),
                         help="Link: hdlc, wrapper or iec (mode E, then HDLC)."),
            click.option("--client-address", metavar="N",
                         help="Client address (hex as 0x10, or decimal)."),
            click.option("--logical-address", type=int, help="Server logical address."),
            click.option("--physical-address", type=int, help="Server physical address."),
            click.option("--address-size", type=click.Choice(["1", "2", "4"]),
                         help="Server address size in bytes."),
            click.option("--referencing", type=click.Choice(["LN", "SN"],
                                                            case_sensitive=False),
                         help="Object referencing (the configuration's type)."),
        ]

    def decorate(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


@dataclass(frozen=True)
class Target:
    """The device to open: its settings as configuration keys, validated."""

    settings: dict[str, Any]
    device: DeviceConfig
    config: Config
    base: Path


def _option_value(name: str, value: Any) -> Any:
    if name == "mode":
        return _MODES[str(value).lower()]
    if name == "address_size":
        return int(value)
    if name == "client_address":
        text = str(value).strip()
        return text if text.lower().startswith("0x") else (
            int(text) if text.isdigit() else text)
    if name == "referencing":
        return str(value).upper()
    return value


def _from_file(path: str, alias: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The raw device ``alias`` of the file and the file's top-level keys besides."""
    file = Path(path)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise click.UsageError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"--config {path}: cannot read it: {exc}") from None
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"--config {path}: invalid JSON at line {exc.lineno} column "
                               f"{exc.colno}: {exc.msg}") from None
    devices = doc.get("devices") if isinstance(doc, dict) else None
    if not isinstance(devices, list):
        raise click.UsageError(f"--config {path}: has no devices list")
    aliases = [d.get("device_alias") for d in devices if isinstance(d, dict)]
    if alias is None:
        raise click.UsageError(f"--config needs --device ALIAS (devices in {path}: "
                               f"{', '.join(map(str, aliases)) or 'none'})")
    for item in devices:
        if isinstance(item, dict) and item.get("device_alias") == alias:
            top = {k: v for k, v in doc.items() if k in ("ports", "state_dir")}
            return dict(item), top
    raise click.UsageError(f"--device {alias}: no such device in {path} (devices: "
                           f"{', '.join(map(str, aliases)) or 'none'})")


def device_settings(config_path: str | None, device_alias: str | None,
                    options: Mapping[str, Any], *, alias: str | None = None,
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The device's keys: the file's device (if any) with the options given on top;
    and the file's top-level ``ports`` and ``state_dir``.  Without a file, the device
    is named ``alias`` (default ``meter``) and the client is the public one (16)."""
    if device_alias is not None and config_path is None:
        raise click.UsageError("--device goes with --config FILE")
    top: dict[str, Any] = {}
    if config_path is not None:
        settings, top = _from_file(config_path, device_alias)
    else:
        settings = {"name": alias or "meter", "device_alias": alias or "meter",
                    "protocol": "DLMS", "client_address": 16}
    for name, key in OPTION_KEYS.items():
        value = options.get(name)
        if value is not None:
            settings[key] = _option_value(name, value)
    if config_path is None and "ip" not in settings and "device" not in settings:
        raise click.UsageError("say where the meter is: --ip HOST --port N, --serial-port "
                               "PATH, or --config FILE --device ALIAS")
    if "ip" in settings and "port" not in settings:
        raise click.UsageError("--ip needs --port (4059 is the IANA DLMS port)")
    if alias is not None:
        settings["device_alias"] = alias
    return settings, top


def _with_flags(message: str, from_options: bool) -> str:
    """``devices[0].client_address: ...`` -> ``--client-address (client_address): ...``"""
    prefix = "devices[0]."
    if not message.startswith(prefix):
        return message
    rest = message[len(prefix):]
    key = rest.split(":", 1)[0].split(".", 1)[0]
    if from_options and key in _FLAGS:
        return f"{_FLAGS[key]} ({key}){rest[len(key):]}"
    return f"device {rest}"


def validate(settings: Mapping[str, Any], top: Mapping[str, Any], base: Path,
             *, from_options: bool = True) -> Target:
    """Check the settings as the daemon would; a ConfigError names the option or key."""
    doc = {**top, "devices": [dict(settings)], "signals": []}
    try:
        config = parse_config(doc, "the device settings", base)
    except ConfigError as exc:
        problems = [_with_flags(p, from_options) for p in exc.problems]
        raise ConfigError(f"{len(problems)} problem{'s' if len(problems) > 1 else ''} "
                          "in the device settings", problems, exc.warnings) from None
    return Target(dict(settings), config.devices[0], config, base)


def open_session(target: Target, log: Any, *, trace: bool) -> DlmsSession:
    """A session (not opened yet) for ``target``'s device."""
    device = target.device
    config = target.config

    def counters() -> CounterStore:
        return open_counter_store(os.path.join(config.state_directory(os.environ),
                                               "counters"))

    bus = None
    if device.ip is None and device.device is not None:
        port, line = device.device, serial_settings(device)
        bus = SerialBus(port, lambda: SerialTransport(port, line))
    tracer = FrameTracer(get_trace_logger(device=device.device_alias,
                                          port=device.port_name), enabled=trace, dump_log=log)
    context = SessionContext(tracer, log, bus=bus, counters=counters)
    return make_session(device, context)
