"""MQTT output: the signal table published to a broker (issue 13).

Two halves, as everywhere in dlmsd:

* Pure payload building (:func:`signal_message`, :func:`device_message`,
  :func:`json_number`, :func:`iso_ms`): a state and ``now`` in, a :class:`Message`
  (topic, payload bytes, retain) out; no I/O, no clock.
* :class:`MqttPublisher`, the I/O shell: it subscribes to the
  :class:`~dlmsd.signals.SignalTable`, turns every change into a message at once (the
  table's callback is synchronous and never waits) and appends it to a bounded queue;
  one task connects to the broker with aiomqtt (on paho-mqtt) and sends the queue in
  order.  While the broker is away the queue fills; when it is full the oldest
  message is dropped, counted and logged once per outage.  A message leaves the queue
  only once the broker has taken it (QoS 1: its PUBACK), so a connection lost in the
  middle of a batch sends that batch again (at least once, never lost while it fits).

Topics: ``<prefix>/<device_alias>/<signal_alias>`` (or the signal's ``topic``),
``<prefix>/<device_alias>/profile/<profile_alias>`` (one JSON message per profile row,
in time order, not retained, whatever ``format``),
``<prefix>/<device_alias>/status`` (retained) and ``<prefix>/status`` (retained
``online``; the broker's last will and a clean stop set ``offline``).

The ``wcc`` payload is ``value,timestamp,quality`` as in the WCC Lite user manual
(Elseta, 2020-04-07, section 19.3 "MQTT data format"): value a float, an integer or
``nan``; timestamp the UNIX time in milliseconds; quality 1 for a valid value, else 0.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import json
import os
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlmsd.config import Config, MqttConfig
from dlmsd.protocol.profile import dumps_exact
from dlmsd.signals import (
    Change,
    DeviceState,
    DeviceStatus,
    ProfileRows,
    SignalState,
    SignalStatus,
    SignalTable,
)
from dlmsd.statefile import write_durably

if TYPE_CHECKING:  # imported when a publisher runs: no cost for a daemon without MQTT
    import aiomqtt

__all__ = [
    "MQTT_SPOOL",
    "Carry",
    "Message",
    "MqttOutput",
    "MqttPublisher",
    "Quality",
    "daemon_status_topic",
    "device_message",
    "iso_ms",
    "json_number",
    "profile_topic",
    "signal_message",
    "signal_quality",
]

ONLINE, OFFLINE = b"online", b"offline"


class Quality(enum.Enum):
    GOOD = "good"
    STALE = "stale"  # the last known value; the device is offline
    INVALID = "invalid"  # the last read of this signal failed


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class Carry:
    """What a stopped publisher could not send: its messages, in order, and what
    they were made with (``made_with``: topic prefix, format, retain), so that the next
    publisher takes them only if it would make the same ones; ``last``: the change
    filter's memory (signal alias -> what was published last)."""

    made_with: tuple[str, str, bool]
    messages: list[Message]
    last: dict[str, tuple[Any, ...]]


def made_with(cfg: MqttConfig) -> tuple[str, str, bool]:
    return (cfg.topic_prefix, cfg.format, cfg.retain)


#: The spool file's name in the state directory.
MQTT_SPOOL = "mqtt-queue.json"
#: The spool's format tag; a file with another (or none) is set aside, never read.
SPOOL_FORMAT = "dlmsd-mqtt-spool/1"


def spool_text(carry: Carry) -> str:
    """The spool file of ``carry`` (JSON; payloads as latin-1 text: every byte kept)."""
    prefix, fmt, retain = carry.made_with
    return json.dumps({"format": SPOOL_FORMAT, "topic_prefix": prefix, "payload_format": fmt,
                       "retain": retain,
                       "messages": [[m.topic, m.payload.decode("latin-1"), m.retain]
                                    for m in carry.messages]})


