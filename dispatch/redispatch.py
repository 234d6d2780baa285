"""A capacity request from plan to committed devices, re-planned around opt-outs.

:func:`dispatch_request` plans the request with the optimizer, sends each device the
plan took (its power differs from its baseline) a ``LOAD_DISPATCH`` event of its
setpoints over the span where it differs, and waits for the answers. A device that
opts out, or does not answer within ``answer_within_s`` (and before the request
starts, when it has not yet), is left out: it is counted as uncontrolled load at its
baseline (added to its site's base load), its event is cancelled, and the rest of the
fleet is planned again for the same request. Devices whose setpoints change get their
event modified (and answer again); devices the new plan no longer needs get a
cancellation. Rounds go on until every called device has opted in, ``max_rounds`` is
reached or the window is over. Planning runs in a worker thread, so the VTN keeps
serving VENs meanwhile; or, with ``plan_round``, however the caller plans a round: it
may also leave out devices that other requests have taken while this one waited for
answers (they get no event of this request, and a call they had is cancelled).

The outcome shows per interval of the request what was requested, what the last plan
expects (``planned_kw``) and what the devices that opted in commit to
(``committed_kw``: their expected change, at their delivery factors).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from dispatch.vtn import Vtn
from optimizer.devices import FAMILIES, Fleet
from optimizer.prepare import prepare
from optimizer.problem import Problem, series
from optimizer.results import Plan, plan

Journal = Callable[[str, "Called"], None]
#: Plans one round: the plan of the problem it is given (left-out devices as load)
#: and the devices it left out because other requests hold them, by request id.
RoundPlanner = Callable[[Problem], Awaitable[tuple[Plan, dict[str, str]]]]

#: Below this a planned change from baseline is no change [kW].
CALL_TOLERANCE_KW = 1e-3


@dataclass(frozen=True)
class Called:
    """The event a device holds now: its setpoints [kW] from ``start``, one per step."""

    device_id: str
    ven_id: str
    event_id: str
    start: datetime
    values_kw: tuple[float, ...]
    asked_at: datetime
    #: ``LOAD_DISPATCH`` (``values_kw`` are setpoints) or ``SIMPLE`` (levels 0-3).
    signal: str = "LOAD_DISPATCH"


@dataclass(frozen=True)
class Round:
    """One planning round: who was left out (having opted out or stayed silent), who
    was called, what the plan expects, and the devices other requests held, by the
    request holding each."""

    at: datetime
    left_out: tuple[str, ...]
    called: tuple[str, ...]
    expected_kw: tuple[float, ...]
    shortfall_kw: tuple[float, ...]
    held: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Dispatched:
    """A request's dispatch: per interval of its window, requested / planned /
    committed [kW], every round, the events out and each device's last answer."""

    request_id: str
    intervals: list[datetime]
    requested_kw: list[float]
    planned_kw: list[float] = field(default_factory=list)
    committed_kw: list[float] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)
    events: dict[str, Called] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)
    last_plan: Plan | None = None


def _silent(action: str, called: Called) -> None:
    """A journal that keeps nothing."""


def without(problem: Problem, left_out: set[str], baseline_kw: pd.DataFrame) -> Problem:
    """``problem`` with the ``left_out`` devices as uncontrolled load at their power in
    ``baseline_kw`` (their baseline, or what another request holds them to)."""
    if not left_out:
        return problem
    fleet = problem.fleet
    steps = problem.horizon.intervals
    extra: dict[str, np.ndarray] = {}
    for device in fleet.devices():
        if device.device_id in left_out:
            base = baseline_kw[device.device_id].to_numpy(dtype=float)
            extra[device.site_id] = extra.get(device.site_id, np.zeros(steps)) + base
    sites = []
    for site in fleet.sites:
        if site.site_id in extra:
            own = np.asarray(series(site.base_load_kw, problem.horizon), dtype=float)
            site = replace(site, base_load_kw=tuple((own + extra[site.site_id]).tolist()))
        sites.append(site)
    kept: dict[str, Any] = {
        name: tuple(d for d in getattr(fleet, name) if d.device_id not in left_out)
        for name in FAMILIES
    }
    return replace(problem, fleet=Fleet(sites=tuple(sites), feeders=fleet.feeders, **kept))


