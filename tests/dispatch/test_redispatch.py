"""A capacity request dispatched to 50 simulated VENs and re-planned around opt-outs."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from dispatch.baselines import Event, delivered, meter_before
from dispatch.redispatch import dispatch_request, setpoints, without
from dispatch.simulator import (
    BatteryModel,
    LoadModel,
    Misbehaviour,
    SimulatedVen,
    start_fleet,
    stop_fleet,
)
from dispatch.vtn import Vtn
from optimizer.devices import Battery, Feeder, Fleet, ShiftableLoad, Site
from optimizer.problem import CapacityRequest, Horizon, Problem
from optimizer.results import plan
from tests.conftest import free_port
from tests.dispatch.test_vtn import _wait

STEP = timedelta(seconds=5)


def battery_problem(start: datetime, batteries: int, kw: float) -> Problem:
    """One battery per site on one feeder; a reduction of ``kw`` in intervals 3 and 4."""
    horizon = Horizon(pd.Timestamp(start), 8, STEP)
    fleet = Fleet(
        sites=tuple(Site(f"site-{i:02d}", "F-1") for i in range(batteries)),
        feeders=(Feeder("F-1"),),
        batteries=tuple(
            Battery(f"bat-{i:02d}", f"site-{i:02d}", 5.0, 5.0, 10.0, soc_initial_frac=0.8)
            for i in range(batteries)
        ),
    )
    request = CapacityRequest(
        "cut", pd.Timestamp(start + 3 * STEP), pd.Timestamp(start + 5 * STEP), feeder="F-1", kw=kw
    )
    return Problem(horizon, fleet, requests=(request,))


def test_left_out_devices_stay_at_baseline_on_their_site() -> None:
    start = datetime(2026, 11, 21, 17, 0, tzinfo=UTC)
    problem = battery_problem(start, 4, 12.0)
    whole = plan(problem)
    called = setpoints(whole, start)
    assert called and sum(values[0] for _, values in called.values()) <= 0
    baseline = whole.baseline_kw
    fewer = plan(without(problem, {"bat-00", "bat-01"}, baseline))
    assert set(fewer.power_kw.columns) == {"bat-02", "bat-03"}
    # Two batteries of 5 kW cannot give 12 kW: the shortfall says so.
    assert fewer.requests[0].shortfall_kw.sum() == pytest.approx(2 * 2.0)


def test_opt_outs_and_silent_vens_are_replanned_within_the_request() -> None:
    async def scenario() -> None:
        count, kw = 50, 60.0
        names = {f"bat-{i:02d}": f"ven-bat-{i:02d}" for i in range(count)}
        readings: dict[str, list[tuple[datetime, float]]] = {}

        async def on_readings(
            ven_id: str, values: list[tuple[datetime, float]], status: dict[str, object]
        ) -> None:
            readings.setdefault(ven_id, []).extend(values)

        vtn = Vtn(
            {v: v for v in names.values()}.get,
            port=free_port(),
            poll_interval_s=1,
            report_interval_s=1,
            on_readings=on_readings,
        )
        await vtn.start()
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        problem = battery_problem(start, count, kw)
        vens = []
        for i, (device, ven_id) in enumerate(names.items()):
            # About 30% misbehave: opt-outs drawn per VEN, and four that never come online.
            behaviour = Misbehaviour(opt_out=0.25, offline=1.0 if i % 12 == 3 else 0.0)
            vens.append(
                SimulatedVen(
                    ven_id,
                    vtn.url,
                    BatteryModel(10.0, 5.0, soc=0.8, efficiency=1.0),
                    behaviour=behaviour,
                    rng=random.Random(f"seed-{device}"),
                    report_interval_s=1,
                    tick_s=0.1,
                )
            )
        try:
            await start_fleet(vens)
            outcome = await dispatch_request(vtn, problem, names, answer_within_s=2.5, max_rounds=4)
            assert len(outcome.rounds) >= 2 and outcome.left_out
            assert outcome.requested_kw == [kw, kw]
            # What the devices that opted in commit to covers the request.
            assert min(outcome.committed_kw) >= 0.95 * kw, outcome.committed_kw
            assert all(outcome.answers[d] == "optIn" for d in outcome.events)
            # And the simulated devices deliver it: ground truth over the window.
            window_end = start + 5 * STEP
            await asyncio.sleep((window_end - datetime.now(UTC)).total_seconds() + 0.5)
            truth = sum(v.delivered_kwh(start + 3 * STEP, window_end) for v in vens)
            asked = kw * (2 * STEP).total_seconds() / 3600
            assert truth >= 0.95 * asked, (truth, asked)

            # M&V from the reports alone: meter-before baseline, delivered per interval.
            def covered() -> bool:  # every online VEN's meter has reported the window
                last = window_end - timedelta(seconds=1)
                return all(
                    max((t for t, _ in readings.get(v.ven_name, [])), default=start) >= last
                    for v in vens
                    if v.online
                )

            assert await _wait(covered, 20.0)
            event = Event(pd.Timestamp(start + 3 * STEP), pd.Timestamp(window_end))
            measured = 0.0
            for ven in vens:
                if ven.offline:
                    continue
                stamps, values = zip(*readings[ven.ven_name], strict=True)
                load = pd.Series(values, index=pd.DatetimeIndex(stamps)).sort_index()
                baseline = meter_before(load, event, minutes=10 / 60)
                measured += float(delivered(baseline, load).sum()) / 3600  # 1 s readings
            assert measured == pytest.approx(truth, rel=0.02), (measured, truth)
        finally:
            await stop_fleet(vens)
            await vtn.stop()

    asyncio.run(scenario())


def test_on_off_loads_are_shed_by_simple_levels() -> None:
    async def scenario() -> None:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        horizon = Horizon(pd.Timestamp(start), 8, STEP)
        # A pool pump that would run through the window (intervals 3-5) at 2 kW, and a
        # 5 kW battery: 6 kW asked in intervals 3-4 needs the pump off.
        pump = ShiftableLoad(
            "pump-00",
            "site-01",
            profile_kw=(2.0, 2.0, 2.0),
            earliest_start=pd.Timestamp(start),
            latest_start=pd.Timestamp(start + 5 * STEP),
            contiguous=False,
            baseline_start=pd.Timestamp(start + 3 * STEP),
        )
        fleet = Fleet(
            sites=(Site("site-00", "F-1"), Site("site-01", "F-1")),
            feeders=(Feeder("F-1"),),
            batteries=(Battery("bat-00", "site-00", 5.0, 5.0, 10.0, soc_initial_frac=0.8),),
            shiftable_loads=(pump,),
        )
        window = (pd.Timestamp(start + 3 * STEP), pd.Timestamp(start + 5 * STEP))
        request = CapacityRequest("cut", *window, feeder="F-1", kw=6.0)
        problem = Problem(horizon, fleet, requests=(request,))
        names = {"bat-00": "ven-bat", "pump-00": "ven-pump"}
        vtn = Vtn({v: v for v in names.values()}.get, port=free_port(), poll_interval_s=1)
        await vtn.start()
        vens = [
            SimulatedVen(
                "ven-bat", vtn.url, BatteryModel(10.0, 5.0, soc=0.8, efficiency=1.0), tick_s=0.1
            ),
            SimulatedVen("ven-pump", vtn.url, LoadModel([2.0] * 24, 1.0), tick_s=0.1),
        ]
        try:
            await start_fleet(vens)
            outcome = await dispatch_request(
                vtn, problem, names, answer_within_s=2.5, on_off={"pump-00"}
            )
            called = outcome.events["pump-00"]
            assert called.signal == "SIMPLE" and set(called.values_kw) <= {0.0, 1.0}
            assert outcome.answers["pump-00"] == "optIn"
            assert outcome.events["bat-00"].signal == "LOAD_DISPATCH"
            assert min(outcome.committed_kw) >= 0.95 * 6.0, outcome.committed_kw
            # The pump is off through the window: it gives its whole 2 kW.
            await asyncio.sleep((window[1].to_pydatetime() - datetime.now(UTC)).total_seconds())
            hours = (2 * STEP).total_seconds() / 3600
            pump_kwh = vens[1].delivered_kwh(window[0].to_pydatetime(), window[1].to_pydatetime())
            assert pump_kwh == pytest.approx(2.0 * hours, rel=0.05)
        finally:
            await stop_fleet(vens)
            await vtn.stop()

    asyncio.run(scenario())
