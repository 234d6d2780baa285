# pragma version ~=0.4.3
"""
@title Reward distributor
@notice Pays OVPP for verified delivery. Each settlement epoch, the settler posts the
        Merkle root of the epoch's rewards and their total; the total is minted to this
        contract. An owner (or anyone on its behalf) claims a leaf with its proof and the
        tokens go to the owner named in the leaf. An epoch id is posted once; a leaf is
        claimed once; while paused nothing is posted or paid.
@dev Leaves are `keccak256(keccak256(abi_encode(LEAF_TAG, chain.id, self, epoch, index,
     device_id, owner, amount)))`: domain-separated by tag, chain and contract, hashed
     twice so that no leaf is a 64-byte inner node. Pairs are hashed sorted (as snekmate's
     and OpenZeppelin's Merkle proofs do). `index` numbers the leaves of an epoch and picks the
     bit that marks its claim, 256 claims per storage word. The leaves of an epoch sum to
     its total, so claims never pay more than was minted; what has been claimed is in
     the `Claimed` events.
"""

from ethereum.ercs import IERC165
implements: IERC165

from snekmate.auth.interfaces import IAccessControl
implements: IAccessControl

from snekmate.auth import access_control
initializes: access_control

exports: access_control.__interface__

from snekmate.utils import pausable
initializes: pausable

exports: pausable.paused

interface IMintable:
    def mint(owner: address, amount: uint256): nonpayable
    def transfer(to: address, amount: uint256) -> bool: nonpayable

SETTLER_ROLE: public(constant(bytes32)) = keccak256("SETTLER_ROLE")
PAUSER_ROLE: public(constant(bytes32)) = keccak256("PAUSER_ROLE")
LEAF_TAG: public(constant(bytes32)) = keccak256("OpenVPP.RewardDistributor.leaf.v1")
MAX_PROOF: constant(uint256) = 40

struct Epoch:
    root: bytes32
    total: uint256
    leaves: uint256
    posted_at: uint256

event EpochPosted:
    epoch: indexed(uint256)
    root: bytes32
    total: uint256
    leaves: uint256

event Claimed:
    epoch: indexed(uint256)
    device_id: indexed(bytes32)
    owner: indexed(address)
    index: uint256
    amount: uint256

token: public(immutable(IMintable))
# One map per field rather than a struct: a claim reads two cold slots, not four.
roots: public(HashMap[uint256, bytes32])
leaf_counts: public(HashMap[uint256, uint256])
totals: public(HashMap[uint256, uint256])
posted_at: public(HashMap[uint256, uint256])
claimed_words: HashMap[uint256, HashMap[uint256, uint256]]


@deploy
@payable
def __init__(token_: address):
    access_control.__init__()
    pausable.__init__()
    token = IMintable(token_)


@external
def post_epoch(epoch: uint256, root: bytes32, total: uint256, leaves: uint256):
    access_control._check_role(SETTLER_ROLE, msg.sender)
    pausable._require_not_paused()
    assert root != empty(bytes32), "distributor: empty root"
    assert self.roots[epoch] == empty(bytes32), "distributor: epoch already posted"
    assert leaves > 0, "distributor: no leaves"
    self.roots[epoch] = root
    self.leaf_counts[epoch] = leaves
    self.totals[epoch] = total
    self.posted_at[epoch] = block.timestamp
    extcall token.mint(self, total)
    log EpochPosted(epoch=epoch, root=root, total=total, leaves=leaves)


@internal
@pure
def _leaf(
    chain_id: uint256,
    distributor: address,
    epoch: uint256,
    index: uint256,
    device_id: bytes32,
    owner: address,
    amount: uint256,
) -> bytes32:
    return keccak256(
        keccak256(abi_encode(LEAF_TAG, chain_id, distributor, epoch, index, device_id, owner, amount))
    )


@external
@view
def epochs(epoch: uint256) -> Epoch:
    return Epoch(
        root=self.roots[epoch],
        total=self.totals[epoch],
        leaves=self.leaf_counts[epoch],
        posted_at=self.posted_at[epoch],
    )


@external
@view
def leaf(epoch: uint256, index: uint256, device_id: bytes32, owner: address, amount: uint256) -> bytes32:
    return self._leaf(chain.id, self, epoch, index, device_id, owner, amount)


@internal
@pure
def _root_of(proof: DynArray[bytes32, MAX_PROOF], leaf: bytes32) -> bytes32:
    # snekmate's merkle_proof_verification hashes pairs the same way (sorted), but
    # takes proofs of up to 255 nodes, whose copy into memory costs about 1,500 gas
    # more per claim than proofs of up to MAX_PROOF.
    node: bytes32 = leaf
    for sibling: bytes32 in proof:
        if convert(node, uint256) < convert(sibling, uint256):
            node = keccak256(concat(node, sibling))
        else:
            node = keccak256(concat(sibling, node))
    return node


@external
@view
def is_claimed(epoch: uint256, index: uint256) -> bool:
    return (self.claimed_words[epoch][index >> 8] >> (index & 255)) & 1 == 1


@external
def claim(
    epoch: uint256,
    index: uint256,
    device_id: bytes32,
    owner: address,
    amount: uint256,
    proof: DynArray[bytes32, MAX_PROOF],
):
    pausable._require_not_paused()
    root: bytes32 = self.roots[epoch]
    assert root != empty(bytes32), "distributor: unknown epoch"
    # No bound check on index: the leaf commits to it, so an index outside the tree
    # fails the proof (and a read of leaf_counts would cost a cold slot per claim).
    word: uint256 = self.claimed_words[epoch][index >> 8]
    bit: uint256 = 1 << (index & 255)
    assert word & bit == 0, "distributor: already claimed"
    leaf: bytes32 = self._leaf(chain.id, self, epoch, index, device_id, owner, amount)
    assert self._root_of(proof, leaf) == root, "distributor: invalid proof"
    self.claimed_words[epoch][index >> 8] = word | bit
    assert extcall token.transfer(owner, amount), "distributor: transfer failed"
    log Claimed(epoch=epoch, device_id=device_id, owner=owner, index=index, amount=amount)


@external
def pause():
    access_control._check_role(PAUSER_ROLE, msg.sender)
    pausable._pause()


@external
def unpause():
    access_control._check_role(PAUSER_ROLE, msg.sender)
    pausable._unpause()
