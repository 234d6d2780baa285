"""Plans for fleets too large for one LP: chunks of sites solved apart, coupled by allocation.

HiGHS solves one coupled LP in time that grows faster than the fleet (about 5 s at
1,000 devices and 37 s at 3,000 here), while small independent LPs cost a
millisecond or so per device, and a fraction of that when each starts from the
optimal basis of a similar one. Devices are independent except through their site (a
chunk never splits a site), their feeder's capacity and the capacity requests. So:

1. **Partition** each feeder's sites into chunks of about ``chunk_devices`` devices,
   sites of one kind together (the same device families with the same efficiencies,
   delivery factors and limits present), so that chunks of one kind have identical
   matrices; sites of a kind too rare to fill a chunk share mixed chunks.
2. **Allocate** each coupling row to the chunks it spans: every interval of every
   request (the reduction it needs, in expected kW), and the capacity of every feeder
   that is split over several chunks. A chunk's share is proportional to the reduction
   it could deliver in that interval (its devices' room below their baseline, at their
   delivery factors). A share becomes a ceiling on the chunk's expected net load in
   that interval, priced like the row it came from.
3. **Build** one LP in which every chunk is its own block (each chunk's sites on a
   feeder of their own, each share a request on it), with columns over the whole
   horizon for every device (:func:`optimizer.arrays.build_arrays` with
   ``fixed_shape``), and **solve** it block by block (:mod:`optimizer.blocks`): blocks
   of one shape one after another on one HiGHS instance, each starting from the basis
   the one before left (in parallel with ``map_function``, for example a Dask
   client's ``map``).
4. **Correct**: move each row's shares from chunks where one more kW costs more (their
   row duals) to chunks where it costs less, and what a chunk missed to chunks with room,
   then solve the changed chunks again from their own bases; moves halve each round,
   and the cheapest plan of all rounds is kept (``rounds`` at most).
5. **Assemble** one plan for the whole fleet, priced by :mod:`optimizer.costs` exactly as
   a plan solved whole.

The result is feasible for every device, site and feeder; its cost is at least the
whole problem's optimum (the allocation is one feasible split, not always the best).
A split feeder's capacity becomes a ceiling on each chunk's *expected* net load, the
way requests are written; with delivery factors below 1 that is conservative for
reductions and not for increases (exact when every factor is 1).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from pyomo.common.gc_manager import PauseGC

from optimizer.arrays import Built, build_arrays, join_parts, read_solution, reusable
from optimizer.blocks import BlockLP, BlockSolver, MapFunction, Solved, Values
from optimizer.costs import evaluate_costs, feeder_violation, request_shortfall
from optimizer.devices import (
    FAMILIES,
    Battery,
    CurtailableLoad,
    Device,
    ElectricVehicle,
    Feeder,
    Fleet,
    HeatPump,
    ShiftableLoad,
)
from optimizer.memory import keep_freed_memory
from optimizer.prepare import Prepared, RequestScope, prepare
from optimizer.problem import CapacityRequest, Problem, validate
from optimizer.solution import Solution

__all__ = ["MapFunction", "coupling_rows", "partition", "plan_decomposed"]

#: A correction round that improves the plan by less than this part of its cost is
#: the last. Each round gains about 0.4 times what the one before gained (0.38%,
#: 0.15%, 0.03%, 0.01% of the cost at 10,000 devices of the scaling benchmark; 0.36%,
#: 0.14%, 0.025%, 0.012% at 100,000), so the rounds after one that gains under 0.2%
#: would together gain about 0.1%, for a full pass over the fleet each.
SETTLED = 2e-3


@dataclass
class Row:
    """One coupling row of the whole problem split over chunks: a request interval
    (``request`` >= 0) or a split feeder's capacity in one interval (``request`` = -1)."""

    request: int
    feeder: str | None
    interval: int
    price_per_kwh: float
    chunks: list[int]
    baseline_kw: np.ndarray  # per chunk: expected (requests) or nominal (feeders) baseline
    room_kw: np.ndarray  # per chunk: reduction it could deliver in the interval
    raise_kw: np.ndarray  # per chunk: increase it could take in the interval
    need_kw: float  # reduction the row needs from its chunks together (may be < 0)
    share_kw: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class Chunk:
    """Sites of one feeder planned together. ``groups`` lists, per coupling group (a
    request, or a split feeder's capacity), the chunk's (row, position in row) pairs in
    interval order: group ``k`` becomes the chunk's ``k``-th request."""

    sites: list[int]
    feeder: str
    devices: list[int]
    groups: dict[tuple[int, str | None], list[tuple[int, int]]] = field(default_factory=dict)


def device_shape(device: Device) -> tuple[Any, ...]:
    """What of a device shapes its block's matrix (beyond its kind): coefficients
    and rows that exist or not, never limits, windows or prices."""
    factor = device.delivery_factor
    if isinstance(device, Battery):
        return (
            0,
            device.charge_efficiency,
            device.discharge_efficiency,
            device.soc_final_min_frac is not None,
            factor,
        )
    if isinstance(device, ElectricVehicle):
        return (1, device.charge_efficiency, device.v2g_p_max_kw > 0, factor)
    if isinstance(device, ShiftableLoad):
        return (2, device.contiguous, device.profile_kw if device.contiguous else (), factor)
    if isinstance(device, CurtailableLoad):
        return (3, device.rebound_frac, device.max_event_h, factor)
    if isinstance(device, HeatPump):
        return (
            4,
            device.thermal_capacity_kwh_per_c,
            device.heat_loss_kw_per_c,
            device.cop,
            factor,
        )
    return (5, factor)


