"""Forecast backtests from stored telemetry, as background jobs.

A backtest job reads the load of a device, site, feeder or region from the registry's
telemetry (:func:`api.forecasts.scope_load`), runs the rolling-origin backtest of
:mod:`forecasting.backtest` beside the naive forecasts, reports each fold as progress
(a cancelled job stops at the next fold) and keeps the metrics as the job's result.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pandas as pd

from api.capacity import Services
from api.forecasts import ForecastQuery, scope_load, scope_of
from api.jobs import JobFailed
from forecasting.backtest import backtest
from forecasting.errors import ForecastError
from forecasting.features import DAY, FeatureSpec
from forecasting.models import LoadForecaster
from forecasting.series import parse_freq, parse_horizon
from registry import jobs as store
from registry.tables import Job

JOB_KIND = "backtest"


def _plain(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def query_of(params: dict[str, Any]) -> ForecastQuery:
    return ForecastQuery(
        device_id=params.get("device_id"),
        site_id=params.get("site_id"),
        feeder=params.get("feeder"),
        region=params.get("region"),
        freq=params["freq"],
        horizon=params["horizon"],
    )


def run_backtest(services: Services, job_id: str) -> None:
    now = pd.Timestamp(services.clock())
    with services.sessions.begin() as session:
        params = dict(store.get_job(session, job_id).params or {})
        query = query_of(params)
        scope, condition, devices = scope_of(session, query)
        try:
            freq = parse_freq(query.freq)
            horizon = parse_horizon(query.horizon, freq)
        except ForecastError as exc:
            raise JobFailed(f"{exc.field}: {exc.message}") from exc
        end = now.floor(freq)
        load, reporting = scope_load(
            session, condition, end - int(params["history_days"]) * DAY, end, freq
        )
        store.set_progress(session, job_id, 0.05, f"{reporting} of {devices} devices reported")
    spec = FeatureSpec(freq=freq, horizon=horizon)

    def progress(done: int, total: int) -> None:
        with services.sessions.begin() as session:
            store.check_cancelled(session, job_id)
            store.set_progress(
                session, job_id, 0.05 + 0.9 * done / total, f"fold {done} of {total}"
            )

    try:
        result = backtest(
            load,
            lambda: LoadForecaster(spec, model=params["model"]),
            folds=int(params["folds"]),
            progress=progress,
        )
    except ForecastError as exc:
        raise JobFailed(f"{exc.field}: {exc.message}") from exc
    folds = result.folds.reset_index(drop=True)
    with services.sessions.begin() as session:
        job = store.get_job(session, job_id)
        job.result = {
            "scope": scope,
            "devices": devices,
            "devices_reporting": reporting,
            "model": params["model"],
            "metrics": {k: _plain(v) for k, v in result.metrics.items()},
            "folds": [
                {
                    k: _plain(v) if not isinstance(v, pd.Timestamp) else v.isoformat()
                    for k, v in row.items()
                }
                for row in folds.to_dict("records")
            ],
        }


async def run_job(services: Services, job: Job) -> None:
    await asyncio.to_thread(run_backtest, services, job.job_id)
