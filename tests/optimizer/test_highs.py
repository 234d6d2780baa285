"""Tests of the linear-time Pyomo → HiGHS hand-off in :mod:`optimizer.highs`.

The small models have optima and duals derived by hand in the comments; the medium
random LP is checked against Pyomo's own HiGHS interface; the hand-off's linearity is
pinned by counting HiGHS API calls for two model sizes instead of timing them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
import pytest
from pyomo.common.errors import InvalidConstraintError
from pyomo.contrib.solver.common.factory import SolverFactory

from optimizer.highs import HighsResult, solve


def duals_by_name(model: pyo.ConcreteModel) -> dict[str, float]:
    return {constraint.name: value for constraint, value in model.dual.items()}


# --- tiny LP --------------------------------------------------------------------------


def tiny_lp() -> pyo.ConcreteModel:
    """min 2x + 3y s.t. x + y >= 4, x <= 3, y <= 10 (bound)."""
    model = pyo.ConcreteModel()
    model.x = pyo.Var()
    model.y = pyo.Var(bounds=(None, 10))
    model.cover = pyo.Constraint(expr=model.x + model.y >= 4)
    model.cap = pyo.Constraint(expr=model.x <= 3)
    model.cost = pyo.Objective(expr=2 * model.x + 3 * model.y)
    return model


def test_tiny_lp_primal_objective_and_duals() -> None:
    # x is cheaper, so it takes all it may (3) and y covers the rest (1): 2·3 + 3·1 = 9.
    # One more unit to cover costs one more y: dual 3. One more unit of x's cap replaces
    # a y (3) by an x (2): dual -1, <= 0 as Pyomo's convention for a binding <= wants.
    model = tiny_lp()
    result = solve(model)
    assert result.status == "optimal"
    assert result.feasible
    assert result.objective == pytest.approx(9.0)
    assert result.mip_gap == 0.0
    assert (result.columns, result.rows, result.nonzeros) == (2, 2, 3)
    assert model.x.value == pytest.approx(3.0)
    assert model.y.value == pytest.approx(1.0)
    assert duals_by_name(model) == pytest.approx({"cover": 3.0, "cap": -1.0})
    assert result.build_s >= 0 and result.handoff_s >= 0 and result.solve_s >= 0


def test_tiny_lp_maximization_reports_its_own_sense() -> None:
    # max -(2x + 3y): the same point, objective -9, and every dual negated, because the
    # derivative of -(cost) with respect to each right-hand side is the negated one.
    model = tiny_lp()
    model.cost.deactivate()
    model.profit = pyo.Objective(expr=-2 * model.x - 3 * model.y, sense=pyo.maximize)
    result = solve(model)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(-9.0)
    assert (model.x.value, model.y.value) == pytest.approx((3.0, 1.0))
    assert duals_by_name(model) == pytest.approx({"cover": -3.0, "cap": 1.0})


# --- equality, ranged constraint, fixed and unused variables, offset ------------------


def mixed_lp(cost_x: float, cost_y: float, sense: Any = pyo.minimize) -> pyo.ConcreteModel:
    """An LP with every kind of row and variable the hand-off must map.

    min  cost_x·x + cost_y·y + 0.5·w + 5 + 3·z
    s.t. x + y + z == 6          (equality; z is fixed at 2, so x + y == 4)
         1 <= x - y <= 2         (ranged)
         w - x >= -3             (w is free and wants to go down: w = x - 3)
         z <= 5                  (only a fixed variable: the compiler drops it)
         x, y >= 0; u appears nowhere.
    With ``sense=maximize`` the objective is negated, so the optimum is the same point.
    """
    sign = 1.0 if sense == pyo.minimize else -1.0
    model = pyo.ConcreteModel()
    model.x = pyo.Var(domain=pyo.NonNegativeReals)
    model.y = pyo.Var(domain=pyo.NonNegativeReals)
    model.w = pyo.Var()
    model.z = pyo.Var(initialize=2.0)
    model.z.fix()
    model.u = pyo.Var(bounds=(0, 1), initialize=42.0)
    model.balance = pyo.Constraint(expr=model.x + model.y + model.z == 6)
    model.spread = pyo.Constraint(expr=pyo.inequality(1, model.x - model.y, 2))
    model.follow = pyo.Constraint(expr=model.w - model.x >= -3)
    model.fixed_only = pyo.Constraint(expr=model.z <= 5)
    model.objective = pyo.Objective(
        expr=sign * (cost_x * model.x + cost_y * model.y + 0.5 * model.w + 5 + 3 * model.z),
        sense=sense,
    )
    return model


@pytest.mark.parametrize("sense", [pyo.minimize, pyo.maximize])
def test_ranged_constraint_at_its_upper_bound(sense: Any) -> None:
    # With w = x - 3 and y = 4 - x the cost is x + 2(4 - x) + 0.5(x - 3) = 6.5 - 0.5x,
    # so x rises until x - y = 2: x = 3, y = 1, w = 0; 3 + 2 + 0 + 5 + 6 = 16.
    # Duals, moving one right-hand side by d:
    #   balance (x + y = 4 + d, x - y = 2): x, y each +d/2 → 1.5·d/2 + 2·d/2 = 1.75 d
    #   spread upper (x - y = 2 + d): x +d/2, y -d/2 → 1.5·d/2 - 2·d/2 = -0.25 d
    #   follow (w = x - 3 + d): 0.5 d
    #   fixed_only: dropped by the compiler (no unfixed variable) → 0.
    model = mixed_lp(1.0, 2.0, sense)
    sign = 1.0 if sense == pyo.minimize else -1.0
    result = solve(model)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(sign * 16.0)
    assert (result.columns, result.rows) == (3, 3)  # the ranged pair is one HiGHS row
    assert (model.x.value, model.y.value, model.w.value) == pytest.approx((3.0, 1.0, 0.0))
    assert model.z.value == 2.0 and model.z.fixed
    assert model.u.value == 42.0  # not part of the problem: left as it was
    assert duals_by_name(model) == pytest.approx(
        {
            "balance": sign * 1.75,
            "spread": sign * -0.25,
            "follow": sign * 0.5,
            "fixed_only": 0.0,
        }
    )


def test_ranged_constraint_at_its_lower_bound() -> None:
    # Costs 2 and 1: 2x + (4 - x) + 0.5(x - 3) = 2.5 + 1.5x, so x falls until x - y = 1:
    # x = 2.5, y = 1.5, w = -0.5; 5 + 1.5 - 0.25 + 5 + 6 = 17.25.
    #   balance: x, y each +d/2 → 2.5·d/2 + 1·d/2 = 1.75 d
    #   spread lower (x - y = 1 + d): x +d/2, y -d/2 → 2.5·d/2 - d/2 = 0.75 d (>= 0)
    #   follow: 0.5 d
    model = mixed_lp(2.0, 1.0)
    result = solve(model)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(17.25)
    assert (model.x.value, model.y.value, model.w.value) == pytest.approx((2.5, 1.5, -0.5))
    assert duals_by_name(model) == pytest.approx(
        {"balance": 1.75, "spread": 0.75, "follow": 0.5, "fixed_only": 0.0}
    )


def test_ranged_constraint_agrees_with_pyomo_highs() -> None:
    for cost_x, cost_y in [(1.0, 2.0), (2.0, 1.0)]:
        ours = mixed_lp(cost_x, cost_y)
        solve(ours)
        theirs = mixed_lp(cost_x, cost_y)
        theirs.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
        SolverFactory("highs").solve(theirs)
        for name in ("balance", "spread", "follow"):
            assert ours.dual[ours.component(name)] == pytest.approx(
                theirs.dual[theirs.component(name)]
            )


def test_model_with_only_fixed_variables_is_its_offset() -> None:
    model = pyo.ConcreteModel()
    model.z = pyo.Var(initialize=2.0)
    model.z.fix()
    model.limit = pyo.Constraint(expr=model.z <= 3)
    model.objective = pyo.Objective(expr=4 * model.z + 1, sense=pyo.maximize)
    result = solve(model)
    assert result.status == "optimal"
    assert result.feasible
    assert result.objective == pytest.approx(9.0)
    assert result.columns == 0
    assert duals_by_name(model) == {"limit": 0.0}


def test_violated_constraint_of_fixed_variables_is_infeasible() -> None:
    model = pyo.ConcreteModel()
    model.z = pyo.Var(initialize=4.0)
    model.z.fix()
    model.x = pyo.Var(bounds=(0, 1), initialize=0.5)
    model.limit = pyo.Constraint(expr=model.z <= 3)
    model.objective = pyo.Objective(expr=model.x)
    result = solve(model)
    assert (result.status, result.feasible, result.objective) == ("infeasible", False, None)
    assert model.x.value == 0.5


# --- MIP ------------------------------------------------------------------------------


def knapsack() -> pyo.ConcreteModel:
    """Weights 12, 2, 1, 1, 4; values 4, 2, 1, 2, 10; capacity 15.

    Everything but the heavy item weighs 8 and is worth 15. With the heavy item (12)
    only 3 more weight fits, at best the items of weight 2 and 1 worth 2 + 2: 4 + 4 = 8.
    So 15 is the optimum.
    """
    weights = [12, 2, 1, 1, 4]
    values = [4, 2, 1, 2, 10]
    model = pyo.ConcreteModel()
    model.goods = pyo.RangeSet(0, 4)
    model.take = pyo.Var(model.goods, domain=pyo.Binary)
    model.capacity = pyo.Constraint(expr=sum(weights[i] * model.take[i] for i in model.goods) <= 15)
    model.value = pyo.Objective(
        expr=sum(values[i] * model.take[i] for i in model.goods), sense=pyo.maximize
    )
    return model


def test_knapsack_optimum() -> None:
    model = knapsack()
    result = solve(model)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(15.0)
    assert result.mip_gap is not None and result.mip_gap <= 1e-4
    taken = [round(model.take[i].value) for i in model.goods]
    assert taken == [0, 1, 1, 1, 1]
    assert model.component("dual") is None  # no duals for a MIP


def test_general_integer_bounds_come_from_domain_and_bounds() -> None:
    # max x + y, x ∈ {0..7} (NonNegativeIntegers with ub 7.5), y ∈ {-3..-1}, x + 2y <= 4.6:
    # y = -1 gives x <= 6.6 → 6, total 5; y = -2: x <= 7 (ub) → 5 total; so 5 with y = -1.
    model = pyo.ConcreteModel()
    model.x = pyo.Var(domain=pyo.NonNegativeIntegers, bounds=(None, 7.5))
    model.y = pyo.Var(domain=pyo.NegativeIntegers, bounds=(-3, None))
    model.limit = pyo.Constraint(expr=model.x + 2 * model.y <= 4.6)
    model.total = pyo.Objective(expr=model.x + model.y, sense=pyo.maximize)
    result = solve(model)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(5.0)
    assert model.x.value + 2 * model.y.value <= 4.6 + 1e-9
    assert model.y.value <= -1 + 1e-9


def multidimensional_knapsack(items: int, dimensions: int, seed: int) -> pyo.ConcreteModel:
    """A random 0-1 multidimensional knapsack, hard enough to outlast a short time limit."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(1, 1000, (dimensions, items))
    capacity = weights.sum(axis=1) // 2
    values = weights.sum(axis=0) // dimensions + rng.integers(0, 100, items)
    model = pyo.ConcreteModel()
    model.take = pyo.Var(range(items), domain=pyo.Binary, initialize=0)
    model.capacity = pyo.Constraint(
        range(dimensions),
        rule=lambda m, d: (
            sum(int(weights[d, i]) * m.take[i] for i in range(items)) <= int(capacity[d])
        ),
    )
    model.value = pyo.Objective(
        expr=sum(int(values[i]) * model.take[i] for i in range(items)), sense=pyo.maximize
    )
    return model


