"""Property tests of the optimizer on random small fleets (Hypothesis).

Every example is a whole problem: a horizon of 4-12 intervals (15 min or 1 h), one or
two feeders, one to three sites with random limits (``None`` included), one to six
devices of every kind and up to two capacity requests. Each plan is checked against the
physics recomputed from its schedule (:func:`optimizer.checks.residuals`) and against
invariants that need no optimum to be known: the objective is the sum of its terms, the
terms agree with the meters' power, expected delivery stays within what the devices can
physically do, no plan costs more than doing nothing, and a request that a known plan
meets has no shortfall while any shortfall is explained.

The runs are deterministic (``derandomize=True``, no example database), so CI sees the
same examples every time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from optimizer.checks import residuals
from optimizer.devices import (
    Battery,
    CurtailableLoad,
    Device,
    ElectricVehicle,
    Feeder,
    Fleet,
    HeatPump,
    PhotovoltaicSystem,
    ShiftableLoad,
    Site,
)
from optimizer.prepare import vehicle_window
from optimizer.problem import (
    CapacityRequest,
    Horizon,
    Prices,
    Problem,
    ProblemError,
    series,
    validate,
)
from optimizer.results import Plan, plan
from tests.optimizer.fleets import START, at, battery, hours, one_site

#: Absolute tolerance on powers [kW] and money; HiGHS solves to about 1e-7.
TOL = 1e-6

FEW = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MANY = settings(FEW, max_examples=200)

KINDS = ("battery", "ev", "shiftable", "curtailable", "heat_pump", "pv")


# --- strategies -------------------------------------------------------------------------


def grid(low: float, high: float, step: float = 0.1) -> st.SearchStrategy[float]:
    """Floats from ``low`` to ``high`` on a grid of ``step``: well-conditioned LPs and
    readable shrunk examples."""
    return st.integers(round(low / step), round(high / step)).map(lambda k: round(k * step, 6))


def per_interval(
    n: int, low: float, high: float, step: float = 0.1
) -> st.SearchStrategy[list[float]]:
    return st.lists(grid(low, high, step), min_size=n, max_size=n)


@st.composite
def horizons(draw: st.DrawFn) -> Horizon:
    step = draw(st.sampled_from([timedelta(minutes=15), timedelta(hours=1)]))
    return Horizon(START, draw(st.integers(4, 12)), step)


def at_interval(horizon: Horizon, k: float) -> pd.Timestamp:
    return horizon.start + k * pd.Timedelta(horizon.resolution)


@st.composite
def batteries(draw: st.DrawFn, device_id: str, site_id: str, horizon: Horizon) -> Battery:
    """A battery whose state-of-charge bounds hold its initial state and whose final
    target, if any, can be reached at full charging power."""
    e_max = draw(grid(1, 20, 0.5))
    p_charge = draw(grid(0, 10, 0.5))
    eta_charge = draw(grid(0.8, 1, 0.05))
    soc_min = draw(grid(0, 0.4, 0.05))
    soc_max = draw(grid(soc_min, 1, 0.05))
    initial = draw(grid(soc_min, soc_max, 0.05))
    # The highest state of charge full charging power reaches by the end (1% margin).
    charged = 0.99 * p_charge * eta_charge * horizon.step_h * horizon.intervals / e_max
    reach = min(soc_max, initial + charged)
    final = draw(st.none() | st.floats(soc_min, max(soc_min, reach)))
    return Battery(
        device_id,
        site_id,
        p_charge_max_kw=p_charge,
        p_discharge_max_kw=draw(grid(0, 10, 0.5)),
        e_max_kwh=e_max,
        soc_min_frac=soc_min,
        soc_max_frac=soc_max,
        soc_initial_frac=initial,
        soc_final_min_frac=final,
        charge_efficiency=eta_charge,
        discharge_efficiency=draw(grid(0.8, 1, 0.05)),
        degradation_cost_per_kwh=draw(grid(0, 0.05, 0.01)),
        delivery_factor=draw(grid(0.5, 1, 0.1)),
    )


@st.composite
def vehicles(draw: st.DrawFn, device_id: str, site_id: str, horizon: Horizon) -> ElectricVehicle:
    """An EV plugged in from a random 5-minute mark, inside the horizon or across either
    end; with V2G it states its battery size, which holds the energy it needs."""
    span_min = horizon.intervals * horizon.step_h * 60
    arrival = horizon.start + pd.Timedelta(minutes=5 * draw(st.integers(-24, int(span_min) // 5)))
    departure = arrival + pd.Timedelta(minutes=5 * draw(st.integers(1, 144)))
    energy = draw(grid(0, 40, 0.5))
    v2g = draw(st.sampled_from([0.0, 0.0, 3.7, 7.4, 11.0]))
    e_max = draw(grid(max(energy, 10), 80, 5)) if v2g else None
    return ElectricVehicle(
        device_id,
        site_id,
        arrival=arrival,
        departure=departure,
        p_max_kw=draw(st.sampled_from([1.4, 3.7, 7.4, 11.0])),
        energy_required_kwh=energy,
        charge_efficiency=draw(grid(0.85, 1, 0.05)),
        v2g_p_max_kw=v2g,
        e_max_kwh=e_max,
        unmet_energy_cost_per_kwh=draw(grid(0, 2, 0.25)),
        delivery_factor=draw(grid(0.5, 1, 0.1)),
    )


@st.composite
def shiftable_loads(
    draw: st.DrawFn, device_id: str, site_id: str, horizon: Horizon
) -> ShiftableLoad:
    profile = tuple(draw(st.lists(grid(0, 5, 0.5), min_size=1, max_size=4)))
    last = horizon.intervals - len(profile)
    earliest = draw(st.integers(0, last))
    latest = draw(st.integers(earliest, last))
    baseline = draw(st.none() | st.integers(earliest, latest))
    return ShiftableLoad(
        device_id,
        site_id,
        profile_kw=profile,
        earliest_start=at_interval(horizon, earliest),
        latest_start=at_interval(horizon, latest),
        contiguous=draw(st.booleans()),
        baseline_start=None if baseline is None else at_interval(horizon, baseline),
        delivery_factor=draw(grid(0.5, 1, 0.1)),
    )


@st.composite
def curtailable_loads(
    draw: st.DrawFn, device_id: str, site_id: str, horizon: Horizon
) -> CurtailableLoad:
    return CurtailableLoad(
        device_id,
        site_id,
        baseline_kw=draw(per_interval(horizon.intervals, 0, 5)),
        max_curtail_frac=draw(grid(0, 1, 0.1)),
        max_event_h=draw(st.sampled_from([0.25, 0.5, 1.0, 2.0, 3.0])),
        comfort_cost_per_kwh=draw(grid(0, 0.5, 0.05)),
        rebound_frac=draw(grid(0, 1, 0.25)),
        p_max_kw=draw(st.none() | grid(0, 8, 0.5)),
        delivery_factor=draw(grid(0.5, 1, 0.1)),
    )


@st.composite
def heat_pumps(draw: st.DrawFn, device_id: str, site_id: str, horizon: Horizon) -> HeatPump:
    temp_min = draw(grid(18, 20, 0.5))
    return HeatPump(
        device_id,
        site_id,
        p_max_kw=draw(grid(0.5, 5, 0.5)),
        cop=draw(grid(1.5, 5, 0.5)),
        thermal_capacity_kwh_per_c=draw(grid(1, 20, 1)),
        heat_loss_kw_per_c=draw(grid(0, 0.5, 0.05)),
        outdoor_temp_c=draw(per_interval(horizon.intervals, -10, 15, 1)),
        temp_initial_c=draw(grid(15, 25, 0.5)),
        temp_min_c=temp_min,
        temp_max_c=draw(grid(temp_min, temp_min + 4, 0.5)),
        comfort_cost_per_ch=draw(grid(0, 5, 0.5)),
        delivery_factor=draw(grid(0.5, 1, 0.1)),
    )


@st.composite
def pv_systems(
    draw: st.DrawFn, device_id: str, site_id: str, horizon: Horizon
) -> PhotovoltaicSystem:
    return PhotovoltaicSystem(
        device_id,
        site_id,
        forecast_kw=draw(per_interval(horizon.intervals, 0, 8, 0.5)),
        curtailable=draw(st.booleans()),
        delivery_factor=draw(grid(0.5, 1, 0.1)),
    )


DeviceStrategy = Callable[[str, str, Horizon], st.SearchStrategy[Device]]
BUILDERS: dict[str, DeviceStrategy] = {
    "battery": batteries,
    "ev": vehicles,
    "shiftable": shiftable_loads,
    "curtailable": curtailable_loads,
    "heat_pump": heat_pumps,
    "pv": pv_systems,
}


def limit(high: float) -> st.SearchStrategy[float | None]:
    return st.none() | grid(0, high, 0.5)


@st.composite
def fleets(
    draw: st.DrawFn,
    horizon: Horizon,
    kinds: tuple[str, ...] = KINDS,
    feeder_prefix: str = "F",
    site_prefix: str = "s",
    device_prefix: str = "d",
    max_devices: int = 6,
) -> Fleet:
    """1-6 devices of ``kinds`` on 1-3 sites over 1-2 feeders, limits drawn or ``None``."""
    feeders = tuple(
        Feeder(
            f"{feeder_prefix}{i}",
            region=draw(st.sampled_from(["North", "South"])),
            import_max_kw=draw(limit(40)),
            export_max_kw=draw(limit(40)),
        )
        for i in range(draw(st.integers(1, 2)))
    )
    sites = tuple(
        Site(
            f"{site_prefix}{i}",
            feeder=draw(st.sampled_from([f.feeder_id for f in feeders])),
            import_max_kw=draw(limit(20)),
            export_max_kw=draw(limit(20)),
            base_load_kw=draw(st.none() | per_interval(horizon.intervals, 0, 5)),
        )
        for i in range(draw(st.integers(1, 3)))
    )
    chosen = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=max_devices))
    devices: dict[str, list[Device]] = {kind: [] for kind in KINDS}
    for i, kind in enumerate(chosen):
        site = draw(st.sampled_from([s.site_id for s in sites]))
        devices[kind].append(draw(BUILDERS[kind](f"{device_prefix}{i}", site, horizon)))
    return Fleet(
        sites=sites,
        feeders=feeders,
        batteries=tuple(d for d in devices["battery"] if isinstance(d, Battery)),
        vehicles=tuple(d for d in devices["ev"] if isinstance(d, ElectricVehicle)),
        shiftable_loads=tuple(d for d in devices["shiftable"] if isinstance(d, ShiftableLoad)),
        curtailable_loads=tuple(
            d for d in devices["curtailable"] if isinstance(d, CurtailableLoad)
        ),
        heat_pumps=tuple(d for d in devices["heat_pump"] if isinstance(d, HeatPump)),
        pv_systems=tuple(d for d in devices["pv"] if isinstance(d, PhotovoltaicSystem)),
    )


@st.composite
def price_sets(draw: st.DrawFn, horizon: Horizon, export_above_import: bool = False) -> Prices:
    """Import prices from -0.2 to 0.5 per kWh; export prices (negative ones included) at
    or below the import price, or anywhere in that range with ``export_above_import``."""
    n = horizon.intervals
    imports = draw(per_interval(n, -0.2, 0.5, 0.01))
    if export_above_import:
        exports: list[float] | None = draw(per_interval(n, -0.2, 0.5, 0.01))
    else:
        spreads = draw(st.none() | per_interval(n, 0, 0.3, 0.01))
        exports = (
            None if spreads is None else [p - s for p, s in zip(imports, spreads, strict=True)]
        )
    return Prices(
        imports, exports, demand_charge_per_kw=draw(st.sampled_from([0.0, 0.0, 0.2, 1.0]))
    )


def caps(intervals: int) -> st.SearchStrategy[float | tuple[float, ...]]:
    """One ceiling for the whole window, or one per interval."""
    one = grid(-5, 30, 0.5)
    return one | st.lists(one, min_size=intervals, max_size=intervals).map(tuple)


@st.composite
def request_sets(draw: st.DrawFn, horizon: Horizon, fleet: Fleet) -> tuple[CapacityRequest, ...]:
    """0-2 requests (a reduction or a cap, on a feeder with sites or on a region) with
    windows of whole intervals inside the horizon."""
    feeders = sorted({s.feeder for s in fleet.sites})
    regions = sorted({f.region for f in fleet.feeders if f.region})
    requests = []
    for r in range(draw(st.integers(0, 2))):
        first = draw(st.integers(0, horizon.intervals - 1))
        last = draw(st.integers(first + 1, horizon.intervals))
        on_feeder = draw(st.booleans())
        reduction = draw(st.booleans())
        requests.append(
            CapacityRequest(
                f"r{r}",
                at_interval(horizon, first),
                at_interval(horizon, last),
                feeder=draw(st.sampled_from(feeders)) if on_feeder else None,
                region=None if on_feeder else draw(st.sampled_from(regions)),
                kw=draw(grid(0, 10, 0.5)) if reduction else None,
                cap_kw=None if reduction else draw(caps(last - first)),
                shortfall_price_per_kwh=draw(st.sampled_from([0.0, 0.5, 5.0, 100.0])),
            )
        )
    return tuple(requests)


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    horizon = draw(horizons())
    fleet = draw(fleets(horizon))
    return Problem(
        horizon,
        fleet,
        prices=draw(st.none() | price_sets(horizon)),
        requests=draw(request_sets(horizon, fleet)),
        integer=draw(st.booleans()),
    )


# --- independent arithmetic on a plan ---------------------------------------------------


def device_bounds(problem: Problem, device: Device) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest grid power a device can take in each interval [kW], from its
    own parameters (only shiftable loads' windows and energies are not expressed)."""
    horizon = problem.horizon
    n = horizon.intervals
    if isinstance(device, Battery):
        return np.full(n, -device.p_discharge_max_kw), np.full(n, device.p_charge_max_kw)
    if isinstance(device, ElectricVehicle):
        window = vehicle_window(device, horizon)
        plugged = np.zeros(n, dtype=bool)
        plugged[window.first : window.last] = True
        return np.where(plugged, -device.v2g_p_max_kw, 0.0), np.where(plugged, device.p_max_kw, 0)
    if isinstance(device, ShiftableLoad):
        # A relaxed contiguous run mixes starts: still never above the profile's peak.
        return np.zeros(n), np.full(n, max(device.profile_kw))
    if isinstance(device, CurtailableLoad):
        baseline = series(device.baseline_kw, horizon)
        low = baseline - np.clip(baseline, 0, None) * device.max_curtail_frac
        ceiling = device.p_max_kw if device.p_max_kw is not None else 1.5 * baseline.max()
        return low, np.maximum(baseline, ceiling)
    if isinstance(device, HeatPump):
        return np.zeros(n), np.full(n, device.p_max_kw)
    forecast = series(device.forecast_kw, horizon)
    return -forecast, np.zeros(n) if device.curtailable else -forecast


