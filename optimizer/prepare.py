"""From a :class:`~optimizer.problem.Problem` to arrays over the horizon's intervals.

Every formulation (the Pyomo model, later array and aggregated paths) reads these
arrays, so each device's window, limits and baseline are worked out once.

Baselines are what each device would draw without a plan [kW]: a battery idles, an
EV charges at full power from arrival until its energy is in, a shiftable load runs
from its baseline start, a curtailable load follows its forecast, a heat pump holds
its starting temperature (clamped to its band), PV produces its forecast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optimizer.devices import (
    ElectricVehicle,
    Feeder,
    HeatPump,
)
from optimizer.problem import CapacityRequest, Horizon, Prices, Problem, series


@dataclass(frozen=True)
class VehicleWindow:
    """The whole intervals ``[first, last)`` an EV is plugged in, and what it needs by then."""

    first: int
    last: int
    energy_kwh: float
    arrival_energy_kwh: float


@dataclass(frozen=True)
class RequestScope:
    """A request's sites and intervals, and its ceiling per interval (caps only) [kW]."""

    request: CapacityRequest
    sites: tuple[int, ...]
    intervals: tuple[int, ...]
    cap_kw: np.ndarray | None = None


@dataclass
class Prepared:
    """Arrays of a problem. Device lists keep the fleet's order; ``site_of`` maps each
    device (by its id) to the position of its site."""

    problem: Problem
    horizon: Horizon
    step_h: float
    site_ids: list[str]
    site_feeder: list[str]
    site_base_kw: np.ndarray  # (sites, T)
    site_import_max_kw: list[float | None]
    site_export_max_kw: list[float | None]
    feeder_ids: list[str]
    feeder_import_max_kw: dict[str, float | None]
    feeder_export_max_kw: dict[str, float | None]
    feeder_region: dict[str, str | None]
    feeders: dict[str, Feeder]
    import_price: np.ndarray | None
    export_price: np.ndarray | None
    demand_charge_per_kw: float
    site_of: dict[str, int]
    baseline_kw: dict[str, np.ndarray]
    vehicle_windows: list[VehicleWindow]
    shiftable_starts: list[range]
    curtail_max_kw: list[np.ndarray]
    curtail_baseline_kw: list[np.ndarray]
    curtail_rebound_max_kw: list[np.ndarray]
    heat_pump_outdoor_c: list[np.ndarray]
    pv_forecast_kw: list[np.ndarray]
    scopes: list[RequestScope] = field(default_factory=list)
    #: Figures derived from these arrays, worked out once (never copied by ``replace``).
    cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)


def vehicle_window(vehicle: ElectricVehicle, horizon: Horizon) -> VehicleWindow:
    """Whole plugged intervals inside the horizon, with the requirement prorated when
    the EV leaves after the horizon ends."""
    first = max(0, math.ceil(horizon.position(vehicle.arrival) - 1e-9))
    last_total = math.floor(horizon.position(vehicle.departure) + 1e-9)
    last = min(horizon.intervals, last_total)
    first_total = math.ceil(horizon.position(vehicle.arrival) - 1e-9)
    energy = vehicle.energy_required_kwh
    if last_total > horizon.intervals and last_total > first_total:
        energy *= max(0, last - first) / (last_total - max(first_total, 0) or 1)
    arrival_energy = max(0.0, (vehicle.e_max_kwh or energy) - energy)
    return VehicleWindow(first, max(first, last), energy, arrival_energy)


def _export_price(prices: Prices | None, horizon: Horizon) -> np.ndarray | None:
    """Export prices, never above the import price of the same interval.

    A meter is billed on its net power, so paying more for exports than imports makes
    the cost of net power concave: a linear program would import and export at once to
    earn the spread. Such intervals are planned with the export price lowered to the
    import price (exports earn what an avoided import saves), and the plan says so.
    """
    if prices is None:
        return None
    imports = series(prices.import_price_per_kwh, horizon)
    if prices.export_price_per_kwh is None:
        return imports
    return np.minimum(series(prices.export_price_per_kwh, horizon), imports)


