"""Capacity requests over the API: planned in the background from the registry, with
shortfalls explained, overlapping requests never booking a device twice, and jobs that
survive a restart. Dispatch to real VENs is in ``tests/dispatch/test_capacity_loop.py``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.main import create_app
from api.settings import Settings
from registry import jobs as job_store
from registry.db import session_factory
from registry.demo import build_fleet, seed_demo
from registry.tables import Device, Enrollment
from tests.api.conftest import bearer


def window(minutes_ahead: float = 10, hours: float = 2) -> dict[str, str]:
    """A window on the quarter-hour grid starting ``minutes_ahead`` or a little later."""
    soon = datetime.now(UTC) + timedelta(minutes=minutes_ahead)
    start = soon.replace(minute=0, second=0, microsecond=0) + timedelta(
        minutes=15 * (soon.minute // 15 + 1)
    )
    return {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()}


def evening_window(hours: float = 2) -> dict[str, str]:
    """The next window from 18:00 UTC at least two hours ahead: planned on load profiles,
    at an hour when the demo fleet's vehicles are plugged in."""
    now = datetime.now(UTC)
    start = now.replace(hour=18, minute=0, second=0, microsecond=0)
    while start < now + timedelta(hours=2):
        start += timedelta(days=1)
    return {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()}


def wait_while(
    client: TestClient, key: str, request_id: str, statuses: set[str], timeout_s: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(
            f"/v1/capacity-requests/{request_id}", headers=bearer(key)
        ).json()
        if body["status"] not in statuses or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def submit(client: TestClient, key: str, **fields: Any) -> str:
    answer = client.post("/v1/capacity-requests", json=fields, headers=bearer(key))
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "planning"
    return str(answer.json()["id"])


@pytest.mark.usefixtures("demo_fleet")
def test_a_request_is_planned_in_the_background_with_per_interval_figures(
    client: TestClient, keys: dict[str, str]
) -> None:
    operator = keys["operator"]
    # In the evening: the demo fleet cannot give 20 kW on F-01 at every hour.
    times = evening_window()
    request_id = submit(client, operator, feeder="F-01", kw=20, auto_dispatch=False, **times)
    body = wait_while(client, operator, request_id, {"planning"})
    assert body["status"] == "planned", body
    assert body["job"]["status"] == "done" and body["job"]["progress"] == 1.0
    plan = body["plan"]
    assert 0 < plan["devices_called"] <= plan["devices"]
    assert plan["baseline_method"] == "profile"  # a week of history: too short to learn
    # Every interval of the two-hour window, each asking for 20 kW, is covered.
    assert len(body["intervals"]) == 8
    for interval in body["intervals"]:
        assert interval["requested_kw"] == 20
        assert interval["planned_kw"] == pytest.approx(20, abs=1e-4)
        assert interval["shortfall_kw"] == pytest.approx(0, abs=1e-4)
        assert interval["committed_kw"] is None and interval["delivered_kw"] is None
    # The setpoints of the devices called are kept (what the request holds them to).
    assert len(plan["setpoints"]) == plan["devices_called"]
    assert [e["action"] for e in body["history"]] == ["accepted", "planned"]
    listed = client.get("/v1/capacity-requests", headers=bearer(keys["analyst"])).json()
    assert [r["id"] for r in listed] == [request_id]
    assert listed[0]["devices_called"] == plan["devices_called"]


@pytest.mark.usefixtures("demo_fleet")
def test_an_unattainable_request_gets_its_best_plan_and_the_shortfall_explained(
    client: TestClient, keys: dict[str, str]
) -> None:
    operator = keys["operator"]
    request_id = submit(client, operator, feeder="F-02", kw=5000, auto_dispatch=False, **window())
    body = wait_while(client, operator, request_id, {"planning"})
    assert body["status"] == "planned"
    assert "falls short" in body["reason"]
    assert body["plan"]["shortfall_kwh"] > 0
    short = [i for i in body["intervals"] if i["shortfall_kw"] > 1]
    assert short and all(i["reasons"] for i in short)
    for interval in body["intervals"]:
        planned, shortfall = interval["planned_kw"], interval["shortfall_kw"]
        assert planned + shortfall == pytest.approx(interval["requested_kw"], rel=1e-6)
        assert planned > 0  # best effort: the fleet still gives what it can


@pytest.mark.usefixtures("demo_fleet")
def test_overlapping_requests_never_book_the_same_device(
    client: TestClient, keys: dict[str, str]
) -> None:
    operator = keys["operator"]
    # Hours ahead, every enrolled device counts, whatever the loads do now. In the
    # evening: from 06:00 to 12:00 UTC the devices the first request leaves on F-01
    # cannot give another 5 kW.
    times = evening_window()
    first = submit(client, operator, feeder="F-01", kw=5, auto_dispatch=False, **times)
    first_body = wait_while(client, operator, first, {"planning"})
    second = submit(client, operator, feeder="F-01", kw=5, auto_dispatch=False, **times)
    second_body = wait_while(client, operator, second, {"planning"})
    assert second_body["status"] == "planned"
    held = second_body["plan"]["held_by_other_requests"]
    taken = set(first_body["plan"]["setpoints"])
    assert set(held) == taken and set(held.values()) == {first}
    assert not taken & set(second_body["plan"]["setpoints"])
    # The rest of the fleet still covers the second request.
    assert second_body["plan"]["shortfall_kwh"] == pytest.approx(0, abs=1e-3)


@pytest.mark.usefixtures("demo_fleet")
def test_bad_requests_name_the_field_and_store_nothing(
    client: TestClient, keys: dict[str, str]
) -> None:
    operator = bearer(keys["operator"])
    now = datetime.now(UTC)
    cases = [
        ({"feeder": "F-99", "kw": 5, **window()}, "feeder"),
        ({"feeder": "F-01", "kw": -5, **window()}, "kw"),
        ({"feeder": "F-01", "kw": 5, "cap_kw": 9, **window()}, "kw"),
        ({"kw": 5, **window()}, "feeder"),
        ({"feeder": "F-01", "region": "R-1", "kw": 5, **window()}, "feeder"),
        ({"feeder": "F-01", "kw": 5, **window(hours=30)}, "end"),
        ({"feeder": "F-01", "kw": 5, "start": now.isoformat(), "end": now.isoformat()}, "end"),
        ({"feeder": "F-01", "kw": 5, **window(minutes_ahead=-200)}, "end"),
        ({"feeder": "F-01", "kw": 5, "resolution_s": 7, **window()}, "resolution_s"),
        ({"feeder": "F-01", "kw": 5, "start": "2026-11-21T17:00:00", "end": "x"}, "start"),
    ]
    for body, name in cases:
        answer = client.post("/v1/capacity-requests", json=body, headers=operator)
        assert answer.status_code == 422, (body, answer.text)
        assert name in answer.text, (name, answer.text)
    assert client.get("/v1/capacity-requests", headers=operator).json() == []
    # Roles: an analyst may read but not ask; no key at all is refused.
    analyst = client.post(
        "/v1/capacity-requests",
        json={"feeder": "F-01", "kw": 5, **window()},
        headers=bearer(keys["analyst"]),
    )
    assert analyst.status_code == 403
    assert client.get("/v1/capacity-requests").status_code == 401
    assert client.get("/v1/capacity-requests/cr-none", headers=operator).status_code == 404


@pytest.mark.usefixtures("demo_fleet")
def test_approval_without_a_vtn_fails_with_the_reason_and_cancel_is_final(
    client: TestClient, keys: dict[str, str]
) -> None:
    operator = keys["operator"]
    headers = bearer(operator)
    waiting = submit(client, operator, feeder="F-01", kw=10, auto_dispatch=False, **window())
    assert wait_while(client, operator, waiting, {"planning"})["status"] == "planned"
    approved = client.post(f"/v1/capacity-requests/{waiting}/approve", headers=headers)
    assert approved.status_code == 200, approved.text
    body = wait_while(client, operator, waiting, {"planned"})
    assert body["status"] == "failed" and "VTN is not running" in body["reason"]
    again = client.post(f"/v1/capacity-requests/{waiting}/approve", headers=headers)
    assert again.status_code == 409 and "status" in again.text

    other = submit(client, operator, feeder="F-02", kw=10, auto_dispatch=False, **window())
    assert wait_while(client, operator, other, {"planning"})["status"] == "planned"
    cancelled = client.post(f"/v1/capacity-requests/{other}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["history"][-1]["action"] == "cancelled"
    twice = client.post(f"/v1/capacity-requests/{other}/cancel", headers=headers)
    assert twice.status_code == 409


@pytest.mark.usefixtures("demo_fleet")
def test_a_request_accepted_before_a_stop_is_planned_after_the_restart(
    engine: Engine, keys: dict[str, str], tmp_path: Path
) -> None:
    def app(jobs: bool) -> TestClient:
        settings = Settings(var_dir=tmp_path, vtn_enabled=False, jobs_enabled=jobs)
        return TestClient(create_app(settings, engine=engine))

    operator = keys["operator"]
    with app(jobs=False) as stopped:
        resumed = submit(stopped, operator, feeder="F-01", kw=10, auto_dispatch=False, **window())
        cut_off = submit(stopped, operator, feeder="F-02", kw=10, auto_dispatch=False, **window())
    sessions = session_factory(engine)
    # Both jobs were taken by a runner that then died; the second had used its attempts.
    with sessions.begin() as session:
        for _ in range(2):
            job = job_store.claim_next(session)
            assert job is not None
            if job.subject_id == cut_off:
                job.attempts = 3
    with app(jobs=True) as restarted:
        body = wait_while(restarted, operator, resumed, {"planning"})
        assert body["status"] == "planned", body
        gone = restarted.get(f"/v1/capacity-requests/{cut_off}", headers=bearer(operator)).json()
        assert gone["status"] == "failed"
        assert "stopped while this job ran" in gone["reason"]
        assert gone["job"]["status"] == "failed"


def test_a_reduction_soon_leaves_out_loads_that_are_off(
    engine: Engine, client: TestClient, keys: dict[str, str]
) -> None:
    # The demo history ends two hours ago; the last hour holds only what is sent here.
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    with session_factory(engine).begin() as session:
        seed_demo(session, build_fleet(60, 2, seed=3, end=end, days=3), vtn_url="http://x:1/y")
        pumps = session.execute(
            select(Device.device_id, Device.p_max_kw)
            .join(Enrollment, Enrollment.device_id == Device.device_id)
            .where(Device.feeder == "F-01", Device.device_type == "heat_pump")
            .order_by(Device.device_id)
        ).all()
    (off, _), (running, rating) = pumps[:2]
    now = datetime.now(UTC).replace(microsecond=0)
    readings = [
        {"device_id": device, "timestamp": (now - timedelta(minutes=m)).isoformat(), "p_kw": kw}
        for device, kw in ((off, 0.0), (running, 0.8 * rating))
        for m in range(2, 60, 2)
    ]
    sent = client.post(
        "/v1/telemetry", json={"readings": readings}, headers=bearer(keys["integrator"])
    )
    assert sent.status_code in (200, 201), sent.text
    operator = keys["operator"]
    request_id = submit(client, operator, feeder="F-01", kw=15, auto_dispatch=False, **window())
    plan = wait_while(client, operator, request_id, {"planning"})["plan"]
    assert plan["idle"] == [off]
    assert off not in plan["setpoints"]
    assert any("left out" in note for note in plan["notes"])
    # A request hours ahead says nothing from what the loads do now.
    later = submit(
        client, operator, feeder="F-02", kw=5, auto_dispatch=False, **window(minutes_ahead=180)
    )
    assert wait_while(client, operator, later, {"planning"})["plan"]["idle"] == []
