"""Capacity requests from acceptance to delivery: plan, dispatch, measure.

A request moves through ``planning`` (a background job builds the problem from the
registry and plans it), ``planned`` (waiting for approval unless it dispatches
automatically), ``dispatched`` (events out, opt-outs re-planned:
:func:`dispatch.redispatch.dispatch_request`), ``delivering`` (its window has begun;
delivered response per finished interval is measured as reports come in) and
``delivered`` (every opted-in event measured into its device's delivery record).
``cancelled`` and ``failed`` end it early, with the reason.

Planning (:func:`build_problem`): the enrolled, active devices of the feeder or region
(:func:`api.fleet.registry_fleet`) over a horizon from the window's start (or now) to
four hours past its end. A device that an earlier request overlapping this window
holds (planned, dispatched or delivering) is not planned again: it counts as load at
what that request asks of it, so two requests never book the same device. Plans are
made under :attr:`Services.planning`, the dispatch rounds that re-plan around opt-outs
too (:func:`replan`): each round looks again at what other requests hold, since one may
have been planned while this one waited for answers, and keeps what it takes where
requests planned after it see it. The devices a round left out, and why, are in the
request's history.

Every step is kept in the request's history; the request's intervals carry per
interval ``requested_kw``, ``planned_kw``, ``shortfall_kw`` with its ``reasons``,
``committed_kw`` (the opted-in devices' expected change) and ``delivered_kw``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import measurement
from api.compute import plan_auto
from api.fleet import RegistryFleet, horizon_for, registry_fleet
from api.jobs import JobFailed
from api.settings import Settings
from api.settlement import Delivery
from contracts.chain import Chain
from dispatch.baselines import BaselineError
from dispatch.measure import ON_OFF_TYPES, interval_length
from dispatch.redispatch import Called, Dispatched, Round, dispatch_request, setpoints, without
from dispatch.vtn import Vtn
from optimizer.prepare import prepare
from optimizer.problem import CapacityRequest, Problem
from optimizer.results import Plan
from registry import events as event_store
from registry import jobs as job_store
from registry import requests as store
from registry.errors import Conflict, NotFound, RegistryError
from registry.tables import (
    CapacityRequestRow,
    DispatchEvent,
    Enrollment,
    Job,
    Program,
    utcnow,
)

logger = logging.getLogger(__name__)

JOB_KIND = "capacity_request"
#: A reduction starting within this long leaves out loads idle over the last
#: ``IDLE_LOOKBACK``, and any request starting within it takes the loads' mean power
#: over that span as their baseline: what they do now is what they would do then.
IDLE_LOOKAHEAD = timedelta(hours=1)
IDLE_LOOKBACK = timedelta(hours=1)
#: Events of a request that are still live (cancelling sends a cancellation).
LIVE_EVENTS = ("pending", "opted_in")


class PlanningFailed(Exception):
    """The request cannot be planned; the message says why."""


@dataclass
class Services:
    """What the workflow needs from the service."""

    sessions: sessionmaker[Session]
    settings: Settings
    vtn: Vtn | None = None
    clock: Callable[[], datetime] = utcnow
    #: When each delivering request's live response was last measured.
    live_at: dict[str, datetime] = field(default_factory=dict)
    #: Held while a plan is made from the registry, so that plans of overlapping
    #: requests see each other's devices (jobs run in parallel otherwise).
    planning: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Opens the service's chain (the one the routes use); ``None``: no chain here.
    chain: Callable[[], Chain] | None = None
    #: Held while an epoch is sent: the service's account sends one at a time.
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class Built:
    """A request's problem, its fleet, and the devices other requests hold."""

    problem: Problem
    fleet: RegistryFleet
    held: dict[str, str]


def _stamp(value: datetime) -> pd.Timestamp:
    return pd.Timestamp(value).tz_convert("UTC")


