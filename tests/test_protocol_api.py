"""dlmsd.protocol's public face: every name resolves, to the module it is defined in."""

from __future__ import annotations

import importlib

import pytest

import dlmsd.protocol as protocol
from dlmsd.protocol import (
    AttributeRequest,
    HdlcLink,
    LnClient,
    MeterReader,
    Obis,
    ReaderSettings,
    ReaderState,
    Send,
    Trace,
)
from dlmsd.protocol.hdlc_frame import describe_frame, encode_server_address


@pytest.mark.parametrize("name", protocol.__all__)
def test_public_name_resolves(name: str) -> None:
    value = getattr(protocol, name)
    module = importlib.import_module(f"dlmsd.protocol.{protocol._PUBLIC[name]}")
    assert getattr(module, name) is value


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        protocol.Nothing  # noqa: B018


def test_the_docstring_example_opens_with_snrm() -> None:
    reader = MeterReader(HdlcLink.client(16, encode_server_address(1, 17, 2)), LnClient(),
                         ReaderSettings(timeout=3.0, retries=2, max_list_size=10,
                                        port_name="10.0.0.5:4061"))
    reader.open(100.0, bytes(16))
    actions = reader.actions()
    assert reader.state is ReaderState.CONNECTING and reader.get_timer() == 103.0
    trace, send = actions  # the frame's trace comes before the frame, in order
    assert isinstance(trace, Trace) and isinstance(send, Send) and trace.data == send.data
    assert trace.direction == "tx" and trace.summary == describe_frame(send.data)
    assert trace.summary.startswith("SNRM(P)")
    assert AttributeRequest("k", Obis.parse("1.0.1.8.0.255"), 2, 3).short_name == 0
