"""The outbox survives a node that goes away mid-settlement (a real anvil, stopped and
started again on its saved state)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from api import settlement
from api.chain import connect, deploy, open_chain, sender
from api.settings import Settings
from contracts.chain import ChainError
from contracts.rewards import RewardPolicy
from registry.devices import create_device
from registry.tables import Settlement
from tests.conftest import anvil_binary, free_port, start_anvil
from tests.factories import device_in


def test_send_resumes_after_the_node_comes_back(session: Session, tmp_path: Path) -> None:
    binary = anvil_binary()
    port, state, log = free_port(), tmp_path / "state.json", tmp_path / "anvil.log"
    node = start_anvil(binary, port, log, "--state", str(state))
    settings = Settings(var_dir=tmp_path, chain_rpc_url=f"http://127.0.0.1:{port}")
    try:
        w3 = connect(settings)
        deploy(settings, w3)
        chain = open_chain(settings)
        owner = list(w3.eth.accounts)[3]
        ids = [
            create_device(session, device_in(f"SN-{i}", owner_address=owner)).device_id
            for i in range(2)
        ]
        session.commit()
        deliveries = [settlement.Delivery(i, 5.0, 1.0, 1.0) for i in ids]
        settlement.prepare(session, chain, 1, RewardPolicy(1.0), deliveries)
        account = sender(settings, w3)
    finally:
        node.send_signal(signal.SIGINT)  # anvil writes its state on the way out
        node.wait(timeout=20)
    assert state.is_file()

    with pytest.raises(ChainError, match="node unreachable"):
        settlement.send(session, chain, account, 1)
    row = session.get(Settlement, 1)
    assert row is not None and row.status == "pending" and "unreachable" in (row.last_error or "")

    node = start_anvil(binary, port, log, "--state", str(state))
    try:
        chain = open_chain(settings)  # same chain id, contracts still there
        row = settlement.send(session, chain, account, 1)
        assert row.status == "confirmed" and row.attempts == 1 and row.last_error is None
        assert chain.balance(chain.deployment.distributor) == 10 * 10**18
        again = settlement.send(session, chain, account, 1)
        assert again.attempts == 1  # nothing sent twice
    finally:
        node.terminate()
        node.wait(timeout=20)
