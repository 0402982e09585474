"""The supervisor: one named poller task per enabled device, started and cancelled.

It holds strong references to its tasks, never lets one device's failure touch the
others (each poller supervises itself), and on stop cancels and awaits every task so
that each releases its association. ``reload`` swaps in a new configuration:
pollers of devices whose configuration (or signals) changed are restarted, the others
keep running.

It is the one place that builds serial buses (one per port, shared by the devices on
it; a bus no running device uses any more is forgotten, so that a port's new line
settings take effect after a reload) and gives each poller the session factory and
the invocation counter store of the configuration's ``state_dir``.

Its pollers share ``max_connecting`` places to open an association in: when every
device starts at once (start-up, ``--once``, the reconnects after an outage) at most
that many connect and associate at the same time, and the others wait their turn
before their connect starts.  A reload with another ``max_connecting`` gives the
pollers it starts the new bound (the running ones keep theirs).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from dlmsd.config import Config, DeviceConfig, ProfileConfig, SignalConfig
from dlmsd.counters import CounterStore, open_counter_store
from dlmsd.logsetup import get_logger, get_trace_logger, notice
from dlmsd.poller import Poller, PollStats, SessionFactory
from dlmsd.profile_state import ProfileStateStore
from dlmsd.session import make_session
from dlmsd.signals import Change, ProfileRows, SignalTable, Snapshot
from dlmsd.trace import FrameTracer
from dlmsd.transport.bus import SerialBus
from dlmsd.transport.serial import SerialSettings, SerialTransport

__all__ = ["STOP_TIMEOUT_S", "Supervisor"]

# Every poller releases within its own bound (poller.CLOSE_TIMEOUT_S); this is the
# backstop for one that does not.
STOP_TIMEOUT_S = 30.0


class Supervisor:
    def __init__(
        self,
        config: Config,
        *,
        table: SignalTable | None = None,
        session_factory: SessionFactory | None = None,
        trace: bool = False,
        log: Any = None,
    ) -> None:
        self.config = config
        self.table = table if table is not None else SignalTable.from_config(config)
        # The daemon's sessions (dlmsd.session) unless a caller brings its own.
        self.session_factory = session_factory or make_session
        self.trace = trace
        self.log = log if log is not None else get_logger()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._pollers: dict[str, Poller] = {}
        #: Per device, what its pollers counted (kept across restarts; HTTP /metrics).
        self.stats: dict[str, PollStats] = {}
        self._keys: dict[str, tuple[DeviceConfig, tuple[SignalConfig, ...],
                                    tuple[ProfileConfig, ...]]] = {}
        self._buses: dict[str, SerialBus] = {}
        self._connect_slots = asyncio.Semaphore(config.max_connecting)

    def _bus(self, device: DeviceConfig) -> SerialBus | None:
        """The bus of a serial device: one per port, shared by every device on it (the
        line settings are those of the first device that names the port)."""
        port = device.device
        if device.ip is not None or port is None:
            return None
        bus = self._buses.get(port)
        if bus is None:
            settings = serial_settings(device)
            bus = SerialBus(port, lambda: SerialTransport(port, settings))
            self._buses[port] = bus
        return bus

    def _counters(self) -> CounterStore:
        """The invocation counter store of the configuration's state directory."""
        directory = self.config.state_directory(os.environ)
        return open_counter_store(os.path.join(directory, "counters"))

    def _poller(self, device: DeviceConfig) -> Poller:
        bound = {"device": device.device_alias, "port": device.port_name}
        log = get_logger(**bound)
        # The trace logger prints --dlms only: without it the tracer's log is never used.
        tracer = FrameTracer(get_trace_logger(**bound) if self.trace else log,
                             enabled=self.trace, dump_log=log)
        profiles = self.config.profiles_of(device.device_alias)
        state = None
        if profiles:  # only a device with profiles keeps their state
            directory = self.config.state_directory(os.environ)
            state = ProfileStateStore(os.path.join(directory, "profiles"))
        return Poller(device, self.config.signals_of(device.device_alias), self.table, log,
                      tracer, self.session_factory, bus=self._bus(device),
                      counters=self._counters,
                      stats=self.stats.setdefault(device.device_alias, PollStats()),
                      profiles=profiles, profile_state=state,
                      connect_slots=self._connect_slots)

    def _start(self, device: DeviceConfig, once: bool = False) -> None:
        poller = self._poller(device)
        alias = device.device_alias
        task = asyncio.get_running_loop().create_task(poller.run(once=once),
                                                      name=f"poller:{alias}")
        task.add_done_callback(self._task_done)
        self._tasks[alias] = task
        self._pollers[alias] = poller
        self._keys[alias] = self._key(self.config, alias)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # Poller.run catches everything but cancellation: a bug
            self.log.error("poller_crashed", task=task.get_name(), error=repr(exc))

    @property
    def tasks(self) -> dict[str, asyncio.Task[None]]:
        return dict(self._tasks)

    async def start(self) -> None:
        for device in self.config.devices:
            if device.enable:
                self._start(device)
        self.log.info("started", devices=len(self._tasks))

    async def _stop_tasks(self, aliases: list[str]) -> None:
        tasks = [self._tasks.pop(a) for a in aliases if a in self._tasks]
        for alias in aliases:
            self._pollers.pop(alias, None)
            self._keys.pop(alias, None)
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            for task in pending:  # a poller stuck past its bounded release: say so
                self.log.error("poller_stop_timeout", task=task.get_name(),
                               seconds=STOP_TIMEOUT_S)
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Cancel every poller and wait until each has released its association."""
        await self._stop_tasks(list(self._tasks))
        self.log.info("stopped")

    async def reload(self, config: Config) -> None:
        """Switch to a new (already validated) configuration."""
        if config.max_connecting != self.config.max_connecting:
            self._connect_slots = asyncio.Semaphore(config.max_connecting)
        self.config = config
        aliases = {d.device_alias for d in config.devices}
        changed = [
            alias for alias, key in self._keys.items()
            if alias not in aliases
            or key != self._key(config, alias)
            or not config.device(alias).enable
        ]
        await self._stop_tasks(changed)
        # A port that no running device uses any more is forgotten: its devices get a
        # new bus with the new line settings.
        in_use = {self._keys[alias][0].device for alias in self._tasks}
        self._buses = {port: bus for port, bus in self._buses.items() if port in in_use}
        self.table.load(config)
        for device in config.devices:
            if device.enable and device.device_alias not in self._tasks:
                self._start(device)
        notice(self.log, "reloaded", devices=len(self._tasks), restarted=len(changed))

    @staticmethod
    def _key(config: Config, alias: str) -> tuple[DeviceConfig, tuple[SignalConfig, ...],
                                                  tuple[ProfileConfig, ...]]:
        """What a poller is built from: a change restarts it."""
        return config.device(alias), config.signals_of(alias), config.profiles_of(alias)

    async def run_once(self) -> Snapshot:
        """Poll every enabled device once (in parallel) and return the table, with the
        rows of every enabled profile read in this run (the first read of a profile is
        its backfill) when the configuration has profiles."""
        enabled = {d.device_alias for d in self.config.devices if d.enable}
        rows: dict[str, list[dict[str, Any]]] = {
            p.profile_alias: [] for p in self.config.profiles
            if p.enable and p.device_alias in enabled}

        def collect(change: Change) -> None:
            if isinstance(change, ProfileRows) and change.profile_alias in rows:
                rows[change.profile_alias].extend(change.rows)

        unsubscribe = self.table.subscribe(collect)
        for device in self.config.devices:
            if device.enable:
                self._start(device, once=True)
        try:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        finally:
            unsubscribe()
            await self._stop_tasks(list(self._tasks))
        snapshot = self.table.snapshot()
        if self.config.profiles:
            snapshot = Snapshot(snapshot.devices, snapshot.signals, rows)
        return snapshot


def serial_settings(device: DeviceConfig) -> SerialSettings:
    """The line settings of a serial device's configuration."""
    return SerialSettings(baudrate=device.baudrate, databits=device.databits,
                          parity=device.parity, stopbits=device.stopbits,
                          flowcontrol=device.flowcontrol)
