"""Logging: structlog configured from the ``-d`` level, ``-p`` port and log format.

Levels follow syslog (``-d``): 0 emergency, 1 alert, 2 critical, 3 error, 4 warning,
5 notice, 6 info, 7 debug; a level shows its own lines and every more severe one. The
daemon has no emergency or alert lines of its own, so 0, 1 and 2 all show only critical
lines. Notice (between warning and info) is a normal but significant event: the daemon
starting, stopping and reloading. Every line from a device is bound with ``device=`` and
``port=``; with ``-p PORT`` only lines of that port (and daemon-wide lines that name
no port) are printed. The last processor masks every registered secret (see
:mod:`dlmsd.secret`) in the rendered line, whatever route it took to get there.

Timestamps are local time with their offset (``2024-06-01T12:00:00.123+02:00``), in
text and JSON. Records of the standard :mod:`logging` module (asyncio's "Task exception
was never retrieved", a library's warning) go through the same processors, so with
``--log-format json`` they are JSON lines too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import MutableMapping
from datetime import datetime
from typing import Any, TextIO

import structlog

from dlmsd.secret import mask_secrets

__all__ = [
    "NOTICE",
    "SYSLOG_LEVELS",
    "configure_logging",
    "get_logger",
    "get_trace_logger",
    "json_line",
    "notice",
    "port_matches",
]

#: Between logging.WARNING (30) and logging.INFO (20), as syslog's notice.
NOTICE = 25
#: syslog level (the -d argument) -> the lowest Python level that is shown
SYSLOG_LEVELS: dict[int, int] = {
    0: logging.CRITICAL,
    1: logging.CRITICAL,
    2: logging.CRITICAL,
    3: logging.ERROR,
    4: logging.WARNING,
    5: NOTICE,
    6: logging.INFO,
    7: logging.DEBUG,
}


#: The logger's methods and the level each logs at.
_METHOD_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": NOTICE,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_LEVEL_METHODS = {level: name for name, level in _METHOD_LEVELS.items()}
_filtering_classes: dict[int, type[structlog.BoundLoggerBase]] = {}


def _nop(self: Any, event: str, *args: Any, **kw: Any) -> None:
    return None


def _filtering_logger(min_level: int) -> type[structlog.BoundLoggerBase]:
    """A bound logger class like structlog's filtering ones, with a ``notice`` method:
    a method below ``min_level`` does nothing."""
    if min_level in _filtering_classes:
        return _filtering_classes[min_level]

    def method(name: str, level: int) -> Any:
        if level < min_level:
            return _nop

        def meth(self: Any, event: str, *args: Any, **kw: Any) -> Any:
            return self._proxy_to_logger(name, event % args if args else event, **kw)

        meth.__name__ = name
        return meth

    def log(self: Any, level: int, event: str, *args: Any, **kw: Any) -> Any:
        if level < min_level:
            return None
        name = _LEVEL_METHODS[level]
        return self._proxy_to_logger(name, event % args if args else event, **kw)

    def exception(self: Any, event: str, *args: Any, **kw: Any) -> Any:
        kw.setdefault("exc_info", True)
        return self.error(event, *args, **kw)

    methods: dict[str, Any] = {name: method(name, level)
                               for name, level in _METHOD_LEVELS.items()}
    methods.update(log=log, exception=exception, warn=methods["warning"],
                   fatal=methods["critical"], msg=methods["info"],
                   is_enabled_for=lambda self, level: level >= min_level,
                   get_effective_level=lambda self: min_level)
    cls = type(f"DlmsdLoggerAt{min_level}", (structlog.BoundLoggerBase,), methods)
    _filtering_classes[min_level] = cls
    return cls


def notice(log: Any, event: str, **kw: Any) -> None:
    """Log ``event`` at notice level (``-d5``).  A logger without that level (structlog
    not set up by :func:`configure_logging`, as in a library use) logs it as info."""
    method = getattr(log, "notice", None)
    (method if method is not None else log.info)(event, **kw)


def port_matches(selected: str, port: str) -> bool:
    """Whether a line tagged ``port`` is shown under ``-p selected``.

    Matches the port exactly as configured (``PORT1``, ``/dev/ttyS1``,
    ``192.168.1.5:4059``), or a serial device by its file name (``ttyS1``).
    """
    if selected == port:
        return True
    return "/" in port and port.rsplit("/", 1)[-1] == selected


class _PortFilter:
    def __init__(self, port: str | None) -> None:
        self.port = port

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]
                 ) -> MutableMapping[str, Any]:
        if self.port is not None:
            line_port = event.get("port")
            if line_port is not None and not port_matches(self.port, str(line_port)):
                raise structlog.DropEvent
        return event


class _MaskingRenderer:
    """Render with ``inner`` and mask secrets in the final text."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        return mask_secrets(str(self.inner(logger, method, event)))


