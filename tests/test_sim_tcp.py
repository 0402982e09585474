"""dlms-sim over real loopback TCP (the Simulator in this event loop), read by dlmsd's
own HDLC / wrapper client connections and LN client; garbage, many clients, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from dlmsd.protocol import hdlc, hdlc_frame, wrapper
from dlmsd.protocol.axdr import Data
from dlmsd.protocol.client import (
    Associated,
    GetComplete,
    LnClient,
    Released,
    SendApdu,
    WithListRefused,
)
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.xdlms import CosemAttributeDescriptor, GetDataResult
from dlmsd.sim.cli import SimSettings, Simulator
from dlmsd.sim.model import Meter, MeterModel, bundled_model_path, load_model
from dlmsd.sim.server import MeterServer

TIMEOUT = 5.0
BUNDLED = load_model(bundled_model_path())


def desc(class_id: int, obis: str, attribute: int) -> CosemAttributeDescriptor:
    return CosemAttributeDescriptor(class_id, Obis.parse(obis), attribute)


DEMO_HDLC = [desc(3, "1.0.1.8.0.255", 2), desc(3, "1.0.1.8.0.255", 3),
             desc(3, "1.0.2.8.0.255", 2), desc(3, "1.0.32.7.0.255", 2),
             desc(3, "1.0.32.7.0.255", 3), desc(3, "1.0.31.7.0.255", 2),
             desc(3, "1.0.31.7.0.255", 3), desc(3, "1.0.14.7.0.255", 2),
             desc(3, "1.0.14.7.0.255", 3), desc(8, "0.0.1.0.0.255", 2)]
DEMO_WRAPPER = [desc(3, "1.0.1.8.0.255", 2), desc(3, "1.0.1.7.0.255", 2),
                desc(3, "1.0.1.7.0.255", 3), desc(1, "0.0.96.1.0.255", 2)]
OBJECT_LIST = desc(15, "0.0.40.0.0.255", 2)


def expected(meter: Meter, server: MeterServer,
             descriptors: Sequence[CosemAttributeDescriptor]) -> tuple[GetDataResult, ...]:
    now = datetime.now(UTC)
    return tuple(meter.read(d.class_id, d.instance_id, d.attribute_id, now=now,
                            association=server.association_view) for d in descriptors)


class TcpMeterClient:
    """dlmsd's client ends (HDLC or wrapper link + LnClient) over an asyncio stream."""

    def __init__(self, kind: str, port: int, *, client_sap: int = 16,
                 server_address: bytes = hdlc_frame.encode_server_address(1, 1, 2),
                 max_info: int = 128, max_pdu: int = 0xFFFF) -> None:
        self.kind = kind
        self.port = port
        self.hdlc = hdlc.HdlcClientConnection(client_sap, server_address,
                                              max_info_tx=max_info, max_info_rx=max_info)
        self.wrapper = wrapper.WrapperConnection(client_sap, 1)
        self.client = LnClient(max_receive_pdu_size=max_pdu)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.responses = 0

    async def _events(self, first: bytes) -> Any:
        """Send ``first``; return the next link event (HDLC) or APDU (wrapper)."""
        assert self.reader is not None and self.writer is not None
        self.writer.write(first)
        await self.writer.drain()
        while True:
            if self.kind == "hdlc":
                event = self.hdlc.next_event()
                if event is not hdlc_frame.NEED_DATA:
                    return event
                pending = self.hdlc.data_to_send()
                if pending:
                    self.writer.write(pending)
                    await self.writer.drain()
            else:
                wevent = self.wrapper.next_event()
                if wevent is not wrapper.NEED_DATA:
                    assert isinstance(wevent, wrapper.ApduReceived)
                    return wevent.apdu
            data = await asyncio.wait_for(self.reader.read(4096), TIMEOUT)
            if not data:
                raise ConnectionError("the simulator closed the connection")
            if self.kind == "hdlc":
                self.hdlc.receive_data(data)
            else:
                self.wrapper.receive_data(data)

    async def request(self, apdu: bytes) -> bytes:
        self.responses += 1
        if self.kind == "wrapper":
            answer = await self._events(self.wrapper.send_apdu(apdu))
            assert isinstance(answer, bytes)
            return answer
        event = await self._events(self.hdlc.send_apdu(apdu))
        assert isinstance(event, hdlc.ApduReceived), event
        return event.apdu

    async def open(self) -> Associated:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        if self.kind == "hdlc":
            event = await self._events(self.hdlc.connect())
            assert isinstance(event, hdlc.Connected), event
        associated = self.client.receive_apdu(await self.request(self.client.associate()))
        assert isinstance(associated, Associated)
        return associated

    async def get(self, *descriptors: CosemAttributeDescriptor) -> GetComplete | WithListRefused:
        event = self.client.receive_apdu(await self.request(self.client.get(list(descriptors))))
        while isinstance(event, SendApdu):
            event = self.client.receive_apdu(await self.request(event.apdu))
        assert isinstance(event, GetComplete | WithListRefused)
        return event

    async def close(self) -> None:
        try:
            if self.reader is not None:
                released = self.client.receive_apdu(await self.request(self.client.release()))
                assert isinstance(released, Released)
                if self.kind == "hdlc":
                    event = await self._events(self.hdlc.disconnect())
                    assert isinstance(event, hdlc.Disconnected)
        finally:
            if self.writer is not None:
                self.writer.close()
                with contextlib.suppress(OSError):
                    await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def meter_client(kind: str, port: int, **kwargs: Any) -> AsyncIterator[TcpMeterClient]:
    client = TcpMeterClient(kind, port, **kwargs)
    await client.open()
    try:
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def simulator(model: MeterModel = BUNDLED, **settings: Any) -> AsyncIterator[Simulator]:
    sim = Simulator(Meter(model), SimSettings(hdlc_port=0, wrapper_port=0, **settings),
                    log=structlog.get_logger("test-sim"))
    async with sim:
        yield sim


