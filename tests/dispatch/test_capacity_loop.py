"""The whole loop over the service: a capacity request submitted to the API is planned
from the registry, sent to real VENs, re-planned around opt-outs and a silent VEN,
delivered by the simulated batteries and measured from their reports."""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import Settings
from dispatch.simulator import BatteryModel, Misbehaviour, SimulatedVen, start_fleet, stop_fleet
from registry.db import make_engine, session_factory
from registry.devices import record_delivery
from registry.keys import Role, create_key
from tests.api.conftest import bearer, wait_job
from tests.conftest import free_port
from tests.factories import device_fields, program_fields

BATTERIES = 16
OPT_OUT = {0, 1, 2}
OFFLINE = {3}
KW = 61.0  # more than the 12 batteries that behave can give (60 kW): some must be called
STEP_S = 10
STEP_S_DELTA = timedelta(seconds=STEP_S)


@pytest.fixture
def loop_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "loop.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def test_a_request_goes_from_submission_to_measured_delivery(
    loop_engine: Engine, tmp_path: Path
) -> None:
    with session_factory(loop_engine).begin() as session:
        keys = {
            r: create_key(session, f"loop-{r.value}", r) for r in (Role.operator, Role.integrator)
        }
    operator, integrator = bearer(keys[Role.operator]), bearer(keys[Role.integrator])
    url = f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    settings = Settings(
        var_dir=tmp_path,
        vtn_url=url,
        vtn_poll_interval_s=1,
        vtn_report_interval_s=1,
        dispatch_answer_within_s=3,
        measure_after_s=4,
        live_delivery_every_s=2,
        job_poll_s=0.2,
    )
    with TestClient(create_app(settings, engine=loop_engine)) as client:
        assert client.post("/v1/programs", json=program_fields(), headers=operator).is_success
        vens = []
        misbehaving = set()
        for i in range(BATTERIES):
            fields = device_fields(f"SN-LOOP-{i:02d}", site_id=f"site-{i:02d}", feeder="F-L")
            device = client.post("/v1/devices", json=fields, headers=integrator).json()
            enrolled = client.post(
                "/v1/enrollments",
                json={"device_id": device["device_id"], "program_id": "RES-DR"},
                headers=integrator,
            ).json()
            if i in OPT_OUT | OFFLINE:
                misbehaving.add(device["device_id"])
            behaviour = Misbehaviour(
                opt_out=1.0 if i in OPT_OUT else 0.0, offline=1.0 if i in OFFLINE else 0.0
            )
            vens.append(
                SimulatedVen(
                    enrolled["ven_id"],
                    url,
                    BatteryModel(13.5, 5.0, soc=0.8, efficiency=1.0),
                    behaviour=behaviour,
                    rng=random.Random(i),
                    report_interval_s=1,
                    tick_s=0.1,
                )
            )

        def get(request_id: str) -> dict[str, Any]:
            body: dict[str, Any] = client.get(
                f"/v1/capacity-requests/{request_id}", headers=operator
            ).json()
            return body

        async def scenario() -> tuple[dict[str, Any], float]:
            await start_fleet(vens)
            try:
                await asyncio.sleep(2)  # first reports: state of charge
                now = time.time()
                first = datetime.fromtimestamp(now - now % STEP_S + 2 * STEP_S, UTC)
                start = first + timedelta(seconds=STEP_S)
                end = start + timedelta(seconds=3 * STEP_S)
                answer = await asyncio.to_thread(
                    client.post,
                    "/v1/capacity-requests",
                    json={
                        "feeder": "F-L",
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "kw": KW,
                        "resolution_s": STEP_S,
                    },
                    headers=operator,
                )
                assert answer.status_code == 202, answer.text
                request_id = answer.json()["id"]
                deadline = time.monotonic() + 120
                body = await asyncio.to_thread(get, request_id)
                while body["status"] not in ("delivered", "failed", "cancelled"):
                    assert time.monotonic() < deadline, body
                    await asyncio.sleep(0.5)
                    body = await asyncio.to_thread(get, request_id)
                truth = sum(v.delivered_kwh(start, end) for v in vens)
                return body, truth
            finally:
                await stop_fleet(vens)

        body, truth = asyncio.run(scenario())
        events = client.get(
            "/v1/events", params={"capacity_request_id": body["id"]}, headers=operator
        ).json()
        # Settled: the measured response becomes rewards on the embedded chain, sent
        # by a job that marks the request settled.
        settling = client.post(
            f"/v1/capacity-requests/{body['id']}/settle", json={}, headers=operator
        )
        assert settling.status_code == 202, settling.text
        job = wait_job(client, keys[Role.operator], settling.json()["job_id"])
        settled = client.get(f"/v1/capacity-requests/{body['id']}", headers=operator).json()
        epoch = settled["settlement_epoch"]
        paid = client.get(f"/v1/settlements/{epoch}", headers=operator).json()
        claims = client.post(f"/v1/settlements/{epoch}/claims", headers=operator)
        assert claims.status_code == 200, claims.text
        again = client.post(f"/v1/capacity-requests/{body['id']}/settle", json={}, headers=operator)

    assert body["status"] == "delivered", body
    actions = [entry["action"] for entry in body["history"]]
    assert actions[:2] == ["accepted", "planned"]
    rounds = [entry for entry in body["history"] if entry["action"] == "round"]
    # At least one misbehaving battery had to be called, so there was a re-plan.
    assert len(rounds) >= 2
    assert actions[-3:] == ["dispatched", "delivering", "delivered"]
    plan = body["plan"]
    assert plan["devices_called"] == BATTERIES - len(OPT_OUT) - len(OFFLINE)
    assert plan["left_out"] and set(plan["left_out"]) <= misbehaving
    opted_in = [e for e in events if e["status"] == "opted_in"]
    assert len(opted_in) == plan["devices_called"]
    assert {e["status"] for e in events} <= {"opted_in", "cancelled"}
    assert len(body["intervals"]) == 3
    for interval in body["intervals"]:
        assert interval["requested_kw"] == KW
        # Committed: what the devices that opted in give; only 1 kW short of 61.
        assert interval["committed_kw"] >= 0.95 * KW
        assert interval["delivered_kw"] is not None
    # Delivered from the reports against a meter-before baseline, and the truth.
    measured = plan["measurement"]
    assert measured["events_measured"] == plan["devices_called"] and not measured["unmeasured"]
    assert measured["delivered_kwh"] == pytest.approx(truth, rel=0.05)
    asked = KW * 3 * STEP_S / 3600
    assert truth >= 0.95 * asked, (truth, asked)
    delivered = sum(i["delivered_kw"] for i in body["intervals"]) * STEP_S / 3600
    assert delivered == pytest.approx(measured["delivered_kwh"], rel=1e-6)

    assert job["status"] == "done" and job["result"]["epoch"] == 1, job
    assert settled["status"] == "settled" and epoch == 1
    assert settled["history"][-1]["action"] == "settled"
    assert paid["status"] == "confirmed" and len(paid["leaves"]) == plan["devices_called"]
    assert paid["tx_hash"] == job["result"]["tx_hash"] and paid["tx_hash"]
    rewarded = sum(leaf["delivered_kwh"] for leaf in paid["leaves"])
    assert rewarded == pytest.approx(measured["delivered_kwh"], rel=1e-6)
    # The program pays 0.5 OVPP per kWh of contribution (delivery, availability, data).
    assert 0 < paid["total_ovpp"] <= 0.5 * rewarded * 1.0001
    assert sum(claims.json().values()) >= 1
    assert again.status_code == 409  # settled once


