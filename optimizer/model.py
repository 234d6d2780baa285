"""The Pyomo model: one small ``add_*`` function per family of variables and constraints.

Constraint names follow ``<owner>_<quantity>_<bound>``: ``battery_soc_balance``,
``site_import_upper``, ``request_reduction_lower``. Power is positive when drawn from
the grid. Soft limits carry a named slack with a price: ``ev_unmet_kwh``,
``request_shortfall_kw``, ``site_violation_kw``, ``feeder_violation_kw``,
``heat_pump_too_cold_c``/``heat_pump_too_warm_c``; hard device limits are variable
bounds.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pyomo.environ as pyo

from optimizer.prepare import Prepared, prepare
from optimizer.problem import Problem, validate


def build_model(problem: Problem) -> pyo.ConcreteModel:
    """Validate ``problem`` and build its model (see the module docstring for names).

    Raises
    ------
    optimizer.problem.ProblemError
        Naming the device and field of every bad input.
    """
    validate(problem)
    data = prepare(problem)
    m = pyo.ConcreteModel(name=problem.name)
    m.data = data  # the arrays the model was built from, for reading results back
    m.T = pyo.RangeSet(0, data.horizon.intervals - 1, doc="Intervals of the horizon")
    m.power = defaultdict(dict)  # device_id -> {t: expression of its grid power [kW]}
    m.cost_terms = {}
    add_batteries(m, data)
    add_vehicles(m, data)
    add_shiftable_loads(m, data)
    add_curtailable_loads(m, data)
    add_heat_pumps(m, data)
    add_pv_systems(m, data)
    add_sites(m, data)
    add_feeders(m, data)
    add_requests(m, data)
    add_objective(m, data)
    return m


def add_batteries(m: pyo.ConcreteModel, data: Prepared) -> None:
    """Charge, discharge and state of charge [kWh at the end of each interval]."""
    batteries = data.problem.fleet.batteries
    dt = data.step_h
    m.B = pyo.RangeSet(0, len(batteries) - 1, doc="Batteries")
    m.battery_charge_kw = pyo.Var(
        m.B, m.T, bounds=lambda _, b, t: (0, batteries[b].p_charge_max_kw)
    )
    m.battery_discharge_kw = pyo.Var(
        m.B, m.T, bounds=lambda _, b, t: (0, batteries[b].p_discharge_max_kw)
    )
    m.battery_soc_kwh = pyo.Var(
        m.B,
        m.T,
        bounds=lambda _, b, t: (
            batteries[b].soc_min_frac * batteries[b].e_max_kwh,
            batteries[b].soc_max_frac * batteries[b].e_max_kwh,
        ),
    )

    def balance(m: Any, b: int, t: int) -> Any:
        battery = batteries[b]
        before = (
            m.battery_soc_kwh[b, t - 1] if t > 0 else battery.soc_initial_frac * battery.e_max_kwh
        )
        return m.battery_soc_kwh[b, t] == before + dt * (
            battery.charge_efficiency * m.battery_charge_kw[b, t]
            - m.battery_discharge_kw[b, t] / battery.discharge_efficiency
        )

    m.battery_soc_balance = pyo.Constraint(m.B, m.T, rule=balance, doc="SoC carries over")
    last = data.horizon.intervals - 1
    targets = {
        b: battery.soc_final_min_frac * battery.e_max_kwh
        for b, battery in enumerate(batteries)
        if battery.soc_final_min_frac is not None
    }
    m.battery_soc_final_lower = pyo.Constraint(
        list(targets),
        rule=lambda m, b: m.battery_soc_kwh[b, last] >= targets[b],
        doc="SoC target at the horizon's end",
    )
    if data.problem.integer:
        m.battery_charging = pyo.Var(m.B, m.T, domain=pyo.Binary)
        m.battery_mode_charge_upper = pyo.Constraint(
            m.B,
            m.T,
            rule=lambda m, b, t: (
                m.battery_charge_kw[b, t] <= batteries[b].p_charge_max_kw * m.battery_charging[b, t]
            ),
            doc="Charge only in charging mode",
        )
        m.battery_mode_discharge_upper = pyo.Constraint(
            m.B,
            m.T,
            rule=lambda m, b, t: (
                m.battery_discharge_kw[b, t]
                <= batteries[b].p_discharge_max_kw * (1 - m.battery_charging[b, t])
            ),
            doc="Discharge only out of charging mode",
        )
    for b, battery in enumerate(batteries):
        m.power[battery.device_id] = {
            t: m.battery_charge_kw[b, t] - m.battery_discharge_kw[b, t] for t in m.T
        }
    m.cost_terms["degradation"] = sum(
        battery.degradation_cost_per_kwh
        * dt
        * sum(m.battery_charge_kw[b, t] + m.battery_discharge_kw[b, t] for t in m.T)
        for b, battery in enumerate(batteries)
        if battery.degradation_cost_per_kwh
    )


def add_vehicles(m: pyo.ConcreteModel, data: Prepared) -> None:
    """EV charging (and V2G) in plugged intervals; energy by departure is soft."""
    vehicles = data.problem.fleet.vehicles
    windows = data.vehicle_windows
    dt = data.step_h
    plugged = [(v, t) for v, w in enumerate(windows) for t in range(w.first, w.last)]
    m.V = pyo.RangeSet(0, len(vehicles) - 1, doc="EVs")
    m.VT = pyo.Set(initialize=plugged, dimen=2, doc="EV plugged intervals")
    m.ev_charge_kw = pyo.Var(m.VT, bounds=lambda _, v, t: (0, vehicles[v].p_max_kw))
    v2g = [(v, t) for v, t in plugged if vehicles[v].v2g_p_max_kw > 0]
    m.VT2G = pyo.Set(initialize=v2g, dimen=2, doc="Plugged intervals of V2G EVs")
    m.ev_discharge_kw = pyo.Var(m.VT2G, bounds=lambda _, v, t: (0, vehicles[v].v2g_p_max_kw))
    m.ev_unmet_kwh = pyo.Var(m.V, bounds=lambda _, v: (0, windows[v].energy_kwh))

    def added(v: int, until: int) -> Any:
        eta = vehicles[v].charge_efficiency
        return sum(
            dt * (eta * m.ev_charge_kw[v, t] - (m.ev_discharge_kw[v, t] if (v, t) in m.VT2G else 0))
            for t in range(windows[v].first, until)
        )

    m.ev_energy_lower = pyo.Constraint(
        m.V,
        rule=lambda m, v: added(v, windows[v].last) + m.ev_unmet_kwh[v] >= windows[v].energy_kwh,
        doc="Energy required by departure (soft)",
    )
    m.ev_energy_upper = pyo.Constraint(
        m.V,
        rule=lambda m, v: added(v, windows[v].last) <= windows[v].energy_kwh,
        doc="No more energy than required (the battery holds no more)",
    )
    v2g_vehicles = sorted({v for v, _ in v2g})
    cumulative = [(v, t) for v in v2g_vehicles for t in range(windows[v].first, windows[v].last)]
    m.ev_energy_floor_lower = pyo.Constraint(
        cumulative,
        rule=lambda m, v, t: added(v, t + 1) >= -windows[v].arrival_energy_kwh,
        doc="V2G never draws the battery below empty",
    )
    m.ev_energy_ceiling_upper = pyo.Constraint(
        cumulative,
        rule=lambda m, v, t: (
            added(v, t + 1) <= (vehicles[v].e_max_kwh or 0) - windows[v].arrival_energy_kwh
        ),
        doc="Charging never overfills the battery",
    )
    for v, vehicle in enumerate(vehicles):
        m.power[vehicle.device_id] = {
            t: m.ev_charge_kw[v, t] - (m.ev_discharge_kw[v, t] if (v, t) in m.VT2G else 0)
            for t in range(windows[v].first, windows[v].last)
        }
    m.cost_terms["degradation"] += sum(
        vehicles[v].v2g_degradation_cost_per_kwh * dt * m.ev_discharge_kw[v, t] for v, t in m.VT2G
    )
    m.cost_terms["unmet_ev_energy"] = sum(
        vehicle.unmet_energy_cost_per_kwh * m.ev_unmet_kwh[v] for v, vehicle in enumerate(vehicles)
    )


def add_shiftable_loads(m: pyo.ConcreteModel, data: Prepared) -> None:
    """A run that starts once in its window: a start choice (binary in the MILP, relaxed
    in the LP) for contiguous runs; for interruptible ones, energy within the window at
    no more than peak power."""
    loads = data.problem.fleet.shiftable_loads
    dt = data.step_h
    contiguous = [i for i, load in enumerate(loads) if load.contiguous]
    starts = [(i, k) for i in contiguous for k in data.shiftable_starts[i]]
    domain = pyo.Binary if data.problem.integer else pyo.UnitInterval
    m.S = pyo.RangeSet(0, len(loads) - 1, doc="Shiftable loads")
    m.SK = pyo.Set(initialize=starts, dimen=2, doc="Possible starts of contiguous runs")
    m.shiftable_start = pyo.Var(m.SK, domain=domain)
    m.shiftable_start_choice = pyo.Constraint(
        contiguous,
        rule=lambda m, i: sum(m.shiftable_start[i, k] for k in data.shiftable_starts[i]) == 1,
        doc="A contiguous run starts exactly once",
    )
    free = [i for i, load in enumerate(loads) if not load.contiguous]
    window = [
        (i, t)
        for i in free
        for t in range(
            data.shiftable_starts[i].start, data.shiftable_starts[i][-1] + len(loads[i].profile_kw)
        )
    ]
    m.SW = pyo.Set(initialize=window, dimen=2, doc="Window of interruptible runs")
    m.shiftable_kw = pyo.Var(m.SW, bounds=lambda _, i, t: (0, max(loads[i].profile_kw)))
    m.shiftable_energy_balance = pyo.Constraint(
        free,
        rule=lambda m, i: (
            dt * sum(m.shiftable_kw[i, t] for (j, t) in window if j == i)
            == dt * sum(loads[i].profile_kw)
        ),
        doc="An interruptible run serves its whole energy in its window",
    )
    for i, load in enumerate(loads):
        terms: dict[int, Any] = defaultdict(float)
        if load.contiguous:
            for k in data.shiftable_starts[i]:
                for offset, p in enumerate(load.profile_kw):
                    if p:
                        terms[k + offset] = terms[k + offset] + p * m.shiftable_start[i, k]
        else:
            for j, t in window:
                if j == i:
                    terms[t] = m.shiftable_kw[i, t]
        m.power[load.device_id] = dict(terms)


def add_curtailable_loads(m: pyo.ConcreteModel, data: Prepared) -> None:
    """Shed part of the baseline; a share of the shed energy comes back later (rebound)."""
    loads = data.problem.fleet.curtailable_loads
    dt = data.step_h
    steps = data.horizon.intervals
    m.C = pyo.RangeSet(0, len(loads) - 1, doc="Curtailable loads")
    m.curtail_kw = pyo.Var(m.C, m.T, bounds=lambda _, c, t: (0, data.curtail_max_kw[c][t]))
    m.curtail_rebound_kw = pyo.Var(
        m.C, m.T, bounds=lambda _, c, t: (0, data.curtail_rebound_max_kw[c][t])
    )
    m.curtail_debt_kwh = pyo.Var(m.C, m.T, bounds=(0, None))
    m.curtail_debt_balance = pyo.Constraint(
        m.C,
        m.T,
        rule=lambda m, c, t: (
            m.curtail_debt_kwh[c, t]
            == (m.curtail_debt_kwh[c, t - 1] if t > 0 else 0)
            + dt * (loads[c].rebound_frac * m.curtail_kw[c, t] - m.curtail_rebound_kw[c, t])
        ),
        doc="Energy owed back after shedding",
    )
    m.curtail_debt_final_upper = pyo.Constraint(
        m.C, rule=lambda m, c: m.curtail_debt_kwh[c, steps - 1] <= 0, doc="All paid back"
    )
    windows = []
    for c, load in enumerate(loads):
        event = max(1, round(load.max_event_h / dt))
        if event < steps:
            windows += [(c, t, event) for t in range(0, steps - event)]
    m.curtail_event_upper = pyo.Constraint(
        [(c, t) for c, t, _ in windows],
        rule=lambda m, c, t: (
            sum(
                m.curtail_kw[c, u]
                for u in range(t, t + max(1, round(loads[c].max_event_h / dt)) + 1)
            )
            <= max(1, round(loads[c].max_event_h / dt))
            * float(
                np.max(data.curtail_max_kw[c][t : t + max(1, round(loads[c].max_event_h / dt)) + 1])
            )
        ),
        doc="No event longer than the longest allowed",
    )
    for c, load in enumerate(loads):
        baseline = data.curtail_baseline_kw[c]
        m.power[load.device_id] = {
            t: float(baseline[t]) - m.curtail_kw[c, t] + m.curtail_rebound_kw[c, t] for t in m.T
        }
    m.cost_terms["comfort_curtailment"] = sum(
        load.comfort_cost_per_kwh * dt * sum(m.curtail_kw[c, t] for t in m.T)
        for c, load in enumerate(loads)
    )


def add_heat_pumps(m: pyo.ConcreteModel, data: Prepared) -> None:
    """One thermal node per heat pump; the comfort band is soft."""
    pumps = data.problem.fleet.heat_pumps
    dt = data.step_h
    m.H = pyo.RangeSet(0, len(pumps) - 1, doc="Heat pumps")
    m.heat_pump_kw = pyo.Var(m.H, m.T, bounds=lambda _, h, t: (0, pumps[h].p_max_kw))
    m.heat_pump_temp_c = pyo.Var(m.H, m.T)
    m.heat_pump_too_cold_c = pyo.Var(m.H, m.T, bounds=(0, None))
    m.heat_pump_too_warm_c = pyo.Var(m.H, m.T, bounds=(0, None))

    def balance(m: Any, h: int, t: int) -> Any:
        pump = pumps[h]
        before = m.heat_pump_temp_c[h, t - 1] if t > 0 else pump.temp_initial_c
        outdoor = float(data.heat_pump_outdoor_c[h][t])
        return m.heat_pump_temp_c[h, t] == before + dt / pump.thermal_capacity_kwh_per_c * (
            pump.cop * m.heat_pump_kw[h, t] - pump.heat_loss_kw_per_c * (before - outdoor)
        )

    m.heat_pump_temp_balance = pyo.Constraint(m.H, m.T, rule=balance, doc="Thermal node")
    m.heat_pump_temp_lower = pyo.Constraint(
        m.H,
        m.T,
        rule=lambda m, h, t: (
            m.heat_pump_temp_c[h, t] + m.heat_pump_too_cold_c[h, t] >= pumps[h].temp_min_c
        ),
        doc="Comfort band, lower (soft)",
    )
    m.heat_pump_temp_upper = pyo.Constraint(
        m.H,
        m.T,
        rule=lambda m, h, t: (
            m.heat_pump_temp_c[h, t] - m.heat_pump_too_warm_c[h, t] <= pumps[h].temp_max_c
        ),
        doc="Comfort band, upper (soft)",
    )
    for h, pump in enumerate(pumps):
        m.power[pump.device_id] = {t: m.heat_pump_kw[h, t] for t in m.T}
    m.cost_terms["comfort_heat_pump"] = sum(
        pump.comfort_cost_per_ch
        * dt
        * sum(m.heat_pump_too_cold_c[h, t] + m.heat_pump_too_warm_c[h, t] for t in m.T)
        for h, pump in enumerate(pumps)
    )


def add_pv_systems(m: pyo.ConcreteModel, data: Prepared) -> None:
    """PV output, curtailable (down to zero) where allowed."""
    systems = data.problem.fleet.pv_systems
    m.P = pyo.RangeSet(0, len(systems) - 1, doc="PV systems")
    m.pv_curtail_kw = pyo.Var(
        m.P,
        m.T,
        bounds=lambda _, p, t: (
            0,
            float(data.pv_forecast_kw[p][t]) if systems[p].curtailable else 0,
        ),
    )
    for p, system in enumerate(systems):
        forecast = data.pv_forecast_kw[p]
        m.power[system.device_id] = {t: -float(forecast[t]) + m.pv_curtail_kw[p, t] for t in m.T}


def _site_net(m: pyo.ConcreteModel, data: Prepared) -> dict[tuple[int, int], Any]:
    net: dict[tuple[int, int], Any] = {
        (s, t): float(data.site_base_kw[s, t]) for s in range(len(data.site_ids)) for t in m.T
    }
    for device_id, terms in m.power.items():
        s = data.site_of[device_id]
        for t, term in terms.items():
            net[s, t] = net[s, t] + term
    return net


def add_sites(m: pyo.ConcreteModel, data: Prepared) -> None:
    """Each meter: net power, its import/export split, connection limits, peak import."""
    m.site_net = _site_net(m, data)
    m.Z = pyo.RangeSet(0, len(data.site_ids) - 1, doc="Sites")
    m.site_import_kw = pyo.Var(m.Z, m.T, bounds=(0, None))
    m.site_export_kw = pyo.Var(m.Z, m.T, bounds=(0, None))
    m.site_violation_kw = pyo.Var(m.Z, m.T, bounds=(0, None))
    m.site_net_balance = pyo.Constraint(
        m.Z,
        m.T,
        rule=lambda m, s, t: m.site_import_kw[s, t] - m.site_export_kw[s, t] == m.site_net[s, t],
        doc="Net power at the meter",
    )
    m.site_import_upper = pyo.Constraint(
        [s for s in m.Z if data.site_import_max_kw[s] is not None],
        m.T,
        rule=lambda m, s, t: (
            m.site_import_kw[s, t] - m.site_violation_kw[s, t] <= data.site_import_max_kw[s]
        ),
        doc="Import limit of the connection",
    )
    m.site_export_upper = pyo.Constraint(
        [s for s in m.Z if data.site_export_max_kw[s] is not None],
        m.T,
        rule=lambda m, s, t: (
            m.site_export_kw[s, t] - m.site_violation_kw[s, t] <= data.site_export_max_kw[s]
        ),
        doc="Export limit of the connection",
    )
    if data.demand_charge_per_kw:
        m.site_peak_kw = pyo.Var(m.Z, bounds=(0, None))
        m.site_peak_lower = pyo.Constraint(
            m.Z, m.T, rule=lambda m, s, t: m.site_peak_kw[s] >= m.site_import_kw[s, t]
        )
        m.cost_terms["demand_charge"] = data.demand_charge_per_kw * sum(
            m.site_peak_kw[s] for s in m.Z
        )
    if data.import_price is not None and data.export_price is not None:
        m.cost_terms["energy"] = data.step_h * sum(
            float(data.import_price[t]) * m.site_import_kw[s, t]
            - float(data.export_price[t]) * m.site_export_kw[s, t]
            for s in m.Z
            for t in m.T
        )
    m.cost_terms["limit_violation"] = (
        data.problem.limit_violation_cost_per_kwh
        * data.step_h
        * sum(m.site_violation_kw[s, t] for s in m.Z for t in m.T)
    )


def add_feeders(m: pyo.ConcreteModel, data: Prepared) -> None:
    """Feeder capacity on the sum of its sites' net power."""
    sites_of: dict[str, list[int]] = defaultdict(list)
    for s, feeder in enumerate(data.site_feeder):
        sites_of[feeder].append(s)
    m.F = pyo.Set(initialize=data.feeder_ids, doc="Feeders")
    m.feeder_violation_kw = pyo.Var(m.F, m.T, bounds=(0, None))
    importing = [f for f in data.feeder_ids if data.feeder_import_max_kw[f] is not None]
    exporting = [f for f in data.feeder_ids if data.feeder_export_max_kw[f] is not None]
    m.feeder_import_upper = pyo.Constraint(
        importing,
        m.T,
        rule=lambda m, f, t: (
            sum(m.site_net[s, t] for s in sites_of[f]) - m.feeder_violation_kw[f, t]
            <= data.feeder_import_max_kw[f]
        ),
        doc="Feeder capacity, import",
    )
    m.feeder_export_upper = pyo.Constraint(
        exporting,
        m.T,
        rule=lambda m, f, t: (
            -sum(m.site_net[s, t] for s in sites_of[f]) - m.feeder_violation_kw[f, t]
            <= data.feeder_export_max_kw[f]
        ),
        doc="Feeder capacity, export",
    )
    m.cost_terms["limit_violation"] += (
        data.problem.limit_violation_cost_per_kwh
        * data.step_h
        * sum(m.feeder_violation_kw[f, t] for f in m.F for t in m.T)
    )


