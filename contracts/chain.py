"""Connect to a chain, deploy the three contracts, and call them with one error type.

Two kinds of chain, one interface (a ``web3.Web3``):

- **embedded** (:func:`embedded_chain`): an in-process EVM (eth-tester with py-evm),
  ten funded accounts, nothing to set up;
- **a node** (:func:`rpc_chain`): any EVM JSON-RPC URL (anvil, a testnet, a mainnet),
  its chain id checked against the one expected.

A reverted call raises ``TransactionFailed`` on eth-tester and ``ContractLogicError``
from a node; :func:`send` turns both (and a receipt with status 0) into
:class:`ChainError` with the revert reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_tester.exceptions import TransactionFailed
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, Web3RPCError

from contracts.artifacts import load_artifact
from contracts.merkle import MerkleTree, Reward, leaf_hash

INTEGRATOR_ROLE = keccak(text="INTEGRATOR_ROLE")
SETTLER_ROLE = keccak(text="SETTLER_ROLE")
PAUSER_ROLE = keccak(text="PAUSER_ROLE")


class ChainError(RuntimeError):
    """A transaction or call the chain refused; ``reason`` is the contract's message."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(f"{action}: {reason}")
        self.action = action
        self.reason = reason


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or (exc.args[0] if exc.args else exc))
    for prefix in ("execution reverted: ", "execution reverted"):
        if text.startswith(prefix):
            return text[len(prefix) :].strip() or "reverted without a reason"
    return text


def send(w3: Web3, action: str, call: Any, sender: str, gas: int | None = None) -> Any:
    """Send a contract transaction from ``sender`` and return its receipt; raise
    :class:`ChainError` with the revert reason if the chain refuses it."""
    params: dict[str, Any] = {"from": sender}
    if gas is not None:
        params["gas"] = gas
    try:
        tx = call.transact(params)
        receipt = w3.eth.wait_for_transaction_receipt(tx)
    except (TransactionFailed, ContractLogicError, Web3RPCError) as exc:
        raise ChainError(action, _reason(exc)) from exc
    if receipt["status"] != 1:
        raise ChainError(action, "reverted")
    return receipt


def embedded_chain() -> Web3:
    """An in-process EVM with ten funded accounts."""
    from eth_tester import EthereumTester, PyEVMBackend
    from web3 import EthereumTesterProvider

    return Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend())))


def rpc_chain(url: str, chain_id: int | None = None, timeout_s: float = 10.0) -> Web3:
    """A node at ``url``; with ``chain_id``, refuse a node of another chain."""
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout_s}))
    try:
        actual = w3.eth.chain_id
    except Exception as exc:  # connection refused, timeout, not JSON-RPC...
        raise ChainError("connect", f"no EVM node answers at {url} ({exc})") from exc
    if chain_id is not None and actual != chain_id:
        raise ChainError("connect", f"{url} is chain {actual}, expected {chain_id}")
    return w3


@dataclass(frozen=True)
class Deployment:
    """Where the contracts live."""

    chain_id: int
    token: str
    registry: str
    distributor: str
    block: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _deploy(w3: Web3, name: str, deployer: str, cache: Path | None, *args: Any) -> str:
    artifact = load_artifact(name, cache)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = send(w3, f"deploy {name}", factory.constructor(*args), deployer)
    return str(receipt["contractAddress"])


def deploy_all(
    w3: Web3,
    deployer: str,
    *,
    settler: str | None = None,
    integrator: str | None = None,
    fee_recipient: str | None = None,
    cache: Path | None = None,
) -> Deployment:
    """Deploy token, registry and distributor; make the distributor a minter; give the
    settler and integrator their roles (the deployer by default) and the deployer the
    pauser role. Connection fees go to ``fee_recipient`` (the deployer by default)."""
    settler = settler or deployer
    integrator = integrator or deployer
    token = _deploy(w3, "OVPPToken", deployer, cache)
    registry = _deploy(w3, "DeviceRegistry", deployer, cache, token, fee_recipient or deployer)
    distributor = _deploy(w3, "RewardDistributor", deployer, cache, token)
    deployment = Deployment(w3.eth.chain_id, token, registry, distributor, w3.eth.block_number)
    chain = Chain(w3, deployment, cache)
    send(w3, "set minter", chain.token.functions.set_minter(distributor, True), deployer)
    for contract, role, account in (
        (chain.registry, INTEGRATOR_ROLE, integrator),
        (chain.registry, SETTLER_ROLE, settler),
        (chain.distributor, SETTLER_ROLE, settler),
        (chain.distributor, PAUSER_ROLE, deployer),
    ):
        send(w3, "grant role", contract.functions.grantRole(role, account), deployer)
    return deployment


