"""A noisy serial line for tests: two ptys with a relay between them that loses,
corrupts and delays whole HDLC frames (what :mod:`faulty_proxy` does for TCP, with the
same :class:`~faulty_proxy.Faults` and the same frame splitting).

::

    daemon ── opens PtyFaults.path ── (pty pair, ours) ── relay ── opens meter_path ── meter
                                                           drop / corrupt / delay

``meter_path`` is the pty a meter serves: ``dlms-sim --pty`` prints it, and
:func:`gurux_on_pty` serves gurux_dlms's meter on the master of a new pty pair and
gives the path of its other side.  Frames are counted per direction from 1, across
associations, as in :mod:`faulty_proxy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import termios
import threading
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field

from faulty_proxy import Faults, split_frames

__all__ = ["PtyFaults", "gurux_on_pty"]


async def _read(fd: int) -> bytes:
    """What ``fd`` (non-blocking) has, waiting until it has something; b"" at its end."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, 4096)
        except BlockingIOError:
            pass
        except OSError:  # EIO: the other side of a pty is not open (a reopen follows)
            await asyncio.sleep(0.01)
            continue
        ready: asyncio.Future[None] = loop.create_future()

        def readable(ready: asyncio.Future[None] = ready) -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, readable)
        try:
            await ready
        finally:
            loop.remove_reader(fd)


async def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            await asyncio.sleep(0.001)


@dataclass
class PtyFaults(Faults):
    """The relay, as an async context manager; the daemon opens ``path``."""

    meter_path: str
    path: str = ""
    _fds: list[int] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def __aenter__(self) -> PtyFaults:
        master, slave = os.openpty()
        for fd in (master, slave):
            tty.setraw(fd)
        self.path = os.ttyname(slave)
        meter = os.open(self.meter_path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(meter)
        termios.tcflush(meter, termios.TCIFLUSH)  # nothing of an earlier relay's
        # the slave stays open here too, so the daemon may close and reopen it
        self._fds = [master, slave, meter]
        for fd in (master, meter):
            os.set_blocking(fd, False)
        self._tasks = [asyncio.create_task(self._pump(master, meter, to_meter=True)),
                       asyncio.create_task(self._pump(meter, master, to_meter=False))]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    async def _pump(self, source: int, sink: int, *, to_meter: bool) -> None:
        buffer = bytearray()
        loop = asyncio.get_running_loop()
        free_at = loop.time()  # a delayed frame holds back what comes after it
        while data := await _read(source):
            buffer += data
            for whole in split_frames("hdlc", buffer):
                frame, delay = self.apply(whole, to_meter=to_meter)
                if frame is None:
                    continue
                free_at = max(free_at, loop.time() + delay)
                if free_at > loop.time():
                    await asyncio.sleep(free_at - loop.time())
                await _write(sink, frame)


@contextlib.contextmanager
def gurux_on_pty(**options: object) -> Iterator[str]:
    """gurux_dlms's HDLC meter (tests/interop/gurux_meter.py, ``options`` as for
    :class:`GuruxMeter`) serving the master of a new pty pair, in a thread; yields the
    path of the other side.  One line, one meter: gurux's server state lives as long
    as the line (a new SNRM sets its link up again)."""
    from interop.gurux_meter import GuruxMeter, _GuruxServer, _split_frames

    meter = GuruxMeter("hdlc", **options)  # type: ignore[arg-type]
    master, slave = os.openpty()
    for fd in (master, slave):
        tty.setraw(fd)
    stop = threading.Event()

    def serve() -> None:
        server = _GuruxServer(meter)
        buf = bytearray()
        while not stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                buf += os.read(master, 4096)
            except OSError:  # EIO while nobody has the other side open
                stop.wait(0.01)
                continue
            for frame in _split_frames(buf, "hdlc"):
                reply = meter._handle(server, frame)
                if reply:
                    os.write(master, reply)

    thread = threading.Thread(target=serve, name="gurux-meter-pty", daemon=True)
    thread.start()
    try:
        yield os.ttyname(slave)
    finally:
        stop.set()
        thread.join(2.0)
        for fd in (master, slave):
            os.close(fd)