def _number(value: float) -> float | None:
    """A float for JSON (``None`` for NaN)."""
    return None if value is None or math.isnan(value) else round(float(value), 6) + 0.0


def build_problem(
    session: Session, row: CapacityRequestRow, now: datetime, connected: set[str] | None = None
) -> Built:
    """The request's problem, planned around the devices other requests hold; with
    ``connected`` (the VEN ids the VTN hears from), devices whose VEN is not among them
    stay at their baseline."""
    horizon = horizon_for(row.start, row.end, now, _resolution_s(row))
    # A window soon: loads draw what they draw now, and one that is off has nothing
    # to give to a reduction.
    soon = row.start - now <= IDLE_LOOKAHEAD
    found = registry_fleet(
        session,
        horizon,
        feeder=row.feeder,
        region=row.region,
        now=now,
        idle_within=IDLE_LOOKBACK if soon and row.kw is not None else None,
        recent=IDLE_LOOKBACK if soon else None,
    )
    scope = f"feeder {row.feeder}" if row.feeder else f"region {row.region}"
    if not found.ven_of:
        raise PlanningFailed(f"no active device on {scope} has an open enrolment")
    request = CapacityRequest(
        row.request_id,
        start=max(_stamp(row.start), horizon.start),
        end=_stamp(row.end),
        feeder=row.feeder,
        region=row.region,
        kw=row.kw,
        cap_kw=row.cap_kw,
        shortfall_price_per_kwh=row.shortfall_price_per_kwh,
    )
    problem = Problem(horizon, found.fleet, requests=(request,), name=row.request_id)
    offline = set()
    if connected is not None:
        offline = {d for d, ven in found.ven_of.items() if ven not in connected}
        if len(offline) == len(found.ven_of):
            raise PlanningFailed(
                f"none of the {len(offline)} enrolled devices on {scope} is connected to the "
                "VTN (no poll in the last three poll intervals)"
            )
    problem, held = hold_devices(session, problem, row.start, row.end, row.request_id)
    offline -= set(held)
    if offline:
        baseline = pd.DataFrame(prepare(problem).baseline_kw, index=horizon.index)
        problem = without(problem, offline, baseline)
        found.notes.append(
            f"{len(offline)} of {len(found.ven_of)} enrolled devices are not connected to the "
            "VTN: planned at their baseline"
        )
        found.ven_of = {d: v for d, v in found.ven_of.items() if d not in offline}
    return Built(problem, found, held)


def hold_devices(
    session: Session, problem: Problem, start: datetime, end: datetime, exclude: str | None
) -> tuple[Problem, dict[str, str]]:
    """``problem`` with the devices that requests overlapping ``[start, end)`` hold
    (other than ``exclude``) as load at what those requests ask of them; and which
    request holds each."""
    held: dict[str, str] = {}
    others = store.overlapping(session, start, end, exclude)
    if not others:
        return problem, held
    horizon = problem.horizon
    baseline = pd.DataFrame(prepare(problem).baseline_kw, index=horizon.index)
    power = baseline.copy()
    for other in others:
        for device, (first, values) in other.plan.get("setpoints", {}).items():
            if device not in power.columns or device in held:
                continue
            held[device] = other.request_id
            stamps = pd.date_range(
                _stamp(datetime.fromisoformat(first)), periods=len(values), freq=horizon.resolution
            )
            inside = stamps.isin(horizon.index)
            power.loc[stamps[inside], device] = np.asarray(values, dtype=float)[inside]
    return without(problem, set(held), power), held


def _intervals(result: Plan) -> list[dict[str, Any]]:
    outcome = result.requests[0]
    return [
        {
            "start": ts.isoformat(),
            "requested_kw": _number(outcome.requested_kw[ts]),
            "planned_kw": _number(outcome.expected_kw[ts]),
            "shortfall_kw": _number(outcome.shortfall_kw[ts]),
            "reasons": outcome.reasons.get(ts, []),
            "marginal_cost_per_kw": _number(outcome.marginal_cost_per_kw[ts]),
            "committed_kw": None,
            "delivered_kw": None,
        }
        for ts in outcome.requested_kw.index
    ]


