"""The pure LN client: association, GET normal / with-list / blocks, refusals, release.

The meter's side is built with the same codec classes, so these tests check the
client's state handling; the bytes are checked against the world in the codec tests
(cited vectors) and the gurux interop tests.
"""

from __future__ import annotations

import pytest

from dlmsd.errors import AssociationRejected, LocalProtocolError, RemoteProtocolError
from dlmsd.protocol.acse import Aare, Aarq, AcseServiceUser, AssociationResult, MechanismName
from dlmsd.protocol.axdr import Data, encode_data
from dlmsd.protocol.client import (
    Associated,
    ClientState,
    GetComplete,
    LnClient,
    Released,
    SendApdu,
    StaleResponse,
    WithListRefused,
)
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.xdlms import (
    Conformance,
    CosemAttributeDescriptor,
    DataAccessResult,
    ExceptionResponse,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
    InitiateResponse,
)

ENERGY = CosemAttributeDescriptor(3, Obis(1, 0, 1, 8, 0, 255), 2)
VOLTAGE = CosemAttributeDescriptor(3, Obis(1, 0, 32, 7, 0, 255), 2)
SERVER_CONFORMANCE = (Conformance.GET | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
                      | Conformance.MULTIPLE_REFERENCES | Conformance.SELECTIVE_ACCESS)


def accepted(conformance: Conformance = SERVER_CONFORMANCE, pdu: int = 1024) -> bytes:
    return Aare(user_information=InitiateResponse(conformance, pdu)).to_bytes()


def associated(**kwargs: object) -> LnClient:
    client = LnClient()
    client.associate()
    event = client.receive_apdu(accepted(**kwargs))  # type: ignore[arg-type]
    assert isinstance(event, Associated)
    return client


def test_associate_builds_aarq_and_reads_negotiation() -> None:
    client = LnClient(max_receive_pdu_size=512)
    aarq = Aarq.from_bytes(client.associate())
    assert aarq.initiate_request is not None
    assert aarq.initiate_request.client_max_receive_pdu_size == 512
    assert aarq.mechanism_name is None
    event = client.receive_apdu(accepted(pdu=256))
    assert isinstance(event, Associated)
    assert event.server_max_receive_pdu_size == 256
    assert client.supports_with_list and client.state is ClientState.ASSOCIATED


def test_low_level_security_password_in_aarq_not_in_repr() -> None:
    client = LnClient(mechanism=MechanismName.LOW, authentication_value=b"12345678")
    aarq = Aarq.from_bytes(client.associate())
    assert aarq.mechanism_name is MechanismName.LOW
    assert aarq.calling_authentication_value == b"12345678"
    assert "12345678" not in repr(client) and "12345678" not in repr(aarq)
    assert "12345678" not in aarq.describe()


def test_rejection_names_result_and_diagnostic() -> None:
    client = LnClient(mechanism=MechanismName.LOW, authentication_value=b"wrong")
    client.associate()
    aare = Aare(result=AssociationResult.REJECTED_PERMANENT,
                diagnostic=AcseServiceUser.AUTHENTICATION_FAILURE)
    with pytest.raises(AssociationRejected) as info:
        client.receive_apdu(aare.to_bytes())
    assert info.value.result == 1 and info.value.diagnostic == 13
    assert "authentication-failure" in str(info.value)
    assert client.state is ClientState.IDLE


def test_get_normal_and_invoke_ids() -> None:
    client = associated()
    request = GetRequestNormal.from_bytes(client.get([ENERGY]))
    assert request.descriptor == ENERGY
    iid = request.invoke_id_and_priority
    # a late answer to an earlier request is ignored
    stale = GetResponseNormal(Data.uint32(1), (iid & 0xF0) | ((iid & 0x0F) % 15 + 1))
    assert isinstance(client.receive_apdu(stale.to_bytes()), StaleResponse)
    event = client.receive_apdu(GetResponseNormal(Data.uint32(123456), iid).to_bytes())
    assert event == GetComplete((Data.uint32(123456),))
    second = GetRequestNormal.from_bytes(client.get([ENERGY])).invoke_id_and_priority
    assert second & 0x0F == (iid & 0x0F) + 1


