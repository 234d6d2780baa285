"""Load forecasts from stored telemetry, for analysts and aggregators."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import ForecastUser, SessionDep
from api.forecasts import ForecastQuery, forecast_scope
from api.schemas import ForecastIn, ForecastOut, ForecastPoint

router = APIRouter(prefix="/v1/forecasts", tags=["forecasts"])


@router.post("")
async def create_forecast(body: ForecastIn, session: SessionDep, _: ForecastUser) -> ForecastOut:
    """Forecast the load of a device, or the summed load of a site, feeder or region, with
    P10/P50/P90 per interval. Trains on the scope's telemetry (a learned model needs
    about six weeks of it; with less, the spread of recent days is used and a note says
    so). 404 for an unknown scope, 422 naming the field for bad input."""
    query = ForecastQuery(**body.model_dump())
    answer = await run_in_threadpool(forecast_scope, session, query, datetime.now(UTC))
    return ForecastOut(
        scope=answer.scope,
        devices=answer.devices,
        method=answer.method,
        cutoff=answer.cutoff.to_pydatetime(),
        freq=str(answer.freq),
        horizon=str(answer.horizon),
        history=answer.history,
        notes=answer.notes,
        intervals=[
            ForecastPoint(start=stamp.to_pydatetime(), p10_kw=p10, p50_kw=p50, p90_kw=p90)
            for stamp, p10, p50, p90 in zip(
                pd.DatetimeIndex(answer.forecast.index),
                answer.forecast["p10"].astype(float),
                answer.forecast["p50"].astype(float),
                answer.forecast["p90"].astype(float),
                strict=True,
            )
        ],
    )
