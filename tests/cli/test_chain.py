"""``vpp chain``: deploy on a node, check it, and clear errors when it cannot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner
from web3 import Web3

from api.chain import open_chain
from api.cli import app
from api.settings import Settings

runner = CliRunner()


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("CHAIN_RPC_URL", raising=False)
    monkeypatch.delenv("CHAIN_ID", raising=False)
    return tmp_path / "var"


def test_deploy_and_status_on_anvil(
    var: Path, anvil_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed = runner.invoke(app, ["chain", "deploy", "--rpc-url", anvil_url, "--json"])
    assert deployed.exit_code == 0, deployed.output
    addresses = json.loads(deployed.stdout.strip().splitlines()[-1])
    assert addresses["chain_id"] == 31337
    saved = json.loads((var / "chain-deployment.json").read_text())
    assert saved["distributor"] == addresses["distributor"] and saved["rpc_url"] == anvil_url
    monkeypatch.setenv("CHAIN_RPC_URL", anvil_url)
    status = runner.invoke(app, ["chain", "status", "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout.strip().splitlines()[-1])["devices"] == 0
    monkeypatch.setenv("CHAIN_ID", "1")
    wrong = runner.invoke(app, ["chain", "status"])
    assert wrong.exit_code == 2 and "is chain 31337, expected 1" in wrong.output


def test_errors_are_one_line(var: Path) -> None:
    embedded = runner.invoke(app, ["chain", "deploy"])
    assert embedded.exit_code == 2 and "CHAIN_RPC_URL: not set" in embedded.output
    nobody = runner.invoke(app, ["chain", "deploy", "--rpc-url", "http://127.0.0.1:9"])
    assert nobody.exit_code == 2 and "no EVM node answers at http://127.0.0.1:9" in nobody.output
    assert "Traceback" not in nobody.output


def test_status_before_deploy(var: Path, anvil_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAIN_RPC_URL", anvil_url)
    result = runner.invoke(app, ["chain", "status"])
    assert result.exit_code == 2 and "run `vpp chain deploy`" in result.output


def test_embedded_chain_deploys_itself(tmp_path: Path) -> None:
    chain = open_chain(Settings(var_dir=tmp_path, chain_rpc_url=None))
    assert chain.w3.eth.get_code(Web3.to_checksum_address(chain.deployment.distributor))
    assert not (tmp_path / "chain-deployment.json").exists()  # nothing to keep
    assert chain.token.functions.symbol().call() == "OVPP"


def test_service_checks_its_node_at_start(var: Path, anvil_url: str) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app

    undeployed = Settings(
        var_dir=var / "fresh", chain_rpc_url=anvil_url, vtn_enabled=False, jobs_enabled=False
    )
    with (
        pytest.raises(RuntimeError, match="run `vpp chain deploy`"),
        TestClient(create_app(undeployed)),
    ):
        pass
    deployed = runner.invoke(app, ["chain", "deploy", "--rpc-url", anvil_url, "--json"])
    assert deployed.exit_code == 0, deployed.output
    wrong = Settings(
        var_dir=var, chain_rpc_url=anvil_url, chain_id=5, vtn_enabled=False, jobs_enabled=False
    )
    with (
        pytest.raises(RuntimeError, match="is chain 31337, expected 5"),
        TestClient(create_app(wrong)),
    ):
        pass
    good = Settings(
        var_dir=var, chain_rpc_url=anvil_url, chain_id=31337, vtn_enabled=False, jobs_enabled=False
    )
    with TestClient(create_app(good)) as client:
        assert client.app.state.chain.deployment.chain_id == 31337  # type: ignore[attr-defined]
    away = Settings(
        var_dir=var, chain_rpc_url="http://127.0.0.1:9", vtn_enabled=False, jobs_enabled=False
    )
    with TestClient(create_app(away)) as client:
        assert client.get("/health").status_code == 200
