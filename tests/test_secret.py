"""Secrets never show their value."""

from __future__ import annotations

import pickle

import pytest

from dlmsd.secret import MASK, Secret, mask_secrets


def test_secret_hides_value_everywhere() -> None:
    secret = Secret("hunter2-pass")
    formatted = "{}".format(secret)  # noqa: UP032
    for text in (str(secret), repr(secret), f"{secret}", f"{secret!r}", formatted):
        assert "hunter2" not in text
    assert secret.reveal() == b"hunter2-pass"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_mask_secrets_masks_text_and_hex_forms() -> None:
    Secret(bytes.fromhex("000102030405060708090A0B0C0D0E0F"))
    Secret("Zebra-Crossing")
    line = ("key=000102030405060708090a0b0c0d0e0f KEY=00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D "
            "0E 0F pw=Zebra-Crossing hex=" + b"Zebra-Crossing".hex())
    masked = mask_secrets(line)
    assert masked == f"key={MASK} KEY={MASK} pw={MASK} hex={MASK}"