def _wanted(result: Plan, now: datetime, until: datetime) -> dict[str, list[Any]]:
    return {
        device: [first.isoformat(), [round(v, 6) for v in values]]
        for device, (first, values) in setpoints(result, now, until).items()
    }


def _store_plan(row: CapacityRequestRow, built: Built, result: Plan, now: datetime) -> None:
    outcome = result.requests[0]
    wanted = _wanted(result, now, row.end)
    row.plan = {
        "resolution_s": _resolution_s(row),
        "devices": len(built.fleet.ven_of),
        "devices_called": len(wanted),
        "setpoints": wanted,
        "held_by_other_requests": built.held,
        "cost": {k: round(v, 6) for k, v in result.costs.items()},
        "objective": round(result.objective, 6),
        "shortfall_kwh": round(outcome.shortfall_kwh, 6),
        "baseline_method": built.fleet.baseline_method,
        "load_baselines": dict(sorted(Counter(built.fleet.load_baselines.values()).items())),
        "notes": [*built.fleet.notes, *result.notes],
        "idle": built.fleet.idle,
        "skipped": built.fleet.skipped,
        "status": result.status,
    }
    row.intervals = _intervals(result)


def plan_stage(services: Services, request_id: str, job_id: str) -> tuple[Built, Plan] | None:
    """Plan a request in ``planning``; ``None`` when it is no longer planning."""
    now = services.clock()
    with services.sessions.begin() as session:
        row = store.get_request(session, request_id)
        if row.status != "planning":
            return None
        job_store.set_progress(session, job_id, 0.1, "reading the fleet and forecasting")
        built = build_problem(session, row, now, _connected(services))
        job_store.set_progress(session, job_id, 0.4, f"planning {len(built.fleet.ven_of)} devices")
    result = plan_auto(built.problem, services.settings)
    with services.sessions.begin() as session:
        row = store.get_request(session, request_id)
        if row.status != "planning":
            return None
        _store_plan(row, built, result, now)
        outcome = result.requests[0]
        reason = None
        if outcome.shortfall_kwh > 1e-6:
            reason = (
                f"the plan falls short by {outcome.shortfall_kwh:.3f} kWh: "
                "see the intervals' reasons"
            )
        store.set_status(
            session,
            row,
            "planned",
            reason,
            now,
            devices_called=row.plan["devices_called"],
            shortfall_kwh=row.plan["shortfall_kwh"],
            held=len(built.held),
        )
        job_store.set_progress(session, job_id, 0.6, "planned")
    return built, result


def _journal(services: Services, request_id: str) -> Callable[[str, Called], None]:
    def write(action: str, called: Called) -> None:
        with services.sessions.begin() as session:
            if action == "cancelled":
                event_store.record_cancel(session, called.event_id)
                return
            seconds = _resolution_s(store.get_request(session, request_id))
            intervals = [
                {
                    "start": (called.start + i * timedelta(seconds=seconds)).isoformat(),
                    "minutes": seconds / 60,
                    "value": v,
                }
                for i, v in enumerate(called.values_kw)
            ]
            if action == "sent":
                event_store.record_sent(
                    session,
                    called.event_id,
                    ven_id=called.ven_id,
                    device_id=called.device_id,
                    signal_name=called.signal,
                    intervals=intervals,
                    capacity_request_id=request_id,
                )
            else:
                event_store.record_modified(session, called.event_id, intervals)

    return write


def _resolution_s(row: CapacityRequestRow) -> int:
    return int(row.plan.get("resolution_s", 900))


