"""Background jobs: follow any job (plans, schedules, backtests, settlements), cancel
one, and start forecast backtests."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api import backtests, capacity, schedules, settling
from api.deps import ForecastUser, GridViewer, JobAdmin, SessionDep
from api.forecasts import scope_of
from api.jobs import wake
from registry import jobs as store
from registry import schedules as schedule_store
from registry.errors import Conflict
from registry.tables import Job, utcnow

router = APIRouter(tags=["jobs"])


class JobOut(BaseModel):
    job_id: str
    kind: str
    subject_id: str
    status: str
    progress: float
    message: str | None
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    params: dict[str, Any] | None
    result: dict[str, Any] | None


def _out(job: Job) -> JobOut:
    return JobOut.model_validate({c: getattr(job, c) for c in JobOut.model_fields})


class BacktestIn(BaseModel):
    """A rolling-origin backtest of the load of one device, site, feeder or region,
    on its stored telemetry."""

    model_config = ConfigDict(extra="forbid")

    device_id: str | None = Field(None, max_length=66)
    site_id: str | None = Field(None, min_length=1, max_length=64)
    feeder: str | None = Field(None, min_length=1, max_length=64)
    region: str | None = Field(None, min_length=1, max_length=64)
    history_days: int = Field(90, ge=7, le=400, description="Days of telemetry read")
    freq: str = Field("15min", max_length=16, description="Resolution: 15min, 1h, ...")
    horizon: str = Field("1D", max_length=16, description="Forecast length, e.g. 1D")
    model: Literal["gbm", "linear"] = "gbm"
    folds: int = Field(4, ge=1, le=12)

    @model_validator(mode="after")
    def _one_scope(self) -> BacktestIn:
        given = [v for v in (self.device_id, self.site_id, self.feeder, self.region) if v]
        if len(given) != 1:
            raise ValueError("feeder: give exactly one of device_id, site_id, feeder and region")
        return self


@router.post("/v1/backtests", status_code=status.HTTP_202_ACCEPTED)
def start_backtest(
    body: BacktestIn, session: SessionDep, request: Request, principal: ForecastUser
) -> JobOut:
    """Backtest a load forecast in the background; ``GET /v1/jobs/{id}`` follows it
    and, once done, holds the metrics (MAE, RMSE, nMAE, pinball, coverage, skill
    against the naive forecasts) overall and per fold."""
    params = body.model_dump()
    scope, _, _ = scope_of(session, backtests.query_of(params))
    job = store.create_job(
        session, backtests.JOB_KIND, next(iter(scope.values())), utcnow(), params
    )
    session.commit()
    wake(request.app)
    return _out(job)


@router.get("/v1/jobs/{job_id}")
def get_job(job_id: str, session: SessionDep, _: GridViewer) -> JobOut:
    """A job's status, progress, and its parameters and result when it keeps them."""
    return _out(store.get_job(session, job_id))


@router.post("/v1/jobs/{job_id}/cancel")
def cancel_job(job_id: str, session: SessionDep, _: JobAdmin) -> JobOut:
    """Cancel a queued or running backtest or schedule (a running one stops at its
    next step). A settlement is cancelled only while its job is queued: once its
    transaction may be out, 409 says why (its epoch stays prepared, to be sent later).
    A capacity request is cancelled as a whole, with its events."""
    job = store.get_job(session, job_id)
    if job.status in store.FINAL:
        raise Conflict("status", f"the job is {job.status}", job.status)
    if job.kind == capacity.JOB_KIND:
        raise Conflict(
            "kind",
            f"cancel the request instead: POST /v1/capacity-requests/{job.subject_id}/cancel",
        )
    if job.kind == settling.JOB_KIND:
        settling.cancel(session, job)
        session.commit()
        return _out(job)
    store.finish(session, job.job_id, "cancelled")
    if job.kind == schedules.JOB_KIND:
        schedule = schedule_store.get_schedule(session, job.subject_id)
        if schedule.status == "planning":
            schedule_store.set_status(schedule, "cancelled", "its job was cancelled")
    session.commit()
    return _out(job)
