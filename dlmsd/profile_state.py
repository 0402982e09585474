"""Where each profile's reading stopped, across restarts (file I/O).

One small JSON file per device and profile, ``<state_dir>/profiles/<device>--<profile>.json``
(the aliases quoted; too long a name is a SHA-256), format ``dlmsd-profile-state/1``:
``device``, ``profile``, ``obis``, ``last`` (the meter's date-time of the last row read,
its 12 octets in hex, so the next read asks the meter for exactly what it gave) and
``ts`` (the same as ISO 8601, for people).  Written after the rows were handed to the
outputs, atomically as the invocation counters are (temp file, fsync, ``os.replace``,
fsync of the directory): a crash leaves the old or the new state, never half a file.
A crash between the two (rows published, state not yet written) gives those rows again
after the restart; nothing is ever skipped.

A file that cannot be read or that names another device, profile or OBIS is reported
(:class:`ProfileStateError`) and the profile starts over with its backfill: a wrong
state would skip rows or repeat them, and the backfill repeats at most ``backfill_hours``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final
from urllib.parse import quote

from dlmsd.errors import DlmsdError
from dlmsd.protocol.axdr import DateTime
from dlmsd.protocol.profile import timestamp_text
from dlmsd.statefile import json_bytes, write_durably

__all__ = ["ProfileStateError", "ProfileStateStore"]

_FORMAT: Final = "dlmsd-profile-state/1"
_MAX_NAME: Final = 255


class ProfileStateError(DlmsdError):
    """A profile's state file cannot be read, or is not this profile's."""


class ProfileStateStore:
    """The state files of one state directory (``<state_dir>/profiles``)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path_for(self, device: str, profile: str) -> Path:
        name = f"{quote(device, safe='-_.')}--{quote(profile, safe='-_.')}.json"
        if len(name.encode()) > _MAX_NAME:
            import hashlib  # here: only names too long for a file name

            digest = hashlib.sha256(f"{device}\0{profile}".encode()).hexdigest()
            name = f"sha256-{digest}.json"
        return self.directory / name

    def load(self, device: str, profile: str, obis: str) -> DateTime | None:
        """The time of the last row read, or None (never read).  Raises
        :class:`ProfileStateError` for a file that is not this profile's state."""
        path = self.path_for(device, profile)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileStateError(f"cannot read profile state {path}: {exc}") from None
        try:
            doc = json.loads(text)
        except ValueError:
            raise ProfileStateError(f"profile state {path} is not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ProfileStateError(f"profile state {path} is not a {_FORMAT} document")
        found = (doc.get("device"), doc.get("profile"), doc.get("obis"))
        if found != (device, profile, obis):
            raise ProfileStateError(f"profile state {path} holds {found}, not "
                                    f"{(device, profile, obis)}")
        last = doc.get("last")
        try:
            stamp = DateTime.from_bytes(bytes.fromhex(last)) if isinstance(last, str) else None
        except (ValueError, DlmsdError):
            stamp = None
        if stamp is None or timestamp_text(stamp) is None:
            raise ProfileStateError(f"profile state {path}: last {last!r} is not the 12 "
                                    "octets of a valid date-time in hex")
        return stamp

    def save(self, device: str, profile: str, obis: str, last: DateTime) -> None:
        """Record ``last`` atomically.  Raises :class:`ProfileStateError`."""
        path = self.path_for(device, profile)
        doc = {"format": _FORMAT, "device": device, "profile": profile, "obis": obis,
               "last": last.to_bytes().hex().upper(), "ts": timestamp_text(last)}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_durably(path, json_bytes(doc))
        except OSError as exc:
            raise ProfileStateError(f"cannot write profile state {path}: "
                                    f"{exc.strerror or exc}") from None
