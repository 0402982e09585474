"""scripts/fuzz: every target runs inputs and none fails, and it does find failures.

The fuzzer runs as a subprocess, as a person runs it.  That it can fail is shown with
a plugin file of fake targets (``--plugin``, a hidden option): one that raises a
KeyError (not one of the package's errors), one that breaks no rule but sleeps
past the time bound, one that holds more memory than its bound, and one that never
returns.
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FUZZ = REPO / "scripts" / "fuzz"
ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", re.MULTILINE)


def fuzz(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FUZZ), *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def rows(stdout: str) -> dict[str, tuple[int, ...]]:
    """target -> (inputs, decoded, refused, failures, distinct)"""
    return {m[1]: tuple(int(m[i]) for i in range(2, 7)) for m in ROW.finditer(stdout)}


@cache
def listed() -> list[str]:
    result = fuzz("--list")
    assert result.returncode == 0, result.stderr
    return [line.split()[0] for line in result.stdout.splitlines()]


def test_list_names_every_decoder() -> None:
    names = listed()
    for expected in ("hdlc-frame", "hdlc-deframer", "hdlc-parameters", "wrapper", "apdu-ln",
                     "apdu-sn", "axdr", "acse", "iec-lines", "iec-opening", "security",
                     "hdlc-client", "hdlc-meter", "wrapper-meter", "reader-ln-hdlc",
                     "reader-sn-hdlc", "reader-ln-wrapper-blocks", "reader-sn-wrapper-blocks",
                     "reader-ln-hdlc-gmac", "reader-ln-mode-e"):
        assert expected in names
    assert len(names) == len(set(names))


def test_three_seconds_every_target_runs_none_fails() -> None:
    result = fuzz("--seconds", "3", "--seed", "1")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    table = rows(result.stdout)
    assert set(table) == set(listed())
    for name, (inputs, decoded, refused, failures, distinct) in table.items():
        assert inputs > 0 and decoded + refused == inputs, (name, table[name])
        assert failures == distinct == 0, name
    # the mutations reach past the first check: some inputs decode, some are refused
    assert table["apdu-ln"][1] > 0 and table["apdu-ln"][2] > 0
    assert table["hdlc-frame"][1] > 0 and table["hdlc-frame"][2] > 0
    assert "0 failures" in result.stdout


PLUGIN = '''
import time
from fuzzing import Target
from dlmsd.errors import DecodeError
from dlmsd.protocol.apdu import decode_apdu

HELD = []

def buggy(data):
    decode_apdu(data)  # DecodeError is allowed
    if data != SEED:  # a mutated APDU that still decodes
        return {}["a decoder bug"]  # KeyError is not

def slow(data):
    time.sleep(0.03)

def greedy(data):
    HELD[:] = [bytearray(8 << 20)]

def endless(data):
    while True:
        pass

SEED = bytes.fromhex("C001C100030100010800FF0200")
SEEDS = lambda: [SEED]
TARGETS = [
    Target("fake-buggy", "raises KeyError", SEEDS, buggy),
    Target("fake-slow", "sleeps past its bound", SEEDS, slow, time_bound=0.005),
    Target("fake-greedy", "holds 8 MiB", SEEDS, greedy, memory_bound=1 << 20),
    Target("fake-endless", "never returns", SEEDS, endless, time_bound=0.02),
]
'''


def test_failures_are_found_printed_and_saved(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN, encoding="utf-8")
    failures = tmp_path / "failures"
    result = fuzz("--seconds", "2", "--seed", "3", "--plugin", str(plugin), "--failures",
                  str(failures), "--target", "fake-buggy", "fake-slow", "fake-greedy",
                  "fake-endless", "axdr")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    table = rows(out)
    assert set(table) == {"fake-buggy", "fake-slow", "fake-greedy", "fake-endless", "axdr"}
    for name in ("fake-buggy", "fake-slow", "fake-greedy", "fake-endless"):
        assert table[name][3] > 0, (name, out)
    assert table["axdr"][3] == 0
    # each failure names the target and kind, and shows the input as hex and why
    assert re.search(r"FAIL fake-buggy \[exception\] input [0-9A-F]+\n", out)
    assert "KeyError: 'a decoder bug'" in out and "Traceback" in out
    assert re.search(r"FAIL fake-slow \[slow\] input C001C1000301.*\n.*took [\d.]+ ms "
                     r"\(bound 5 ms\)", out)
    assert re.search(r"FAIL fake-greedy \[memory\] input .*\n.*peak [\d.]+ MB", out)
    assert re.search(r"FAIL fake-endless \[hang\] input [0-9A-F]+\n(.*\n)*?.*Hang: still "
                     r"running", out)
    saved = sorted(p.name for p in failures.iterdir())
    assert any(name.startswith("fake-buggy-") for name in saved), saved
    text = next(failures.glob("fake-buggy-*")).read_text(encoding="utf-8")
    assert "target: fake-buggy\nkind: exception\ninput: " in text and "KeyError" in text


def test_same_seed_same_inputs(tmp_path: Path) -> None:
    """Deterministic for a given --seed: the failing inputs (the first of each kind)
    come out the same."""
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN, encoding="utf-8")

    def first_failure(seed: str) -> str:
        result = fuzz("--seconds", "0.5", "--seed", seed, "--plugin", str(plugin),
                      "--target", "fake-buggy")
        (line,) = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
        return line

    assert first_failure("5") == first_failure("5")


def test_unknown_target_is_refused() -> None:
    result = fuzz("--target", "no-such-decoder")
    assert result.returncode == 2
    assert "unknown target(s) no-such-decoder" in result.stderr
