"""Capacity requests: grid operators ask, the service plans, dispatches and measures."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import capacity, settlement, settling
from api.deps import ChainDep, GridViewer, Operator, ProgramAdmin, SessionDep
from api.jobs import wake
from api.schemas import Timestamp
from contracts.rewards import RewardPolicy
from registry import jobs as job_store
from registry import requests as store
from registry.errors import Conflict, InvalidInput, Problem
from registry.requests import Status
from registry.tables import (
    CapacityRequestLog,
    CapacityRequestRow,
    Device,
    Job,
    Settlement,
    utcnow,
)

router = APIRouter(prefix="/v1/capacity-requests", tags=["capacity requests"])

#: The longest window one request may span.
MAX_WINDOW = timedelta(hours=24)
#: The most intervals one window may hold.
MAX_INTERVALS = 480
#: How far ahead a window may start.
MAX_LEAD = timedelta(days=7)


class CapacityRequestIn(BaseModel):
    """A request on one feeder or one region: ``kw`` of reduction against the
    baseline, or a ceiling ``cap_kw`` on net load, over ``[start, end)``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "feeder": "F-12",
                    "start": "2026-11-21T17:00:00Z",
                    "end": "2026-11-21T20:00:00Z",
                    "kw": 2000,
                    "auto_dispatch": True,
                }
            ]
        },
    )

    feeder: str | None = Field(None, min_length=1, max_length=64)
    region: str | None = Field(None, min_length=1, max_length=64)
    start: Timestamp
    end: Timestamp
    kw: float | None = Field(None, gt=0, le=1e7, description="Reduction against baseline [kW]")
    cap_kw: float | None = Field(None, ge=0, le=1e7, description="Ceiling on net load [kW]")
    price_per_kwh: float = Field(0.0, ge=0, le=1e4, description="Paid per kWh delivered")
    shortfall_price_per_kwh: float = Field(
        10.0, ge=0, le=1e6, description="Penalty per kWh short, weighed by the optimizer"
    )
    resolution_s: int = Field(900, ge=10, le=3600, description="Interval length [s]")
    auto_dispatch: bool = Field(True, description="Dispatch once planned, or wait for approval")

    @model_validator(mode="after")
    def _one_of_each(self) -> CapacityRequestIn:
        if (self.feeder is None) == (self.region is None):
            raise ValueError("feeder: give exactly one of feeder and region")
        if (self.kw is None) == (self.cap_kw is None):
            raise ValueError("kw: give exactly one of kw (reduction) and cap_kw (ceiling)")
        if self.end <= self.start:
            raise ValueError(f"end: {self.end.isoformat()} is not after start")
        if self.end - self.start > MAX_WINDOW:
            raise ValueError("end: a window spans at most 24 hours")
        if 3600 % self.resolution_s:
            raise ValueError("resolution_s: must divide an hour (60, 300, 900, 3600, ...)")
        intervals = (self.end - self.start).total_seconds() / self.resolution_s
        if intervals > MAX_INTERVALS:
            raise ValueError(
                f"end: the window holds {intervals:.0f} intervals of {self.resolution_s} s; "
                f"at most {MAX_INTERVALS}"
            )
        return self


class Accepted(BaseModel):
    id: str
    status: str
    job_id: str


class JobOut(BaseModel):
    job_id: str
    kind: str
    status: str
    progress: float
    message: str | None
    error: str | None
    attempts: int


class CapacityRequestSummary(BaseModel):
    id: str
    feeder: str | None
    region: str | None
    start: datetime
    end: datetime
    kw: float | None
    cap_kw: float | None
    status: Status
    reason: str | None
    created_at: datetime
    updated_at: datetime
    devices_called: int | None
    shortfall_kwh: float | None


class CapacityRequestOut(CapacityRequestSummary):
    auto_dispatch: bool
    price_per_kwh: float
    shortfall_price_per_kwh: float
    resolution_s: int
    job: JobOut | None
    plan: dict[str, Any]
    intervals: list[dict[str, Any]]
    settlement_epoch: int | None
    history: list[dict[str, Any]]