def cancel_events(session: Session, vtn: Vtn | None, request_id: str) -> int:
    """Send cancellations for the request's live events; returns how many."""
    live = session.scalars(
        select(DispatchEvent).where(
            DispatchEvent.capacity_request_id == request_id,
            DispatchEvent.status.in_(LIVE_EVENTS),
        )
    ).all()
    for event in live:
        if vtn is not None:
            vtn.cancel(event.ven_id, event.event_id)
        event_store.record_cancel(session, event.event_id)
    return len(live)


def approved(session: Session, row: CapacityRequestRow) -> bool:
    return row.auto_dispatch or any(
        e.action == "approved" for e in store.history(session, row.request_id)
    )


async def dispatch_stage(
    services: Services, request_id: str, built: Built, first: Plan | None, job_id: str
) -> None:
    """Send a planned request's events and re-plan around opt-outs and silent VENs."""
    now = services.clock()
    vtn = services.vtn
    with services.sessions.begin() as session:
        row = store.get_request(session, request_id)
        if row.status != "planned":
            return
        if vtn is None:
            store.set_status(
                session,
                row,
                "failed",
                "the VTN is not running (VTN_ENABLED=false): the plan cannot be sent",
                now,
            )
            return
        if now >= row.end:
            store.set_status(session, row, "failed", "the window ended before dispatch", now)
            return
        stale = cancel_events(session, vtn, request_id)
        if stale:
            store.log(session, request_id, "resent", now, events_cancelled=stale)
        job_store.set_progress(session, job_id, 0.7, "events out, waiting for answers")
    reuse = {"plan": first}

    async def plan_round(problem: Problem) -> tuple[Plan, dict[str, str]]:
        if problem is built.problem and reuse["plan"] is not None:
            plan, reuse["plan"] = reuse["plan"], None
            return plan, {}
        # Other requests may have been planned since: under the planning lock, plan
        # around what they hold now and keep what this round takes for the next.
        async with services.planning:
            return await asyncio.to_thread(replan, services, request_id, problem)

    outcome = await dispatch_request(
        vtn,
        built.problem,
        built.fleet.ven_of,
        answer_within_s=services.settings.dispatch_answer_within_s,
        max_rounds=services.settings.dispatch_max_rounds,
        clock=services.clock,
        journal=_journal(services, request_id),
        on_off={d for d, kind in built.fleet.device_types.items() if kind in ON_OFF_TYPES},
        plan_round=plan_round,
    )
    await asyncio.to_thread(_store_dispatch, services, request_id, outcome)


def replan(services: Services, request_id: str, problem: Problem) -> tuple[Plan, dict[str, str]]:
    """Plan a dispatch round of a request (``problem``: its fleet less the devices left
    out so far) around the devices that overlapping requests hold now, as the database
    has them, and keep the round's setpoints as what this request holds, so that
    requests planned after it see them. Call it holding the planning lock.

    Returns the plan and the devices other requests hold, by the request holding each.
    """
    now = services.clock()
    with services.sessions() as session:
        row = store.get_request(session, request_id)
        problem, held = hold_devices(session, problem, row.start, row.end, request_id)
    result = plan_auto(problem, services.settings)
    with services.sessions.begin() as session:
        row = store.get_request(session, request_id)
        if row.status in store.HOLDING:
            row.plan = {**row.plan, "setpoints": _wanted(result, now, row.end)}
    return result, held