def test_mip_stopped_by_time_limit_returns_its_incumbent() -> None:
    model = multidimensional_knapsack(100, 10, seed=1)
    result = solve(model, time_limit_s=0.5)
    assert result.status == "time_limit"
    assert result.feasible
    assert result.mip_gap is not None and 0 < result.mip_gap < 1
    assert result.objective == pytest.approx(pyo.value(model.value))
    for constraint in model.capacity.values():
        assert pyo.value(constraint.body) <= constraint.upper + 1e-6


def test_mip_gap_option_stops_early() -> None:
    model = multidimensional_knapsack(100, 10, seed=1)
    result = solve(model, mip_gap=0.05)
    assert result.status == "optimal"  # HiGHS calls a solve within the gap optimal
    assert result.mip_gap is not None and result.mip_gap <= 0.05


# --- infeasible, unbounded, limits ----------------------------------------------------


def infeasible_lp() -> pyo.ConcreteModel:
    model = pyo.ConcreteModel()
    model.x = pyo.Var(domain=pyo.NonNegativeReals, initialize=7.0)
    model.y = pyo.Var(domain=pyo.NonNegativeReals, initialize=8.0)
    model.low = pyo.Constraint(expr=model.x + model.y <= 1)
    model.high = pyo.Constraint(expr=model.x + model.y >= 2)
    model.objective = pyo.Objective(expr=model.x)
    return model


