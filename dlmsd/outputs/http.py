"""The HTTP API: the running daemon's signal table over HTTP, and Prometheus metrics.

``GET /api/v1/signals`` (the JSON table of ``dlms --once --json``), ``GET /api/v1/devices``
(status, last error, last success and counters of every device), ``GET /metrics``
(Prometheus text format) and ``GET /healthz``. Everything is served from memory (the
:class:`~dlmsd.signals.SignalTable` and the pollers' :class:`~dlmsd.poller.PollStats`):
a request never causes meter traffic. With a token configured every request needs
``Authorization: Bearer TOKEN`` (compared in constant time) or gets 401; the token is
never logged. A handler's failure is a 500 with a one-line JSON body; the traceback goes
to the log, never to the client.

aiohttp serves; prometheus-client's exposition writes /metrics from a collector that
reads the table at scrape time (nothing is kept between scrapes).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from dlmsd import __version__
from dlmsd.cli import table_json
from dlmsd.config import HttpConfig
from dlmsd.logsetup import notice
from dlmsd.poller import SCAN_BUCKETS_S, PollStats
from dlmsd.signals import DeviceStatus, SignalStatus, SignalTable

__all__ = ["HttpServer", "metrics_text"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Counters of :class:`PollStats`, as (metric name without _total, attribute, help).
_STAT_COUNTERS = (
    ("dlmsd_reads", "reads", "Attribute reads answered (a value or an error)"),
    ("dlmsd_read_errors", "read_errors", "Attribute reads answered with an error"),
    ("dlmsd_timeouts", "timeouts", "Sessions ended by a timeout"),
    ("dlmsd_retries", "retries", "Scans redone at once on a new association"),
    ("dlmsd_reconnects", "reconnects", "Association attempts after the first"),
    ("dlmsd_resends", "resends", "Frames the link sent again (after a timeout, or asked "
     "for again by an HDLC RR)"),
    ("dlmsd_late_scans", "late_scans", "Scans started more than 10% of the period (at most "
     "1 s) after their tick"),
    ("dlmsd_missed_scans", "missed_scans", "Scan ticks skipped because a scan overran"),
)


def _number(value: object) -> float | None:
    """A signal's value as a gauge sample, None for text, booleans and no value."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    return None


class _Collector:
    """Builds the metric families from the table and the stats at every scrape."""

    def __init__(self, table: SignalTable, stats: Callable[[], Mapping[str, PollStats]]
                 ) -> None:
        self._table = table
        self._stats = stats

    def describe(self) -> list[Metric]:
        return []  # no describe-time collection (the registry would call collect())

    def collect(self) -> Iterable[Metric]:
        snapshot = self._table.snapshot()
        value = GaugeMetricFamily("dlmsd_signal_value", "Value of a numeric signal read ok",
                                  labels=["device", "signal", "obis", "unit"])
        for s in snapshot.signals:
            number = _number(s.value)
            if number is not None and s.status is SignalStatus.OK:
                value.add_metric([s.device_alias, s.signal_alias, f"{s.obis}:{s.attribute}",
                                  s.unit], number)
        yield value
        up = GaugeMetricFamily("dlmsd_device_up", "1 while the device is online",
                               labels=["device", "port"])
        connects = CounterMetricFamily("dlmsd_connects", "Associations made",
                                       labels=["device"])
        scans = CounterMetricFamily("dlmsd_scans", "Scans done", labels=["device"])
        failures = CounterMetricFamily("dlmsd_failures", "Times the device went offline",
                                       labels=["device"])
        for d in snapshot.devices:
            if d.status is DeviceStatus.DISABLED:
                continue
            up.add_metric([d.device_alias, d.port],
                          1.0 if d.status is DeviceStatus.ONLINE else 0.0)
            connects.add_metric([d.device_alias], d.connects)
            scans.add_metric([d.device_alias], d.scans)
            failures.add_metric([d.device_alias], d.failures)
        yield from (up, connects, scans, failures)
        stats = self._stats()
        for name, attr, text in _STAT_COUNTERS:
            family = CounterMetricFamily(name, text, labels=["device"])
            for alias, st in stats.items():
                family.add_metric([alias], getattr(st, attr))
            yield family
        histogram = HistogramMetricFamily("dlmsd_scan_duration_seconds",
                                          "Duration of a device's scans", labels=["device"])
        for alias, st in stats.items():
            buckets = [(repr(bound), float(count))
                       for bound, count in zip(SCAN_BUCKETS_S, st.scan_buckets, strict=True)]
            buckets.append(("+Inf", float(st.scan_count)))
            histogram.add_metric([alias], buckets, st.scan_seconds)
        yield histogram
        first = GaugeMetricFamily("dlmsd_first_scan_timestamp_seconds",
                                  "UNIX time the device's first scan was complete",
                                  labels=["device"])
        for alias, st in stats.items():
            if st.first_scan_at is not None:
                first.add_metric([alias], st.first_scan_at)
        yield first


