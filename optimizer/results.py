"""Plans: the schedule of every device, what each request gets, what it costs, and why
a request falls short."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from optimizer import highs
from optimizer.arrays import build_arrays, solve_arrays
from optimizer.decompose import MapFunction, plan_decomposed
from optimizer.model import build_model
from optimizer.prepare import Prepared
from optimizer.problem import Problem
from optimizer.solution import Solution

#: Below this a power, energy or shortfall counts as zero [kW or kWh].
TOLERANCE = 1e-6

Method = Literal["arrays", "pyomo", "decomposed"]


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
    step_h: float = 0.25

    @property
    def shortfall_kwh(self) -> float:
        return float(self.shortfall_kw.sum() * self.step_h)


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
    notes : list of str
        What a planner should know (for example simultaneous charge and discharge in
        the LP relaxation).
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
    method: Method = "arrays",
    time_limit_s: float | None = None,
    mip_gap: float | None = None,
    threads: int | None = None,
    chunk_devices: int = 12,
    map_function: MapFunction | None = None,
) -> Plan:
    """Build, solve and read back the plan of ``problem``.

    Requests and EV energy are soft, so an unattainable request still gets the
    best-effort plan and its explained shortfall.

    Parameters
    ----------
    method : {"arrays", "pyomo", "decomposed"}
        ``arrays`` builds the LP with numpy (fast); ``pyomo`` builds the Pyomo model of
        :mod:`optimizer.model` and hands it over through :func:`optimizer.highs.solve`;
        both give the same optimum. ``decomposed`` solves chunks of ``chunk_devices``
        devices apart and couples them by allocation (:mod:`optimizer.decompose`), for
        fleets of thousands of devices and more, in parallel through ``map_function``
        (or on ``threads`` threads); there ``time_limit_s`` bounds the correction
        rounds that follow the first pass.

    Raises
    ------
    optimizer.problem.ProblemError
        Bad input, naming the device and field.
    PlanError
        No feasible plan was found (for example a time limit hit before any).
    """
    if method == "arrays":
        built = build_arrays(problem)
        solution = solve_arrays(built, time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads)
        data = built.data
    elif method == "pyomo":
        started = time.perf_counter()
        model = build_model(problem)
        built_s = time.perf_counter() - started
        result = highs.solve(model, time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads)
        data = model.data
        timings = {
            "build_s": built_s + result.build_s,
            "handoff_s": result.handoff_s,
            "solve_s": result.solve_s,
        }
        size = {
            "variables": result.columns,
            "constraints": result.rows,
            "nonzeros": result.nonzeros,
        }
        if result.feasible:
            solution = solution_from_model(model, result, timings, size)
        else:
            solution = Solution.empty(result.status, timings, size)
    elif method == "decomposed":
        data, solution = plan_decomposed(
            problem,
            chunk_devices=chunk_devices,
            map_function=map_function,
            threads=threads,
            time_limit_s=time_limit_s,
        )
    else:
        raise ValueError(f"method must be 'arrays', 'pyomo' or 'decomposed', not {method!r}")
    if not solution.feasible:
        raise PlanError(f"no feasible plan: solver status {solution.status}")
    started = time.perf_counter()
    result_plan = plan_from_solution(data, solution)
    result_plan.timings_s["read_s"] = time.perf_counter() - started
    return result_plan


def _value(expression: Any) -> float:
    if isinstance(expression, int | float):
        return float(expression)
    return float(pyo.value(expression))


def _grid(model: pyo.ConcreteModel, variable: Any, count: int) -> np.ndarray:
    steps = len(model.T)
    return np.array([[variable[i, t].value for t in model.T] for i in range(count)]).reshape(
        count, steps
    )


def solution_from_model(
    model: pyo.ConcreteModel,
    result: highs.HighsResult,
    timings: dict[str, float],
    size: dict[str, int],
) -> Solution:
    """Read a solved Pyomo model of :mod:`optimizer.model` into a :class:`Solution`."""
    data: Prepared = model.data
    fleet = data.problem.fleet
    steps = data.horizon.intervals
    devices = fleet.devices()
    power = np.zeros((len(devices), steps))
    for i, device in enumerate(devices):
        for t, term in model.power[device.device_id].items():
            power[i, t] = _value(term)
    ev_charge = np.zeros((len(fleet.vehicles), steps))
    ev_discharge = np.zeros((len(fleet.vehicles), steps))
    for v, t in model.VT:
        ev_charge[v, t] = model.ev_charge_kw[v, t].value
    for v, t in model.VT2G:
        ev_discharge[v, t] = model.ev_discharge_kw[v, t].value
    duals = getattr(model, "dual", None)
    request_dual: list[np.ndarray | None] = []
    shortfall = []
    for r, scope in enumerate(data.scopes):
        shortfall.append(
            np.array([model.request_shortfall_kw[r, t].value for t in scope.intervals])
        )
        rows = (
            model.request_reduction_lower
            if scope.request.kw is not None
            else model.request_cap_upper
        )
        request_dual.append(
            np.array([duals[rows[r, t]] for t in scope.intervals]) if duals is not None else None
        )
    nz = len(data.site_ids)
    return Solution(
        status=result.status,
        feasible=True,
        objective=float(result.objective or 0.0),
        mip_gap=result.mip_gap,
        power_kw=power,
        battery_charge_kw=_grid(model, model.battery_charge_kw, len(fleet.batteries)),
        battery_discharge_kw=_grid(model, model.battery_discharge_kw, len(fleet.batteries)),
        battery_soc_kwh=_grid(model, model.battery_soc_kwh, len(fleet.batteries)),
        ev_charge_kw=ev_charge,
        ev_discharge_kw=ev_discharge,
        ev_unmet_kwh=np.array([model.ev_unmet_kwh[v].value for v in range(len(fleet.vehicles))]),
        curtail_kw=_grid(model, model.curtail_kw, len(fleet.curtailable_loads)),
        heat_pump_kw=_grid(model, model.heat_pump_kw, len(fleet.heat_pumps)),
        heat_pump_temp_c=_grid(model, model.heat_pump_temp_c, len(fleet.heat_pumps)),
        site_net_kw=np.array(
            [[_value(model.site_net[s, t]) for t in model.T] for s in range(nz)]
        ).reshape(nz, steps),
        site_violation_kw=_grid(model, model.site_violation_kw, nz),
        feeder_violation_kw=np.array(
            [[model.feeder_violation_kw[f, t].value for t in model.T] for f in data.feeder_ids]
        ).reshape(len(data.feeder_ids), steps),
        request_shortfall_kw=shortfall,
        request_dual=request_dual,
        costs={k: _value(model.cost[k]) for k in model.cost},
        timings_s=timings,
        size=size,
    )


def plan_from_solution(data: Prepared, solution: Solution) -> Plan:
    """Turn a solution's arrays into a :class:`Plan` with its requests explained."""
    index = data.horizon.index
    fleet = data.problem.fleet
    ids = [d.device_id for d in fleet.devices()]
    power_kw = pd.DataFrame(solution.power_kw.T, index=index, columns=ids)
    baseline_kw = pd.DataFrame(
        np.array([data.baseline_kw[d] for d in ids]).reshape(len(ids), len(index)).T,
        index=index,
        columns=ids,
    )
    site_net_kw = pd.DataFrame(solution.site_net_kw.T, index=index, columns=data.site_ids)
    feeder_net_kw = (
        site_net_kw.T.groupby(pd.Index(data.site_feeder)).sum().T.reindex(columns=data.feeder_ids)
    )
    state: dict[str, Any] = {
        "battery_soc_kwh": pd.DataFrame(
            solution.battery_soc_kwh.T, index=index, columns=[b.device_id for b in fleet.batteries]
        ),
        "heat_pump_temp_c": pd.DataFrame(
            solution.heat_pump_temp_c.T,
            index=index,
            columns=[h.device_id for h in fleet.heat_pumps],
        ),
        "ev_unmet_kwh": pd.Series(
            solution.ev_unmet_kwh, index=[v.device_id for v in fleet.vehicles], dtype=float
        ),
    }
    violations_kw = pd.DataFrame(
        np.vstack([solution.site_violation_kw, solution.feeder_violation_kw]).T,
        index=index,
        columns=[f"site {s}" for s in data.site_ids] + [f"feeder {f}" for f in data.feeder_ids],
    )
    violations_kw = violations_kw.loc[:, violations_kw.max() > TOLERANCE]
    notes = []
    both = np.minimum(solution.battery_charge_kw, solution.battery_discharge_kw) > TOLERANCE
    for b in np.flatnonzero(both.any(axis=1)):
        notes.append(
            f"battery {fleet.batteries[b].device_id} charged and discharged at once in "
            f"{int(both[b].sum())} intervals (the LP relaxation allows it; plan with "
            "integer=True to forbid it)"
        )
    both = np.minimum(solution.ev_charge_kw, solution.ev_discharge_kw) > TOLERANCE
    for v in np.flatnonzero(both.any(axis=1)):
        notes.append(
            f"EV {fleet.vehicles[v].device_id} charged and discharged at once in "
            f"{int(both[v].sum())} intervals (the LP relaxation allows it; plan with "
            "integer=True to forbid it)"
        )
    prices = data.problem.prices
    if (
        prices is not None
        and prices.export_price_per_kwh is not None
        and data.export_price is not None
    ):
        asked = np.broadcast_to(
            np.asarray(prices.export_price_per_kwh, dtype=float), data.export_price.shape
        )
        lowered = int(np.sum(asked > data.export_price + 1e-12))
        if lowered:
            notes.append(
                f"export price above the import price in {lowered} intervals: exports there "
                "were planned at the import price (a meter is billed on net power)"
            )
    requests = [
        _request_outcome(data, solution, r, power_kw, baseline_kw) for r in range(len(data.scopes))
    ]
    return Plan(
        status=solution.status,
        objective=solution.objective,
        mip_gap=solution.mip_gap,
        costs=solution.costs,
        power_kw=power_kw,
        baseline_kw=baseline_kw,
        site_net_kw=site_net_kw,
        feeder_net_kw=feeder_net_kw,
        requests=requests,
        state=state,
        violations_kw=violations_kw,
        notes=notes,
        timings_s=dict(solution.timings_s),
        size=dict(solution.size),
    )