class GatedVen(SimulatedVen):
    """A VEN that answers no event before ``gate`` opens (its operator is slow)."""

    def __init__(self, *args: Any, gate: asyncio.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = gate

    async def _on_event(self, event: dict[str, Any]) -> str:
        await self.gate.wait()
        return await super()._on_event(event)


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def span(event: dict[str, Any]) -> tuple[datetime, datetime]:
        first, last = event["intervals"][0], event["intervals"][-1]
        end = datetime.fromisoformat(last["start"]) + timedelta(minutes=last["minutes"])
        return datetime.fromisoformat(first["start"]), end

    (a0, a1), (b0, b1) = span(a), span(b)
    return a0 < b1 and b0 < a1


def test_a_replan_round_leaves_the_devices_a_later_request_took_meanwhile(
    loop_engine: Engine, tmp_path: Path
) -> None:
    """Request A calls the three batteries with a perfect record, whose operators are
    slow and then opt out; while A waits for them, B is planned on the same feeder and
    window and takes some of the others. A's re-plan round must not call B's."""
    with session_factory(loop_engine).begin() as session:
        keys = {
            r: create_key(session, f"replan-{r.value}", r) for r in (Role.operator, Role.integrator)
        }
    operator, integrator = bearer(keys[Role.operator]), bearer(keys[Role.integrator])
    url = f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    settings = Settings(
        var_dir=tmp_path,
        vtn_url=url,
        vtn_poll_interval_s=1,
        vtn_report_interval_s=1,
        dispatch_answer_within_s=40,
        job_poll_s=0.2,
    )
    slow = {0, 1, 2}
    with TestClient(create_app(settings, engine=loop_engine)) as client:
        assert client.post("/v1/programs", json=program_fields(), headers=operator).is_success
        ven_ids, device_ids = [], []
        for i in range(12):
            fields = device_fields(f"SN-RE-{i:02d}", site_id=f"site-{i:02d}", feeder="F-R")
            device = client.post("/v1/devices", json=fields, headers=integrator).json()
            enrolled = client.post(
                "/v1/enrollments",
                json={"device_id": device["device_id"], "program_id": "RES-DR"},
                headers=integrator,
            ).json()
            ven_ids.append(enrolled["ven_id"])
            device_ids.append(device["device_id"])
        # The others have delivered 90% of what they were asked: plans prefer the three.
        with session_factory(loop_engine).begin() as session:
            for i, device_id in enumerate(device_ids):
                if i not in slow:
                    record_delivery(session, device_id, 10.0, 9.0)

        def get(path: str, **params: Any) -> Any:
            return client.get(path, params=params, headers=operator).json()

        def post(body: dict[str, Any]) -> str:
            answer = client.post("/v1/capacity-requests", json=body, headers=operator)
            assert answer.status_code == 202, answer.text
            return str(answer.json()["id"])

        async def until(check: Callable[[], Any], what: str, timeout_s: float = 60) -> Any:
            deadline = time.monotonic() + timeout_s
            while not (found := await asyncio.to_thread(check)):
                assert time.monotonic() < deadline, what
                await asyncio.sleep(0.2)
            return found

        async def scenario() -> tuple[str, str]:
            gate, open_ = asyncio.Event(), asyncio.Event()
            open_.set()
            vens = [
                GatedVen(
                    ven_ids[i],
                    url,
                    BatteryModel(13.5, 5.0, soc=0.8, efficiency=1.0),
                    behaviour=Misbehaviour(opt_out=1.0 if i in slow else 0.0),
                    rng=random.Random(i),
                    report_interval_s=1,
                    tick_s=0.1,
                    gate=gate if i in slow else open_,
                )
                for i in range(12)
            ]
            await start_fleet(vens)
            try:
                await asyncio.sleep(2)  # first reports: state of charge
                now = time.time()
                start = datetime.fromtimestamp(now - now % STEP_S + 6 * STEP_S, UTC)
                times = {"start": start.isoformat(), "end": (start + 3 * STEP_S_DELTA).isoformat()}
                fields = {"feeder": "F-R", "kw": 15.0, "resolution_s": STEP_S, **times}
                first = await asyncio.to_thread(post, fields)
                called = await until(
                    lambda: get("/v1/events", capacity_request_id=first), "A's first events"
                )
                assert {e["device_id"] for e in called} == {device_ids[i] for i in slow}
                second = await asyncio.to_thread(post, fields)
                await until(
                    lambda: get(f"/v1/capacity-requests/{second}")["status"] == "dispatched",
                    "B dispatched",
                )
                gate.set()  # A hears the opt-outs only now, and plans a second round
                await until(
                    lambda: get(f"/v1/capacity-requests/{first}")["status"] == "dispatched",
                    "A dispatched",
                )
                return first, second
            finally:
                gate.set()
                await stop_fleet(vens)

        first, second = asyncio.run(scenario())
        a, b = (get(f"/v1/capacity-requests/{r}") for r in (first, second))
        events = {r: get("/v1/events", capacity_request_id=r) for r in (first, second)}

    taken_by_b = set(b["plan"]["setpoints"])
    assert taken_by_b and not taken_by_b & {device_ids[i] for i in slow}
    rounds = [e for e in a["history"] if e["action"] == "round"]
    assert len(rounds) == 2
    # A's second round saw what B holds, left it out and says why.
    assert rounds[1]["held_by_other_requests"] == dict.fromkeys(sorted(taken_by_b), second)
    for device in taken_by_b:
        assert rounds[1]["why"][device] == f"held by request {second}"
    for i in slow:
        assert rounds[1]["why"][device_ids[i]] == "opted out"
    # No device got events of both requests for the same time.
    for mine in events[first]:
        for theirs in events[second]:
            assert mine["device_id"] != theirs["device_id"] or not _overlap(mine, theirs)
    # A still got its 15 kW from batteries B did not take.
    assert a["plan"]["devices_called"] >= 4
    assert all(i["committed_kw"] >= 15.0 - 1e-3 for i in a["intervals"]), a["intervals"]