def scope_sites(problem: Problem, request: CapacityRequest) -> list[Site]:
    if request.feeder is not None:
        feeders = {request.feeder}
    else:
        feeders = {f.feeder_id for f in problem.fleet.feeders if f.region == request.region}
    return [s for s in problem.fleet.sites if s.feeder in feeders]


def ceiling(request: CapacityRequest, intervals: int) -> np.ndarray:
    """A cap request's ceiling per interval of its window [kW]."""
    assert request.cap_kw is not None
    return np.broadcast_to(np.asarray(request.cap_kw, dtype=float), (intervals,))


def window_positions(problem: Problem, request: CapacityRequest) -> list[int]:
    horizon = problem.horizon
    first = math.floor(horizon.position(request.start) + 1e-9)
    last = math.ceil(horizon.position(request.end) - 1e-9)
    return list(range(first, last))


def site_net(problem: Problem, power: pd.DataFrame) -> pd.DataFrame:
    """Net power per site [kW]: base load plus every device's power."""
    horizon = problem.horizon
    net = pd.DataFrame(
        {s.site_id: series(s.base_load_kw, horizon) for s in problem.fleet.sites},
        index=horizon.index,
    )
    for device in problem.fleet.devices():
        net[device.site_id] += power[device.device_id].to_numpy()
    return net