def _request_outcome(
    data: Prepared,
    solution: Solution,
    r: int,
    power_kw: pd.DataFrame,
    baseline_kw: pd.DataFrame,
) -> RequestOutcome:
    scope = data.scopes[r]
    request = scope.request
    intervals = list(scope.intervals)
    index = data.horizon.index[intervals]
    sites = {data.site_ids[s] for s in scope.sites}
    devices = [d for d in data.problem.fleet.devices() if d.site_id in sites]
    ids = [d.device_id for d in devices]
    factors = np.array([d.delivery_factor for d in devices])
    change = (power_kw.loc[index, ids] - baseline_kw.loc[index, ids]).to_numpy() * factors
    expected_reduction = -change.sum(axis=1) if ids else np.zeros(len(index))
    shortfall = solution.request_shortfall_kw[r]
    dual = solution.request_dual[r]
    requested: Any
    if request.kw is not None:
        kind, requested, expected, sign = "reduction", request.kw, expected_reduction, 1.0
    else:
        kind, requested, sign = "cap", scope.cap_kw, -1.0
        baseline_net = data.site_base_kw[list(scope.sites)][:, intervals].sum(axis=0)
        baseline_net = baseline_net + baseline_kw.loc[index, ids].to_numpy().sum(axis=1)
        expected = baseline_net - expected_reduction
    marginal = sign * dual if dual is not None else np.full(len(index), np.nan)
    called = [ids[i] for i in np.flatnonzero(np.abs(change).max(axis=0) > TOLERANCE)] if ids else []
    reasons = {
        index[i]: shortfall_reasons(data, solution, ids, t)
        for i, t in enumerate(intervals)
        if shortfall[i] > TOLERANCE
    }
    return RequestOutcome(
        request_id=request.request_id,
        kind=kind,
        requested_kw=pd.Series(
            np.broadcast_to(np.asarray(requested, dtype=float), (len(index),)), index=index
        ),
        expected_kw=pd.Series(expected, index=index),
        shortfall_kw=pd.Series(np.where(shortfall > TOLERANCE, shortfall, 0.0), index=index),
        marginal_cost_per_kw=pd.Series(marginal, index=index),
        reasons=reasons,
        devices_called=called,
        step_h=data.step_h,
    )


