"""The array path and the Pyomo model are one formulation: same optimum, same plan."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.scaling_fleet import scaling_problem
from optimizer.checks import residuals
from optimizer.devices import (
    Battery,
    CurtailableLoad,
    ElectricVehicle,
    Feeder,
    Fleet,
    HeatPump,
    PhotovoltaicSystem,
    ShiftableLoad,
    Site,
)
from optimizer.problem import CapacityRequest, Horizon, Prices, Problem
from optimizer.results import plan

START = pd.Timestamp("2026-11-21T00:00Z")


def mixed_problem(integer: bool) -> Problem:
    """Every kind of device, site and feeder limits, a reduction and a cap request."""
    steps = 24
    at = lambda h: START + pd.Timedelta(hours=h)  # noqa: E731
    hours = np.arange(steps)
    fleet = Fleet(
        sites=(
            Site(
                "a",
                "F-1",
                import_max_kw=12.0,
                export_max_kw=4.0,
                base_load_kw=1 + np.sin(hours / 4),
            ),
            Site("b", "F-1", base_load_kw=[0.5] * steps),
            Site("c", "F-2", import_max_kw=9.0),
        ),
        feeders=(
            Feeder("F-1", region="North", import_max_kw=15.0),
            Feeder("F-2", region="North", export_max_kw=3.0),
        ),
        batteries=(
            Battery("bat-a", "a", 5.0, 5.0, 13.5, soc_initial_frac=0.6, soc_final_min_frac=0.5),
            Battery("bat-c", "c", 3.0, 4.0, 8.0, soc_initial_frac=0.2, delivery_factor=0.8),
        ),
        vehicles=(
            ElectricVehicle("ev-b", "b", at(2), at(10), 7.4, 20.0),
            ElectricVehicle(
                "ev-c", "c", at(15), at(30), 11.0, 30.0, v2g_p_max_kw=5.0, e_max_kwh=60.0
            ),
        ),
        shiftable_loads=(
            ShiftableLoad("pump", "a", (1.5,) * 4, at(0), at(12), contiguous=True),
            ShiftableLoad("dish", "b", (1.2, 0.8), at(5), at(20), contiguous=False),
        ),
        curtailable_loads=(
            CurtailableLoad("hvac", "b", [2.0] * steps, max_curtail_frac=0.4, max_event_h=2.0),
        ),
        heat_pumps=(
            HeatPump(
                "hp", "c", 3.0, 3.2, 6.0, 0.25, 2 + 3 * np.cos(hours / 6), temp_initial_c=20.5
            ),
        ),
        pv_systems=(
            PhotovoltaicSystem("pv", "a", np.clip(6 * np.sin((hours - 6) / 12 * np.pi), 0, None)),
        ),
    )
    prices = Prices(
        import_price_per_kwh=0.1 + 0.1 * (hours >= 17),
        export_price_per_kwh=0.05 - 0.1 * ((hours >= 11) & (hours <= 13)),
        demand_charge_per_kw=0.3,
    )
    requests = (
        CapacityRequest("cut", at(17), at(20), feeder="F-1", kw=4.0, shortfall_price_per_kwh=2.0),
        CapacityRequest(
            "cap", at(18), at(21), region="North", cap_kw=10.0, shortfall_price_per_kwh=1.0
        ),
    )
    return Problem(
        Horizon(START, steps, pd.Timedelta("1h")), fleet, prices, requests, integer=integer
    )


@pytest.mark.parametrize("integer", [False, True], ids=["lp", "milp"])
def test_both_paths_agree_on_a_mixed_fleet(integer: bool) -> None:
    problem = mixed_problem(integer)
    arrays = plan(problem, method="arrays", mip_gap=1e-9)
    pyomo = plan(problem, method="pyomo", mip_gap=1e-9)
    assert residuals(problem, arrays) == [] and residuals(problem, pyomo) == []
    assert arrays.objective == pytest.approx(pyomo.objective, rel=1e-7, abs=1e-7)
    # Same cost terms; their split may differ between alternative optima, their sum not.
    assert arrays.costs.keys() == pyomo.costs.keys()
    assert sum(arrays.costs.values()) == pytest.approx(arrays.objective, rel=1e-7, abs=1e-7)
    assert sum(pyomo.costs.values()) == pytest.approx(pyomo.objective, rel=1e-7, abs=1e-7)
    for a, b in zip(arrays.requests, pyomo.requests, strict=True):
        assert a.shortfall_kwh == pytest.approx(b.shortfall_kwh, abs=1e-6)


def test_both_paths_agree_on_a_coupled_fleet() -> None:
    problem = scaling_problem(60, seed=3)
    arrays = plan(problem, method="arrays")
    pyomo = plan(problem, method="pyomo")
    assert residuals(problem, arrays) == []
    assert arrays.objective == pytest.approx(pyomo.objective, rel=1e-7)
    assert arrays.requests[0].shortfall_kwh == pytest.approx(
        pyomo.requests[0].shortfall_kwh, abs=1e-6
    )
