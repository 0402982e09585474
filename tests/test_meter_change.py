"""Meters that change, and meters that stay: the object list and the scaler_units kept
across associations (dlmsd.protocol.reader.MeterCache), in memory.

Each association is a new reader (as the daemon builds one per association) sharing a
MeterCache, through the harness of tests/test_reader.py (a fake clock and the
simulator's meter end, tests/memory_meter.py).  Expected values are the bundled
model's (dlmsd/sim/meter.json), as in tests/test_reader.py.  The end-to-end tests
against dlms-sim are in tests/test_e2e_counter.py (counters) and at the end of this
file (a meter that drops the connection after a few answers, read by the poller).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from memory_meter import MemoryMeter
from test_reader import (
    BLOCK_CIPHER_KEY,
    ENERGY,
    SERIAL,
    VOLTAGE,
    Session,
    _gmac,
    check,
)

from dlmsd.errors import DlmsTimeout
from dlmsd.protocol.apdu import decode_apdu
from dlmsd.protocol.axdr import Data
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.reader import MeterCache
from dlmsd.protocol.xdlms import GetRequestNormal, GetResponseNormal
from dlmsd.sim.auth import SimSecurity
from dlmsd.sim.model import Meter, bundled_model_path, load_model
from dlmsd.sim.server import MeterServer, Referencing, ServerOptions

OBJECT_LIST = ("0.0.40.0.0.255", 2)
#: VOLTAGE has no class_id: it is addressed through the object list.
SIGNALS = (VOLTAGE, ENERGY, SERIAL)


def reads(session: Session) -> list[tuple[tuple[str, int], ...]]:
    """The (OBIS, attribute) pairs of each data request the meter saw (LN)."""
    return [attrs for attrs in session.meter.attributes_read() if attrs]


def scaler_reads(session: Session) -> int:
    return sum(1 for attrs in reads(session) for _obis, attr in attrs if attr == 3)


def object_list_reads(session: Session) -> int:
    return sum(1 for attrs in reads(session) if OBJECT_LIST in attrs)


def associate_and_read(cache: MeterCache, *signals: Any, **over: Any) -> Session:
    session = Session("hdlc", cache=cache, **over)
    session.open()
    results = session.read(*(signals or SIGNALS))
    if not signals:
        check(results, "voltage", "energy", "serial")
    session.close()
    return session


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
@pytest.mark.parametrize("referencing", ["LN", "SN"])
def test_a_reconnect_reads_neither_the_object_list_nor_the_scaler_units(
        kind: str, referencing: str) -> None:
    """The second association of the same meter sends one request: the values.  The
    first read the object list (LN: VOLTAGE has no class_id; SN: every short name comes
    from it) and the scaler_units too."""
    cache = MeterCache()
    sessions = []
    for _ in range(2):
        session = Session(kind, referencing, cache=cache)
        session.open()
        check(session.read(*SIGNALS), "voltage", "energy", "serial")
        session.close()
        sessions.append(session)
    first, second = sessions
    assert len(first.meter.reads()) >= 3  # the object list, scaler_units, values
    assert len(second.meter.reads()) == 1  # the values, one with-list request
    # round trips of the second: (SNRM), AARQ, the values' GET, RLRQ, (DISC); the first
    # had the object list (in blocks, HDLC segments) and the scaler_units besides
    assert second.reader.round_trips == (5 if kind == "hdlc" else 3)
    assert first.reader.round_trips >= second.reader.round_trips + 2
    assert second.wire.named("meter_cache_kept")
    assert cache.directory is not None and cache.scalers
    octets = [sum(len(frame) for frame in s.wire.frames_to_meter) + sum(
        len(answer) for answer in s.wire.answers) for s in sessions]
    assert octets[1] < octets[0] / 2, octets  # the object list is most of the first


def test_a_fresh_cache_reads_everything_again() -> None:
    """A cache holds one meter: a reader given a fresh cache reads everything again."""
    associate_and_read(MeterCache())
    again = associate_and_read(MeterCache())
    assert object_list_reads(again) == 1 and scaler_reads(again) == 2


@pytest.mark.parametrize(("change", "field"), [
    ({"options": ServerOptions(max_pdu=512)}, "max_pdu"),
    ({"options": ServerOptions(get_with_list=False)}, "conformance"),
    ({"options": ServerOptions(referencing=Referencing.SN), "referencing": "SN"}, "context"),
    ({"client_address": 17, "options": ServerOptions(client_sap=17)}, "connection"),
])
def test_a_changed_identity_empties_the_cache(change: dict[str, Any], field: str) -> None:
    """What the AARE shows of the meter (max PDU, conformance, application context) or
    the device's connection changed: the reader notes meter_changed and reads the
    object list and the scaler_units again."""
    cache = MeterCache()
    associate_and_read(cache)
    referencing = change.pop("referencing", "LN")
    client_address = change.pop("client_address", 16)
    session = Session("hdlc", referencing, cache=cache, client_address=client_address,
                      **change)
    if client_address != 16:
        session.meter = MemoryMeter("hdlc", change["options"], client_sap=client_address)
        session.wire.meter = session.meter
    session.open()
    check(session.read(*SIGNALS), "voltage", "energy", "serial")
    changed = session.wire.named("meter_changed")
    assert len(changed) == 1 and field in str(changed[0].fields["changed"]), changed
    assert len(session.meter.reads()) >= 3


def test_a_new_system_title_empties_the_cache() -> None:
    """HighGmac: the meter's system title (responding-AP-title) is part of its
    identity; a meter swapped for one with another title is read from scratch, and
    the note names the new title (never a key)."""
    keys, security = _gmac("both")
    cache = MeterCache()
    sessions = []
    for title in ("4D4D4D0000000A01", "4D4D4D0000000A01", "4D4D4D0000000B02"):
        sim = SimSecurity(security.mechanism, block_cipher_key=security.block_cipher_key,
                          authentication_key=security.authentication_key,
                          security=security.security, system_title=bytes.fromhex(title))
        session = Session("hdlc", options=ServerOptions(security=sim), cache=cache, **keys)
        session.open()
        check(session.read(*SIGNALS), "voltage", "energy", "serial")
        session.close()
        sessions.append(session)
    same = sessions[1]  # the same meter again: the cache holds
    assert same.wire.named("meter_cache_kept") and not same.wire.named("meter_changed")
    def data(session: Session) -> list[bytes]:  # ciphered: counted, not decoded
        return [apdu for apdu in session.meter.requests if apdu[0] not in (0x60, 0x62)]

    assert len(data(same)) == 2  # HLS pass 3 and the values
    assert len(data(sessions[0])) >= 4 and len(data(session)) >= 4
    changed = session.wire.named("meter_changed")
    assert len(changed) == 1
    assert changed[0].fields["changed"] == "system_title"
    assert changed[0].fields["system_title"] == "4D4D4D0000000B02"
    assert BLOCK_CIPHER_KEY.hex() not in repr(session.wire.notes).lower()
    assert cache.identity is not None and cache.identity.system_title == bytes.fromhex(
        "4D4D4D0000000B02")


def test_a_stale_object_list_is_read_again_once() -> None:
    """A meter whose firmware changed what the cached object list says (here: VOLTAGE
    given class 4 in the cache, so the meter answers object-class-inconsistent): the
    job drops the list, reads it again and the value comes right, in the same scan;
    the next scan of the association does not suspect the fresh list again."""
    cache = MeterCache()
    associate_and_read(cache)
    assert cache.directory is not None
    cache.directory[VOLTAGE.obis] = (4, 0)  # what an older firmware might have said
    session = Session("hdlc", cache=cache)
    session.open()
    check(session.read(*SIGNALS), "voltage", "energy", "serial")
    stale = session.wire.named("meter_cache_stale")
    assert len(stale) == 1 and "object-class-inconsistent" in str(stale[0].fields["reason"])
    assert object_list_reads(session) == 1
    assert cache.directory[VOLTAGE.obis][0] == 3
    before = len(reads(session))
    check(session.read(*SIGNALS), "voltage", "energy", "serial")
    assert len(reads(session)) == before + 1  # the values only


def _model_without_voltage(tmp_path: Path) -> Path:
    doc = json.loads(bundled_model_path().read_text(encoding="utf-8"))
    doc["objects"] = [o for o in doc["objects"] if o.get("obis") != "1.0.32.7.0.255"]
    path = tmp_path / "meter.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_an_object_gone_from_the_meter_costs_one_object_list_read(tmp_path: Path) -> None:
    """The object behind a cached address is gone (object-undefined): the list is read
    again once, the signal gets its error from the fresh list, and nothing loops."""
    cache = MeterCache()
    associate_and_read(cache)
    session = Session("hdlc", cache=cache)
    session.meter.server = MeterServer(Meter(load_model(_model_without_voltage(tmp_path))),
                                       session.meter.options)
    session.open()
    for _ in range(3):
        results = session.read(*SIGNALS)
        check(results, "energy", "serial")
        assert "not in the meter's object list" in str(results["voltage"].error)
    assert object_list_reads(session) == 1
    assert len(session.wire.named("meter_cache_stale")) == 1
    assert Obis.parse("1.0.32.7.0.255") not in (cache.directory or {})


class OctetEnergy(MemoryMeter):
    """The bundled meter, but its energy value (1.0.1.8.0.255:2) is an octet-string
    (the model file allows only numbers in a register, so the answer is rewritten)."""

    def _answer(self, apdu: bytes) -> bytes:
        request = decode_apdu(apdu) if apdu[:1] == b"\xc0" else None
        if (isinstance(request, GetRequestNormal)
                and request.descriptor.instance_id == ENERGY.obis
                and request.descriptor.attribute_id == 2):
            return GetResponseNormal(Data.octets(b"\x00\xff"),
                                     request.invoke_id_and_priority).to_bytes()
        return super()._answer(apdu)


def test_a_scaler_unit_that_no_longer_fits_is_read_again_once() -> None:
    """A cached scaler_unit for a value that no longer scales (the register's value is
    now an octet-string): dropped and read again once; the signal keeps its error."""
    cache = MeterCache()
    associate_and_read(cache, ENERGY)
    session = Session("hdlc", cache=cache)
    session.meter = OctetEnergy("hdlc", session.meter.options)
    session.wire.meter = session.meter
    session.open()
    for _ in range(2):
        result = session.read(ENERGY)["energy"]
        assert result.value is None and "must be a number" in str(result.error)
        # read again in the first scan, and not in the next (it is this association's)
        assert scaler_reads(session) == 1
        assert len(session.wire.named("meter_cache_stale")) == 1


class SilentAfter(MemoryMeter):
    """A meter that stops answering after ``answers`` APDUs of an association (as one
    that drops the connection after a few answers)."""

    def __init__(self, answers: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.left = answers

    def feed(self, data: bytes) -> bytes:
        if self.left <= 0:
            return b""
        before = len(self.requests)
        out = super().feed(data)
        self.left -= len(self.requests) - before
        return out


def _until_read(cache: Callable[[], MeterCache], answers: int, tries: int) -> int | None:
    """The association (1-based) whose scan succeeded, or None within ``tries``."""
    for attempt in range(1, tries + 1):
        session = Session("wrapper", cache=cache(), retry_counter=0)
        session.meter = SilentAfter(answers, "wrapper", session.meter.options)
        session.wire.meter = session.meter
        try:
            session.open()
            check(session.read(*SIGNALS), "voltage", "energy", "serial")
        except DlmsTimeout:
            continue
        return attempt
    return None


def test_a_meter_that_stops_after_a_few_answers_is_still_read() -> None:
    """Each association gets as far as the AARE, the object list and the scaler_units,
    then the meter stops answering.  Without the cache every association starts from
    the object list again and never reaches the values; with it, the second one reads
    them."""
    probe = Session("wrapper")
    probe.open()
    probe.read(*SIGNALS)
    answers = 1 + len(probe.meter.reads()) - 1  # the AARE and all but the values' request
    assert _until_read(MeterCache, answers, tries=5) is None
    kept = MeterCache()
    assert _until_read(lambda: kept, answers, tries=5) == 2


# ------------------------------------------------------------------ end to end


async def _dropping_proxy(meter_port: int, answers: int,
                          connections: list[int]) -> asyncio.Server:
    """A TCP proxy to the meter that closes each connection after the meter's
    ``answers``-th wrapper frame (what a meter with a short inactivity limit does)."""

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            meter_r, meter_w = await asyncio.open_connection("127.0.0.1", meter_port)
        except BaseException:  # cancelled while connecting (the test is over): the
            client_w.close()   # client's stream must not be left to the collector
            raise
        connections.append(0)

        async def upstream() -> None:
            while data := await client_r.read(4096):
                meter_w.write(data)
                await meter_w.drain()

        async def downstream() -> None:
            while connections[-1] < answers:
                header = await meter_r.readexactly(8)
                body = await meter_r.readexactly(int.from_bytes(header[6:8], "big"))
                client_w.write(header + body)
                await client_w.drain()
                connections[-1] += 1

        up = asyncio.ensure_future(upstream())
        try:
            await downstream()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            up.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await up
            for writer in (client_w, meter_w):
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def _probe_answers() -> int:
    """How many answers an association of dlms-sim's bundled meter gives before the
    values of SIGNALS (wrapper: the AARE, the object list in its blocks, the
    scaler_units), measured in memory on the same model and PDU size."""
    probe = Session("wrapper")
    probe.open()
    probe.read(*SIGNALS)
    return len(probe.meter.reads())  # AARE + every data request but the values'


def _poll_through(meter_port: int, answers: int, *, keep_cache: bool,
                  tries: int) -> tuple[int | None, list[int], list[Any]]:
    """Run a poller (real sessions over TCP) through a proxy that drops each connection
    after ``answers`` answers, until the signals are ok or ``tries`` connections were
    made; returns (the round trips of the association that read them, or None; the
    answers of each connection up to that one; the sessions)."""
    from conftest import signal, tcp_device

    from dlmsd.config import parse_config
    from dlmsd.poller import Poller, SessionContext
    from dlmsd.session import make_session
    from dlmsd.signals import SignalTable
    from dlmsd.trace import FrameTracer

    class Log:  # structlog's interface, quiet
        def bind(self, **_: Any) -> Log:
            return self

        def __getattr__(self, name: str) -> Callable[..., None]:
            return lambda *args, **kwargs: None

    sessions: list[Any] = []
    first_read: list[int] = []  # the connection (1-based) that read every value, and
    # its round trips until then

    def factory(device: Any, context: SessionContext) -> Any:
        if not keep_cache:
            context.cache = MeterCache()
        session = make_session(device, context)
        sessions.append(session)
        number, read = len(sessions), session.read

        async def reading(requests: Any) -> Any:
            results = await read(requests)
            if not first_read and all(r.error is None for r in results):
                first_read.extend((number, session.round_trips))
            return results

        session.read = reading
        return session

    async def scenario() -> tuple[int | None, list[int]]:
        connections: list[int] = []
        server = await _dropping_proxy(meter_port, answers, connections)
        port = server.sockets[0].getsockname()[1]
        config = parse_config({
            "devices": [tcp_device("m", port=port, mode="DLMS-WRAPPER", logical_address=1,
                                   timeout_ms=2000, retry_counter=0, reconnect_time=100)],
            "signals": [signal(r.key, "m", str(r.obis), **(
                {"class_id": r.class_id} if r.class_id else {})) for r in SIGNALS]})
        table = SignalTable.from_config(config)
        log = Log()

        async def no_wait(_seconds: float) -> None:
            await asyncio.sleep(0)

        poller = Poller(config.devices[0], config.signals, table, log,
                        FrameTracer(log, False), factory, sleep=no_wait)
        task = asyncio.ensure_future(poller.run())
        try:
            async with asyncio.timeout(30):
                while len(connections) <= tries and not first_read:
                    await asyncio.sleep(0.005)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            server.close()
            await server.wait_closed()
        if not first_read:
            return None, connections
        return first_read[1], connections[:first_read[0]]

    read, connections = asyncio.run(scenario())
    return read, connections, sessions


def test_end_to_end_a_meter_that_drops_the_connection_after_a_few_answers() -> None:
    """dlms-sim behind a proxy that closes each connection after the meter's N-th
    answer, N enough for the AARE, the object list and the scaler_units: the poller
    reads the values on its second connection, which costs 2 round trips before the
    values (AARQ and the values' GET; no object list, no scaler_unit).  With the cache
    thrown away at each association (as before), it never gets to the values."""
    from test_e2e_sim import simulator

    answers = _probe_answers()
    with simulator("--wrapper-port", "0") as ports:
        round_trips, connections, _ = _poll_through(ports["wrapper"], answers,
                                                    keep_cache=True, tries=4)
        # the first connection: the AARE, the object list, the scaler_units, then closed;
        # the second: the AARE and the values, read
        assert connections[0] == answers and len(connections) == 2, connections
        assert round_trips == 2  # AARQ, the values' GET: no object list, no scaler_unit

        round_trips, connections, _ = _poll_through(ports["wrapper"], answers,
                                                    keep_cache=False, tries=4)
        assert round_trips is None and len(connections) > 4, connections