def test_get_with_list_and_data_access_result() -> None:
    client = associated()
    request = GetRequestWithList.from_bytes(client.get([ENERGY, VOLTAGE]))
    assert [d.descriptor for d in request.attributes] == [ENERGY, VOLTAGE]
    reply = GetResponseWithList((Data.uint32(5), DataAccessResult.OBJECT_UNDEFINED),
                                request.invoke_id_and_priority)
    event = client.receive_apdu(reply.to_bytes())
    assert event == GetComplete((Data.uint32(5), DataAccessResult.OBJECT_UNDEFINED))


def test_with_list_not_negotiated_is_refused_locally() -> None:
    client = associated(conformance=Conformance.GET)
    with pytest.raises(LocalProtocolError, match="multiple-references"):
        client.get([ENERGY, VOLTAGE])


@pytest.mark.parametrize("answer", [
    ExceptionResponse.from_bytes(bytes.fromhex("D80102")),  # service-not-supported
    None,  # a meter answering only the first attribute, normal
])
def test_with_list_refused_by_meter(answer: ExceptionResponse | None) -> None:
    client = associated()
    iid = GetRequestWithList.from_bytes(client.get([ENERGY, VOLTAGE])).invoke_id_and_priority
    apdu = answer.to_bytes() if answer else GetResponseNormal(Data.uint32(1), iid).to_bytes()
    event = client.receive_apdu(apdu)
    assert isinstance(event, WithListRefused)
    assert client.state is ClientState.ASSOCIATED


def test_block_transfer_reassembles_and_checks_numbers() -> None:
    client = associated()
    iid = GetRequestNormal.from_bytes(client.get([ENERGY])).invoke_id_and_priority
    raw = encode_data(Data.octets(bytes(range(200))))
    first = client.receive_apdu(GetResponseWithDatablock(False, 1, raw[:100], iid).to_bytes())
    assert isinstance(first, SendApdu)
    assert GetRequestNext.from_bytes(first.apdu).block_number == 1
    done = client.receive_apdu(GetResponseWithDatablock(True, 2, raw[100:], iid).to_bytes())
    assert done == GetComplete((Data.octets(bytes(range(200))),))

    client.get([ENERGY])
    iid = client.invoke_id | 0xC0
    client.receive_apdu(GetResponseWithDatablock(False, 1, raw[:100], iid).to_bytes())
    with pytest.raises(RemoteProtocolError, match="block number 3, expected 2"):
        client.receive_apdu(GetResponseWithDatablock(True, 3, raw[100:], iid).to_bytes())
    assert client.state is ClientState.ASSOCIATED  # ready for the next request


@pytest.mark.parametrize("header", ["01 83 0FFFFA", "02 84 7FFFFFFF"])
def test_block_transfer_null_bomb_refused_at_the_first_block(header: str) -> None:
    # issue 12: an array whose count the response cannot hold (or the decoder would
    # refuse) is refused as soon as the count arrives, not after 1 MiB of blocks.
    client = associated()
    iid = GetRequestNormal.from_bytes(client.get([ENERGY])).invoke_id_and_priority
    first = bytes.fromhex(header) + bytes(990)
    with pytest.raises(RemoteProtocolError, match=r"long GET of (array|structure) of \d+ "
                       r"values exceeds the limit of \d+ values for a response of at most "
                       r"1048576 bytes, at block 1"):
        client.receive_apdu(GetResponseWithDatablock(False, 1, first, iid).to_bytes())
    assert client.state is ClientState.ASSOCIATED


def test_block_transfer_count_split_over_blocks_is_checked() -> None:
    client = LnClient(max_response_size=4096)
    client.associate()
    client.receive_apdu(accepted())
    iid = GetRequestNormal.from_bytes(client.get([ENERGY])).invoke_id_and_priority
    assert isinstance(client.receive_apdu(
        GetResponseWithDatablock(False, 1, bytes.fromhex("01 82"), iid).to_bytes()), SendApdu)
    with pytest.raises(RemoteProtocolError, match="array of 5000 values exceeds"):
        client.receive_apdu(GetResponseWithDatablock(
            False, 2, (5000).to_bytes(2) + bytes(100), iid).to_bytes())


