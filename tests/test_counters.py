"""Persistent invocation counters (dlmsd.counters)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from dlmsd.counters import MAX_COUNTER, MAX_METERS, CounterStart, CounterStore, CounterStoreError
from dlmsd.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from dlmsd.readers import key_fingerprint


def stored(store: CounterStore, device: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads(store.path_for(device).read_text(encoding="utf-8"))
    return doc


def test_strictly_increasing_and_reserved_before_use(tmp_path: Path) -> None:
    with CounterStore(tmp_path, block=10) as store:
        values = [store.next("m1") for _ in range(25)]
        assert values == list(range(1, 26))
        # Every value handed out is below the reservation on disk.
        assert stored(store, "m1")["reserved_up_to"] == 31
        assert store.peek("m1") == 26
        # Devices are independent.
        assert store.next("m2") == 1


def test_writes_once_per_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    replaced: list[str] = []
    real_replace = os.replace

    def counting_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        replaced.append(str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", counting_replace)
    with CounterStore(tmp_path, block=100) as store:
        for _ in range(250):
            store.next("m1")
    assert len(replaced) == 3


def test_restart_continues_above_every_used_value(tmp_path: Path) -> None:
    with CounterStore(tmp_path, block=10) as store:
        used = [store.next("m1") for _ in range(3)]
    with CounterStore(tmp_path, block=10) as store:
        after = store.next("m1")
    assert after > max(used)
    assert after == 11  # the reservation on disk; 4..10 are skipped, never reused


def test_crash_between_reservation_and_use(tmp_path: Path) -> None:
    # A child process takes values and dies without closing (no flush, no unlock).
    child = textwrap.dedent(f"""
        import os, sys
        from dlmsd.counters import CounterStore
        store = CounterStore({str(tmp_path)!r}, block=50)
        print(",".join(str(store.next("m1")) for _ in range(73)), flush=True)
        os._exit(3)
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 3, result.stderr
    used = [int(v) for v in result.stdout.strip().split(",")]
    assert used == list(range(1, 74))
    with CounterStore(tmp_path, block=50) as store:
        first = store.next("m1")
    assert first > max(used)
    assert first == 101  # 1 + 50 + 50: the second block was reserved before 51 was used


def test_failed_write_hands_out_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = CounterStore(tmp_path, block=5)
    assert [store.next("m1") for _ in range(5)] == [1, 2, 3, 4, 5]
    real_fsync = os.fsync

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(CounterStoreError, match=r"cannot write invocation counter file .*"
                                                r"ic-m1\.json: Input/output error"):
        store.next("m1")
    assert not list(tmp_path.glob("*.tmp"))  # the temp file is removed
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert store.next("m1") == 6  # nothing was handed out by the failed call
    store.close()


def test_second_store_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    with CounterStore(tmp_path), pytest.raises(CounterStoreError,
                                               match="is in use by another store"):
        CounterStore(tmp_path)
    CounterStore(tmp_path).close()  # free again after close


