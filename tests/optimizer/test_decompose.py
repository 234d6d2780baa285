"""The decomposed fleet path: feasible everywhere, close to the whole-LP optimum."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from benchmarks.scaling_fleet import scaling_problem
from optimizer.checks import residuals
from optimizer.costs import evaluate_costs, feeder_violation, request_shortfall
from optimizer.decompose import coupling_rows, partition, plan_decomposed
from optimizer.prepare import prepare
from optimizer.results import plan
from tests.optimizer.test_formulations import mixed_problem


@pytest.mark.parametrize(("devices", "seed"), [(100, 0), (300, 1)])
def test_decomposed_plan_is_feasible_and_within_one_percent(devices: int, seed: int) -> None:
    problem = scaling_problem(devices, seed)
    whole = plan(problem, method="arrays")
    parts = plan(problem, method="decomposed", chunk_devices=24)
    assert residuals(problem, parts) == []
    assert parts.requests[0].shortfall_kwh == pytest.approx(0.0, abs=1e-6)
    # One feasible split of the coupling rows: never cheaper than the optimum.
    assert parts.objective >= whole.objective - 1e-6
    assert (parts.objective - whole.objective) / abs(whole.objective) <= 0.01
    assert sum(parts.costs.values()) == pytest.approx(parts.objective)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_plan_kept_is_the_plan_priced(seed: int) -> None:
    # Rounds write over the arrays of plans no longer needed: the one returned must
    # still be the one its objective prices.
    problem = scaling_problem(300, seed)
    data, solution = plan_decomposed(problem, chunk_devices=24, rounds=4)
    assert solution.timings_s["rounds"] >= 1
    costs = evaluate_costs(
        data,
        battery_charge_kw=solution.battery_charge_kw,
        battery_discharge_kw=solution.battery_discharge_kw,
        ev_discharge_kw=solution.ev_discharge_kw,
        ev_unmet_kwh=solution.ev_unmet_kwh,
        curtail_kw=solution.curtail_kw,
        heat_pump_temp_c=solution.heat_pump_temp_c,
        site_net_kw=solution.site_net_kw,
        site_violation_kw=solution.site_violation_kw,
        feeder_violation_kw=feeder_violation(data, solution.site_net_kw),
        shortfall_kw=[
            request_shortfall(data, solution.power_kw, r) for r in range(len(data.scopes))
        ],
    )
    assert sum(costs.values()) == pytest.approx(solution.objective, rel=1e-9)


def test_every_coupling_row_is_fully_allocated() -> None:
    data = prepare(scaling_problem(150, 2))
    chunks = partition(data, 24)
    assert sorted(i for c in chunks for i in c.devices) == list(range(150))
    assert all(len({data.site_feeder[s] for s in c.sites}) == 1 for c in chunks)
    for row in coupling_rows(data, chunks):
        assert row.share_kw.sum() == pytest.approx(row.need_kw)


def test_mixed_fleet_with_caps_and_split_feeders() -> None:
    problem = mixed_problem(integer=False)
    whole = plan(problem, method="arrays")
    parts = plan(problem, method="decomposed", chunk_devices=2)
    assert residuals(problem, parts) == []
    assert parts.objective >= whole.objective - 1e-6
    assert len(parts.requests) == 2
    assert parts.requests[0].shortfall_kwh == pytest.approx(
        whole.requests[0].shortfall_kwh, abs=0.5
    )


def test_chunks_solve_in_other_processes() -> None:
    problem = scaling_problem(80, 4)
    with ProcessPoolExecutor(max_workers=2) as pool:

        def mapper(function: Any, items: Any) -> Any:
            return list(pool.map(function, items))

        parallel = plan(problem, method="decomposed", map_function=mapper)
    serial = plan(problem, method="decomposed")
    assert parallel.objective == pytest.approx(serial.objective, rel=1e-9)


def test_integer_problems_are_refused() -> None:
    with pytest.raises(ValueError, match="integer"):
        plan(mixed_problem(integer=True), method="decomposed")
