"""Plans: the schedule of every device, what each request gets, what it costs, and why
a request falls short."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from optimizer import highs
from optimizer.model import build_model
from optimizer.prepare import Prepared
from optimizer.problem import Problem

#: Below this a power, energy or shortfall counts as zero [kW or kWh].
TOLERANCE = 1e-6


@dataclass(frozen=True)
class RequestOutcome:
    """What one capacity request gets, per interval of its window.

    ``requested_kw`` is the reduction asked for (or, for a cap, the ceiling);
    ``expected_kw`` the expected reduction (or the expected net load under a cap);
    ``shortfall_kw`` what is missing; ``marginal_cost_per_kw`` the cost of one more kW
    in each interval (from the LP duals; NaN for a MILP); ``reasons`` the binding
    limits behind each interval that falls short.
    """

    request_id: str
    kind: str
    requested_kw: pd.Series
    expected_kw: pd.Series
    shortfall_kw: pd.Series
    marginal_cost_per_kw: pd.Series
    reasons: dict[pd.Timestamp, list[str]]
    devices_called: list[str]

    @property
    def shortfall_kwh(self) -> float:
        step = (
            (self.shortfall_kw.index[1] - self.shortfall_kw.index[0])
            if len(self.shortfall_kw) > 1
            else None
        )
        hours = step.total_seconds() / 3600 if step is not None else 0.25
        return float(self.shortfall_kw.sum() * hours)


@dataclass(frozen=True)
class Plan:
    """A solved plan.

    Attributes
    ----------
    status : str
        ``optimal``, or ``time_limit`` for the best plan found within the time limit.
    objective : float
        Total cost [currency]; ``costs`` splits it by term.
    mip_gap : float or None
        Relative gap of a MILP stopped early (0 for a proven optimum).
    power_kw, baseline_kw : DataFrame
        Planned and baseline grid power per device (columns) and interval (rows) [kW].
    site_net_kw, feeder_net_kw : DataFrame
        Net power per site and feeder [kW].
    state : dict
        ``battery_soc_kwh`` and ``heat_pump_temp_c`` (DataFrames like ``power_kw``) and
        ``ev_unmet_kwh`` (a Series by device id).
    violations_kw : DataFrame
        Site and feeder limit violations the plan could not avoid (empty when none).
    """

    status: str
    objective: float
    mip_gap: float | None
    costs: dict[str, float]
    power_kw: pd.DataFrame
    baseline_kw: pd.DataFrame
    site_net_kw: pd.DataFrame
    feeder_net_kw: pd.DataFrame
    requests: list[RequestOutcome]
    state: dict[str, Any]
    violations_kw: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    size: dict[str, int] = field(default_factory=dict)


class PlanError(RuntimeError):
    """The solver returned no usable plan (with its status)."""


def plan(
    problem: Problem,
    *,
    time_limit_s: float | None = None,
    mip_gap: float | None = None,
    threads: int | None = None,
) -> Plan:
    """Build, solve and read back the plan of ``problem``.

    Requests and EV energy are soft, so an unattainable request still gets the
    best-effort plan and its explained shortfall.

    Raises
    ------
    optimizer.problem.ProblemError
        Bad input, naming the device and field.
    PlanError
        No feasible plan was found (for example a time limit hit before any).
    """
    started = time.perf_counter()
    model = build_model(problem)
    built = time.perf_counter() - started
    result = highs.solve(model, time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads)
    if not result.feasible:
        raise PlanError(f"no feasible plan: solver status {result.status}")
    read_started = time.perf_counter()
    outcome = read_plan(model, result.status, result.objective or 0.0, result.mip_gap)
    timings = {
        "build_s": built,
        "compile_s": result.build_s,
        "handoff_s": result.handoff_s,
        "solve_s": result.solve_s,
        "read_s": time.perf_counter() - read_started,
    }
    size = {"variables": result.columns, "constraints": result.rows, "nonzeros": result.nonzeros}
    return replace(outcome, timings_s=timings, size=size)


def _value(expression: Any) -> float:
    return (
        float(pyo.value(expression))
        if not isinstance(expression, int | float)
        else float(expression)
    )


def read_plan(model: pyo.ConcreteModel, status: str, objective: float, gap: float | None) -> Plan:
    """Read the solved values of ``model`` into a :class:`Plan`."""
    data: Prepared = model.data
    index = data.horizon.index
    fleet = data.problem.fleet
    power = {}
    for device in fleet.devices():
        row = np.zeros(len(index))
        for t, term in model.power[device.device_id].items():
            row[t] = _value(term)
        power[device.device_id] = row
    power_kw = pd.DataFrame(power, index=index)
    baseline_kw = pd.DataFrame(data.baseline_kw, index=index)[power_kw.columns]
    site_net = np.array([[_value(model.site_net[s, t]) for t in model.T] for s in model.Z]).reshape(
        len(data.site_ids), len(index)
    )
    site_net_kw = pd.DataFrame(site_net.T, index=index, columns=data.site_ids)
    feeder_net_kw = (
        site_net_kw.T.groupby(pd.Index(data.site_feeder)).sum().T.reindex(columns=data.feeder_ids)
    )
    state: dict[str, Any] = {
        "battery_soc_kwh": pd.DataFrame(
            {
                b.device_id: [model.battery_soc_kwh[i, t].value for t in model.T]
                for i, b in enumerate(fleet.batteries)
            },
            index=index,
        ),
        "heat_pump_temp_c": pd.DataFrame(
            {
                h.device_id: [model.heat_pump_temp_c[i, t].value for t in model.T]
                for i, h in enumerate(fleet.heat_pumps)
            },
            index=index,
        ),
        "ev_unmet_kwh": pd.Series(
            {v.device_id: model.ev_unmet_kwh[i].value for i, v in enumerate(fleet.vehicles)},
            dtype=float,
        ),
    }
    violations = {
        **{
            f"site {data.site_ids[s]}": [model.site_violation_kw[s, t].value for t in model.T]
            for s in model.Z
        },
        **{
            f"feeder {f}": [model.feeder_violation_kw[f, t].value for t in model.T] for f in model.F
        },
    }
    violations_kw = pd.DataFrame(violations, index=index)
    violations_kw = violations_kw.loc[:, violations_kw.max() > TOLERANCE]
    costs = {k: _value(model.cost[k]) for k in model.cost}
    notes = []
    for b, battery in enumerate(fleet.batteries):
        both = sum(
            min(model.battery_charge_kw[b, t].value, model.battery_discharge_kw[b, t].value)
            > TOLERANCE
            for t in model.T
        )
        if both:
            notes.append(
                f"battery {battery.device_id} charged and discharged at once in {both} "
                "intervals (the LP relaxation found it profitable; plan with integer=True)"
            )
    requests = [
        _request_outcome(model, data, r, power_kw, baseline_kw) for r in range(len(data.scopes))
    ]
    return Plan(
        status=status,
        objective=objective,
        mip_gap=gap,
        costs=costs,
        power_kw=power_kw,
        baseline_kw=baseline_kw,
        site_net_kw=site_net_kw,
        feeder_net_kw=feeder_net_kw,
        requests=requests,
        state=state,
        violations_kw=violations_kw,
        notes=notes,
    )


def _request_outcome(
    model: pyo.ConcreteModel,
    data: Prepared,
    r: int,
    power_kw: pd.DataFrame,
    baseline_kw: pd.DataFrame,
) -> RequestOutcome:
    scope = data.scopes[r]
    request = scope.request
    index = data.horizon.index[list(scope.intervals)]
    sites = {data.site_ids[s] for s in scope.sites}
    devices = [d for d in data.problem.fleet.devices() if d.site_id in sites]
    ids = [d.device_id for d in devices]
    factors = np.array([d.delivery_factor for d in devices])
    change = (power_kw.loc[index, ids] - baseline_kw.loc[index, ids]).to_numpy() * factors
    expected_reduction = -change.sum(axis=1) if ids else np.zeros(len(index))
    shortfall = np.array([model.request_shortfall_kw[r, t].value for t in scope.intervals])
    duals = getattr(model, "dual", None)
    if request.kw is not None:
        kind = "reduction"
        requested = np.full(len(index), request.kw)
        expected = expected_reduction
        constraint = model.request_reduction_lower
        sign = 1.0
    else:
        kind = "cap"
        requested = np.full(len(index), request.cap_kw)
        baseline_net = np.array(
            [data.site_base_kw[list(scope.sites), t].sum() for t in scope.intervals]
        ) + baseline_kw.loc[index, ids].to_numpy().sum(axis=1)
        expected = baseline_net - expected_reduction
        constraint = model.request_cap_upper
        sign = -1.0
    marginal = np.array(
        [
            sign * duals[constraint[r, t]]
            if duals is not None and constraint[r, t] in duals
            else np.nan
            for t in scope.intervals
        ]
    )
    called = [ids[i] for i in np.flatnonzero(np.abs(change).max(axis=0) > TOLERANCE)] if ids else []
    reasons = {
        index[i]: shortfall_reasons(model, data, devices, t)
        for i, t in enumerate(scope.intervals)
        if shortfall[i] > TOLERANCE
    }
    return RequestOutcome(
        request_id=request.request_id,
        kind=kind,
        requested_kw=pd.Series(requested, index=index),
        expected_kw=pd.Series(expected, index=index),
        shortfall_kw=pd.Series(np.where(shortfall > TOLERANCE, shortfall, 0.0), index=index),
        marginal_cost_per_kw=pd.Series(marginal, index=index),
        reasons=reasons,
        devices_called=called,
    )


def shortfall_reasons(
    model: pyo.ConcreteModel, data: Prepared, devices: list[Any], t: int
) -> list[str]:
    """Why the devices in scope could not reduce more in interval ``t``, most common first."""
    if not devices:
        return ["no controllable devices in the request's scope"]
    fleet = data.problem.fleet
    position = {d.device_id: i for i, d in enumerate(fleet.batteries)}
    vehicles = {d.device_id: i for i, d in enumerate(fleet.vehicles)}
    curtailable = {d.device_id: i for i, d in enumerate(fleet.curtailable_loads)}
    pumps = {d.device_id: i for i, d in enumerate(fleet.heat_pumps)}
    counts: Counter[str] = Counter()
    for device in devices:
        key = device.device_id
        if key in position:
            b = position[key]
            battery = fleet.batteries[b]
            lowest = min(model.battery_soc_kwh[b, u].value for u in range(t, len(model.T)))
            if model.battery_discharge_kw[b, t].value >= battery.p_discharge_max_kw - TOLERANCE:
                counts["battery discharging at its power limit"] += 1
            elif lowest <= battery.soc_min_frac * battery.e_max_kwh + TOLERANCE:
                counts["battery energy used up (state of charge reaches its minimum)"] += 1
            elif model.battery_charge_kw[b, t].value > TOLERANCE:
                counts["battery must charge to reach its state-of-charge target"] += 1
            else:
                counts["battery energy saved for other intervals"] += 1
        elif key in vehicles:
            v = vehicles[key]
            window = data.vehicle_windows[v]
            if not window.first <= t < window.last:
                counts["EV not plugged in"] += 1
            elif model.ev_charge_kw[v, t].value > TOLERANCE:
                counts["EV must charge to meet its departure energy"] += 1
            else:
                counts["EV charging already stopped"] += 1
        elif key in curtailable:
            c = curtailable[key]
            if model.curtail_kw[c, t].value >= data.curtail_max_kw[c][t] - TOLERANCE:
                counts["load shed to its maximum share"] += 1
            else:
                counts["load held by its event-duration or rebound limit"] += 1
        elif key in pumps:
            h = pumps[key]
            if model.heat_pump_kw[h, t].value <= TOLERANCE:
                counts["heat pump already off"] += 1
            else:
                counts["heat pump needed to keep the comfort band"] += 1
        else:
            counts[f"{type(device).__name__} has no more room to move"] += 1
    return [f"{reason}: {n} device{'s' if n > 1 else ''}" for reason, n in counts.most_common()]