def _level_name(logger: Any, method: str, event: MutableMapping[str, Any]
                ) -> MutableMapping[str, Any]:
    level = event.get("level")
    if level == "notset" or level is None:
        event["level"] = method
    return event


class _SafePrintLogger(structlog.PrintLogger):
    """A print logger whose write failures (a closed or full stream) are dropped:
    a broken log stream must never stop a poller."""

    def msg(self, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().msg(message)

    log = debug = info = notice = warn = warning = err = error = critical = exception = msg
    fatal = failure = msg


def now_iso() -> str:
    """Now, local time with its UTC offset, to the millisecond."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def _timestamp(logger: Any, method: str, event: MutableMapping[str, Any]
               ) -> MutableMapping[str, Any]:
    event["timestamp"] = now_iso()
    return event


def json_line(level: str, event: str, **fields: Any) -> str:
    """One log line as JSON (``timestamp``, ``level``, ``event`` and ``fields``), secrets
    masked: for what is said before or outside structlog (configuration errors)."""
    doc = {"event": event, **fields, "level": level, "timestamp": now_iso()}
    return mask_secrets(json.dumps(doc, default=str))


def _structlog_method(levelno: int) -> str:
    for level, name in sorted(_LEVEL_METHODS.items(), reverse=True):
        if levelno >= level:
            return name
    return "debug"


class _StdlibBridge(logging.Handler):
    """Hands records of the standard logging module to structlog (same format, level
    filter, port filter and masking as the daemon's own lines)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info:
                fields["exc_info"] = record.exc_info
            log = structlog.get_logger("dlmsd")
            getattr(log, _structlog_method(record.levelno))(message, **fields)
        except Exception:  # logging must never raise
            self.handleError(record)


def _bridge_stdlib_logging(min_level: int) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StdlibBridge):
            root.removeHandler(handler)
    root.addHandler(_StdlibBridge())
    root.setLevel(min_level)


def configure_logging(debug: int = 5, fmt: str = "text", port: str | None = None,
                      stream: TextIO | None = None) -> None:
    """Configure structlog for the whole process (and route the standard logging
    module's records through it)."""
    out = stream if stream is not None else sys.stderr
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(default=str)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0,
                                                 exception_formatter=structlog.dev.plain_traceback)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _level_name,
            _PortFilter(port),
            _timestamp,
            structlog.processors.format_exc_info if fmt == "json" else _identity,
            _MaskingRenderer(renderer),
        ],
        wrapper_class=_filtering_logger(SYSLOG_LEVELS[debug]),
        logger_factory=lambda *args: _SafePrintLogger(out),
        cache_logger_on_first_use=False,
    )
    _bridge_stdlib_logging(SYSLOG_LEVELS[debug])


def _identity(logger: Any, method: str, event: MutableMapping[str, Any]
              ) -> MutableMapping[str, Any]:
    return event


def get_logger(**bound: Any) -> Any:
    """A structlog logger with ``bound`` key/values on every line."""
    return structlog.get_logger("dlmsd").bind(**bound)


def get_trace_logger(**bound: Any) -> Any:
    """A logger for ``--dlms`` frame traces: shown whatever the ``-d`` level.

    The user asked for the traffic by giving ``--dlms``; ``-p`` still filters it.
    """
    wrapper = structlog.make_filtering_bound_logger(logging.DEBUG)
    return structlog.wrap_logger(None, wrapper_class=wrapper).bind(**bound)