def test_block_transfer_of_nulls_within_the_limit_decodes() -> None:
    client = associated()
    iid = GetRequestNormal.from_bytes(client.get([ENERGY])).invoke_id_and_priority
    raw = encode_data(Data.array(*[Data.null()] * 3000))
    client.receive_apdu(GetResponseWithDatablock(False, 1, raw[:1000], iid).to_bytes())
    client.receive_apdu(GetResponseWithDatablock(False, 2, raw[1000:2000], iid).to_bytes())
    done = client.receive_apdu(GetResponseWithDatablock(True, 3, raw[2000:], iid).to_bytes())
    assert done == GetComplete((Data.array(*[Data.null()] * 3000),))


def test_block_transfer_aborted_by_data_access_result() -> None:
    client = associated()
    iid = GetRequestNormal.from_bytes(client.get([ENERGY])).invoke_id_and_priority
    event = client.receive_apdu(GetResponseWithDatablock(
        True, 1, DataAccessResult.LONG_GET_ABORTED, iid).to_bytes())
    assert event == GetComplete((DataAccessResult.LONG_GET_ABORTED,))


def test_release_accepts_any_rlre() -> None:
    client = associated()
    client.release()
    # gurux 1.0.203's RLRE, with a length byte (0E) shorter than its content
    rlre = bytes.fromhex("630E800100BE0F040E0800065F1F040000121DFFFF0007")
    assert client.receive_apdu(rlre) == Released()
    assert client.state is ClientState.IDLE


def test_illegal_calls_name_the_state() -> None:
    client = LnClient()
    with pytest.raises(LocalProtocolError, match="cannot get in client state idle"):
        client.get([ENERGY])
    client.associate()
    with pytest.raises(LocalProtocolError, match="cannot associate in client state associating"):
        client.associate()


def _gmac_client(ek: bytes, counters: list[int]) -> LnClient:
    from dlmsd.protocol.client import Ciphering
    from dlmsd.protocol.security import AUTHENTICATED_ENCRYPTION
    from dlmsd.protocol.security_hls import HlsKeys

    ak = bytes(range(0xD0, 0xE0))
    title = bytes.fromhex("4D4D4D0000BC614E")
    issued = iter(range(1, 1000))
    return LnClient(
        hls=HlsKeys(MechanismName.HIGH_GMAC, system_title=title, block_cipher_key=ek,
                    authentication_key=ak),
        ciphering=Ciphering(AUTHENTICATED_ENCRYPTION, title, ek, ak,
                            next_counter=lambda: next(issued),
                            accept_counter=lambda counter, **_: counters.append(counter)))


def test_ciphered_aare_with_wrong_keys_is_a_rejection() -> None:
    from dlmsd.protocol.security import AUTHENTICATED_ENCRYPTION, protect

    meter_title = b"METER001"
    initiate = InitiateResponse(SERVER_CONFORMANCE, 1024).to_bytes()
    ciphered = protect(initiate, security_control=AUTHENTICATED_ENCRYPTION,
                       system_title=meter_title, invocation_counter=7,
                       block_cipher_key=bytes(16), authentication_key=bytes(range(0xD0, 0xE0)))
    aare = Aare(user_information=ciphered, responding_ap_title=meter_title,
                mechanism_name=MechanismName.HIGH_GMAC,
                responding_authentication_value=b"S" * 16).to_bytes()

    counters: list[int] = []
    right = _gmac_client(bytes(16), counters)
    right.associate(b"C" * 16)
    assert type(right.receive_apdu(aare)).__name__ == "Authenticate"
    assert counters == [7]  # the meter's counter went to the replay check

    wrong = _gmac_client(bytes(range(16)), [])
    wrong.associate(b"C" * 16)
    with pytest.raises(AssociationRejected, match="does not verify"):
        wrong.receive_apdu(aare)