def schedule_cost(problem: Problem, power: pd.DataFrame) -> dict[str, float]:
    """What a schedule costs by the problem's terms, computed from the power alone.

    Used for the baseline (no plan): batteries idle, so no wear, and nothing is shed.
    """
    horizon = problem.horizon
    dt = horizon.step_h
    net = site_net(problem, power)
    costs: dict[str, float] = {}
    prices = problem.prices
    if prices is not None:
        buy = series(prices.import_price_per_kwh, horizon)
        sell = (
            series(prices.export_price_per_kwh, horizon)
            if prices.export_price_per_kwh is not None
            else buy
        )
        imports = net.clip(lower=0).to_numpy()
        exports = (-net).clip(lower=0).to_numpy()
        costs["energy"] = float(dt * (buy @ imports - sell @ exports).sum())
        costs["demand_charge"] = prices.demand_charge_per_kw * float(imports.max(axis=0).sum())
    violation = 0.0
    for site in problem.fleet.sites:
        over = np.zeros(horizon.intervals)
        if site.import_max_kw is not None:
            over = np.maximum(over, net[site.site_id].to_numpy() - site.import_max_kw)
        if site.export_max_kw is not None:
            over = np.maximum(over, -net[site.site_id].to_numpy() - site.export_max_kw)
        violation += float(over.sum())
    for feeder in problem.fleet.feeders:
        ids = [s.site_id for s in problem.fleet.sites if s.feeder == feeder.feeder_id]
        if not ids:
            continue
        total = net[ids].sum(axis=1).to_numpy()
        over = np.zeros(horizon.intervals)
        if feeder.import_max_kw is not None:
            over = np.maximum(over, total - feeder.import_max_kw)
        if feeder.export_max_kw is not None:
            over = np.maximum(over, -total - feeder.export_max_kw)
        violation += float(over.sum())
    costs["limit_violation"] = problem.limit_violation_cost_per_kwh * dt * violation
    unmet = 0.0
    for vehicle in problem.fleet.vehicles:
        window = vehicle_window(vehicle, horizon)
        p = power[vehicle.device_id].to_numpy()
        added = dt * float(
            vehicle.charge_efficiency * np.clip(p, 0, None).sum() - np.clip(-p, 0, None).sum()
        )
        unmet += vehicle.unmet_energy_cost_per_kwh * max(0.0, window.energy_kwh - added)
    costs["unmet_ev_energy"] = unmet
    discomfort = 0.0
    for pump in problem.fleet.heat_pumps:
        outdoor = series(pump.outdoor_temp_c, horizon)
        temp = pump.temp_initial_c
        for t, p in enumerate(power[pump.device_id].to_numpy()):
            step = pump.cop * p - pump.heat_loss_kw_per_c * (temp - outdoor[t])
            temp += dt / pump.thermal_capacity_kwh_per_c * step
            outside = max(0.0, pump.temp_min_c - temp, temp - pump.temp_max_c)
            discomfort += pump.comfort_cost_per_ch * dt * outside
    costs["comfort_heat_pump"] = discomfort
    shortfall = 0.0
    baseline = site_net(problem, power)  # the schedule is the baseline: no change
    for request in problem.requests:
        ids = [s.site_id for s in scope_sites(problem, request)]
        positions = window_positions(problem, request)
        if request.kw is not None:
            missing = np.full(len(positions), request.kw)
        else:
            scope_net = baseline[ids].sum(axis=1).to_numpy()[positions]
            missing = np.clip(scope_net - ceiling(request, len(positions)), 0, None)
        shortfall += request.shortfall_price_per_kwh * dt * float(missing.sum())
    costs["shortfall"] = shortfall
    return costs