def setpoints(
    result: Plan, not_before: datetime, until: datetime | None = None
) -> dict[str, tuple[datetime, list[float]]]:
    """Per device the plan changes: the first interval (not before ``not_before``) and
    its setpoints [kW] up to the last interval (starting before ``until``, when given)
    where it differs from its baseline."""
    out: dict[str, tuple[datetime, list[float]]] = {}
    power, baseline = result.power_kw, result.baseline_kw
    stamps = [pd.Timestamp(t).to_pydatetime() for t in power.index]
    usable = np.array([t >= not_before and (until is None or t < until) for t in stamps])
    for device in power.columns:
        differs = np.abs(power[device].to_numpy() - baseline[device].to_numpy()) > CALL_TOLERANCE_KW
        differs &= usable
        if not differs.any():
            continue
        first, last = np.flatnonzero(differs)[[0, -1]]
        values = [float(v) for v in power[device].to_numpy()[first : last + 1]]
        out[str(device)] = (stamps[first], values)
    return out


def shed_levels(
    wanted: dict[str, tuple[datetime, list[float]]], result: Plan, on_off: set[str]
) -> dict[str, tuple[datetime, list[float]]]:
    """``wanted`` with the setpoints of ``on_off`` devices as SIMPLE levels: 1 where
    the plan is below the baseline (shed), else 0; a device never shed is dropped."""
    out = {}
    for device, (first, values) in wanted.items():
        if device not in on_off:
            out[device] = (first, values)
            continue
        base = result.baseline_kw[device]
        at = int(pd.DatetimeIndex(base.index).searchsorted(pd.Timestamp(first)))
        below = [
            1.0 if v < float(base.iloc[at + k]) - CALL_TOLERANCE_KW else 0.0
            for k, v in enumerate(values)
        ]
        if any(below):
            out[device] = (first, below)
    return out


def _answers(vtn: Vtn, events: Mapping[str, Called]) -> dict[str, str | None]:
    """Each device's answer to its event since the event was last sent or modified."""
    latest: dict[str, list[tuple[datetime, str]]] = {}
    for response in vtn.responses:
        latest.setdefault(response.event_id, []).append((response.at, response.opt_type))
    out: dict[str, str | None] = {}
    for device, called in events.items():
        fresh = [opt for at, opt in latest.get(called.event_id, []) if at >= called.asked_at]
        out[device] = fresh[-1] if fresh else None
    return out


