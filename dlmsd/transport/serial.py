"""Serial transport: a pyserial port driven by the asyncio loop, with bounded waits.

Same shape as :class:`~dlmsd.transport.tcp.TcpTransport` (``open``, ``write``,
``read``, ``close``, ``peer``) plus ``reconfigure`` for the IEC 62056-21
mode E baud rate switch. The transport moves bytes only; the sign-on and the
framing belong to the pure layers.

Why not pyserial-asyncio's ``SerialTransport``: it registers the port's file
descriptor with the loop and so cannot serve URL handlers without one
(``loop://``, which the tests use); on close it calls ``tcdrain()`` inside the
event loop, which blocks the whole daemon when hardware flow control holds the
output back; its write path has no bound; and it reports a vanished device
through the loop's exception handler. Here pyserial opens and configures the
port (``serial_for_url``: device paths and URLs alike, ``exclusive=True``
where supported) and the transport reads and writes the non-blocking
descriptor itself through ``loop.add_reader``/``add_writer``; ports without a
descriptor are polled.

Errors: a port that cannot be opened (missing, locked by another process,
no permission, not a tty) raises :class:`~dlmsd.errors.TransportError` naming
the device and the reason; a port that disappears raises it from ``read`` or
``write``; waits raise :class:`~dlmsd.errors.DlmsTimeout`. ``close`` never
raises and never blocks longer than :data:`CLOSE_DRAIN_MAX`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import termios
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

import serial

from dlmsd.errors import ConfigError, DlmsTimeout, TransportError

__all__ = [
    "CLOSE_DRAIN_MAX",
    "MAX_READ",
    "POLL_INTERVAL",
    "SerialSettings",
    "SerialTransport",
]

MAX_READ: Final = 4096
#: How often ports without a file descriptor (URL handlers) are polled.
POLL_INTERVAL: Final = 0.005
#: Longest ``close()`` waits for pending output before discarding it.
CLOSE_DRAIN_MAX: Final = 1.0
#: Extra time ``reconfigure()`` allows the kernel to report an empty output
#: queue after the estimated end of transmission.
DRAIN_SLACK: Final = 2.0

_PARITIES: Final[dict[str, str]] = {
    "none": serial.PARITY_NONE,
    "even": serial.PARITY_EVEN,
    "odd": serial.PARITY_ODD,
    "n": serial.PARITY_NONE,
    "e": serial.PARITY_EVEN,
    "o": serial.PARITY_ODD,
}
_PARITY_NAMES: Final[dict[str, str]] = {
    serial.PARITY_NONE: "none",
    serial.PARITY_EVEN: "even",
    serial.PARITY_ODD: "odd",
}
_FLOW_CONTROLS: Final = ("none", "rtscts", "xonxoff")


@dataclass(frozen=True)
class SerialSettings:
    """Line settings as the configuration names them.

    ``parity`` is "none", "even" or "odd" (also "N", "E", "O");
    ``flowcontrol`` is "none", "rtscts" or "xonxoff". Invalid values raise
    :class:`ConfigError` listing every problem.
    """

    baudrate: int = 9600
    databits: int = 8
    parity: str = "none"
    stopbits: int = 1
    flowcontrol: str = "none"

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.baudrate, int) or self.baudrate <= 0:
            problems.append(f"baudrate={self.baudrate!r}: a positive integer")
        if self.databits not in (7, 8):
            problems.append(f"databits={self.databits!r}: 7 or 8")
        if str(self.parity).lower() not in _PARITIES:
            problems.append(f"parity={self.parity!r}: none, even or odd")
        if self.stopbits not in (1, 2):
            problems.append(f"stopbits={self.stopbits!r}: 1 or 2")
        if self.flowcontrol not in _FLOW_CONTROLS:
            problems.append(f"flowcontrol={self.flowcontrol!r}: none, rtscts or xonxoff")
        if problems:
            raise ConfigError("serial settings: " + "; ".join(problems), problems)
        # One spelling from here on.
        object.__setattr__(self, "parity", _PARITY_NAMES[_PARITIES[self.parity.lower()]])

    @property
    def bits_per_character(self) -> int:
        """Start bit, data bits, parity bit, stop bits."""
        return 1 + self.databits + (self.parity != "none") + self.stopbits

    def char_time(self) -> float:
        """Seconds one character needs on the wire."""
        return self.bits_per_character / self.baudrate

    def pyserial_kwargs(self) -> dict[str, Any]:
        return {
            "baudrate": self.baudrate,
            "bytesize": self.databits,
            "parity": _PARITIES[self.parity],
            "stopbits": self.stopbits,
            "xonxoff": self.flowcontrol == "xonxoff",
            "rtscts": self.flowcontrol == "rtscts",
        }

    def __str__(self) -> str:
        flow = "" if self.flowcontrol == "none" else f" {self.flowcontrol}"
        return f"{self.baudrate} {self.databits}{self.parity[0].upper()}{self.stopbits}{flow}"


def _open_failure(device: str, exc: BaseException) -> str:
    """A one-line reason why ``device`` could not be opened."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code == errno.ENOENT:
        reason = "no such device"
    elif code in (errno.EACCES, errno.EPERM):
        reason = "permission denied (is the daemon's user in the group owning the device?)"
    elif code in (errno.EAGAIN, errno.EWOULDBLOCK) and "lock" in text.lower():
        reason = "port busy: another process holds it open exclusively"
    elif code == errno.EBUSY:
        reason = "port busy"
    elif code in (errno.ENXIO, errno.ENODEV):
        reason = "device not present (unplugged?)"
    elif "Inappropriate ioctl" in text or code == errno.ENOTTY:
        reason = "not a serial port"
    else:
        reason = text or type(exc).__name__
    return f"serial {device}: cannot open: {reason}"


