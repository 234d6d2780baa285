"""Device identities on chain: the registry service's ids, roles, owner transfer."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_utils import keccak

from contracts.artifacts import cache_key, load_artifact
from contracts.chain import Chain, ChainError, send
from registry.identity import device_id as registry_device_id


def test_register_transfer_retire(chain: Chain, accounts: dict[str, str]) -> None:
    device = bytes.fromhex(registry_device_id("Tesla", "Powerwall 2", "SN-1")[2:])
    attributes = keccak(text='{"p_max_kw": 5.0}')
    with pytest.raises(ChainError, match="missing role"):
        chain.register_device(accounts["other"], device, accounts["owner"], attributes)
    chain.register_device(accounts["integrator"], device, accounts["owner"], attributes)
    stored = chain.device(device)
    assert stored["owner"] == accounts["owner"] and stored["active"]
    assert stored["attributes_hash"] == attributes and stored["reputation_bps"] == 10_000
    with pytest.raises(ChainError, match="device already registered"):
        chain.register_device(accounts["integrator"], device, accounts["other"], attributes)
    transfer = chain.registry.functions.transfer_device(device, accounts["other"])
    with pytest.raises(ChainError, match="caller is not the device owner"):
        send(chain.w3, "transfer", transfer, accounts["integrator"])
    send(chain.w3, "transfer", transfer, accounts["owner"])
    assert chain.device(device)["owner"] == accounts["other"]
    reputations = chain.registry.functions.set_reputations([device], [8_750], 3)
    with pytest.raises(ChainError, match="missing role"):
        send(chain.w3, "reputation", reputations, accounts["integrator"])
    send(chain.w3, "reputation", reputations, accounts["settler"])
    assert chain.device(device)["reputation_bps"] == 8_750
    send(chain.w3, "retire", chain.registry.functions.retire(device), accounts["integrator"])
    assert not chain.device(device)["active"]


def test_connection_fee_from_an_allowance(chain: Chain, accounts: dict[str, str]) -> None:
    device = bytes.fromhex(registry_device_id("Wallbox", "Pulsar", "EV-7")[2:])
    chain.register_device(accounts["integrator"], device, accounts["owner"], keccak(text="{}"))
    fee = 100 * 10**18
    send(
        chain.w3,
        "mint",
        chain.token.functions.mint(accounts["owner"], 150 * 10**18),
        accounts["admin"],
    )
    with pytest.raises(ChainError, match="erc20: insufficient allowance"):
        chain.charge_connection_fee(
            accounts["integrator"], device, "RES-DR", accounts["owner"], fee
        )
    approve = chain.token.functions.approve(chain.deployment.registry, 2 * fee)
    send(chain.w3, "approve", approve, accounts["owner"])
    receipt = chain.charge_connection_fee(
        accounts["integrator"], device, "RES-DR", accounts["owner"], fee
    )
    assert receipt["status"] == 1
    assert chain.balance(accounts["owner"]) == 50 * 10**18
    assert chain.balance(accounts["admin"]) == fee  # the fee recipient
    with pytest.raises(ChainError, match="erc20: transfer amount exceeds balance"):
        chain.charge_connection_fee(
            accounts["integrator"], device, "RES-DR", accounts["owner"], fee
        )
    with pytest.raises(ChainError, match="missing role"):
        chain.charge_connection_fee(accounts["owner"], device, "RES-DR", accounts["owner"], 1)


def test_artifacts_are_cached_by_source(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    original = Path(__file__).parents[2] / "contracts" / "sources" / "OVPPToken.vy"
    (sources / "OVPPToken.vy").write_text(original.read_text())
    first = load_artifact("OVPPToken", tmp_path / "cache", sources)
    cached = list((tmp_path / "cache").glob("OVPPToken-*.json"))
    assert len(cached) == 1 and first.key in cached[0].name
    again = load_artifact("OVPPToken", tmp_path / "cache", sources)
    assert again == first
    (sources / "OVPPToken.vy").write_text(original.read_text() + "\n# changed\n")
    assert cache_key("OVPPToken", sources) != first.key
    with pytest.raises(ValueError, match=r"no source Nope\.vy"):
        load_artifact("Nope", tmp_path / "cache", sources)
