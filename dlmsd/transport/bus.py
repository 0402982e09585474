"""A serial line shared by several meters (an RS-485 bus): one exchange at a time.

Every device whose ``device`` names the same serial port is on one :class:`SerialBus`.
The bus owns the port (opened by the first user, closed by the last) and a FIFO turn:
a poller holds the turn for one step (an association, or one scan) and then queues
again behind the others, so the meters on a bus are served round-robin and none is
starved. Each meter keeps its own HDLC link and association open between its turns
(HDLC frames carry the server address, so the meters do not hear each other); its
timeouts run only while it holds the turn, so waiting for the bus never makes a
meter look dead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from dlmsd.errors import TransportError

__all__ = ["BusTransport", "LineTransport", "SerialBus"]


class LineTransport(Protocol):
    """What the bus needs of the port it shares (dlmsd.transport.serial)."""

    @property
    def peer(self) -> str: ...

    @property
    def is_open(self) -> bool: ...

    async def open(self, timeout: float) -> None: ...
    async def write(self, data: bytes) -> None: ...
    async def read(self, timeout: float) -> bytes: ...
    async def close(self) -> None: ...


class SerialBus:
    """One serial port and the FIFO turn of the meters that share it."""

    def __init__(self, name: str, make_port: Callable[[], LineTransport]) -> None:
        self.name = name
        self._make_port = make_port
        self._port: LineTransport | None = None
        self._users = 0
        self._turn = asyncio.Lock()  # asyncio.Lock wakes its waiters in FIFO order
        self.holder: str | None = None
        self.turns = 0

    @contextlib.asynccontextmanager
    async def turn(self, who: str) -> AsyncIterator[None]:
        """Hold the bus for one step; the others wait their turn in arrival order."""
        async with self._turn:
            self.holder = who
            self.turns += 1
            try:
                yield
            finally:
                self.holder = None
        # Let a waiter that was queued behind us run before we queue again.
        await asyncio.sleep(0)

    async def attach(self, timeout: float) -> LineTransport:
        """Open the port if nobody has it open yet; count the user."""
        if self._port is None or not self._port.is_open:
            port = self._make_port()
            await port.open(timeout)
            self._port = port
        self._users += 1
        return self._port

    async def detach(self) -> None:
        """One user is done; the last one closes the port."""
        self._users = max(0, self._users - 1)
        if self._users == 0 and self._port is not None:
            port, self._port = self._port, None
            await port.close()

    async def reset(self) -> None:
        """The port failed: close it so that the next attach opens it anew."""
        if self._port is not None:
            port, self._port = self._port, None
            await port.close()


class BusTransport:
    """A meter's view of a shared bus, with the transport interface of the session."""

    def __init__(self, bus: SerialBus) -> None:
        self.bus = bus
        self._port: LineTransport | None = None

    @property
    def peer(self) -> str:
        return self.bus.name

    @property
    def port(self) -> Any:
        """The shared port (for a line-settings change during the mode E opening)."""
        return self._port

    async def open(self, timeout: float) -> None:
        self._port = await self.bus.attach(timeout)

    def _require(self) -> LineTransport:
        if self._port is None:
            raise TransportError(f"{self.bus.name}: not open")
        return self._port

    async def write(self, data: bytes) -> None:
        try:
            await self._require().write(data)
        except TransportError:
            await self.bus.reset()
            raise

    async def read(self, timeout: float) -> bytes:
        port = self._require()
        try:
            return await port.read(timeout)
        except TransportError as exc:
            if not isinstance(exc, TimeoutError):
                await self.bus.reset()
            raise

    async def close(self) -> None:
        if self._port is not None:
            self._port = None
            await self.bus.detach()
