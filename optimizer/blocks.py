"""A block-diagonal LP split into its blocks, and blocks of one shape solved hot.

The fleet path (:mod:`optimizer.decompose`) builds one LP in which every chunk of
sites is its own block: no row holds columns of two chunks. Here that LP is cut into
its blocks, and blocks whose matrices are identical (sites of one kind: the same
device families with the same coefficients, only limits, windows and prices apart)
are solved one after another on one HiGHS instance: after the first, each solve only
changes the bounds and costs that differ and starts from the basis left by the one
before, which takes a fraction of the iterations a solve from scratch needs. A block
solved again (after its coupling rows moved) starts from its own last basis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import scipy.sparse as sp

from optimizer.highs import _status

#: HiGHS options for blocks: dual simplex without presolve suits small LPs and hot
#: starts; one thread each, since blocks run side by side.
BLOCK_OPTIONS: dict[str, bool | int | float | str] = {
    "presolve": "off",
    "simplex_strategy": 1,
    "threads": 1,
}

MapFunction = Callable[[Callable[[Any], Any], Sequence[Any]], Iterable[Any]]


Matrix = tuple[np.ndarray, np.ndarray, np.ndarray]  # column-wise: start, index, value
Values = np.ndarray | list[np.ndarray]  # one array, or parts laid end to end


@dataclass
class BlockLP:
    """An LP with its columns and rows sorted block by block.

    ``columns[b]:columns[b + 1]`` and ``rows[b]:rows[b + 1]`` are block ``b``'s ranges;
    ``column_order`` and ``row_order`` give the original position of each sorted one.
    Blocks with one key share one matrix: ``matrices[keys[b]]``.
    """

    lower: np.ndarray
    upper: np.ndarray
    cost: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    columns: np.ndarray
    rows: np.ndarray
    column_order: np.ndarray
    row_order: np.ndarray
    row_position: np.ndarray  # sorted position of each original row
    keys: list[int] = field(default_factory=list)
    matrices: list[Matrix] = field(default_factory=list)

    @classmethod
    def sort(
        cls,
        column_owner: np.ndarray,
        row_owner: np.ndarray,
        blocks: int,
        *,
        lower: Values,
        upper: Values,
        cost: Values,
        row_lower: Values,
        row_upper: Values,
    ) -> BlockLP:
        """Sort the columns and rows of an LP by their block, keeping their order within
        a block; the matrices are still to be given.

        Each of the bounds and costs is one array or a list of parts (of any shapes,
        broadcast views included) laid end to end in C order: parts are written
        straight to their sorted places, never joined first.

        Raises ``ValueError`` when a column or row has no block.
        """
        if (column_owner < 0).any() or (row_owner < 0).any():
            raise ValueError("every column and row needs a block")
        # Positions as narrow as they fit: at 100,000 devices an int64 order of the
        # columns alone takes 224 MB.
        narrow = max(len(column_owner), len(row_owner)) < np.iinfo(np.int32).max
        index = np.int32 if narrow else np.int64
        column_order = np.argsort(column_owner, kind="stable").astype(index)
        row_order = np.argsort(row_owner, kind="stable").astype(index)
        row_position = _inverse(row_order, index)
        column_position = None
        if any(isinstance(v, list) for v in (lower, upper, cost)):
            column_position = _inverse(column_order, index)
        return cls(
            lower=_sorted(lower, column_order, column_position),
            upper=_sorted(upper, column_order, column_position),
            cost=_sorted(cost, column_order, column_position),
            row_lower=_sorted(row_lower, row_order, row_position),
            row_upper=_sorted(row_upper, row_order, row_position),
            columns=_starts(column_owner, blocks),
            rows=_starts(row_owner, blocks),
            column_order=column_order,
            row_order=row_order,
            row_position=row_position,
        )

    @classmethod
    def build(
        cls,
        entries: list[np.ndarray],
        column_owner: np.ndarray,
        row_owner: np.ndarray,
        blocks: int,
        **bounds: Values,
    ) -> BlockLP:
        """Sort an LP given as [row, column, value] entries (duplicates summed) by its
        blocks (see :meth:`sort`, which takes the same ``bounds``), and find which
        blocks have equal matrices. The entry arrays are reused and the list emptied,
        to spare memory.

        Raises ``ValueError`` when a column or row has no block, and
        ``RuntimeError`` when a row holds columns of two blocks.
        """
        out = cls.sort(column_owner, row_owner, blocks, **bounds)
        column_position = np.empty_like(out.column_order)
        column_position[out.column_order] = np.arange(len(out.column_order))
        entry_row, entry_column, entry_value = entries
        entries.clear()
        # Positions, in place (of the entries' width).
        np.take(out.row_position.astype(entry_row.dtype), entry_row, out=entry_row)
        np.take(column_position.astype(entry_column.dtype), entry_column, out=entry_column)
        del column_position
        matrix = sp.csc_array(
            (entry_value, (entry_row, entry_column)),
            shape=(len(out.row_order), len(out.column_order)),
        )
        del entry_row, entry_column, entry_value
        matrix.sum_duplicates()
        whole = (
            matrix.indptr.astype(np.int64),
            matrix.indices.astype(np.int32, copy=False),
            matrix.data.astype(np.float64, copy=False),
        )
        del matrix
        out.keys, out.matrices = out._shapes(whole, blocks)
        return out

    def shared(self, keys: list[int], matrices: list[Matrix], rows: list[int]) -> None:
        """Give blocks their matrices: block ``b`` has ``matrices[keys[b]]``, of
        ``rows[keys[b]]`` rows.

        Raises ``RuntimeError`` when a block's columns or rows are not as many as its
        matrix has.
        """
        width = np.diff(self.columns)
        height = np.diff(self.rows)
        key = np.asarray(keys, dtype=np.int64)
        expected_width = np.array([len(m[0]) - 1 for m in matrices], dtype=np.int64)[key]
        expected_height = np.asarray(rows, dtype=np.int64)[key]
        wrong = np.flatnonzero((width != expected_width) | (height != expected_height))
        if len(wrong):
            b = int(wrong[0])
            raise RuntimeError(
                f"block {b} has {width[b]} columns and {height[b]} rows, its matrix "
                f"{expected_width[b]} and {expected_height[b]}"
            )
        self.keys = list(keys)
        self.matrices = list(matrices)

    def block(self, b: int) -> Matrix:
        """Block ``b``'s matrix, column-wise: (start, index, value)."""
        return self.matrices[self.keys[b]]

    @property
    def nonzeros(self) -> int:
        """Coefficients of all blocks together."""
        sizes = np.array([len(m[2]) for m in self.matrices], dtype=np.int64)
        return int(sizes[np.asarray(self.keys, dtype=np.int64)].sum()) if self.keys else 0

    def _shapes(self, whole: Matrix, blocks: int) -> tuple[list[int], list[Matrix]]:
        """Number the distinct block matrices of the sorted LP's ``whole`` matrix:
        blocks are compared whole with those of a cheap fingerprint in common, so equal
        numbers mean equal matrices."""
        w_start, w_index, w_value = whole

        def cut(b: int) -> Matrix:
            c0, c1 = self.columns[b], self.columns[b + 1]
            first, last = w_start[c0], w_start[c1]
            return (
                (w_start[c0 : c1 + 1] - first).astype(np.int32),
                w_index[first:last] - np.int32(self.rows[b]),
                w_value[first:last],
            )

        keys: list[int] = []
        matrices: list[Matrix] = []
        seen: dict[tuple[int, int, int, float, int], list[int]] = {}
        for b in range(blocks):
            start, index, value = cut(b)
            if len(index) and (index.min() < 0 or index.max() >= self.rows[b + 1] - self.rows[b]):
                raise RuntimeError(f"block {b} holds rows of another block")
            fingerprint = (
                len(start),
                int(self.rows[b + 1] - self.rows[b]),
                len(value),
                float(value.sum()),
                int(index.sum(dtype=np.int64)),
            )
            for key in seen.get(fingerprint, []):
                o_start, o_index, o_value = matrices[key]
                if (
                    np.array_equal(start, o_start)
                    and np.array_equal(index, o_index)
                    and np.array_equal(value, o_value)
                ):
                    keys.append(key)
                    break
            else:
                keys.append(len(matrices))
                seen.setdefault(fingerprint, []).append(len(matrices))
                matrices.append((start, index.copy(), value.copy()))
        return keys, matrices

    def bounds(self, b: int) -> tuple[np.ndarray, ...]:
        """Block ``b``'s column lower/upper bounds, costs and row lower/upper bounds."""
        cs = slice(self.columns[b], self.columns[b + 1])
        rs = slice(self.rows[b], self.rows[b + 1])
        return (
            self.lower[cs],
            self.upper[cs],
            self.cost[cs],
            self.row_lower[rs],
            self.row_upper[rs],
        )