def spool_carry(text: str) -> Carry:
    """The :class:`Carry` of a spool file (at most a queue of messages: the stop
    wrote it from one); ValueError naming what is wrong."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("format") != SPOOL_FORMAT:
        raise ValueError(f"not a {SPOOL_FORMAT} file")
    prefix, fmt, retain = doc.get("topic_prefix"), doc.get("payload_format"), doc.get("retain")
    items = doc.get("messages")
    if not (isinstance(prefix, str) and isinstance(fmt, str) and isinstance(retain, bool)
            and isinstance(items, list)):
        raise ValueError("topic_prefix, payload_format, retain or messages missing")
    messages = []
    for n, item in enumerate(items):
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                and isinstance(item[1], str) and isinstance(item[2], bool)):
            raise ValueError(f"message {n} is not [topic, payload, retain]")
        messages.append(Message(item[0], item[1].encode("latin-1"), item[2]))
    return Carry((prefix, fmt, retain), messages, {})


# -- pure payload building ---------------------------------------------------------


def iso_ms(ts: float) -> str:
    """UNIX time as ISO 8601 UTC with milliseconds: ``2026-12-05T10:15:00.123Z``."""
    millis = round(ts * 1000)
    stamp = datetime.fromtimestamp(millis // 1000, UTC)
    return f"{stamp:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


def json_number(value: Decimal) -> str:
    """A finite Decimal as JSON number text, exactly (no binary float): ``1234.56``."""
    text = format(value, "f")
    return "0" if text in ("-0", "0") else text


def _value_json(value: Any) -> str:
    if isinstance(value, Decimal):
        return json_number(value) if value.is_finite() else "null"
    if isinstance(value, float) and not (value == value and abs(value) != float("inf")):
        return "null"  # NaN and infinities are not JSON
    if value is None or isinstance(value, bool | int | float | str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(str(value), ensure_ascii=False)


def _value_wcc(value: Any) -> str:
    """The WCC Lite form: a number, or ``nan`` for anything that is not one."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return json_number(value) if value.is_finite() else "nan"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else "nan"
    return "nan"


def signal_quality(state: SignalState) -> Quality:
    if state.status is SignalStatus.OK:
        return Quality.GOOD
    return Quality.STALE if state.stale else Quality.INVALID


def signal_topic(cfg: MqttConfig, state: SignalState, topic: str | None = None) -> str:
    return topic or f"{cfg.topic_prefix}/{state.device_alias}/{state.signal_alias}"


def profile_topic(cfg: MqttConfig, device_alias: str, profile_alias: str) -> str:
    return f"{cfg.topic_prefix}/{device_alias}/profile/{profile_alias}"


def daemon_status_topic(cfg: MqttConfig) -> str:
    return f"{cfg.topic_prefix}/status"


def signal_message(cfg: MqttConfig, state: SignalState, now: float,
                   topic: str | None = None) -> Message:
    """The publication of one signal's state; ``ts`` is the time of the last good read
    (``now`` for a signal never read)."""
    ts = state.timestamp if state.timestamp is not None else now
    quality = signal_quality(state)
    if cfg.format == "wcc":
        good = 1 if quality is Quality.GOOD else 0
        value = _value_wcc(state.value) if state.timestamp is not None else "nan"
        payload = f"{value},{round(ts * 1000)},{good}"
    else:
        rest: dict[str, Any] = {"unit": state.unit, "obis": state.obis, "ts": iso_ms(ts),
                                "quality": quality.value}
        if quality is not Quality.GOOD:
            rest["error"] = state.error
        payload = ('{"value": ' + _value_json(state.value) + ", "
                   + json.dumps(rest, ensure_ascii=False)[1:])
    return Message(signal_topic(cfg, state, topic), payload.encode("utf-8"), cfg.retain)


def device_message(cfg: MqttConfig, state: DeviceState, now: float) -> Message:
    """``<prefix>/<device_alias>/status``, always retained."""
    online = state.status is DeviceStatus.ONLINE
    doc = {"status": "online" if online else "offline",
           "error": None if online else state.error, "ts": iso_ms(now)}
    return Message(f"{cfg.topic_prefix}/{state.device_alias}/status",
                   json.dumps(doc, ensure_ascii=False).encode("utf-8"), True)


def _change_key(state: SignalState) -> tuple[Any, ...]:
    return (type(state.value), state.value, state.unit, state.status, state.error,
            state.stale)


# -- the I/O shell -------------------------------------------------------------------


