"""Day-ahead schedules: aggregators plan their fleet's cheapest day and dispatch it."""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from api import schedules
from api.deps import Aggregator, GridViewer, SessionDep
from api.jobs import wake
from api.planning import PlanningInputError, spread_prices
from api.routers.capacity_requests import JobOut as JobProgress
from api.schemas import Timestamp
from registry import jobs as job_store
from registry import schedules as store
from registry.errors import Conflict, InvalidInput, Problem
from registry.tables import Device, Program, Schedule, utcnow

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])

#: How far from today a schedule's day may be [days].
MAX_DAYS_AWAY = 366
#: The largest price file accepted [bytes].
MAX_PRICE_BYTES = 1_000_000


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timestamp: Timestamp
    price_per_kwh: float = Field(ge=-10, le=100)
    export_price_per_kwh: float | None = Field(None, ge=-10, le=100)


class ScheduleIn(BaseModel):
    """The fleet (every enrolled device, or those of a feeder, region or program), the
    UTC day, prices (each holds until the next) and a demand charge."""

    model_config = ConfigDict(extra="forbid")

    date: date
    prices: Annotated[list[PriceIn], Field(min_length=1, max_length=10_000)]
    feeder: str | None = Field(None, min_length=1, max_length=64)
    region: str | None = Field(None, min_length=1, max_length=64)
    program_id: str | None = Field(None, min_length=1, max_length=64)
    demand_charge_per_kw: float = Field(0.0, ge=0, le=1e4)
    resolution_s: Literal[300, 900, 1800, 3600] = 900


class Accepted(BaseModel):
    id: str
    status: str
    job_id: str


class ScheduleSummary(BaseModel):
    id: str
    date: str
    status: str
    reason: str | None
    feeder: str | None
    region: str | None
    program_id: str | None
    devices: int | None
    objective: float | None
    created_at: datetime
    updated_at: datetime


def _params(body: ScheduleIn) -> dict[str, Any]:
    prices = [
        {
            "timestamp": p.timestamp.isoformat(),
            "price_per_kwh": p.price_per_kwh,
            "export_price_per_kwh": p.price_per_kwh
            if p.export_price_per_kwh is None
            else p.export_price_per_kwh,
        }
        for p in body.prices
    ]
    return {**body.model_dump(exclude={"prices", "date"}), "prices": prices}


def _accept(
    session: SessionDep, request: Request, day: date, params: dict[str, Any], by: str
) -> Accepted:
    problems = []
    if abs((day - utcnow().date()).days) > MAX_DAYS_AWAY:
        problems.append(Problem("date", f"must be within {MAX_DAYS_AWAY} days of today", str(day)))
    for name, column in (("feeder", Device.feeder), ("region", Device.region)):
        value = params.get(name)
        if value and not session.scalar(
            select(func.count()).select_from(Device).where(column == value)
        ):
            problems.append(Problem(name, f"no device is registered on {name} {value!r}", value))
    program = params.get("program_id")
    if program and session.get(Program, program) is None:
        problems.append(Problem("program_id", f"no program {program!r}", program))
    if problems:
        raise InvalidInput(problems)
    try:
        schedules.price_frame(
            params, schedules.day_horizon(day.isoformat(), params["resolution_s"])
        )
    except PlanningInputError as exc:
        raise InvalidInput([Problem("prices", str(exc))]) from exc
    now = utcnow()
    row = store.create_schedule(session, day.isoformat(), params, by, now)
    job = job_store.create_job(session, schedules.JOB_KIND, row.schedule_id, now)
    session.commit()
    wake(request.app)
    return Accepted(id=row.schedule_id, status=row.status, job_id=job.job_id)


@router.post("/day-ahead", status_code=status.HTTP_202_ACCEPTED)
def submit(
    body: ScheduleIn, session: SessionDep, request: Request, principal: Aggregator
) -> Accepted:
    """Plan the cheapest day of a fleet in the background (``GET`` it to follow)."""
    return _accept(session, request, body.date, _params(body), principal.name)


