"""Plans for fleets too large for one LP: chunks of sites solved apart, coupled by allocation.

HiGHS solves one coupled LP in time that grows faster than the fleet (about 5 s at
1,000 devices and 37 s at 3,000 here), while small independent LPs cost a
millisecond or so per device. Devices are independent except through their site (a
chunk never splits a site), their feeder's capacity and the capacity requests. So:

1. **Partition** the sites into chunks of about ``chunk_devices`` devices, each inside
   one feeder.
2. **Allocate** each coupling row to the chunks it spans: every interval of every
   request (the reduction it needs, in expected kW), and the capacity of every feeder
   that is split over several chunks. A chunk's share is proportional to the reduction
   it could deliver in that interval (its devices' room below their baseline, at their
   delivery factors). A share becomes a ceiling on the chunk's expected net load in
   that interval, priced like the row it came from.
3. **Solve** the chunks apart (in parallel with ``map_function``, for example a Dask
   client's ``map``), with HiGHS's dual simplex and no presolve, which suits small LPs.
4. **Correct**: move each row's shares from chunks where one more kW costs more (their
   row duals) to chunks where it costs less, and what a chunk missed to chunks with room,
   then solve the changed chunks again; moves halve each round, and the cheapest plan of
   all rounds is kept (``rounds`` at most).
5. **Assemble** one plan for the whole fleet, priced by :mod:`optimizer.costs` exactly as
   a plan solved whole.

The result is feasible for every device, site and feeder; its cost is at least the
whole problem's optimum (the allocation is one feasible split, not always the best).
A split feeder's capacity becomes a ceiling on each chunk's *expected* net load, the
way requests are written; with delivery factors below 1 that is conservative for
reductions and not for increases (exact when every factor is 1).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from optimizer.arrays import build_arrays, solve_arrays
from optimizer.costs import evaluate_costs, feeder_violation, request_shortfall
from optimizer.devices import (
    Battery,
    CurtailableLoad,
    ElectricVehicle,
    Feeder,
    Fleet,
    HeatPump,
    PhotovoltaicSystem,
    ShiftableLoad,
)
from optimizer.prepare import Prepared, prepare
from optimizer.problem import CapacityRequest, Problem, validate
from optimizer.solution import Solution

#: HiGHS options for chunk LPs: about twice as fast as the defaults on small blocks;
#: one thread each, since chunks run side by side.
CHUNK_OPTIONS: dict[str, bool | int | float | str] = {
    "presolve": "off",
    "simplex_strategy": 1,
    "threads": 1,
}

MapFunction = Callable[[Callable[[Any], Any], Sequence[Any]], Iterable[Any]]


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
    need_kw: float  # reduction the row needs from its chunks together (may be < 0)
    share_kw: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class Chunk:
    """Sites of one feeder planned together. ``rows`` lists, per coupling group (a
    request, or a split feeder's capacity), the chunk's (row, position in row) pairs in
    interval order: group ``k`` becomes the chunk's ``k``-th request."""

    sites: list[int]
    feeder: str
    devices: list[int]
    groups: dict[tuple[int, str | None], list[tuple[int, int]]] = field(default_factory=dict)

    def entries(self) -> list[tuple[int, int, int, int]]:
        """(group number, place in group, row, position in row) of every coupling row."""
        return [
            (k, j, index, position)
            for k, members in enumerate(self.groups.values())
            for j, (index, position) in enumerate(members)
        ]


def partition(data: Prepared, chunk_devices: int) -> list[Chunk]:
    """Group sites, feeder by feeder, into chunks of about ``chunk_devices`` devices."""
    devices_at: dict[int, list[int]] = defaultdict(list)
    for i, device in enumerate(data.problem.fleet.devices()):
        devices_at[data.site_of[device.device_id]].append(i)
    sites_of: dict[str, list[int]] = defaultdict(list)
    for s, feeder in enumerate(data.site_feeder):
        sites_of[feeder].append(s)
    chunks: list[Chunk] = []
    for feeder in data.feeder_ids:
        current: Chunk | None = None
        for s in sites_of[feeder]:
            if current is None or len(current.devices) >= chunk_devices:
                current = Chunk([], feeder, [])
                chunks.append(current)
            current.sites.append(s)
            current.devices.extend(devices_at[s])
    return chunks


def reduction_room(data: Prepared) -> np.ndarray:
    """Per device and interval, how far below its baseline it could go [kW], ignoring
    energy limits: the weight of its share in a request."""
    fleet = data.problem.fleet
    steps = data.horizon.intervals
    room = []
    for device in fleet.devices():
        baseline = data.baseline_kw[device.device_id]
        if isinstance(device, Battery):
            lowest = np.full(steps, -device.p_discharge_max_kw)
        elif isinstance(device, ElectricVehicle):
            lowest = np.full(steps, -device.v2g_p_max_kw)
        elif isinstance(device, CurtailableLoad):
            lowest = baseline * (1 - device.max_curtail_frac)
        elif isinstance(device, ShiftableLoad | HeatPump):
            lowest = np.zeros(steps)
        else:  # PV cannot produce more than its forecast
            lowest = baseline
        room.append(np.clip(baseline - lowest, 0, None))
    return np.array(room).reshape(len(room), steps)


def _allocate(row: Row) -> None:
    weights = row.room_kw if row.room_kw.sum() > 1e-9 else np.ones(len(row.chunks))
    row.share_kw = row.need_kw * weights / weights.sum()


def coupling_rows(data: Prepared, chunks: list[Chunk]) -> list[Row]:
    """Every request interval and split feeder interval, with each chunk's baseline and room."""
    fleet = data.problem.fleet
    devices = fleet.devices()
    steps = data.horizon.intervals
    factor = np.array([d.delivery_factor for d in devices])
    baseline = np.array([data.baseline_kw[d.device_id] for d in devices]).reshape(
        len(devices), steps
    )
    room = reduction_room(data) * factor[:, None]
    # Per chunk and interval: baseline net load (base loads and device baselines) and room.
    chunk_of_device = np.empty(len(devices), dtype=np.int64)
    chunk_of_site_array = np.empty(len(data.site_ids), dtype=np.int64)
    for c, chunk in enumerate(chunks):
        chunk_of_device[chunk.devices] = c
        chunk_of_site_array[chunk.sites] = c
    chunk_base = np.zeros((len(chunks), steps))
    chunk_room = np.zeros((len(chunks), steps))
    np.add.at(chunk_base, chunk_of_device, baseline)
    np.add.at(chunk_base, chunk_of_site_array, data.site_base_kw)
    np.add.at(chunk_room, chunk_of_device, room)

    rows: list[Row] = []
    for r, scope in enumerate(data.scopes):
        members = sorted({int(chunk_of_site_array[s]) for s in scope.sites})
        request = scope.request
        for t in scope.intervals:
            base = chunk_base[members, t]
            if request.kw is not None:
                need = float(request.kw)
            else:
                assert scope.cap_kw is not None
                need = float(base.sum() - scope.cap_kw[t - scope.intervals[0]])
            rows.append(
                Row(
                    r,
                    None,
                    t,
                    request.shortfall_price_per_kwh,
                    members,
                    base,
                    chunk_room[members, t],
                    need,
                )
            )
    chunks_of: dict[str, list[int]] = defaultdict(list)
    for c, chunk in enumerate(chunks):
        chunks_of[chunk.feeder].append(c)
    for feeder in data.feeder_ids:
        members = chunks_of[feeder]
        limit = data.feeder_import_max_kw[feeder]
        if len(members) < 2 or limit is None:
            continue
        for t in range(steps):
            base = chunk_base[members, t]
            rows.append(
                Row(
                    -1,
                    feeder,
                    t,
                    data.problem.limit_violation_cost_per_kwh,
                    members,
                    base,
                    chunk_room[members, t],
                    float(base.sum() - limit),
                )
            )
    for index, row in enumerate(rows):
        _allocate(row)
        for position, c in enumerate(row.chunks):
            chunks[c].groups.setdefault((row.request, row.feeder), []).append((index, position))
    return rows


def chunk_problem(data: Prepared, chunk: Chunk, rows: list[Row]) -> Problem:
    """The chunk's own problem: its sites and devices, its feeder (with the feeder's
    limits when the chunk holds the whole feeder), and a ceiling per coupling row."""
    problem = data.problem
    fleet = problem.fleet
    devices = fleet.devices()
    mine = [devices[i] for i in sorted(chunk.devices)]
    split = any(request < 0 for request, _ in chunk.groups)
    whole = data.feeders.get(chunk.feeder)
    feeder = Feeder(
        chunk.feeder,
        region=whole.region if whole else None,
        import_max_kw=None if split or whole is None else whole.import_max_kw,
        export_max_kw=whole.export_max_kw if whole else None,
    )
    step = data.horizon.resolution
    requests = []
    for (request, feeder_id), members in chunk.groups.items():
        first, last = rows[members[0][0]], rows[members[-1][0]]
        requests.append(
            CapacityRequest(
                f"request-{request}" if request >= 0 else f"feeder-{feeder_id}",
                data.horizon.start + first.interval * step,
                data.horizon.start + (last.interval + 1) * step,
                feeder=chunk.feeder,
                cap_kw=tuple(
                    float(rows[index].baseline_kw[position] - rows[index].share_kw[position])
                    for index, position in members
                ),
                shortfall_price_per_kwh=first.price_per_kwh,
            )
        )
    sub = Fleet(
        sites=tuple(fleet.sites[s] for s in chunk.sites),
        feeders=(feeder,),
        batteries=tuple(d for d in mine if isinstance(d, Battery)),
        vehicles=tuple(d for d in mine if isinstance(d, ElectricVehicle)),
        shiftable_loads=tuple(d for d in mine if isinstance(d, ShiftableLoad)),
        curtailable_loads=tuple(d for d in mine if isinstance(d, CurtailableLoad)),
        heat_pumps=tuple(d for d in mine if isinstance(d, HeatPump)),
        pv_systems=tuple(d for d in mine if isinstance(d, PhotovoltaicSystem)),
    )
    return replace(problem, fleet=sub, requests=tuple(requests), name=f"{problem.name}-chunk")


Work = tuple[Problem, tuple[np.ndarray, np.ndarray] | None]


def solve_chunks(work: Sequence[Work]) -> list[Solution]:
    """Solve chunk problems one after another, each from its earlier basis when given
    (the unit of work sent to a worker)."""
    out = []
    for problem, basis in work:
        built = build_arrays(problem, check=False)  # the whole problem was validated
        out.append(solve_arrays(built, options=CHUNK_OPTIONS, basis=basis))
    return out


def _batches(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _run(work: list[Work], map_function: MapFunction | None, batch: int) -> list[Solution]:
    # At least eight units of work, so that every worker has some.
    size = max(1, min(batch, -(-len(work) // 8)))
    groups = _batches(work, size)
    results = (
        map(solve_chunks, groups) if map_function is None else map_function(solve_chunks, groups)
    )
    return [solution for group in results for solution in group]


def plan_decomposed(
    problem: Problem,
    *,
    chunk_devices: int = 24,
    rounds: int = 4,
    map_function: MapFunction | None = None,
    batch: int = 200,
) -> tuple[Prepared, Solution]:
    """Plan ``problem`` by chunks (see the module docstring).

    Parameters
    ----------
    chunk_devices : int
        Devices per chunk (sites are never split).
    rounds : int
        Correction rounds at most; the cheapest assembled plan of all rounds is kept.
    map_function : callable, optional
        ``map_function(function, items)`` running ``function`` on each item, possibly in
        parallel (a Dask ``Client.map`` followed by ``gather``); built-in ``map`` when
        ``None``.
    batch : int
        Chunks per unit of work sent through ``map_function``.

    Returns
    -------
    (Prepared, Solution)
        The whole problem's arrays and the assembled solution.
    """
    if problem.integer:
        raise ValueError("integer: the decomposed path plans LPs; use plan(method='arrays')")
    started = time.perf_counter()
    validate(problem)
    data = prepare(problem)
    chunks = partition(data, chunk_devices)
    rows = coupling_rows(data, chunks)
    problems = [chunk_problem(data, chunk, rows) for chunk in chunks]
    prepared_s = time.perf_counter() - started
    solutions = _run([(p, None) for p in problems], map_function, batch)
    spent = {"chunk_build_s": 0.0, "chunk_solve_s": 0.0, "chunk_solves": 0.0}

    def account(results: Iterable[Solution]) -> None:
        for result in results:
            spent["chunk_build_s"] += result.timings_s.get("build_s", 0.0)
            spent["chunk_solve_s"] += result.timings_s.get("solve_s", 0.0)
            spent["chunk_solves"] += 1

    account(solutions)
    solution = _assemble(data, chunks, rows, solutions)
    rounds_run = 0
    step = 0.5
    for _ in range(rounds):
        changed = _correct(rows, chunks, solutions, step)
        if not changed:
            break
        fresh = _run(
            [(chunk_problem(data, chunks[c], rows), solutions[c].basis) for c in changed],
            map_function,
            batch,
        )
        account(fresh)
        rounds_run += 1
        solutions = list(solutions)
        for c, result in zip(changed, fresh, strict=True):
            solutions[c] = result
        candidate = _assemble(data, chunks, rows, solutions)
        improvement = solution.objective - candidate.objective
        if improvement > 0:
            solution = candidate
        if improvement < 1e-4 * abs(solution.objective):
            break  # the shares have settled
        step /= 2  # moves shrink so that the shares settle instead of swinging
    solution.timings_s = {
        "prepare_s": prepared_s,
        "total_s": time.perf_counter() - started,
        "rounds": float(rounds_run),
        **spent,
    }
    solution.size = {
        "variables": sum(s.size.get("variables", 0) for s in solutions),
        "constraints": sum(s.size.get("constraints", 0) for s in solutions),
        "nonzeros": sum(s.size.get("nonzeros", 0) for s in solutions),
        "chunks": len(chunks),
    }
    return data, solution


def _correct(
    rows: list[Row], chunks: list[Chunk], solutions: list[Solution], step: float = 0.5
) -> list[int]:
    """Move shares of each coupling row from chunks where a kW costs more to chunks
    where it costs less (the optimum equalizes those marginal costs), and shortfalls to
    chunks with room to spare; return the chunks whose shares changed.

    ``step`` is the share of a dearer chunk's allocation moved per round (all of what
    it missed is moved).
    """
    changed: set[int] = set()
    # Every (row, position) entry flattened, so that the rows needing work are found
    # with array operations and only those are visited one by one.
    sizes = np.array([len(row.chunks) for row in rows], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    missing_all = np.zeros(int(sizes.sum()))
    marginal_all = np.full(int(sizes.sum()), np.inf)
    for c, chunk in enumerate(chunks):
        solution = solutions[c]
        for k, members in enumerate(chunk.groups.values()):
            flat = offsets[[index for index, _ in members]] + [position for _, position in members]
            missing_all[flat] = solution.request_shortfall_kw[k]
            dual = solution.request_dual[k]
            if dual is not None:
                marginal_all[flat] = -dual
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
        dear = (costs > cheapest + 1e-6 * max(1.0, abs(cheapest))) | (missing > 1e-6)
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
        row.share_kw = row.share_kw - give * (moved / give.sum()) + spare * (moved / spare.sum())
        changed.update(row.chunks[p] for p in np.flatnonzero((give > 0) | (spare > 0)))
    return sorted(changed)


def _assemble(
    data: Prepared, chunks: list[Chunk], rows: list[Row], solutions: list[Solution]
) -> Solution:
    fleet = data.problem.fleet
    steps = data.horizon.intervals
    devices = fleet.devices()
    kinds = {
        "battery": [d.device_id for d in fleet.batteries],
        "vehicle": [d.device_id for d in fleet.vehicles],
        "curtail": [d.device_id for d in fleet.curtailable_loads],
        "pump": [d.device_id for d in fleet.heat_pumps],
    }
    position = {name: {d: i for i, d in enumerate(ids)} for name, ids in kinds.items()}
    power = np.zeros((len(devices), steps))
    battery = {k: np.zeros((len(fleet.batteries), steps)) for k in ("charge", "discharge", "soc")}
    ev_charge = np.zeros((len(fleet.vehicles), steps))
    ev_discharge = np.zeros((len(fleet.vehicles), steps))
    ev_unmet = np.zeros(len(fleet.vehicles))
    curtail = np.zeros((len(fleet.curtailable_loads), steps))
    pump_kw = np.zeros((len(fleet.heat_pumps), steps))
    pump_temp = np.zeros((len(fleet.heat_pumps), steps))
    site_net = np.zeros((len(data.site_ids), steps))
    site_violation = np.zeros((len(data.site_ids), steps))
    status = "optimal"
    for chunk, solution in zip(chunks, solutions, strict=True):
        if not solution.feasible:
            raise RuntimeError(f"chunk of feeder {chunk.feeder}: solver status {solution.status}")
        if solution.status != "optimal":
            status = solution.status
        # A chunk's devices come in the fleet's own order (kind by kind), as its rows do.
        order = sorted(chunk.devices)
        power[order] = solution.power_kw
        sub = [devices[i] for i in order]
        for name, array_sets in (
            (
                "battery",
                [
                    (battery["charge"], solution.battery_charge_kw),
                    (battery["discharge"], solution.battery_discharge_kw),
                    (battery["soc"], solution.battery_soc_kwh),
                ],
            ),
            (
                "vehicle",
                [(ev_charge, solution.ev_charge_kw), (ev_discharge, solution.ev_discharge_kw)],
            ),
            ("curtail", [(curtail, solution.curtail_kw)]),
            ("pump", [(pump_kw, solution.heat_pump_kw), (pump_temp, solution.heat_pump_temp_c)]),
        ):
            local = [position[name][d.device_id] for d in sub if d.device_id in position[name]]
            for target, values in array_sets:
                if local:
                    target[local] = values
        local_vehicles = [
            position["vehicle"][d.device_id] for d in sub if d.device_id in position["vehicle"]
        ]
        if local_vehicles:
            ev_unmet[local_vehicles] = solution.ev_unmet_kwh
        site_net[chunk.sites] = solution.site_net_kw
        site_violation[chunk.sites] = solution.site_violation_kw
    feeders = feeder_violation(data, site_net)
    shortfall = [request_shortfall(data, power, r) for r in range(len(data.scopes))]
    duals: list[np.ndarray | None] = []
    for r, scope in enumerate(data.scopes):
        best = np.full(len(scope.intervals), np.inf)
        for c, chunk in enumerate(chunks):
            for k, j, index, _ in chunk.entries():
                row = rows[index]
                dual = solutions[c].request_dual[k]
                if row.request == r and dual is not None:
                    i = row.interval - scope.intervals[0]
                    best[i] = min(best[i], -float(dual[j]))
        sign = 1.0 if scope.request.kw is not None else -1.0
        duals.append(np.where(np.isfinite(best), best, np.nan) * sign)
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
    return Solution(
        status=status,
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
