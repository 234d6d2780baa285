"""The same contract tests on the embedded EVM and, when ``ANVIL_BIN`` is set, on a
real anvil node started here on 127.0.0.1 (``.ci/run`` installs it from npm). A set
``ANVIL_BIN`` that does not start fails the run instead of skipping it."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from contracts.chain import Chain, ChainError, deploy_all, embedded_chain, rpc_chain

BACKENDS = ["embedded"] + (["anvil"] if os.environ.get("ANVIL_BIN") else [])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def artifact_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def anvil_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = os.environ["ANVIL_BIN"]
    port = _free_port()
    log = tmp_path_factory.mktemp("anvil") / "anvil.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(port), "--silent"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            rpc_chain(url, timeout_s=1)
            break
        except ChainError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail(f"ANVIL_BIN={binary} did not start: {log.read_text()[-500:]}")
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


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