def _starts(owner: np.ndarray, blocks: int) -> np.ndarray:
    """Where each block's members start once sorted by block, and the end."""
    counts = np.zeros(blocks, dtype=np.int64)
    step = 1 << 20  # counted a slice at a time: bincount widens what it counts
    for first in range(0, len(owner), step):
        part = np.bincount(owner[first : first + step], minlength=blocks)
        if len(part) > blocks:
            raise ValueError(f"a block numbered {len(part) - 1}; there are {blocks}")
        counts += part
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _inverse(order: np.ndarray, dtype: type) -> np.ndarray:
    """The position of each member in ``order`` (a permutation)."""
    position: np.ndarray = np.empty(len(order), dtype=dtype)
    position[order] = np.arange(len(order), dtype=dtype)
    return position


def _sorted(values: Values, order: np.ndarray, position: np.ndarray | None) -> np.ndarray:
    """``values`` (one array, or parts laid end to end) taken in ``order``; parts are
    placed by ``position``, the inverse of ``order``."""
    if isinstance(values, np.ndarray):
        return values[order]
    assert position is not None
    out = np.empty(len(order))
    start = 0
    for part in values:
        out[position[start : start + part.size].reshape(part.shape)] = part
        start += part.size
    if start != len(order):
        raise ValueError(f"{start} values for {len(order)} places")
    return out


