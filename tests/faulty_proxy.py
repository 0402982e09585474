"""A TCP proxy that loses, corrupts and delays whole frames (HDLC or wrapper) between a
client and a meter: a noisy line for tests against real peers (gurux_dlms's meter,
``dlms-sim``).

Frames are counted per direction from 1, across connections.  ``drop_to_meter={2}``
drops the second frame the client sends; ``corrupt_to_client={3}`` flips the last
octet before the closing flag (HDLC: a bad FCS) of the meter's third frame;
``delay_to_client={1: 2.0}`` holds the meter's first frame for 2 s (and, the line being
a stream, what follows it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Container
from dataclasses import dataclass, field

__all__ = ["Faults", "FaultyProxy", "split_frames"]


def split_frames(kind: str, buffer: bytearray) -> list[bytes]:
    """Take the whole frames off the front of ``buffer``."""
    frames: list[bytes] = []
    while buffer:
        if kind == "hdlc":
            start = buffer.find(0x7E)
            if start < 0 or len(buffer) < start + 3:
                break
            # IEC 62056-46 frame format field: type 0xA, segmentation bit, 11-bit length
            # (the frame without its flags).
            length = ((buffer[start + 1] & 0x07) << 8) | buffer[start + 2]
            end = start + length + 2
        else:
            if len(buffer) < 8:
                break
            start, end = 0, 8 + int.from_bytes(buffer[6:8], "big")
        if len(buffer) < end:
            break
        frames.append(bytes(buffer[start:end]))
        del buffer[:end]
    return frames


@dataclass(kw_only=True)
class Faults:
    """Which frames to lose, corrupt or hold, per direction, and what was done (``log``);
    the relays (this TCP proxy, ``pty_faults.PtyFaults``) apply it to whole frames."""

    drop_to_meter: Container[int] = field(default_factory=set)
    drop_to_client: Container[int] = field(default_factory=set)
    corrupt_to_meter: Container[int] = field(default_factory=set)
    corrupt_to_client: Container[int] = field(default_factory=set)
    delay_to_client: dict[int, float] = field(default_factory=dict)
    to_meter: int = 0
    to_client: int = 0
    log: list[str] = field(default_factory=list)

    def apply(self, frame: bytes, *, to_meter: bool) -> tuple[bytes | None, float]:
        """Count ``frame``; what to forward (None: lost) and how long to hold it."""
        if to_meter:
            self.to_meter += 1
            number, drop, corrupt = self.to_meter, self.drop_to_meter, self.corrupt_to_meter
            delay = 0.0
        else:
            self.to_client += 1
            number, drop, corrupt = self.to_client, self.drop_to_client, \
                self.corrupt_to_client
            delay = self.delay_to_client.get(number, 0.0)
        where = "meter" if to_meter else "client"
        if number in drop:
            self.log.append(f"dropped frame {number} to the {where}")
            return None, 0.0
        if number in corrupt:
            frame = frame[:-2] + bytes([frame[-2] ^ 0xFF]) + frame[-1:]
            self.log.append(f"corrupted frame {number} to the {where}")
        if delay:
            self.log.append(f"frame {number} to the {where} held {delay:.2f} s")
        return frame, delay


@dataclass
class FaultyProxy(Faults):
    kind: str  # "hdlc" or "wrapper"
    meter_port: int
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> FaultyProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        me = asyncio.current_task()
        while pending := [t for t in self._tasks if t is not me and not t.done()]:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()
        await self._server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader,
                      client_w: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        if me is not None:
            self._tasks.add(me)
        try:
            meter_r, meter_w = await asyncio.open_connection("127.0.0.1", self.meter_port)
        except BaseException:
            client_w.close()  # no unclosed transport (ResourceWarning)
            raise
        up = asyncio.create_task(self._pump(client_r, meter_w, to_meter=True))
        down = asyncio.create_task(self._pump(meter_r, client_w, to_meter=False))
        self._tasks |= {up, down}
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for writer in (client_w, meter_w):
                writer.close()
            for task in (up, down):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task
                self._tasks.discard(task)
            # close both before waiting (a cancel while waiting must not leave one open)
            for writer in (client_w, meter_w):
                writer.close()
            for writer in (client_w, meter_w):
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await writer.wait_closed()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                    to_meter: bool) -> None:
        buffer = bytearray()
        loop = asyncio.get_running_loop()
        free_at = loop.time()  # a delayed frame holds back what comes after it
        while data := await reader.read(4096):
            buffer += data
            for whole in split_frames(self.kind, buffer):
                frame, delay = self.apply(whole, to_meter=to_meter)
                if frame is None:
                    continue
                free_at = max(free_at, loop.time() + delay)
                if free_at > loop.time():
                    await asyncio.sleep(free_at - loop.time())
                writer.write(frame)
                await writer.drain()