def max_reduction(problem: Problem, plan_: Plan, request: CapacityRequest) -> np.ndarray:
    """Largest expected reduction the devices in scope can physically give [kW]."""
    sites = {s.site_id for s in scope_sites(problem, request)}
    positions = window_positions(problem, request)
    total = np.zeros(len(positions))
    for device in problem.fleet.devices():
        if device.site_id in sites:
            low, _ = device_bounds(problem, device)
            baseline = plan_.baseline_kw[device.device_id].to_numpy()
            total += device.delivery_factor * (baseline - low)[positions]
    return total


def expected_reduction(problem: Problem, plan_: Plan, request: CapacityRequest) -> np.ndarray:
    """Expected reduction recomputed from the schedule: each device's change against its
    baseline times its delivery factor [kW]."""
    sites = {s.site_id for s in scope_sites(problem, request)}
    positions = window_positions(problem, request)
    total = np.zeros(len(positions))
    for device in problem.fleet.devices():
        if device.site_id in sites:
            change = plan_.baseline_kw[device.device_id] - plan_.power_kw[device.device_id]
            total += device.delivery_factor * change.to_numpy()[positions]
    return total


def solved(problem: Problem) -> Plan:
    """Plan ``problem`` and require every device, site and feeder limit to hold.

    One exception, by design: the LP relaxation (``integer=False``) may charge and
    discharge a battery in the same interval, and the net power of such an interval
    stores more than the plan's own state of charge says, so the recomputed state may
    pass the maximum. That is allowed only for a battery the plan's notes name.
    """
    result = plan(problem)
    assert result.status == "optimal", result.status
    found = residuals(problem, result)
    netted = {
        f"battery {b.device_id}: recomputed SoC above maximum"
        for b in problem.fleet.batteries
        if any(
            note.startswith(f"battery {b.device_id} charged and discharged at once")
            for note in result.notes
        )
    }
    if not problem.integer:
        found = [message for message in found if message not in netted]
    assert found == [], found
    return result


