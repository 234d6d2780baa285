"""Reward leaves and the Merkle tree whose proofs ``RewardDistributor.claim`` verifies.

A leaf is ``keccak256(keccak256(abi.encode(LEAF_TAG, chain_id, distributor, epoch,
index, device_id, owner, amount)))``: domain-separated (tag, chain, contract) and
hashed twice, so that no leaf can pass for an inner node. Inner nodes hash their two
children in sorted order (snekmate's ``merkle_proof_verification``, like OpenZeppelin's
``MerkleProof``); a node without a sibling moves up a level unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

LEAF_TAG = keccak(text="OpenVPP.RewardDistributor.leaf.v1")


@dataclass(frozen=True)
class Reward:
    """One device's reward in one epoch: ``amount`` in the token's smallest unit."""

    epoch: int
    index: int
    device_id: bytes
    owner: str
    amount: int


def leaf_hash(chain_id: int, distributor: str, reward: Reward) -> bytes:
    inner = keccak(
        encode(
            [
                "bytes32",
                "uint256",
                "address",
                "uint256",
                "uint256",
                "bytes32",
                "address",
                "uint256",
            ],
            [
                LEAF_TAG,
                chain_id,
                to_checksum_address(distributor),
                reward.epoch,
                reward.index,
                reward.device_id,
                to_checksum_address(reward.owner),
                reward.amount,
            ],
        )
    )
    return keccak(inner)


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


class MerkleTree:
    """A tree over leaf hashes (in the order given: leaf ``i`` is reward index ``i``)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise ValueError("rewards: an epoch needs at least one reward")
        self.layers: list[list[bytes]] = [list(leaves)]
        while len(self.layers[-1]) > 1:
            below = self.layers[-1]
            above = [_pair(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                above.append(below[-1])
            self.layers.append(above)

    @property
    def root(self) -> bytes:
        return self.layers[-1][0]

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from leaf ``index`` up to the root."""
        path = []
        for layer in self.layers[:-1]:
            sibling = index ^ 1
            if sibling < len(layer):
                path.append(layer[sibling])
            index //= 2
        return path


def verify(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    node = leaf
    for sibling in proof:
        node = _pair(node, sibling)
    return node == root
