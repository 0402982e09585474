"""CPU and memory a hostile meter can make us spend, against a healthy meter's same bytes.

Two hostile inputs of issue 12, each against a healthy reference of the same size
decoded in the same process (speed targets are ratios in the same run):

* null bomb: an LnClient's GET answered in Get-Response-With-Datablock blocks that
  reassemble to ``--size`` bytes of one A-XDR array of nulls (2+N bytes for N nulls),
  until the client refuses it or returns it; and a nested one, a structure of two
  arrays of nulls (its header alone does not give it away).  Reference: the same number of bytes of
  healthy 10-register GET-with-list responses, and a healthy load profile of the same
  size sent in blocks.
* flag flood: ``--size`` bytes of repeated ``7E A0`` fed to the HDLC deframer in 512-byte
  chunks; and a flood of false starts with well-formed addresses (``7E A0 1E 03 21 10``
  and a wrong header check sequence), which each need a close look.  Reference: the
  same bytes of valid I frames.

CPU is ``time.process_time`` of a run without tracing; memory is the tracemalloc
peak of a second run.

    python scripts/bench_hostile_decode.py [--size 1048576]

Prints one line per figure; nothing is timed against a fixed threshold.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlmsd.errors import DecodeError, RemoteProtocolError
from dlmsd.protocol.acse import Aare
from dlmsd.protocol.axdr import Data, DateTime, encode_data, encode_length
from dlmsd.protocol.client import Associated, GetComplete, LnClient, SendApdu
from dlmsd.protocol.hdlc_frame import Control, Frame, FrameType, HdlcAddress, HdlcDeframer
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.xdlms import (
    Conformance,
    CosemAttributeDescriptor,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseWithDatablock,
    GetResponseWithList,
    InitiateResponse,
)

PROFILE = CosemAttributeDescriptor(7, Obis(1, 0, 99, 1, 0, 255), 2)
REGISTERS = [CosemAttributeDescriptor(3, Obis(1, 0, 1, 8, k, 255), 2) for k in range(10)]
BLOCK = 1000  # raw data octets per block (a meter with a 1024-octet PDU)


def associated() -> LnClient:
    client = LnClient()
    client.associate()
    conformance = Conformance.GET | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
    conformance |= Conformance.MULTIPLE_REFERENCES
    event = client.receive_apdu(
        Aare(user_information=InitiateResponse(conformance, 1024)).to_bytes())
    assert isinstance(event, Associated)
    return client


def null_bomb(size: int) -> bytes:
    """One array of nulls whose encoding is ``size`` octets."""
    n = size - 1 - len(encode_length(size))
    return bytes([1]) + encode_length(n) + bytes(n)


def nested_null_bomb(size: int) -> bytes:
    """A structure of two arrays of nulls, ``size`` octets: the first as long as the
    decoder's node budget lets it be, so that all of it is decoded before the refusal."""
    first = min(size // 2, size - 16) - 8
    second = size - 16 - first
    return (bytes([2, 2, 1]) + encode_length(first) + bytes(first)
            + bytes([1]) + encode_length(second) + bytes(second))


def healthy_profile(size: int) -> bytes:
    """A load profile: rows {date-time, status, 4 x double-long-unsigned}, ~``size`` octets."""
    row = Data.structure(
        Data.date_time(DateTime(2026, 1, 1, 0, 15, 0)), Data.uint8(0),
        *(Data.uint32(12345678 + k) for k in range(4)))
    row_bytes = encode_data(row)
    rows = (size - 6) // len(row_bytes)
    return bytes([1]) + encode_length(rows) + row_bytes * rows


def feed_blocks(raw: bytes) -> str:
    """One long GET of ``raw`` in blocks; what the client made of it."""
    client = associated()
    iid = GetRequestNormal.from_bytes(client.get([PROFILE])).invoke_id_and_priority
    blocks = [raw[k : k + BLOCK] for k in range(0, len(raw), BLOCK)]
    try:
        for number, part in enumerate(blocks, 1):
            last = number == len(blocks)
            event = client.receive_apdu(
                GetResponseWithDatablock(last, number, part, iid).to_bytes())
            if last:
                assert isinstance(event, GetComplete), event
                value = event.results[0]
                assert isinstance(value, Data)
                return f"decoded, {len(value.as_items())} items"
            assert isinstance(event, SendApdu), event
    except (DecodeError, RemoteProtocolError) as exc:
        return f"refused at block {number} of {len(blocks)}: {exc}"
    raise AssertionError("unreachable")


def healthy_lists(size: int) -> str:
    """10-register GET-with-list responses until ``size`` octets were decoded."""
    client = associated()
    done = count = 0
    while done < size:
        iid = GetRequestWithList.from_bytes(client.get(REGISTERS)).invoke_id_and_priority
        apdu = GetResponseWithList(
            tuple(Data.uint32(1000 * k + count) for k in range(10)), iid).to_bytes()
        event = client.receive_apdu(apdu)
        assert isinstance(event, GetComplete)
        done += len(apdu)
        count += 1
    return f"decoded, {count} responses"


def frames_stream(size: int) -> bytes:
    frame = Frame(HdlcAddress(16), HdlcAddress(1), Control(FrameType.I, True, 0, 0),
                  bytes(range(256)) * 2 + b"\xe6\xe7\x00" + bytes(100))
    raw = frame.to_bytes()
    return raw * (size // len(raw) + 1)


def deframe(stream: bytes) -> str:
    deframer = HdlcDeframer()
    frames = 0
    for k in range(0, len(stream), 512):
        deframer.receive_data(stream[k : k + 512])
        while isinstance(deframer.next_frame(), Frame):
            frames += 1
    return (f"{frames} frames, {deframer.garbage_bytes} garbage, "
            f"{deframer.format_errors} format errors, {deframer.buffered} buffered")


def measure(name: str, run: Callable[[], str]) -> float:
    """CPU of one run, then the memory peak of a second run under tracemalloc."""
    start = time.process_time()
    outcome = run()
    cpu = time.process_time() - start
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{name:<28} cpu {cpu:7.3f} s  peak {peak / 1e6:7.1f} MB  {outcome[:110]}")
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1 << 20, help="octets of each input")
    size = parser.parse_args().size

    bomb, nested, profile = null_bomb(size), nested_null_bomb(size), healthy_profile(size)
    ref_lists = measure("healthy 10-register lists", lambda: healthy_lists(size))
    ref_profile = measure("healthy profile in blocks", lambda: feed_blocks(profile))
    cpu_bomb = measure("null bomb in blocks", lambda: feed_blocks(bomb))
    cpu_nested = measure("nested null bomb in blocks", lambda: feed_blocks(nested))
    print(f"null bomb / healthy lists          {cpu_bomb / ref_lists:6.3f}")
    print(f"null bomb / healthy profile        {cpu_bomb / ref_profile:6.3f}")
    print(f"nested null bomb / healthy profile {cpu_nested / ref_profile:6.3f}")

    flood = (b"\x7e\xa0" * (size // 2 + 1))[:size]
    good = frames_stream(size)[:size]
    ref_frames = measure("valid I frames", lambda: deframe(good))
    cpu_flood = measure("7E A0 flood", lambda: deframe(flood))
    print(f"7E A0 flood / valid frames         {cpu_flood / ref_frames:6.3f}")
    # false starts with well-formed addresses: each needs its header check sequence
    fakes = (bytes.fromhex("7EA01E032110") + bytes(2)) * (size // 8 + 1)
    cpu_fakes = measure("plausible false starts", lambda: deframe(fakes[:size]))
    print(f"plausible starts / valid frames    {cpu_fakes / ref_frames:6.3f}")


if __name__ == "__main__":
    main()