def partition(data: Prepared, chunk_devices: int) -> list[Chunk]:
    """Group sites, feeder by feeder, into chunks of about ``chunk_devices`` devices:
    sites of one kind together (their chunks share one matrix), and sites of kinds too
    rare to fill half a chunk in mixed chunks."""
    devices = data.problem.fleet.devices()
    shapes = [device_shape(d) for d in devices]
    devices_at: dict[int, list[int]] = defaultdict(list)
    for i, device in enumerate(devices):
        devices_at[data.site_of[device.device_id]].append(i)
    sites_of: dict[str, list[int]] = defaultdict(list)
    for s, feeder in enumerate(data.site_feeder):
        sites_of[feeder].append(s)
    chunks: list[Chunk] = []
    for feeder in data.feeder_ids:
        kinds: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for s in sites_of[feeder]:
            kind = (
                data.site_import_max_kw[s] is not None,
                data.site_export_max_kw[s] is not None,
                tuple(sorted(shapes[i] for i in devices_at[s])),
            )
            kinds[kind].append(s)
        mixed: list[int] = []
        for kind, sites in kinds.items():
            per_chunk = max(1, chunk_devices // max(1, len(kind[2])))
            if len(sites) < max(2, per_chunk // 2):
                mixed.extend(sites)
                continue
            for part in np.array_split(np.array(sites), -(-len(sites) // per_chunk)):
                members = [int(s) for s in part]
                chunks.append(
                    Chunk(members, feeder, sorted(i for s in members for i in devices_at[s]))
                )
        current: Chunk | None = None
        for s in sorted(mixed):
            if current is None or len(current.devices) >= chunk_devices:
                current = Chunk([], feeder, [])
                chunks.append(current)
            current.sites.append(s)
            current.devices.extend(devices_at[s])
    for chunk in chunks:
        chunk.devices.sort()
    return chunks


def baselines(data: Prepared) -> np.ndarray:
    """Every device's baseline [kW], one row per device in the fleet's order."""
    devices = data.problem.fleet.devices()
    steps = data.horizon.intervals
    if "baselines" not in data.cache:
        data.cache["baselines"] = np.array(
            [data.baseline_kw[d.device_id] for d in devices], dtype=float
        ).reshape(len(devices), steps)
    return data.cache["baselines"]


def _families(data: Prepared) -> dict[str, slice]:
    """The rows of each family among the fleet's devices."""
    fleet = data.problem.fleet
    out = {}
    first = 0
    for name in FAMILIES:
        size = len(getattr(fleet, name))
        out[name] = slice(first, first + size)
        first += size
    return out


def _figure(devices: tuple[Device, ...], name: str) -> np.ndarray:
    """One attribute of each device, as a column."""
    return np.array([getattr(d, name) for d in devices], dtype=float).reshape(len(devices), 1)


def reduction_room(data: Prepared) -> np.ndarray:
    """Per device and interval, how far below its baseline it could go [kW], ignoring
    energy limits: the weight of its share in a request."""
    fleet = data.problem.fleet
    baseline = baselines(data)
    at = _families(data)
    lowest = np.zeros_like(baseline)  # shiftable loads and heat pumps can stop
    lowest[at["batteries"]] = -_figure(fleet.batteries, "p_discharge_max_kw")
    lowest[at["vehicles"]] = -_figure(fleet.vehicles, "v2g_p_max_kw")
    curtailable = baseline[at["curtailable_loads"]]
    lowest[at["curtailable_loads"]] = curtailable * (
        1 - _figure(fleet.curtailable_loads, "max_curtail_frac")
    )
    # PV cannot produce more than its forecast
    lowest[at["pv_systems"]] = baseline[at["pv_systems"]]
    np.subtract(baseline, lowest, out=lowest)  # in place: at 100,000 devices, 77 MB
    return np.clip(lowest, 0, None, out=lowest)


def raise_room(data: Prepared) -> np.ndarray:
    """Per device and interval, how far above its baseline it could go [kW], ignoring
    energy limits: the weight of its share of a row's headroom."""
    fleet = data.problem.fleet
    steps = data.horizon.intervals
    baseline = baselines(data)
    at = _families(data)
    t = np.arange(steps)
    highest = np.zeros_like(baseline)
    highest[at["batteries"]] = _figure(fleet.batteries, "p_charge_max_kw")
    windows = data.vehicle_windows
    first = np.array([w.first for w in windows], dtype=np.int64).reshape(-1, 1)
    last = np.array([w.last for w in windows], dtype=np.int64).reshape(-1, 1)
    highest[at["vehicles"]] = np.where(
        (t >= first) & (t < last), _figure(fleet.vehicles, "p_max_kw"), 0.0
    )
    loads = fleet.shiftable_loads
    begin = np.array([s.start for s in data.shiftable_starts], dtype=np.int64).reshape(-1, 1)
    starts = zip(data.shiftable_starts, loads, strict=True)
    end = np.array([s[-1] + len(load.profile_kw) for s, load in starts], dtype=np.int64).reshape(
        -1, 1
    )
    peak = np.array([max(load.profile_kw) for load in loads], dtype=float).reshape(-1, 1)
    highest[at["shiftable_loads"]] = np.where((t >= begin) & (t < end), peak, 0.0)
    highest[at["curtailable_loads"]] = baseline[at["curtailable_loads"]] + np.array(
        data.curtail_rebound_max_kw, dtype=float
    ).reshape(-1, steps)
    highest[at["heat_pumps"]] = _figure(fleet.heat_pumps, "p_max_kw")
    curtailable = np.array([s.curtailable for s in fleet.pv_systems], dtype=bool).reshape(-1, 1)
    highest[at["pv_systems"]] = np.where(curtailable, 0.0, baseline[at["pv_systems"]])
    np.subtract(highest, baseline, out=highest)
    return np.clip(highest, 0, None, out=highest)


def coupling_rows(data: Prepared, chunks: list[Chunk]) -> list[Row]:
    """Every request interval and split feeder interval, with each chunk's baseline and room."""
    fleet = data.problem.fleet
    devices = fleet.devices()
    steps = data.horizon.intervals
    factor = np.array([d.delivery_factor for d in devices])
    baseline = baselines(data)
    room = reduction_room(data)
    room *= factor[:, None]
    rise = raise_room(data)
    rise *= factor[:, None]
    # Per chunk and interval: baseline net load (base loads and device baselines) and room.
    chunk_of_device = np.empty(len(devices), dtype=np.int64)
    chunk_of_site_array = np.empty(len(data.site_ids), dtype=np.int64)
    for c, chunk in enumerate(chunks):
        chunk_of_device[chunk.devices] = c
        chunk_of_site_array[chunk.sites] = c
    # Sums per chunk, as products with a chunks x devices (or sites) 0/1 matrix.
    by_device = sp.csr_array(
        (np.ones(len(devices)), (chunk_of_device, np.arange(len(devices)))),
        shape=(len(chunks), len(devices)),
    )
    by_site = sp.csr_array(
        (np.ones(len(data.site_ids)), (chunk_of_site_array, np.arange(len(data.site_ids)))),
        shape=(len(chunks), len(data.site_ids)),
    )
    chunk_base = by_device @ baseline + by_site @ data.site_base_kw
    chunk_room = by_device @ room
    chunk_raise = by_device @ rise

    rows: list[Row] = []

    def add(
        request: int,
        feeder: str | None,
        price: float,
        members: list[int],
        intervals: np.ndarray,
        need: np.ndarray,
    ) -> None:
        """Rows of one group (a request, or a split feeder), all intervals at once."""
        base = np.ascontiguousarray(chunk_base[members][:, intervals].T)  # (intervals, chunks)
        room = np.ascontiguousarray(chunk_room[members][:, intervals].T)
        rise = np.ascontiguousarray(chunk_raise[members][:, intervals].T)
        # A reduction is shared by the room to reduce, headroom by the room to rise.
        weights = np.where((need >= 0)[:, None], room, rise)
        total = weights.sum(axis=1)
        weights = np.where((total > 1e-9)[:, None], weights, 1.0)
        share = need[:, None] * weights / weights.sum(axis=1)[:, None]
        first = len(rows)
        for j, t in enumerate(intervals):
            rows.append(
                Row(
                    request,
                    feeder,
                    int(t),
                    price,
                    members,
                    base[j],
                    room[j],
                    rise[j],
                    float(need[j]),
                    share[j],
                )
            )
        indices = range(first, len(rows))
        for position, c in enumerate(members):
            chunks[c].groups[(request, feeder)] = [(index, position) for index in indices]

    for r, scope in enumerate(data.scopes):
        members = sorted({int(chunk_of_site_array[s]) for s in scope.sites})
        request = scope.request
        intervals = np.array(scope.intervals, dtype=np.int64)
        if request.kw is not None:
            need = np.full(len(intervals), float(request.kw))
        else:
            assert scope.cap_kw is not None
            need = chunk_base[members][:, intervals].sum(axis=0) - np.asarray(scope.cap_kw)
        add(r, None, request.shortfall_price_per_kwh, members, intervals, need)
    chunks_of: dict[str, list[int]] = defaultdict(list)
    for c, chunk in enumerate(chunks):
        chunks_of[chunk.feeder].append(c)
    every = np.arange(steps)
    for feeder in data.feeder_ids:
        members = chunks_of[feeder]
        limit = data.feeder_import_max_kw[feeder]
        if len(members) < 2 or limit is None:
            continue
        need = chunk_base[members].sum(axis=0) - limit
        add(-1, feeder, data.problem.limit_violation_cost_per_kwh, members, every, need)
    return rows


Entries = tuple[np.ndarray, np.ndarray, list[list[np.ndarray]]]


def flat_entries(rows: list[Row], chunks: list[Chunk]) -> Entries:
    """Each row's number of chunks and offset among all (row, position) entries laid
    end to end, and per chunk and coupling group the positions there of its entries
    (the rows and groups never change between rounds, only their shares)."""
    sizes = np.array([len(row.chunks) for row in rows], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    flat = [
        [
            offsets[np.array([index for index, _ in members], dtype=np.int64)]
            + np.array([position for _, position in members], dtype=np.int64)
            for members in chunk.groups.values()
        ]
        for chunk in chunks
    ]
    return sizes, offsets, flat


def _correct(
    rows: list[Row],
    chunks: list[Chunk],
    shortfall: list[list[np.ndarray]],
    duals: list[list[np.ndarray | None]],
    step: float = 0.5,
    entries: Entries | None = None,
) -> tuple[list[int], float]:
    """Move shares of each coupling row from chunks where a kW costs more to chunks
    where it costs less (the optimum equalizes those marginal costs), and shortfalls to
    chunks with room to spare; return the chunks whose shares changed and what the
    moves would save at the marginal costs seen (a first-order, optimistic estimate).

    ``step`` is the share of a dearer chunk's allocation moved per round (all of what
    it missed is moved); ``entries`` are :func:`flat_entries` of the rows and chunks,
    when already worked out.
    """
    changed: set[int] = set()
    saving = 0.0
    # Every (row, position) entry flattened, so that the rows needing work are found
    # with array operations and only those are visited one by one.
    sizes, offsets, flat = entries if entries is not None else flat_entries(rows, chunks)
    missing_all = np.zeros(int(sizes.sum()))
    marginal_all = np.full(int(sizes.sum()), np.inf)
    for c in range(len(chunks)):
        for k, where in enumerate(flat[c]):
            missing_all[where] = shortfall[c][k]
            dual = duals[c][k]
            if dual is not None:
                marginal_all[where] = -dual
    busy = sizes >= 2
    if busy.any():
        low = np.minimum.reduceat(marginal_all, offsets)
        high = np.maximum.reduceat(marginal_all, offsets)
        lacking = np.add.reduceat(missing_all, offsets)
        spread = high - low > 1e-6 * np.maximum(1.0, np.abs(np.where(np.isfinite(low), low, 0)))
        busy &= spread | (lacking > 1e-6)
    for index in np.flatnonzero(busy):
        row = rows[index]
        count = len(row.chunks)
        span = slice(int(offsets[index]), int(offsets[index]) + count)
        missing = missing_all[span]
        costs = marginal_all[span]
        cheapest = float(costs.min())
        # Shares move from the dearer half to the cheaper half: with thousands of
        # chunks in a row, loading everything onto the very cheapest few would only
        # make them the dearest of the next round.
        finite = costs[np.isfinite(costs)]
        pivot = float(np.median(finite)) if len(finite) else cheapest
        dear = (costs > pivot + 1e-6 * max(1.0, abs(pivot))) | (missing > 1e-6)
        spare = np.clip(row.room_kw - row.share_kw, 0, None) * ~dear
        if not dear.any() or spare.sum() <= 1e-9:
            continue
        # A dearer chunk hands over what it missed and part of its burden; a share may
        # be negative (headroom to raise load), so the part is taken of the larger of
        # its share and its room.
        burden = np.maximum(np.abs(row.share_kw), row.room_kw)
        give = np.where(dear, np.where(missing > 1e-6, missing, 0.0) + step * burden, 0.0)
        moved = min(float(give.sum()), float(spare.sum()))
        if moved <= 1e-6:
            continue
        given = give * (moved / give.sum())
        row.share_kw = row.share_kw - given + spare * (moved / spare.sum())
        changed.update(row.chunks[p] for p in np.flatnonzero((give > 0) | (spare > 0)))
        saving += float(given @ np.where(np.isfinite(costs), costs - cheapest, 0.0))
    return sorted(changed), saving


@dataclass
class Layout:
    """Where the whole problem's sites, devices and coupling groups sit in the LP of
    chunks: ``*_order`` give, per position there, the index in the whole problem."""

    problem: Problem
    data: Prepared  # the chunks' problem's arrays, taken from the whole problem's
    site_order: np.ndarray
    device_order: np.ndarray
    family_order: dict[str, np.ndarray]
    chunk_of_site: np.ndarray  # per site there
    chunk_of_device: np.ndarray  # per device there
    groups: list[tuple[int, int]]  # per request there: (chunk, group number)
    caps: list[np.ndarray] = field(default_factory=list)  # per request there [kW]


def _caps(chunk: Chunk, rows: list[Row]) -> list[np.ndarray]:
    """The chunk's ceiling per coupling group and interval: its baseline less its share."""
    return [
        np.array(
            [
                rows[index].baseline_kw[position] - rows[index].share_kw[position]
                for index, position in members
            ]
        )
        for members in chunk.groups.values()
    ]


def layout(data: Prepared, chunks: list[Chunk], rows: list[Row]) -> Layout:
    """The problem of all chunks side by side: each chunk's sites on a feeder of their
    own (with the real feeder's limits when the chunk holds all of it), and each of its
    shares of a coupling row a ceiling request on that feeder."""
    problem = data.problem
    fleet = problem.fleet
    devices = fleet.devices()
    steps = data.horizon.intervals
    site_order = np.array([s for chunk in chunks for s in chunk.sites], dtype=np.int64)
    chunk_of_site = np.repeat(np.arange(len(chunks)), [len(c.sites) for c in chunks])
    place = np.empty(len(fleet.sites), dtype=np.int64)
    place[site_order] = np.arange(len(site_order))
    sites = [
        replace(fleet.sites[s], feeder=f"chunk-{c:07d}")
        for s, c in zip(site_order.tolist(), chunk_of_site.tolist(), strict=True)
    ]
    feeders = []
    for c, chunk in enumerate(chunks):
        split = any(request < 0 for request, _ in chunk.groups)
        whole = data.feeders.get(chunk.feeder)
        feeders.append(
            Feeder(
                f"chunk-{c:07d}",
                import_max_kw=None if split or whole is None else whole.import_max_kw,
                export_max_kw=whole.export_max_kw if whole else None,
            )
        )
    # Devices kind by kind, in the order of their sites there, so that two chunks of
    # one kind lay out their columns alike.
    offset = 0
    family_order: dict[str, np.ndarray] = {}
    families: dict[str, tuple[Device, ...]] = {}
    shapes = [device_shape(d) for d in devices]
    for name in FAMILIES:
        family: tuple[Device, ...] = getattr(fleet, name)
        ranked = sorted(
            range(len(family)),
            key=lambda i: (
                place[data.site_of[family[i].device_id]],
                shapes[offset + i],
                i,
            ),
        )
        family_order[name] = np.array(ranked, dtype=np.int64)
        families[name] = tuple(family[i] for i in ranked)
        offset += len(family)
    offsets = np.cumsum([0] + [len(getattr(fleet, name)) for name in FAMILIES])
    device_order = np.concatenate(
        [family_order[name] + offsets[k] for k, name in enumerate(FAMILIES)]
    ).astype(np.int64)
    chunk_of_device = (
        chunk_of_site[place[[data.site_of[devices[i].device_id] for i in device_order]]]
        if len(device_order)
        else np.zeros(0, dtype=np.int64)
    )
    stamps = [data.horizon.start + i * data.horizon.resolution for i in range(steps + 1)]
    site_start = np.concatenate([[0], np.cumsum([len(c.sites) for c in chunks])])
    requests = []
    scopes = []
    groups: list[tuple[int, int]] = []
    caps = []
    for c, chunk in enumerate(chunks):
        for k, (members, cap) in enumerate(
            zip(chunk.groups.values(), _caps(chunk, rows), strict=True)
        ):
            first, last = rows[members[0][0]].interval, rows[members[-1][0]].interval
            request = CapacityRequest(
                f"chunk-{c}-{k}",
                stamps[first],
                stamps[last + 1],
                feeder=f"chunk-{c:07d}",
                cap_kw=tuple(cap.tolist()),
                shortfall_price_per_kwh=rows[members[0][0]].price_per_kwh,
            )
            requests.append(request)
            scopes.append(
                RequestScope(
                    request,
                    tuple(range(site_start[c], site_start[c + 1])),
                    tuple(range(first, last + 1)),
                    cap,
                )
            )
            groups.append((c, k))
            caps.append(cap)
    whole_fleet = Fleet(
        sites=tuple(sites),
        feeders=tuple(feeders),
        batteries=families["batteries"],  # type: ignore[arg-type]
        vehicles=families["vehicles"],  # type: ignore[arg-type]
        shiftable_loads=families["shiftable_loads"],  # type: ignore[arg-type]
        curtailable_loads=families["curtailable_loads"],  # type: ignore[arg-type]
        heat_pumps=families["heat_pumps"],  # type: ignore[arg-type]
        pv_systems=families["pv_systems"],  # type: ignore[arg-type]
    )
    chunks_problem = replace(
        problem, fleet=whole_fleet, requests=tuple(requests), name=f"{problem.name}-chunks"
    )
    # The arrays of the chunks' problem are the whole problem's, reordered: worked
    # out once, not again for 100,000 devices.
    order = family_order
    chunk_data = replace(
        data,
        problem=chunks_problem,
        site_ids=[data.site_ids[s] for s in site_order],
        site_feeder=[site.feeder for site in sites],
        site_base_kw=data.site_base_kw[site_order],
        site_import_max_kw=[data.site_import_max_kw[s] for s in site_order],
        site_export_max_kw=[data.site_export_max_kw[s] for s in site_order],
        feeder_ids=[f.feeder_id for f in feeders],
        feeder_import_max_kw={f.feeder_id: f.import_max_kw for f in feeders},
        feeder_export_max_kw={f.feeder_id: f.export_max_kw for f in feeders},
        feeder_region={f.feeder_id: None for f in feeders},
        feeders={f.feeder_id: f for f in feeders},
        site_of={d.device_id: int(place[data.site_of[d.device_id]]) for d in devices},
        vehicle_windows=[data.vehicle_windows[i] for i in order["vehicles"]],
        shiftable_starts=[data.shiftable_starts[i] for i in order["shiftable_loads"]],
        curtail_max_kw=[data.curtail_max_kw[i] for i in order["curtailable_loads"]],
        curtail_baseline_kw=[data.curtail_baseline_kw[i] for i in order["curtailable_loads"]],
        curtail_rebound_max_kw=[data.curtail_rebound_max_kw[i] for i in order["curtailable_loads"]],
        heat_pump_outdoor_c=[data.heat_pump_outdoor_c[i] for i in order["heat_pumps"]],
        pv_forecast_kw=[data.pv_forecast_kw[i] for i in order["pv_systems"]],
        scopes=scopes,
    )
    return Layout(
        chunks_problem,
        chunk_data,
        site_order,
        device_order,
        family_order,
        chunk_of_site,
        np.asarray(chunk_of_device, dtype=np.int64),
        groups,
        caps,
    )


def block_lp(built: Built, chunks: int) -> BlockLP:
    """The LP of ``built`` (built with owners) cut into one block per chunk; without
    its coefficients (built without ``matrix``), the blocks' matrices are still to be
    given (:meth:`BlockLP.shared`)."""
    lp = built.lp
    assert lp.column_owner is not None and lp.row_owner is not None

    lp.integer.clear()
    column_owner = join_parts(lp.column_owner, np.int32)
    row_owner = join_parts(lp.row_owner, np.int32)
    lp.column_owner.clear()
    lp.row_owner.clear()
    # Bounds go from their parts straight to their sorted places.
    bounds: dict[str, Values] = {
        "lower": lp.lower,
        "upper": lp.upper,
        "cost": lp.cost,  # solutions of the blocks are priced on the whole problem
        "row_lower": lp.row_lower,
        "row_upper": lp.row_upper,
    }
    if not lp.keep_entries:
        out = BlockLP.sort(column_owner, row_owner, chunks, **bounds)
    else:
        # The blocks keep the matrix: the LP's own pieces are let go as they are joined.
        entries = lp.entries(keep=False)
        out = BlockLP.build(entries, column_owner, row_owner, chunks, **bounds)
    for parts in (lp.lower, lp.upper, lp.cost, lp.row_lower, lp.row_upper):
        parts.clear()
    return out


def chunk_kinds(lay: Layout, chunks: list[Chunk]) -> list[int]:
    """A kind per chunk, numbered in order of first appearance. Chunks of one kind have
    one matrix in the LP of chunks: sites with the same devices (by
    :func:`device_shape`) in the same order, the same site and feeder limits present,
    and ceilings over the same intervals; only their bounds and costs differ."""
    data = lay.data
    shapes_at: list[list[tuple[Any, ...]]] = [[] for _ in data.site_ids]
    for device in lay.problem.fleet.devices():
        shapes_at[data.site_of[device.device_id]].append(device_shape(device))
    site_kinds = [
        (
            data.site_import_max_kw[s] is not None,
            data.site_export_max_kw[s] is not None,
            tuple(sorted(shapes)),
        )
        for s, shapes in enumerate(shapes_at)
    ]
    ceilings: list[list[tuple[int, int]]] = [[] for _ in chunks]
    for r, (c, _k) in enumerate(lay.groups):
        intervals = data.scopes[r].intervals
        ceilings[c].append((intervals[0], len(intervals)))
    site_start = np.searchsorted(lay.chunk_of_site, np.arange(len(chunks) + 1)).tolist()
    numbers: dict[tuple[Any, ...], int] = {}
    kinds = []
    for c, feeder in enumerate(data.feeder_ids):
        kind = (
            tuple(site_kinds[site_start[c] : site_start[c + 1]]),
            data.feeder_import_max_kw[feeder] is not None,
            data.feeder_export_max_kw[feeder] is not None,
            tuple(ceilings[c]),
        )
        kinds.append(numbers.setdefault(kind, len(numbers)))
    return kinds


def model_blocks(lay: Layout, owners: dict[str, np.ndarray], firsts: list[int]) -> BlockLP:
    """The LP of the chunks ``firsts`` (ascending) alone, built whole and cut into
    blocks: their matrices serve every chunk of their kinds."""
    chosen = np.zeros(len(owners["feeders"]), dtype=bool)  # one feeder per chunk
    chosen[firsts] = True
    number = np.full(len(chosen), -1, dtype=np.int64)
    number[firsts] = np.arange(len(firsts))
    fleet = lay.problem.fleet

    def keep(items: Any, owner: np.ndarray) -> tuple[Any, ...]:
        return tuple(item for item, c in zip(items, owner.tolist(), strict=True) if chosen[c])

    families = {name: keep(getattr(fleet, name), owners[name]) for name in FAMILIES}
    models = Fleet(
        sites=keep(fleet.sites, owners["sites"]),
        feeders=keep(sorted(fleet.feeders, key=lambda f: f.feeder_id), owners["feeders"]),
        **families,
    )
    problem = replace(
        lay.problem,
        fleet=models,
        requests=keep(lay.problem.requests, owners["requests"]),
        name=f"{lay.problem.name}-models",
    )
    built = build_arrays(
        problem,
        check=False,
        fixed_shape=True,
        owners={name: number[owner[chosen[owner]]] for name, owner in owners.items()},
    )
    return block_lp(built, len(firsts))


def shared_blocks(
    built: Built, lay: Layout, chunks: list[Chunk], owners: dict[str, np.ndarray]
) -> BlockLP:
    """The LP of chunks (built without ``matrix``) cut into blocks, each with the
    matrix of the first chunk of its kind (:func:`chunk_kinds`), built alone."""
    kinds = chunk_kinds(lay, chunks)
    firsts: dict[int, int] = {}
    for c, kind in enumerate(kinds):
        firsts.setdefault(kind, c)
    models = model_blocks(lay, owners, list(firsts.values()))
    blocks = block_lp(built, len(chunks))
    blocks.shared(
        kinds,
        [models.block(k) for k in range(len(firsts))],
        np.diff(models.rows).tolist(),
    )
    return blocks


def owners_of(lay: Layout, data: Prepared) -> dict[str, np.ndarray]:
    """The chunk of every device, site, feeder and request of the chunks' problem."""
    fleet = lay.problem.fleet
    place = {d.device_id: i for i, d in enumerate(fleet.devices())}
    out = {
        name: lay.chunk_of_device[[place[d.device_id] for d in getattr(fleet, name)]]
        for name in FAMILIES
    }
    out["sites"] = lay.chunk_of_site
    out["feeders"] = np.array(
        [int(f.feeder_id.split("-")[1]) for f in sorted(fleet.feeders, key=lambda f: f.feeder_id)],
        dtype=np.int64,
    )
    out["requests"] = np.array([c for c, _ in lay.groups], dtype=np.int64)
    return out


def plan_decomposed(
    problem: Problem,
    *,
    chunk_devices: int = 12,
    rounds: int = 4,
    map_function: MapFunction | None = None,
    batch: int = 200,
    threads: int | None = None,
    time_limit_s: float | None = None,
) -> tuple[Prepared, Solution]:
    """Plan ``problem`` by chunks (see the module docstring).

    Parameters
    ----------
    chunk_devices : int
        Devices per chunk, about (sites are never split).
    rounds : int
        Correction rounds at most; the cheapest assembled plan of all rounds is kept.
        Rounds stop early once one improves the plan by less than :data:`SETTLED` of
        its cost.
    map_function : callable, optional
        ``map_function(function, items)`` running ``function`` on each item, possibly in
        parallel (a Dask ``Client.map`` followed by ``gather``); in this process when
        ``None``.
    batch : int
        Chunks of one shape solved in turn on one HiGHS instance (a unit of work
        sent through ``map_function``).
    threads : int, optional
        Threads solving chunks side by side in this process (without
        ``map_function``); the machine's cores when ``None``.
    time_limit_s : float, optional
        A correction round starts only when it would end, at the pace of the round
        before, within this many seconds of the start; the first pass always runs.

    Returns
    -------
    (Prepared, Solution)
        The whole problem's arrays and the assembled solution.
    """
    if problem.integer:
        raise ValueError("integer: the decomposed path plans LPs; use plan(method='arrays')")
    # Millions of small objects: collections would only rescan them. Arrays of
    # hundreds of MB are made and dropped: their memory is reused, not fresh.
    with PauseGC(), keep_freed_memory():
        return _plan_decomposed(
            problem, chunk_devices, rounds, map_function, batch, threads, time_limit_s
        )


def _plan_decomposed(
    problem: Problem,
    chunk_devices: int,
    rounds: int,
    map_function: MapFunction | None,
    batch: int,
    threads: int | None,
    time_limit_s: float | None,
) -> tuple[Prepared, Solution]:
    started = time.perf_counter()
    validate(problem)
    data = prepare(problem)
    chunks = partition(data, chunk_devices)
    rows = coupling_rows(data, chunks)
    entries = flat_entries(rows, chunks)
    lay = layout(data, chunks, rows)
    owners = owners_of(lay, data)
    built = build_arrays(
        lay.problem, check=False, fixed_shape=True, owners=owners, data=lay.data, matrix=False
    )
    blocks = shared_blocks(built, lay, chunks, owners)
    prepared_s = time.perf_counter() - started
    solver = BlockSolver(blocks, map_function, batch, threads or os.cpu_count() or 1)
    x = np.zeros(built.lp.columns)
    row_dual = np.zeros(built.lp.rows)
    status = ["optimal"]

    def take(solved: Solved) -> None:
        """A chunk's solution into the whole one (chunks own disjoint places)."""
        if not solved.feasible:
            raise RuntimeError(
                f"chunk of feeder {chunks[solved.block].feeder}: solver status {solved.status}"
            )
        if solved.status != "optimal":
            status[0] = solved.status
        assert solved.x is not None and solved.row_dual is not None
        b = solved.block
        x[blocks.column_order[blocks.columns[b] : blocks.columns[b + 1]]] = solved.x
        row_dual[blocks.row_order[blocks.rows[b] : blocks.rows[b + 1]]] = solved.row_dual

    def solve(which: list[int], last: Solution | None = None) -> Solution:
        """Solve chunks ``which`` and read the chunks' point, into the arrays of the
        ``last`` one (no longer needed). Not priced here (the blocks took the costs):
        the assembly prices the whole plan."""
        solver.solve(which, take)
        return read_solution(
            built, x, row_dual, status=status[0], objective=np.nan, costs=False, into=last
        )

    passed = time.perf_counter()
    parts = solve(list(range(len(chunks))))
    first_pass_s = time.perf_counter() - passed
    places = dual_places(data, lay, chunks, rows)
    solution = _assemble(data, lay, chunks, places, parts)
    spare: Solution | None = None  # a plan no longer needed, its arrays to reuse
    rounds_run = 0
    step = 0.5
    for _ in range(rounds):
        now = time.perf_counter()
        if time_limit_s is not None and now + (now - passed) - started > time_limit_s:
            break  # another round would not end in time
        passed = now
        shortfall: list[list[np.ndarray]] = [[] for _ in chunks]
        duals: list[list[np.ndarray | None]] = [[] for _ in chunks]
        for r, (c, _k) in enumerate(lay.groups):
            shortfall[c].append(parts.request_shortfall_kw[r])
            duals[c].append(parts.request_dual[r])
        changed, saving = _correct(rows, chunks, shortfall, duals, step, entries)
        if not changed or saving < 1e-4 * abs(solution.objective):
            break  # nothing left that is worth a round
        _move_caps(built, blocks, lay, rows, changed, entries)
        parts = solve(changed, parts)
        rounds_run += 1
        candidate = _assemble(data, lay, chunks, places, parts, into=spare)
        improvement = solution.objective - candidate.objective
        if improvement > 0:
            solution, spare = candidate, solution
        else:
            spare = candidate
        if improvement < SETTLED * abs(solution.objective):
            break  # the shares have settled: the rounds after gain less still
        step /= 2  # moves shrink so that the shares settle instead of swinging
    solution.timings_s = {
        "prepare_s": prepared_s,
        "total_s": time.perf_counter() - started,
        "rounds": float(rounds_run),
        "first_pass_s": first_pass_s,
        "chunk_solve_s": solver.solve_s,
        "chunk_solves": float(solver.solves),
    }
    solution.size = {
        "variables": built.lp.columns,
        "constraints": built.lp.rows,
        "nonzeros": blocks.nonzeros,
        "chunks": len(chunks),
        "shapes": len(set(blocks.keys)),
    }
    return data, solution


def _move_caps(
    built: Built,
    blocks: BlockLP,
    lay: Layout,
    rows: list[Row],
    changed: list[int],
    entries: Entries,
) -> None:
    """Give the changed chunks' ceiling rows their new shares."""
    first_request: dict[int, int] = {}
    for r, (c, _k) in enumerate(lay.groups):
        first_request.setdefault(c, r)
    # Each entry's ceiling, all rows at once: its chunk's baseline less its share.
    ceiling = np.concatenate([row.baseline_kw - row.share_kw for row in rows])
    for c in changed:
        for k, where in enumerate(entries[2][c]):
            cap = ceiling[where]
            r = first_request[c] + k
            # A ceiling's row bound is the cap less constants: it moves with the cap.
            positions = blocks.row_position[built.request_rows[r]]
            blocks.row_upper[positions] += cap - lay.caps[r]
            lay.caps[r] = cap


def dual_groups(lay: Layout, chunks: list[Chunk]) -> list[tuple[int, tuple[int, str | None]]]:
    """Per request of the chunks' problem, its chunk and that chunk's group key."""
    keys = [list(chunk.groups) for chunk in chunks]
    return [(c, keys[c][k]) for c, k in lay.groups]


def dual_places(
    data: Prepared, lay: Layout, chunks: list[Chunk], rows: list[Row]
) -> tuple[np.ndarray, np.ndarray]:
    """Where the chunks' request rows (laid end to end, request by request of the
    chunks' problem) fall among the whole problem's request intervals (laid end to
    end; -1 for a split feeder's row), and where each request's intervals start."""
    starts = np.cumsum([0] + [len(scope.intervals) for scope in data.scopes])
    first = [scope.intervals[0] for scope in data.scopes]
    places = [
        starts[row.request] + row.interval - first[row.request] if row.request >= 0 else -1
        for c, key in dual_groups(lay, chunks)
        for row in (rows[index] for index, _ in chunks[c].groups[key])
    ]
    return np.array(places, dtype=np.int64), starts


def _assemble(
    data: Prepared,
    lay: Layout,
    chunks: list[Chunk],
    places: tuple[np.ndarray, np.ndarray],
    parts: Solution,
    into: Solution | None = None,
) -> Solution:
    """The chunks' solution in the whole problem's order, priced on the whole problem
    (``places`` from :func:`dual_places`); the arrays of ``into`` (an assembled
    plan no longer needed) are written over instead of new ones."""
    fleet = data.problem.fleet
    steps = data.horizon.intervals

    def back(name: str, order: np.ndarray) -> np.ndarray:
        values = getattr(parts, name)
        out = reusable(into, name, values.shape)
        out.fill(0.0)
        out[order] = values
        return out

    power = back("power_kw", lay.device_order)
    order = lay.family_order
    battery = {
        "charge": back("battery_charge_kw", order["batteries"]),
        "discharge": back("battery_discharge_kw", order["batteries"]),
        "soc": back("battery_soc_kwh", order["batteries"]),
    }
    ev_charge = back("ev_charge_kw", order["vehicles"])
    ev_discharge = back("ev_discharge_kw", order["vehicles"])
    ev_unmet = back("ev_unmet_kwh", order["vehicles"])
    curtail = back("curtail_kw", order["curtailable_loads"])
    pump_kw = back("heat_pump_kw", order["heat_pumps"])
    pump_temp = back("heat_pump_temp_c", order["heat_pumps"])
    site_net = back("site_net_kw", lay.site_order)
    site_violation = back("site_violation_kw", lay.site_order)
    feeders = feeder_violation(data, site_net)
    shortfall = [request_shortfall(data, power, r) for r in range(len(data.scopes))]
    # A request interval's marginal cost: the lowest of its chunks' rows' costs.
    row_place, starts = places
    cost_of_row = np.concatenate(
        [
            np.full(len(chunks[c].groups[key]), np.inf) if dual is None else -dual
            for (c, key), dual in zip(dual_groups(lay, chunks), parts.request_dual, strict=True)
        ]
        or [np.zeros(0)]
    )
    request_rows = row_place >= 0
    best = np.full(starts[-1], np.inf)
    np.minimum.at(best, row_place[request_rows], cost_of_row[request_rows])
    duals: list[np.ndarray | None] = []
    for r, scope in enumerate(data.scopes):
        sign = 1.0 if scope.request.kw is not None else -1.0
        mine = best[starts[r] : starts[r + 1]]
        duals.append(np.where(np.isfinite(mine), mine, np.nan) * sign)
    costs = evaluate_costs(
        data,
        battery_charge_kw=battery["charge"],
        battery_discharge_kw=battery["discharge"],
        ev_discharge_kw=ev_discharge,
        ev_unmet_kwh=ev_unmet,
        curtail_kw=curtail,
        heat_pump_temp_c=pump_temp,
        site_net_kw=site_net,
        site_violation_kw=site_violation,
        feeder_violation_kw=feeders,
        shortfall_kw=shortfall,
    )
    assert power.shape == (len(fleet.devices()), steps)
    return Solution(
        status=parts.status,
        feasible=True,
        objective=float(sum(costs.values())),
        mip_gap=None,
        power_kw=power,
        battery_charge_kw=battery["charge"],
        battery_discharge_kw=battery["discharge"],
        battery_soc_kwh=battery["soc"],
        ev_charge_kw=ev_charge,
        ev_discharge_kw=ev_discharge,
        ev_unmet_kwh=ev_unmet,
        curtail_kw=curtail,
        heat_pump_kw=pump_kw,
        heat_pump_temp_c=pump_temp,
        site_net_kw=site_net,
        site_violation_kw=site_violation,
        feeder_violation_kw=feeders,
        request_shortfall_kw=shortfall,
        request_dual=duals,
        costs=costs,
    )
