"""Serial transport (dlmsd.transport.serial) over a pty pair and ``loop://``.

The pty's slave path is the "device"; the test plays the far end (probe and
meter) on the master descriptor. A pty has no real baud rate, so timing
assertions are about what the transport waits for, and line settings are
read back with termios.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import termios
import tty
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import serial

from dlmsd.errors import ConfigError, DlmsTimeout, TransportError
from dlmsd.protocol.hdlc import Connected, HdlcClientConnection, HdlcServerConnection
from dlmsd.protocol.hdlc_frame import encode_server_address
from dlmsd.protocol.iec62056_21 import (
    NEED_DATA,
    OPENING_BAUD,
    Identified,
    ModeEOpening,
    SwitchLine,
)
from dlmsd.transport import serial as serial_mod
from dlmsd.transport.serial import SerialSettings, SerialTransport

OPENING_7E1 = SerialSettings(OPENING_BAUD, 7, "even", 1)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


class PtyPeer:
    """The far end of a pty: what a probe and meter would send and receive."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo or line editing before pyserial configures it
        self.path = os.ttyname(self.slave)
        os.set_blocking(self.master, False)
        self.buf = bytearray()

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    async def _fill(self) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(self.master, ready)
        try:
            await fut
        finally:
            loop.remove_reader(self.master)
        with contextlib.suppress(BlockingIOError):
            self.buf += os.read(self.master, 4096)

    async def read_exact(self, n: int, timeout: float = 3.0) -> bytes:
        async with asyncio.timeout(timeout):
            while len(self.buf) < n:
                await self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def read_until(self, end: bytes, start: int = 0, timeout: float = 3.0) -> bytes:
        async with asyncio.timeout(timeout):
            while (pos := self.buf.find(end, start)) < 0:
                await self._fill()
        data = bytes(self.buf[: pos + len(end)])
        del self.buf[: pos + len(end)]
        return data

    def speed(self) -> int:
        """The tty's output speed (a termios B* constant). Linux ptys keep the
        speed but force CS8 without parity, so data bits and parity cannot be
        read back here."""
        return int(termios.tcgetattr(self.slave)[5])

    def close_master(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def close(self) -> None:
        self.close_master()
        if self.slave >= 0:
            os.close(self.slave)
            self.slave = -1


@pytest.fixture
def pty() -> Iterator[PtyPeer]:
    peer = PtyPeer()
    yield peer
    peer.close()


@pytest.fixture
async def port(pty: PtyPeer) -> AsyncIterator[SerialTransport]:
    transport = SerialTransport(pty.path, SerialSettings(9600))
    await transport.open(2.0)
    yield transport
    await transport.close()


async def read_n(transport: SerialTransport, n: int, timeout: float = 2.0) -> bytes:
    data = b""
    while len(data) < n:
        data += await transport.read(timeout)
    return data


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------


def test_settings_validated_and_normalised() -> None:
    with pytest.raises(ConfigError) as info:
        SerialSettings(0, 9, "mark", 3, "dtr")
    assert len(info.value.problems) == 5
    for word in ("baudrate", "databits", "parity", "stopbits", "flowcontrol"):
        assert word in str(info.value)
    assert SerialSettings(300, 7, "E", 1).parity == "even"
    assert str(SerialSettings(300, 7, "even", 1)) == "300 7E1"
    assert str(SerialSettings(9600, 8, "none", 2, "rtscts")) == "9600 8N2 rtscts"
    assert SerialSettings(300, 7, "even", 1).bits_per_character == 10
    assert SerialSettings(9600).char_time() == pytest.approx(10 / 9600)


# ---------------------------------------------------------------------------
# loop:// (no file descriptor: polled)
# ---------------------------------------------------------------------------


async def test_loop_url_roundtrip_and_timeout() -> None:
    transport = SerialTransport("loop://")
    assert transport.peer == "loop://" and not transport.is_open
    await transport.open(2.0)
    assert transport.is_open
    await transport.write(b"\x7e\xa0\x07")
    assert await read_n(transport, 3) == b"\x7e\xa0\x07"
    with pytest.raises(DlmsTimeout, match=r"loop://: no answer in 50 ms"):
        await transport.read(0.05)
    await transport.reconfigure(9600, 8, "N", 1)
    assert transport.settings.baudrate == 9600
    await transport.close()
    await transport.close()  # twice is fine
    assert not transport.is_open
    with pytest.raises(TransportError, match="not open"):
        await transport.read(0.1)


# ---------------------------------------------------------------------------
# pty
# ---------------------------------------------------------------------------


async def test_pty_write_read(pty: PtyPeer) -> None:
    before = open_fds()
    transport = SerialTransport(pty.path, SerialSettings(9600))
    await transport.open(2.0)
    assert transport.peer == pty.path
    await transport.write(b"hello meter")
    assert await pty.read_exact(11) == b"hello meter"
    pty.write(b"hello client")
    assert await read_n(transport, 12) == b"hello client"
    await transport.close()
    assert open_fds() == before


async def test_pty_read_timeout(port: SerialTransport, pty: PtyPeer) -> None:
    with pytest.raises(DlmsTimeout) as info:
        await port.read(0.05)
    assert isinstance(info.value, TimeoutError)
    assert pty.path in str(info.value) and "50 ms" in str(info.value)
    # Bytes that arrive after a timed-out read are not lost.
    pty.write(b"late")
    assert await read_n(port, 4) == b"late"


async def test_reconfigure_waits_for_the_wire_then_switches(pty: PtyPeer) -> None:
    transport = SerialTransport(pty.path, OPENING_7E1)
    await transport.open(2.0)
    try:
        assert pty.speed() == termios.B300
        loop = asyncio.get_running_loop()
        pty.write(b"x")  # received at the old rate: must stay readable
        await asyncio.sleep(0.02)
        started = loop.time()
        await transport.write(b"\x06252\r\n")
        await transport.reconfigure(9600, 8, "N", 1)
        # 6 characters of 10 bits at 300 Bd are 200 ms on the wire.
        assert loop.time() - started >= 0.2
        assert pty.speed() == termios.B9600
        assert transport.settings == SerialSettings(9600, 8, "none", 1)
        assert await transport.read(1.0) == b"x"
        assert await pty.read_exact(6) == b"\x06252\r\n"
    finally:
        await transport.close()


async def test_flow_control_setting_reaches_the_tty(pty: PtyPeer) -> None:
    transport = SerialTransport(pty.path, SerialSettings(9600, flowcontrol="xonxoff"))
    await transport.open(2.0)
    try:
        assert termios.tcgetattr(pty.slave)[0] & termios.IXON
        await transport.reconfigure(4800)  # flow control is kept
        assert termios.tcgetattr(pty.slave)[0] & termios.IXON
        assert transport.settings.flowcontrol == "xonxoff"
    finally:
        await transport.close()


# ---------------------------------------------------------------------------
# Opening failures
# ---------------------------------------------------------------------------


async def test_missing_device() -> None:
    before = open_fds()
    transport = SerialTransport("/dev/ttyDOES-NOT-EXIST9")
    with pytest.raises(TransportError) as info:
        await transport.open(2.0)
    assert str(info.value) == "serial /dev/ttyDOES-NOT-EXIST9: cannot open: no such device"
    assert not transport.is_open and open_fds() == before


async def test_not_a_serial_port(tmp_path: Path) -> None:
    path = tmp_path / "plain-file"
    path.write_bytes(b"")
    with pytest.raises(TransportError, match=r"plain-file: cannot open: not a serial port"):
        await SerialTransport(str(path)).open(2.0)


async def test_unknown_url_scheme() -> None:
    with pytest.raises(TransportError, match=r"serial foo://x: cannot open: invalid URL"):
        await SerialTransport("foo://x").open(2.0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root opens any device")
async def test_permission_denied(pty: PtyPeer) -> None:
    os.chmod(pty.path, 0)
    with pytest.raises(TransportError, match="permission denied"):
        await SerialTransport(pty.path).open(2.0)


@pytest.mark.parametrize(
    ("code", "text", "reason"),
    [
        (errno.EACCES, "could not open port /dev/ttyS0: [Errno 13] Permission denied",
         "permission denied (is the daemon's user in the group owning the device?)"),
        (errno.EAGAIN, "Could not exclusively lock port /dev/ttyS0: [Errno 11]",
         "port busy: another process holds it open exclusively"),
        (errno.EBUSY, "could not open port: busy", "port busy"),
        (errno.ENXIO, "could not open port", "device not present (unplugged?)"),
        (None, "something else", "something else"),
    ],
)
def test_open_failure_reasons(code: int | None, text: str, reason: str) -> None:
    exc = serial.SerialException(code, text) if code else OSError(text)
    assert serial_mod._open_failure("/dev/ttyS0", exc) == (
        f"serial /dev/ttyS0: cannot open: {reason}")


async def test_exclusive_second_open_is_refused(pty: PtyPeer) -> None:
    first = SerialTransport(pty.path)
    await first.open(2.0)
    try:
        before = open_fds()
        with pytest.raises(TransportError) as info:
            await SerialTransport(pty.path).open(2.0)
        assert str(info.value) == (
            f"serial {pty.path}: cannot open: port busy: another process holds it open"
            " exclusively"
        )
        assert open_fds() == before  # the refused attempt left nothing open
        shared = SerialTransport(pty.path, exclusive=False)
        await shared.open(2.0)  # without the lock the platform lets it share
        await shared.close()
    finally:
        await first.close()
    again = SerialTransport(pty.path)
    await again.open(2.0)  # the lock went with the first close
    await again.close()


async def test_open_timeout_closes_the_late_port(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[str] = []

    class SlowPort:
        def fileno(self) -> int:
            raise OSError("none")

        def reset_output_buffer(self) -> None:
            pass

        def close(self) -> None:
            closed.append("closed")

    def slow_open(self: SerialTransport) -> Any:
        import time

        time.sleep(0.3)
        return SlowPort()

    monkeypatch.setattr(SerialTransport, "_open_blocking", slow_open)
    transport = SerialTransport("/dev/ttySLOW")
    with pytest.raises(DlmsTimeout, match=r"/dev/ttySLOW: not opened in 50 ms"):
        await transport.open(0.05)
    assert not transport.is_open
    await asyncio.sleep(0.4)
    assert closed == ["closed"]


# ---------------------------------------------------------------------------
# A port that goes away; close
# ---------------------------------------------------------------------------


async def test_port_vanishing_gives_transport_errors(pty: PtyPeer) -> None:
    before = open_fds()
    transport = SerialTransport(pty.path)
    await transport.open(2.0)
    pty.close()  # the other end and our spare slave descriptor: the pty is gone
    with pytest.raises(TransportError) as info:
        await transport.read(1.0)
    assert not isinstance(info.value, DlmsTimeout)
    assert pty.path in str(info.value)
    with pytest.raises(TransportError, match="write failed"):
        await transport.write(b"\x7e")
    await transport.close()  # never raises
    await transport.close()
    assert open_fds() <= before


async def test_close_wakes_a_pending_read(port: SerialTransport) -> None:
    reader = asyncio.create_task(port.read(5.0))
    await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await port.close()
    assert loop.time() - started < 1.5
    with pytest.raises(TransportError, match="closed"):
        await reader


async def test_write_when_closed() -> None:
    with pytest.raises(TransportError, match="ttyX: not open"):
        await SerialTransport("/dev/ttyX").write(b"x")
    with pytest.raises(TransportError, match="not open"):
        await SerialTransport("/dev/ttyX").reconfigure(9600)


# ---------------------------------------------------------------------------
# IEC 62056-21 mode E over a pty, with a fake probe and meter on the master
# ---------------------------------------------------------------------------

SERVER = encode_server_address(1, 17, 2)


async def fake_meter(pty: PtyPeer, *, echo: bool) -> bytes:
    """Answer the sign-on like an Iskra meter behind an optical probe, then
    accept the SNRM that must come at 9600 8N1. Returns the SNRM."""
    request = await pty.read_until(b"\r\n")
    assert request == b"/?!\r\n"
    if echo:
        pty.write(request)  # the probe reflects what the client sends
    await asyncio.sleep(0.02)  # the meter's reaction time
    pty.write(b"/ISK5\\2ME382-1003\r\n")
    ack = await pty.read_exact(6)
    assert ack == b"\x06252\r\n"  # ACK, HDLC protocol, 9600 Bd, binary mode
    if echo:
        pty.write(ack)
    snrm = await pty.read_until(b"\x7e", start=1)
    # The client switched before it sent HDLC.
    assert pty.speed() == termios.B9600
    server = HdlcServerConnection(SERVER)
    server.receive_data(snrm)
    assert isinstance(server.next_event(), Connected)
    pty.write(server.data_to_send())  # UA
    return snrm


async def client_mode_e(transport: SerialTransport, *, echo: bool) -> tuple[Identified, bytes]:
    """What the poller will do: sign on, switch, start HDLC."""
    opening = ModeEOpening(max_baud=9600, echo=echo)
    await transport.write(opening.start())
    ident: Identified | None = None
    while True:
        event = opening.next_event()
        if event is NEED_DATA:
            try:
                opening.receive_data(await transport.read(opening.timeout()))
            except DlmsTimeout:
                raise opening.timeout_error() from None
        elif isinstance(event, Identified):
            ident = event
            await transport.write(opening.acknowledge())
        else:
            assert isinstance(event, SwitchLine)
            switch = event
            break
    assert ident is not None
    await transport.reconfigure(switch.baud_rate, switch.bytesize, switch.parity, switch.stopbits)
    hdlc = HdlcClientConnection(16, SERVER)
    hdlc.receive_data(switch.trailing)
    await transport.write(hdlc.connect())
    while (got := hdlc.next_event()) is NEED_DATA:
        hdlc.receive_data(await transport.read(2.0))
    assert isinstance(got, Connected)
    return ident, bytes(switch.trailing)


@pytest.mark.parametrize("echo", [True, False], ids=["probe-echo", "no-echo"])
async def test_mode_e_opening_over_pty(pty: PtyPeer, echo: bool) -> None:
    before = open_fds()
    transport = SerialTransport(pty.path, OPENING_7E1)
    await transport.open(2.0)
    assert pty.speed() == termios.B300
    meter = asyncio.create_task(fake_meter(pty, echo=echo))
    try:
        async with asyncio.timeout(8):
            ident, trailing = await client_mode_e(transport, echo=echo)
        snrm = await meter
    finally:
        if not meter.done():
            meter.cancel()
            await asyncio.gather(meter, return_exceptions=True)
        await transport.close()
    assert (ident.manufacturer, ident.baud_rate, ident.identification) == (
        "ISK", 9600, "ME382-1003")
    assert ident.hdlc_capable and trailing == b""
    assert transport.settings == SerialSettings(9600, 8, "none", 1)
    assert snrm[:2] == b"\x7e\xa0"  # SNRM frame: flag, frame format type 3
    assert open_fds() == before


async def test_mode_e_meter_silent_names_the_step(pty: PtyPeer) -> None:
    transport = SerialTransport(pty.path, OPENING_7E1)
    await transport.open(2.0)
    try:
        with pytest.raises(DlmsTimeout) as info:
            await client_mode_e(transport, echo=True)
    finally:
        await transport.close()
    assert "IEC 62056-21 identification: no answer from the meter in time" in str(info.value)
    assert "nothing received" in str(info.value)
