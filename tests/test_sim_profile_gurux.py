"""gurux_dlms 1.0.203's client (an independent implementation, GPLv2, test-only) reads
the profiles of ``dlms-sim`` (a separate process, the bundled model) by range and by
entry, with LN GET (HDLC and wrapper, in blocks) and SN READ, and meets every
``--profile-quirk``.  The expected rows are computed here from the model's documented
formulas (dlmsd/sim/README.md, "Profiles"), not by the simulator's code:

* load profile 1.0.99.1.0.255: row k captured at 2024-05-22T00:00:00+02:00 + 15 min k,
  import 100000 + floor(250 h), export 4000 + floor(10 h) (h: hours since that origin);
  960 entries, the last at the clock's 2024-06-01T12:00:00+02:00 without ``--live``.
* event log 0.0.99.98.0.255: row k at 2024-05-01T03:00:00+02:00 + 6 h k, event code
  (1, 2, 4, 5)[k mod 4]; 100 entries.

gurux facts met here: readRowsByRange restricts on the profile's sort_object when it
was read, else on the first capture object; readRowsByEntry sends from_entry and
to_entry = from + count - 1, and for columns (from_selected_value, a column *count*)
where the Blue Book has the last column's index (the two agree from the first column,
which is what is read here).  A range's dates carry gurux's deviation unless
DateTimeSkips.DEVITATION (sic) is set (then 0x8000).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

gurux = pytest.importorskip("gurux_dlms")
from gurux_dlms import GXDateTime  # type: ignore[import-untyped]  # noqa: E402
from gurux_dlms.enums import DateTimeSkips  # type: ignore[import-untyped]  # noqa: E402
from gurux_dlms.objects import GXDLMSProfileGeneric  # type: ignore[import-untyped]  # noqa: E402
from interop.gurux_client import GuruxSession  # noqa: E402
from test_sim_gurux import HDLC, WRAPPER, SimProcess, running  # noqa: E402

pytestmark = pytest.mark.interop

CEST = dt.timezone(dt.timedelta(hours=2))
LP_ORIGIN = dt.datetime(2024, 5, 22, 0, 0, tzinfo=CEST)
EVENTS_ORIGIN = dt.datetime(2024, 5, 1, 3, 0, tzinfo=CEST)
FIXED_NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=CEST)  # the bundled clock's time
LP_BASE_NAME = 0x0880  # the bundled model's SN layout (after the invocation counter)
QUARTER = dt.timedelta(minutes=15)


def lp_row(moment: dt.datetime) -> list[Any]:
    seconds = int((moment - LP_ORIGIN).total_seconds())
    assert seconds % 900 == 0
    return [moment, 100000 + 250 * seconds // 3600, 4000 + 10 * seconds // 3600]


def event_row(k: int) -> list[Any]:
    return [EVENTS_ORIGIN + dt.timedelta(hours=6 * k), (1, 2, 4, 5)[k % 4]]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with running("--hdlc-port", "0", "--wrapper-port", "0") as process:
        yield process


def session(sim: SimProcess, kind: str = "wrapper", **kwargs: Any) -> GuruxSession:
    base = HDLC if kind == "hdlc" else WRAPPER
    return GuruxSession("127.0.0.1", sim.ports[kind], **{**base, **kwargs})


def profile(s: GuruxSession, obis: str, attributes: tuple[int, ...] = (3, 6, 7)
            ) -> GXDLMSProfileGeneric:
    """A gurux profile object with the attributes gurux needs read from the meter."""
    pg = GXDLMSProfileGeneric(obis)
    if not s.client.useLogicalNameReferencing:
        pg.shortName = LP_BASE_NAME
    for attribute in attributes:
        reply = s.transact(s.client.read(pg, attribute))
        assert reply.error == 0, (attribute, reply.error)
        s.client.updateValue(pg, attribute, reply.value)
    return pg


def buffer(s: GuruxSession, pg: GXDLMSProfileGeneric, frames: Any) -> list[list[Any]]:
    """The rows of a buffer read, as gurux parses them (the clock an aware datetime)."""
    reply = s.transact(frames)
    assert reply.error == 0, f"data-access-result {reply.error}"
    s.client.updateValue(pg, 2, reply.value)
    return [[_plain(v) for v in row] for row in pg.buffer]


def _plain(value: Any) -> Any:
    if isinstance(value, GXDateTime):
        when = value.value
        return when.replace(tzinfo=dt.timezone(when.utcoffset()))
    return int(value)


def refused(s: GuruxSession, frames: Any) -> int:
    reply = s.transact(frames)
    return int(reply.error)


# ====================================================================== by range, by entry
@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
def test_gurux_reads_the_load_profile_by_range(sim: SimProcess, kind: str) -> None:
    start = dt.datetime(2024, 6, 1, 10, 0, tzinfo=CEST)
    with session(sim, kind) as s:
        pg = profile(s, "1.0.99.1.0.255")
        assert (pg.entriesInUse, pg.sortObject.logicalName) == (960, "0.0.1.0.0.255")
        rows = buffer(s, pg, s.client.readRowsByRange(pg, start, start + 4 * QUARTER))
    assert rows == [lp_row(start + n * QUARTER) for n in range(5)]
    assert rows[0] == [start, 162500, 6500]  # 250 hours after the origin


def test_gurux_reads_the_whole_day_in_blocks_over_hdlc(sim: SimProcess) -> None:
    start = dt.datetime(2024, 5, 31, 12, 0, tzinfo=CEST)
    with session(sim, "hdlc", max_info=128, max_pdu=512) as s:
        pg = profile(s, "1.0.99.1.0.255")
        rows = buffer(s, pg, s.client.readRowsByRange(pg, start, FIXED_NOW))
    assert rows == [lp_row(start + n * QUARTER) for n in range(97)]


def test_gurux_reads_selected_columns_by_range(sim: SimProcess) -> None:
    start = dt.datetime(2024, 6, 1, 11, 0, tzinfo=CEST)
    with session(sim) as s:
        pg = profile(s, "1.0.99.1.0.255")
        export = pg.captureObjects[2]
        reply = s.transact(s.client.readRowsByRange(pg, start, FIXED_NOW, [export]))
    assert reply.error == 0
    assert [[int(v) for v in row] for row in reply.value] == [
        [lp_row(start + n * QUARTER)[2]] for n in range(5)]


def test_gurux_reads_the_load_profile_by_entry(sim: SimProcess) -> None:
    first = FIXED_NOW - 959 * QUARTER
    with session(sim) as s:
        pg = profile(s, "1.0.99.1.0.255")
        assert buffer(s, pg, s.client.readRowsByEntry(pg, 1, 2)) == [
            lp_row(first), lp_row(first + QUARTER)]
        assert buffer(s, pg, s.client.readRowsByEntry(pg, 959, 0)) == [
            lp_row(FIXED_NOW - QUARTER), lp_row(FIXED_NOW)]
        # The first two columns (gurux and the Blue Book agree from column 1).
        reply = s.transact(s.client.readRowsByEntry(pg, 480, 1, pg.captureObjects[:2]))
    assert reply.error == 0
    (row,) = reply.value
    expected = lp_row(first + 479 * QUARTER)
    assert int(row[1]) == expected[1] and len(row) == 2


def test_gurux_reads_the_event_log(sim: SimProcess) -> None:
    # 2024-05-01T03:00 + 6 h k up to 2024-06-01T12:00: k = 0..125, the last 100 kept
    with session(sim) as s:
        pg = profile(s, "0.0.99.98.0.255")
        assert pg.entriesInUse == 100
        assert buffer(s, pg, s.client.readRowsByEntry(pg, 1, 3)) == [
            event_row(k) for k in (26, 27, 28)]
        start = dt.datetime(2024, 5, 31, 0, 0, tzinfo=CEST)
        assert buffer(s, pg, s.client.readRowsByRange(pg, start, FIXED_NOW)) == [
            event_row(k) for k in range(120, 126)]


def test_gurux_reads_by_range_and_entry_over_sn() -> None:
    start = dt.datetime(2024, 6, 1, 11, 15, tzinfo=CEST)
    with running("--wrapper-port", "0", "--referencing", "SN") as sim, \
            session(sim, use_ln=False) as s:
        pg = profile(s, "1.0.99.1.0.255")
        assert buffer(s, pg, s.client.readRowsByRange(pg, start, FIXED_NOW)) == [
            lp_row(start + n * QUARTER) for n in range(4)]
        assert buffer(s, pg, s.client.readRowsByEntry(pg, 960, 1)) == [lp_row(FIXED_NOW)]


def test_gurux_sees_the_live_buffer_end_at_the_last_quarter_hour() -> None:
    with running("--wrapper-port", "0", "--live") as sim, session(sim) as s:
        before = dt.datetime.now(dt.UTC)
        pg = profile(s, "1.0.99.1.0.255")
        rows = buffer(s, pg, s.client.readRowsByEntry(pg, 959, 0))
        after = dt.datetime.now(dt.UTC)
    assert pg.entriesInUse == 960
    # the last row is the last quarter hour of the grid at the time of the read
    candidates = {LP_ORIGIN + QUARTER * ((moment - LP_ORIGIN) // QUARTER)
                  for moment in (before, after)}
    assert rows[1][0] in candidates
    assert rows == [lp_row(rows[1][0] - QUARTER), lp_row(rows[1][0])]
    assert rows[1][0].utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))


# ====================================================================== quirks
START = dt.datetime(2024, 6, 1, 11, 0, tzinfo=CEST)


def test_quirk_refuse_range_with_gurux() -> None:
    with running("--wrapper-port", "0", "--profile-quirk", "refuse-range") as sim, \
            session(sim) as s:
        pg = profile(s, "1.0.99.1.0.255")
        assert refused(s, s.client.readRowsByRange(pg, START, FIXED_NOW)) == 250  # other-reason
        assert buffer(s, pg, s.client.readRowsByEntry(pg, 960, 1)) == [lp_row(FIXED_NOW)]
    with running("--wrapper-port", "0", "--profile-quirk",
                 "refuse-range:object-unavailable") as sim, session(sim) as s:
        pg = profile(s, "1.0.99.1.0.255")
        assert refused(s, s.client.readRowsByRange(pg, START, FIXED_NOW)) == 11


def test_quirk_refuse_deviation_with_gurux() -> None:
    with running("--wrapper-port", "0", "--profile-quirk", "refuse-deviation") as sim, \
            session(sim) as s:
        pg = profile(s, "1.0.99.1.0.255")
        assert refused(s, s.client.readRowsByRange(pg, START, FIXED_NOW)) == 250
        # Dates without deviation: the meter's local time (CEST here).
        start, end = GXDateTime(START), GXDateTime(FIXED_NOW)
        start.skip |= DateTimeSkips.DEVITATION
        end.skip |= DateTimeSkips.DEVITATION
        rows = buffer(s, pg, s.client.readRowsByRange(pg, start, end))
    assert rows == [lp_row(START + n * QUARTER) for n in range(5)]


def test_quirk_clock_not_first_with_gurux() -> None:
    with running("--wrapper-port", "0", "--profile-quirk", "clock-not-first") as sim, \
            session(sim) as s:
        pg = profile(s, "1.0.99.1.0.255")
        assert [o.logicalName for o, _ in pg.captureObjects] == [
            "1.0.1.8.0.255", "1.0.2.8.0.255", "0.0.1.0.0.255"]
        assert pg.sortObject.logicalName == "0.0.1.0.0.255"
        rows = buffer(s, pg, s.client.readRowsByRange(pg, START, FIXED_NOW))
        assert rows == [[*lp_row(START + n * QUARTER)[1:], START + n * QUARTER]
                        for n in range(5)]
        # Without the sort object gurux restricts on the first column, the energy
        # register (Gurux/gurux.dlms.java pull request 13): refused.
        blind = profile(s, "1.0.99.1.0.255", (3,))
        assert refused(s, s.client.readRowsByRange(blind, START, FIXED_NOW)) == 250


def test_quirk_empty_range_with_gurux() -> None:
    with running("--wrapper-port", "0", "--profile-quirk", "empty-range") as sim, \
            session(sim) as s:
        pg = profile(s, "1.0.99.1.0.255")
        assert buffer(s, pg, s.client.readRowsByRange(pg, START, FIXED_NOW)) == []
        assert buffer(s, pg, s.client.readRowsByEntry(pg, 960, 1)) == [lp_row(FIXED_NOW)]
