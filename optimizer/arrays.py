"""The same linear program as :mod:`optimizer.model`, built straight as sparse arrays.

Pyomo builds a model in about a millisecond per device and its standard-form compiler
takes as long again; this path builds the identical LP with numpy and scipy in a few
microseconds per device, for the large blocks of the fleet path. Variables, bounds,
rows and costs mirror :mod:`optimizer.model` family by family (a test solves both
and compares), and the solution comes back as a :class:`~optimizer.solution.Solution`.

Every device's grid power is a linear map of the columns, ``power = D @ x + d`` with
one row per device and interval; sites, requests and their duals are built from it
by sparse products.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from optimizer.highs import run_lp
from optimizer.prepare import Prepared, prepare
from optimizer.problem import Problem, validate
from optimizer.solution import Solution

INF = highspy.kHighsInf


@dataclass
class LinearProgram:
    """Columns and rows of an LP as they are added, family by family.

    Each family's bounds, costs and owners are kept in the shape they were given in,
    broadcast but not copied (a scalar bound of a million columns stays one number);
    :func:`join_parts` joins them once into one array.
    """

    lower: list[np.ndarray] = field(default_factory=list)
    upper: list[np.ndarray] = field(default_factory=list)
    cost: list[np.ndarray] = field(default_factory=list)
    integer: list[np.ndarray] = field(default_factory=list)
    row_lower: list[np.ndarray] = field(default_factory=list)
    row_upper: list[np.ndarray] = field(default_factory=list)
    entries_row: list[np.ndarray] = field(default_factory=list)
    entries_col: list[np.ndarray] = field(default_factory=list)
    entries_val: list[np.ndarray] = field(default_factory=list)
    columns: int = 0
    rows: int = 0
    #: Block of each column and row (``None``: not kept), when the LP is built as
    #: independent blocks (:mod:`optimizer.decompose`).
    column_owner: list[np.ndarray] | None = None
    row_owner: list[np.ndarray] | None = None
    #: Whether coefficients are kept (``False``: columns and rows only, their bounds
    #: and costs; the fleet path takes its matrices from a model chunk of each shape).
    keep_entries: bool = True

    def variables(
        self,
        shape: int | tuple[int, ...],
        lower: float | np.ndarray = 0.0,
        upper: float | np.ndarray = INF,
        cost: float | np.ndarray = 0.0,
        integer: bool = False,
        owner: np.ndarray | None = None,
    ) -> np.ndarray:
        """Add columns (of block ``owner``, broadcast to ``shape``); return their
        indices in ``shape``."""
        size = int(np.prod(shape))
        index = _indices(self.columns, size).reshape(shape)
        if self.column_owner is not None:
            self.column_owner.append(_owners(owner, index.shape))
        self.lower.append(_seen(lower, index.shape))
        self.upper.append(_seen(upper, index.shape))
        self.cost.append(_seen(cost, index.shape))
        self.integer.append(np.broadcast_to(np.bool_(integer), index.shape))
        self.columns += size
        return index

    def constraints(
        self,
        shape: int | tuple[int, ...],
        lower: float | np.ndarray,
        upper: float | np.ndarray,
        owner: np.ndarray | None = None,
    ) -> np.ndarray:
        """Add rows ``lower <= ... <= upper`` (of block ``owner``); return their
        indices in ``shape``."""
        size = int(np.prod(shape))
        index = _indices(self.rows, size).reshape(shape)
        if self.row_owner is not None:
            self.row_owner.append(_owners(owner, index.shape))
        self.row_lower.append(_seen(lower, index.shape))
        self.row_upper.append(_seen(upper, index.shape))
        self.rows += size
        return index

    def terms(self, rows: np.ndarray, cols: np.ndarray, values: float | np.ndarray) -> None:
        """Add coefficients ``values`` at (``rows``, ``cols``), broadcast together."""
        if not self.keep_entries:
            return
        # Broadcast views, joined once by :meth:`entries`.
        rows, cols, vals = np.broadcast_arrays(rows, cols, np.asarray(values, float))
        self.entries_row.append(rows)
        self.entries_col.append(cols)
        self.entries_val.append(vals)

    def entries(self, keep: bool = True) -> list[np.ndarray]:
        """The coefficients' rows, columns and values as they were added (duplicates
        not summed), each joined into one array, indices keeping their width; the
        pieces are let go unless ``keep``."""
        out = []
        for parts in (self.entries_row, self.entries_col, self.entries_val):
            out.append(join_parts(parts, np.result_type(*parts) if parts else np.int64))
            if not keep:
                parts.clear()
        out[2] = out[2].astype(float, copy=False)
        return out

    def matrix(self, shape: tuple[int, int] | None = None) -> sp.csc_array:
        return sp.csc_array(self.coo(shape))  # duplicates are summed

    def coo(self, shape: tuple[int, int] | None = None) -> sp.coo_array:
        """The coefficients as they were added (duplicates not yet summed)."""
        rows, cols, vals = self.entries()
        return sp.coo_array((vals, (rows, cols)), shape=shape or (self.rows, self.columns))


def _indices(first: int, size: int) -> np.ndarray:
    """``first``, ``first + 1``, ... as 32-bit integers while they fit: the matrix's
    entries of a large fleet take half the memory, and fresh memory is what costs
    most in building them."""
    dtype = np.int32 if first + size < np.iinfo(np.int32).max else np.int64
    return np.arange(first, first + size, dtype=dtype)


def _narrow(index: np.ndarray, bound: int) -> np.ndarray:
    """Indices below ``bound`` as 32-bit integers when they all fit (see :func:`_indices`)."""
    return index.astype(np.int32) if bound < np.iinfo(np.int32).max else index


def _owners(owner: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.asarray(-1 if owner is None else owner, dtype=np.int32), shape)


def _seen(value: float | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as floats seen in ``shape``: a broadcast view, no copy."""
    return np.broadcast_to(np.asarray(value, float), shape)