def _summary(row: CapacityRequestRow) -> dict[str, Any]:
    return {
        "id": row.request_id,
        **{
            k: getattr(row, k)
            for k in (
                "feeder",
                "region",
                "start",
                "end",
                "kw",
                "cap_kw",
                "status",
                "reason",
                "created_at",
                "updated_at",
            )
        },
        "devices_called": row.plan.get("devices_called"),
        "shortfall_kwh": row.plan.get("shortfall_kwh"),
    }


def _job(
    session: Session, row: CapacityRequestRow, history: Sequence[CapacityRequestLog]
) -> Job | None:
    """The request's newest job: the one that plans and dispatches it, or the one that
    sends its settlement epoch."""
    jobs = [job_store.latest_job(session, row.request_id)]
    epoch = row.settlement_epoch
    if epoch is None:
        epoch = settling.pending_epoch(history)
    if epoch is not None:
        jobs.append(settling.latest(session, epoch))
    found = [j for j in jobs if j is not None]
    return max(found, key=lambda j: j.created_at) if found else None


def _out(session: SessionDep, row: CapacityRequestRow) -> CapacityRequestOut:
    history = store.history(session, row.request_id)
    job = _job(session, row, history)
    plan = {k: v for k, v in row.plan.items() if k != "resolution_s"}
    return CapacityRequestOut.model_validate(
        {
            **_summary(row),
            "auto_dispatch": row.auto_dispatch,
            "price_per_kwh": row.price_per_kwh,
            "shortfall_price_per_kwh": row.shortfall_price_per_kwh,
            "resolution_s": int(row.plan.get("resolution_s", 900)),
            "job": None if job is None else {c: getattr(job, c) for c in JobOut.model_fields},
            "plan": plan,
            "intervals": row.intervals,
            "settlement_epoch": row.settlement_epoch,
            "history": [{"action": e.action, "at": e.at.isoformat(), **e.detail} for e in history],
        }
    )


def _services(request: Request) -> capacity.Services:
    services: capacity.Services = request.app.state.capacity
    return services


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def submit(
    body: CapacityRequestIn, session: SessionDep, request: Request, principal: Operator
) -> Accepted:
    """Accept a request and plan it in the background (``GET`` it to follow). With
    ``auto_dispatch`` the plan goes out as OpenADR events as soon as it is made."""
    now = utcnow()
    problems = []
    if body.end <= now:
        problems.append(Problem("end", "the window is over", body.end.isoformat()))
    if body.start - now > MAX_LEAD:
        problems.append(Problem("start", "a window starts at most 7 days ahead", None, "7 days"))
    name, value = ("feeder", body.feeder) if body.feeder else ("region", body.region)
    column = Device.feeder if body.feeder else Device.region
    if not session.scalar(select(func.count()).select_from(Device).where(column == value)):
        problems.append(Problem(name, f"no device is registered on {name} {value!r}", value))
    if problems:
        raise InvalidInput(problems)
    row = store.create_request(
        session,
        start=body.start,
        end=body.end,
        feeder=body.feeder,
        region=body.region,
        kw=body.kw,
        cap_kw=body.cap_kw,
        price_per_kwh=body.price_per_kwh,
        shortfall_price_per_kwh=body.shortfall_price_per_kwh,
        auto_dispatch=body.auto_dispatch,
        resolution_s=body.resolution_s,
        created_by=principal.name,
        now=now,
    )
    job = job_store.create_job(session, capacity.JOB_KIND, row.request_id, now)
    session.commit()
    wake(request.app)
    return Accepted(id=row.request_id, status=row.status, job_id=job.job_id)


