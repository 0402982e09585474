"""``dlms-sim`` on a serial line (the asyncio I/O shell of :mod:`dlmsd.sim.line`).

Two kinds of line:

* ``--pty``: the simulator creates a pseudo-terminal pair, keeps the master side and
  announces the other side's path (``serial=/dev/pts/N``) for the daemon to open as
  its ``device``.  A pty moves bytes at memory speed whatever the baud rate; the line
  settings the simulator switches to are recorded, not enforced, unless ``--pace``:
  then each chunk read is held for its time on the wire before it is processed and
  each chunk written is held for its time on the wire before it is sent, at the
  current settings (start, data, parity and stop bits per character), so the client
  sees the timing of a real line at that rate (one direction at a time, as on
  RS-485).
* ``--serial DEVICE``: a real port (or a pyserial URL) opened exclusively through
  :class:`~dlmsd.transport.serial.SerialTransport`, which also switches the baud rate
  and framing after the mode E option select, once the ACK has left the wire.

The pure :class:`~dlmsd.sim.line.SerialLine` decides everything; this module reads,
sleeps the reaction time it asks for, writes, reconfigures and logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from datetime import UTC, datetime
from typing import Any, Protocol

from dlmsd.errors import DlmsTimeout, TransportError
from dlmsd.logsetup import get_logger
from dlmsd.sim.fault import FaultPlan, Hold, Trickle, Write
from dlmsd.sim.line import Note, Send, SerialLine, SetLine
from dlmsd.transport.serial import MAX_READ, SerialSettings, SerialTransport

__all__ = ["LinePort", "PtyPort", "SerialSimulator"]

# How long one read waits when the line has no timer of its own (it loops).
_IDLE_READ = 3600.0


class LinePort(Protocol):
    """What the simulator needs from a line (SerialTransport has this shape)."""

    @property
    def peer(self) -> str: ...

    async def open(self, timeout: float) -> None: ...

    async def read(self, timeout: float) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def reconfigure(self, baudrate: int, bytesize: int = 8, parity: str = "N",
                          stopbits: int = 1) -> None: ...

    async def close(self) -> None: ...


class PtyPort:
    """The master side of a new pty pair; ``peer`` is the path of the other side.

    Both descriptors stay open until ``close()``, so a client may open and close the
    other side as often as it likes without the master seeing an error.
    """

    def __init__(self, *, pace: bool = False) -> None:
        self.pace = pace
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self.settings: tuple[int, int, str, int] = (9600, 8, "N", 1)
        self._closed = False

    @property
    def peer(self) -> str:
        return self.path

    def wire_time(self, octets: int) -> float:
        """Seconds ``octets`` characters take at the current line settings."""
        baud, bytesize, parity, stopbits = self.settings
        return octets * (1 + bytesize + (parity.upper() != "N") + stopbits) / baud

    async def _paced(self, octets: int) -> None:
        if self.pace:
            await asyncio.sleep(self.wire_time(octets))

    async def open(self, timeout: float) -> None:
        return None

    async def read(self, timeout: float) -> bytes:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        while True:
            try:
                data = os.read(self._master, MAX_READ)
            except BlockingIOError:
                data = b""
            except OSError as exc:
                raise TransportError(f"pty {self.path}: {exc}") from None
            if data:
                await self._paced(len(data))
                return data
            loop.add_reader(self._master, readable)
            try:
                async with asyncio.timeout(timeout):
                    await ready
            except TimeoutError:
                raise DlmsTimeout(f"pty {self.path}: nothing in {timeout:.3f} s") from None
            finally:
                loop.remove_reader(self._master)
            ready = loop.create_future()

    async def write(self, data: bytes) -> None:
        await self._paced(len(data))
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self._master, view)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            except OSError as exc:
                raise TransportError(f"pty {self.path}: {exc}") from None
            view = view[sent:]

    async def reconfigure(self, baudrate: int, bytesize: int = 8, parity: str = "N",
                          stopbits: int = 1) -> None:
        self.settings = (baudrate, bytesize, parity, stopbits)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            for fd in (self._master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)


def open_port(device: str | None, settings: tuple[int, int, str, int], *,
              pace: bool = False) -> LinePort:
    """A pty when ``device`` is None (``pace``: see the module text), else the named
    port with these settings."""
    if device is None:
        port = PtyPort(pace=pace)
        port.settings = settings
        return port
    baud, bytesize, parity, stopbits = settings
    return SerialTransport(device, SerialSettings(baudrate=baud, databits=bytesize,
                                                  parity=parity, stopbits=stopbits))


class SerialSimulator:
    """Serve ``line`` on ``port`` until ``stop()`` (or the port fails)."""

    def __init__(self, line: SerialLine, port: LinePort, log: Any | None = None,
                 trace_log: Any | None = None, describe: Any | None = None,
                 plan: FaultPlan | None = None) -> None:
        self.line = line
        #: ``--fault``: applied to the HDLC frames (not to the mode E opening).
        self.plan = plan if plan is not None and plan.active else None
        self.port = port
        self.log = (log if log is not None else get_logger(component="dlms-sim")).bind(
            line=port.peer)
        self._trace_log = trace_log
        self._describe = describe
        self._task: asyncio.Task[None] | None = None
        self.error: str | None = None

    def trace(self, physical: int, direction: str, data: bytes, summary: str) -> None:
        """A :data:`dlmsd.sim.line.FrameHook` for the line's HDLC links."""
        if self._trace_log is not None:
            self._trace_log.info(f"frame_{direction}", physical=physical,
                                 hex=data.hex(" ").upper(), summary=summary)

    async def start(self) -> None:
        """Open the port (raises TransportError); serving runs in a task."""
        await self.port.open(5.0)
        self._task = asyncio.create_task(self._serve(), name=f"dlms-sim {self.port.peer}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.port.close()

    async def _serve(self) -> None:
        line, port = self.line, self.port
        try:
            while True:
                wait = line.timeout()
                try:
                    data = await port.read(_IDLE_READ if wait is None else wait)
                except DlmsTimeout:
                    if wait is not None:
                        await self._act(line.on_timeout())
                    continue
                if self._trace_log is not None and line.in_opening:
                    self._trace_log.info("frame_rx", hex=data.hex(" ").upper(),
                                         summary=f"IEC 62056-21 {data!r}")
                if self.plan is not None and not line.in_opening:
                    dropped = self.plan.dropped_requests()
                    data = self.plan.incoming(data)
                    if self.plan.dropped_requests() != dropped:
                        self.log.debug("fault", action="request dropped",
                                       count=self.plan.dropped_requests())
                actions = line.receive_data(data, datetime.now(UTC))
                if self.plan is not None and self.plan.note:
                    self.log.debug("fault", action=self.plan.note)
                    self.plan.note = ""
                await self._act(actions)
        except TransportError as exc:
            self.error = str(exc)
            self.log.error("line_failed", error=str(exc))
        except Exception:  # a bug must be visible, and must not hang the caller
            self.error = "internal error"
            self.log.exception("line_failed")

    async def _faulty(self, data: bytes) -> None:
        """Send ``data`` as the fault plan says (the faults a line can carry)."""
        assert self.plan is not None
        for step in self.plan.outgoing(data):
            if step.note:
                self.log.debug("fault", action=step.note)
            if isinstance(step, Write):
                if step.data:
                    await self.port.write(step.data)
            elif isinstance(step, Hold):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Trickle):
                for octet in step.data:
                    await self.port.write(bytes([octet]))
                    await asyncio.sleep(step.interval)
            # Silence: nothing; Flood and Close are refused on a line (check_faults).

    async def _act(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Send):
                if action.delay:
                    await asyncio.sleep(action.delay)
                if self._trace_log is not None and self.line.in_opening:
                    self._trace_log.info("frame_tx", hex=action.data.hex(" ").upper(),
                                         summary=f"IEC 62056-21 {action.data!r}")
                if self.plan is not None and not self.line.in_opening:
                    await self._faulty(action.data)
                else:
                    await self.port.write(action.data)
            elif isinstance(action, SetLine):
                await self.port.reconfigure(*action.settings)
                self.log.debug("line_settings", settings=action.settings)
            elif isinstance(action, Note):
                fields = dict(action.fields)
                if action.event == "apdu" and self._describe is not None:
                    request, response = fields["request"], fields["response"]
                    fields["request"] = self._describe(request)
                    fields["response"] = self._describe(response) if response else "none"
                    self.log.debug("apdu", **fields)
                elif action.event != "apdu":
                    self.log.info(action.event, **fields)