def unbounded_lp() -> pyo.ConcreteModel:
    model = pyo.ConcreteModel()
    model.x = pyo.Var(domain=pyo.NonNegativeReals, initialize=7.0)
    model.y = pyo.Var(initialize=8.0)
    model.limit = pyo.Constraint(expr=model.x - model.y <= 1)
    model.objective = pyo.Objective(expr=model.x + model.y, sense=pyo.maximize)
    return model


@pytest.mark.parametrize(
    ("build", "status"), [(infeasible_lp, "infeasible"), (unbounded_lp, "unbounded")]
)
def test_infeasible_and_unbounded_leave_values_untouched(build: Any, status: str) -> None:
    model = build()
    result = solve(model)
    assert result.status == status
    assert not result.feasible
    assert result.objective is None and result.mip_gap is None
    assert (model.x.value, model.y.value) == (7.0, 8.0)
    assert model.component("dual") is None


def test_infeasible_mip_leaves_values_untouched() -> None:
    model = pyo.ConcreteModel()
    model.x = pyo.Var(domain=pyo.Integers, initialize=3)
    model.half = pyo.Constraint(expr=pyo.inequality(0.2, 2 * model.x, 0.8))
    model.objective = pyo.Objective(expr=model.x)
    result = solve(model)
    assert (result.status, result.feasible) == ("infeasible", False)
    assert model.x.value == 3


