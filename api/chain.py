"""The service's chain: which node, which account, where the contracts are.

With ``CHAIN_RPC_URL`` unset the chain is the embedded EVM, which lives as long as the
process: the service deploys the contracts on it when first needed. With a node, the
contracts are deployed once (``vpp chain deploy``), their addresses kept in
``VAR_DIR/chain-deployment.json``, and every start checks that the node is the same
chain and that the contracts are still there.
"""

from __future__ import annotations

import json
from typing import Any

from web3 import Web3

from api.settings import Settings
from contracts.chain import Chain, ChainError, Deployment, deploy_all, embedded_chain, rpc_chain


def connect(settings: Settings) -> Web3:
    if settings.chain_rpc_url:
        return rpc_chain(settings.chain_rpc_url, settings.chain_id)
    return embedded_chain()


def sender(settings: Settings, w3: Web3) -> str:
    """The account the service sends from; a node that does not answer is a
    :class:`ChainError`."""
    try:
        accounts = list(w3.eth.accounts)
    except Exception as exc:  # connection refused, timeout, not JSON-RPC...
        raise ChainError("connect", f"node unreachable: {exc}") from exc
    if settings.chain_sender:
        if Web3.to_checksum_address(settings.chain_sender) not in accounts:
            raise ChainError("connect", f"CHAIN_SENDER {settings.chain_sender} is not unlocked")
        return Web3.to_checksum_address(settings.chain_sender)
    if not accounts:
        raise ChainError("connect", "the node has no unlocked account; set CHAIN_SENDER")
    return str(accounts[0])


def saved_deployment(settings: Settings) -> Deployment | None:
    path = settings.chain_deployment_path
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return Deployment(
        **{k: data[k] for k in ("chain_id", "token", "registry", "distributor", "block")}
    )


def deploy(settings: Settings, w3: Web3) -> Deployment:
    """Deploy all three contracts from the service's account and save where they are."""
    account = sender(settings, w3)
    deployment = deploy_all(w3, account, cache=settings.contracts_cache)
    if settings.chain_rpc_url:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        record = {**deployment.as_dict(), "rpc_url": settings.chain_rpc_url, "sender": account}
        settings.chain_deployment_path.write_text(json.dumps(record, indent=2) + "\n")
    return deployment


def open_chain(settings: Settings) -> Chain:
    """The contracts on the configured chain, checked (see the module docstring)."""
    w3 = connect(settings)
    if not settings.chain_rpc_url:
        return Chain(w3, deploy(settings, w3), settings.contracts_cache)
    deployment = saved_deployment(settings)
    if deployment is None:
        raise ChainError(
            "connect",
            f"no contracts deployed on {settings.chain_rpc_url} yet: run `vpp chain deploy`",
        )
    return Chain(w3, deployment, settings.contracts_cache)


def shared_chain(state: Any) -> Chain:
    """The app's chain (``app.state``), opened on first use (the embedded EVM deploys
    the contracts then) and kept for the life of the app: the routes and the jobs
    share it."""
    with state.chain_lock:
        if state.chain is None:
            state.chain = open_chain(state.settings)
        chain: Chain = state.chain
        return chain
