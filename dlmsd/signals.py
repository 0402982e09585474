"""The in-memory signal table: the daemon's output, read by operators and other services.

Per signal: the scaled value, raw value, unit, status, error and timestamp; per device:
status, last error, last success and counters. Writers (the pollers) call
:meth:`SignalTable.update_signal` and friends with the time they own; readers take a
consistent :meth:`SignalTable.snapshot` or :meth:`SignalTable.subscribe` to changes.
Everything runs on the event loop thread, so no locking is needed; subscriber
callbacks are called synchronously and must not block.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from dlmsd.config import Config
from dlmsd.protocol.values import Value

__all__ = [
    "DeviceState",
    "DeviceStatus",
    "ProfileRows",
    "SignalState",
    "SignalStatus",
    "SignalTable",
    "Snapshot",
    "Value",
]



class SignalStatus(enum.Enum):
    OK = "ok"
    ERROR = "error"
    DISABLED = "disabled"


class DeviceStatus(enum.Enum):
    ONLINE = "online"
    OFFLINE = "offline"
    DISABLED = "disabled"


@dataclass(frozen=True)
class SignalState:
    device_alias: str
    signal_alias: str
    signal_name: str
    obis: str
    attribute: int
    value: Value = None
    raw: Any = None
    unit: str = ""
    status: SignalStatus = SignalStatus.ERROR
    error: str | None = "not read yet"
    timestamp: float | None = None  # UNIX time of the last successful read
    stale: bool = False  # the value is the last known one; the device is offline

    def to_json(self) -> dict[str, Any]:
        value: Any = self.value
        if isinstance(value, Decimal):
            # JSON numbers: an exact decimal text, integral values as ints.
            value = int(value) if value == value.to_integral_value() else float(str(value))
        return {
            "device_alias": self.device_alias,
            "signal_alias": self.signal_alias,
            "signal_name": self.signal_name,
            "obis": self.obis,
            "attribute": self.attribute,
            "value": value,
            "raw": self.raw,
            "unit": self.unit,
            "status": self.status.value,
            "error": self.error,
            "timestamp": self.timestamp,
            "stale": self.stale,
        }


@dataclass(frozen=True)
class DeviceState:
    device_alias: str
    port: str
    status: DeviceStatus = DeviceStatus.OFFLINE
    error: str | None = "not connected yet"
    last_ok: float | None = None
    connects: int = 0
    scans: int = 0
    failures: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "device_alias": self.device_alias,
            "port": self.port,
            "status": self.status.value,
            "error": self.error,
            "last_ok": self.last_ok,
            "connects": self.connects,
            "scans": self.scans,
            "failures": self.failures,
        }


def _plain(value: Any) -> Any:
    """A row's values for ``json.dumps``: Decimals as numbers, as signals give them."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(str(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class ProfileRows:
    """New rows of a profile (oldest first), as the poller read them: each row is
    ``{"ts", "values", "units", "status"}`` (and ``events``, ``errors`` when there are
    any), values exact (Decimal for scaled registers)."""

    device_alias: str
    profile_alias: str
    rows: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of the whole table at one moment."""

    devices: tuple[DeviceState, ...]
    signals: tuple[SignalState, ...]
    #: ``--once``: profile alias -> the rows read in that run (None: not collected).
    profiles: dict[str, list[dict[str, Any]]] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "devices": [d.to_json() for d in self.devices],
            "signals": [s.to_json() for s in self.signals],
        }
        if self.profiles is not None:
            out["profiles"] = {alias: [_plain(row) for row in rows]
                               for alias, rows in self.profiles.items()}
        return out


Change = SignalState | DeviceState | ProfileRows
Subscriber = Callable[[Change], None]


@dataclass
class SignalTable:
    """Signal and device states keyed by alias, in configuration order."""

    _signals: dict[str, SignalState] = field(default_factory=dict)
    _devices: dict[str, DeviceState] = field(default_factory=dict)
    _subscribers: list[Subscriber] = field(default_factory=list)

    @classmethod
    def from_config(cls, config: Config) -> SignalTable:
        table = cls()
        table.load(config)
        return table

    def load(self, config: Config) -> None:
        """(Re)build the table for a configuration; keeps values of unchanged signals."""
        old_signals, old_devices = self._signals, self._devices
        self._devices = {}
        for dev in config.devices:
            device = DeviceState(dev.device_alias, dev.port_name)
            if not dev.enable:
                device = replace(device, status=DeviceStatus.DISABLED, error=None)
            elif dev.device_alias in old_devices:
                device = replace(old_devices[dev.device_alias], port=dev.port_name)
            self._devices[dev.device_alias] = device
        self._signals = {}
        enabled = {d.device_alias for d in config.devices if d.enable}
        for sig in config.signals:
            state = SignalState(
                sig.device_alias, sig.signal_alias, sig.signal_name, str(sig.obis),
                sig.attribute,
            )
            if not sig.enable or sig.device_alias not in enabled:
                state = replace(state, status=SignalStatus.DISABLED, error=None)
            else:
                old = old_signals.get(sig.signal_alias)
                if old is not None and (old.obis, old.attribute, old.device_alias) == (
                    state.obis, state.attribute, state.device_alias
                ) and old.status is not SignalStatus.DISABLED:
                    state = replace(old, signal_name=sig.signal_name)
            self._signals[sig.signal_alias] = state

    # -- readers ----------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return Snapshot(tuple(self._devices.values()), tuple(self._signals.values()))

    def signal(self, alias: str) -> SignalState:
        return self._signals[alias]

    def device(self, alias: str) -> DeviceState:
        return self._devices[alias]

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every changed state; returns the unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    # -- writers (pollers) --------------------------------------------------------

    def _notify(self, change: Change) -> None:
        for callback in list(self._subscribers):
            callback(change)

    def update_signal(self, alias: str, *, value: Value, raw: Any, unit: str,
                      now: float) -> SignalState:
        """Publish a successful read. Returns the new state."""
        old = self._signals[alias]
        # built directly (not dataclasses.replace, which costs several times more on
        # the path every read takes); the same fields, by keyword
        new = SignalState(device_alias=old.device_alias, signal_alias=old.signal_alias,
                          signal_name=old.signal_name, obis=old.obis, attribute=old.attribute,
                          value=value, raw=raw, unit=unit, status=SignalStatus.OK, error=None,
                          timestamp=now, stale=False)
        self._signals[alias] = new
        if new != old:
            self._notify(new)
        return new

    def fail_signal(self, alias: str, error: str) -> SignalState:
        """Mark one signal as failed; its last value is kept and marked stale."""
        old = self._signals[alias]
        new = replace(old, status=SignalStatus.ERROR, error=error,
                      stale=old.timestamp is not None)
        self._signals[alias] = new
        if new != old:
            self._notify(new)
        return new

    def device_online(self, alias: str, *, now: float, scanned: bool = True) -> None:
        old = self._devices[alias]
        # built directly, as in update_signal: once per scan
        new = DeviceState(device_alias=old.device_alias, port=old.port,
                          status=DeviceStatus.ONLINE, error=None, last_ok=now,
                          connects=old.connects, scans=old.scans + (1 if scanned else 0),
                          failures=old.failures)
        self._devices[alias] = new
        if (new.status, new.error) != (old.status, old.error):
            self._notify(new)

    def publish_rows(self, device_alias: str, profile_alias: str,
                     rows: Iterable[dict[str, Any]]) -> None:
        """New rows of a profile: to the subscribers (the outputs), not kept here."""
        change = ProfileRows(device_alias, profile_alias, tuple(rows))
        if change.rows:
            self._notify(change)

    def device_connected(self, alias: str) -> None:
        old = self._devices[alias]
        self._devices[alias] = replace(old, connects=old.connects + 1)

    def device_offline(self, alias: str, error: str, signals: Iterable[str]) -> None:
        """The device failed: its enabled signals keep their last values, marked stale."""
        old = self._devices[alias]
        new = replace(old, status=DeviceStatus.OFFLINE, error=error,
                      failures=old.failures + 1)
        self._devices[alias] = new
        if (new.status, new.error) != (old.status, old.error):
            self._notify(new)
        for sig in signals:
            if self._signals[sig].status is not SignalStatus.DISABLED:
                self.fail_signal(sig, f"device offline: {error}")