@dataclass
class Task:
    """Blocks of one shape to solve in turn: the shared matrix and, per block, its
    bounds and the basis to start from (``None``: the previous block's)."""

    matrix: Matrix
    blocks: list[int]
    bounds: list[tuple[np.ndarray, ...]]
    bases: list[Any]


@dataclass
class Solved:
    """One block's outcome."""

    block: int
    status: str
    feasible: bool
    x: np.ndarray | None
    row_dual: np.ndarray | None
    basis: Any
    solve_s: float


class HotSolver:
    """One HiGHS instance for blocks of one shape; each next block changes only the
    bounds and costs that differ from the block solved last."""

    def __init__(self, matrix: Matrix) -> None:
        self.matrix = matrix
        self.highs: highspy.Highs | None = None
        self.loaded: tuple[np.ndarray, ...] | None = None

    def _load(self, bounds: tuple[np.ndarray, ...]) -> None:
        lower, upper, cost, row_lower, row_upper = bounds
        if self.highs is None or self.loaded is None:
            self.highs = highspy.Highs()
            self.highs.setOptionValue("output_flag", False)
            for name, option in BLOCK_OPTIONS.items():
                self.highs.setOptionValue(name, option)
            start, index, value = self.matrix
            self.highs.passModel(
                len(lower),
                len(row_lower),
                len(value),
                int(highspy.MatrixFormat.kColwise),
                int(highspy.ObjSense.kMinimize),
                0.0,
                np.ascontiguousarray(cost),
                np.ascontiguousarray(lower),
                np.ascontiguousarray(upper),
                np.ascontiguousarray(row_lower),
                np.ascontiguousarray(row_upper),
                start,
                index,
                value,
                np.zeros(len(lower), dtype=np.int32),
            )
        else:
            old_lower, old_upper, old_cost, old_row_lower, old_row_upper = self.loaded
            changed = np.flatnonzero((lower != old_lower) | (upper != old_upper)).astype(np.int32)
            if len(changed):
                self.highs.changeColsBounds(len(changed), changed, lower[changed], upper[changed])
            changed = np.flatnonzero(cost != old_cost).astype(np.int32)
            if len(changed):
                self.highs.changeColsCost(len(changed), changed, cost[changed])
            changed = np.flatnonzero(
                (row_lower != old_row_lower) | (row_upper != old_row_upper)
            ).astype(np.int32)
            if len(changed):
                self.highs.changeRowsBounds(  # type: ignore[attr-defined]
                    len(changed), changed, row_lower[changed], row_upper[changed]
                )
        # Column bounds and costs are views that never change; row bounds move with
        # the shares between rounds, so the loaded ones are copied.
        self.loaded = (lower, upper, cost, row_lower.copy(), row_upper.copy())

    def solve(self, block: int, bounds: tuple[np.ndarray, ...], basis: Any = None) -> Solved:
        self._load(bounds)
        highs = self.highs
        assert highs is not None
        if basis is not None:
            highs.setBasis(basis if isinstance(basis, highspy.HighsBasis) else _basis(basis))
        started = time.perf_counter()
        highs.run()
        solve_s = time.perf_counter() - started
        info = highs.getInfo()
        has_point = info.primal_solution_status == int(
            highspy.SolutionStatus.kSolutionStatusFeasible
        )
        status, feasible = _status(highs.getModelStatus(), has_point)
        if not feasible:
            # Start the next block afresh rather than from a failed one.
            self.highs = None
            self.loaded = None
            return Solved(block, status, False, None, None, None, solve_s)
        solution = highs.getSolution()
        return Solved(
            block,
            status,
            True,
            np.asarray(solution.col_value, dtype=np.float64),
            np.asarray(solution.row_dual, dtype=np.float64),
            highs.getBasis(),
            solve_s,
        )