def test_inconsistent_bounds_are_infeasible() -> None:
    model = pyo.ConcreteModel()
    model.low = pyo.Param(mutable=True, initialize=5.0)
    model.x = pyo.Var(initialize=1.5)
    model.y = pyo.Var(bounds=(2, 1), initialize=1.5)
    model.window = pyo.Constraint(expr=(model.low, model.x, 1.0))
    model.objective = pyo.Objective(expr=model.x + model.y)
    assert solve(model).status == "infeasible"
    model.low = 0.0
    assert solve(model).status == "infeasible"  # y's bounds still cross
    assert model.x.value == 1.5


def covering_lp(columns: int, rows: int, seed: int) -> pyo.ConcreteModel:
    """min c·x s.t. A x >= 5, 0 <= x <= 10: HiGHS's starting point x = 0 is infeasible."""
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(0, 1, (rows, columns)) * (rng.uniform(size=(rows, columns)) < 0.1)
    model = pyo.ConcreteModel()
    model.x = pyo.Var(range(columns), bounds=(0, 10))
    model.cover = pyo.Constraint(
        range(rows),
        rule=lambda m, i: sum(matrix[i, j] * m.x[j] for j in np.flatnonzero(matrix[i])) >= 5,
    )
    cost = rng.uniform(1, 2, columns)
    model.cost = pyo.Objective(expr=sum(cost[j] * model.x[j] for j in range(columns)))
    return model


def test_lp_stopped_without_a_solution_is_not_feasible() -> None:
    model = covering_lp(200, 100, seed=0)
    result = solve(model, time_limit_s=0.0)
    assert result.status == "time_limit_no_solution"
    assert not result.feasible
    assert result.objective is None and result.mip_gap is None
    assert model.x[0].value is None
    assert model.component("dual") is None


# --- options --------------------------------------------------------------------------


def test_load_solution_and_duals_can_be_turned_off() -> None:
    model = tiny_lp()
    result = solve(model, load_solution=False)
    assert result.objective == pytest.approx(9.0)
    assert model.x.value is None
    assert model.component("dual") is None
    solve(model, duals=False)
    assert model.x.value == pytest.approx(3.0)
    assert model.component("dual") is None


def test_existing_dual_suffix_is_reused() -> None:
    model = tiny_lp()
    model.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    solve(model)
    assert duals_by_name(model) == pytest.approx({"cover": 3.0, "cap": -1.0})


def test_silent_unless_log(capfd: pytest.CaptureFixture[str]) -> None:
    solve(tiny_lp())
    assert capfd.readouterr().out == ""
    solve(tiny_lp(), log=True)
    assert "HiGHS" in capfd.readouterr().out