# --- properties -------------------------------------------------------------------------


@MANY
@given(problems())
def test_every_random_problem_is_planned_within_every_limit(problem: Problem) -> None:
    result = solved(problem)
    horizon = problem.horizon
    dt = horizon.step_h
    event(f"integer={problem.integer}, requests={len(problem.requests)}")
    for outcome in result.requests:
        event(f"{outcome.kind} {'short' if outcome.shortfall_kw.max() > TOL else 'met'}")
    if result.notes:
        event("LP netted a battery")
    if not result.violations_kw.empty:
        event("limit violated")

    # The objective is the sum of its named terms.
    assert result.objective == pytest.approx(sum(result.costs.values()), rel=1e-6, abs=TOL)

    # The energy and demand-charge terms are what the meters' net power costs.
    net = site_net(problem, result.power_kw)
    np.testing.assert_allclose(net.to_numpy(), result.site_net_kw.to_numpy(), atol=1e-5)
    if problem.prices is not None:
        recomputed = schedule_cost(problem, result.power_kw)
        assert result.costs["energy"] == pytest.approx(recomputed["energy"], abs=1e-5)
        assert result.costs.get("demand_charge", 0.0) == pytest.approx(
            recomputed["demand_charge"], abs=1e-5
        )

    # Every device stays within its power range (with its own baseline inside it too).
    for device in problem.fleet.devices():
        low, high = device_bounds(problem, device)
        for label, frame in (("plan", result.power_kw), ("baseline", result.baseline_kw)):
            p = frame[device.device_id].to_numpy()
            assert np.all(p >= low - TOL), (label, device.device_id, p, low)
            assert np.all(p <= high + TOL), (label, device.device_id, p, high)

    # No plan costs more than doing nothing: the baseline is a feasible plan unless a
    # battery must charge to reach its final target.
    if not any(
        b.soc_final_min_frac is not None and b.soc_final_min_frac > b.soc_initial_frac
        for b in problem.fleet.batteries
    ):
        baseline_cost = sum(schedule_cost(problem, result.baseline_kw).values())
        slack = TOL + abs(result.objective) * (result.mip_gap or 0.0) + 1e-6 * abs(baseline_cost)
        assert result.objective <= baseline_cost + slack

    for request, outcome in zip(problem.requests, result.requests, strict=True):
        positions = window_positions(problem, request)
        assert list(outcome.shortfall_kw.index) == list(horizon.index[positions])
        reduction = expected_reduction(problem, result, request)
        shortfall = outcome.shortfall_kw.to_numpy()
        assert np.all(shortfall >= 0)
        if request.kw is not None:
            # Expected delivery is the schedule's, and never more than physics allows.
            np.testing.assert_allclose(outcome.expected_kw.to_numpy(), reduction, atol=1e-5)
            assert np.all(reduction <= max_reduction(problem, result, request) + 1e-5)
            np.testing.assert_allclose(outcome.requested_kw.to_numpy(), request.kw)
            gap = request.kw - reduction
        else:
            ids = [s.site_id for s in scope_sites(problem, request)]
            baseline_net = site_net(problem, result.baseline_kw)[ids].sum(axis=1).to_numpy()
            expected_net = baseline_net[positions] - reduction
            np.testing.assert_allclose(outcome.expected_kw.to_numpy(), expected_net, atol=1e-5)
            cap = ceiling(request, len(positions))
            np.testing.assert_allclose(outcome.requested_kw.to_numpy(), cap)
            gap = expected_net - cap
        # A priced shortfall is exactly what is missing; every shortfall is explained.
        if request.shortfall_price_per_kwh > 0:
            np.testing.assert_allclose(shortfall, np.clip(gap, 0, None), atol=1e-5)
        for when, missing in zip(outcome.shortfall_kw.index, shortfall, strict=True):
            if missing > TOL:
                assert outcome.reasons.get(when), (request.request_id, when, outcome.reasons)
        # One more kW in an interval costs at most the shortfall price for that interval,
        # and exactly that when the interval already falls short (LP duals).
        marginal = outcome.marginal_cost_per_kw.to_numpy()
        binaries = problem.fleet.batteries or any(
            load.contiguous for load in problem.fleet.shiftable_loads
        )
        if problem.integer and binaries:
            assert np.all(np.isnan(marginal))
        else:  # an LP (integer=True without binaries is solved as one)
            top = request.shortfall_price_per_kwh * dt
            assert np.all((marginal >= -TOL) & (marginal <= top + TOL)), (marginal, top)
            short = shortfall > TOL
            np.testing.assert_allclose(marginal[short], top, atol=1e-5)