def _joined(parts: Iterable[Iterable[int]], count: int) -> np.ndarray:
    """Sequences of integers laid end to end (``count`` of them in all)."""
    return np.fromiter(chain.from_iterable(parts), dtype=np.int64, count=count)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``arange(start, start + length)`` for each pair, laid end to end."""
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(lengths)
    return np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64) + np.repeat(
        np.asarray(starts, dtype=np.int64) - (ends - lengths), lengths
    )


def join_parts(parts: list[np.ndarray], dtype: npt.DTypeLike = float) -> np.ndarray:
    """Arrays of any shapes (broadcast views included) flattened and laid end to end,
    written once into a new array: at 100,000 devices a column array is 28 million
    numbers, and fresh memory is what costs most in building them."""
    out: np.ndarray = np.empty(sum(p.size for p in parts), dtype)
    start = 0
    for part in parts:
        out[start : start + part.size].reshape(part.shape)[...] = part
        start += part.size
    return out


@dataclass
class Built:
    """An LP built from a problem, with the column indices of each family."""

    data: Prepared
    lp: LinearProgram
    power_matrix: sp.csr_array  # (devices * T, columns)
    power_constant: np.ndarray  # (devices * T,)
    index: dict[str, np.ndarray]
    request_rows: list[np.ndarray]
    request_shortfall: list[np.ndarray]
    cost_columns: dict[str, np.ndarray]
    build_s: float = 0.0
    _cost: np.ndarray | None = field(default=None, repr=False)

    @property
    def cost(self) -> np.ndarray:
        """The LP's objective coefficients, one array (joined once).

        Raises ``RuntimeError`` when they were let go (the LP cut into blocks, which
        took them)."""
        if self._cost is None:
            self._cost = join_parts(self.lp.cost)
        if len(self._cost) != self.lp.columns:
            self._cost = None
            raise RuntimeError("the LP's costs were let go when it was cut into blocks")
        return self._cost


def build_arrays(
    problem: Problem,
    check: bool = True,
    fixed_shape: bool = False,
    owners: Mapping[str, np.ndarray] | None = None,
    data: Prepared | None = None,
    matrix: bool = True,
) -> Built:
    """Validate ``problem`` (unless ``check`` is false: a part of a problem already
    validated whole) and build its LP as arrays.

    With ``fixed_shape``, EVs and shiftable loads get columns over the whole horizon
    (bounded to 0 outside their windows) instead of inside their windows only: the
    same optimum, in a matrix whose shape does not depend on the windows, so that
    sites of one kind give identical blocks that differ only in bounds.

    ``owners`` names the block of every device of each family (``"batteries"``,
    ``"vehicles"``, ``"shiftable_loads"``, ``"curtailable_loads"``, ``"heat_pumps"``,
    ``"pv_systems"``, in the fleet's order), of every site (``"sites"``), feeder (in
    sorted order, ``"feeders"``) and request (``"requests"``); every column and row
    then records its block in ``lp.column_owner`` and ``lp.row_owner``. ``data``
    gives the problem's arrays when they are already worked out.

    Without ``matrix``, the LP's coefficients are left out (its columns, rows, bounds
    and costs are all there, and the devices' power map): for a block-diagonal LP
    whose blocks of one shape share their coefficients, built once elsewhere.
    """
    started = time.perf_counter()
    if check:
        validate(problem)
    if data is None:
        data = prepare(problem)
    fleet = problem.fleet
    steps = data.horizon.intervals
    dt = data.step_h
    lp = LinearProgram(keep_entries=matrix)
    if owners is not None:
        lp.column_owner, lp.row_owner = [], []

    def own(kind: str, which: Any = None) -> np.ndarray | None:
        """Blocks of a family's members (``which`` of them; a column when ``None``)."""
        if owners is None:
            return None
        blocks = np.asarray(owners[kind], dtype=np.int64)
        return blocks[:, None] if which is None else blocks[which]

    devices = fleet.devices()
    position = {d.device_id: i for i, d in enumerate(devices)}
    power = LinearProgram()  # rows: device * T + t
    power.rows = len(devices) * steps
    constant = np.zeros(len(devices) * steps)
    index: dict[str, np.ndarray] = {}
    # The same cost terms, by the same names, as the Pyomo model.
    costs: dict[str, list[np.ndarray]] = {
        name: []
        for name in (
            "degradation",
            "unmet_ev_energy",
            "comfort_curtailment",
            "comfort_heat_pump",
            "limit_violation",
            "shortfall",
        )
    }
    # Power rows (device * T + t) and site rows as 32-bit integers while they fit.
    ix: Any = (
        np.int32
        if max(len(devices), len(data.site_ids)) * steps < np.iinfo(np.int32).max
        else np.int64
    )
    t_all = np.arange(steps, dtype=ix)

    def power_rows(device_ids: list[str]) -> np.ndarray:
        return np.array([position[d] for d in device_ids], dtype=ix)[:, None] * steps + t_all

    # Batteries
    batteries = fleet.batteries
    nb = len(batteries)
    if nb:
        p_ch = np.array([b.p_charge_max_kw for b in batteries])
        p_dis = np.array([b.p_discharge_max_kw for b in batteries])
        e_max = np.array([b.e_max_kwh for b in batteries])
        eta_c = np.array([b.charge_efficiency for b in batteries])
        eta_d = np.array([b.discharge_efficiency for b in batteries])
        wear = np.array([b.degradation_cost_per_kwh for b in batteries])
        ob = own("batteries")
        ch = lp.variables((nb, steps), 0, p_ch[:, None], dt * wear[:, None], owner=ob)
        dis = lp.variables((nb, steps), 0, p_dis[:, None], dt * wear[:, None], owner=ob)
        soc = lp.variables(
            (nb, steps),
            np.array([b.soc_min_frac for b in batteries])[:, None] * e_max[:, None],
            np.array([b.soc_max_frac for b in batteries])[:, None] * e_max[:, None],
            owner=ob,
        )
        initial = np.array([b.soc_initial_frac for b in batteries]) * e_max
        rhs = np.zeros((nb, steps))
        rhs[:, 0] = initial
        rows = lp.constraints((nb, steps), rhs, rhs, owner=ob)
        lp.terms(rows, soc, 1.0)
        lp.terms(rows[:, 1:], soc[:, :-1], -1.0)
        lp.terms(rows, ch, -dt * eta_c[:, None])
        lp.terms(rows, dis, dt / eta_d[:, None])
        targets = [i for i, b in enumerate(batteries) if b.soc_final_min_frac is not None]
        if targets:
            level = (
                np.array([batteries[i].soc_final_min_frac or 0.0 for i in targets]) * e_max[targets]
            )
            rows = lp.constraints(len(targets), level, INF, owner=own("batteries", targets))
            lp.terms(rows, soc[targets, steps - 1], 1.0)
        if problem.integer:
            mode = lp.variables((nb, steps), 0, 1, integer=True, owner=ob)
            rows = lp.constraints((nb, steps), -INF, 0.0, owner=ob)
            lp.terms(rows, ch, 1.0)
            lp.terms(rows, mode, -p_ch[:, None])
            rows = lp.constraints((nb, steps), -INF, p_dis[:, None], owner=ob)
            lp.terms(rows, dis, 1.0)
            lp.terms(rows, mode, p_dis[:, None])
        prow = power_rows([b.device_id for b in batteries])
        power.terms(prow, ch, 1.0)
        power.terms(prow, dis, -1.0)
        index.update(battery_charge=ch, battery_discharge=dis, battery_soc=soc)
        costs["degradation"] = [ch.ravel(), dis.ravel()]

    # EVs
    vehicles = fleet.vehicles
    if vehicles:
        windows = data.vehicle_windows
        if fixed_shape:
            pairs_v = np.repeat(np.arange(len(vehicles), dtype=ix), steps)
            pairs_t = np.tile(np.arange(steps, dtype=ix), len(vehicles))
        else:
            pairs_v = np.concatenate(
                [np.full(w.last - w.first, v) for v, w in enumerate(windows)] or [np.zeros(0, int)]
            ).astype(np.int64)
            pairs_t = np.concatenate(
                [np.arange(w.first, w.last) for w in windows] or [np.zeros(0, int)]
            ).astype(np.int64)
        first = np.array([w.first for w in windows], dtype=np.int64)
        last = np.array([w.last for w in windows], dtype=np.int64)
        plugged = (pairs_t >= first[pairs_v]) & (pairs_t < last[pairs_v])
        p_max = np.array([v.p_max_kw for v in vehicles])
        eta = np.array([v.charge_efficiency for v in vehicles])
        ch = lp.variables(
            len(pairs_v),
            0,
            np.where(plugged, p_max[pairs_v], 0.0),
            owner=own("vehicles", pairs_v),
        )
        v2g = np.array([v.v2g_p_max_kw for v in vehicles])
        mask = v2g[pairs_v] > 0
        wear = np.array([v.v2g_degradation_cost_per_kwh for v in vehicles])
        dis = lp.variables(
            int(mask.sum()),
            0,
            np.where(plugged[mask], v2g[pairs_v[mask]], 0.0),
            dt * wear[pairs_v[mask]],
            owner=own("vehicles", pairs_v[mask]),
        )
        need = np.array([w.energy_kwh for w in windows])
        ov = own("vehicles", slice(None))
        unmet = lp.variables(
            len(vehicles),
            0,
            need,
            np.array([v.unmet_energy_cost_per_kwh for v in vehicles]),
            owner=ov,
        )
        rows = lp.constraints(len(vehicles), need, INF, owner=ov)
        lp.terms(rows[pairs_v], ch, dt * eta[pairs_v])
        lp.terms(rows[pairs_v[mask]], dis, -dt)
        lp.terms(rows, unmet, 1.0)
        rows = lp.constraints(len(vehicles), -INF, need, owner=ov)  # never more than it needs
        lp.terms(rows[pairs_v], ch, dt * eta[pairs_v])
        lp.terms(rows[pairs_v[mask]], dis, -dt)
        for v in np.flatnonzero(v2g > 0):
            w = windows[v]
            mine = np.flatnonzero(pairs_v == v)
            mine_dis = np.flatnonzero(pairs_v[mask] == v)
            span = len(mine)  # the window, or the whole horizon (columns 0 outside)
            if span <= 0:
                continue
            upper_level = (vehicles[v].e_max_kwh or 0.0) - w.arrival_energy_kwh
            rows = lp.constraints(
                span, -w.arrival_energy_kwh, upper_level, owner=own("vehicles", v)
            )
            later = np.arange(span)[:, None] >= np.arange(span)[None, :]  # row t uses tau <= t
            upto, used = np.nonzero(later)
            lp.terms(rows[upto], ch[mine][used], dt * eta[v])
            lp.terms(rows[upto], dis[mine_dis][used], -dt)
        dev = np.array([position[v.device_id] for v in vehicles], dtype=ix)
        power.terms(dev[pairs_v] * steps + pairs_t, ch, 1.0)
        power.terms(dev[pairs_v[mask]] * steps + pairs_t[mask], dis, -1.0)
        index.update(
            ev_charge=ch,
            ev_pairs_v=pairs_v,
            ev_pairs_t=pairs_t,
            ev_unmet=unmet,
            ev_discharge=dis,
            ev_v2g_mask=mask,
        )
        costs["unmet_ev_energy"] = [unmet]
        costs["degradation"].append(dis)

    # Shiftable loads
    loads = fleet.shiftable_loads
    if loads:
        starts_i, starts_k, start_open = [], [], []
        for i, load in enumerate(loads):
            if load.contiguous:
                allowed = np.array(list(data.shiftable_starts[i]), dtype=np.int64)
                k = allowed
                if fixed_shape:
                    k = np.union1d(np.arange(steps - len(load.profile_kw) + 1), allowed)
                starts_i.append(np.full(len(k), i))
                starts_k.append(k)
                start_open.append(np.isin(k, allowed))
        if starts_i:
            si = np.concatenate(starts_i)
            sk = np.concatenate(starts_k)
            z = lp.variables(
                len(si),
                0,
                np.concatenate(start_open).astype(float),
                integer=problem.integer,
                owner=own("shiftable_loads", si),
            )
            contiguous = np.unique(si)
            rows = lp.constraints(
                len(contiguous), 1.0, 1.0, owner=own("shiftable_loads", contiguous)
            )
            lookup = np.full(len(loads), -1)
            lookup[contiguous] = np.arange(len(contiguous))
            lp.terms(rows[lookup[si]], z, 1.0)
            for n, (i, k) in enumerate(zip(si, sk, strict=True)):
                profile = np.array(loads[i].profile_kw)
                offsets = np.flatnonzero(profile)
                power.terms(
                    position[loads[i].device_id] * steps + k + offsets, z[n], profile[offsets]
                )
        free = [i for i, load in enumerate(loads) if not load.contiguous]
        if free:
            wi, wt, wo = [], [], []
            for i in free:
                starts = data.shiftable_starts[i]
                t = np.arange(starts.start, starts[-1] + len(loads[i].profile_kw))
                if fixed_shape:
                    wo.append((t_all >= t[0]) & (t_all <= t[-1]))
                    t = t_all
                else:
                    wo.append(np.ones(len(t), dtype=bool))
                wi.append(np.full(len(t), i))
                wt.append(t)
            fi = np.concatenate(wi)
            ft = np.concatenate(wt)
            peak = np.array([max(load.profile_kw) for load in loads])
            kw = lp.variables(
                len(fi),
                0,
                np.where(np.concatenate(wo), peak[fi], 0.0),
                owner=own("shiftable_loads", fi),
            )
            energy = np.array([dt * sum(loads[i].profile_kw) for i in free])
            rows = lp.constraints(len(free), energy, energy, owner=own("shiftable_loads", free))
            lookup = np.full(len(loads), -1)
            lookup[free] = np.arange(len(free))
            lp.terms(rows[lookup[fi]], kw, dt)
            dev = np.array([position[load.device_id] for load in loads], dtype=ix)
            power.terms(dev[fi] * steps + ft, kw, 1.0)

    # Curtailable loads
    curtailable = fleet.curtailable_loads
    nc = len(curtailable)
    if nc:
        cap = np.array(data.curtail_max_kw)
        comfort = np.array([c.comfort_cost_per_kwh for c in curtailable])
        oc = own("curtailable_loads")
        cur = lp.variables((nc, steps), 0, cap, dt * comfort[:, None], owner=oc)
        reb = lp.variables((nc, steps), 0, np.array(data.curtail_rebound_max_kw), owner=oc)
        debt_upper = np.full((nc, steps), INF)
        debt = lp.variables((nc, steps), 0, debt_upper, owner=oc)
        rho = np.array([c.rebound_frac for c in curtailable])
        rows = lp.constraints((nc, steps), 0.0, 0.0, owner=oc)
        lp.terms(rows, debt, 1.0)
        lp.terms(rows[:, 1:], debt[:, :-1], -1.0)
        lp.terms(rows, cur, -dt * rho[:, None])
        lp.terms(rows, reb, dt)
        rows = lp.constraints(nc, -INF, 0.0, owner=own("curtailable_loads", slice(None)))
        lp.terms(rows, debt[:, steps - 1], 1.0)
        for c, shed in enumerate(curtailable):
            length = max(1, round(shed.max_event_h / dt))
            if length >= steps:
                continue
            firsts = np.arange(steps - length)
            bound = np.array([length * float(np.max(cap[c, u : u + length + 1])) for u in firsts])
            event_rows = lp.constraints(len(firsts), -INF, bound, owner=own("curtailable_loads", c))
            spread = (firsts[:, None] + np.arange(length + 1)[None, :]).ravel()
            lp.terms(np.repeat(event_rows, length + 1), cur[c, spread], 1.0)
        prow = power_rows([c.device_id for c in curtailable])
        constant[prow.ravel()] += np.array(data.curtail_baseline_kw).ravel()
        power.terms(prow, cur, -1.0)
        power.terms(prow, reb, 1.0)
        index.update(curtail=cur)
        costs["comfort_curtailment"] = [cur.ravel()]

    # Heat pumps
    pumps = fleet.heat_pumps
    nh = len(pumps)
    if nh:
        p_max = np.array([h.p_max_kw for h in pumps])
        cap_c = np.array([h.thermal_capacity_kwh_per_c for h in pumps])
        loss = np.array([h.heat_loss_kw_per_c for h in pumps])
        cop = np.array([h.cop for h in pumps])
        comfort = np.array([h.comfort_cost_per_ch for h in pumps])
        oh = own("heat_pumps")
        kw = lp.variables((nh, steps), 0, p_max[:, None], owner=oh)
        temp = lp.variables((nh, steps), -INF, INF, owner=oh)
        cold = lp.variables((nh, steps), 0, INF, dt * comfort[:, None], owner=oh)
        warm = lp.variables((nh, steps), 0, INF, dt * comfort[:, None], owner=oh)
        keep = 1 - dt * loss / cap_c
        outdoor = np.array(data.heat_pump_outdoor_c)
        rhs = (dt * loss / cap_c)[:, None] * outdoor
        rhs[:, 0] += keep * np.array([h.temp_initial_c for h in pumps])
        rows = lp.constraints((nh, steps), rhs, rhs, owner=oh)
        lp.terms(rows, temp, 1.0)
        lp.terms(rows[:, 1:], temp[:, :-1], -keep[:, None])
        lp.terms(rows, kw, -(dt * cop / cap_c)[:, None])
        low = np.array([h.temp_min_c for h in pumps])[:, None]
        rows = lp.constraints((nh, steps), low, INF, owner=oh)
        lp.terms(rows, temp, 1.0)
        lp.terms(rows, cold, 1.0)
        high = np.array([h.temp_max_c for h in pumps])[:, None]
        rows = lp.constraints((nh, steps), -INF, high, owner=oh)
        lp.terms(rows, temp, 1.0)
        lp.terms(rows, warm, -1.0)
        prow = power_rows([h.device_id for h in pumps])
        power.terms(prow, kw, 1.0)
        index.update(heat_pump_kw=kw, heat_pump_temp=temp)
        costs["comfort_heat_pump"] = [cold.ravel(), warm.ravel()]

    # PV
    systems = fleet.pv_systems
    if systems:
        forecast = np.array(data.pv_forecast_kw)
        allowed = np.array([s.curtailable for s in systems])[:, None]
        curt = lp.variables(
            (len(systems), steps), 0, np.where(allowed, forecast, 0.0), owner=own("pv_systems")
        )
        prow = power_rows([s.device_id for s in systems])
        constant[prow.ravel()] -= forecast.ravel()
        power.terms(prow, curt, 1.0)

    power_entries = power.coo((len(devices) * steps, lp.columns))
    power_matrix = sp.csr_array(power_entries)

    # Sites
    nz = len(data.site_ids)
    site_of = np.array([data.site_of[d.device_id] for d in devices], dtype=ix)
    violation_cost = dt * problem.limit_violation_cost_per_kwh
    price_in = data.import_price if data.import_price is not None else np.zeros(steps)
    price_out = data.export_price if data.export_price is not None else np.zeros(steps)
    osite = own("sites")
    imp = lp.variables((nz, steps), 0, INF, dt * price_in[None, :], owner=osite)
    exp = lp.variables((nz, steps), 0, INF, -dt * price_out[None, :], owner=osite)
    # Violation columns only where a limit can be violated (others would be empty).
    has_limit = np.array(
        [
            data.site_import_max_kw[s] is not None or data.site_export_max_kw[s] is not None
            for s in range(nz)
        ],
        dtype=bool,
    )
    viol = np.full((nz, steps), -1, dtype=np.int64)
    if has_limit.any():
        viol[has_limit] = lp.variables(
            (int(has_limit.sum()), steps),
            0,
            INF,
            violation_cost,
            owner=None if osite is None else osite[has_limit],
        )
    # site_net_balance: import - export - sum(device power) = base + sum(constants).
    # A device's power row (device, t) adds to its site's row (site, t); a column
    # belongs to one device, so the entries carry over with their rows renamed.
    site_row = (site_of[:, None] * steps + t_all).ravel()
    rhs = data.site_base_kw.ravel() + np.bincount(site_row, constant, minlength=nz * steps)
    rows = lp.constraints((nz, steps), rhs.reshape(nz, steps), rhs.reshape(nz, steps), owner=osite)
    lp.terms(rows, imp, 1.0)
    lp.terms(rows, exp, -1.0)
    if matrix:
        lp.terms(
            rows.ravel()[site_row[power_entries.row]],
            _narrow(power_entries.col, lp.columns),
            -power_entries.data,
        )
    del power_entries
    limited = [s for s in range(nz) if data.site_import_max_kw[s] is not None]
    if limited:
        level = np.array([data.site_import_max_kw[s] for s in limited], float)[:, None]
        rows = lp.constraints(
            (len(limited), steps), -INF, level, owner=None if osite is None else osite[limited]
        )
        lp.terms(rows, imp[limited], 1.0)
        lp.terms(rows, viol[limited], -1.0)
    limited = [s for s in range(nz) if data.site_export_max_kw[s] is not None]
    if limited:
        level = np.array([data.site_export_max_kw[s] for s in limited], float)[:, None]
        rows = lp.constraints(
            (len(limited), steps), -INF, level, owner=None if osite is None else osite[limited]
        )
        lp.terms(rows, exp[limited], 1.0)
        lp.terms(rows, viol[limited], -1.0)
    if data.demand_charge_per_kw:
        peak = lp.variables(nz, 0, INF, data.demand_charge_per_kw, owner=own("sites", slice(None)))
        rows = lp.constraints((nz, steps), 0.0, INF, owner=osite)
        lp.terms(rows, peak[:, None], 1.0)
        lp.terms(rows, imp, -1.0)
        costs["demand_charge"] = [peak]
    if data.import_price is not None:
        costs["energy"] = [imp.ravel(), exp.ravel()]
    costs["limit_violation"] = [viol[has_limit].ravel()]

    # Feeders: the sum of their sites' net power (import - export)
    feeders = data.feeder_ids
    capped = np.array(
        [
            data.feeder_import_max_kw[f] is not None or data.feeder_export_max_kw[f] is not None
            for f in feeders
        ],
        dtype=bool,
    )
    fviol = np.full((len(feeders), steps), -1, dtype=np.int64)
    if capped.any():
        fviol[capped] = lp.variables(
            (int(capped.sum()), steps),
            0,
            INF,
            violation_cost,
            owner=None if (feeder_blocks := own("feeders")) is None else feeder_blocks[capped],
        )
    sites_of: dict[str, list[int]] = {}
    for s, feeder in enumerate(data.site_feeder):
        sites_of.setdefault(feeder, []).append(s)
    for f, feeder in enumerate(feeders):
        members = sites_of.get(feeder, [])
        for limit, sign in (
            (data.feeder_import_max_kw[feeder], 1.0),
            (data.feeder_export_max_kw[feeder], -1.0),
        ):
            if limit is None:
                continue
            rows = lp.constraints(steps, -INF, float(limit), owner=own("feeders", f))
            lp.terms(rows[None, :], imp[members], sign)
            lp.terms(rows[None, :], exp[members], -sign)
            lp.terms(rows, fviol[f], -1.0)
    costs["limit_violation"].append(fviol[capped].ravel())

    # Requests on expected change, sum f_i (D x + d - b): one row per request interval,
    # all requests built by one sparse product.
    factor = np.array([d.delivery_factor for d in devices])
    baseline = (
        np.concatenate([data.baseline_kw[d.device_id] for d in devices]) if devices else np.zeros(0)
    )
    request_rows: list[np.ndarray] = []
    request_short: list[np.ndarray] = []
    short_cols: list[np.ndarray] = []
    if data.scopes:
        scopes = data.scopes
        # Every request's rows at once, on sums over each scope's devices.
        widths = np.array([len(scope.intervals) for scope in scopes], dtype=np.int64)
        first_row = np.cumsum(widths) - widths
        count = int(widths.sum())
        row_interval = _joined((scope.intervals for scope in scopes), count)
        row_scope = np.repeat(np.arange(len(scopes)), widths)
        site_counts = np.array([len(scope.sites) for scope in scopes], dtype=np.int64)
        scope_sites = _joined((scope.sites for scope in scopes), int(site_counts.sum()))
        pair_scope = np.repeat(np.arange(len(scopes)), site_counts)  # per (scope, site)
        by_site = np.argsort(site_of, kind="stable")
        site_starts = np.searchsorted(site_of[by_site], np.arange(nz + 1))
        per_site = np.diff(site_starts)[scope_sites]
        scope_devices = by_site[_ranges(site_starts[scope_sites], per_site)]
        device_scope = np.repeat(pair_scope, per_site)  # per (scope, device)
        # Sums over each scope's devices, per interval, then each row's interval of its
        # scope's: no entry per (row, device) unless the coefficients are wanted.
        in_scope = sp.csr_array(
            (np.ones(len(scope_devices)), (device_scope, scope_devices)),
            shape=(len(scopes), len(devices)),
        )
        per_device = (constant - baseline).reshape(len(devices), steps)
        per_device *= factor[:, None]
        offset = (in_scope @ per_device)[row_scope, row_interval]
        del per_device
        devices_base = (in_scope @ baseline.reshape(len(devices), steps))[row_scope, row_interval]
        # Each row's baseline: its sites' base loads and its devices' baselines.
        site_row = _ranges(first_row[pair_scope], widths[pair_scope])
        scope_base_kw = (
            np.bincount(
                site_row,
                data.site_base_kw[
                    np.repeat(scope_sites, widths[pair_scope]), row_interval[site_row]
                ],
                minlength=count,
            )
            + devices_base
        )
        del site_row, devices_base
        reduction_rows = np.array([scope.request.kw is not None for scope in scopes])[row_scope]
        kw = np.array([float(scope.request.kw or 0.0) for scope in scopes])[row_scope]
        cap = np.concatenate(
            [
                np.zeros(len(scope.intervals)) if scope.cap_kw is None else scope.cap_kw
                for scope in scopes
            ]
        )
        price = np.array([scope.request.shortfall_price_per_kwh for scope in scopes])
        row_sign = np.where(reduction_rows, -1.0, 1.0)
        row_lower = np.where(reduction_rows, kw + offset, -INF)
        row_upper = np.where(reduction_rows, INF, cap - scope_base_kw - offset)
        request_blocks = own("requests", slice(None))
        request_owner = None if request_blocks is None else request_blocks[row_scope]
        req_rows = lp.constraints(count, row_lower, row_upper, owner=request_owner)
        req_short = lp.variables(count, 0, INF, dt * price[row_scope], owner=request_owner)
        if matrix:
            # An entry per (row, device in scope), at the device's power in that row's
            # interval, weighted by its delivery factor.
            entry_row = _ranges(first_row[device_scope], widths[device_scope])
            entry_device = np.repeat(scope_devices, widths[device_scope])
            entry_col = entry_device * steps + row_interval[entry_row]
            weights = sp.csr_array(
                (factor[entry_device], (entry_row, entry_col)),
                shape=(count, len(devices) * steps),
            )
            del entry_row, entry_device, entry_col
            change = (weights @ power_matrix).tocoo()
            lp.terms(
                req_rows[change.row],
                _narrow(change.col, lp.columns),
                row_sign[change.row] * change.data,
            )
        lp.terms(req_rows, req_short, -row_sign)
        for first, width in zip(first_row.tolist(), widths.tolist(), strict=True):
            request_rows.append(req_rows[first : first + width])
            request_short.append(req_short[first : first + width])
        short_cols.append(req_short)
    costs["shortfall"] = short_cols
    index.update(site_import=imp, site_export=exp, site_violation=viol, feeder_violation=fviol)
    return Built(
        data=data,
        lp=lp,
        power_matrix=power_matrix,
        power_constant=constant,
        index=index,
        request_rows=request_rows,
        request_shortfall=request_short,
        cost_columns={
            k: np.concatenate([np.ravel(a) for a in v]) if v else np.zeros(0, dtype=np.int64)
            for k, v in costs.items()
        },
        build_s=time.perf_counter() - started,
    )