_STATUS = {int(s.value): s for s in highspy.HighsBasisStatus.__members__.values()}


def _basis(codes: tuple[np.ndarray, np.ndarray]) -> highspy.HighsBasis:
    basis = highspy.HighsBasis()
    basis.col_status = [_STATUS[int(s)] for s in codes[0]]
    basis.row_status = [_STATUS[int(s)] for s in codes[1]]
    basis.valid = True
    return basis


def _codes(basis: highspy.HighsBasis) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([s.value for s in basis.col_status], dtype=np.int8),
        np.array([s.value for s in basis.row_status], dtype=np.int8),
    )


def solve_task(task: Task) -> list[Solved]:
    """Solve a task's blocks in turn (the unit of work sent to another process): its
    bases come and go as compact status codes."""
    solver = HotSolver(task.matrix)
    out = []
    for block, bounds, basis in zip(task.blocks, task.bounds, task.bases, strict=True):
        solved = solver.solve(block, bounds, basis)
        if solved.basis is not None:
            solved.basis = _codes(solved.basis)
        out.append(solved)
    return out


class BlockSolver:
    """Solves blocks of a :class:`BlockLP`, grouped by shape, and keeps each block's
    last basis for its next solve.

    Blocks of one shape are cut into lanes of at most ``batch`` blocks, each lane one
    :class:`HotSolver` kept between calls. Lanes run in this process on ``threads``
    threads (HiGHS releases the interpreter lock while it solves); with
    ``map_function`` (a Dask client's map, say) they are sent elsewhere as tasks, and
    bases travel as status codes.
    """

    def __init__(
        self,
        lp: BlockLP,
        map_function: MapFunction | None = None,
        batch: int = 200,
        threads: int = 1,
    ) -> None:
        self.lp = lp
        self.map_function = map_function
        self.threads = max(1, threads)
        self.lane: list[int] = [0] * len(lp.keys)
        by_key: dict[int, list[int]] = {}
        for b, key in enumerate(lp.keys):
            by_key.setdefault(key, []).append(b)
        lanes = 0
        for members in by_key.values():
            for i in range(0, len(members), batch):
                for b in members[i : i + batch]:
                    self.lane[b] = lanes
                lanes += 1
        self.solvers: dict[int, HotSolver] = {}
        self.bases: dict[int, Any] = {}
        self.solve_s = 0.0
        self.solves = 0

    def _lanes(self, blocks: Iterable[int]) -> list[list[int]]:
        by_lane: dict[int, list[int]] = {}
        for b in blocks:
            by_lane.setdefault(self.lane[b], []).append(b)
        return list(by_lane.values())

    def _run_lane(self, members: list[int], take: Take | None) -> list[Solved]:
        lane = self.lane[members[0]]
        solver = self.solvers.get(lane)
        if solver is None:
            solver = self.solvers[lane] = HotSolver(self.lp.block(members[0]))
        out = []
        for b in members:
            solved = solver.solve(b, self.lp.bounds(b), self.bases.get(b))
            out.append(_taken(solved, take))
        return out

    def solve(self, blocks: Iterable[int], take: Take | None = None) -> list[Solved]:
        """Solve ``blocks``, those of one lane one after another.

        With ``take``, each block's outcome is handed to it as soon as it is solved
        (from the thread that solved it) and returned without its ``x`` and
        ``row_dual``: a large LP's solution is then never held twice.
        """
        lanes = self._lanes(blocks)
        if self.map_function is not None:
            tasks = [
                Task(
                    self.lp.block(members[0]),
                    members,
                    [self.lp.bounds(b) for b in members],
                    [self.bases.get(b) for b in members],
                )
                for members in lanes
            ]
            results = [
                _taken(s, take) for group in self.map_function(solve_task, tasks) for s in group
            ]
        elif self.threads > 1 and len(lanes) > 1:
            # Longest lanes first, so that the threads finish together.
            lanes.sort(key=len, reverse=True)
            with ThreadPoolExecutor(self.threads) as pool:
                groups = pool.map(self._run_lane, lanes, [take] * len(lanes))
                results = [s for group in groups for s in group]
        else:
            results = [s for members in lanes for s in self._run_lane(members, take)]
        for solved in results:
            self.solve_s += solved.solve_s
            self.solves += 1
            if solved.basis is not None:
                self.bases[solved.block] = solved.basis
        return results


Take = Callable[[Solved], None]


def _taken(solved: Solved, take: Take | None) -> Solved:
    """``solved`` handed to ``take``, then without its solution (kept when no ``take``)."""
    if take is not None:
        take(solved)
        solved.x = solved.row_dual = None
    return solved