def add_requests(m: pyo.ConcreteModel, data: Prepared) -> None:
    """Capacity requests on expected delivery: each device's change counts times its
    delivery factor. Shortfall is a priced slack, so no request makes a plan infeasible."""
    factor = {d.device_id: d.delivery_factor for d in data.problem.fleet.devices()}
    devices_at: dict[int, list[str]] = defaultdict(list)
    for device_id, s in data.site_of.items():
        devices_at[s].append(device_id)
    pairs = [(r, t) for r, scope in enumerate(data.scopes) for t in scope.intervals]
    m.RT = pyo.Set(initialize=pairs, dimen=2, doc="Request intervals")
    m.request_shortfall_kw = pyo.Var(m.RT, bounds=(0, None))

    def expected_change(r: int, t: int) -> Any:
        """Expected change of the scope's net load against its baseline [kW]."""
        total: Any = 0.0
        for s in data.scopes[r].sites:
            for device_id in devices_at[s]:
                term = m.power[device_id].get(t, 0.0)
                baseline = float(data.baseline_kw[device_id][t])
                if isinstance(term, float) and term == baseline:
                    continue
                total = total + factor[device_id] * (term - baseline)
        return total

    reductions = [(r, t) for r, t in pairs if data.scopes[r].request.kw is not None]
    caps = [(r, t) for r, t in pairs if data.scopes[r].request.kw is None]

    def scope_baseline(r: int, t: int) -> float:
        return sum(
            float(data.site_base_kw[s, t])
            + sum(float(data.baseline_kw[d][t]) for d in devices_at[s])
            for s in data.scopes[r].sites
        )

    m.request_reduction_lower = pyo.Constraint(
        reductions,
        rule=lambda m, r, t: (
            -expected_change(r, t) + m.request_shortfall_kw[r, t] >= data.scopes[r].request.kw
        ),
        doc="Expected reduction against the baseline, or its shortfall",
    )
    m.request_cap_upper = pyo.Constraint(
        caps,
        rule=lambda m, r, t: (
            scope_baseline(r, t) + expected_change(r, t) - m.request_shortfall_kw[r, t]
            <= float(np.asarray(data.scopes[r].cap_kw)[t - data.scopes[r].intervals[0]])
        ),
        doc="Expected net load under the cap, or the excess as shortfall",
    )
    m.cost_terms["shortfall"] = data.step_h * sum(
        data.scopes[r].request.shortfall_price_per_kwh * m.request_shortfall_kw[r, t]
        for r, t in pairs
    )


def add_objective(m: pyo.ConcreteModel, data: Prepared) -> None:
    """Minimize the sum of the named cost terms (each kept as an Expression)."""
    m.cost = pyo.Expression(list(m.cost_terms), initialize=lambda m, k: m.cost_terms[k])
    m.objective = pyo.Objective(expr=sum(m.cost[k] for k in m.cost), sense=pyo.minimize)
