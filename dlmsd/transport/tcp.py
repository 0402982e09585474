"""TCP transport: an asyncio stream with bounded, timed reads and writes.

The transport moves bytes only; framing belongs to the pure link layers. Every
wait is bounded by the caller's timeout and raises :class:`~dlmsd.errors.DlmsTimeout`;
connection failures raise :class:`~dlmsd.errors.TransportError` naming the peer.
"""

from __future__ import annotations

import asyncio

from dlmsd.errors import DlmsTimeout, TransportError

__all__ = ["MAX_READ", "TcpTransport"]

MAX_READ = 4096


class TcpTransport:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def peer(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_open(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def open(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        except TimeoutError:
            raise DlmsTimeout(f"TCP connect to {self.peer}: no answer in "
                              f"{timeout * 1000:.0f} ms") from None
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise TransportError(f"TCP connect to {self.peer} failed: {reason}") from None

    async def write(self, data: bytes) -> None:
        if self._writer is None:
            raise TransportError(f"TCP {self.peer}: not connected")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise TransportError(f"TCP {self.peer}: write failed: {exc}") from None

    async def read(self, timeout: float) -> bytes:
        """Some bytes (at most MAX_READ); raises DlmsTimeout, or TransportError on EOF."""
        if self._reader is None:
            raise TransportError(f"TCP {self.peer}: not connected")
        try:
            async with asyncio.timeout(timeout):
                data = await self._reader.read(MAX_READ)
        except TimeoutError:
            raise DlmsTimeout(f"TCP {self.peer}: no answer in {timeout * 1000:.0f} ms") from None
        except (ConnectionError, OSError) as exc:
            raise TransportError(f"TCP {self.peer}: read failed: {exc}") from None
        if not data:
            raise TransportError(f"TCP {self.peer}: connection closed by the meter")
        return data

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        try:
            async with asyncio.timeout(2):
                await writer.wait_closed()
        except (OSError, TimeoutError) as exc:
            # The error the connection was lost with (asyncio keeps it on the stream):
            # its traceback's frames lead back to this writer and the whole session, a
            # cycle that would keep them until a full garbage collection.
            exc.__traceback__ = None