@st.composite
def stocked_requests(draw: st.DrawFn, over_ask: bool = False) -> Problem:
    """Batteries with stored energy on feeder A, one request on A whose window they can
    cover (``kw`` at most what they can sustain from energy and power), random other
    devices on feeder B, random prices. With ``over_ask`` the request asks more than
    their combined discharge power."""
    horizon = draw(horizons())
    n = horizon.intervals
    first = draw(st.integers(0, n - 1))
    last = draw(st.integers(first + 1, n))
    window_h = (last - first) * horizon.step_h
    sites = tuple(
        Site(f"a{i}", "A", base_load_kw=draw(st.none() | per_interval(n, 0, 5)))
        for i in range(draw(st.integers(1, 2)))
    )
    stock = []
    for i in range(draw(st.integers(1, 4))):
        soc_min = draw(grid(0, 0.3, 0.05))
        initial = draw(grid(soc_min, 1, 0.05))
        stock.append(
            Battery(
                f"a-b{i}",
                draw(st.sampled_from([s.site_id for s in sites])),
                p_charge_max_kw=draw(grid(0, 10, 0.5)),
                p_discharge_max_kw=draw(grid(0.5, 10, 0.5)),
                e_max_kwh=draw(grid(1, 20, 0.5)),
                soc_min_frac=soc_min,
                soc_max_frac=draw(grid(initial, 1, 0.05)),
                soc_initial_frac=initial,
                discharge_efficiency=draw(grid(0.8, 1, 0.05)),
                degradation_cost_per_kwh=draw(grid(0, 0.05, 0.01)),
                delivery_factor=draw(grid(0.5, 1, 0.1)),
            )
        )
    sustainable = sum(
        b.delivery_factor
        * min(
            b.p_discharge_max_kw,
            b.discharge_efficiency * (b.soc_initial_frac - b.soc_min_frac) * b.e_max_kwh / window_h,
        )
        for b in stock
    )
    if over_ask:
        most = sum(b.delivery_factor * b.p_discharge_max_kw for b in stock)
        kw = most + draw(grid(0.5, 10, 0.5))
    else:
        kw = sustainable * draw(st.sampled_from([1.0, 0.999]) | grid(0, 1, 0.05))
    as_cap = not over_ask and draw(st.booleans())
    base = np.sum([series(s.base_load_kw, horizon) for s in sites], axis=0)
    request = CapacityRequest(
        "r",
        at_interval(horizon, first),
        at_interval(horizon, last),
        feeder="A",
        kw=None if as_cap else kw,
        # The baseline of batteries is idle: the cap is the base load's peak minus kw.
        cap_kw=float(base[first:last].max()) - kw if as_cap else None,
        shortfall_price_per_kwh=1_000.0,
    )
    others = draw(
        fleets(horizon, feeder_prefix="B", site_prefix="b", device_prefix="b-d", max_devices=4)
    )
    fleet = replace(
        others,
        sites=sites + others.sites,
        feeders=(Feeder("A", region="East"), *others.feeders),
        batteries=tuple(stock) + others.batteries,
    )
    return Problem(
        horizon,
        fleet,
        prices=draw(st.none() | price_sets(horizon)),
        requests=(request,),
        integer=draw(st.booleans()),
    )