def solve_arrays(
    built: Built,
    *,
    time_limit_s: float | None = None,
    mip_gap: float | None = None,
    threads: int | None = None,
    options: Mapping[str, bool | int | float | str] | None = None,
    basis: tuple[np.ndarray, np.ndarray] | None = None,
) -> Solution:
    """Solve a built LP with HiGHS and read its solution back into arrays."""
    lp = built.lp
    started = time.perf_counter()
    matrix = lp.matrix()
    integer = join_parts(lp.integer, bool)
    outcome = run_lp(
        cost=join_parts(lp.cost),
        column_lower=join_parts(lp.lower),
        column_upper=join_parts(lp.upper),
        row_lower=join_parts(lp.row_lower),
        row_upper=join_parts(lp.row_upper),
        matrix=matrix,
        integer=integer,
        time_limit_s=time_limit_s,
        mip_gap=mip_gap,
        threads=threads,
        options=options,
        basis=basis,
    )
    handoff_s = time.perf_counter() - started - outcome.solve_s
    timings = {"build_s": built.build_s, "handoff_s": handoff_s, "solve_s": outcome.solve_s}
    size = {"variables": lp.columns, "constraints": lp.rows, "nonzeros": int(matrix.nnz)}
    if outcome.x is None:
        return Solution.empty(outcome.status, timings, size)
    solution = read_solution(
        built, outcome.x, outcome.row_dual, status=outcome.status, objective=outcome.objective
    )
    solution.mip_gap = outcome.mip_gap
    solution.timings_s = timings
    solution.size = size
    solution.basis = outcome.basis
    return solution


