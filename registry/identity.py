"""Device identity: a keccak-256 id derived from what is printed on the device.

The same physical device always gets the same id, whoever registers it, and the id is
a 32-byte value that an EVM contract can store as ``bytes32``.
"""

from __future__ import annotations

import re
import unicodedata

from eth_utils import is_checksum_address, keccak, to_checksum_address

_SPACES = re.compile(r"\s+")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def normalize_part(text: str) -> str:
    """Normalize one of make, model or serial for hashing.

    NFKC-normalizes, trims, folds case and collapses runs of white space, so that
    ``" Tesla  Powerwall "`` and ``"tesla powerwall"`` name the same device.
    """
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def identity_string(make: str, model: str, serial: str) -> str:
    """The normalized ``make|model|serial`` string that the id hashes."""
    parts = [normalize_part(p) for p in (make, model, serial)]
    for name, part in zip(("make", "model", "serial"), parts, strict=True):
        if not part:
            raise ValueError(f"{name} is empty after normalization")
        if "|" in part:
            raise ValueError(f"{name} may not contain '|'")
    return "|".join(parts)


def device_id(make: str, model: str, serial: str) -> str:
    """Keccak-256 of the normalized ``make|model|serial``, 0x-prefixed lower-case hex.

    Examples
    --------
    >>> device_id("Tesla", "Powerwall 2", "TG1234") == device_id(" TESLA", "powerwall  2", "tg1234")
    True
    """
    return "0x" + keccak(text=identity_string(make, model, serial)).hex()


def checksum_address(address: str) -> str:
    """Validate an EVM address and return it in EIP-55 checksum form.

    All-lower-case and all-upper-case hex are accepted as carrying no checksum;
    mixed case must match its EIP-55 checksum.

    Raises
    ------
    ValueError
        When the address is not 20 bytes of hex or its checksum is wrong.

    References
    ----------
    .. [1] EIP-55: Mixed-case checksum address encoding,
       https://eips.ethereum.org/EIPS/eip-55
    """
    if not _ADDRESS.match(address):
        raise ValueError("must be 0x followed by 40 hex digits")
    body = address[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(address):
        raise ValueError("EIP-55 checksum does not match")
    return str(to_checksum_address(address))
