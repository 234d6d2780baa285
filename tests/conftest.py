"""Shared fixtures: a migrated database on SQLite and, when asked, PostgreSQL.

Storage tests run once per back-end. SQLite always runs. PostgreSQL runs when
``TEST_DATABASE_URL`` is set, and a server that does not answer then fails the run
instead of skipping it. Each test gets a clean database: a copy of a migrated SQLite
file, or a truncated private PostgreSQL schema.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from registry.db import make_engine, session_factory, upgrade
from registry.tables import Base


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_anvil(binary: str, port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """Start anvil on 127.0.0.1:``port`` and wait until it answers; fail the test if
    it does not within 20 s."""
    from contracts.chain import ChainError, rpc_chain

    with log.open("ab") as output:
        process = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(port), "--silent", *extra],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 20
    while True:
        try:
            rpc_chain(f"http://127.0.0.1:{port}", timeout_s=1)
            return process
        except ChainError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail(f"anvil ({binary}) did not start: {log.read_text()[-500:]}")
            time.sleep(0.1)


def anvil_binary() -> str:
    binary = os.environ.get("ANVIL_BIN")
    if not binary:
        pytest.skip("ANVIL_BIN is not set (.ci/run sets it)")
    return binary


@pytest.fixture(scope="session")
def anvil_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real anvil node on 127.0.0.1 for the session (``ANVIL_BIN``, installed from npm
    by ``.ci/run``); a set ``ANVIL_BIN`` that does not start fails the run."""
    port = free_port()
    log = tmp_path_factory.mktemp("anvil") / "anvil.log"
    process = start_anvil(anvil_binary(), port, log)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "registry.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    url = os.environ["TEST_DATABASE_URL"]
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as exc:
        pytest.fail(f"TEST_DATABASE_URL is set but the server does not answer: {exc}")
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    upgrade(engine)
    yield engine
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database on each back-end."""
    if request.param == "sqlite":
        path = tmp_path / "registry.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        sqlite_engine = make_engine(f"sqlite:///{path}")
        yield sqlite_engine
        sqlite_engine.dispose()
        return
    pg: Engine = request.getfixturevalue("postgres_engine")
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with pg.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield pg


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a clean database; tests commit when they mean to."""
    with session_factory(engine)() as db:
        yield db