def test_closed_store_refuses(tmp_path: Path) -> None:
    store = CounterStore(tmp_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(LocalProtocolError, match="closed"):
        store.next("m1")


# System titles and key fingerprints of the tests (what the ciphering passes).
A, B = bytes.fromhex("4D4D4D0000000001"), bytes.fromhex("4D4D4D0000000002")
K1, K2 = "0123456789abcdef", "fedcba9876543210"


def test_check_received_rejects_replay_and_persists(tmp_path: Path) -> None:
    with CounterStore(tmp_path) as store:
        assert store.check_received("m1", 5, meter=A, key=K1) is CounterStart.FIRST
        assert store.check_received("m1", 9, meter=A, key=K1) is None
        for stale in (9, 3):
            with pytest.raises(RemoteProtocolError, match="not above the last accepted 9 "
                                                          "from system title 4D4D4D0000000001"
                               ) as info:
                store.check_received("m1", stale, meter=A, key=K1)
            assert info.value.code == stale
        assert stored(store, "m1")["meters"] == [
            {"system_title": "4D4D4D0000000001", "key": K1, "last_received": 9}]
        assert stored(store, "m1")["format"] == "dlmsd-invocation-counters/2"
    with CounterStore(tmp_path) as store:
        assert store.last_received("m1", meter=A, key=K1) == 9
        with pytest.raises(RemoteProtocolError):
            store.check_received("m1", 9, meter=A, key=K1)
        store.check_received("m1", 10, meter=A, key=K1)
        with pytest.raises(RemoteProtocolError, match="outside"):
            store.check_received("m1", 1 << 32, meter=A, key=K1)


def test_a_new_meter_or_new_keys_start_afresh_a_replay_does_not(tmp_path: Path) -> None:
    """A meter swapped under the device (a new system title, its counter back at 1) and
    a re-keyed meter (new fingerprint) are accepted at once, and say why; the old
    meter's sequence is kept (back again, it must still rise), and each sequence
    refuses its own replays."""
    with CounterStore(tmp_path) as store:
        store.check_received("m1", 1000, meter=A, key=K1)
        assert store.check_received("m1", 1, meter=B, key=K1) is CounterStart.NEW_METER
        assert store.check_received("m1", 2, meter=B, key=K1) is None
        with pytest.raises(RemoteProtocolError, match="not above the last accepted 2"):
            store.check_received("m1", 2, meter=B, key=K1)
        assert store.check_received("m1", 1, meter=A, key=K2) is CounterStart.NEW_KEY
        with pytest.raises(RemoteProtocolError, match="not above the last accepted 1000"):
            store.check_received("m1", 999, meter=A, key=K1)  # the old meter, old key
        # the devices are apart
        assert store.check_received("m2", 1, meter=A, key=K1) is CounterStart.FIRST
    with CounterStore(tmp_path) as store:
        assert store.meters("m1") == [(A, K1, 1000), (B, K1, 2), (A, K2, 1)]
        with pytest.raises(RemoteProtocolError):
            store.check_received("m1", 1, meter=A, key=K2)


def test_the_key_is_never_on_disk(tmp_path: Path) -> None:
    """Only the fingerprint is stored; what is not a fingerprint (a key, say) is
    refused and not repeated in the error."""
    key = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    with CounterStore(tmp_path) as store:
        fingerprint = key_fingerprint(key, key)
        assert len(fingerprint) == 16 and key.hex() not in fingerprint
        store.check_received("m1", 3, meter=A, key=fingerprint)
        for bad in (key.hex(), "ABCDEF0123456789", "", 5):
            with pytest.raises(LocalProtocolError, match="fingerprint") as info:
                store.check_received("m1", 4, meter=A, key=bad)  # type: ignore[arg-type]
            assert key.hex() not in str(info.value).lower()
        text = store.path_for("m1").read_text(encoding="utf-8")
        assert key.hex() not in text.lower() and fingerprint in text
        with pytest.raises(LocalProtocolError, match="system title is 8 octets"):
            store.check_received("m1", 4, meter=b"short", key=fingerprint)


def test_key_fingerprint_vector() -> None:
    """SHA-256 over the label and both keys, first 8 octets (checked with hashlib here,
    an independent spelling of the same definition); different keys differ."""
    import hashlib
    ek, ak = bytes(range(16)), bytes(range(0xD0, 0xE0))  # the Green Book example keys
    expected = hashlib.sha256(b"dlmsd invocation counter keys v1\0" + ek + ak).hexdigest()[:16]
    assert key_fingerprint(ek, ak) == expected
    assert key_fingerprint(ak, ek) != expected and key_fingerprint(ek, ek) != expected


def test_at_most_eight_meters_the_least_recently_used_dropped(tmp_path: Path) -> None:
    titles = [bytes.fromhex(f"4D4D4D00000000{n:02X}") for n in range(10)]
    with CounterStore(tmp_path) as store:
        for title in titles[:8]:
            store.check_received("m1", 50, meter=title, key=K1)
        store.check_received("m1", 51, meter=titles[0], key=K1)  # the first in use again
        store.check_received("m1", 5, meter=titles[8], key=K1)  # a ninth: drops titles[1]
        kept = [title for title, _key, _last in store.meters("m1")]
        assert len(kept) == MAX_METERS and titles[1] not in kept and titles[0] in kept
        assert kept[-1] == titles[8]
        # titles[1] is forgotten: it starts afresh (the price of the bound)
        assert store.check_received("m1", 1, meter=titles[1], key=K1) is CounterStart.NEW_METER
        with pytest.raises(RemoteProtocolError):  # the one in use is still checked
            store.check_received("m1", 51, meter=titles[0], key=K1)
    assert len(json.loads((tmp_path / "ic-m1.json").read_text())["meters"]) == MAX_METERS


def test_format_1_loads_and_migrates_on_the_first_write(tmp_path: Path) -> None:
    """A dlmsd-invocation-counters/1 file: its reservation holds, and its last_received
    is the floor of every meter until one is accepted above it, which then owns it; the
    next write is format 2."""
    old = {"format": "dlmsd-invocation-counters/1", "device": "m1", "reserved_up_to": 201,
           "last_received": 77}
    (tmp_path / "ic-m1.json").write_text(json.dumps(old), encoding="utf-8")
    with CounterStore(tmp_path, block=10) as store:
        assert store.next("m1") == 201  # above every value the old file reserved
        doc = stored(store, "m1")  # the reservation was the first write: format 2
        assert doc["format"] == "dlmsd-invocation-counters/2"
        assert doc["last_received"] == 77 and doc["meters"] == []
        for meter in (A, B):  # whichever meter comes first: the old counter is its floor
            with pytest.raises(RemoteProtocolError, match="not above the last accepted 77"):
                store.check_received("m1", 77, meter=meter, key=K1)
        assert store.check_received("m1", 78, meter=A, key=K1) is None  # goes on
        doc = stored(store, "m1")
        assert "last_received" not in doc
        assert doc["meters"] == [{"system_title": "4D4D4D0000000001", "key": K1,
                                  "last_received": 78}]
        # now a second meter is a new one
        assert store.check_received("m1", 1, meter=B, key=K1) is CounterStart.NEW_METER
    # the floor survives a restart before any meter took it
    (tmp_path / "ic-m2.json").write_text(json.dumps(old | {"device": "m2"}),
                                         encoding="utf-8")
    with CounterStore(tmp_path) as store:
        store.next("m2")
    with CounterStore(tmp_path) as store:
        assert store.last_received("m2", meter=B, key=K2) == 77


def test_a_crash_while_migrating_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    """The migration is an ordinary write (temp file, fsync, os.replace): a failed write
    leaves the format 1 file as it was, and nothing is accepted."""
    old = {"format": "dlmsd-invocation-counters/1", "device": "m1", "reserved_up_to": 5,
           "last_received": 7}
    path = tmp_path / "ic-m1.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    store = CounterStore(tmp_path)
    real_replace = os.replace

    def failing(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        raise OSError(28, "No space left on device")

    os.replace = failing  # type: ignore[assignment]
    try:
        with pytest.raises(CounterStoreError, match="No space left"):
            store.check_received("m1", 8, meter=A, key=K1)
    finally:
        os.replace = real_replace
    assert json.loads(path.read_text(encoding="utf-8")) == old
    with pytest.raises(RemoteProtocolError):  # not accepted: the floor still holds
        store.check_received("m1", 7, meter=A, key=K1)
    store.check_received("m1", 8, meter=A, key=K1)
    store.close()


def test_lazy_received_counters_are_written_on_close(tmp_path: Path) -> None:
    store = CounterStore(tmp_path, sync_received=False)
    store.check_received("m1", 42, meter=A, key=K1)
    assert not store.path_for("m1").exists()
    store.close()
    with CounterStore(tmp_path) as again:
        assert again.last_received("m1", meter=A, key=K1) == 42


def test_reservation_also_writes_the_received_counter(tmp_path: Path) -> None:
    with CounterStore(tmp_path, sync_received=False, block=3) as store:
        store.check_received("m1", 7, meter=A, key=K1)
        store.next("m1")
        assert stored(store, "m1")["meters"][0]["last_received"] == 7


def test_advance_to(tmp_path: Path) -> None:
    with CounterStore(tmp_path, block=10) as store:
        store.next("m1")
        store.advance_to("m1", 5)
        assert store.next("m1") == 5
        store.advance_to("m1", 2)  # never backwards
        assert store.next("m1") == 6
        store.advance_to("m1", 1000)
        assert store.next("m1") == 1000
        assert stored(store, "m1")["reserved_up_to"] == 1010


def test_exhaustion(tmp_path: Path) -> None:
    with CounterStore(tmp_path, block=100) as store:
        store.advance_to("m1", MAX_COUNTER - 1)
        assert store.next("m1") == MAX_COUNTER - 1
        assert store.next("m1") == MAX_COUNTER
        assert stored(store, "m1")["reserved_up_to"] == MAX_COUNTER + 1
        with pytest.raises(CounterStoreError, match=r"exhausted.*renewed"):
            store.next("m1")
    with CounterStore(tmp_path) as store, pytest.raises(CounterStoreError, match="exhausted"):
        store.next("m1")


@pytest.mark.parametrize(("content", "what"), [
    ("not json {", "not valid JSON"),
    ("[]", "not a dlmsd-invocation-counters/2 (or dlmsd-invocation-counters/1) document"),
    (json.dumps({"format": "dlmsd-invocation-counters/1", "device": "other",
                 "reserved_up_to": 5}), "holds device 'other', not 'm1'"),
    (json.dumps({"format": "dlmsd-invocation-counters/1", "device": "m1"}),
     "reserved_up_to is missing"),
    (json.dumps({"format": "dlmsd-invocation-counters/1", "device": "m1",
                 "reserved_up_to": -1}), "reserved_up_to is -1"),
    (json.dumps({"format": "dlmsd-invocation-counters/1", "device": "m1",
                 "reserved_up_to": "7"}), "reserved_up_to is '7'"),
    (json.dumps({"format": "dlmsd-invocation-counters/1", "device": "m1",
                 "reserved_up_to": 7, "last_received": True}), "last_received is True"),
    (json.dumps({"format": "dlmsd-invocation-counters/2", "device": "m1",
                 "reserved_up_to": 7, "meters": {}}), "meters is not a list of at most 8"),
    (json.dumps({"format": "dlmsd-invocation-counters/2", "device": "m1",
                 "reserved_up_to": 7, "meters": [{"system_title": "4D", "key": "0" * 16,
                                                  "last_received": 1}]}),
     "meters[0].system_title or meters[0].key is not what this store writes"),
    (json.dumps({"format": "dlmsd-invocation-counters/2", "device": "m1",
                 "reserved_up_to": 7, "meters": [{"system_title": "4D" * 8, "key": "0" * 16,
                                                  "last_received": -2}]}),
     "meters[0].last_received is -2"),
])
def test_corrupt_file_is_named_and_never_reset(tmp_path: Path, content: str, what: str) -> None:
    with CounterStore(tmp_path) as store:
        path = store.path_for("m1")
        path.write_text(content, encoding="utf-8")
        with pytest.raises(CounterStoreError) as info:
            store.next("m1")
        message = str(info.value)
        assert str(path) in message and what in message and "corrupt" in message
        assert isinstance(info.value, ConfigError)
        assert path.read_text(encoding="utf-8") == content  # left for the operator
        with pytest.raises(CounterStoreError):  # still refused on the next call
            store.next("m1")


def test_binary_garbage_is_corrupt(tmp_path: Path) -> None:
    with CounterStore(tmp_path) as store:
        store.path_for("m1").write_bytes(b"\xff\xfe\x00garbage")
        with pytest.raises(CounterStoreError, match="not UTF-8"):
            store.next("m1")


def test_leftover_temp_file_is_ignored(tmp_path: Path) -> None:
    with CounterStore(tmp_path, block=10) as store:
        store.next("m1")
        path = store.path_for("m1")
    path.with_name(path.name + ".tmp").write_text("half written", encoding="utf-8")
    with CounterStore(tmp_path, block=10) as store:
        assert store.next("m1") == 11


def test_directory_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(CounterStoreError, match=re.escape(
            f"directory {blocker}/counters cannot be created: Not a directory")):
        CounterStore(blocker / "counters")
    with pytest.raises(CounterStoreError, match=re.escape(f"{blocker} exists and is not a")):
        CounterStore(blocker)


def test_unwritable_directory() -> None:
    # Not under tmp_path: pytest's base directory is private to its user, and the
    # unprivileged user below must reach the directory to be refused by it.
    base = Path(tempfile.mkdtemp(prefix="dlmsd-counters-"))
    base.chmod(0o755)
    locked = base / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    probe = textwrap.dedent(f"""
        from dlmsd.counters import CounterStore, CounterStoreError
        for path in ({str(locked)!r}, {str(locked / "sub")!r}):
            try:
                CounterStore(path)
            except CounterStoreError as exc:
                print(exc)
    """)
    command = [sys.executable, "-c", probe]
    if os.geteuid() == 0:  # root ignores permissions: drop to nobody if we can
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permissions cannot be tested")
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                check=False)
    finally:
        locked.chmod(0o700)
        shutil.rmtree(base)
    if "Permission denied" not in result.stdout and "ModuleNotFoundError" in result.stderr:
        pytest.skip("the unprivileged user cannot import dlmsd here")
    assert result.stdout.splitlines() == [
        f"invocation counter directory {locked} is not writable: Permission denied "
        f"({locked}/.lock)",
        f"invocation counter directory {locked}/sub cannot be created: Permission denied",
    ], result.stderr


def test_aliases_become_safe_file_names(tmp_path: Path) -> None:
    with CounterStore(tmp_path) as store:
        for alias in ("../escape", "a/b", "zähler", "%2F", ".", "x" * 300):
            path = store.path_for(alias)
            assert path.parent == tmp_path and path.name.startswith("ic-")
            assert store.next(alias) == 1
        names = {store.path_for(a).name for a in ("a/b", "a%2Fb", "a_b")}
        assert len(names) == 3
        with pytest.raises(LocalProtocolError, match="non-empty"):
            store.next("")
    assert not (tmp_path.parent / "escape").exists()


def test_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(LocalProtocolError, match="block"):
        CounterStore(tmp_path, block=0)
    with pytest.raises(LocalProtocolError, match="first"):
        CounterStore(tmp_path, first=-1)


def test_repr(tmp_path: Path) -> None:
    with CounterStore(tmp_path) as store:
        store.next("m1")
        assert repr(store) == f"CounterStore({str(tmp_path)!r}, open, devices=1)"
