"""Fake meter sessions for driving pollers and the supervisor without a protocol stack."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dlmsd.config import DeviceConfig
from dlmsd.errors import DlmsdError
from dlmsd.poller import MeterSession, SessionContext
from dlmsd.protocol.reader import AttributeRequest, ReadResult
from dlmsd.trace import FrameTracer


@dataclass
class FakeMeter:
    """Scripted behaviour of one meter, shared by every session made for it."""

    values: dict[str, Any] = field(default_factory=dict)  # signal alias -> value or error str
    open_error: Callable[[], BaseException | None] = lambda: None
    read_error: Callable[[], BaseException | None] = lambda: None
    read_delay: float = 0.0
    opened: int = 0
    closed: int = 0
    reads: int = 0
    open_sessions: int = 0


class FakeSession:
    def __init__(self, meter: FakeMeter, tracer: FrameTracer) -> None:
        self.meter = meter
        self.tracer = tracer
        self.is_open = False

    async def open(self) -> None:
        error = self.meter.open_error()
        self.tracer.frame("tx", b"\x7e\xa0\x07\x03\x21\x93\x0f\x01\x7e", "SNRM (fake)")
        if error is not None:
            raise error
        self.meter.opened += 1
        self.meter.open_sessions += 1
        self.is_open = True

    async def read(self, requests: Sequence[AttributeRequest]) -> list[ReadResult]:
        if self.meter.read_delay:
            await asyncio.sleep(self.meter.read_delay)
        error = self.meter.read_error()
        if error is not None:
            raise error
        self.meter.reads += 1
        results = []
        for req in requests:
            value = self.meter.values.get(req.key, DlmsdError("object-undefined"))
            if isinstance(value, BaseException):
                results.append(ReadResult(req.key, error=str(value)))
            else:
                unit = "Wh" if isinstance(value, Decimal) else ""
                results.append(ReadResult(req.key, value=value, raw=value, unit=unit))
        return results

    async def close(self) -> None:
        if self.is_open:
            self.meter.closed += 1
            self.meter.open_sessions -= 1
            self.is_open = False


def factory_for(meters: dict[str, FakeMeter]) -> Callable[..., MeterSession]:
    def make(device: DeviceConfig, context: SessionContext) -> MeterSession:
        return FakeSession(meters[device.device_alias], context.tracer)

    return make


class FakeClock:
    """Time for a poller under test: ``sleep`` records the wait and moves the clock on
    at once (one event-loop turn, so other tasks run)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.start = start
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.start + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)