async def dispatch_request(
    vtn: Vtn,
    problem: Problem,
    ven_of: Mapping[str, str],
    *,
    answer_within_s: float = 60.0,
    max_rounds: int = 3,
    planner: Callable[[Problem], Plan] = plan,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    poll_s: float = 0.1,
    journal: Journal | None = None,
    on_off: Collection[str] = (),
    plan_round: RoundPlanner | None = None,
) -> Dispatched:
    """Plan ``problem`` (one capacity request), send the events, and re-plan around
    opt-outs and silent VENs (see the module docstring). ``ven_of`` maps each
    controllable device id to its VEN id; devices without one are planned at baseline.
    ``journal(action, called)`` hears of every event as it is ``sent``, ``modified`` or
    ``cancelled``, before any answer can come back. Devices in ``on_off`` (pool pumps,
    water heaters) get ``SIMPLE`` events instead: level 1 (shed, off) where the plan
    takes them below their baseline, 0 (normal) elsewhere. ``plan_round``, when given,
    plans every round instead of ``planner`` in a worker thread.
    """
    journal = journal or _silent

    async def in_thread(problem: Problem) -> tuple[Plan, dict[str, str]]:
        return await asyncio.to_thread(planner, problem), {}

    plan_round = plan_round or in_thread
    if len(problem.requests) != 1:
        raise ValueError(
            f"requests: one capacity request per dispatch, not {len(problem.requests)}"
        )
    request = problem.requests[0]
    start = pd.Timestamp(request.start).to_pydatetime()
    end = pd.Timestamp(request.end).to_pydatetime()
    step = problem.horizon.resolution
    unreachable = {d.device_id for d in problem.fleet.devices() if d.device_id not in ven_of}
    left_out: set[str] = set(unreachable)
    outcome = Dispatched(request.request_id, [], [])
    data = prepare(problem)
    baseline = pd.DataFrame(data.baseline_kw, index=problem.horizon.index)
    for _ in range(max_rounds):
        # Planning takes seconds for a large fleet: off the event loop that serves VENs.
        result, held = await plan_round(without(problem, left_out, baseline))
        # Events end with the window: what the plan does after it (storage
        # recovering its charge) is left to the devices.
        wanted = setpoints(result, clock(), until=end)
        wanted = {d: v for d, v in wanted.items() if d not in left_out and d not in held}
        wanted = shed_levels(wanted, result, set(on_off))
        request_outcome = result.requests[0]
        outcome.intervals = [
            pd.Timestamp(t).to_pydatetime() for t in request_outcome.requested_kw.index
        ]
        outcome.requested_kw = [float(v) for v in request_outcome.requested_kw]
        outcome.planned_kw = [float(v) for v in request_outcome.expected_kw]
        outcome.last_plan = result
        outcome.rounds.append(
            Round(
                clock(),
                tuple(sorted(left_out - unreachable)),
                tuple(sorted(wanted)),
                tuple(outcome.planned_kw),
                tuple(float(v) for v in request_outcome.shortfall_kw),
                dict(held),
            )
        )
        _send(vtn, outcome, wanted, ven_of, step, clock, journal, set(on_off))
        deadline = clock() + timedelta(seconds=answer_within_s)
        if clock() < start:  # answers are due by the start
            deadline = min(deadline, start)
        while clock() < deadline and None in _answers(vtn, outcome.events).values():
            await asyncio.sleep(poll_s)
        dropped = []
        for device, answer in _answers(vtn, outcome.events).items():
            outcome.answers[device] = answer or "none"
            if answer != "optIn":
                dropped.append(device)
        for device in dropped:
            gone = outcome.events.pop(device)
            vtn.cancel(gone.ven_id, gone.event_id)
            journal("cancelled", gone)
            left_out.add(device)
        if not dropped or clock() >= end:
            break
    outcome.left_out = sorted(left_out - unreachable)
    outcome.committed_kw = _committed(outcome, problem)
    return outcome


def _send(
    vtn: Vtn,
    outcome: Dispatched,
    wanted: dict[str, tuple[datetime, list[float]]],
    ven_of: Mapping[str, str],
    step: timedelta,
    clock: Callable[[], datetime],
    journal: Journal,
    levels: set[str],
) -> None:
    """New events, modifications and cancellations so that events match ``wanted``
    (``levels``: the devices whose events are ``SIMPLE``)."""
    for device in list(outcome.events):
        if device not in wanted:
            gone = outcome.events.pop(device)
            vtn.cancel(gone.ven_id, gone.event_id)
            journal("cancelled", gone)
            outcome.answers[device] = "cancelled"
    for device, (first, values) in wanted.items():
        called = outcome.events.get(device)
        now = clock()
        signal = "SIMPLE" if device in levels else "LOAD_DISPATCH"
        if called is None:
            if signal == "SIMPLE":
                event_id = vtn.send_levels(ven_of[device], first, step, [int(v) for v in values])
            else:
                event_id = vtn.send_setpoints(ven_of[device], first, step, values)
            outcome.events[device] = Called(
                device, ven_of[device], event_id, first, tuple(values), now, signal
            )
            journal("sent", outcome.events[device])
        elif (called.start, called.values_kw) != (first, tuple(values)):
            vtn.modify(called.ven_id, called.event_id, first, step, values)
            outcome.events[device] = replace(
                called, start=first, values_kw=tuple(values), asked_at=now
            )
            journal("modified", outcome.events[device])


def _committed(outcome: Dispatched, problem: Problem) -> list[float]:
    """Expected change of the devices that opted in, per request interval [kW]: the
    reduction (baseline - plan) at their delivery factors."""
    result = outcome.last_plan
    if result is None or not outcome.intervals:
        return []
    factor = {d.device_id: d.delivery_factor for d in problem.fleet.devices()}
    window = result.power_kw.index.isin(pd.DatetimeIndex(outcome.intervals))
    total = np.zeros(int(window.sum()))
    for device in outcome.events:
        if outcome.answers.get(device) == "optIn":
            change = result.baseline_kw[device].to_numpy() - result.power_kw[device].to_numpy()
            total += factor[device] * change[window]
    return [float(v) for v in total]
