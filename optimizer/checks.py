"""Residual checks: recompute a plan's physics from its schedule alone.

Each check integrates the returned power back into state (battery state of charge,
EV energy, heat-pump temperature) with the device's own parameters and compares every
bound, independently of the model that produced the plan. An empty list means the
plan is consistent to ``tolerance``.
"""

from __future__ import annotations

import numpy as np

from optimizer.prepare import prepare, vehicle_window
from optimizer.problem import Problem
from optimizer.results import Plan


def residuals(problem: Problem, plan: Plan, tolerance: float = 1e-6) -> list[str]:
    """Every way ``plan`` breaks a device, site or feeder limit of ``problem``."""
    data = prepare(problem)
    dt = data.step_h
    power = plan.power_kw
    found: list[str] = []

    def check(ok: bool, message: str) -> None:
        if not ok:
            found.append(message)

    for battery in problem.fleet.batteries:
        p = power[battery.device_id].to_numpy()
        charge = np.clip(p, 0, None)
        discharge = np.clip(-p, 0, None)
        soc = battery.soc_initial_frac * battery.e_max_kwh + np.cumsum(
            dt * (battery.charge_efficiency * charge - discharge / battery.discharge_efficiency)
        )
        planned = plan.state["battery_soc_kwh"][battery.device_id].to_numpy()
        name = f"battery {battery.device_id}"
        check(bool(np.all(p <= battery.p_charge_max_kw + tolerance)), f"{name}: charge above limit")
        check(
            bool(np.all(-p <= battery.p_discharge_max_kw + tolerance)),
            f"{name}: discharge above limit",
        )
        # Netting charge and discharge can only raise the state of charge against the
        # plan's own (losses of simultaneous flows vanish): check the plan's SoC and ours.
        for label, trajectory in (("planned", planned), ("recomputed", soc)):
            check(
                bool(np.all(trajectory >= battery.soc_min_frac * battery.e_max_kwh - tolerance)),
                f"{name}: {label} SoC below minimum",
            )
        for label, trajectory in (("planned", planned), ("recomputed", soc)):
            check(
                bool(np.all(trajectory <= battery.soc_max_frac * battery.e_max_kwh + tolerance)),
                f"{name}: {label} SoC above maximum",
            )
        check(bool(np.all(soc >= planned - tolerance)), f"{name}: SoC does not follow the power")
        if battery.soc_final_min_frac is not None:
            check(
                planned[-1] >= battery.soc_final_min_frac * battery.e_max_kwh - tolerance,
                f"{name}: final SoC below target",
            )

    unmet = plan.state["ev_unmet_kwh"]
    for vehicle in problem.fleet.vehicles:
        window = vehicle_window(vehicle, problem.horizon)
        p = power[vehicle.device_id].to_numpy()
        name = f"EV {vehicle.device_id}"
        outside = np.ones(len(p), dtype=bool)
        outside[window.first : window.last] = False
        check(bool(np.all(np.abs(p[outside]) <= tolerance)), f"{name}: power while unplugged")
        check(bool(np.all(p <= vehicle.p_max_kw + tolerance)), f"{name}: charge above limit")
        check(bool(np.all(-p <= vehicle.v2g_p_max_kw + tolerance)), f"{name}: V2G above limit")
        added = float(
            np.sum(dt * (vehicle.charge_efficiency * np.clip(p, 0, None) - np.clip(-p, 0, None)))
        )
        # Net power hides simultaneous charge and discharge (noted on the plan, an LP
        # relaxation): then less energy is added than net power says.
        simultaneous = any(
            f"EV {vehicle.device_id} charged and discharged" in note for note in plan.notes
        )
        check(
            simultaneous or added <= window.energy_kwh + tolerance,
            f"{name}: more energy than required",
        )
        check(
            added + float(unmet.loc[vehicle.device_id]) >= window.energy_kwh - tolerance,
            f"{name}: energy {added:.6f} + unmet {float(unmet.loc[vehicle.device_id]):.6f} kWh "
            f"short of {window.energy_kwh:.6f} kWh",
        )

    for load, starts in zip(problem.fleet.shiftable_loads, data.shiftable_starts, strict=True):
        p = power[load.device_id].to_numpy()
        name = f"shiftable {load.device_id}"
        allowed = np.zeros(len(p), dtype=bool)
        allowed[starts.start : starts[-1] + len(load.profile_kw)] = True
        check(bool(np.all(np.abs(p[~allowed]) <= tolerance)), f"{name}: runs outside its window")
        check(
            abs(p.sum() - sum(load.profile_kw)) <= tolerance * len(p),
            f"{name}: energy {p.sum() * dt:.6f} kWh is not its run's",
        )
        check(bool(np.all(p >= -tolerance)), f"{name}: negative power")

    for c, curtailable in enumerate(problem.fleet.curtailable_loads):
        p = power[curtailable.device_id].to_numpy()
        shed = np.clip(data.curtail_baseline_kw[c] - p, 0, None)
        check(
            bool(np.all(shed <= data.curtail_max_kw[c] + tolerance)),
            f"curtailable {curtailable.device_id}: sheds more than allowed",
        )

    temps = plan.state["heat_pump_temp_c"]
    for h, pump in enumerate(problem.fleet.heat_pumps):
        p = power[pump.device_id].to_numpy()
        name = f"heat pump {pump.device_id}"
        check(
            bool(np.all((p >= -tolerance) & (p <= pump.p_max_kw + tolerance))),
            f"{name}: power out of range",
        )
        temp = pump.temp_initial_c
        recomputed = []
        for t in range(len(p)):
            temp = temp + dt / pump.thermal_capacity_kwh_per_c * (
                pump.cop * p[t] - pump.heat_loss_kw_per_c * (temp - data.heat_pump_outdoor_c[h][t])
            )
            recomputed.append(temp)
        check(
            bool(np.allclose(recomputed, temps[pump.device_id].to_numpy(), atol=1e-5)),
            f"{name}: temperature does not follow the power",
        )

    for p_index, system in enumerate(problem.fleet.pv_systems):
        p = power[system.device_id].to_numpy()
        forecast = data.pv_forecast_kw[p_index]
        check(
            bool(np.all(p >= -forecast - tolerance)), f"PV {system.device_id}: more than forecast"
        )
        check(bool(np.all(p <= tolerance)), f"PV {system.device_id}: draws power")
        if not system.curtailable:
            check(
                bool(np.allclose(p, -forecast, atol=tolerance)), f"PV {system.device_id}: curtailed"
            )

    net = data.site_base_kw.T.copy()
    for device in problem.fleet.devices():
        net[:, data.site_of[device.device_id]] += power[device.device_id].to_numpy()
    check(
        bool(np.allclose(net, plan.site_net_kw.to_numpy(), atol=1e-5)),
        "site net power is not the sum of its devices and base load",
    )
    violated = set(plan.violations_kw.columns)
    for s, site in enumerate(problem.fleet.sites):
        if f"site {site.site_id}" in violated:
            continue
        if site.import_max_kw is not None:
            check(
                bool(np.all(net[:, s] <= site.import_max_kw + tolerance)),
                f"site {site.site_id}: import limit",
            )
        if site.export_max_kw is not None:
            check(
                bool(np.all(-net[:, s] <= site.export_max_kw + tolerance)),
                f"site {site.site_id}: export limit",
            )
    feeder_net = plan.feeder_net_kw
    for feeder in problem.fleet.feeders:
        if f"feeder {feeder.feeder_id}" in violated or feeder.feeder_id not in feeder_net:
            continue
        values = feeder_net[feeder.feeder_id].to_numpy()
        if feeder.import_max_kw is not None:
            check(
                bool(np.all(values <= feeder.import_max_kw + tolerance)),
                f"feeder {feeder.feeder_id}: import",
            )
        if feeder.export_max_kw is not None:
            check(
                bool(np.all(-values <= feeder.export_max_kw + tolerance)),
                f"feeder {feeder.feeder_id}: export",
            )

    for outcome in plan.requests:
        gap = outcome.requested_kw - outcome.expected_kw
        if outcome.kind == "reduction":
            check(
                bool(np.all(gap.to_numpy() <= outcome.shortfall_kw.to_numpy() + 1e-5)),
                f"request {outcome.request_id}: shortfall understated",
            )
        else:
            check(
                bool(np.all(-gap.to_numpy() <= outcome.shortfall_kw.to_numpy() + 1e-5)),
                f"request {outcome.request_id}: excess over the cap understated",
            )
    return found
