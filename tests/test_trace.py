"""The flight recorder (dlmsd/trace.py): what it keeps is bounded in frames and bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlmsd.trace import BUDGET, DEPTH, SUMMARY_ALLOWANCE, FrameTracer


class Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))

    info = warning


def test_keeps_the_last_depth_frames_in_order() -> None:
    log = Lines()
    tracer = FrameTracer(log, enabled=False)
    for k in range(DEPTH + 5):
        tracer.frame("tx" if k % 2 else "rx", bytes([k]), f"f{k}")
    assert [f.summary for f in tracer.recent] == [f"f{k}" for k in range(5, DEPTH + 5)]
    tracer.dump("timeout")
    assert log.lines[0] == ("flight_recorder", {"reason": "timeout", "frames": DEPTH})
    assert [fields["summary"] for _, fields in log.lines[1:]] == [
        f"f{k}" for k in range(5, DEPTH + 5)]
    assert log.lines[-1][1]["hex"] == f"{DEPTH + 4:02X}" and not tracer.recent
    assert not any(event.startswith("dlms_") for event, _ in log.lines)  # tracing off


def test_large_frames_give_way_within_the_budget() -> None:
    """An object list's 128-octet segments do not fill the recorder: the oldest frames
    go while their octets (and a fixed allowance per summary, which may not be made
    yet) pass the budget; the newest always stays."""
    tracer = FrameTracer(Lines(), enabled=False, depth=32, budget=800)
    for k in range(20):
        tracer.frame("rx", bytes(128), f"segment {k}")
    kept = [f.summary for f in tracer.recent]
    assert kept == [f"segment {k}" for k in range(16, 20)]  # 4 x (128 + 64) <= 800
    assert sum(len(f.data) + SUMMARY_ALLOWANCE for f in tracer.recent) <= 800
    tracer.frame("rx", bytes(1000), "huge")
    assert [f.summary for f in tracer.recent] == ["huge"]
    tracer.frame("tx", b"\x01", "small")
    assert [f.summary for f in tracer.recent] == ["small"]  # the huge one was over


def test_default_budget_keeps_a_few_scans_of_a_wrapper_meter() -> None:
    """Ten-register scans over the wrapper (119 octets out, 60 in): the recorder holds
    the last exchanges, requests and answers."""
    tracer = FrameTracer(Lines(), enabled=False)
    for scan in range(40):
        tracer.frame("tx", bytes(119), f"GET-Request-With-List 10 #{scan}".ljust(100))
        tracer.frame("rx", bytes(60), f"GET-Response-With-List 10 #{scan}".ljust(100))
    kept = list(tracer.recent)
    assert 6 <= len(kept) <= DEPTH and kept[-1].summary.startswith("GET-Response")
    assert sum(len(f.data) + SUMMARY_ALLOWANCE for f in kept) <= BUDGET


def test_the_budget_does_not_make_a_deferred_summary() -> None:
    """Counting a frame against the budget never describes it (that is the point of a
    deferred summary); the text is made when the recorder is dumped."""
    made: list[int] = []

    def later(k: int) -> Callable[[], str]:
        def text() -> str:
            made.append(k)
            return f"frame {k}"
        return text

    log = Lines()
    tracer = FrameTracer(log, enabled=False, dump_log=log)
    for k in range(40):
        tracer.frame("rx", bytes(100), later(k))
    assert made == []
    tracer.dump("test")
    assert made == list(range(40 - len(made), 40)) and made