def _close_quietly(port: Any) -> None:
    with contextlib.suppress(Exception):
        port.reset_output_buffer()
    with contextlib.suppress(Exception):
        port.close()


def _discard_opened(fut: asyncio.Future[Any]) -> None:
    """Done callback for an open we gave up on: close the port if it opened."""
    if not fut.cancelled() and fut.exception() is None:
        _close_quietly(fut.result())


class SerialTransport:
    """One serial port (a device path or a pyserial URL such as ``loop://``).

    ``exclusive``: lock the port (``flock``) so that a second daemon cannot
    share it. ``write_timeout``: longest a write may wait for the kernel to
    take the bytes (flow control can hold them back).
    """

    def __init__(
        self,
        device: str,
        settings: SerialSettings | None = None,
        *,
        exclusive: bool = True,
        write_timeout: float = 5.0,
    ) -> None:
        self.device = device
        self._settings = settings if settings is not None else SerialSettings()
        self.exclusive = exclusive
        self.write_timeout = write_timeout
        self._port: Any = None  # serial.Serial or a URL handler instance
        self._fd: int | None = None
        self._waiters: set[asyncio.Future[Any]] = set()
        # Monotonic (loop) time at which the last written byte has left the
        # UART, estimated from the line settings.
        self._tx_done_at = 0.0

    @property
    def peer(self) -> str:
        return self.device

    @property
    def settings(self) -> SerialSettings:
        return self._settings

    @property
    def is_open(self) -> bool:
        return self._port is not None

    # -- open / close ---------------------------------------------------------
    def _open_blocking(self) -> Any:
        try:
            port = serial.serial_for_url(
                self.device,
                do_not_open=True,
                timeout=0,
                write_timeout=0,
                exclusive=self.exclusive,
                **self._settings.pyserial_kwargs(),
            )
            port.open()
        except (serial.SerialException, OSError, ValueError, termios.error) as exc:
            raise TransportError(_open_failure(self.device, exc)) from None
        return port

    async def open(self, timeout: float) -> None:
        """Open and configure the port. Opening runs in a worker thread so that
        a slow device (or a network URL) cannot stall the loop."""
        if self._port is not None:
            return
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, self._open_blocking)
        try:
            async with asyncio.timeout(timeout):
                port = await asyncio.shield(fut)
        except TimeoutError:
            fut.add_done_callback(_discard_opened)
            raise DlmsTimeout(
                f"serial {self.device}: not opened in {timeout * 1000:.0f} ms"
            ) from None
        except asyncio.CancelledError:
            fut.add_done_callback(_discard_opened)
            raise
        fd: int | None
        try:
            fd = port.fileno()
            os.set_blocking(fd, False)
        except (OSError, ValueError, AttributeError, serial.SerialException):
            # A URL handler without a descriptor: reads are polled, writes run
            # in a worker thread with pyserial's own bound.
            fd = None
            port.write_timeout = self.write_timeout
        self._port, self._fd = port, fd
        self._tx_done_at = 0.0

    async def close(self) -> None:
        """Close the port: pending output gets at most ``CLOSE_DRAIN_MAX`` to
        leave, then is discarded (closing a tty whose output is held back by
        flow control would otherwise block for the driver's closing_wait,
        30 s on Linux). Never raises (cancellation excepted) and wakes any
        pending ``read``/``write`` with :class:`TransportError`."""
        port, fd = self._port, self._fd
        if port is None:
            return
        self._port = self._fd = None
        self._wake_waiters(TransportError(f"serial {self.device}: closed"))
        if fd is not None:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)
            with contextlib.suppress(Exception):
                loop.remove_writer(fd)
        try:
            if fd is not None:
                # A vanished port has nothing left to drain.
                with contextlib.suppress(Exception):
                    await self._wait_output_empty(port, CLOSE_DRAIN_MAX, raise_timeout=False)
        finally:
            _close_quietly(port)

    def _wake_waiters(self, exc: TransportError) -> None:
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_exception(exc)
        self._waiters.clear()

    # -- write ----------------------------------------------------------------
    def _require_open(self) -> Any:
        if self._port is None:
            raise TransportError(f"serial {self.device}: not open")
        return self._port

    def _note_sent(self, count: int) -> None:
        now = asyncio.get_running_loop().time()
        start = max(now, self._tx_done_at)
        self._tx_done_at = start + count * self._settings.char_time()

    async def write(self, data: bytes) -> None:
        """Hand ``data`` to the kernel (not: wait until it is on the wire; see
        ``reconfigure``). Raises TransportError if the port failed, DlmsTimeout
        if the kernel did not take the bytes within ``write_timeout``."""
        port = self._require_open()
        fd = self._fd
        if fd is None:
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, port.write, data)
            except serial.SerialTimeoutException:
                raise DlmsTimeout(
                    f"serial {self.device}: write not taken in"
                    f" {self.write_timeout * 1000:.0f} ms"
                ) from None
            except (serial.SerialException, OSError) as exc:
                raise TransportError(f"serial {self.device}: write failed: {exc}") from None
            self._note_sent(len(data))
            return
        view = memoryview(data)
        try:
            async with asyncio.timeout(self.write_timeout):
                while view:
                    try:
                        sent = os.write(fd, view)
                    except BlockingIOError:
                        sent = 0
                    except OSError as exc:
                        raise TransportError(
                            f"serial {self.device}: write failed: {exc.strerror or exc}"
                            " (device gone?)"
                        ) from None
                    view = view[sent:]
                    if view:
                        await self._wait_fd(fd, writable=True)
        except TimeoutError:
            raise DlmsTimeout(
                f"serial {self.device}: {len(view)} of {len(data)} bytes not taken in"
                f" {self.write_timeout * 1000:.0f} ms (flow control holding the line?)"
            ) from None
        finally:
            self._note_sent(len(data) - len(view))

    async def _wait_fd(self, fd: int, *, writable: bool) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        add: Callable[..., None] = loop.add_writer if writable else loop.add_reader
        remove: Callable[[int], bool] = loop.remove_writer if writable else loop.remove_reader
        add(fd, ready)
        self._waiters.add(fut)
        try:
            await fut
        finally:
            self._waiters.discard(fut)
            if self._fd == fd:
                remove(fd)

    # -- read -----------------------------------------------------------------
    async def read(self, timeout: float) -> bytes:
        """Some bytes (at most MAX_READ); raises DlmsTimeout, or TransportError
        when the port fails or disappears."""
        port = self._require_open()
        fd = self._fd
        try:
            async with asyncio.timeout(timeout):
                if fd is None:
                    return await self._poll_read(port)
                return await self._fd_read(fd)
        except TimeoutError:
            raise DlmsTimeout(
                f"serial {self.device}: no answer in {timeout * 1000:.0f} ms"
            ) from None

    async def _fd_read(self, fd: int) -> bytes:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()

        def readable() -> None:
            if fut.done():  # nobody waits any more: leave the bytes in the kernel
                return
            try:
                data = os.read(fd, MAX_READ)
            except BlockingIOError:
                return
            except OSError as exc:
                fut.set_exception(
                    TransportError(
                        f"serial {self.device}: read failed: {exc.strerror or exc}"
                        " (device gone?)"
                    )
                )
                return
            if data:
                fut.set_result(data)
            else:
                fut.set_exception(
                    TransportError(f"serial {self.device}: end of file (device gone or hung up)")
                )

        loop.add_reader(fd, readable)
        self._waiters.add(fut)
        try:
            return await fut
        finally:
            self._waiters.discard(fut)
            if self._fd == fd:
                loop.remove_reader(fd)

    async def _poll_read(self, port: Any) -> bytes:
        while True:
            if self._port is not port:
                raise TransportError(f"serial {self.device}: closed")
            try:
                waiting = port.in_waiting
                if waiting:
                    data: bytes = port.read(min(waiting, MAX_READ))
                    return data
            except (serial.SerialException, OSError) as exc:
                raise TransportError(f"serial {self.device}: read failed: {exc}") from None
            await asyncio.sleep(POLL_INTERVAL)

    # -- reconfigure ----------------------------------------------------------
    async def _wait_output_empty(self, port: Any, limit: float, *, raise_timeout: bool) -> None:
        """Wait until the estimated end of transmission, then until the kernel
        reports an empty output queue, for at most ``limit`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        # One more character time: the UART's shift register.
        done_at = self._tx_done_at + self._settings.char_time()
        await asyncio.sleep(max(0.0, min(done_at, deadline) - loop.time()))
        while port.out_waiting > 0:
            if loop.time() >= deadline:
                if raise_timeout:
                    raise DlmsTimeout(
                        f"serial {self.device}: output not sent in {limit * 1000:.0f} ms"
                        " (flow control holding the line?)"
                    )
                return
            await asyncio.sleep(POLL_INTERVAL)

    async def reconfigure(
        self, baudrate: int, bytesize: int = 8, parity: str = "N", stopbits: int = 1
    ) -> None:
        """Change the line settings once everything written so far is on the
        wire (IEC 62056-21 mode E: the option select ACK must leave at the old
        rate before both sides switch). Flow control is kept. Input already
        received stays readable."""
        port = self._require_open()
        new = replace(
            self._settings, baudrate=baudrate, databits=bytesize, parity=parity, stopbits=stopbits
        )
        loop = asyncio.get_running_loop()
        remaining = max(0.0, self._tx_done_at - loop.time())
        try:
            if self._fd is not None:
                await self._wait_output_empty(port, remaining + DRAIN_SLACK, raise_timeout=True)
            else:
                await asyncio.sleep(remaining + self._settings.char_time())
            self._apply(port, new)
        except (serial.SerialException, OSError, ValueError, termios.error) as exc:
            raise TransportError(
                f"serial {self.device}: cannot switch to {new}: {exc}"
            ) from None
        self._settings = new

    @staticmethod
    def _apply(port: Any, new: SerialSettings) -> None:
        """Rate and framing in one ``tcsetattr``. pyserial's public setters
        make one call per attribute, and a call whose result the driver
        normalises to no change fails with EINVAL (seen with Linux ptys, which
        force CS8 without parity); the intermediate states are not wanted on a
        real line either. pyserial 3.x keeps the values in ``_baudrate`` etc.
        and applies them with ``_reconfigure_port()``; without those, fall back
        to the setters."""
        kwargs = new.pyserial_kwargs()
        keys = ("baudrate", "bytesize", "parity", "stopbits")
        if not all(hasattr(port, "_" + key) for key in keys) or not hasattr(
            port, "_reconfigure_port"
        ):
            port.apply_settings({key: kwargs[key] for key in keys})
            return
        old = {key: getattr(port, "_" + key) for key in keys}
        for key in keys:
            setattr(port, "_" + key, kwargs[key])
        try:
            port._reconfigure_port()
        except BaseException:
            for key, value in old.items():
                setattr(port, "_" + key, value)
            raise
