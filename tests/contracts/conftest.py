"""The same contract tests on the embedded EVM and, when ``ANVIL_BIN`` is set, on a
real anvil node (the ``anvil_url`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from web3 import Web3

from contracts.chain import Chain, deploy_all, embedded_chain, rpc_chain

BACKENDS = ["embedded"] + (["anvil"] if os.environ.get("ANVIL_BIN") else [])


@pytest.fixture(scope="session")
def artifact_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(params=BACKENDS)
def w3(request: pytest.FixtureRequest) -> Web3:
    if request.param == "embedded":
        return embedded_chain()
    return rpc_chain(request.getfixturevalue("anvil_url"))


@pytest.fixture
def accounts(w3: Web3) -> dict[str, str]:
    a = list(w3.eth.accounts)
    return {"admin": a[0], "settler": a[1], "integrator": a[2], "owner": a[3], "other": a[4]}


@pytest.fixture
def chain(w3: Web3, accounts: dict[str, str], artifact_cache: Path) -> Chain:
    deployment = deploy_all(
        w3,
        accounts["admin"],
        settler=accounts["settler"],
        integrator=accounts["integrator"],
        cache=artifact_cache,
    )
    return Chain(w3, deployment, artifact_cache)
