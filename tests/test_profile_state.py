"""The profile state files (dlmsd.profile_state): round trip, atomic replacement,
and a clear error for a file that is not this profile's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlmsd.profile_state import ProfileStateError, ProfileStateStore
from dlmsd.protocol.axdr import ClockStatus, DateTime

STAMP = DateTime(2024, 5, 6, 1, 0, 15, 0, 0, -60, ClockStatus.DAYLIGHT_SAVING_ACTIVE)


def test_round_trip_and_file(tmp_path: Path) -> None:
    store = ProfileStateStore(tmp_path / "profiles")
    assert store.load("m 1", "lp", "1.0.99.1.0.255") is None  # never read
    store.save("m 1", "lp", "1.0.99.1.0.255", STAMP)
    assert store.load("m 1", "lp", "1.0.99.1.0.255") == STAMP
    path = store.path_for("m 1", "lp")
    assert path.name == "m%201--lp.json"
    assert json.loads(path.read_text()) == {
        "format": "dlmsd-profile-state/1", "device": "m 1", "profile": "lp",
        "obis": "1.0.99.1.0.255", "last": "07E8050601000F0000FFC480",
        "ts": "2024-05-06T00:15:00+01:00"}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    later = DateTime(2024, 5, 6, 1, 0, 30, 0, 0, -60, ClockStatus(0))
    store.save("m 1", "lp", "1.0.99.1.0.255", later)
    assert store.load("m 1", "lp", "1.0.99.1.0.255") == later


def test_long_names_are_hashed(tmp_path: Path) -> None:
    store = ProfileStateStore(tmp_path)
    assert store.path_for("d" * 200, "p" * 200).name.startswith("sha256-")


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not valid JSON"),
    ("[]", "not a dlmsd-profile-state/1 document"),
    (json.dumps({"format": "dlmsd-profile-state/1", "device": "m1", "profile": "other",
                 "obis": "1.0.99.1.0.255", "last": "00"}), "holds"),
    (json.dumps({"format": "dlmsd-profile-state/1", "device": "m1", "profile": "lp",
                 "obis": "1.0.99.1.0.255", "last": "zz"}), "is not the 12 octets"),
    (json.dumps({"format": "dlmsd-profile-state/1", "device": "m1", "profile": "lp",
                 "obis": "1.0.99.1.0.255", "last": "FFFFFFFFFFFFFFFFFFFFFFFF"}),
     "is not the 12 octets"),
])
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    store = ProfileStateStore(tmp_path)
    store.path_for("m1", "lp").write_text(text)
    with pytest.raises(ProfileStateError, match=message):
        store.load("m1", "lp", "1.0.99.1.0.255")


def test_unwritable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = ProfileStateStore(blocker / "profiles")
    with pytest.raises(ProfileStateError, match="cannot write profile state"):
        store.save("m1", "lp", "1.0.99.1.0.255", STAMP)
