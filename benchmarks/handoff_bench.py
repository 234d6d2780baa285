"""Pyomo → HiGHS hand-off: :func:`optimizer.highs.solve` against Pyomo's own HiGHS interface.

A fleet of fictional batteries over one day of 15-minute intervals, built with Pyomo
the obvious way (indexed variables and rule-based constraints). Each device has
charge and discharge power (kW) and stored energy (kWh) per interval, an energy
balance per interval, power and energy bounds, and must end the day with at least
its starting energy. One constraint per interval couples the fleet: during the
evening event the fleet must deliver a net discharge of 20 % of its power rating, and
at other times it may import at most half of it (a feeder limit).
The objective is the energy bill at a time-of-use price plus a small wear cost.

For each fleet size one JSON line is printed:

- ``model_s``: building the Pyomo model (not part of either hand-off);
- ``build_s``, ``handoff_s``, ``solve_s``, ``total_s``: standard-form compilation,
  arrays plus ``passModel``, the HiGHS run, and the whole :func:`solve` call
  (including loading values and duals back) of :mod:`optimizer.highs`;
- ``pyomo_total_s``: one ``solve`` call of Pyomo's HiGHS interface
  (``pyomo.contrib.solver``) on a fresh copy of the model, or null above
  ``--pyomo-max`` devices (its hand-off grows with the square of the model);
- ``pyomo_handoff_s``: the same call on another fresh copy with a HiGHS time limit
  of 0 s, so that HiGHS stops at once: Pyomo's hand-off and result handling alone;
- both objectives (currency), which must agree.

Usage: ``python benchmarks/handoff_bench.py [--devices 100 1000 3000] [--pyomo-max 1000]``
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory

from optimizer.highs import solve

INTERVALS = 96
HOURS_PER_INTERVAL = 0.25
EFFICIENCY = 0.95  # one-way, charge and discharge
WEAR_COST = 0.002  # currency per kWh moved through the battery
EVENT = range(68, 80)  # 17:00 to 20:00


def build_fleet(devices: int, seed: int = 1) -> pyo.ConcreteModel:
    """The fleet model; ratings vary by device, prices by interval.

    Parameters
    ----------
    devices : int
        Number of batteries.
    seed : int
        Seed of the random ratings, so that every run builds the same model.
    """
    rng = np.random.default_rng(seed)
    power_kw = rng.choice([3.3, 5.0, 7.0, 10.0], size=devices)
    capacity_kwh = power_kw * rng.uniform(1.5, 3.0, size=devices)
    start_kwh = capacity_kwh * rng.uniform(0.3, 0.7, size=devices)
    hours = np.arange(INTERVALS) * HOURS_PER_INTERVAL
    price = 0.20 + 0.10 * np.sin((hours - 8.0) / 24.0 * 2.0 * np.pi)
    event_target_kw = 0.2 * float(power_kw.sum())
    feeder_limit_kw = 0.5 * float(power_kw.sum())

    model = pyo.ConcreteModel()
    model.devices = pyo.RangeSet(0, devices - 1)
    model.intervals = pyo.RangeSet(0, INTERVALS - 1)
    model.charge = pyo.Var(
        model.devices, model.intervals, bounds=lambda m, d, t: (0.0, float(power_kw[d]))
    )
    model.discharge = pyo.Var(
        model.devices, model.intervals, bounds=lambda m, d, t: (0.0, float(power_kw[d]))
    )
    model.energy = pyo.Var(
        model.devices, model.intervals, bounds=lambda m, d, t: (0.0, float(capacity_kwh[d]))
    )

    def balance(m: Any, d: int, t: int) -> Any:
        before = m.energy[d, t - 1] if t > 0 else float(start_kwh[d])
        return m.energy[d, t] == before + HOURS_PER_INTERVAL * (
            EFFICIENCY * m.charge[d, t] - m.discharge[d, t] / EFFICIENCY
        )

    model.balance = pyo.Constraint(model.devices, model.intervals, rule=balance)
    model.end_of_day = pyo.Constraint(
        model.devices, rule=lambda m, d: m.energy[d, INTERVALS - 1] >= float(start_kwh[d])
    )

    def fleet(m: Any, t: int) -> Any:
        net_discharge = sum(m.discharge[d, t] - m.charge[d, t] for d in m.devices)
        return net_discharge >= (event_target_kw if t in EVENT else -feeder_limit_kw)

    model.fleet = pyo.Constraint(model.intervals, rule=fleet)
    model.bill = pyo.Objective(
        expr=sum(
            HOURS_PER_INTERVAL
            * (
                float(price[t]) * (model.charge[d, t] - model.discharge[d, t])
                + WEAR_COST * (model.charge[d, t] + model.discharge[d, t])
            )
            for d in model.devices
            for t in model.intervals
        )
    )
    return model


def bench(devices: int, pyomo_max: int) -> dict[str, Any]:
    """Time both hand-offs for one fleet size; figures in seconds and currency."""
    started = time.perf_counter()
    model = build_fleet(devices)
    model_s = time.perf_counter() - started

    started = time.perf_counter()
    result = solve(model)
    total_s = time.perf_counter() - started
    if not result.feasible:
        raise RuntimeError(f"{devices} devices: {result.status}")

    row: dict[str, Any] = {
        "devices": devices,
        "columns": result.columns,
        "rows": result.rows,
        "nonzeros": result.nonzeros,
        "model_s": round(model_s, 3),
        "build_s": round(result.build_s, 3),
        "handoff_s": round(result.handoff_s, 3),
        "solve_s": round(result.solve_s, 3),
        "total_s": round(total_s, 3),
        "objective": result.objective,
        "pyomo_total_s": None,
        "pyomo_handoff_s": None,
        "pyomo_objective": None,
    }
    if devices <= pyomo_max:
        reference = build_fleet(devices)
        started = time.perf_counter()
        SolverFactory("highs").solve(reference)
        row["pyomo_total_s"] = round(time.perf_counter() - started, 3)
        row["pyomo_objective"] = pyo.value(reference.bill)
        stopped = build_fleet(devices)
        started = time.perf_counter()
        SolverFactory("highs").solve(
            stopped,
            time_limit=0.0,
            load_solutions=False,
            raise_exception_on_nonoptimal_result=False,
        )
        row["pyomo_handoff_s"] = round(time.perf_counter() - started, 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Time optimizer.highs.solve against Pyomo's HiGHS interface."
    )
    parser.add_argument("--devices", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument(
        "--pyomo-max",
        type=int,
        default=1000,
        help="largest fleet also solved through Pyomo's HiGHS interface",
    )
    arguments = parser.parse_args()
    bench(2, pyomo_max=2)  # warm-up: lazy imports (scipy, solver plugins) and HiGHS start
    for devices in arguments.devices:
        print(json.dumps(bench(devices, arguments.pyomo_max)), flush=True)


if __name__ == "__main__":
    main()
