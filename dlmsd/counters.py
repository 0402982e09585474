"""Invocation counters that survive restarts (file I/O; no keys here).

AES-GCM is broken the moment one (key, IV) pair is used twice, and the IV of DLMS
ciphering is system title || invocation counter: the counter the client sends with a
key must never repeat, across crashes and restarts included.  This module owns

* the client's outgoing counter per device: :meth:`CounterStore.next` hands out
  strictly increasing values, each one *below a reservation already on disk*;
* the meter's last accepted counter per device: :meth:`CounterStore.check_received`
  rejects a counter that is not strictly greater (replay protection).

Why no value is ever reused.  The file of a device holds ``reserved_up_to``.  Values
are handed out only while they are below the value on disk; when the next value
reaches it, the store first writes ``next value + block`` and only after that write
is durable (temp file, fsync, ``os.replace``, fsync of the directory) hands the value
out.  ``os.replace`` is atomic, so a crash at any point leaves either the old or the
new reservation on disk, and every value handed out so far is below whichever it is.
After a restart, counting resumes *at* the reservation on disk, above every value
ever used.  The price is at most ``block - 1`` skipped values per restart, which is
fine: counters must increase, not be contiguous.

One directory belongs to one process: an exclusive lock (``.lock``, flock) is taken
when the store opens, because two processes sharing the files would hand out the
same values.  Files are JSON, one per device, ``ic-<quoted alias>.json``.
A corrupt or unreadable file is an error, never a reason to start again from zero.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

from dlmsd.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from dlmsd.protocol.security import MAX_COUNTER

__all__ = [
    "DEFAULT_BLOCK",
    "MAX_COUNTER",
    "CounterStore",
    "CounterStoreError",
    "open_counter_store",
]

#: Values reserved per write: at most one write per 100 APDUs sent.
DEFAULT_BLOCK: Final = 100
_FORMAT: Final = "dlmsd-invocation-counters/1"
_LOCK_NAME: Final = ".lock"
_MAX_NAME: Final = 200  # below every file system's 255-byte name limit


class CounterStoreError(ConfigError):
    """The counter directory or one of its files cannot be used; names the path and
    what is wrong.  Nothing is handed out until it is fixed."""


@dataclass
class _Device:
    next_value: int
    reserved_up_to: int  # as on disk: every value handed out is below it
    last_received: int | None
    dirty: bool = False  # last_received not yet on disk (sync_received=False)


class CounterStore:
    """Per-device invocation counters persisted in ``directory``.

    ``first`` is the first value of a device never seen before; ``block`` how many
    values one write reserves.  With ``sync_received=False`` the meter's counters
    are written only with the next reservation and on :meth:`close`/:meth:`flush`
    (a crash may then forget the last few, weakening replay protection after a
    restart); with True (default) each accepted counter is written before it is
    accepted.  Thread-safe; use one store per directory per process.
    """

    def __init__(self, directory: str | os.PathLike[str], *, block: int = DEFAULT_BLOCK,
                 first: int = 1, sync_received: bool = True) -> None:
        if isinstance(block, bool) or not 1 <= block <= MAX_COUNTER:
            raise LocalProtocolError(f"reservation block {block!r} outside 1..2**32-1")
        if isinstance(first, bool) or not 0 <= first <= MAX_COUNTER:
            raise LocalProtocolError(f"first counter {first!r} outside 0..2**32-1")
        self.directory = Path(directory)
        self.block = block
        self.first = first
        self.sync_received = sync_received
        self._lock = threading.Lock()
        self._devices: dict[str, _Device] = {}
        self._lock_fd: int | None = None
        self._open_directory()

    def __repr__(self) -> str:
        state = "open" if self._lock_fd is not None else "closed"
        return f"CounterStore({str(self.directory)!r}, {state}, devices={len(self._devices)})"

    # ------------------------------------------------------------------ lifecycle

    def _open_directory(self) -> None:
        path = self.directory
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except FileExistsError:
            raise CounterStoreError(
                f"invocation counter directory {path} exists and is not a directory") from None
        except OSError as exc:
            raise CounterStoreError(
                f"invocation counter directory {path} cannot be created: "
                f"{exc.strerror or exc}") from None
        if not path.is_dir():
            raise CounterStoreError(f"invocation counter directory {path} is not a directory")
        lock_path = path / _LOCK_NAME
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise CounterStoreError(
                f"invocation counter directory {path} is not writable: "
                f"{exc.strerror or exc} ({lock_path})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise CounterStoreError(
                    f"invocation counter directory {path} is in use by another store "
                    f"(lock {lock_path} is held); sharing it would reuse counters") from None
            raise CounterStoreError(
                f"cannot lock {lock_path}: {exc.strerror or exc}") from None
        self._lock_fd = fd

    def close(self) -> None:
        """Write pending received counters and release the directory."""
        with self._lock:
            if self._lock_fd is None:
                return
            try:
                self._flush_locked()
            finally:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    def __enter__(self) -> CounterStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def flush(self) -> None:
        """Write the received counters not yet on disk (``sync_received=False``)."""
        with self._lock:
            self._check_open()
            self._flush_locked()

    def _flush_locked(self) -> None:
        for alias, device in self._devices.items():
            if device.dirty:
                self._write(alias, device.reserved_up_to, device.last_received)
                device.dirty = False

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise LocalProtocolError(f"counter store {self.directory} is closed")

    # ------------------------------------------------------------------ public

    def next(self, device: str) -> int:
        """The next invocation counter to send to ``device``; it is already covered by
        a reservation on disk when returned."""
        with self._lock:
            self._check_open()
            state = self._device(device)
            value = state.next_value
            if value > MAX_COUNTER:
                raise CounterStoreError(
                    f"invocation counter of device {device!r} is exhausted (2**32-1 used); "
                    "the keys must be renewed before ciphering again")
            if value >= state.reserved_up_to:
                reserve = min(value + self.block, MAX_COUNTER + 1)
                self._write(device, reserve, state.last_received)  # raises: nothing handed out
                state.reserved_up_to = reserve
                state.dirty = False
            state.next_value = value + 1
            return value

    def peek(self, device: str) -> int:
        """The value :meth:`next` would return, without using it."""
        with self._lock:
            self._check_open()
            return self._device(device).next_value

    def advance_to(self, device: str, value: int) -> None:
        """Never hand out less than ``value`` from now on (e.g. the meter reported, in
        an invocation-counter-error or its frame counter object, what it expects)."""
        if isinstance(value, bool) or not 0 <= value <= MAX_COUNTER + 1:
            raise LocalProtocolError(f"invocation counter {value!r} outside 0..2**32")
        with self._lock:
            self._check_open()
            state = self._device(device)
            # No write needed: next() reserves before handing out anything at or above
            # the reservation on disk.
            state.next_value = max(state.next_value, value)

    def check_received(self, device: str, counter: int) -> None:
        """Accept the meter's invocation counter only if strictly greater than the last
        accepted one; call it after the APDU's tag verified, never before."""
        if isinstance(counter, bool) or not 0 <= counter <= MAX_COUNTER:
            raise RemoteProtocolError(f"invocation counter {counter!r} outside 0..2**32-1")
        with self._lock:
            self._check_open()
            state = self._device(device)
            last = state.last_received
            if last is not None and counter <= last:
                raise RemoteProtocolError(
                    f"device {device!r} sent invocation counter {counter}, not above the last "
                    f"accepted {last}: replayed or stale APDU rejected", code=counter)
            if self.sync_received:
                self._write(device, state.reserved_up_to, counter)
            else:
                state.dirty = True
            state.last_received = counter

    def last_received(self, device: str) -> int | None:
        with self._lock:
            self._check_open()
            return self._device(device).last_received

    # ------------------------------------------------------------------ files

    def path_for(self, device: str) -> Path:
        """The file holding ``device``'s counters."""
        if not isinstance(device, str) or not device:
            raise LocalProtocolError(f"device alias {device!r} must be a non-empty string")
        name = "ic-" + quote(device, safe="-_.") + ".json"
        if len(name.encode()) > _MAX_NAME:
            name = "ic-sha256-" + hashlib.sha256(device.encode()).hexdigest() + ".json"
        return self.directory / name

    def _device(self, alias: str) -> _Device:
        state = self._devices.get(alias)
        if state is None:
            state = self._load(alias)
            self._devices[alias] = state
        return state

    def _load(self, alias: str) -> _Device:
        path = self.path_for(alias)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return _Device(self.first, self.first, None)
        except UnicodeDecodeError:
            raise self._corrupt(path, "not UTF-8 text") from None
        except OSError as exc:
            raise CounterStoreError(
                f"cannot read invocation counter file {path}: {exc.strerror or exc}") from None
        try:
            doc = json.loads(text)
        except ValueError:
            raise self._corrupt(path, "not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise self._corrupt(path, f"not a {_FORMAT} document")
        if doc.get("device") != alias:
            raise self._corrupt(path, f"holds device {doc.get('device')!r}, not {alias!r}")
        if doc.get("reserved_up_to") is None:
            raise self._corrupt(path, "reserved_up_to is missing")
        reserved = _counter_field(doc, "reserved_up_to", MAX_COUNTER + 1, path)
        last = None
        if doc.get("last_received") is not None:
            last = _counter_field(doc, "last_received", MAX_COUNTER, path)
        return _Device(reserved, reserved, last)

    @staticmethod
    def _corrupt(path: Path, what: str) -> CounterStoreError:
        return CounterStoreError(
            f"invocation counter file {path} is corrupt ({what}); refusing to guess a "
            "counter, as reusing one breaks AES-GCM: restore the file, or renew the keys "
            "and delete it")

    def _write(self, alias: str, reserved_up_to: int, last_received: int | None) -> None:
        path = self.path_for(alias)
        doc = {"format": _FORMAT, "device": alias, "reserved_up_to": reserved_up_to,
               "last_received": last_received}
        data = (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
        temp = path.with_name(path.name + ".tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
            _fsync_directory(self.directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise CounterStoreError(
                f"cannot write invocation counter file {path}: "
                f"{exc.strerror or exc}") from None


def _counter_field(doc: dict[str, Any], name: str, maximum: int, path: Path) -> int:
    value = doc[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise CounterStore._corrupt(path, f"{name} is {value!r}, expected an integer "
                                          f"0..{maximum}")
    return value


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable (POSIX: fsync of the file does not cover the
    # directory entry).
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_OPEN: dict[str, CounterStore] = {}


def open_counter_store(directory: str) -> CounterStore:
    """The process's store for ``directory``, opened on first use.  One per directory
    per process: the store locks its directory, and two stores of one process would
    each hand out the same counters."""
    key = os.path.realpath(directory)
    store = _OPEN.get(key)
    if store is None:
        store = _OPEN[key] = CounterStore(directory)
    return store
