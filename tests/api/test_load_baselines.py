"""Loads planned from their own telemetry: the power they draw now for a window soon,
their profile by time of day for a later one, their rating only without readings; and
what the plan expects of a load is what measurement will ask of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api import capacity
from api.capacity import Services
from api.fleet import registry_fleet
from api.settings import Settings
from dispatch.measure import measure, metered_kw
from dispatch.redispatch import Called, Dispatched
from optimizer import results
from optimizer.devices import CurtailableLoad, Feeder, Fleet, Site
from optimizer.prepare import prepare
from optimizer.problem import CapacityRequest, Horizon, Problem
from registry import requests
from registry.db import session_factory
from registry.devices import create_device
from registry.enrollment import enroll
from registry.programs import create_program
from registry.telemetry import read_telemetry, store_readings
from tests.api.conftest import bearer
from tests.api.test_capacity_requests import submit, wait_while, window
from tests.factories import device_fields, device_in, program_fields, program_in

LOADS = ["thermostat", "pool_pump", "water_heater", "heat_pump"]


def load_fields(serial: str, kind: str, rating_kw: float, feeder: str) -> dict[str, Any]:
    return device_fields(
        serial,
        device_type=kind,
        make="ecobee" if kind == "thermostat" else "Pentair",
        model=kind,
        p_max_kw=rating_kw,
        p_min_kw=0.0,
        e_max_kwh=None,
        site_id=f"site-{serial}",
        feeder=feeder,
    )


def test_a_load_drawing_half_its_rating_is_planned_from_what_it_draws(
    engine: Engine, client: TestClient, keys: dict[str, str]
) -> None:
    operator, integrator = keys["operator"], bearer(keys["integrator"])
    program = program_fields(device_types=LOADS, min_energy_kwh=None)
    assert client.post("/v1/programs", json=program, headers=bearer(operator)).is_success
    ids = {}
    for serial, kind in (("TS-1", "thermostat"), ("PP-1", "pool_pump"), ("TS-2", "thermostat")):
        fields = load_fields(serial, kind, 3.0, "F-T")
        device = client.post("/v1/devices", json=fields, headers=integrator)
        assert device.status_code == 201, device.text
        ids[serial] = device.json()["device_id"]
        enrolled = client.post(
            "/v1/enrollments",
            json={"device_id": ids[serial], "program_id": "RES-DR"},
            headers=integrator,
        )
        assert enrolled.status_code == 201, enrolled.text
    # The thermostat and the pump have drawn 1.5 kW of their 3 kW over the last hour;
    # the second thermostat has never reported.
    now = datetime.now(UTC).replace(microsecond=0)
    readings = [
        {"device_id": ids[s], "timestamp": (now - timedelta(minutes=m)).isoformat(), "p_kw": 1.5}
        for s in ("TS-1", "PP-1")
        for m in range(2, 61, 2)
    ]
    sent = client.post("/v1/telemetry", json={"readings": readings}, headers=integrator)
    assert sent.status_code in (200, 201), sent.text

    times = window(minutes_ahead=10, hours=1)
    request_id = submit(client, operator, feeder="F-T", kw=50, auto_dispatch=False, **times)
    body = wait_while(client, operator, request_id, {"planning"})
    assert body["status"] == "planned", body
    plan = body["plan"]
    assert plan["load_baselines"] == {"nominal": 1, "recent": 2}
    assert "load baselines: 2 from their mean power over the last 1:00:00; 1 from their " in (
        " ".join(plan["notes"])
    )
    # By hand: a thermostat sheds at most 30% of its baseline, the pump all of it.
    # Metered thermostat 0.3 * 1.5 = 0.45, pump 1.5 (not its 3 kW rating), the
    # thermostat without telemetry 0.3 * (0.6 * 3) = 0.54: 2.49 kW of the 50 asked.
    assert len(body["intervals"]) == 4
    for interval in body["intervals"]:
        assert interval["planned_kw"] == pytest.approx(2.49, abs=1e-4)
        assert interval["shortfall_kw"] == pytest.approx(50 - 2.49, abs=1e-4)
    setpoints = plan["setpoints"]
    assert setpoints[ids["TS-1"]][1] == pytest.approx([1.05] * 4, abs=1e-4)
    assert setpoints[ids["PP-1"]][1] == pytest.approx([0.0] * 4, abs=1e-4)
    assert setpoints[ids["TS-2"]][1] == pytest.approx([1.26] * 4, abs=1e-4)

    # Measured meter-before, as a load with an hour of readings is, the metered
    # thermostat is asked for what the plan expects of it.
    start = datetime.fromisoformat(times["start"])
    with session_factory(engine)() as session:
        before = metered_kw(read_telemetry(session, ids["TS-1"]))
    steps = pd.date_range(start, periods=4, freq="15min")
    gap = pd.date_range(now, start, freq="2min", inclusive="left")
    during = pd.date_range(start, periods=30, freq="2min")
    readings_kw = pd.concat(
        [before, pd.Series(1.5, index=gap), pd.Series(1.05, index=during)]
    ).sort_index()
    event = [{"start": t.isoformat(), "minutes": 15, "value": 1.05} for t in steps]
    measured = measure(event, readings_kw, "thermostat")
    assert measured.method == "meter_before"
    assert measured.intervals["requested_kw"].to_numpy() == pytest.approx([0.45] * 4)
    assert measured.requested_kwh == pytest.approx(0.45)
    assert measured.delivered_kwh == pytest.approx(0.45)
    # Planned at its nominal 1.8 kW it would have been sent 1.26 kW: the plan would
    # expect 0.54 kW of it, and measurement ask 0.24.
    nominal = measure([{**i, "value": 1.26} for i in event], readings_kw, "thermostat")
    assert nominal.requested_kwh == pytest.approx(0.24)


# A Monday morning; the loads below have reported every 15 minutes for the week before.
NOW = datetime(2025, 3, 10, 6, tzinfo=UTC)


def _history(session: Session) -> dict[str, str]:
    """A pool pump on 10:30-12:30 UTC (2 kW on working days, 1 kW at weekends), a
    thermostat at 1.2 kW, a heat pump at 0.9 kW, a water heater with readings since
    Sunday (two days) and one with none, each rated 3 kW."""
    create_program(session, program_in(device_types=LOADS, min_energy_kwh=None))
    ids = {}
    for serial, kind in (
        ("PP", "pool_pump"),
        ("TS", "thermostat"),
        ("HP", "heat_pump"),
        ("WH-new", "water_heater"),
        ("WH-none", "water_heater"),
    ):
        device = create_device(session, device_in(**load_fields(serial, kind, 3.0, "F-P")))
        enroll(session, device.device_id, "RES-DR", vtn_url="x")
        ids[serial] = device.device_id
    times = pd.date_range(NOW - timedelta(days=7), NOW, freq="15min", inclusive="left")
    clock = times.hour + times.minute / 60
    running = (clock >= 10.5) & (clock < 12.5)
    pump = np.where(running, np.where(times.day_of_week >= 5, 1.0, 2.0), 0.0)
    series = {"PP": pump, "TS": np.full(len(times), 1.2), "HP": np.full(len(times), 0.9)}
    rows = [
        {"device_id": ids[name], "timestamp": t.isoformat(), "p_kw": float(p)}
        for name, values in series.items()
        for t, p in zip(times, values, strict=True)
    ]
    recent = times[times >= pd.Timestamp(NOW) - pd.Timedelta(hours=30)]
    rows += [{"device_id": ids["WH-new"], "timestamp": t.isoformat(), "p_kw": 2.0} for t in recent]
    assert not store_readings(session, rows, now=NOW).rejected
    return ids


def test_a_later_window_follows_each_loads_profile_by_time_of_day(session: Session) -> None:
    ids = _history(session)
    # Tuesday 10:00-14:00 by the hour: the pump's slots are averaged into each hour.
    tuesday = Horizon(pd.Timestamp("2025-03-11T10:00Z"), 4, timedelta(hours=1))
    found = registry_fleet(session, tuesday, feeder="F-P", now=NOW)
    baseline = prepare(Problem(tuesday, found.fleet)).baseline_kw
    assert found.load_baselines == {
        ids["PP"]: "profile",
        ids["TS"]: "profile",
        ids["HP"]: "profile",
        ids["WH-new"]: "nominal",  # two days of readings: too few for a profile
        ids["WH-none"]: "nominal",
    }
    assert "load baselines: 3 from their mean by time of day over the last 28 days; 2 from " in (
        " ".join(found.notes)
    )
    # 10:00-11:00 holds two of four slots at 2 kW; 11:00-12:00 all four; then two again.
    assert baseline[ids["PP"]] == pytest.approx([1.0, 2.0, 1.0, 0.0])
    assert baseline[ids["TS"]] == pytest.approx([1.2] * 4)
    assert baseline[ids["HP"]] == pytest.approx([0.9] * 4)  # the thermal model draws it
    # The water heaters without a profile run their nominal two hours at 3 kW.
    assert baseline[ids["WH-none"]] == pytest.approx([3.0, 3.0, 0.0, 0.0])
    # A Saturday: two weekend days are too few to average apart, so the slot's mean
    # over all seven days, (5 * 2 + 2 * 1) / 7 kW, is the baseline.
    saturday = Horizon(pd.Timestamp("2025-03-15T10:30Z"), 4, timedelta(minutes=15))
    found = registry_fleet(session, saturday, feeder="F-P", now=NOW)
    baseline = prepare(Problem(saturday, found.fleet)).baseline_kw
    assert baseline[ids["PP"]] == pytest.approx([12 / 7] * 4)


def test_a_shed_on_off_load_is_held_at_its_power_not_at_its_levels(engine: Engine) -> None:
    """Requests planned later count a pool pump that opted into a SIMPLE event as the
    load it will be: off where the event sheds it, its baseline elsewhere."""
    sessions = session_factory(engine)
    start = datetime(2026, 11, 21, 17, tzinfo=UTC)
    horizon = Horizon(pd.Timestamp(start), 8, timedelta(minutes=15))
    pump = CurtailableLoad(
        "pump", "site", [1.5] * 8, max_curtail_frac=1.0, rebound_frac=1.0, p_max_kw=3.0
    )
    fleet = Fleet(sites=(Site("site", "F-S"),), feeders=(Feeder("F-S"),), curtailable_loads=(pump,))
    end = start + timedelta(minutes=30)
    cut = CapacityRequest("cut", pd.Timestamp(start), pd.Timestamp(end), feeder="F-S", kw=1.0)
    result = results.plan(Problem(horizon, fleet, requests=(cut,)))
    with sessions.begin() as session:
        row = requests.create_request(
            session,
            start=start,
            end=end,
            feeder="F-S",
            region=None,
            kw=1.0,
            cap_kw=None,
            price_per_kwh=0.0,
            shortfall_price_per_kwh=10.0,
            auto_dispatch=True,
            resolution_s=900,
            created_by="test",
        )
        row.status = "planned"
        request_id = row.request_id
    levels = Called("pump", "ven-pump", "ev-1", start, (1.0, 1.0, 0.0), start, "SIMPLE")
    outcome = Dispatched(
        request_id,
        [start, start + timedelta(minutes=15)],
        [1.0, 1.0],
        events={"pump": levels},
        answers={"pump": "optIn"},
        last_plan=result,
    )
    services = Services(sessions, Settings(vtn_enabled=False), clock=lambda: start)
    capacity._store_dispatch(services, request_id, outcome)
    with sessions() as session:
        held = requests.get_request(session, request_id).plan["setpoints"]
    assert held == {"pump": [start.isoformat(), [0.0, 0.0, 1.5]]}