def _tls_context(cfg: MqttConfig) -> ssl.SSLContext | None:
    if cfg.tls is None:
        return None
    context = ssl.create_default_context(cafile=cfg.tls.ca_file)
    if cfg.tls.cert_file is not None:
        context.load_cert_chain(cfg.tls.cert_file, cfg.tls.key_file)
    if cfg.tls.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class MqttPublisher:
    """Publishes the table's changes to the broker of ``cfg``; :meth:`start`, :meth:`stop`.

    ``backoff`` is the first wait after a failed connection; it doubles up to
    ``max_backoff`` and starts again after a successful one."""

    BATCH = 64  # publications in flight at once

    def __init__(self, cfg: MqttConfig, table: SignalTable, log: Any, *,
                 topics: Mapping[str, str] | None = None, backoff: float = 0.5,
                 max_backoff: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.table = table
        self.log = log.bind(output="mqtt", broker=f"{cfg.host}:{cfg.port}")
        self.topics: Mapping[str, str] = dict(topics or {})
        self.backoff, self.max_backoff = backoff, max_backoff
        self.clock = clock
        self.queue: collections.deque[tuple[int, Message]] = collections.deque()
        self.published = 0
        self.dropped = 0
        self.connected = False
        self._seq = 0
        self._outage_dropped = 0
        self._last: dict[str, tuple[Any, ...]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # -- the table's side (synchronous, never waits) ------------------------------

    def _enqueue(self, message: Message) -> None:
        if len(self.queue) >= self.cfg.queue_size:
            self.queue.popleft()
            self.dropped += 1
            self._outage_dropped += 1
            if self._outage_dropped == 1:  # once per outage
                self.log.warning("mqtt_queue_full", queue_size=self.cfg.queue_size,
                                 dropping="oldest")
        self._seq += 1
        self.queue.append((self._seq, message))
        self._wake.set()

    def on_change(self, change: Change) -> None:
        now = self.clock()
        if isinstance(change, ProfileRows):
            # one message per row, in time order, through the same queue; JSON
            # whatever the format (a row is no single value), never retained
            topic = profile_topic(self.cfg, change.device_alias, change.profile_alias)
            for row in change.rows:
                self._enqueue(Message(topic, dumps_exact(row).encode("utf-8"), False))
            return
        if isinstance(change, DeviceState):
            if change.status is not DeviceStatus.DISABLED:
                self._enqueue(device_message(self.cfg, change, now))
            return
        if change.status is SignalStatus.DISABLED:
            return
        key = _change_key(change)
        if self.cfg.publish == "change" and self._last.get(change.signal_alias) == key:
            return
        self._last[change.signal_alias] = key
        self._enqueue(signal_message(self.cfg, change, now,
                                     self.topics.get(change.signal_alias)))

    def set_topics(self, topics: Mapping[str, str]) -> None:
        self.topics = dict(topics)

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, carried: Carry | None = None) -> None:
        """Subscribe, queue what is known already, and start connecting.

        ``carried``: what the publisher before this one could not send (a reload, or a
        stop while the broker was away, through the spool file); it goes first, in
        its order, if its messages are the ones this publisher would make (the same
        topic prefix, format and retain flag: a new broker, new credentials or a new
        client id change nothing in them). Otherwise it is dropped and counted: the
        table's current values follow anyway."""
        if carried is not None and carried.messages:
            if carried.made_with == made_with(self.cfg):
                for message in carried.messages:
                    self._enqueue(message)
                self._last.update(carried.last)
                self.log.info("mqtt_queue_carried", queued=len(carried.messages))
            else:
                self.dropped += len(carried.messages)
                self.log.warning("mqtt_queue_not_carried", dropped=len(carried.messages),
                                 reason="topic_prefix, format or retain changed")
        snapshot = self.table.snapshot()
        now = self.clock()
        for device in snapshot.devices:
            if device.status is not DeviceStatus.DISABLED and (
                    device.last_ok is not None or device.failures):
                self._enqueue(device_message(self.cfg, device, now))
        for sig in snapshot.signals:
            if sig.status is not SignalStatus.DISABLED and sig.timestamp is not None:
                self.on_change(sig)
        self._unsubscribe = self.table.subscribe(self.on_change)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt")

    async def stop(self, timeout: float = 3.0) -> None:
        """Send what is queued (for up to ``timeout`` s), set ``<prefix>/status``
        offline and disconnect."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        if self.connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout)
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self.log.info("mqtt_stopped", published=self.published, queued=len(self.queue),
                      dropped=self.dropped)

    def leftover(self) -> Carry:
        """What is still queued (after :meth:`stop`), taken out of the queue."""
        carry = Carry(made_with(self.cfg), [m for _, m in self.queue], dict(self._last))
        self.queue.clear()
        return carry

    def _client(self) -> aiomqtt.Client:
        import aiomqtt

        cfg = self.cfg
        password = cfg.password.reveal().decode("utf-8") if cfg.password else None
        client = aiomqtt.Client(
            cfg.host, cfg.port, identifier=cfg.client_id, username=cfg.username,
            password=password, keepalive=cfg.keepalive_s, tls_context=_tls_context(cfg),
            will=aiomqtt.Will(daemon_status_topic(cfg), OFFLINE, qos=1, retain=True),
            timeout=10)
        client.pending_calls_threshold = self.BATCH + 1  # a full batch is normal
        return client

    async def _run(self) -> None:
        import aiomqtt

        delay = self.backoff
        while not self._stopping:
            try:
                async with self._client() as client:
                    self.connected = True
                    delay = self.backoff
                    self.log.info("mqtt_connected", queued=len(self.queue),
                                  dropped_while_away=self._outage_dropped)
                    self._outage_dropped = 0
                    await client.publish(daemon_status_topic(self.cfg), ONLINE, qos=1,
                                         retain=True)
                    await self._connected(client)
                    return  # a clean stop
            except aiomqtt.MqttError as exc:
                was = self.connected
                self.connected = False
                if self._stopping:
                    return
                self.log.warning("mqtt_disconnected" if was else "mqtt_connect_failed",
                                 error=str(exc), retry_in_s=delay, queued=len(self.queue))
            except OSError as exc:  # a TLS file unreadable or bad (ssl.SSLError): retried
                self.log.error("mqtt_tls_failed", error=str(exc), retry_in_s=delay)
            except Exception:  # a bug here must not end the output for good
                self.log.error("mqtt_failed", exc_info=True, retry_in_s=delay)
            finally:
                self.connected = False
            await asyncio.sleep(delay)
            delay = min(self.max_backoff, delay * 2)

    async def _connected(self, client: aiomqtt.Client) -> None:
        """Send until the connection drops (noticed at once through the client's
        message stream) or the publisher stops."""
        watcher = asyncio.get_running_loop().create_task(self._watch(client),
                                                         name="mqtt-watch")
        sender = asyncio.get_running_loop().create_task(self._send(client), name="mqtt-send")
        try:
            done, _ = await asyncio.wait({watcher, sender},
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watcher, sender):
                task.cancel()
            await asyncio.gather(watcher, sender, return_exceptions=True)
        for task in done:
            task.result()  # raises the MqttError that ended it

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        import aiomqtt

        async for _message in client.messages:  # we subscribe to nothing
            pass
        raise aiomqtt.MqttError("disconnected")

    async def _send(self, client: aiomqtt.Client) -> None:
        qos = self.cfg.qos
        while True:
            if not self.queue:
                if self._stopping:
                    await client.publish(daemon_status_topic(self.cfg), OFFLINE, qos=1,
                                         retain=True)
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self.queue[i] for i in range(min(self.BATCH, len(self.queue)))]
            results = await asyncio.gather(
                *(client.publish(m.topic, m.payload, qos=qos, retain=m.retain)
                  for _, m in batch), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            last = batch[-1][0]
            while self.queue and self.queue[0][0] <= last:  # some may have been dropped
                self.queue.popleft()
                self.published += 1


class MqttOutput:
    """The daemon's MQTT output across reloads: :meth:`apply` each configuration
    (starts, restarts on a changed ``mqtt`` section, or stops the publisher).

    ``spool``: a file (in the state directory) where :meth:`stop` leaves what could
    not be sent (the broker away at the stop), and from which the next start takes it
    back (then removes it): a restart during an outage loses nothing that fits the
    queue. An unreadable spool is renamed ``*.bad`` and logged, never read again."""

    def __init__(self, table: SignalTable, log: Any, spool: Path | None = None) -> None:
        self.table, self.log = table, log
        self.spool = spool
        self.publisher: MqttPublisher | None = None
        self._first = True

    async def apply(self, config: Config) -> None:
        topics = {s.signal_alias: s.topic for s in config.signals if s.topic}
        current = self.publisher
        if current is not None and current.cfg == config.mqtt:
            current.set_topics(topics)
            return
        carried = await self._stop_publisher()
        if self._first:
            self._first = False
            carried = self._read_spool() or carried
        if config.mqtt is not None:
            self.publisher = MqttPublisher(config.mqtt, self.table, self.log, topics=topics)
            await self.publisher.start(carried=carried)
        elif carried is not None and carried.messages:
            self.log.warning("mqtt_queue_not_carried", dropped=len(carried.messages),
                             reason="mqtt removed from the configuration")

    async def stop(self) -> None:
        """Stop the publisher; what it could not send goes to the spool."""
        carried = await self._stop_publisher()
        if carried is not None and carried.messages and self.spool is not None:
            try:
                self.spool.parent.mkdir(parents=True, exist_ok=True)
                write_durably(self.spool, spool_text(carried).encode("utf-8"))
            except OSError as exc:
                self.log.error("mqtt_spool_failed", path=str(self.spool), error=str(exc),
                               lost=len(carried.messages))
                return
            self.log.info("mqtt_spooled", path=str(self.spool),
                          messages=len(carried.messages))

    async def _stop_publisher(self) -> Carry | None:
        publisher, self.publisher = self.publisher, None
        if publisher is None:
            return None
        await publisher.stop()
        return publisher.leftover()

    def _read_spool(self) -> Carry | None:
        spool = self.spool
        if spool is None or not spool.exists():
            return None
        try:
            carry = spool_carry(spool.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            bad = spool.with_name(spool.name + ".bad")
            with contextlib.suppress(OSError):
                os.replace(spool, bad)
            self.log.error("mqtt_spool_unreadable", path=str(spool), set_aside=str(bad),
                           error=str(exc))
            return None
        with contextlib.suppress(OSError):
            spool.unlink()
        self.log.info("mqtt_spool_read", path=str(spool), messages=len(carry.messages))
        return carry
