"""Day-ahead schedules: an aggregator's fleet planned at least cost for one UTC day.

A schedule job reads the fleet from the registry (all enrolled, active devices, or
those of a feeder, region or program), spreads the prices over the day, keeps the
devices that accepted capacity requests hold to what those ask (a schedule never
undoes a commitment), and plans the cheapest day under the prices and the demand
charge. The result keeps, per interval, the fleet's planned and baseline power and
the prices, and per device its planned and baseline power, so that it can be read as
JSON or CSV and sent as OpenADR events; and the energy cost of the schedule beside that
of the fleet left alone (every device at its baseline).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from api.capacity import PlanningFailed, Services, hold_devices
from api.compute import plan_auto
from api.fleet import registry_fleet
from api.jobs import JobFailed
from api.planning import prices_for, spread_prices
from dispatch.redispatch import CALL_TOLERANCE_KW
from dispatch.vtn import Vtn
from optimizer.problem import Horizon, Problem, series
from registry import events as event_store
from registry import jobs as job_store
from registry import schedules as store
from registry.errors import NotFound, RegistryError
from registry.tables import Job, Schedule

JOB_KIND = "day_ahead"


def day_horizon(day: str, resolution_s: int) -> Horizon:
    start = pd.Timestamp(day, tz=UTC)
    step = pd.Timedelta(seconds=resolution_s)
    return Horizon(start, int(pd.Timedelta(days=1) / step), step.to_pytimedelta())


def price_frame(params: dict[str, Any], horizon: Horizon) -> pd.DataFrame:
    """The schedule's prices on the horizon (see :func:`api.planning.spread_prices`)."""
    return spread_prices(pd.DataFrame(params["prices"]), horizon, "prices")


def plan_schedule(services: Services, schedule_id: str, job_id: str) -> None:
    """Plan a schedule in ``planning`` and keep the result."""
    now = services.clock()
    with services.sessions.begin() as session:
        row = store.get_schedule(session, schedule_id)
        if row.status != "planning":
            return
        params = row.params
        horizon = day_horizon(row.day, int(params["resolution_s"]))
        job_store.set_progress(session, job_id, 0.1, "reading the fleet and forecasting")
        found = registry_fleet(
            session,
            horizon,
            feeder=params.get("feeder"),
            region=params.get("region"),
            program_id=params.get("program_id"),
            now=now,
        )
        if not found.ven_of:
            raise PlanningFailed("no active device of the fleet asked for has an open enrolment")
        prices = price_frame(params, horizon)
        problem = Problem(
            horizon,
            found.fleet,
            prices=prices_for(prices, float(params.get("demand_charge_per_kw", 0.0))),
            name=schedule_id,
        )
        problem, held = hold_devices(session, problem, horizon.start, horizon.end, None)
        job_store.set_progress(session, job_id, 0.4, f"planning {len(found.ven_of)} devices")
    result = plan_auto(problem, services.settings)
    power, baseline = result.power_kw, result.baseline_kw[result.power_kw.columns]
    site_of = {d.device_id: d.site_id for d in problem.fleet.devices()}
    base = pd.DataFrame(
        {s.site_id: series(s.base_load_kw, horizon) for s in problem.fleet.sites},
        index=horizon.index,
    )
    left_alone = base.add(baseline.T.groupby(site_of.get).sum().T, fill_value=0.0)
    step_h = horizon.step_h
    aggregate = [
        {
            "start": ts.isoformat(),
            "p_kw": round(float(p), 4),
            "baseline_kw": round(float(b), 4),
            "import_price_per_kwh": round(float(prices.loc[ts, "import_price_per_kwh"]), 6),
            "export_price_per_kwh": round(float(prices.loc[ts, "export_price_per_kwh"]), 6),
        }
        for ts, p, b in zip(power.index, power.sum(axis=1), baseline.sum(axis=1), strict=True)
    ]
    with services.sessions.begin() as session:
        row = store.get_schedule(session, schedule_id)
        if row.status != "planning":
            return
        row.result = {
            "devices": len(found.ven_of),
            "solver_status": result.status,
            "objective": round(result.objective, 6),
            "cost": {k: round(v, 6) for k, v in result.costs.items()},
            "energy_cost": round(energy_cost(result.site_net_kw, prices, step_h), 6),
            "baseline_energy_cost": round(energy_cost(left_alone, prices, step_h), 6),
            "notes": [*found.notes, *result.notes],
            "held_by_requests": held,
            "skipped": found.skipped,
            "aggregate": aggregate,
            "ven_of": found.ven_of,
            "power_kw": {str(d): np.round(power[d].to_numpy(), 4).tolist() for d in power},
            "baseline_kw": {str(d): np.round(baseline[d].to_numpy(), 4).tolist() for d in power},
        }
        store.set_status(row, "planned", None, services.clock())