def reusable(into: Solution | None, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The array ``name`` of ``into`` when it has ``shape`` (its values to be written
    over), else a new one: at 100,000 devices a plan's arrays take 400 MB, and fresh
    memory is what costs most in reading a point back."""
    old = getattr(into, name, None)
    if isinstance(old, np.ndarray) and old.shape == shape and old.dtype == float:
        return old
    return np.empty(shape)


def read_solution(
    built: Built,
    x: np.ndarray,
    duals: np.ndarray | None,
    *,
    status: str = "optimal",
    objective: float | None = None,
    costs: bool = True,
    into: Solution | None = None,
) -> Solution:
    """A point of ``built``'s LP (columns ``x``, row ``duals``) read back into arrays;
    the objective is recomputed from ``x`` when not given, and the cost terms left
    out unless ``costs``. The arrays of ``into`` (a point of the same LP read before
    and no longer needed) are written over instead of new ones."""
    data = built.data
    steps = data.horizon.intervals
    devices = data.problem.fleet.devices()
    index = built.index
    if objective is None:
        objective = float(built.cost @ x)
    device_columns = built.power_matrix.shape[1]

    def place(name: str, shape: tuple[int, ...]) -> np.ndarray:
        return reusable(into, name, shape)

    def take(name: str, field: str, shape: tuple[int, int]) -> np.ndarray:
        if name not in index:
            return np.zeros(shape)
        return np.take(x, index[name], out=place(field, index[name].shape))

    def where_kept(name: str, field: str) -> np.ndarray:
        """Values of columns that may be missing (-1), 0 for those."""
        which = index[name]
        out = np.take(x, which, out=place(field, which.shape))
        out[which < 0] = 0.0
        return out

    power = place("power_kw", (len(devices), steps))
    np.add(built.power_matrix @ x[:device_columns], built.power_constant, out=power.reshape(-1))
    nb, nv = len(data.problem.fleet.batteries), len(data.problem.fleet.vehicles)
    ev_charge = place("ev_charge_kw", (nv, steps))
    ev_discharge = place("ev_discharge_kw", (nv, steps))
    ev_charge.fill(0.0)
    ev_discharge.fill(0.0)
    if nv:
        ev_charge[index["ev_pairs_v"], index["ev_pairs_t"]] = x[index["ev_charge"]]
        v2g = index["ev_v2g_mask"]
        ev_discharge[index["ev_pairs_v"][v2g], index["ev_pairs_t"][v2g]] = x[index["ev_discharge"]]
    imports = index["site_import"]
    site_net = np.take(x, imports, out=place("site_net_kw", imports.shape))
    site_net -= x[index["site_export"]]
    fleet = data.problem.fleet
    return Solution(
        status=status,
        feasible=True,
        objective=float(objective or 0.0),
        mip_gap=0.0 if status == "optimal" else None,
        power_kw=power,
        battery_charge_kw=take("battery_charge", "battery_charge_kw", (nb, steps)),
        battery_discharge_kw=take("battery_discharge", "battery_discharge_kw", (nb, steps)),
        battery_soc_kwh=take("battery_soc", "battery_soc_kwh", (nb, steps)),
        ev_charge_kw=ev_charge,
        ev_discharge_kw=ev_discharge,
        ev_unmet_kwh=x[index["ev_unmet"]] if nv else np.zeros(0),
        curtail_kw=take("curtail", "curtail_kw", (len(fleet.curtailable_loads), steps)),
        heat_pump_kw=take("heat_pump_kw", "heat_pump_kw", (len(fleet.heat_pumps), steps)),
        heat_pump_temp_c=take("heat_pump_temp", "heat_pump_temp_c", (len(fleet.heat_pumps), steps)),
        site_net_kw=site_net,
        site_violation_kw=where_kept("site_violation", "site_violation_kw"),
        feeder_violation_kw=where_kept("feeder_violation", "feeder_violation_kw"),
        request_shortfall_kw=[x[s] for s in built.request_shortfall],
        request_dual=[duals[r] if duals is not None else None for r in built.request_rows],
        costs={k: float(built.cost[c] @ x[c]) for k, c in built.cost_columns.items()}
        if costs
        else {},
    )
