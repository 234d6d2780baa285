"""The LP of chunks as blocks: shapes shared, hot starts exact, the fixed-shape build."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks.scaling_fleet import scaling_problem
from optimizer import decompose
from optimizer.arrays import build_arrays, solve_arrays
from optimizer.blocks import BlockLP, BlockSolver, HotSolver
from optimizer.prepare import prepare
from optimizer.results import plan
from tests.optimizer.test_formulations import mixed_problem


@pytest.mark.parametrize("integer", [False, True])
def test_fixed_shape_build_has_the_same_optimum(integer: bool) -> None:
    problem = mixed_problem(integer=integer)
    usual = solve_arrays(build_arrays(problem))
    fixed = solve_arrays(build_arrays(problem, fixed_shape=True))
    assert fixed.objective == pytest.approx(usual.objective, rel=1e-9)
    # Whole-horizon columns: more of them, each EV and shiftable load on every interval.
    assert fixed.size["variables"] > usual.size["variables"]


def chunk_blocks(devices: int, seed: int) -> tuple[BlockLP, int]:
    data = prepare(scaling_problem(devices, seed))
    chunks = decompose.partition(data, 12)
    rows = decompose.coupling_rows(data, chunks)
    lay = decompose.layout(data, chunks, rows)
    built = build_arrays(
        lay.problem,
        check=False,
        fixed_shape=True,
        owners=decompose.owners_of(lay, data),
        data=lay.data,
    )
    return decompose.block_lp(built, len(chunks)), len(chunks)


def test_blocks_of_one_shape_share_a_matrix_and_hot_starts_change_nothing() -> None:
    blocks, count = chunk_blocks(600, 3)
    keys = blocks.keys
    assert len(set(keys)) < count  # sites of one kind make blocks of one shape
    for key in set(keys):
        members = [b for b in range(count) if keys[b] == key]
        first = [np.asarray(a) for a in blocks.block(members[0])]
        for b in members[1:]:
            for mine, theirs in zip(blocks.block(b), first, strict=True):
                np.testing.assert_array_equal(mine, theirs)
    hot = BlockSolver(blocks).solve(range(count))
    for solved in hot:
        cold = HotSolver(blocks.block(solved.block)).solve(
            solved.block, blocks.bounds(solved.block)
        )
        lower, upper, cost, row_lower, row_upper = blocks.bounds(solved.block)
        assert solved.x is not None and cold.x is not None
        assert float(cost @ solved.x) == pytest.approx(float(cost @ cold.x), rel=1e-5, abs=1e-6)
        assert np.all(solved.x >= lower - 1e-7) and np.all(solved.x <= upper + 1e-7)
        start, index, value = blocks.block(solved.block)
        matrix = sp.csc_array((value, index, start), shape=(len(row_lower), len(lower)))
        activity = matrix @ solved.x
        assert np.all(activity >= row_lower - 1e-6) and np.all(activity <= row_upper + 1e-6)


def test_a_row_across_two_blocks_is_refused() -> None:
    def entries() -> list[np.ndarray]:
        return [np.array([0, 0, 1]), np.array([0, 1, 1]), np.array([1.0, 1.0, 1.0])]

    bounds = {
        "lower": np.zeros(2),
        "upper": np.ones(2),
        "cost": np.ones(2),
        "row_lower": np.zeros(2),
        "row_upper": np.ones(2),
    }
    with pytest.raises(RuntimeError, match="another block"):
        BlockLP.build(entries(), np.array([0, 1]), np.array([0, 1]), 2, **bounds)
    with pytest.raises(ValueError, match="block"):
        BlockLP.build(entries(), np.array([0, -1]), np.array([0, 1]), 2, **bounds)


def test_threads_and_a_time_limit() -> None:
    problem = scaling_problem(400, 5)
    one = plan(problem, method="decomposed", threads=1)
    two = plan(problem, method="decomposed", threads=2)
    assert two.objective == pytest.approx(one.objective, rel=1e-9)
    first_pass = plan(problem, method="decomposed", threads=1, time_limit_s=0.0)
    assert first_pass.timings_s["rounds"] == 0
    assert first_pass.objective >= one.objective - 1e-6