def test_threads_option_can_change_between_solves() -> None:
    # HiGHS keeps one thread pool per process and refuses a different thread count
    # unless that pool is reset; solve() resets it when threads is given.
    for threads in (1, 2, 1):
        assert solve(tiny_lp(), threads=threads).status == "optimal"
    assert solve(tiny_lp()).status == "optimal"


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="time_limit_s"):
        solve(tiny_lp(), time_limit_s=-1.0)
    with pytest.raises(ValueError, match="mip_gap"):
        solve(tiny_lp(), mip_gap=-0.1)
    two_objectives = tiny_lp()
    two_objectives.other = pyo.Objective(expr=two_objectives.x)
    with pytest.raises(ValueError, match="exactly one active objective"):
        solve(two_objectives)
    even = tiny_lp()
    even.steps = pyo.RangeSet(0, 10, 2)
    even.s = pyo.Var(within=even.steps)
    even.uses_s = pyo.Constraint(expr=even.s + even.x <= 20)
    with pytest.raises(ValueError, match="unit step"):
        solve(even)
    curved = tiny_lp()
    curved.curve = pyo.Constraint(expr=curved.x**2 <= 4)
    with pytest.raises(InvalidConstraintError):
        solve(curved)


# --- agreement with Pyomo's own HiGHS interface on a medium random LP -----------------


def random_lp(columns: int, rows: int, seed: int) -> pyo.ConcreteModel:
    """A feasible, bounded random LP with every row kind, built around a known point.

    Rows are <=, >=, == and ranged in turn; each holds at a random point x0 inside the
    column bounds, so the LP is feasible, and the boxes make it bounded. Random data
    make the optimum unique (almost surely), so primal values can be compared.
    Constraints live on a sub-block to exercise dual storage for nested components.
    """
    rng = np.random.default_rng(seed)
    lower = rng.uniform(-5, 0, columns)
    upper = rng.uniform(1, 10, columns)
    x0 = rng.uniform(lower, upper)
    model = pyo.ConcreteModel()
    model.x = pyo.Var(range(columns), bounds=lambda m, j: (float(lower[j]), float(upper[j])))
    model.rows = pyo.Block()
    coefficients = {}
    for i in range(rows):
        support = rng.choice(columns, size=8, replace=False)
        coefficients[i] = (support, rng.normal(size=8))

    def row(block: Any, i: int) -> Any:
        support, values = coefficients[i]
        body = sum(float(v) * model.x[int(j)] for j, v in zip(support, values, strict=True))
        at_x0 = float(values @ x0[support])
        kind = i % 4
        if kind == 0:
            return body <= at_x0 + rng.uniform(0, 1)
        if kind == 1:
            return body >= at_x0 - rng.uniform(0, 1)
        if kind == 2 and i % 40 == 2:
            return body == at_x0
        return pyo.inequality(at_x0 - rng.uniform(0, 1), body, at_x0 + rng.uniform(0, 1))

    model.rows.constraint = pyo.Constraint(range(rows), rule=row)
    cost = rng.normal(size=columns)
    model.objective = pyo.Objective(
        expr=sum(float(cost[j]) * model.x[j] for j in range(columns)) + 12.5
    )
    return model


def test_medium_random_lp_matches_pyomo_highs() -> None:
    ours = random_lp(400, 200, seed=7)
    result = solve(ours)
    theirs = random_lp(400, 200, seed=7)
    theirs.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    SolverFactory("highs").solve(theirs)

    assert result.status == "optimal"
    assert result.objective == pytest.approx(pyo.value(theirs.objective), rel=1e-6, abs=1e-6)
    ours_x = np.array([ours.x[j].value for j in range(400)])
    theirs_x = np.array([theirs.x[j].value for j in range(400)])
    np.testing.assert_allclose(ours_x, theirs_x, rtol=1e-6, atol=1e-6)
    ours_duals = np.array([ours.dual[c] for c in ours.rows.constraint.values()])
    theirs_duals = np.array([theirs.dual[c] for c in theirs.rows.constraint.values()])
    np.testing.assert_allclose(ours_duals, theirs_duals, rtol=1e-6, atol=1e-6)
    assert np.any(ours_duals > 1e-6) and np.any(ours_duals < -1e-6)


# --- linearity of the hand-off, without timing ----------------------------------------


