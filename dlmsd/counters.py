"""Invocation counters that survive restarts (file I/O; no keys here).

AES-GCM is broken the moment one (key, IV) pair is used twice, and the IV of DLMS
ciphering is system title || invocation counter: the counter the client sends with a
key must never repeat, across crashes and restarts included.  This module owns

* the client's outgoing counter per device: :meth:`CounterStore.next` hands out
  strictly increasing values, each one *below a reservation already on disk*;
* the meter's last accepted counter per (meter system title, key) of each device:
  :meth:`CounterStore.check_received` rejects a counter that is not strictly greater
  than the last one accepted from that meter under that key (replay protection).

Why no value is ever reused.  The file of a device holds ``reserved_up_to``.  Values
are handed out only while they are below the value on disk; when the next value
reaches it, the store first writes ``next value + block`` and only after that write
is durable (temp file, fsync, ``os.replace``, fsync of the directory) hands the value
out.  ``os.replace`` is atomic, so a crash at any point leaves either the old or the
new reservation on disk, and every value handed out so far is below whichever it is.
After a restart, counting resumes *at* the reservation on disk, above every value
ever used.  The price is at most ``block - 1`` skipped values per restart, which is
fine: counters must increase, not be contiguous.

The outgoing counter stays one strictly increasing sequence per device, whatever the
keys or the meter: its IV is *our* system title || counter, and after a re-keying we
cannot know when the meter took the new key (a configuration edit may come before
the meter's key change, or be undone), so starting again at 0 could repeat an IV under
a key already used.  A meter given a new key accepts any counter above the (reset)
last it saw, so going on upwards costs nothing but reaching 2**32 sooner (136 years at
one APDU a second).  Nothing read of the Green Book here asks for a reset.

Meters that change.  The meter's counters are kept per (system title, key): the title
is the one its APDUs are deciphered with (the AARE's responding-AP-title, or the one a
general-glo-ciphering APDU carries), and the key is named by a fingerprint, never
stored (:func:`dlmsd.readers.key_fingerprint`: the first 8 octets of SHA-256 over a
fixed label and the block cipher and authentication keys).  Why that one: a hash is
one-way, the label keeps it apart from any other digest of the same keys, and 8
octets of a key of 16 or 32 leave 2**64 or more keys behind every fingerprint, so the
file cannot name the key even to a search of the whole key space, while two key pairs
of one device collide with odds of 2**-64 (and a collision only keeps the older
sequence: a refusal, never an accepted replay).  Both keys count, because a verified
APDU proves the pair (under the encryption-only policy no tag is checked, and replay
protection means little anyway).  A meter replaced under the
same device (a new system title, its counter back at 1) or given new keys starts a new
sequence at once, and :meth:`~CounterStore.check_received` says so (the reader logs
it, naming the device and the new title); the same meter under the same key must still
rise.  Only counters of APDUs whose tag verified reach the store, so a new sequence
needs the keys.  At most :data:`MAX_METERS` sequences are kept per device, the least
recently used dropped first (the meter in use is never the one dropped); a sequence
dropped so would start afresh if its meter came back, which needs more than 8 meters
sharing one device's keys.

Files are JSON, one per device, ``ic-<quoted alias>.json``, format
``dlmsd-invocation-counters/2``: ``reserved_up_to`` and ``meters``, a list of
``{"system_title": hex, "key": fingerprint, "last_received": n}``, least recently used
first.  Files of format 1 (one ``last_received`` per device) still load and are
rewritten as format 2 by the next write (atomically, as every write).  Their
``last_received`` stays the floor of every meter of the device until one is accepted
above it, and then belongs to that meter: the meter read before the upgrade is almost
surely the one read after it, and replay protection is never weaker than before.
A meter swapped at the moment of the upgrade is refused as it was before.

One directory belongs to one process: an exclusive lock (``.lock``, flock) is taken
when the store opens, because two processes sharing the files would hand out the
same values.  A corrupt or unreadable file is an error, never a reason to start again
from zero.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

from dlmsd.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from dlmsd.protocol.client import CounterStart
from dlmsd.protocol.security import MAX_COUNTER, SYSTEM_TITLE_SIZE
from dlmsd.statefile import json_bytes, write_durably

__all__ = [
    "DEFAULT_BLOCK",
    "MAX_COUNTER",
    "MAX_METERS",
    "CounterStart",
    "CounterStore",
    "CounterStoreError",
    "open_counter_store",
]

#: Values reserved per write: at most one write per 100 APDUs sent.
DEFAULT_BLOCK: Final = 100
#: (system title, key) sequences of the meter's counters kept per device.
MAX_METERS: Final = 8
_FORMAT: Final = "dlmsd-invocation-counters/2"
_FORMAT_1: Final = "dlmsd-invocation-counters/1"
_FINGERPRINT_SIZE: Final = 16  # hex digits: 8 octets
_LOCK_NAME: Final = ".lock"
_MAX_NAME: Final = 200  # below every file system's 255-byte name limit


class CounterStoreError(ConfigError):
    """The counter directory or one of its files cannot be used; names the path and
    what is wrong.  Nothing is handed out until it is fixed."""


@dataclass
class _Meter:
    """The last counter accepted from one meter (system title) under one key."""

    system_title: bytes
    key: str  # the keys' fingerprint, never a key
    last_received: int


@dataclass
class _Device:
    next_value: int
    reserved_up_to: int  # as on disk: every value handed out is below it
    meters: list[_Meter]  # least recently used first, at most MAX_METERS
    #: format 1's last_received, the floor of every meter until one is accepted above it
    legacy: int | None = None
    dirty: bool = False  # meters not yet on disk (sync_received=False)


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
                self._write(alias, device, device.reserved_up_to)
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
                self._write(device, state, reserve)  # raises: nothing handed out
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

    def check_received(self, device: str, counter: int, *, meter: bytes,
                       key: str) -> CounterStart | None:
        """Accept the meter's invocation counter only if strictly greater than the last
        one accepted from ``meter`` (its system title) under ``key`` (the keys'
        fingerprint); call it after the APDU's tag verified, never before.

        Returns None when the counter goes on a known sequence, or why a new one starts
        (a first meter, a new system title, a new key) for the caller to log."""
        if isinstance(counter, bool) or not 0 <= counter <= MAX_COUNTER:
            raise RemoteProtocolError(f"invocation counter {counter!r} outside 0..2**32-1")
        title = _check_title(meter)
        _check_fingerprint(key)
        with self._lock:
            self._check_open()
            state = self._device(device)
            entry = next((m for m in state.meters
                          if m.system_title == title and m.key == key), None)
            last = entry.last_received if entry is not None else state.legacy
            if last is not None and counter <= last:
                raise RemoteProtocolError(
                    f"device {device!r} sent invocation counter {counter}, not above the last "
                    f"accepted {last} from system title {title.hex().upper()} under these "
                    "keys: replayed or stale APDU rejected", code=counter)
            start: CounterStart | None = None
            if entry is None and state.legacy is None:
                start = (CounterStart.FIRST if not state.meters
                         else CounterStart.NEW_KEY
                         if any(m.system_title == title for m in state.meters)
                         else CounterStart.NEW_METER)
            meters = [m for m in state.meters if m is not entry]
            meters.append(_Meter(title, key, counter))
            meters = meters[-MAX_METERS:]
            if self.sync_received:
                self._write(device, replace(state, meters=meters, legacy=None),
                            state.reserved_up_to)
            else:
                state.dirty = True
            state.meters, state.legacy = meters, None
            return start

    def last_received(self, device: str, *, meter: bytes, key: str) -> int | None:
        """The last counter accepted from ``meter`` under ``key`` (a format 1 file's
        counter, while no meter took it over), or None."""
        title = _check_title(meter)
        with self._lock:
            self._check_open()
            state = self._device(device)
            entry = next((m for m in state.meters
                          if m.system_title == title and m.key == key), None)
            return entry.last_received if entry is not None else state.legacy

    def meters(self, device: str) -> list[tuple[bytes, str, int]]:
        """(system title, key fingerprint, last accepted counter) of each sequence kept
        for ``device``, least recently used first."""
        with self._lock:
            self._check_open()
            return [(m.system_title, m.key, m.last_received)
                    for m in self._device(device).meters]

    # ------------------------------------------------------------------ files

    def path_for(self, device: str) -> Path:
        """The file holding ``device``'s counters."""
        if not isinstance(device, str) or not device:
            raise LocalProtocolError(f"device alias {device!r} must be a non-empty string")
        name = "ic-" + quote(device, safe="-_.") + ".json"
        if len(name.encode()) > _MAX_NAME:
            import hashlib  # here: only an alias too long for a file name

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
            return _Device(self.first, self.first, [])
        except UnicodeDecodeError:
            raise self._corrupt(path, "not UTF-8 text") from None
        except OSError as exc:
            raise CounterStoreError(
                f"cannot read invocation counter file {path}: {exc.strerror or exc}") from None
        try:
            doc = json.loads(text)
        except ValueError:
            raise self._corrupt(path, "not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("format") not in (_FORMAT, _FORMAT_1):
            raise self._corrupt(path, f"not a {_FORMAT} (or {_FORMAT_1}) document")
        if doc.get("device") != alias:
            raise self._corrupt(path, f"holds device {doc.get('device')!r}, not {alias!r}")
        if doc.get("reserved_up_to") is None:
            raise self._corrupt(path, "reserved_up_to is missing")
        reserved = _counter_field(doc, "reserved_up_to", MAX_COUNTER + 1, path)
        # format 1's counter of the device (in format 2: while no meter has taken it)
        legacy = None
        if doc.get("last_received") is not None:
            legacy = _counter_field(doc, "last_received", MAX_COUNTER, path)
        if doc["format"] == _FORMAT_1:
            return _Device(reserved, reserved, [], legacy)
        items = doc.get("meters")
        if not isinstance(items, list) or len(items) > MAX_METERS:
            raise self._corrupt(path, f"meters is not a list of at most {MAX_METERS}")
        return _Device(reserved, reserved, [_meter_of(item, index, path)
                                            for index, item in enumerate(items)], legacy)

    @staticmethod
    def _corrupt(path: Path, what: str) -> CounterStoreError:
        return CounterStoreError(
            f"invocation counter file {path} is corrupt ({what}); refusing to guess a "
            "counter, as reusing one breaks AES-GCM: restore the file, or renew the keys "
            "and delete it")

    def _write(self, alias: str, device: _Device, reserved_up_to: int) -> None:
        path = self.path_for(alias)
        doc: dict[str, Any] = {
            "format": _FORMAT, "device": alias, "reserved_up_to": reserved_up_to,
            "meters": [{"system_title": m.system_title.hex().upper(), "key": m.key,
                        "last_received": m.last_received} for m in device.meters]}
        if device.legacy is not None:  # format 1's counter, no meter has taken it yet
            doc["last_received"] = device.legacy
        try:
            write_durably(path, json_bytes(doc))
        except OSError as exc:
            raise CounterStoreError(
                f"cannot write invocation counter file {path}: "
                f"{exc.strerror or exc}") from None


def _counter_field(doc: dict[str, Any], name: str, maximum: int, path: Path,
                   where: str = "") -> int:
    value = doc[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise CounterStore._corrupt(path, f"{where}{name} is {value!r}, expected an integer "
                                          f"0..{maximum}")
    return value


def _meter_of(item: object, index: int, path: Path) -> _Meter:
    where = f"meters[{index}]."
    if not isinstance(item, dict) or "last_received" not in item:
        raise CounterStore._corrupt(path, f"meters[{index}] is not an object with "
                                          "system_title, key and last_received")
    try:
        title = _check_title(bytes.fromhex(item.get("system_title", "")))
        key = _check_fingerprint(item.get("key"))
    except (TypeError, ValueError, LocalProtocolError):
        raise CounterStore._corrupt(path, f"{where}system_title or {where}key is not "
                                          "what this store writes") from None
    return _Meter(title, key, _counter_field(item, "last_received", MAX_COUNTER, path, where))


def _check_title(meter: object) -> bytes:
    if not isinstance(meter, bytes | bytearray) or len(meter) != SYSTEM_TITLE_SIZE:
        raise LocalProtocolError(f"a meter's system title is {SYSTEM_TITLE_SIZE} octets, "
                                 f"not {meter!r}")
    return bytes(meter)


def _check_fingerprint(key: object) -> str:
    if (not isinstance(key, str) or len(key) != _FINGERPRINT_SIZE
            or key.strip("0123456789abcdef")):
        # Not the key's text either way: a fingerprint is 16 lower-case hex digits, and
        # something else given here is not repeated in the message.
        raise LocalProtocolError(f"a key fingerprint is {_FINGERPRINT_SIZE} lower-case hex "
                                 "digits (dlmsd.readers.key_fingerprint), never the key")
    return key


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
