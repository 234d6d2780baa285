from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import Settings
from registry.db import session_factory
from registry.demo import build_fleet, seed_demo
from registry.keys import Role, create_key


@pytest.fixture
def keys(engine: Engine) -> dict[str, str]:
    """One key per role; the owner key sees devices of ``owner-a``."""
    with session_factory(engine).begin() as session:
        return {
            role.value: create_key(
                session, f"test-{role.value}", role, "owner-a" if role == Role.owner else None
            )
            for role in Role
        }


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url="sqlite://", var_dir=tmp_path, max_telemetry_batch=100, vtn_enabled=False
    )
    with TestClient(create_app(settings, engine=engine)) as test_client:
        yield test_client


@pytest.fixture
def demo_fleet(engine: Engine) -> None:
    """60 demo devices on two feeders, most of them enrolled, with a week of telemetry."""
    with session_factory(engine).begin() as session:
        seed_demo(session, build_fleet(60, 2, seed=3, days=7), vtn_url="http://127.0.0.1:1/x")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_job(client: TestClient, key: str, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    """The job once it is no longer queued or running (or as it stands at the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=bearer(key)).json()
        if body["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return body
        time.sleep(0.1)
