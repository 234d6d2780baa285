"""Chunk LPs of one fixed structure, hot-started from one another: a measurement.

The fleet path (:mod:`optimizer.decompose`) builds and solves every chunk's LP from
scratch; HiGHS then needs 0.55-0.8 ms per device, a minute per pass at 100,000 devices.
Here every chunk holds sites of one composition (battery+EV, EV+load, ...) within a
feeder, every device has columns for all intervals (an EV's outside its window are
bounded to 0), so chunks of one layout differ only in bounds and costs: one HiGHS
object per layout re-solves each next chunk from the previous optimal basis after
changing only the bounds and costs that differ. The script prints cold and hot HiGHS
time per device, iterations, the per-chunk overhead, one correction round of
:func:`optimizer.decompose._correct` re-solved from each chunk's own basis, and checks
a sample of chunk objectives against :func:`optimizer.arrays.build_arrays` on the same
chunk problem.

Scope: batteries, EVs without V2G and interruptible shiftable loads with the same
efficiencies and delivery factors, no site limits and no demand charge (the benchmark
fleet of :mod:`benchmarks.scaling_fleet`); it asserts this.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/chunk_hotstart.py --devices 10000 --sites 6
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import highspy
import numpy as np
import scipy.sparse as sp

from benchmarks.scaling_fleet import scaling_problem
from optimizer import decompose
from optimizer.arrays import build_arrays, solve_arrays
from optimizer.decompose import CHUNK_OPTIONS, Chunk
from optimizer.prepare import prepare

INF = highspy.kHighsInf
KINDS = "BEL"


# ---------------------------------------------------------------- fleet arrays
@dataclass
class FleetArrays:
    T: int
    dt: float
    kind: np.ndarray  # per device: 0 B, 1 E, 2 L
    local: np.ndarray  # per device: index within its kind's list
    site: np.ndarray  # per device: site index
    baseline: np.ndarray  # (devices, T)
    factor: np.ndarray  # (devices,)
    site_base: np.ndarray  # (sites, T)
    # batteries
    b_pch: np.ndarray
    b_pdis: np.ndarray
    b_smin: np.ndarray
    b_smax: np.ndarray
    b_init: np.ndarray
    b_final: np.ndarray
    b_wear: np.ndarray
    b_eta: tuple[float, float]
    # vehicles
    e_ub: np.ndarray  # (nv, T) p_max inside window, 0 outside
    e_need: np.ndarray
    e_unmet_cost: np.ndarray
    e_eta: float
    # loads
    l_ub: np.ndarray  # (nl, T)
    l_energy: np.ndarray
    price_in: np.ndarray
    price_out: np.ndarray
    violation_price: float


def fleet_arrays(data) -> FleetArrays:
    p = data.problem
    fleet = p.fleet
    T = data.horizon.intervals
    dt = data.step_h
    devices = fleet.devices()
    kind_of = {}
    for i, b in enumerate(fleet.batteries):
        kind_of[b.device_id] = (0, i)
    for i, v in enumerate(fleet.vehicles):
        kind_of[v.device_id] = (1, i)
    for i, s in enumerate(fleet.shiftable_loads):
        kind_of[s.device_id] = (2, i)
    for extra in (fleet.curtailable_loads, fleet.heat_pumps, fleet.pv_systems):
        assert not extra, "prototype covers batteries, EVs and interruptible loads"
    kind = np.array([kind_of[d.device_id][0] for d in devices])
    local = np.array([kind_of[d.device_id][1] for d in devices])
    bats = fleet.batteries
    e = np.array([b.e_max_kwh for b in bats])
    etas = {(b.charge_efficiency, b.discharge_efficiency) for b in bats}
    assert len(etas) <= 1, "matrix coefficients differ: make efficiency part of the type"
    veh = fleet.vehicles
    assert all(v.v2g_p_max_kw == 0 for v in veh), "V2G not in the prototype"
    ev_etas = {v.charge_efficiency for v in veh}
    assert len(ev_etas) <= 1
    e_ub = np.zeros((len(veh), T))
    for i, (v, w) in enumerate(zip(veh, data.vehicle_windows, strict=False)):
        e_ub[i, w.first : w.last] = v.p_max_kw
    loads = fleet.shiftable_loads
    assert all(not s.contiguous for s in loads)
    l_ub = np.zeros((len(loads), T))
    for i, (s, starts) in enumerate(zip(loads, data.shiftable_starts, strict=False)):
        l_ub[i, starts.start : starts[-1] + len(s.profile_kw)] = max(s.profile_kw)
    factor = np.array([d.delivery_factor for d in devices])
    assert np.all(factor == factor[0]), "delivery factor is a coefficient: part of the type"
    assert all(x is None for x in data.site_import_max_kw + data.site_export_max_kw)
    assert not data.demand_charge_per_kw
    return FleetArrays(
        T=T,
        dt=dt,
        kind=kind,
        local=local,
        site=np.array([data.site_of[d.device_id] for d in devices]),
        baseline=np.array([data.baseline_kw[d.device_id] for d in devices]),
        factor=factor,
        site_base=data.site_base_kw,
        b_pch=np.array([b.p_charge_max_kw for b in bats]),
        b_pdis=np.array([b.p_discharge_max_kw for b in bats]),
        b_smin=np.array([b.soc_min_frac for b in bats]) * e,
        b_smax=np.array([b.soc_max_frac for b in bats]) * e,
        b_init=np.array([b.soc_initial_frac for b in bats]) * e,
        b_final=np.array(
            [-INF if b.soc_final_min_frac is None else b.soc_final_min_frac for b in bats]
        )
        * np.where(np.array([b.soc_final_min_frac is None for b in bats]), 1.0, e),
        b_wear=np.array([b.degradation_cost_per_kwh for b in bats]),
        b_eta=next(iter(etas)) if etas else (1.0, 1.0),
        e_ub=e_ub,
        e_need=np.array([w.energy_kwh for w in data.vehicle_windows]),
        e_unmet_cost=np.array([v.unmet_energy_cost_per_kwh for v in veh]),
        e_eta=next(iter(ev_etas)) if ev_etas else 1.0,
        l_ub=l_ub,
        l_energy=np.array([dt * sum(s.profile_kw) for s in loads]),
        price_in=data.import_price,
        price_out=data.export_price,
        violation_price=p.limit_violation_cost_per_kwh,
    )


# ---------------------------------------------------------------- partition
@dataclass
class TypedChunk:
    chunk: Chunk  # the decompose.Chunk (real sites only)
    stype: tuple[int, ...]  # sorted kinds per site, e.g. (0, 1)
    slots: np.ndarray  # (count,) site index per slot, -1 = dummy
    slot_devices: np.ndarray  # (count, len(stype)) device index per slot, -1 = dummy


def _slot_key(fa: FleetArrays, i: int) -> float:
    q, j = int(fa.kind[i]), int(fa.local[i])
    if q == 0:
        return fa.b_pch[j] * 100 + fa.b_smax[j]
    if q == 1:
        return float(np.argmax(fa.e_ub[j] > 0)) * 100 + float((fa.e_ub[j] > 0).sum())
    return float(np.argmax(fa.l_ub[j] > 0)) * 100 + float((fa.l_ub[j] > 0).sum())


def type_partition(data, fa: FleetArrays, k: int, pad: bool) -> list[TypedChunk]:
    by_site = defaultdict(list)
    for i in range(len(fa.kind)):
        by_site[fa.site[i]].append(i)
    groups = defaultdict(list)  # (feeder, stype) -> sites
    for s, feeder in enumerate(data.site_feeder):
        devs = sorted(by_site[s], key=lambda i: (fa.kind[i], i))
        groups[(feeder, tuple(int(fa.kind[i]) for i in devs))].append((s, devs))
    out = []
    for (feeder, stype), members in sorted(groups.items()):
        for a in range(0, len(members), k):
            part = members[a : a + k]
            count = k if pad else len(part)
            slots = np.full(count, -1)
            slot_dev = np.full((count, len(stype)), -1)
            for j, (s, devs) in enumerate(part):
                slots[j] = s
                slot_dev[j] = devs
            chunk = Chunk([s for s, _ in part], feeder, sorted(i for _, devs in part for i in devs))
            out.append(TypedChunk(chunk, stype, slots, slot_dev))
    return out


def chunk_caps(rows, chunks: list[TypedChunk]):
    """Per chunk: list of (interval array, cap array, price) per group, in group order."""
    caps = []
    for tc in chunks:
        groups = []
        for members in tc.chunk.groups.values():
            t = np.array([rows[i].interval for i, _ in members])
            cap = np.array([rows[i].baseline_kw[j] - rows[i].share_kw[j] for i, j in members])
            groups.append((t, cap, rows[members[0][0]].price_per_kwh))
        caps.append(groups)
    return caps


# ---------------------------------------------------------------- template
class Template:
    """The LP of ``count`` sites of type ``stype`` with coupling groups over ``spans``."""

    def __init__(self, fa: FleetArrays, stype, count, spans, prices):
        T, dt = fa.T, fa.dt
        self.fa, self.stype, self.count, self.spans = fa, stype, count, spans
        per = {q: stype.count(q) for q in range(3)}
        self.nb, self.ne, self.nl = (count * per[q] for q in range(3))
        ns = count
        # slot -> site slot, slot -> position in stype
        self.pos = {q: [j for j, kk in enumerate(stype) if kk == q] for q in range(3)}
        ncol = 0

        def cols(n):
            nonlocal ncol
            idx = np.arange(ncol, ncol + n)
            ncol += n
            return idx

        nb, ne, nl = self.nb, self.ne, self.nl
        c = {}
        c["bch"] = cols(nb * T).reshape(nb, T)
        c["bdis"] = cols(nb * T).reshape(nb, T)
        c["bsoc"] = cols(nb * T).reshape(nb, T)
        c["ech"] = cols(ne * T).reshape(ne, T)
        c["eun"] = cols(ne)
        c["lkw"] = cols(nl * T).reshape(nl, T)
        c["imp"] = cols(ns * T).reshape(ns, T)
        c["exp"] = cols(ns * T).reshape(ns, T)
        c["short"] = [cols(len(sp_)) for sp_ in spans]
        self.c, self.ncol = c, ncol
        nrow = 0

        def rowsf(n):
            nonlocal nrow
            idx = np.arange(nrow, nrow + n)
            nrow += n
            return idx

        r = {}
        r["bbal"] = rowsf(nb * T).reshape(nb, T)
        r["bfin"] = rowsf(nb)
        r["elo"] = rowsf(ne)
        r["ehi"] = rowsf(ne)
        r["len"] = rowsf(nl)
        r["sbal"] = rowsf(ns * T).reshape(ns, T)
        r["grp"] = [rowsf(len(sp_)) for sp_ in spans]
        self.r, self.nrow = r, nrow
        R, C, V = [], [], []

        def add(rr, cc, vv):
            rr, cc, vv = np.broadcast_arrays(rr, cc, np.asarray(vv, float))
            R.append(rr.ravel())
            C.append(cc.ravel())
            V.append(vv.ravel())

        eta_c, eta_d = fa.b_eta
        add(r["bbal"], c["bsoc"], 1.0)
        add(r["bbal"][:, 1:], c["bsoc"][:, :-1], -1.0)
        add(r["bbal"], c["bch"], -dt * eta_c)
        add(r["bbal"], c["bdis"], dt / eta_d)
        add(r["bfin"], c["bsoc"][:, T - 1], 1.0)
        add(r["elo"][:, None], c["ech"], dt * fa.e_eta)
        add(r["elo"], c["eun"], 1.0)
        add(r["ehi"][:, None], c["ech"], dt * fa.e_eta)
        add(r["len"][:, None], c["lkw"], dt)
        add(r["sbal"], c["imp"], 1.0)
        add(r["sbal"], c["exp"], -1.0)
        # device power into its site's balance (-) and into the coupling rows (+f)
        f = float(fa.factor[0])
        site_of = {q: np.repeat(np.arange(count), per[q]) for q in range(3)}
        for q, names in (
            (0, (("bch", 1.0), ("bdis", -1.0))),
            (1, (("ech", 1.0),)),
            (2, (("lkw", 1.0),)),
        ):
            for name, sign in names:
                if c[name].size:
                    add(r["sbal"][site_of[q]], c[name], -sign)
                    for g, span in enumerate(spans):
                        add(r["grp"][g][None, :], c[name][:, span], f * sign)
        for g in range(len(spans)):
            add(r["grp"][g], c["short"][g], -1.0)
        m = sp.csc_array(
            (np.concatenate(V), (np.concatenate(R), np.concatenate(C))), shape=(nrow, ncol)
        )
        m.sum_duplicates()
        self.matrix = m
        self.start = m.indptr.astype(np.int32)
        self.index = m.indices.astype(np.int32)
        self.value = m.data.astype(np.float64)
        self.prices = prices
        self.col_idx = np.arange(ncol, dtype=np.int32)
        self.row_idx = np.arange(nrow, dtype=np.int32)

    def bounds(self, chunks: list[TypedChunk], caps):
        """Column bounds, costs and row bounds of all ``chunks`` at once: (n, ncol)/(n, nrow)."""
        fa, T, dt = self.fa, self.fa.T, self.fa.dt
        n = len(chunks)
        slot_dev = np.stack([tc.slot_devices for tc in chunks])  # (n, count, per site)
        slots = np.stack([tc.slots for tc in chunks])  # (n, count)

        def devs(q):  # (n, slots of kind q) local indices into the kind arrays, -1 dummy
            d = slot_dev[:, :, self.pos[q]].reshape(n, -1)
            return np.where(d >= 0, fa.local[np.maximum(d, 0)], -1), d

        lo = np.zeros((n, self.ncol))
        up = np.zeros((n, self.ncol))
        cost = np.zeros((n, self.ncol))
        rlo = np.zeros((n, self.nrow))
        rup = np.zeros((n, self.nrow))
        c, r = self.c, self.r
        bl, _bdev = devs(0)
        if self.nb:
            real = bl >= 0
            g = np.maximum(bl, 0)
            z = lambda a: np.where(real, a[g], 0.0)  # noqa: E731
            up[:, c["bch"]] = z(fa.b_pch)[:, :, None]
            up[:, c["bdis"]] = z(fa.b_pdis)[:, :, None]
            lo[:, c["bsoc"]] = z(fa.b_smin)[:, :, None]
            up[:, c["bsoc"]] = z(fa.b_smax)[:, :, None]
            wear = dt * np.where(real, fa.b_wear[g], fa.b_wear[0])[:, :, None]
            cost[:, c["bch"]] = wear
            cost[:, c["bdis"]] = wear
            rhs = np.zeros((n, self.nb, T))
            rhs[:, :, 0] = z(fa.b_init)
            rlo[:, r["bbal"]] = rhs
            rup[:, r["bbal"]] = rhs
            rlo[:, r["bfin"]] = np.where(real, fa.b_final[g], -INF)
            rup[:, r["bfin"]] = INF
        el, _edev = devs(1)
        if self.ne:
            real = el >= 0
            g = np.maximum(el, 0)
            up[:, c["ech"]] = np.where(real[:, :, None], fa.e_ub[g], 0.0)
            need = np.where(real, fa.e_need[g], 0.0)
            up[:, c["eun"]] = need
            cost[:, c["eun"]] = np.where(real, fa.e_unmet_cost[g], fa.e_unmet_cost[0])
            rlo[:, r["elo"]] = need
            rup[:, r["elo"]] = INF
            rlo[:, r["ehi"]] = -INF
            rup[:, r["ehi"]] = need
        ll, _ldev = devs(2)
        if self.nl:
            real = ll >= 0
            g = np.maximum(ll, 0)
            up[:, c["lkw"]] = np.where(real[:, :, None], fa.l_ub[g], 0.0)
            en = np.where(real, fa.l_energy[g], 0.0)
            rlo[:, r["len"]] = en
            rup[:, r["len"]] = en
        real_site = slots >= 0
        up[:, c["imp"]] = np.where(real_site, INF, 0.0)[:, :, None]
        up[:, c["exp"]] = np.where(real_site, INF, 0.0)[:, :, None]
        cost[:, c["imp"]] = dt * fa.price_in
        cost[:, c["exp"]] = -dt * fa.price_out
        base = np.where(real_site[:, :, None], fa.site_base[np.maximum(slots, 0)], 0.0)
        rlo[:, r["sbal"]] = base
        rup[:, r["sbal"]] = base
        # coupling groups: row_upper = cap - scope_base - f*(constant - baseline) summed
        alld = slot_dev.reshape(n, -1)
        realdev = alld >= 0
        bl_all = np.where(realdev[:, :, None], fa.baseline[np.maximum(alld, 0)], 0.0)
        f = float(fa.factor[0])
        site_sum = base.sum(axis=1)  # (n, T)
        bl_sum = bl_all.sum(axis=1)  # (n, T)
        for g_, span in enumerate(self.spans):
            cap = np.stack([caps[i][g_][1] for i in range(n)])
            upper = cap - (site_sum[:, span] + bl_sum[:, span]) + f * bl_sum[:, span]
            up[:, c["short"][g_]] = INF
            cost[:, c["short"][g_]] = dt * self.prices[g_]
            rlo[:, r["grp"][g_]] = -INF
            rup[:, r["grp"][g_]] = upper
        return lo, up, cost, rlo, rup


# ---------------------------------------------------------------- HiGHS
_scheduler_reset = False


def new_highs():
    global _scheduler_reset
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    for key, value in CHUNK_OPTIONS.items():
        h.setOptionValue(key, value)
    if not _scheduler_reset:
        highspy.Highs.resetGlobalScheduler(True)
        _scheduler_reset = True
    return h


def pass_model(h, tpl: Template, lo, up, cost, rlo, rup):
    h.passModel(
        tpl.ncol,
        tpl.nrow,
        len(tpl.value),
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        cost,
        lo,
        up,
        rlo,
        rup,
        tpl.start,
        tpl.index,
        tpl.value,
        np.zeros(tpl.ncol, dtype=np.int32),
    )


@dataclass
class Result:
    objective: float
    iterations: int
    solve_s: float
    overhead_s: float
    x: np.ndarray
    duals: np.ndarray
    status: str


def read(h, t_run, started, solve_s) -> Result:
    status = h.getModelStatus()
    sol = h.getSolution()
    x = np.asarray(sol.col_value)
    duals = np.asarray(sol.row_dual)
    info = h.getInfo()
    return Result(
        info.objective_function_value,
        info.simplex_iteration_count,
        solve_s,
        time.perf_counter() - started - solve_s,
        x,
        duals,
        h.modelStatusToString(status),
    )


def solve_cold(tpl, lo, up, cost, rlo, rup) -> Result:
    started = time.perf_counter()
    h = new_highs()
    pass_model(h, tpl, lo, up, cost, rlo, rup)
    t0 = time.perf_counter()
    h.run()
    solve_s = time.perf_counter() - t0
    return read(h, t0, started, solve_s)


class HotSolver:
    """One Highs per template; each solve changes bounds (and costs when they differ)."""

    def __init__(self, tpl: Template, mode: str = "all"):
        self.tpl = tpl
        self.h: Any = None
        self.last: Any = None
        self.mode = mode  # "all": change every bound; "diff": only those that changed

    def solve(self, lo, up, cost, rlo, rup, basis=None) -> Result:
        started = time.perf_counter()
        tpl = self.tpl
        if self.h is None:
            self.h = new_highs()
            pass_model(self.h, tpl, lo, up, cost, rlo, rup)
        else:
            plo, pup, pcost, prlo, prup = self.last
            h = self.h
            if self.mode == "all":
                h.changeColsBounds(tpl.ncol, tpl.col_idx, lo, up)
                h.changeRowsBounds(tpl.nrow, tpl.row_idx, rlo, rup)
            else:
                d = np.flatnonzero((lo != plo) | (up != pup)).astype(np.int32)
                if len(d):
                    h.changeColsBounds(len(d), d, lo[d], up[d])
                d = np.flatnonzero((rlo != prlo) | (rup != prup)).astype(np.int32)
                if len(d):
                    h.changeRowsBounds(len(d), d, rlo[d], rup[d])
            if not np.array_equal(cost, pcost):
                d = np.flatnonzero(cost != pcost).astype(np.int32)
                h.changeColsCost(len(d), d, cost[d])
        if basis is not None:
            self.h.setBasis(basis)
        self.last = (lo, up, cost, rlo, rup)
        t0 = time.perf_counter()
        self.h.run()
        solve_s = time.perf_counter() - t0
        return read(self.h, t0, started, solve_s)


def measure(n: int, k: int, pad: bool, mode: str = "all", checks: int = 6) -> dict[str, Any]:
    out: dict[str, Any] = {"devices": n, "k": k, "pad": pad, "mode": mode}
    problem = scaling_problem(n, 0)
    t = time.perf_counter()
    data = prepare(problem)
    fa = fleet_arrays(data)
    out["prepare_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tchunks = type_partition(data, fa, k, pad)
    chunks = [tc.chunk for tc in tchunks]
    rows = decompose.coupling_rows(data, chunks)
    caps = chunk_caps(rows, tchunks)
    out["partition_alloc_s"] = time.perf_counter() - t
    out["chunks"] = len(tchunks)
    # templates
    t = time.perf_counter()
    by_key = defaultdict(list)
    for i, tc in enumerate(tchunks):
        spans = tuple(tuple(int(v) for v in g[0]) for g in caps[i])
        prices = tuple(g[2] for g in caps[i])
        by_key[(tc.stype, len(tc.slots), spans, prices)].append(i)
    templates = {}
    for key in by_key:
        stype, count, spans, prices = key
        templates[key] = Template(fa, stype, count, [np.array(s) for s in spans], prices)
    out["templates"] = len(templates)
    out["template_build_s"] = time.perf_counter() - t

    def build_bounds(index_sets):
        arrays = {}
        for key, members in index_sets.items():
            tpl = templates[key]
            lo, up, cost, rlo, rup = tpl.bounds(
                [tchunks[i] for i in members], [caps[i] for i in members]
            )
            for j, i in enumerate(members):
                arrays[i] = (lo[j], up[j], cost[j], rlo[j], rup[j])
        return arrays

    t = time.perf_counter()
    arrays = build_bounds(by_key)
    out["bounds_build_s"] = time.perf_counter() - t
    sizes = [(templates[key].ncol, templates[key].nrow) for key in by_key for _ in by_key[key]]
    out["mean_cols"] = float(np.mean([s[0] for s in sizes]))
    out["mean_rows"] = float(np.mean([s[1] for s in sizes]))
    real_devices = sum(len(tc.chunk.devices) for tc in tchunks)

    # cold
    cold = {}
    t = time.perf_counter()
    for key, members in by_key.items():
        for i in members:
            cold[i] = solve_cold(templates[key], *arrays[i])
    out["cold_wall_s"] = time.perf_counter() - t
    out["cold_highs_ms_per_device"] = 1e3 * sum(r.solve_s for r in cold.values()) / real_devices
    out["cold_iters_mean"] = float(np.mean([r.iterations for r in cold.values()]))
    # hot across chunks of a template
    hot, bases = {}, {}
    t = time.perf_counter()
    basis_s = 0.0
    for key, members in by_key.items():
        solver = HotSolver(templates[key], mode)
        for i in members:
            hot[i] = solver.solve(*arrays[i])
            b0 = time.perf_counter()
            bases[i] = solver.h.getBasis()
            basis_s += time.perf_counter() - b0
    out["hot_wall_s"] = time.perf_counter() - t
    first = {members[0] for members in by_key.values()}
    rest = [i for i in hot if i not in first]
    out["hot_highs_ms_per_device"] = 1e3 * sum(r.solve_s for r in hot.values()) / real_devices
    out["hot_iters_mean_excl_first"] = float(np.mean([hot[i].iterations for i in rest]))
    out["hot_iters_p90"] = float(np.percentile([hot[i].iterations for i in rest], 90))
    out["hot_run_ms_per_chunk"] = 1e3 * float(np.mean([hot[i].solve_s for i in rest]))
    out["cold_run_ms_per_chunk"] = 1e3 * float(np.mean([cold[i].solve_s for i in rest]))
    out["hot_overhead_ms_per_chunk"] = 1e3 * float(np.mean([hot[i].overhead_s for i in rest]))
    out["cold_overhead_ms_per_chunk"] = 1e3 * float(np.mean([cold[i].overhead_s for i in rest]))
    out["getBasis_ms_per_chunk"] = 1e3 * basis_s / len(hot)
    out["bounds_build_ms_per_chunk"] = 1e3 * out["bounds_build_s"] / len(tchunks)
    bad = [r.status for r in list(hot.values()) + list(cold.values()) if r.status != "Optimal"]
    out["non_optimal"] = len(bad)
    rel = [
        abs(hot[i].objective - cold[i].objective) / max(1.0, abs(cold[i].objective)) for i in hot
    ]
    out["hot_vs_cold_max_rel"] = float(max(rel))

    # correctness against the existing formulation (build_arrays on chunk_problem)
    rng = np.random.default_rng(1)
    picks = rng.choice(len(tchunks), size=min(checks, len(tchunks)), replace=False)
    diffs = []
    ref_ms = []
    for i in picks:
        sub = decompose.chunk_problem(data, tchunks[i].chunk, rows)
        t0 = time.perf_counter()
        ref = solve_arrays(build_arrays(sub, check=False), options=decompose.CHUNK_OPTIONS)
        ref_ms.append(1e3 * (time.perf_counter() - t0))
        diffs.append(
            (
                int(i),
                ref.objective,
                hot[i].objective,
                abs(ref.objective - hot[i].objective) / max(1.0, abs(ref.objective)),
            )
        )
    out["check"] = diffs
    out["check_max_rel"] = max(d[3] for d in diffs)
    out["existing_build_solve_ms_per_device"] = float(
        np.sum(ref_ms) / sum(len(tchunks[i].chunk.devices) for i in picks)
    )

    # correction pass: decompose._correct with these chunks' shortfalls and duals
    sols: list[Any] = [None] * len(tchunks)
    key_of = {i: key for key, members in by_key.items() for i in members}
    for i in range(len(tchunks)):
        tpl = templates[key_of[i]]
        r = hot[i]
        sols[i] = SimpleNamespace(
            request_shortfall_kw=[r.x[s] for s in tpl.c["short"]],
            request_dual=[r.duals[g] for g in tpl.r["grp"]],
        )
    t = time.perf_counter()
    changed = decompose._correct(rows, chunks, sols, 0.5)
    out["correct_s"] = time.perf_counter() - t
    out["changed_chunks"] = len(changed)
    caps2 = chunk_caps(rows, tchunks)
    for i in changed:
        caps[i] = caps2[i]
    changed_sets = defaultdict(list)
    for i in changed:
        changed_sets[key_of[i]].append(i)
    t = time.perf_counter()
    arrays2 = build_bounds(changed_sets)
    out["bounds_build2_s"] = time.perf_counter() - t
    changed_devices = sum(len(tchunks[i].chunk.devices) for i in changed) or 1
    for label, own in (("corr_seq", False), ("corr_own", True)):
        res = {}
        t = time.perf_counter()
        for key, members in changed_sets.items():
            solver = HotSolver(templates[key], mode)
            # start the object from the chunk's own earlier bounds so that "first" is hot too
            for i in members:
                lo, up, cost, rlo, rup = arrays2[i]
                res[i] = solver.solve(lo, up, cost, rlo, rup, basis=bases[i] if own else None)
        out[f"{label}_wall_s"] = time.perf_counter() - t
        out[f"{label}_highs_ms_per_device"] = (
            1e3 * sum(r.solve_s for r in res.values()) / changed_devices
        )
        out[f"{label}_iters_mean"] = float(np.mean([r.iterations for r in res.values()]))
        out[f"{label}_overhead_ms_per_chunk"] = 1e3 * float(
            np.mean([r.overhead_s for r in res.values()])
        )
        if label == "corr_seq":
            seq = res
        else:
            rel = [
                abs(res[i].objective - seq[i].objective) / max(1.0, abs(seq[i].objective))
                for i in res
            ]
            out["corr_own_vs_seq_max_rel"] = float(max(rel)) if rel else 0.0
    out["devices_real"] = real_devices
    return out


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=6, help="sites per chunk at most")
    parser.add_argument("--pad", action="store_true", help="pad chunks to --sites")
    parser.add_argument("--mode", choices=["all", "diff"], default="diff")
    args = parser.parse_args()
    result = measure(args.devices, args.sites, args.pad, args.mode)
    print(json.dumps(result, default=float))


if __name__ == "__main__":
    cli()
