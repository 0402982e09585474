"""Selective access through the clients: LN GET-Request-Normal with an access
selection, SN READ with parameterized-access (Blue Book 4.1.4: the attribute's short
name, the selector and the parameters), and a refusal that leaves the association
usable (SelectionRefused) instead of raising."""

from __future__ import annotations

import pytest

from dlmsd.errors import LocalProtocolError, ServiceError
from dlmsd.protocol.axdr import Data
from dlmsd.protocol.client import ClientState, GetComplete, SelectionRefused
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.selective import EntryDescriptor
from dlmsd.protocol.sn import ParameterizedAccess, ReadRequest, ReadResponse
from dlmsd.protocol.xdlms import (
    ConfirmedServiceError,
    ConfirmedServiceErrorChoice,
    Conformance,
    CosemAttributeDescriptor,
    ExceptionResponse,
    GetRequestNormal,
    GetResponseNormal,
    ServiceErrorType,
)
from tests import test_client, test_sn_client

BUFFER = CosemAttributeDescriptor(7, Obis(1, 0, 99, 1, 0, 255), 2)
SELECTION = EntryDescriptor(3, 7).to_selection()


def test_ln_get_with_selection() -> None:
    client = test_client.associated()
    request = GetRequestNormal.from_bytes(client.request([BUFFER], SELECTION))
    assert request.descriptor == BUFFER and request.access_selection == SELECTION
    answer = GetResponseNormal(Data.array(), request.invoke_id_and_priority).to_bytes()
    assert client.receive_apdu(answer) == GetComplete((Data.array(),))


@pytest.mark.parametrize("answer", [
    bytes.fromhex("D80102"),  # ExceptionResponse service-not-allowed: service-not-supported
    ConfirmedServiceError(ConfirmedServiceErrorChoice.READ, ServiceErrorType.SERVICE,
                          2).to_bytes(),
])
def test_ln_selection_refused_keeps_the_association(answer: bytes) -> None:
    client = test_client.associated()
    client.request([BUFFER], SELECTION)
    event = client.receive_apdu(answer)
    assert isinstance(event, SelectionRefused)
    assert client.state is ClientState.ASSOCIATED
    # a plain GET refused so still raises, as before
    client.request([BUFFER])
    with pytest.raises(ServiceError):
        client.receive_apdu(ExceptionResponse.from_bytes(bytes.fromhex("D80102")).to_bytes())


def test_ln_selection_local_refusals() -> None:
    client = test_client.associated()
    with pytest.raises(LocalProtocolError, match="one attribute at a time"):
        client.request([BUFFER, BUFFER], SELECTION)
    plain = test_client.associated(conformance=Conformance.GET)
    with pytest.raises(LocalProtocolError, match="selective-access"):
        plain.request([BUFFER], SELECTION)


def test_sn_read_parameterized_access() -> None:
    client = test_sn_client.associated()
    request = ReadRequest.from_bytes(client.request([0xC010], SELECTION))
    assert request.variables == (ParameterizedAccess(0xC010, 2, SELECTION.access_parameters),)
    assert client.receive_apdu(ReadResponse((Data.array(),)).to_bytes()) == GetComplete(
        (Data.array(),))
    with pytest.raises(LocalProtocolError, match="one variable at a time"):
        client.request([0xC010, 0xC018], SELECTION)


def test_sn_selection_refused_keeps_the_association() -> None:
    client = test_sn_client.associated()
    client.request([0xC010], SELECTION)
    error = ConfirmedServiceError(ConfirmedServiceErrorChoice.READ, ServiceErrorType.SERVICE, 2)
    assert isinstance(client.receive_apdu(error.to_bytes()), SelectionRefused)
    assert client.state is ClientState.ASSOCIATED