def fleet_mip(devices: int, intervals: int = 8) -> pyo.ConcreteModel:
    """Batteries that either charge or discharge (a binary mode), meeting a fleet target."""
    model = pyo.ConcreteModel()
    model.devices = pyo.RangeSet(0, devices - 1)
    model.intervals = pyo.RangeSet(0, intervals - 1)
    model.charge = pyo.Var(model.devices, model.intervals, bounds=(0, 5))
    model.discharge = pyo.Var(model.devices, model.intervals, bounds=(0, 5))
    model.energy = pyo.Var(model.devices, model.intervals, bounds=(0, 10))
    model.charging = pyo.Var(model.devices, model.intervals, domain=pyo.Binary)

    def balance(m: Any, d: int, t: int) -> Any:
        before = m.energy[d, t - 1] if t > 0 else 5.0
        return m.energy[d, t] == before + 0.95 * m.charge[d, t] - m.discharge[d, t] / 0.95

    model.balance = pyo.Constraint(model.devices, model.intervals, rule=balance)
    model.charge_mode = pyo.Constraint(
        model.devices, model.intervals, rule=lambda m, d, t: m.charge[d, t] <= 5 * m.charging[d, t]
    )
    model.discharge_mode = pyo.Constraint(
        model.devices,
        model.intervals,
        rule=lambda m, d, t: m.discharge[d, t] <= 5 * (1 - m.charging[d, t]),
    )
    model.target = pyo.Constraint(
        model.intervals,
        rule=lambda m, t: pyo.inequality(
            -devices, sum(m.discharge[d, t] - m.charge[d, t] for d in m.devices), devices
        ),
    )
    price = [0.1 + 0.05 * (t % 4) for t in range(intervals)]
    model.cost = pyo.Objective(
        expr=sum(
            price[t] * (model.charge[d, t] - model.discharge[d, t])
            for d in model.devices
            for t in model.intervals
        )
    )
    return model


def count_highs_calls(monkeypatch: pytest.MonkeyPatch, model: pyo.ConcreteModel) -> Counter[str]:
    """Every public HiGHS method looked up during one solve, by name."""
    calls: Counter[str] = Counter()

    class CountingHighs(highspy.Highs):
        def __getattribute__(self, name: str) -> Any:
            attribute = super().__getattribute__(name)
            if not name.startswith("_") and callable(attribute):
                calls[name] += 1
            return attribute

    with monkeypatch.context() as patch:
        patch.setattr(highspy, "Highs", CountingHighs)
        result: HighsResult = solve(model, time_limit_s=30.0)
    assert result.feasible
    return calls


PER_ITEM_METHODS = {
    "addCol",
    "addCols",
    "addRow",
    "addRows",
    "addVar",
    "addVars",
    "addConstr",
    "addConstrs",
    "changeCoeff",
    "changeColBounds",
    "changeColsBounds",
    "changeColCost",
    "changeColsCost",
    "changeColIntegrality",
    "changeRowBounds",
    "changeRowsBounds",
    "passColName",
    "passRowName",
}


def test_handoff_makes_the_same_highs_calls_whatever_the_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small = count_highs_calls(monkeypatch, fleet_mip(3))
    large = count_highs_calls(monkeypatch, fleet_mip(60))
    assert small == large
    assert small["passModel"] == 1
    assert small["changeColsIntegrality"] <= 1
    assert not PER_ITEM_METHODS & set(small)
    assert small["run"] == 1


def test_run_lp_arrays_optimum_duals_basis_and_empty() -> None:
    """The array twin of solve(): min 2x + 3y, x + y >= 4, x <= 3 (x, y >= 0)."""
    import scipy.sparse as sp

    from optimizer.highs import run_lp

    matrix = sp.csc_array(np.array([[1.0, 1.0]]))
    args = {
        "cost": np.array([2.0, 3.0]),
        "column_lower": np.zeros(2),
        "column_upper": np.array([3.0, np.inf]),
        "row_lower": np.array([4.0]),
        "row_upper": np.array([np.inf]),
        "matrix": matrix,
        "integer": np.zeros(2, dtype=bool),
    }
    first = run_lp(**args)
    assert first.status == "optimal" and first.objective == pytest.approx(9.0)
    assert first.x is not None and first.row_dual is not None and first.basis is not None
    np.testing.assert_allclose(first.x, [3.0, 1.0])
    assert first.row_dual[0] == pytest.approx(3.0)
    warm = run_lp(**{**args, "row_lower": np.array([5.0])}, basis=first.basis)
    assert warm.objective == pytest.approx(12.0)
    empty = run_lp(
        cost=np.zeros(0),
        column_lower=np.zeros(0),
        column_upper=np.zeros(0),
        row_lower=np.zeros(0),
        row_upper=np.zeros(0),
        matrix=sp.csc_array((0, 0)),
        integer=np.zeros(0, dtype=bool),
    )
    assert (empty.status, empty.objective) == ("optimal", 0.0)