class Chain:
    """The deployed contracts on one chain, with the calls the service makes."""

    def __init__(self, w3: Web3, deployment: Deployment, cache: Path | None = None) -> None:
        if w3.eth.chain_id != deployment.chain_id:
            raise ChainError(
                "connect", f"chain id {w3.eth.chain_id}, the deployment is on {deployment.chain_id}"
            )
        for name, address in (
            ("OVPPToken", deployment.token),
            ("RewardDistributor", deployment.distributor),
            ("DeviceRegistry", deployment.registry),
        ):
            if not w3.eth.get_code(to_checksum_address(address)):
                raise ChainError("connect", f"no {name} contract at {address}")
        self.w3 = w3
        self.deployment = deployment

        def bind(name: str, address: str) -> Contract:
            abi = load_artifact(name, cache).abi
            return w3.eth.contract(address=to_checksum_address(address), abi=abi)

        self.token = bind("OVPPToken", deployment.token)
        self.registry = bind("DeviceRegistry", deployment.registry)
        self.distributor = bind("RewardDistributor", deployment.distributor)

    # -- devices ----------------------------------------------------------------------

    def register_device(
        self, sender: str, device_id: bytes, owner: str, attributes_hash: bytes
    ) -> Any:
        call = self.registry.functions.register(
            device_id, to_checksum_address(owner), attributes_hash
        )
        return send(self.w3, "register device", call, sender)

    def charge_connection_fee(
        self, sender: str, device_id: bytes, program_id: str, payer: str, amount: int
    ) -> Any:
        """Take a program's connection fee from ``payer``'s allowance to the registry."""
        call = self.registry.functions.charge_connection_fee(
            device_id, keccak(text=program_id), to_checksum_address(payer), amount
        )
        return send(self.w3, f"connection fee of {program_id}", call, sender)

    def device(self, device_id: bytes) -> dict[str, Any]:
        owner, attributes, active, reputation, epoch = self.registry.functions.devices(
            device_id
        ).call()
        return {
            "owner": owner,
            "attributes_hash": bytes(attributes),
            "active": active,
            "reputation_bps": reputation,
            "reputation_epoch": epoch,
        }

    # -- rewards ----------------------------------------------------------------------

    def leaves(self, rewards: list[Reward]) -> MerkleTree:
        chain_id = self.deployment.chain_id
        return MerkleTree([leaf_hash(chain_id, self.deployment.distributor, r) for r in rewards])

    def post_epoch(self, sender: str, epoch: int, rewards: list[Reward]) -> tuple[MerkleTree, Any]:
        """Post an epoch's root and total (the total is minted to the distributor)."""
        if [r.index for r in rewards] != list(range(len(rewards))):
            raise ValueError("rewards: indices must run 0, 1, 2, ... in order")
        if any(r.epoch != epoch for r in rewards):
            raise ValueError(f"rewards: every reward must be of epoch {epoch}")
        tree = self.leaves(rewards)
        total = sum(r.amount for r in rewards)
        call = self.distributor.functions.post_epoch(epoch, tree.root, total, len(rewards))
        return tree, send(self.w3, f"post epoch {epoch}", call, sender)

    def claim(self, sender: str, reward: Reward, proof: list[bytes]) -> Any:
        call = self.distributor.functions.claim(
            reward.epoch,
            reward.index,
            reward.device_id,
            to_checksum_address(reward.owner),
            reward.amount,
            proof,
        )
        return send(self.w3, f"claim epoch {reward.epoch} index {reward.index}", call, sender)

    def is_claimed(self, epoch: int, index: int) -> bool:
        return bool(self.distributor.functions.is_claimed(epoch, index).call())

    def balance(self, owner: str) -> int:
        return int(self.token.functions.balanceOf(to_checksum_address(owner)).call())