def metrics_text(table: SignalTable, stats: Mapping[str, PollStats]) -> bytes:
    """/metrics' body: the table and the stats in Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(table, lambda: stats))
    return generate_latest(registry)


def _json(doc: object, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(doc, indent=2, default=str), status=status,
                        content_type="application/json")


class HttpServer:
    """The API on ``config.listen``; :meth:`start` raises OSError (with a message
    naming the address) when it cannot listen there."""

    def __init__(self, config: HttpConfig, table: SignalTable,
                 stats: Callable[[], Mapping[str, PollStats]], log: Any) -> None:
        self.config = config
        self.table = table
        self._stats = stats
        self.log = log
        self._runner: web.AppRunner | None = None
        self._started = time.monotonic()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(table, stats))
        token = config.token
        self._token = b"Bearer " + token.reveal() if token is not None else None

    # -- the app -----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/api/v1/signals", self._signals)
        app.router.add_get("/api/v1/devices", self._devices)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._token is not None:
            given = request.headers.get("Authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, self._token):
                return _json({"error": "unauthorized"}, 401)
        try:
            return await handler(request)
        except web.HTTPException as exc:  # 404, 405: a JSON body, the usual status
            return web.json_response({"error": exc.reason}, status=exc.status,
                                     headers={k: v for k, v in exc.headers.items()
                                              if k == "Allow"})
        except Exception as exc:  # a bug: logged, never shown to the client
            self.log.error("http_error", path=request.path, error=repr(exc), exc_info=True)
            return _json({"error": "internal error"}, 500)

    async def _signals(self, request: web.Request) -> web.Response:
        return web.Response(text=table_json(self.table.snapshot()),
                            content_type="application/json")

    async def _devices(self, request: web.Request) -> web.Response:
        stats = self._stats()
        devices = []
        for d in self.table.snapshot().devices:
            doc = d.to_json()
            st = stats.get(d.device_alias)
            if st is not None:
                doc.update({"reads": st.reads, "read_errors": st.read_errors,
                            "timeouts": st.timeouts, "retries": st.retries,
                            "reconnects": st.reconnects, "resends": st.resends,
                            "late_scans": st.late_scans, "missed_scans": st.missed_scans,
                            "first_scan_at": st.first_scan_at})
            devices.append(doc)
        return _json({"devices": devices})

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        devices = self.table.snapshot().devices
        return _json({"status": "ok", "version": __version__,
                      "uptime_s": round(time.monotonic() - self._started, 3),
                      "devices_online": sum(d.status is DeviceStatus.ONLINE for d in devices),
                      "devices": sum(d.status is not DeviceStatus.DISABLED for d in devices)})

    # -- running -----------------------------------------------------------------------

    async def start(self) -> None:
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            error = OSError(f"http.listen {self.config.listen}: cannot listen: "
                            f"{exc.strerror or exc}")
            error.errno = exc.errno
            raise error from None
        self._runner = runner
        notice(self.log, "http_listening", listen=self.config.listen,
               token=self.config.token is not None)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