def port(sim: Simulator, kind: str) -> int:
    return sim.addresses[kind][1]


# ------------------------------------------------------------------ reading
@pytest.mark.parametrize(("kind", "descriptors"), [("hdlc", DEMO_HDLC),
                                                    ("wrapper", DEMO_WRAPPER)])
async def test_the_demo_signals_with_list_and_one_by_one(
        kind: str, descriptors: list[CosemAttributeDescriptor]) -> None:
    async with simulator() as sim, meter_client(kind, port(sim, kind)) as client:
        server = MeterServer(sim.meter, sim.settings.options)
        want = expected(sim.meter, server, descriptors)
        together = await client.get(*descriptors)
        assert isinstance(together, GetComplete) and together.results == want
        for descriptor, value in zip(descriptors, want, strict=True):
            single = await client.get(descriptor)
            assert isinstance(single, GetComplete) and single.results == (value,)
        assert want[0] == Data.uint32(123456)


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
async def test_object_list_with_segmentation_and_block_transfer(kind: str) -> None:
    async with simulator(max_pdu=128, max_info=32) as sim, meter_client(
            kind, port(sim, kind), max_info=128) as client:
        associated = client.client
        assert associated.server_max_receive_pdu_size == 128
        if kind == "hdlc":
            assert client.hdlc.params is not None and client.hdlc.params.max_info_rx == 32
        before = client.responses
        event = await client.get(OBJECT_LIST)
        assert isinstance(event, GetComplete)
        server = MeterServer(sim.meter, sim.settings.options)
        assert event.results == expected(sim.meter, server, [OBJECT_LIST])
        assert client.responses - before > 10  # GET-Response-With-Datablock, block by block


async def test_no_get_with_list_is_refused_and_single_gets_work() -> None:
    async with simulator(get_with_list=False) as sim, meter_client(
            "wrapper", port(sim, "wrapper")) as client:
        assert not client.client.supports_with_list
        client.client.conformance |= client.client.conformance.MULTIPLE_REFERENCES
        refused = await client.get(*DEMO_WRAPPER)
        assert isinstance(refused, WithListRefused)
        client.client.conformance &= ~client.client.conformance.MULTIPLE_REFERENCES
        single = await client.get(DEMO_WRAPPER[0])
        assert isinstance(single, GetComplete) and single.results == (Data.uint32(123456),)


async def test_several_clients_at_once() -> None:
    async with simulator() as sim:
        async def one(kind: str, n: int) -> tuple[GetDataResult, ...]:
            async with meter_client(kind, port(sim, kind), max_pdu=64 + 16 * n) as client:
                results: tuple[GetDataResult, ...] = ()
                for _ in range(3):
                    event = await client.get(OBJECT_LIST, *DEMO_WRAPPER)
                    assert isinstance(event, GetComplete)
                    results = event.results
                return results

        outcomes = await asyncio.gather(*(one(kind, n) for n in range(4)
                                          for kind in ("hdlc", "wrapper")))
        assert len({tuple(map(str, o)) for o in outcomes}) == 1
        assert sim.connections == 8


async def test_other_client_address_gets_no_answer() -> None:
    async with simulator() as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", port(sim, "hdlc"))
        stranger = hdlc.HdlcClientConnection(1, hdlc_frame.encode_server_address(1, 1, 2))
        writer.write(stranger.connect())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(100), 0.3)
        writer.close()
        await writer.wait_closed()