def _store_dispatch(services: Services, request_id: str, outcome: Dispatched) -> None:
    now = services.clock()
    with services.sessions.begin() as session:
        row = store.get_request(session, request_id)
        if row.status == "cancelled":
            cancel_events(session, services.vtn, request_id)
            return
        for number, round_ in enumerate(outcome.rounds, start=1):
            store.log(
                session,
                request_id,
                "round",
                round_.at,
                round=number,
                left_out=list(round_.left_out),
                why=_why(round_, outcome),
                held_by_other_requests=dict(round_.held),
                called=len(round_.called),
                expected_kw=[round(v, 4) for v in round_.expected_kw],
                shortfall_kw=[round(v, 4) for v in round_.shortfall_kw],
            )
        by_start = {t.isoformat(): k for k, t in enumerate(outcome.intervals)}
        intervals = [dict(i) for i in row.intervals]
        for interval in intervals:
            k = by_start.get(interval["start"])
            if k is not None:
                interval["planned_kw"] = round(outcome.planned_kw[k], 6)
                interval["committed_kw"] = round(outcome.committed_kw[k], 6)
        row.intervals = intervals
        held = {
            device: [called.start.isoformat(), _held_kw(called, outcome.last_plan)]
            for device, called in outcome.events.items()
            if outcome.answers.get(device) == "optIn"
        }
        answers = list(outcome.answers.values())
        plan = dict(row.plan)
        plan["setpoints"] = held
        plan["devices_called"] = len(held)
        plan["answers"] = {a: answers.count(a) for a in sorted(set(answers))}
        plan["left_out"] = outcome.left_out
        row.plan = plan
        committed = [i["committed_kw"] or 0.0 for i in intervals if i["committed_kw"] is not None]
        requested = [i["requested_kw"] or 0.0 for i in intervals if i["committed_kw"] is not None]
        short = [r - c for r, c in zip(requested, committed, strict=True)]
        reason = None
        if short and max(short) > 1e-3 and row.kw is not None:
            reason = f"committed falls short of requested by up to {max(short):.1f} kW: " + (
                f"{len(outcome.left_out)} devices opted out or did not answer and the rest "
                "of the fleet could not cover them"
                if outcome.left_out
                else "the fleet cannot give more (see the intervals' reasons)"
            )
        status = "delivering" if now >= row.start else "dispatched"
        store.set_status(
            session,
            row,
            status,
            reason,
            now,
            rounds=len(outcome.rounds),
            opted_in=len(held),
            left_out=len(outcome.left_out),
        )


def _held_kw(called: Called, result: Plan | None) -> list[float]:
    """What an opted-in event holds its device to [kW] (what requests planned later
    count it as): its setpoints; for a ``SIMPLE`` event, nothing where its level sheds
    the device and the device's baseline elsewhere."""
    if called.signal != "SIMPLE" or result is None:
        return list(called.values_kw)
    base = result.baseline_kw[called.device_id]
    at = int(pd.DatetimeIndex(base.index).searchsorted(_stamp(called.start)))
    return [
        0.0 if level >= 1 else round(float(base.iloc[at + k]), 6)
        for k, level in enumerate(called.values_kw)
    ]


def _why(round_: Round, outcome: Dispatched) -> dict[str, str]:
    """Why each device was left out of a round."""
    answered = {"optOut": "opted out", "none": "did not answer"}
    why = {
        d: answered.get(outcome.answers.get(d, "none"), "did not opt in") for d in round_.left_out
    }
    why.update({d: f"held by request {other}" for d, other in round_.held.items()})
    return why


async def run_job(services: Services, job: Job) -> None:
    """The job of a capacity request: plan it, and dispatch it when approved."""
    request_id = job.subject_id
    try:
        staged: tuple[Built, Plan | None] | None = None
        with services.sessions() as session:
            row = store.get_request(session, request_id)
            status = row.status
        if status == "planning":
            async with services.planning:
                staged = await asyncio.to_thread(plan_stage, services, request_id, job.job_id)
            if staged is None:
                return
            status = "planned"
        if status != "planned":
            return
        with services.sessions() as session:
            if not approved(session, store.get_request(session, request_id)):
                return
        if staged is None:
            async with services.planning:
                staged = await asyncio.to_thread(_rebuild, services, request_id)
        built, first = staged
        await dispatch_stage(services, request_id, built, first, job.job_id)
    except (PlanningFailed, RegistryError, ValueError, RuntimeError) as exc:
        _fail(services, request_id, str(exc))
        raise JobFailed(str(exc)) from exc


