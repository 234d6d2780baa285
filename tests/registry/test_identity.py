from __future__ import annotations

import pytest
from eth_utils import keccak

from registry.identity import checksum_address, device_id, identity_string


def test_device_id_is_keccak_of_normalized_make_model_serial() -> None:
    expected = "0x" + keccak(text="tesla|powerwall 2|tg1234").hex()
    assert device_id("Tesla", "Powerwall 2", "TG1234") == expected
    assert len(expected) == 66


def test_same_physical_device_gets_same_id_however_written() -> None:
    assert device_id(" TESLA ", "powerwall\t 2", "tg1234") == device_id(
        "Tesla", "Powerwall 2", "TG1234"
    )
    # Full-width characters normalize (NFKC) to their ASCII forms.
    assert device_id("Ｔｅｓｌａ", "Powerwall 2", "TG1234") == device_id(
        "Tesla", "Powerwall 2", "TG1234"
    )


def test_different_serials_differ() -> None:
    assert device_id("Tesla", "Powerwall 2", "1") != device_id("Tesla", "Powerwall 2", "2")


def test_keccak_known_vector() -> None:
    # Keccak-256 of the empty string (not SHA3-256), the value every EVM uses.
    assert keccak(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


@pytest.mark.parametrize("part", ["make", "model", "serial"])
def test_empty_or_piped_parts_are_refused(part: str) -> None:
    parts = {"make": "Tesla", "model": "PW2", "serial": "1"}
    with pytest.raises(ValueError, match=part):
        identity_string(**{**parts, part: "   "})
    with pytest.raises(ValueError, match=part):
        identity_string(**{**parts, part: "a|b"})


def test_checksum_address_eip55_vectors() -> None:
    for good in (
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    ):
        assert checksum_address(good) == good
        assert checksum_address(good.lower()) == good
    with pytest.raises(ValueError, match="checksum"):
        checksum_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")
    with pytest.raises(ValueError, match="40 hex"):
        checksum_address("0x1234")