@FEW
@given(stocked_requests())
def test_no_shortfall_when_stored_energy_covers_the_request(problem: Problem) -> None:
    # A plan with no shortfall exists by construction: every battery in scope idles until
    # the window, then discharges at min(power limit, usable energy / window length).
    # At 1,000 per kWh short, nothing else in the problem is worth a shortfall.
    result = solved(problem)
    outcome = result.requests[0]
    assert outcome.shortfall_kw.max() <= TOL, outcome.shortfall_kw
    assert outcome.reasons == {}


@FEW
@given(stocked_requests(over_ask=True))
def test_request_beyond_discharge_power_falls_short_with_reasons(problem: Problem) -> None:
    result = solved(problem)
    outcome = result.requests[0]
    request = problem.requests[0]
    assert request.kw is not None
    stock = [b for b in problem.fleet.batteries if b.site_id.startswith("a")]
    most = sum(b.delivery_factor * b.p_discharge_max_kw for b in stock)
    assert np.all(outcome.shortfall_kw.to_numpy() >= request.kw - most - 1e-5)
    assert set(outcome.reasons) == set(outcome.shortfall_kw.index)
    assert all(outcome.reasons.values())


# --- properties that find bugs in the optimizer (see the module's report) ----------------


@st.composite
def problems_with_any_prices(draw: st.DrawFn) -> Problem:
    horizon = draw(horizons())
    fleet = draw(fleets(horizon, max_devices=2))
    return Problem(horizon, fleet, prices=draw(price_sets(horizon, export_above_import=True)))


@FEW
@given(problems_with_any_prices())
def test_any_valid_prices_give_a_plan(problem: Problem) -> None:
    # Prices accepts an export price above the import price (a feed-in tariff above the
    # retail price, or a negative import price with exports paid at zero): validate() lets
    # it through, so plan() must return a plan.
    validate(problem)
    solved(problem)


@st.composite
def vehicles_with_batteries(draw: st.DrawFn) -> Problem:
    """One or two EVs that state their battery size, plugged in for most of the horizon,
    with random prices (negative ones included)."""
    horizon = draw(horizons())
    span = horizon.intervals * horizon.step_h
    fleet = Fleet(sites=(Site("s1", "F-1"),), feeders=(Feeder("F-1"),))
    cars = []
    for i in range(draw(st.integers(1, 2))):
        need = draw(grid(0, 10, 0.5))
        arrival = horizon.start - pd.Timedelta(minutes=15 * draw(st.integers(0, 8)))
        stay_h = draw(grid(span / 2, span + 4, 0.25))
        cars.append(
            ElectricVehicle(
                f"ev{i}",
                "s1",
                arrival=arrival,
                departure=arrival + pd.Timedelta(hours=stay_h),
                p_max_kw=draw(st.sampled_from([3.7, 7.4, 11.0])),
                energy_required_kwh=need,
                charge_efficiency=draw(grid(0.85, 1, 0.05)),
                v2g_p_max_kw=draw(st.sampled_from([0.0, 3.7])),
                e_max_kwh=need + draw(grid(1, 10, 1)),
            )
        )
    fleet = replace(fleet, vehicles=tuple(cars))
    return Problem(horizon, fleet, prices=draw(price_sets(horizon)))