def shortfall_reasons(
    data: Prepared, solution: Solution, device_ids: list[str], t: int
) -> list[str]:
    """Why the devices in scope could not reduce more in interval ``t``, most common first."""
    if not device_ids:
        return ["no controllable devices in the request's scope"]
    fleet = data.problem.fleet
    batteries = {d.device_id: i for i, d in enumerate(fleet.batteries)}
    vehicles = {d.device_id: i for i, d in enumerate(fleet.vehicles)}
    curtailable = {d.device_id: i for i, d in enumerate(fleet.curtailable_loads)}
    pumps = {d.device_id: i for i, d in enumerate(fleet.heat_pumps)}
    kinds = {d.device_id: type(d).__name__ for d in fleet.devices()}
    counts: Counter[str] = Counter()
    for key in device_ids:
        if key in batteries:
            b = batteries[key]
            battery = fleet.batteries[b]
            lowest = solution.battery_soc_kwh[b, t:].min()
            if solution.battery_discharge_kw[b, t] >= battery.p_discharge_max_kw - TOLERANCE:
                counts["battery discharging at its power limit"] += 1
            elif lowest <= battery.soc_min_frac * battery.e_max_kwh + TOLERANCE:
                counts["battery energy used up (state of charge reaches its minimum)"] += 1
            elif solution.battery_charge_kw[b, t] > TOLERANCE:
                counts["battery must charge to reach its state-of-charge target"] += 1
            else:
                counts["battery energy saved for other intervals"] += 1
        elif key in vehicles:
            v = vehicles[key]
            window = data.vehicle_windows[v]
            if not window.first <= t < window.last:
                counts["EV not plugged in"] += 1
            elif solution.ev_charge_kw[v, t] > TOLERANCE:
                counts["EV must charge to meet its departure energy"] += 1
            else:
                counts["EV charging already stopped"] += 1
        elif key in curtailable:
            c = curtailable[key]
            if solution.curtail_kw[c, t] >= data.curtail_max_kw[c][t] - TOLERANCE:
                counts["load shed to its maximum share"] += 1
            else:
                counts["load held by its event-duration or rebound limit"] += 1
        elif key in pumps:
            if solution.heat_pump_kw[pumps[key], t] <= TOLERANCE:
                counts["heat pump already off"] += 1
            else:
                counts["heat pump needed to keep the comfort band"] += 1
        else:
            counts[f"{kinds[key]} has no more room to move"] += 1
    return [f"{reason}: {n} device{'s' if n > 1 else ''}" for reason, n in counts.most_common()]