def _connected(services: Services) -> set[str] | None:
    return services.vtn.connected() if services.vtn is not None else None


def _rebuild(services: Services, request_id: str) -> tuple[Built, Plan | None]:
    with services.sessions() as session:
        row = store.get_request(session, request_id)
        return build_problem(session, row, services.clock(), _connected(services)), None


def _fail(services: Services, request_id: str, reason: str) -> None:
    with services.sessions.begin() as session:
        try:
            row = store.get_request(session, request_id)
        except NotFound:
            return
        if row.status not in store.FINAL:
            store.set_status(session, row, "failed", reason, services.clock())


def job_failed(services: Services, job: Job) -> None:
    """A job given up (see :func:`registry.jobs.recover`): its request fails with the reason."""
    if job.kind == JOB_KIND:
        _fail(services, job.subject_id, job.error or "its job failed")


def advance(services: Services) -> None:
    """Move dispatched and delivering requests on with the clock: ``delivering`` once
    the window begins, live delivered response while it runs, and ``delivered``
    (every opted-in event measured) once the window and the reports after it are in."""
    now = services.clock()
    grace = timedelta(seconds=services.settings.measure_after_s)
    every = timedelta(seconds=services.settings.live_delivery_every_s)
    with services.sessions() as session:
        ids = list(
            session.scalars(
                select(CapacityRequestRow.request_id).where(
                    CapacityRequestRow.status.in_(("dispatched", "delivering"))
                )
            )
        )
    for request_id in ids:
        with services.sessions.begin() as session:
            row = store.get_request(session, request_id)
            if row.status == "dispatched" and now >= row.start:
                store.set_status(session, row, "delivering", row.reason, now)
            if row.status != "delivering":
                continue
            if now >= row.end + grace:
                _finish(session, row, now)
                services.live_at.pop(request_id, None)
            elif (
                now - services.live_at.get(request_id, datetime.min.replace(tzinfo=now.tzinfo))
                >= every
            ):
                _live(session, row, now)
                services.live_at[request_id] = now


def _events_in(session: Session, request_id: str) -> list[DispatchEvent]:
    return list(
        session.scalars(
            select(DispatchEvent).where(
                DispatchEvent.capacity_request_id == request_id,
                DispatchEvent.status == "opted_in",
            )
        )
    )


def _add_delivered(row: CapacityRequestRow, delivered: dict[str, float], upto: datetime) -> None:
    intervals = [dict(i) for i in row.intervals]
    step = timedelta(seconds=_resolution_s(row))
    for interval in intervals:
        start = datetime.fromisoformat(interval["start"])
        if start + step <= upto:
            interval["delivered_kw"] = round(delivered.get(interval["start"], 0.0), 6)
    row.intervals = intervals


def _live(session: Session, row: CapacityRequestRow, now: datetime) -> None:
    """Delivered response so far: each opted-in event over its finished intervals."""
    delivered: dict[str, float] = {}
    for event in _events_in(session, row.request_id):
        done = [
            i
            for i in event.intervals
            if datetime.fromisoformat(i["start"]) + interval_length(i) <= now
        ]
        if not done:
            continue
        try:
            result = measurement.measure_intervals(
                session, event.device_id, done, event.signal_name
            )
        except BaselineError:
            continue  # its reports are not in yet
        for start, value in result.intervals["delivered_kw"].items():
            key = pd.Timestamp(str(start)).isoformat()
            delivered[key] = delivered.get(key, 0.0) + float(value)
    _add_delivered(row, delivered, now)
    row.updated_at = now


