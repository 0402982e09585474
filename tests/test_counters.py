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

from dlmsd.counters import MAX_COUNTER, CounterStore, CounterStoreError
from dlmsd.errors import ConfigError, LocalProtocolError, RemoteProtocolError


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


def test_check_received_rejects_replay_and_persists(tmp_path: Path) -> None:
    with CounterStore(tmp_path) as store:
        store.check_received("m1", 5)
        store.check_received("m1", 9)
        for stale in (9, 3):
            with pytest.raises(RemoteProtocolError, match="not above the last accepted 9") as info:
                store.check_received("m1", stale)
            assert info.value.code == stale
        assert stored(store, "m1")["last_received"] == 9
    with CounterStore(tmp_path) as store:
        assert store.last_received("m1") == 9
        with pytest.raises(RemoteProtocolError):
            store.check_received("m1", 9)
        store.check_received("m1", 10)
        with pytest.raises(RemoteProtocolError, match="outside"):
            store.check_received("m1", 1 << 32)


def test_lazy_received_counters_are_written_on_close(tmp_path: Path) -> None:
    store = CounterStore(tmp_path, sync_received=False)
    store.check_received("m1", 42)
    assert not store.path_for("m1").exists()
    store.close()
    with CounterStore(tmp_path) as again:
        assert again.last_received("m1") == 42


def test_reservation_also_writes_the_received_counter(tmp_path: Path) -> None:
    with CounterStore(tmp_path, sync_received=False, block=3) as store:
        store.check_received("m1", 7)
        store.next("m1")
        assert stored(store, "m1")["last_received"] == 7


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
    ("[]", "not a dlmsd-invocation-counters/1 document"),
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
