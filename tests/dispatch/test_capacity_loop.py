"""The whole loop over the service: a capacity request submitted to the API is planned
from the registry, sent to real VENs, re-planned around opt-outs and a silent VEN,
delivered by the simulated batteries and measured from their reports."""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from collections.abc import Iterator
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
from registry.keys import Role, create_key
from tests.api.conftest import bearer, wait_job
from tests.conftest import free_port
from tests.factories import device_fields, program_fields

BATTERIES = 16
OPT_OUT = {0, 1, 2}
OFFLINE = {3}
KW = 61.0  # more than the 12 batteries that behave can give (60 kW): some must be called
STEP_S = 10


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