def prepare(problem: Problem) -> Prepared:
    """Work out every array the formulations need (the problem must be valid)."""
    horizon = problem.horizon
    steps = horizon.intervals
    dt = horizon.step_h
    fleet = problem.fleet
    site_ids = [s.site_id for s in fleet.sites]
    position = {site_id: i for i, site_id in enumerate(site_ids)}
    feeders = {f.feeder_id: f for f in fleet.feeders}
    feeder_ids = sorted({s.feeder for s in fleet.sites})
    prices = problem.prices
    data = Prepared(
        problem=problem,
        horizon=horizon,
        step_h=dt,
        site_ids=site_ids,
        site_feeder=[s.feeder for s in fleet.sites],
        site_base_kw=np.array([series(s.base_load_kw, horizon) for s in fleet.sites]).reshape(
            len(site_ids), steps
        ),
        site_import_max_kw=[s.import_max_kw for s in fleet.sites],
        site_export_max_kw=[s.export_max_kw for s in fleet.sites],
        feeder_ids=feeder_ids,
        feeder_import_max_kw={
            f: feeders[f].import_max_kw if f in feeders else None for f in feeder_ids
        },
        feeder_export_max_kw={
            f: feeders[f].export_max_kw if f in feeders else None for f in feeder_ids
        },
        feeder_region={f: feeders[f].region if f in feeders else None for f in feeder_ids},
        feeders=feeders,
        import_price=series(prices.import_price_per_kwh, horizon) if prices else None,
        export_price=_export_price(prices, horizon),
        demand_charge_per_kw=prices.demand_charge_per_kw if prices else 0.0,
        site_of={d.device_id: position[d.site_id] for d in fleet.devices()},
        baseline_kw={},
        vehicle_windows=[vehicle_window(v, horizon) for v in fleet.vehicles],
        shiftable_starts=[],
        curtail_max_kw=[],
        curtail_baseline_kw=[],
        curtail_rebound_max_kw=[],
        heat_pump_outdoor_c=[series(h.outdoor_temp_c, horizon) for h in fleet.heat_pumps],
        pv_forecast_kw=[series(p.forecast_kw, horizon) for p in fleet.pv_systems],
    )
    for battery in fleet.batteries:
        data.baseline_kw[battery.device_id] = np.zeros(steps)
    for vehicle, window in zip(fleet.vehicles, data.vehicle_windows, strict=True):
        data.baseline_kw[vehicle.device_id] = _vehicle_baseline(vehicle, window, steps, dt)
    for load in fleet.shiftable_loads:
        first = round(horizon.position(load.earliest_start))
        latest = round(horizon.position(load.latest_start))
        data.shiftable_starts.append(range(first, latest + 1))
        start = load.baseline_start if load.baseline_start is not None else load.earliest_start
        begin = min(max(round(horizon.position(start)), first), latest)
        baseline = np.zeros(steps)
        baseline[begin : begin + len(load.profile_kw)] = load.profile_kw
        data.baseline_kw[load.device_id] = baseline
    for curtailable in fleet.curtailable_loads:
        baseline = series(curtailable.baseline_kw, horizon)
        data.curtail_baseline_kw.append(baseline)
        data.curtail_max_kw.append(np.clip(baseline, 0, None) * curtailable.max_curtail_frac)
        ceiling = (
            curtailable.p_max_kw
            if curtailable.p_max_kw is not None
            else 1.5 * float(baseline.max(initial=0))
        )
        data.curtail_rebound_max_kw.append(np.clip(ceiling - baseline, 0, None))
        data.baseline_kw[curtailable.device_id] = baseline
    for pump, outdoor in zip(fleet.heat_pumps, data.heat_pump_outdoor_c, strict=True):
        data.baseline_kw[pump.device_id] = heat_pump_baseline(pump, outdoor)
    for pv, forecast in zip(fleet.pv_systems, data.pv_forecast_kw, strict=True):
        data.baseline_kw[pv.device_id] = -forecast
    sites_of: dict[str, list[int]] = {}
    for i, feeder in enumerate(data.site_feeder):
        sites_of.setdefault(feeder, []).append(i)
    data.scopes = [_scope(r, data, sites_of) for r in problem.requests]
    return data


def _vehicle_baseline(
    vehicle: ElectricVehicle, window: VehicleWindow, steps: int, dt: float
) -> np.ndarray:
    """Uncontrolled charging: full power from arrival until the energy is in."""
    baseline = np.zeros(steps)
    remaining = window.energy_kwh / vehicle.charge_efficiency
    for t in range(window.first, window.last):
        if remaining <= 0:
            break
        p = min(vehicle.p_max_kw, remaining / dt)
        baseline[t] = p
        remaining -= p * dt
    return baseline


def heat_pump_baseline(pump: HeatPump, outdoor_c: np.ndarray) -> np.ndarray:
    """Power that holds the starting temperature (clamped to the band), within the rating."""
    setpoint = min(max(pump.temp_initial_c, pump.temp_min_c), pump.temp_max_c)
    need = pump.heat_loss_kw_per_c * (setpoint - outdoor_c) / pump.cop
    return np.clip(need, 0.0, pump.p_max_kw)


def _scope(
    request: CapacityRequest, data: Prepared, sites_of: dict[str, list[int]]
) -> RequestScope:
    if request.feeder is not None:
        feeders = [request.feeder]
    else:
        feeders = [f for f, region in data.feeder_region.items() if region == request.region]
    sites = tuple(sorted(s for f in feeders for s in sites_of.get(f, [])))
    first = max(0, math.floor(data.horizon.position(request.start) + 1e-9))
    last = min(data.horizon.intervals, math.ceil(data.horizon.position(request.end) - 1e-9))
    cap = None
    if request.cap_kw is not None:
        cap = np.broadcast_to(np.asarray(request.cap_kw, dtype=float), (last - first,)).copy()
    return RequestScope(request, sites, tuple(range(first, last)), cap)