@router.get("")
def list_requests(
    session: SessionDep,
    _: GridViewer,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    feeder: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[CapacityRequestSummary]:
    """Requests, newest first."""
    rows = store.list_requests(session, status=status_, feeder=feeder, limit=limit)
    return [CapacityRequestSummary.model_validate(_summary(r)) for r in rows]


@router.get("/{request_id}")
def get_request(request_id: str, session: SessionDep, _: GridViewer) -> CapacityRequestOut:
    """Status, plan summary, per-interval requested / planned / committed / delivered
    kW with shortfall reasons, the job's progress, and the whole history."""
    return _out(session, store.get_request(session, request_id))


@router.post("/{request_id}/approve")
def approve(
    request_id: str, session: SessionDep, request: Request, principal: Operator
) -> CapacityRequestOut:
    """Dispatch a planned request that waits for approval."""
    row = store.get_request(session, request_id)
    capacity.approve(session, row, principal.name, utcnow())
    session.commit()
    wake(request.app)
    return _out(session, row)


@router.post("/{request_id}/cancel")
async def cancel(
    request_id: str, session: SessionDep, request: Request, principal: Operator
) -> CapacityRequestOut:
    """Cancel a request not yet delivered; its devices get OpenADR cancellations."""
    row = store.get_request(session, request_id)
    capacity.cancel(_services(request), session, row, principal.name)
    session.commit()
    return _out(session, row)


class SettleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate_ovpp_per_kwh: float | None = Field(
        None, ge=0, le=1e6, description="Reward per kWh (default: the devices' program's)"
    )
    epoch: int | None = Field(None, ge=0, le=2**53, description="Epoch id (default: next)")


class SettlingOut(CapacityRequestOut):
    """A request whose settlement is under way: its epoch, where the epoch stands, and
    the job that sends it (``GET /v1/jobs/{job_id}``)."""

    epoch: int
    epoch_status: str
    job_id: str


def _epoch(session: Session, request_id: str, asked: int | None) -> int:
    """The epoch to settle a request in: the one its rewards were prepared in (unless
    the chain refused it), else the one asked for, else the next."""
    pending = settling.pending_epoch(store.history(session, request_id))
    prepared = session.get(Settlement, pending) if pending is not None else None
    if pending is not None and prepared is not None and prepared.status != "failed":
        if asked is not None and asked != pending:
            raise Conflict(
                "epoch",
                f"the request's rewards are prepared in epoch {pending}: settle again "
                f"without an epoch, or with {pending}",
                asked,
            )
        return pending
    if asked is not None:
        return asked
    return (session.scalar(select(func.max(Settlement.epoch))) or 0) + 1


@router.post(
    "/{request_id}/settle",
    status_code=status.HTTP_202_ACCEPTED,
    response_description="The epoch is prepared; the job `job_id` sends it",
    responses={200: {"model": SettlingOut, "description": "A job already settles it: nothing new"}},
)
async def settle(
    request_id: str,
    body: SettleIn,
    session: SessionDep,
    chain: ChainDep,
    request: Request,
    principal: ProgramAdmin,
    response: Response,
) -> SettlingOut:
    """Turn a delivered request's measured response into rewards on chain: one
    settlement epoch of the devices that delivered, prepared at once (the outbox) and
    posted by a background job (``job_id``; the request's ``job`` shows its progress),
    which marks the request ``settled`` with its ``settlement_epoch``. Settling again
    while that job is under way answers 200 with it; after a job that failed it
    resumes the same epoch; a request already settled answers 409."""
    row = store.get_request(session, request_id)
    given = capacity.deliveries(session, row)
    rate = body.rate_ovpp_per_kwh
    if rate is None:
        rate = capacity.incentive_rate(session, [d.device_id for d in given])
        if rate is None:
            raise InvalidInput(
                [Problem("rate_ovpp_per_kwh", "the devices' programs differ in rate: give one")]
            )
    epoch = _epoch(session, request_id, body.epoch)
    prepared = await run_in_threadpool(
        settlement.prepare,
        session,
        chain,
        epoch,
        RewardPolicy(rate),
        given,
        None,
        (row.start, row.end),
    )
    job, started = settling.start(session, epoch, request_id)
    if started:
        store.log(
            session,
            request_id,
            settling.SETTLING,
            utcnow(),
            epoch=epoch,
            job_id=job.job_id,
            by=principal.name,
        )
    else:
        response.status_code = status.HTTP_200_OK
    session.commit()
    wake(request.app)
    return SettlingOut.model_validate(
        {
            **_out(session, row).model_dump(),
            "epoch": epoch,
            "epoch_status": prepared.status,
            "job_id": job.job_id,
        }
    )
