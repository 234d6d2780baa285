"""Rewards: an epoch posted once, each leaf claimed once, only with its own proof."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest
from eth_utils import keccak

from contracts.chain import Chain, ChainError
from contracts.merkle import MerkleTree, Reward, verify
from registry.identity import device_id as registry_device_id

TOKEN = 10**18


def rewards(owners: Sequence[str], epoch: int = 1) -> list[Reward]:
    ids = [
        bytes.fromhex(registry_device_id("Tesla", "Powerwall 2", f"SN-{i}")[2:])
        for i in range(len(owners))
    ]
    return [
        Reward(epoch, i, ids[i], owner, (i + 1) * TOKEN // 10) for i, owner in enumerate(owners)
    ]


def test_merkle_proofs_verify_for_every_size() -> None:
    for size in (1, 2, 3, 5, 8, 13):
        leaves = [keccak(i.to_bytes(32, "big")) for i in range(size)]
        tree = MerkleTree(leaves)
        assert all(verify(tree.proof(i), tree.root, leaves[i]) for i in range(size))
        assert not verify(tree.proof(0), tree.root, keccak(b"other")) or size == 0


def test_claims_pay_each_owner_once_and_add_up(chain: Chain, accounts: dict[str, str]) -> None:
    w3 = chain.w3
    owners = [w3.eth.accounts[i] for i in (3, 4, 5, 6, 7)]
    epoch = rewards(owners)
    tree, _ = chain.post_epoch(accounts["settler"], 1, epoch)
    assert chain.balance(chain.deployment.distributor) == sum(r.amount for r in epoch)
    # The contract computes the same leaf as Python does.
    r0 = epoch[0]
    assert (
        bytes(chain.distributor.functions.leaf(1, 0, r0.device_id, r0.owner, r0.amount).call())
        == tree.layers[0][0]
    )
    for reward in epoch:
        chain.claim(accounts["other"], reward, tree.proof(reward.index))  # anyone may send it
        assert chain.balance(reward.owner) == reward.amount
        assert chain.is_claimed(1, reward.index)
    assert chain.balance(chain.deployment.distributor) == 0
    assert sum(chain.balance(o) for o in owners) == sum(r.amount for r in epoch)
    with pytest.raises(ChainError, match="already claimed"):
        chain.claim(accounts["other"], epoch[2], tree.proof(2))
    assert chain.balance(epoch[2].owner) == epoch[2].amount


def test_wrong_claims_fail(chain: Chain, accounts: dict[str, str]) -> None:
    owners = [chain.w3.eth.accounts[i] for i in (3, 4, 5)]
    epoch = rewards(owners, epoch=7)
    tree, _ = chain.post_epoch(accounts["settler"], 7, epoch)
    good = epoch[1]
    proof = tree.proof(1)
    for wrong in (
        replace(good, amount=good.amount + 1),
        replace(good, owner=accounts["integrator"]),
        replace(good, device_id=epoch[0].device_id),
        replace(good, index=0),
    ):
        with pytest.raises(ChainError, match="invalid proof"):
            chain.claim(accounts["other"], wrong, proof)
    with pytest.raises(ChainError, match="invalid proof"):
        chain.claim(accounts["other"], good, tree.proof(0))
    with pytest.raises(ChainError, match="unknown epoch"):
        chain.claim(accounts["other"], replace(good, epoch=8), proof)
    with pytest.raises(ChainError, match="invalid proof"):
        chain.claim(accounts["other"], replace(good, index=3), proof)
    assert chain.balance(good.owner) == 0
    chain.claim(accounts["other"], good, proof)
    assert chain.balance(good.owner) == good.amount


def test_only_the_settler_posts_and_only_once(chain: Chain, accounts: dict[str, str]) -> None:
    epoch = rewards([accounts["owner"]], epoch=3)
    with pytest.raises(ChainError, match="access_control: account is missing role"):
        chain.post_epoch(accounts["other"], 3, epoch)
    chain.post_epoch(accounts["settler"], 3, epoch)
    with pytest.raises(ChainError, match="epoch already posted"):
        chain.post_epoch(accounts["settler"], 3, epoch)
    assert chain.balance(chain.deployment.distributor) == epoch[0].amount  # minted once


def test_paused_distributor_pays_nothing(chain: Chain, accounts: dict[str, str]) -> None:
    epoch = rewards([accounts["owner"], accounts["other"]], epoch=4)
    tree, _ = chain.post_epoch(accounts["settler"], 4, epoch)
    pause = chain.distributor.functions.pause()
    from contracts.chain import send

    with pytest.raises(ChainError, match="access_control: account is missing role"):
        send(chain.w3, "pause", pause, accounts["other"])
    send(chain.w3, "pause", pause, accounts["admin"])
    with pytest.raises(ChainError, match="pausable: contract is paused"):
        chain.claim(accounts["owner"], epoch[0], tree.proof(0))
    with pytest.raises(ChainError, match="pausable: contract is paused"):
        chain.post_epoch(accounts["settler"], 5, rewards([accounts["owner"]], epoch=5))
    assert chain.balance(accounts["owner"]) == 0
    send(chain.w3, "unpause", chain.distributor.functions.unpause(), accounts["admin"])
    chain.claim(accounts["owner"], epoch[0], tree.proof(0))
    assert chain.balance(accounts["owner"]) == epoch[0].amount


def test_claim_gas_with_a_deep_tree(chain: Chain, accounts: dict[str, str]) -> None:
    """10,000 leaves (a 14-node proof), each paid to a new holder."""
    owners = [f"0x{i + 1:040x}" for i in range(10_000)]
    epoch = [Reward(9, i, keccak(i.to_bytes(32, "big")), owners[i], TOKEN) for i in range(10_000)]
    tree, posted = chain.post_epoch(accounts["settler"], 9, epoch)
    assert len(tree.proof(1280)) == 14
    first = chain.claim(accounts["other"], epoch[1280], tree.proof(1280))["gasUsed"]
    second = chain.claim(accounts["other"], epoch[1281], tree.proof(1281))["gasUsed"]
    # The first claim of each 256 writes a new word of the claim bitmap.
    assert second <= 80_000
    assert (first + 255 * second) / 256 <= 80_000
    assert posted["gasUsed"] < 200_000
