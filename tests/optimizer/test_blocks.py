"""The LP of chunks as blocks: shapes shared, hot starts exact, the fixed-shape build."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from benchmarks.scaling_fleet import scaling_problem
from optimizer import decompose
from optimizer.arrays import Built, build_arrays, solve_arrays
from optimizer.blocks import BlockLP, BlockSolver, HotSolver, Values
from optimizer.devices import FAMILIES, Device, Fleet, Site
from optimizer.prepare import prepare
from optimizer.problem import Problem
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


def chunk_built(devices: int, seed: int) -> tuple[Built, int]:
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
    return built, len(chunks)


def chunk_blocks(devices: int, seed: int) -> tuple[BlockLP, int]:
    built, count = chunk_built(devices, seed)
    return decompose.block_lp(built, count), count


def test_costs_go_to_the_blocks_and_are_not_read_again_as_nothing() -> None:
    built, count = chunk_built(60, 1)
    cost = built.cost.copy()
    built._cost = None
    blocks = decompose.block_lp(built, count)
    np.testing.assert_array_equal(np.sort(blocks.cost), np.sort(cost))
    with pytest.raises(RuntimeError, match="let go"):
        _ = built.cost


def copies_of_the_mixed_fleet(copies: int) -> Problem:
    """The mixed problem's fleet ``copies`` times, odd copies on two feeders of their
    own with a request of the same length at another time; the copies apart in limits
    and windows (the same matrices), or in an efficiency, a site limit or a delivery
    factor (other matrices)."""
    problem = mixed_problem(integer=False)
    fleet = problem.fleet
    south = {"F-1": "F-3", "F-2": "F-4"}
    sites: list[Site] = []
    families: dict[str, list[Any]] = {name: [] for name in FAMILIES}
    for n in range(copies):
        renamed = {s.site_id: f"{s.site_id}{n}" for s in fleet.sites}
        for site in fleet.sites:
            limit = site.import_max_kw
            if limit is not None:
                limit = None if (n == 4 and site.site_id == "a") else limit + n
            feeder = south[site.feeder] if n % 2 else site.feeder
            sites.append(
                replace(site, site_id=renamed[site.site_id], feeder=feeder, import_max_kw=limit)
            )
        for name in FAMILIES:
            for device in getattr(fleet, name):
                change: dict[str, object] = {
                    "device_id": f"{device.device_id}-{n}",
                    "site_id": renamed[device.site_id],
                }
                if device.device_id == "bat-a":
                    change["e_max_kwh"] = 10.0 + n
                    if n == 3:
                        change["charge_efficiency"] = 0.95
                if device.device_id == "ev-b":
                    change["arrival"] = device.arrival + pd.Timedelta(hours=n % 3)
                if device.device_id == "pv" and n == 5:
                    change["delivery_factor"] = 0.9
                copy: Device = replace(device, **change)
                families[name].append(copy)
    copied = Fleet(
        sites=tuple(sites),
        feeders=fleet.feeders
        + tuple(replace(f, feeder_id=south[f.feeder_id], region="South") for f in fleet.feeders),
        **{name: tuple(members) for name, members in families.items()},
    )
    cut = problem.requests[0]
    other = replace(
        cut,
        request_id="cut-south",
        feeder="F-3",
        start=cut.start - pd.Timedelta(hours=7),
        end=cut.end - pd.Timedelta(hours=7),
    )
    return replace(problem, fleet=copied, requests=(*problem.requests, other))


@pytest.mark.parametrize(
    ("problem", "chunk_devices"),
    [
        (scaling_problem(300, 1), 12),
        (copies_of_the_mixed_fleet(6), 2),
        (copies_of_the_mixed_fleet(6), 5),
    ],
)
def test_shared_matrices_are_those_of_the_whole_build(problem: Problem, chunk_devices: int) -> None:
    """The fleet path builds one chunk of each kind: every chunk's block, bounds and
    order are those that building every chunk gives."""
    data = prepare(problem)
    chunks = decompose.partition(data, chunk_devices)
    rows = decompose.coupling_rows(data, chunks)
    lay = decompose.layout(data, chunks, rows)
    owners = decompose.owners_of(lay, data)

    def build(matrix: bool) -> tuple[BlockLP, list[np.ndarray]]:
        built = build_arrays(
            lay.problem, check=False, fixed_shape=True, owners=owners, data=lay.data, matrix=matrix
        )
        if matrix:
            return decompose.block_lp(built, len(chunks)), built.request_rows
        return decompose.shared_blocks(built, lay, chunks, owners), built.request_rows

    (whole, whole_rows), (shared, shared_rows) = build(True), build(False)
    kinds = decompose.chunk_kinds(lay, chunks)
    assert 1 < len(set(kinds)) < len(chunks)  # several kinds, and chunks sharing one
    assert shared.nonzeros == whole.nonzeros
    for mine_rows, their_rows in zip(shared_rows, whole_rows, strict=True):
        np.testing.assert_array_equal(mine_rows, their_rows)
    for name in ("column_order", "row_order", "columns", "rows"):
        np.testing.assert_array_equal(getattr(shared, name), getattr(whole, name))
    for b in range(len(chunks)):
        for mine, theirs in zip(shared.bounds(b), whole.bounds(b), strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)
        for mine, theirs in zip(shared.block(b), whole.block(b), strict=True):
            np.testing.assert_array_equal(mine, theirs)


def test_a_block_and_a_matrix_of_other_sizes_are_refused() -> None:
    blocks = BlockLP.sort(
        np.array([0, 1, 1]),
        np.array([0, 1]),
        2,
        lower=np.zeros(3),
        upper=np.ones(3),
        cost=np.ones(3),
        row_lower=np.zeros(2),
        row_upper=np.ones(2),
    )
    one_column = (np.array([0, 1], dtype=np.int32), np.array([0], dtype=np.int32), np.ones(1))
    with pytest.raises(RuntimeError, match="block 1 has 2 columns and 1 rows"):
        blocks.shared([0, 0], [one_column], [1])
    two_columns = (np.array([0, 1, 2], np.int32), np.zeros(2, np.int32), np.ones(2))
    blocks.shared([0, 1], [one_column, two_columns], [1, 1])
    assert blocks.nonzeros == 3


def test_parts_go_to_the_places_their_joined_array_would() -> None:
    rng = np.random.default_rng(4)
    column_owner = rng.integers(0, 5, size=26)
    row_owner = rng.integers(0, 5, size=9)
    # As a build gives them: a scalar seen 6 times, a column seen over 4 intervals
    # (a 2-D view), and plain arrays.
    lower = [np.broadcast_to(np.float64(-1.5), (6,)), rng.normal(size=8)]
    lower.append(np.broadcast_to(rng.normal(size=(3, 1)), (3, 4)))
    upper = [rng.normal(size=26)]
    rows = [np.broadcast_to(np.float64(2.0), (4,)), rng.normal(size=5)]
    joined = {
        "lower": np.concatenate([np.ravel(p) for p in lower]),
        "upper": upper[0],
        "cost": np.arange(26.0),
        "row_lower": np.concatenate([np.ravel(p) for p in rows]),
        "row_upper": -np.arange(9.0),
    }
    by_parts: dict[str, Values] = {**joined, "lower": lower, "upper": upper, "row_lower": rows}
    one = BlockLP.sort(column_owner, row_owner, 5, **joined)
    other = BlockLP.sort(column_owner, row_owner, 5, **by_parts)
    for name in ("lower", "upper", "cost", "row_lower", "row_upper", "columns", "rows"):
        np.testing.assert_array_equal(getattr(other, name), getattr(one, name))
    np.testing.assert_array_equal(
        one.lower, joined["lower"][np.argsort(column_owner, kind="stable")]
    )
    with pytest.raises(ValueError, match="25 values for 26 places"):
        BlockLP.sort(column_owner, row_owner, 5, **{**by_parts, "lower": [*lower[1:], np.ones(5)]})


def test_solutions_handed_over_as_they_come_are_those_returned() -> None:
    blocks, count = chunk_blocks(300, 2)
    kept = {s.block: s.x for s in BlockSolver(blocks, threads=2).solve(range(count))}
    handed: dict[int, np.ndarray] = {}

    def take(solved: Any) -> None:
        handed[solved.block] = solved.x

    returned = BlockSolver(blocks, threads=2).solve(range(count), take)
    assert sorted(handed) == list(range(count))
    assert all(s.x is None and s.row_dual is None for s in returned)
    for b, x in kept.items():
        np.testing.assert_array_equal(handed[b], x)


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