@FEW
@given(vehicles_with_batteries())
def test_ev_never_takes_more_energy_than_its_battery_holds(problem: Problem) -> None:
    result = solved(problem)
    dt = problem.horizon.step_h
    for vehicle in problem.fleet.vehicles:
        assert vehicle.e_max_kwh is not None
        p = result.power_kw[vehicle.device_id].to_numpy()
        stored = np.cumsum(
            dt * (vehicle.charge_efficiency * np.clip(p, 0, None) + np.clip(p, None, 0))
        )
        assert stored.max(initial=0.0) <= vehicle.e_max_kwh + 1e-5, (vehicle, p)


def test_ev_with_a_stated_battery_is_not_overfilled() -> None:
    # The minimal case behind the property above: a 10 kWh car that needs 5 kWh, plugged
    # in for 4 h at 7 kW while energy is paid for taking it.
    ev = ElectricVehicle("ev", "s1", at(0), at(4), 7.0, 5.0, charge_efficiency=1.0, e_max_kwh=10.0)
    result = solved(Problem(hours(4), one_site(vehicles=(ev,)), prices=Prices([-0.1] * 4)))
    assert result.power_kw["ev"].sum() <= 10.0 + 1e-6


@st.composite
def free_batteries(draw: st.DrawFn) -> Problem:
    horizon = draw(horizons())
    fleet = Fleet(sites=(Site("s1", "F-1"),), feeders=(Feeder("F-1"),))
    stock = tuple(
        Battery(
            f"b{i}",
            "s1",
            p_charge_max_kw=draw(grid(0, 10, 0.5)),
            p_discharge_max_kw=draw(grid(0, 10, 0.5)),
            e_max_kwh=draw(grid(1, 20, 0.5)),
            soc_min_frac=draw(grid(0, 1, 0.05)),
            soc_max_frac=draw(grid(0, 1, 0.05)),
            soc_initial_frac=draw(grid(0, 1, 0.05)),
            soc_final_min_frac=draw(st.none() | grid(0, 1, 0.05)),
        )
        for i in range(draw(st.integers(1, 2)))
    )
    return Problem(
        horizon, replace(fleet, batteries=stock), prices=draw(st.none() | price_sets(horizon))
    )


def planned_or_refused(problem: Problem) -> None:
    """validate() promises to refuse bad input naming the device and the field; what it
    accepts must then get a plan, not a bare "no feasible plan" from the solver."""
    try:
        validate(problem)
    except ProblemError:
        return
    solved(problem)


@FEW
@given(free_batteries())
def test_a_battery_validate_accepts_is_planned(problem: Problem) -> None:
    planned_or_refused(problem)


@pytest.mark.parametrize(
    "change",
    [
        {"soc_initial_frac": 0.9, "soc_max_frac": 0.5, "p_discharge_max_kw": 1.0},
        {"soc_initial_frac": 0.2, "soc_min_frac": 0.5, "p_charge_max_kw": 1.0},
        {"soc_initial_frac": 0.2, "soc_final_min_frac": 0.9, "soc_max_frac": 0.5},
        {"soc_initial_frac": 0.0, "soc_final_min_frac": 1.0, "p_charge_max_kw": 1.0},
    ],
    ids=["starts-above-max", "starts-below-min", "target-above-max", "target-out-of-reach"],
)
def test_battery_that_cannot_be_planned_is_refused(change: dict[str, Any]) -> None:
    # The minimal cases behind the property above: a 10 kWh battery over two hours.
    planned_or_refused(Problem(hours(2), one_site(batteries=(battery(**change),))))


@pytest.mark.parametrize(
    "prices",
    [
        Prices([0.10, 0.10], export_price_per_kwh=[0.20, 0.05]),  # feed-in above retail
        Prices([-0.05, 0.10], export_price_per_kwh=[0.0, 0.0]),  # exports never charged
    ],
    ids=["feed-in-tariff", "negative-import-price"],
)
def test_export_price_above_import_price_is_planned_or_refused(prices: Prices) -> None:
    # The minimal cases behind test_any_valid_prices_give_a_plan: one site, 1 kW of PV.
    pv = PhotovoltaicSystem("pv", "s1", forecast_kw=[1.0, 1.0])
    planned_or_refused(Problem(hours(2), one_site(pv_systems=(pv,)), prices=prices))