def energy_cost(site_net_kw: pd.DataFrame, prices: pd.DataFrame, step_h: float) -> float:
    """Cost of the sites' net power [kW] (columns: sites) at import and export prices:
    imports pay the import price, exports earn the export price [currency]."""
    imports = site_net_kw.clip(lower=0).sum(axis=1).to_numpy()
    exports = (-site_net_kw).clip(lower=0).sum(axis=1).to_numpy()
    return float(
        step_h
        * (
            imports @ prices["import_price_per_kwh"].to_numpy()
            - exports @ prices["export_price_per_kwh"].to_numpy()
        )
    )


async def run_job(services: Services, job: Job) -> None:
    try:
        async with services.planning:
            await asyncio.to_thread(plan_schedule, services, job.subject_id, job.job_id)
    except (PlanningFailed, RegistryError, ValueError, RuntimeError) as exc:
        _fail(services, job.subject_id, str(exc))
        raise JobFailed(str(exc)) from exc


def _fail(services: Services, schedule_id: str, reason: str) -> None:
    with services.sessions.begin() as session:
        try:
            row = store.get_schedule(session, schedule_id)
        except NotFound:
            return
        if row.status == "planning":
            store.set_status(row, "failed", reason, services.clock())


def job_failed(services: Services, job: Job) -> None:
    if job.kind == JOB_KIND:
        _fail(services, job.subject_id, job.error or "its job failed")


def long_frame(row: Schedule) -> pd.DataFrame:
    """The schedule in long form: ``timestamp_utc, device_id, p_kw, baseline_kw``."""
    stamps = [a["start"] for a in row.result.get("aggregate", [])]
    frames = [
        pd.DataFrame(
            {
                "timestamp_utc": stamps,
                "device_id": device,
                "p_kw": values,
                "baseline_kw": row.result["baseline_kw"][device],
            }
        )
        for device, values in row.result.get("power_kw", {}).items()
    ]
    if not frames:
        return pd.DataFrame(columns=["timestamp_utc", "device_id", "p_kw", "baseline_kw"])
    return pd.concat(frames, ignore_index=True)


def dispatch_schedule(session: Session, vtn: Vtn, row: Schedule, now: datetime) -> list[str]:
    """Send each device whose schedule differs from its baseline (from the interval
    holding ``now``) its setpoints as a ``LOAD_DISPATCH`` event; returns the event ids."""
    stamps = [datetime.fromisoformat(a["start"]) for a in row.result["aggregate"]]
    seconds = int(row.params["resolution_s"])
    step = timedelta(seconds=seconds)
    usable = np.array([t + step > now for t in stamps])
    sent = []
    for device, values in row.result["power_kw"].items():
        power = np.asarray(values, dtype=float)
        differs = (
            np.abs(power - np.asarray(row.result["baseline_kw"][device])) > CALL_TOLERANCE_KW
        ) & usable
        if not differs.any():
            continue
        first, last = np.flatnonzero(differs)[[0, -1]]
        setpoints = [float(v) for v in power[first : last + 1]]
        ven_id = row.result["ven_of"][device]
        event_id = vtn.send_setpoints(ven_id, stamps[first], step, setpoints)
        event_store.record_sent(
            session,
            event_id,
            ven_id=ven_id,
            device_id=device,
            signal_name="LOAD_DISPATCH",
            intervals=[
                {
                    "start": (stamps[first] + k * step).isoformat(),
                    "minutes": seconds / 60,
                    "value": v,
                }
                for k, v in enumerate(setpoints)
            ],
        )
        sent.append(event_id)
    return sent