@router.post("/day-ahead/upload", status_code=status.HTTP_202_ACCEPTED)
async def upload(
    session: SessionDep,
    request: Request,
    principal: Aggregator,
    prices: Annotated[
        UploadFile, File(description="Price CSV: timestamp, price_per_kwh or *_per_mwh")
    ],
    day: Annotated[date, Form(alias="date")],
    feeder: Annotated[str | None, Form()] = None,
    region: Annotated[str | None, Form()] = None,
    program_id: Annotated[str | None, Form()] = None,
    demand_charge_per_kw: Annotated[float, Form(ge=0, le=1e4)] = 0.0,
    resolution_s: Annotated[Literal[300, 900, 1800, 3600], Form()] = 900,
) -> Accepted:
    """The same with the prices as a CSV file (the format of ``vpp optimize``)."""
    content = await prices.read(MAX_PRICE_BYTES + 1)
    if len(content) > MAX_PRICE_BYTES:
        raise InvalidInput([Problem("prices", "the file is larger than 1 MB", None, "1 MB")])
    try:
        frame = pd.read_csv(io.BytesIO(content))
        horizon = schedules.day_horizon(day.isoformat(), resolution_s)
        spread = spread_prices(frame, horizon, prices.filename or "prices")
    except (ValueError, pd.errors.ParserError) as exc:
        raise InvalidInput([Problem("prices", str(exc))]) from exc
    params = {
        "feeder": feeder,
        "region": region,
        "program_id": program_id,
        "demand_charge_per_kw": demand_charge_per_kw,
        "resolution_s": resolution_s,
        "prices": [
            {"timestamp": ts.isoformat(), "price_per_kwh": imp, "export_price_per_kwh": exp}
            for ts, imp, exp in zip(
                horizon.index,
                spread["import_price_per_kwh"].astype(float),
                spread["export_price_per_kwh"].astype(float),
                strict=True,
            )
        ],
    }
    return _accept(session, request, day, params, principal.name)


def _summary(row: Schedule) -> ScheduleSummary:
    return ScheduleSummary(
        id=row.schedule_id,
        date=row.day,
        status=row.status,
        reason=row.reason,
        feeder=row.params.get("feeder"),
        region=row.params.get("region"),
        program_id=row.params.get("program_id"),
        devices=row.result.get("devices"),
        objective=row.result.get("objective"),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@router.get("")
def list_schedules(
    session: SessionDep,
    _: GridViewer,
    status_: Annotated[str | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[ScheduleSummary]:
    """Schedules, newest first."""
    return [_summary(r) for r in store.list_schedules(session, status=status_, limit=limit)]


@router.get("/{schedule_id}", response_model=None)
def get_schedule(
    schedule_id: str,
    session: SessionDep,
    _: GridViewer,
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
    devices: Annotated[bool, Query(description="Include the schedule of each device")] = False,
) -> dict[str, Any] | Response:
    """Status and the schedule in aggregate per interval (and per device with
    ``devices=true``); ``format=csv`` gives every device and interval in long form."""
    row = store.get_schedule(session, schedule_id)
    if format_ == "csv":
        if row.status not in ("planned", "dispatched"):
            raise HTTPException(status.HTTP_409_CONFLICT, f"status: the schedule is {row.status}")
        text = schedules.long_frame(row).to_csv(index=False)
        return Response(text, media_type="text/csv")
    job = job_store.latest_job(session, schedule_id)
    result = {k: v for k, v in row.result.items() if k not in ("power_kw", "baseline_kw", "ven_of")}
    out: dict[str, Any] = {
        **_summary(row).model_dump(mode="json"),
        "demand_charge_per_kw": row.params.get("demand_charge_per_kw"),
        "resolution_s": row.params.get("resolution_s"),
        "job": None
        if job is None
        else JobProgress.model_validate(job, from_attributes=True).model_dump(),
        **result,
    }
    if devices and row.result:
        out["devices_kw"] = row.result.get("power_kw", {})
    return out


@router.post("/{schedule_id}/dispatch")
async def dispatch(
    schedule_id: str, session: SessionDep, request: Request, _: Aggregator
) -> dict[str, Any]:
    """Send each device whose schedule differs from its baseline its setpoints (from
    now on) as an OpenADR event."""
    vtn = request.app.state.vtn
    if vtn is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the VTN is not running (VTN_ENABLED=false)"
        )
    row = store.get_schedule(session, schedule_id)
    if row.status != "planned":
        raise Conflict(
            "status", f"the schedule is {row.status}; only a planned one is sent", row.status
        )
    now = utcnow()
    events = schedules.dispatch_schedule(session, vtn, row, now)
    row.result = {**row.result, "events": events}
    store.set_status(row, "dispatched", None, now)
    session.commit()
    return {"id": schedule_id, "status": row.status, "events": events}