def _finish(session: Session, row: CapacityRequestRow, now: datetime) -> None:
    """Measure every opted-in event into its device's record; the request is delivered."""
    delivered: dict[str, float] = {}
    unmeasured: list[str] = []
    requested_kwh = delivered_kwh = 0.0
    for event in _events_in(session, row.request_id):
        try:
            detail = measurement.measure_event(session, event, now)
        except measurement.NotMeasurable as exc:
            unmeasured.append(f"{event.device_id}: {exc.message}")
            continue
        requested_kwh += detail["requested_kwh"]
        delivered_kwh += detail["delivered_kwh"]
        for interval in detail["intervals"]:
            key = pd.Timestamp(interval["start"]).isoformat()
            delivered[key] = delivered.get(key, 0.0) + float(interval["delivered_kw"])
    _add_delivered(row, delivered, now)
    plan = dict(row.plan)
    plan["measurement"] = {
        "events_measured": len(_events_in(session, row.request_id)) - len(unmeasured),
        "unmeasured": unmeasured,
        "requested_kwh": round(requested_kwh, 6),
        "delivered_kwh": round(delivered_kwh, 6),
        "performance": round(delivered_kwh / requested_kwh, 6) if requested_kwh > 0 else None,
    }
    row.plan = plan
    reason = f"{len(unmeasured)} events could not be measured" if unmeasured else None
    store.set_status(
        session,
        row,
        "delivered",
        reason,
        now,
        delivered_kwh=round(delivered_kwh, 6),
        requested_kwh=round(requested_kwh, 6),
    )


def cancel(services: Services, session: Session, row: CapacityRequestRow, by: str) -> int:
    """Cancel a request that has not been delivered: its jobs stop, its live events get
    cancellations. Returns how many events were cancelled."""
    if row.status in store.FINAL or row.status == "delivered":
        raise Conflict(
            "status", f"the request is {row.status}; it can no longer be cancelled", row.status
        )
    now = services.clock()
    job_store.cancel_jobs(session, row.request_id, now)
    sent = cancel_events(session, services.vtn, row.request_id)
    store.set_status(session, row, "cancelled", f"cancelled by {by}", now, events_cancelled=sent)
    return sent


def approve(session: Session, row: CapacityRequestRow, by: str, now: datetime) -> Job:
    """Approve a planned request for dispatch; a job sends it."""
    if row.status != "planned":
        raise Conflict(
            "status", f"the request is {row.status}; only a planned request is approved", row.status
        )
    if approved(session, row):
        raise Conflict("status", "the request is already approved; its dispatch is under way")
    store.log(session, row.request_id, "approved", now, by=by)
    return job_store.create_job(session, JOB_KIND, row.request_id, now)


def deliveries(session: Session, row: CapacityRequestRow) -> list[Delivery]:
    """What each device delivered in a delivered request (its measured events), for a
    settlement; a negative response counts as none."""
    if row.status != "delivered":
        raise Conflict("status", f"the request is {row.status}; only a delivered one is settled")
    totals: dict[str, float] = {}
    for event in _events_in(session, row.request_id):
        done = event_store.measured(session, event.event_id)
        if done is not None:
            totals[event.device_id] = totals.get(event.device_id, 0.0) + done["delivered_kwh"]
    if not totals:
        raise Conflict("status", "no device's delivery was measured: nothing to settle")
    return [Delivery(device, max(kwh, 0.0)) for device, kwh in sorted(totals.items())]


def incentive_rate(session: Session, device_ids: list[str]) -> float | None:
    """The OVPP per kWh of the program the devices are enrolled in (``None`` when they
    are in several with different rates)."""
    rates = set(
        session.scalars(
            select(Program.incentive_ovpp_per_kwh)
            .join(Enrollment, Enrollment.program_id == Program.program_id)
            .where(Enrollment.device_id.in_(device_ids), Enrollment.ended_at.is_(None))
        )
    )
    return rates.pop() if len(rates) == 1 else None


def settled(session: Session, row: CapacityRequestRow, epoch: int, now: datetime) -> None:
    row.settlement_epoch = epoch
    store.set_status(session, row, "settled", None, now, epoch=epoch)
