"""Forecast backtests as background jobs, on a demo fleet's stored telemetry."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.forecasts import ForecastQuery, scope_load, scope_of
from api.main import create_app
from api.settings import Settings
from forecasting.backtest import backtest
from forecasting.features import DAY, FeatureSpec
from forecasting.models import LoadForecaster
from registry.db import session_factory
from registry.demo import build_fleet, seed_demo
from tests.api.conftest import bearer, wait_job


@pytest.fixture
def month(engine: Engine) -> None:
    """30 demo devices on one feeder with ten weeks of telemetry."""
    with session_factory(engine).begin() as session:
        seed_demo(session, build_fleet(30, 1, seed=5, days=70), vtn_url="http://x:1/y")


@pytest.mark.usefixtures("month")
def test_a_backtest_job_gives_the_metrics_of_the_backtest_itself(
    client: TestClient, keys: dict[str, str], engine: Engine
) -> None:
    analyst = keys["analyst"]
    body = {"feeder": "F-01", "history_days": 70, "model": "linear", "folds": 2}
    started = client.post("/v1/backtests", json=body, headers=bearer(analyst))
    assert started.status_code == 202, started.text
    job = wait_job(client, analyst, started.json()["job_id"])
    assert job["status"] == "done", job
    assert job["progress"] == 1.0 and job["kind"] == "backtest"
    result = job["result"]
    assert result["scope"] == {"feeder": "F-01"} and len(result["folds"]) == 2
    # The same backtest run here on the same telemetry gives the same figures.
    freq = pd.Timedelta("15min")
    end = pd.Timestamp(job["started_at"]).floor(freq)
    with session_factory(engine)() as session:
        _, condition, _ = scope_of(session, ForecastQuery(feeder="F-01"))
        load, _ = scope_load(session, condition, end - 70 * DAY, end, freq)
    spec = FeatureSpec(freq=freq)
    expected = backtest(load, lambda: LoadForecaster(spec, model="linear"), folds=2)
    assert result["metrics"]["mae"] == pytest.approx(expected.metrics["mae"], rel=1e-9)
    assert result["metrics"]["naive_mae"] == pytest.approx(expected.metrics["naive_mae"])


@pytest.mark.usefixtures("demo_fleet")
def test_bad_backtests_are_refused_or_fail_with_the_reason(
    client: TestClient, keys: dict[str, str]
) -> None:
    analyst = bearer(keys["analyst"])
    unknown = client.post("/v1/backtests", json={"feeder": "F-99"}, headers=analyst)
    assert unknown.status_code == 404
    both = client.post("/v1/backtests", json={"feeder": "F-01", "region": "R"}, headers=analyst)
    assert both.status_code == 422 and "exactly one" in both.text
    assert (
        client.post(
            "/v1/backtests", json={"feeder": "F-01"}, headers=bearer(keys["owner"])
        ).status_code
        == 403
    )
    # A week of telemetry is too short to backtest a learned model: the job says why.
    short = client.post(
        "/v1/backtests", json={"feeder": "F-01", "history_days": 7}, headers=analyst
    )
    assert short.status_code == 202
    job = wait_job(client, keys["analyst"], short.json()["job_id"])
    assert job["status"] == "failed" and "test_start" in job["error"]


@pytest.mark.usefixtures("demo_fleet")
def test_a_queued_job_is_cancelled(engine: Engine, keys: dict[str, str], tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, vtn_enabled=False, jobs_enabled=False)
    with TestClient(create_app(settings, engine=engine)) as client:
        analyst = bearer(keys["analyst"])
        job = client.post("/v1/backtests", json={"feeder": "F-01"}, headers=analyst).json()
        cancelled = client.post(f"/v1/jobs/{job['job_id']}/cancel", headers=analyst)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        again = client.post(f"/v1/jobs/{job['job_id']}/cancel", headers=analyst)
        assert again.status_code == 409
        assert datetime.fromisoformat(cancelled.json()["finished_at"]) <= datetime.now(UTC)