# ------------------------------------------------------------------ robustness
async def test_garbage_vanishing_and_oversize_clients_do_not_crash_the_sim() -> None:
    async with simulator(max_info=32) as sim:
        hdlc_port, wrapper_port = port(sim, "hdlc"), port(sim, "wrapper")
        # 1. random bytes on HDLC, then a clean close.
        reader, writer = await asyncio.open_connection("127.0.0.1", hdlc_port)
        writer.write(os.urandom(3000) + b"\x7e\xa0\x07\x03\x21\x93\x00\x00\x7e" + os.urandom(50))
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        # 2. an HDLC frame far larger than the negotiated maximum, then vanish (RST).
        client = TcpMeterClient("hdlc", hdlc_port, max_info=32)
        await client.open()
        assert client.writer is not None
        big = hdlc_frame.Frame(hdlc_frame.HdlcAddress(1, 1, 2), hdlc_frame.HdlcAddress(16),
                               hdlc_frame.Control(hdlc_frame.FrameType.I, True, 1, 1),
                               b"\xe6\xe6\x00" + bytes(1500))
        client.writer.write(big.to_bytes())
        await client.writer.drain()
        client.writer.transport.abort()
        # 3. a wrapper length above the maximum APDU: the sim closes that stream.
        reader, writer = await asyncio.open_connection("127.0.0.1", wrapper_port)
        writer.write(b"\x00\x01\x00\x10\x00\x01\xff\xff" + bytes(100))
        assert await asyncio.wait_for(reader.read(100), TIMEOUT) == b""
        writer.close()
        await writer.wait_closed()
        # 4. wrapper garbage (wrong version) after a good association.
        async with meter_client("wrapper", wrapper_port) as good:
            assert good.writer is not None
            good.writer.write(b"GET / HTTP/1.0\r\n\r\n")
            with pytest.raises(ConnectionError):
                await good.get(DEMO_WRAPPER[0])
            good.reader = None  # nothing to release on a closed stream
        # 5. half a frame, then vanish.
        reader, writer = await asyncio.open_connection("127.0.0.1", hdlc_port)
        writer.write(hdlc.HdlcClientConnection(16, hdlc_frame.encode_server_address(1, 1, 2))
                     .connect()[:5])
        await writer.drain()
        writer.transport.abort()
        # The simulator still serves both framings.
        for kind in ("hdlc", "wrapper"):
            async with meter_client(kind, port(sim, kind)) as client:
                event = await client.get(DEMO_WRAPPER[0])
                assert isinstance(event, GetComplete)
                assert event.results == (Data.uint32(123456),)


async def test_requests_before_association_over_tcp() -> None:
    async with simulator() as sim:
        client = TcpMeterClient("wrapper", port(sim, "wrapper"))
        client.reader, client.writer = await asyncio.open_connection(
            "127.0.0.1", port(sim, "wrapper"))
        try:
            answer = await client.request(bytes.fromhex("C001C1000301000108 00FF0200"
                                                        .replace(" ", "")))
            assert answer == bytes.fromhex("D80101")  # service-not-allowed, op-not-possible
        finally:
            client.writer.close()
            await client.writer.wait_closed()


async def test_stop_closes_idle_connections() -> None:
    sim = Simulator(Meter(BUNDLED), SimSettings(wrapper_port=0),
                    log=structlog.get_logger("test-sim"))
    await sim.start()
    try:
        client = TcpMeterClient("wrapper", port(sim, "wrapper"))
        await client.open()
        assert client.reader is not None and client.writer is not None
    finally:
        await sim.stop()
    assert await asyncio.wait_for(client.reader.read(10), TIMEOUT) == b""
    client.writer.close()
    await client.writer.wait_closed()


async def test_live_simulator_values_move_with_time() -> None:
    started = datetime.now(UTC)
    meter = Meter(BUNDLED, live=True, started=started)
    sim = Simulator(meter, SimSettings(wrapper_port=0), log=structlog.get_logger("test-sim"))
    async with sim, meter_client("wrapper", port(sim, "wrapper")) as client:
        event = await client.get(desc(3, "1.0.1.8.0.255", 2), desc(8, "0.0.1.0.0.255", 2))
        assert isinstance(event, GetComplete)
        energy, clock = event.results
        assert isinstance(energy, Data) and isinstance(energy.value, int)
        assert energy.value >= 123456
        assert isinstance(clock, Data)
        shown = clock.as_date_time().to_datetime()
        assert shown is not None and abs((shown - datetime.now(UTC)).total_seconds()) < 5
