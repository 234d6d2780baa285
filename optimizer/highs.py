"""Hand a linear Pyomo model to HiGHS in time linear in its size, solve it, and load the answer.

Why this module exists: Pyomo's HiGHS interfaces (``pyomo.contrib.solver.solvers.highs``
and ``pyomo.contrib.appsi.solvers.highs``) add the model to HiGHS in batches and call
``changeColsIntegrality`` once per batch; each of those calls costs time in proportion to
all the columns HiGHS already holds (HiGHS issue #2065), so the hand-off grows with the
square of the model. A fleet of 10,000 devices over 96 intervals took 128 to 145 s and
2.4 GB to reach HiGHS that way, while the same matrix passed as arrays takes 0.3 s.

Here the model goes through Pyomo's own :class:`LinearStandardFormCompiler` (one linear
walk over the expressions) in *mixed form*, so every row keeps its sense. The column
bounds and integrality are read from the compiled columns, the rows of a ranged
constraint are folded back into one ranged HiGHS row, and the whole problem reaches
HiGHS in a single ``passModel`` call: no per-row or per-column HiGHS call is made.

Pure: numpy, scipy, Pyomo and highspy only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt
import pyomo.environ as pyo
from pyomo.common.enums import ObjectiveSense
from pyomo.common.errors import InfeasibleConstraintException
from pyomo.common.gc_manager import PauseGC
from pyomo.core.base.constraint import ConstraintData
from pyomo.core.base.var import VarData
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler, LinearStandardFormInfo

__all__ = ["HighsResult", "solve"]

#: HiGHS stores indices as 32-bit integers in the highspy wheels.
_HIGHS_INDEX_LIMIT = np.iinfo(np.int32).max

#: Statuses in which HiGHS stopped early; the suffix ``_no_solution`` is added when it
#: stopped before finding a primal feasible point.
_LIMIT_STATUSES = {
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
    highspy.HighsModelStatus.kIterationLimit: "iteration_limit",
    highspy.HighsModelStatus.kSolutionLimit: "solution_limit",
    highspy.HighsModelStatus.kInterrupt: "interrupted",
    highspy.HighsModelStatus.kMemoryLimit: "memory_limit",
    highspy.HighsModelStatus.kObjectiveBound: "objective_bound",
    highspy.HighsModelStatus.kObjectiveTarget: "objective_target",
    highspy.HighsModelStatus.kUnknown: "unknown",
}

#: Statuses that say the model has no usable optimum; no solution is loaded for them.
_NO_SOLUTION_STATUSES = {
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnbounded: "unbounded",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible_or_unbounded",
}


@dataclass(frozen=True)
class HighsResult:
    """Outcome of :func:`solve`.

    Attributes
    ----------
    status : str
        ``"optimal"``; ``"infeasible"``, ``"unbounded"`` or ``"infeasible_or_unbounded"``
        (HiGHS could not tell which); ``"time_limit"``, ``"iteration_limit"``,
        ``"solution_limit"``, ``"interrupted"``, ``"memory_limit"``,
        ``"objective_bound"``, ``"objective_target"`` or ``"unknown"`` when HiGHS stopped
        early with a primal feasible point, each with the suffix ``"_no_solution"``
        when it stopped without one; ``"error"`` when HiGHS failed.
    feasible : bool
        A primal feasible solution is available (and was loaded when asked). False for
        infeasible and unbounded models, even when HiGHS holds a feasible point of an
        unbounded model: that point says nothing useful about the optimum.
    objective : float or None
        Objective value of the solution, constant offset included, in the model's own
        sense (a maximization reports its maximum). None without a feasible solution.
    mip_gap : float or None
        Relative gap ``|primal - bound| / |primal|`` between the incumbent and the best
        bound for models with integer columns; 0 for a linear program solved to
        optimality; None when unknown (no solution, or a linear program stopped early).
    build_s : float
        Wall time to compile the Pyomo model to standard form, in seconds.
    handoff_s : float
        Wall time to build the HiGHS arrays and pass them with ``passModel``, in seconds.
    solve_s : float
        Wall time of the HiGHS run, in seconds.
    columns : int
        Number of columns (variables) passed to HiGHS. Fixed and unused Pyomo variables
        are not columns.
    rows : int
        Number of rows passed to HiGHS; a ranged or equality constraint is one row.
    nonzeros : int
        Number of nonzero coefficients in the constraint matrix passed to HiGHS.
    """

    status: str
    feasible: bool
    objective: float | None
    mip_gap: float | None
    build_s: float
    handoff_s: float
    solve_s: float
    columns: int
    rows: int
    nonzeros: int


@dataclass(frozen=True)
class _HighsArrays:
    """The arrays of a HiGHS model and the Pyomo objects behind its rows and columns.

    The matrix is column-wise (CSC): ``start`` has one entry per column plus one,
    ``index`` and ``value`` one entry per nonzero.
    """

    sense: highspy.ObjSense
    offset: float
    cost: npt.NDArray[np.float64]
    column_lower: npt.NDArray[np.float64]
    column_upper: npt.NDArray[np.float64]
    row_lower: npt.NDArray[np.float64]
    row_upper: npt.NDArray[np.float64]
    start: npt.NDArray[np.int32]
    index: npt.NDArray[np.int32]
    value: npt.NDArray[np.float64]
    integer: npt.NDArray[np.bool_]
    columns: Sequence[VarData]
    row_constraints: list[ConstraintData]

    @property
    def column_count(self) -> int:
        return len(self.cost)

    @property
    def row_count(self) -> int:
        return len(self.row_lower)


def solve(
    model: pyo.ConcreteModel,
    *,
    time_limit_s: float | None = None,
    mip_gap: float | None = None,
    threads: int | None = None,
    load_solution: bool = True,
    duals: bool = True,
    log: bool = False,
) -> HighsResult:
    """Solve a linear or mixed-integer linear Pyomo model with HiGHS.

    The model is compiled with Pyomo's ``LinearStandardFormCompiler`` and handed to
    HiGHS in one ``passModel`` call, so the hand-off takes time and memory linear in
    the number of nonzeros, unlike Pyomo's own HiGHS interfaces.

    Parameters
    ----------
    model : pyomo.environ.ConcreteModel
        The model. It must have exactly one active objective (minimize or maximize),
        linear expressions only, and continuous or integer variables (integer domains
        with unit step, such as ``Binary`` or ``NonNegativeIntegers``). Fixed variables
        are folded into constants. Variables that appear in no active constraint and not
        in the objective are not part of the problem and keep their values.
    time_limit_s : float, optional
        HiGHS time limit, in seconds (HiGHS option ``time_limit``).
    mip_gap : float, optional
        Relative MIP gap at which HiGHS stops, as a fraction (option ``mip_rel_gap``;
        HiGHS's default is 1e-4).
    threads : int, optional
        HiGHS option ``threads``. HiGHS keeps one thread pool per process and refuses to
        run with a different count, so setting this resets that pool: do not pass it
        while another HiGHS solve runs in another thread of the same process.
    load_solution : bool, default True
        On a feasible answer, store the primal values into the Pyomo variables with
        ``set_value(x, skip_validation=True)``. Integer columns are stored as HiGHS
        returns them, within its integrality tolerance, not rounded. Nothing is
        stored when no feasible solution is available.
    duals : bool, default True
        With ``load_solution``, for a model without integer columns solved to
        optimality, store the dual of every active constraint in ``model.dual``
        (an import ``Suffix``, created when absent). A dual is the derivative of the
        objective with respect to the constraint's active bound, in the model's own
        sense: for a minimization it is <= 0 on a binding ``<=`` constraint, >= 0 on a
        binding ``>=``; for a maximization the opposite. Constraints the compiler
        dropped (no unfixed variable, or no bound) get 0.
    log : bool, default False
        Show HiGHS's output.

    Returns
    -------
    HighsResult
        Status, objective, gap, sizes and timings.

    Raises
    ------
    ValueError
        The model does not have exactly one active objective, a variable has a domain
        HiGHS cannot represent, an option is out of range, or the model has more
        nonzeros than HiGHS's 32-bit indices allow.
    pyomo.common.errors.InvalidConstraintError, pyomo.common.errors.InvalidExpressionError
        A constraint or the objective is not linear (raised by the compiler).

    Notes
    -----
    A constraint whose variables are all fixed is checked by the compiler without
    tolerance; when it is violated the result has status ``"infeasible"`` and HiGHS is
    not called.
    """
    _check_options(time_limit_s, mip_gap, threads)
    # Like Pyomo's writers, keep the cyclic garbage collector out of the way: a full
    # collection over a model of millions of Pyomo objects costs about a second and
    # would land at a random point of the hand-off; it runs after this call instead.
    with PauseGC():
        return _solve(model, time_limit_s, mip_gap, threads, load_solution, duals, log)


def _solve(
    model: pyo.ConcreteModel,
    time_limit_s: float | None,
    mip_gap: float | None,
    threads: int | None,
    load_solution: bool,
    duals: bool,
    log: bool,
) -> HighsResult:
    """The body of :func:`solve`, with the garbage collector paused."""
    started = time.perf_counter()
    try:
        compiled = LinearStandardFormCompiler().write(
            model,
            mixed_form=True,
            slack_form=False,
            nonnegative_vars=False,
            set_sense=None,
        )
    except InfeasibleConstraintException:
        return HighsResult(
            status="infeasible",
            feasible=False,
            objective=None,
            mip_gap=None,
            build_s=time.perf_counter() - started,
            handoff_s=0.0,
            solve_s=0.0,
            columns=0,
            rows=0,
            nonzeros=0,
        )
    build_s = time.perf_counter() - started

    started = time.perf_counter()
    arrays = _build_arrays(compiled)
    highs = _configured(log, time_limit_s, mip_gap, threads, None)
    pass_status = highs.passModel(_to_highs_lp(arrays))
    handoff_s = time.perf_counter() - started
    if pass_status == highspy.HighsStatus.kError:
        return _result("error", arrays, build_s, handoff_s, 0.0)

    started = time.perf_counter()
    run_status = highs.run()
    solve_s = time.perf_counter() - started
    if run_status == highspy.HighsStatus.kError:
        return _result("error", arrays, build_s, handoff_s, solve_s)

    model_status = highs.getModelStatus()
    info = highs.getInfo()
    is_mip = bool(arrays.integer.any())
    has_point = info.primal_solution_status == int(highspy.SolutionStatus.kSolutionStatusFeasible)
    objective = float(info.objective_function_value)
    empty = model_status == highspy.HighsModelStatus.kModelEmpty
    if empty:
        # No columns: every variable was fixed or unused. HiGHS reports 0 and no
        # solution, but the (empty) problem is solved and its value is the offset.
        status, feasible, objective = "optimal", True, arrays.offset
    else:
        status, feasible = _status(model_status, has_point)

    if not feasible:
        return _result(status, arrays, build_s, handoff_s, solve_s)

    if is_mip:
        gap: float | None = float(info.mip_gap) if math.isfinite(info.mip_gap) else None
    else:
        gap = 0.0 if status == "optimal" else None

    if load_solution:
        solution = highs.getSolution()
        for variable, x in zip(arrays.columns, solution.col_value, strict=True):
            variable.set_value(x, skip_validation=True)
        dual_valid = empty or info.dual_solution_status == int(
            highspy.SolutionStatus.kSolutionStatusFeasible
        )
        if duals and not is_mip and status == "optimal" and dual_valid:
            _store_duals(model, arrays.row_constraints, solution.row_dual)

    return HighsResult(
        status=status,
        feasible=True,
        objective=objective,
        mip_gap=gap,
        build_s=build_s,
        handoff_s=handoff_s,
        solve_s=solve_s,
        columns=arrays.column_count,
        rows=arrays.row_count,
        nonzeros=len(arrays.value),
    )


def _configured(
    log: bool,
    time_limit_s: float | None,
    mip_gap: float | None,
    threads: int | None,
    options: Mapping[str, bool | int | float | str] | None,
) -> highspy.Highs:
    """A HiGHS instance with the options both hand-offs take.

    Setting ``threads`` resets the process's HiGHS thread pool, which refuses to run
    with a count other than the one it was started with.
    """
    highs = highspy.Highs()
    _set_option(highs, "output_flag", log)
    if time_limit_s is not None:
        _set_option(highs, "time_limit", float(time_limit_s))
    if mip_gap is not None:
        _set_option(highs, "mip_rel_gap", float(mip_gap))
    if threads is not None:
        _set_option(highs, "threads", int(threads))
        highspy.Highs.resetGlobalScheduler(True)
    for name, value in (options or {}).items():
        _set_option(highs, name, value)
    return highs


def _status(model_status: highspy.HighsModelStatus, has_point: bool) -> tuple[str, bool]:
    """Our status name for HiGHS's model status, and whether a usable point exists."""
    if model_status == highspy.HighsModelStatus.kOptimal:
        return "optimal", True
    if model_status in _NO_SOLUTION_STATUSES:
        return _NO_SOLUTION_STATUSES[model_status], False
    if model_status in _LIMIT_STATUSES:
        name = _LIMIT_STATUSES[model_status]
        return (name, True) if has_point else (name + "_no_solution", False)
    return "error", False


def _check_options(time_limit_s: float | None, mip_gap: float | None, threads: int | None) -> None:
    """Reject option values HiGHS would refuse, before any work is done."""
    if time_limit_s is not None and not time_limit_s >= 0:
        raise ValueError(f"time_limit_s must be >= 0 seconds, not {time_limit_s!r}")
    if mip_gap is not None and not mip_gap >= 0:
        raise ValueError(f"mip_gap must be >= 0, not {mip_gap!r}")
    if threads is not None and threads < 0:
        raise ValueError(f"threads must be >= 0 (0: HiGHS chooses), not {threads!r}")


def _set_option(highs: highspy.Highs, name: str, value: bool | int | float | str) -> None:
    """Set a HiGHS option, turning HiGHS's error status into an exception."""
    if highs.setOptionValue(name, value) == highspy.HighsStatus.kError:
        raise ValueError(f"HiGHS refused option {name}={value!r}")


def _result(
    status: str, arrays: _HighsArrays, build_s: float, handoff_s: float, solve_s: float
) -> HighsResult:
    """A result without a solution."""
    return HighsResult(
        status=status,
        feasible=False,
        objective=None,
        mip_gap=None,
        build_s=build_s,
        handoff_s=handoff_s,
        solve_s=solve_s,
        columns=arrays.column_count,
        rows=arrays.row_count,
        nonzeros=len(arrays.value),
    )


def _build_arrays(compiled: LinearStandardFormInfo) -> _HighsArrays:
    """Turn the compiler's mixed-form output into HiGHS's column-wise arrays.

    In mixed form the compiler emits one row per constraint and bound, never negated:
    ``bound_type`` 0 for an equality (``rhs`` is both bounds), 1 for an upper bound
    (``row <= rhs``) and -1 for a lower bound (``row >= rhs``). A constraint with two
    different bounds (a ranged constraint) comes as two adjacent rows with the same
    coefficients, the upper bound first. HiGHS rows have both bounds, so such a pair
    becomes one ranged row: one row dual, which is the derivative with respect to
    whichever bound is active, as Pyomo reports duals of ranged constraints.
    """
    if len(compiled.objectives) != 1:
        raise ValueError(
            f"the model must have exactly one active objective, not {len(compiled.objectives)}"
        )
    columns = compiled.columns
    column_count = len(columns)
    matrix = compiled.A.tocsc()
    if matrix.nnz > _HIGHS_INDEX_LIMIT or column_count > _HIGHS_INDEX_LIMIT:
        raise ValueError(f"{matrix.nnz} nonzeros exceed HiGHS's 32-bit index limit")

    sense = (
        highspy.ObjSense.kMaximize
        if compiled.objectives[0].sense == ObjectiveSense.maximize
        else highspy.ObjSense.kMinimize
    )
    cost = np.asarray(compiled.c.toarray(), dtype=np.float64).reshape(-1)
    offset = float(compiled.c_offset[0])

    column_lower, column_upper = _column_bounds(columns)
    integer = _integrality(columns)

    row_entries = compiled.rows
    row_count = len(row_entries)
    rhs = np.asarray(compiled.rhs, dtype=np.float64).reshape(row_count)
    bound_type = np.fromiter((row.bound_type for row in row_entries), np.int8, row_count)
    row_lower = np.where(bound_type == 1, -np.inf, rhs)
    row_upper = np.where(bound_type == -1, np.inf, rhs)

    # Fold each ranged pair (upper row, then lower row of the same constraint) into
    # its upper row. Adjacent (1, -1) rows may also be two different one-sided
    # constraints, so the constraint identity is checked for the candidates only.
    candidates = np.flatnonzero((bound_type[1:] == -1) & (bound_type[:-1] == 1)) + 1
    folded = np.array(
        [
            i
            for i in candidates.tolist()
            if row_entries[i].constraint is row_entries[i - 1].constraint
        ],
        dtype=np.intp,
    )
    keep = np.ones(row_count, dtype=np.bool_)
    if len(folded):
        row_lower[folded - 1] = rhs[folded]
        keep[folded] = False
        # Drop the folded rows' entries and renumber the remaining rows; the
        # renumbering is monotone, so each column's row indices stay sorted.
        new_row = np.cumsum(keep, dtype=np.int64) - 1
        entry_kept = keep[matrix.indices]
        kept_before = np.concatenate(([0], np.cumsum(entry_kept, dtype=np.int64)))
        start = kept_before[matrix.indptr]
        index = new_row[matrix.indices[entry_kept]]
        value = matrix.data[entry_kept]
        row_lower = row_lower[keep]
        row_upper = row_upper[keep]
    else:
        start = matrix.indptr
        index = matrix.indices
        value = matrix.data

    row_constraints = [row_entries[i].constraint for i in np.flatnonzero(keep).tolist()]
    return _HighsArrays(
        sense=sense,
        offset=offset,
        cost=cost,
        column_lower=column_lower,
        column_upper=column_upper,
        row_lower=np.ascontiguousarray(row_lower, dtype=np.float64),
        row_upper=np.ascontiguousarray(row_upper, dtype=np.float64),
        start=np.ascontiguousarray(start, dtype=np.int32),
        index=np.ascontiguousarray(index, dtype=np.int32),
        value=np.ascontiguousarray(value, dtype=np.float64),
        integer=integer,
        columns=columns,
        row_constraints=row_constraints,
    )


def _column_bounds(
    columns: Sequence[VarData],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Lower and upper column bounds, domain bounds included, infinite when absent.

    ``VarData.bounds`` already intersects the variable's bounds with its domain's
    (``Binary`` gives (0, 1), ``NonNegativeReals`` a lower bound of 0); numpy turns
    its ``None`` into NaN, which becomes an infinite bound.
    """
    bounds = np.array(list(map(attrgetter("bounds"), columns)), dtype=np.float64)
    bounds = bounds.reshape(len(columns), 2)
    lower = np.where(np.isnan(bounds[:, 0]), -np.inf, bounds[:, 0])
    upper = np.where(np.isnan(bounds[:, 1]), np.inf, bounds[:, 1])
    return np.ascontiguousarray(lower), np.ascontiguousarray(upper)


def _integrality(columns: Sequence[VarData]) -> npt.NDArray[np.bool_]:
    """True for integer columns, from each distinct domain's interval.

    A fleet model has millions of variables but a handful of domain objects, so each
    domain is inspected once. A domain's interval step is 0 for a continuous range and
    1 for integers; other steps (``RangeSet(0, 10, 2)``) and non-interval domains
    cannot be expressed as HiGHS bounds plus integrality.
    """
    domains = list(map(attrgetter("domain"), columns))
    integer_by_domain: dict[int, bool] = {}
    for domain in domains:
        key = id(domain)
        if key in integer_by_domain:
            continue
        interval = domain.get_interval()
        if interval is None or interval[2] not in (0, 1):
            raise ValueError(
                f"variable domain {domain} is neither a continuous range nor integers "
                "with unit step; HiGHS cannot represent it"
            )
        integer_by_domain[key] = interval[2] == 1
    return np.fromiter(map(integer_by_domain.__getitem__, map(id, domains)), np.bool_, len(domains))


def _to_highs_lp(arrays: _HighsArrays) -> highspy.HighsLp:
    """Fill a ``HighsLp``; integrality is left empty for a linear program.

    ``HighsLp`` rather than the array overload of ``passModel``: that overload reads
    its integrality argument even when it is empty, and an all-continuous integrality
    vector makes HiGHS warn that the model has no integer variables.
    """
    lp = highspy.HighsLp()
    lp.num_col_ = arrays.column_count
    lp.num_row_ = arrays.row_count
    lp.sense_ = arrays.sense
    lp.offset_ = arrays.offset
    lp.col_cost_ = arrays.cost
    lp.col_lower_ = arrays.column_lower
    lp.col_upper_ = arrays.column_upper
    lp.row_lower_ = arrays.row_lower
    lp.row_upper_ = arrays.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = arrays.column_count
    lp.a_matrix_.num_row_ = arrays.row_count
    lp.a_matrix_.start_ = arrays.start
    lp.a_matrix_.index_ = arrays.index
    lp.a_matrix_.value_ = arrays.value
    if arrays.integer.any():
        types = np.array(
            [highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger], dtype=object
        )
        lp.integrality_ = types[arrays.integer.astype(np.intp)].tolist()
    return lp


def _store_duals(
    model: pyo.ConcreteModel, row_constraints: list[ConstraintData], row_dual: Sequence[float]
) -> None:
    """Store row duals in ``model.dual``; constraints without a row get 0.

    HiGHS reports row duals as the derivative of the objective with respect to the
    row's active bound, in the problem's own sense, which is Pyomo's convention. In
    mixed form no row is negated and ranged pairs were folded into one row, so each
    dual belongs to exactly one constraint and needs no sign change.
    """
    suffix: Any = model.component("dual")
    if suffix is None:
        suffix = pyo.Suffix(direction=pyo.Suffix.IMPORT)
        model.dual = suffix
    elif not isinstance(suffix, pyo.Suffix):
        raise ValueError("model.dual exists and is not a Suffix; cannot store duals")
    for constraint in model.component_data_objects(pyo.Constraint, active=True, descend_into=True):
        suffix[constraint] = 0.0
    for constraint, dual in zip(row_constraints, row_dual, strict=True):
        suffix[constraint] = dual


@dataclass(frozen=True)
class ArrayOutcome:
    """What :func:`run_lp` returns: the status and, when feasible, the point."""

    status: str
    objective: float | None
    mip_gap: float | None
    solve_s: float
    x: npt.NDArray[np.float64] | None
    row_dual: npt.NDArray[np.float64] | None
    basis: tuple[npt.NDArray[np.int8], npt.NDArray[np.int8]] | None = None


def run_lp(
    *,
    cost: npt.NDArray[np.float64],
    column_lower: npt.NDArray[np.float64],
    column_upper: npt.NDArray[np.float64],
    row_lower: npt.NDArray[np.float64],
    row_upper: npt.NDArray[np.float64],
    matrix: Any,
    integer: npt.NDArray[np.bool_],
    time_limit_s: float | None = None,
    mip_gap: float | None = None,
    threads: int | None = None,
    options: Mapping[str, bool | int | float | str] | None = None,
    basis: tuple[npt.NDArray[np.int8], npt.NDArray[np.int8]] | None = None,
) -> ArrayOutcome:
    """Minimize ``cost @ x`` subject to bounds and ``row_lower <= matrix @ x <= row_upper``.

    The array twin of :func:`solve` for models built without Pyomo: the same options,
    statuses and dual convention (derivative of the cost with respect to a row's active
    bound); duals only for LPs solved to optimality. ``options`` are further HiGHS
    options (for small blocks, ``presolve="off"`` with ``simplex_strategy=1`` is about
    twice as fast). ``basis`` (column and row statuses from an earlier outcome of an LP
    of the same shape) starts the simplex from there: after a change of bounds it
    needs only a few iterations.
    """
    _check_options(time_limit_s, mip_gap, threads)
    csc = matrix.tocsc()
    arrays = _HighsArrays(
        sense=highspy.ObjSense.kMinimize,
        offset=0.0,
        cost=np.asarray(cost, dtype=np.float64),
        column_lower=np.asarray(column_lower, dtype=np.float64),
        column_upper=np.asarray(column_upper, dtype=np.float64),
        row_lower=np.asarray(row_lower, dtype=np.float64),
        row_upper=np.asarray(row_upper, dtype=np.float64),
        start=csc.indptr.astype(np.int32),
        index=csc.indices.astype(np.int32),
        value=csc.data.astype(np.float64),
        integer=np.asarray(integer, dtype=bool),
        columns=(),
        row_constraints=[],
    )
    highs = _configured(False, time_limit_s, mip_gap, threads, options)
    if arrays.integer.any():
        passed = highs.passModel(_to_highs_lp(arrays))
    else:
        # The array overload copies straight from numpy: about 0.3 ms for a small LP
        # where filling a HighsLp field by field takes 2 ms. Its integrality argument
        # must hold one entry per column (all continuous here).
        passed = highs.passModel(
            arrays.column_count,
            arrays.row_count,
            len(arrays.value),
            int(highspy.MatrixFormat.kColwise),
            int(highspy.ObjSense.kMinimize),
            0.0,
            arrays.cost,
            arrays.column_lower,
            arrays.column_upper,
            arrays.row_lower,
            arrays.row_upper,
            arrays.start,
            arrays.index,
            arrays.value,
            np.zeros(arrays.column_count, dtype=np.int32),
        )
    if passed == highspy.HighsStatus.kError:
        return ArrayOutcome("error", None, None, 0.0, None, None)
    if (
        basis is not None
        and len(basis[0]) == len(arrays.cost)
        and len(basis[1]) == len(arrays.row_lower)
    ):
        start = highspy.HighsBasis()
        start.col_status = [_BASIS_STATUS[int(s)] for s in basis[0]]
        start.row_status = [_BASIS_STATUS[int(s)] for s in basis[1]]
        start.valid = True
        highs.setBasis(start)
    started = time.perf_counter()
    run_status = highs.run()
    solve_s = time.perf_counter() - started
    if run_status == highspy.HighsStatus.kError:
        return ArrayOutcome("error", None, None, solve_s, None, None)
    model_status = highs.getModelStatus()
    info = highs.getInfo()
    has_point = info.primal_solution_status == int(highspy.SolutionStatus.kSolutionStatusFeasible)
    if model_status == highspy.HighsModelStatus.kModelEmpty:
        # No columns and no rows: nothing to decide, and nothing it could cost.
        empty = np.zeros(0)
        return ArrayOutcome("optimal", 0.0, 0.0, solve_s, empty, empty.copy(), None)
    status, feasible = _status(model_status, has_point)
    if not feasible:
        return ArrayOutcome(status, None, None, solve_s, None, None)
    is_mip = bool(arrays.integer.any())
    gap = (
        (float(info.mip_gap) if math.isfinite(info.mip_gap) else None)
        if is_mip
        else (0.0 if status == "optimal" else None)
    )
    solution = highs.getSolution()
    dual_valid = info.dual_solution_status == int(highspy.SolutionStatus.kSolutionStatusFeasible)
    duals = (
        np.asarray(solution.row_dual, dtype=np.float64)
        if not is_mip and status == "optimal" and dual_valid
        else None
    )
    final = None
    if not is_mip:
        found = highs.getBasis()
        if found.valid:
            # Compact: a list of status objects costs a hundred times the memory (10 GB
            # for a 100,000-device fleet's chunks against 0.1 GB as bytes).
            final = (
                np.array([s.value for s in found.col_status], dtype=np.int8),
                np.array([s.value for s in found.row_status], dtype=np.int8),
            )
    return ArrayOutcome(
        status,
        float(info.objective_function_value),
        gap,
        solve_s,
        np.asarray(solution.col_value, dtype=np.float64),
        duals,
        final,
    )


_BASIS_STATUS = {int(s.value): s for s in highspy.HighsBasisStatus.__members__.values()}
