"""Settlements sent by background jobs: a job that survives a restart, cancelled only
before its transaction is out, a node that goes away, and a capacity request settled
through its job."""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.chain import connect, deploy
from api.main import create_app
from api.settings import Settings
from contracts.chain import Chain
from registry import events as event_store
from registry import jobs as job_store
from registry import requests as request_store
from registry.db import session_factory
from registry.tables import Job, Settlement
from tests.api.conftest import bearer, wait_job
from tests.api.test_settlements_api import body
from tests.api.test_telemetry_api import make_device
from tests.conftest import anvil_binary, free_port, start_anvil
from tests.factories import program_fields

App = Callable[[bool], TestClient]


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    """The service on the test database, with or without its job runner (a service
    that accepts work and stops before running it)."""

    def make(jobs: bool) -> TestClient:
        settings = Settings(var_dir=tmp_path, vtn_enabled=False, jobs_enabled=jobs, job_poll_s=0.2)
        return TestClient(create_app(settings, engine=engine))

    return make


def chain_of(client: TestClient) -> Chain:
    chain: Chain = client.app.state.chain  # type: ignore[attr-defined]
    return chain


def test_a_queued_settlement_is_sent_after_a_restart(
    app: App, keys: dict[str, str], engine: Engine
) -> None:
    admin = bearer(keys["integrator"])
    with app(False) as stopped:
        ids = [make_device(stopped, keys, f"SN-{i}") for i in range(3)]
        queued = stopped.post("/v1/settlements", json=body(ids, epoch=1), headers=admin)
        assert queued.status_code == 202, queued.text
        cut_off = stopped.post("/v1/settlements", json=body(ids, epoch=2), headers=admin)
        assert cut_off.status_code == 202, cut_off.text
        job_id = queued.json()["job_id"]
        # Asked again while its job waits: what is stored, and the same job.
        again = stopped.post("/v1/settlements", json=body(ids, epoch=1), headers=admin)
        assert again.status_code == 200 and again.json()["job_id"] == job_id
        resend = stopped.post("/v1/settlements/1/send", headers=admin)
        assert resend.status_code == 200 and resend.json()["job_id"] == job_id
        waiting = stopped.get(f"/v1/jobs/{job_id}", headers=admin).json()
        assert waiting["status"] == "queued" and waiting["params"] == {
            "epoch": 1,
            "request_id": None,
        }
    # Epoch 2's job was taken by a runner that stopped while it sent.
    with session_factory(engine).begin() as session:
        job = job_store.get_job(session, cut_off.json()["job_id"])
        job.status, job.attempts = "running", 1
        assert len(session.scalars(select(Job)).all()) == 2

    with app(True) as restarted:
        first = wait_job(restarted, keys["integrator"], job_id)
        second = wait_job(restarted, keys["integrator"], cut_off.json()["job_id"])
        assert first["status"] == "done" and first["attempts"] == 1, first
        assert second["status"] == "done" and second["attempts"] == 2, second
        paid = [restarted.get(f"/v1/settlements/{e}", headers=admin).json() for e in (1, 2)]
        assert [p["status"] for p in paid] == ["confirmed", "confirmed"]
        assert [p["attempts"] for p in paid] == [1, 1]
        assert first["result"]["tx_hash"] == paid[0]["tx_hash"]
        assert second["result"]["total_units"] == paid[1]["total_units"]
        chain = chain_of(restarted)
        assert chain.balance(chain.deployment.distributor) == sum(
            int(p["total_units"]) for p in paid
        )
        assert len(paid[0]["leaves"]) == 2 and paid[0]["leaves"][0]["proof"]


def test_a_settlement_is_cancelled_only_before_its_transaction_is_out(
    app: App, keys: dict[str, str], engine: Engine
) -> None:
    admin, analyst = bearer(keys["integrator"]), bearer(keys["analyst"])
    sessions = session_factory(engine)
    with app(False) as client:
        ids = [make_device(client, keys, f"SN-{i}") for i in range(3)]
        first = client.post("/v1/settlements", json=body(ids), headers=admin).json()["job_id"]
        cancelled = client.post(f"/v1/jobs/{first}/cancel", headers=analyst)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert client.post(f"/v1/jobs/{first}/cancel", headers=analyst).status_code == 409
        # The epoch stays prepared, to be sent later.
        assert client.get("/v1/settlements/1", headers=admin).json()["status"] == "pending"
        resend = client.post("/v1/settlements/1/send", headers=admin)
        assert resend.status_code == 202 and resend.json()["job_id"] != first
        second = resend.json()["job_id"]
        # A runner takes it: a running settlement is not cancelled.
        with sessions.begin() as session:
            claimed = job_store.claim_next(session)
            assert claimed is not None and claimed.job_id == second
        running = client.post(f"/v1/jobs/{second}/cancel", headers=analyst)
        assert running.status_code == 409, running.text
        assert running.json()["detail"][0]["loc"] == ["body", "status"]
        assert "being sent on chain" in running.text
        # Queued again after a stop, its transaction already out: not cancelled either.
        with sessions.begin() as session:
            job_store.requeue(session, second, "the service stopped")
            row = session.get(Settlement, 1)
            assert row is not None
            row.status, row.tx_hash = "sent", "0x" + "ab" * 32
        out = client.post(f"/v1/jobs/{second}/cancel", headers=analyst)
        assert out.status_code == 409 and "cannot be called back" in out.text
        assert client.get(f"/v1/jobs/{second}", headers=admin).json()["status"] == "queued"
    with app(True) as restarted:
        # The chain holds no root for the epoch: the resumed job posts it.
        job = wait_job(restarted, keys["integrator"], second)
        assert job["status"] == "done", job
        paid = restarted.get("/v1/settlements/1", headers=admin).json()
        assert paid["status"] == "confirmed" and paid["tx_hash"] == job["result"]["tx_hash"]
        chain = chain_of(restarted)
        assert chain.balance(chain.deployment.distributor) == int(paid["total_units"])


def test_a_node_that_goes_away_fails_the_job_and_the_epoch_is_sent_again(
    engine: Engine, keys: dict[str, str], tmp_path: Path
) -> None:
    binary = anvil_binary()
    port, state, log = free_port(), tmp_path / "state.json", tmp_path / "anvil.log"
    node = start_anvil(binary, port, log, "--state", str(state))
    url = f"http://127.0.0.1:{port}"
    settings = Settings(var_dir=tmp_path, vtn_enabled=False, chain_rpc_url=url, job_poll_s=0.2)
    try:
        deploy(settings, connect(settings))
        with TestClient(create_app(settings, engine=engine)) as client:
            admin = bearer(keys["integrator"])
            ids = [make_device(client, keys, f"SN-{i}") for i in range(3)]
            prepared = client.post("/v1/settlements", json=body(ids, send=False), headers=admin)
            assert prepared.status_code == 201, prepared.text
            node.send_signal(signal.SIGINT)  # anvil writes its state on the way out
            node.wait(timeout=20)
            started = client.post("/v1/settlements/1/send", headers=admin)
            assert started.status_code == 202, started.text
            failed = wait_job(client, keys["integrator"], started.json()["job_id"])
            assert failed["status"] == "failed", failed
            assert "node unreachable" in failed["error"]
            assert "POST /v1/settlements/1/send" in failed["error"]
            kept = client.get("/v1/settlements/1", headers=admin).json()
            assert kept["status"] == "pending" and kept["attempts"] == 0

            node = start_anvil(binary, port, log, "--state", str(state))
            again = client.post("/v1/settlements/1/send", headers=admin)
            assert again.status_code == 202 and again.json()["job_id"] != failed["job_id"]
            done = wait_job(client, keys["integrator"], again.json()["job_id"])
            assert done["status"] == "done", done
            paid = client.get("/v1/settlements/1", headers=admin).json()
            assert paid["status"] == "confirmed" and paid["attempts"] == 1
            chain = chain_of(client)
            assert chain.balance(chain.deployment.distributor) == int(paid["total_units"])
    finally:
        node.terminate()
        node.wait(timeout=20)


def delivered_request(
    client: TestClient, keys: dict[str, str], engine: Engine, delivered: list[float], enrol: bool
) -> tuple[str, list[str]]:
    """A request on feeder F-12 that was dispatched to new devices, each of which opted
    in and delivered ``delivered`` kWh (as measured)."""
    serial = f"SN-{len(client.get('/v1/devices', headers=bearer(keys['analyst'])).json()['items'])}"
    ids, vens = [], []
    for i, _ in enumerate(delivered):
        device = make_device(client, keys, f"{serial}-{i}")
        ids.append(device)
        ven = f"ven-{device[2:14]}"
        if enrol:
            enrolled = client.post(
                "/v1/enrollments",
                json={"device_id": device, "program_id": "RES-DR"},
                headers=bearer(keys["integrator"]),
            )
            assert enrolled.status_code == 201, enrolled.text
            ven = enrolled.json()["ven_id"]
        vens.append(ven)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    start = end - timedelta(hours=1)
    with session_factory(engine).begin() as session:
        row = request_store.create_request(
            session,
            start=start,
            end=end,
            feeder="F-12",
            region=None,
            kw=10.0,
            cap_kw=None,
            price_per_kwh=0.0,
            shortfall_price_per_kwh=10.0,
            auto_dispatch=True,
            resolution_s=900,
            created_by="test",
        )
        for device, ven, kwh in zip(ids, vens, delivered, strict=True):
            event_id = f"ev-{row.request_id}-{device[2:10]}"
            event_store.record_sent(
                session,
                event_id,
                ven_id=ven,
                device_id=device,
                signal_name="LOAD_DISPATCH",
                intervals=[{"start": start.isoformat(), "minutes": 60, "value": -5.0}],
                capacity_request_id=row.request_id,
            )
            event_store.record_response(session, event_id, "optIn")
            event_store.record_measured(
                session, event_id, {"requested_kwh": 5.0, "delivered_kwh": kwh}
            )
        request_store.set_status(session, row, "delivered")
        return row.request_id, ids


def test_a_capacity_request_is_settled_by_its_job(
    app: App, keys: dict[str, str], engine: Engine
) -> None:
    operator = bearer(keys["operator"])
    with app(False) as stopped:
        assert stopped.post("/v1/programs", json=program_fields(), headers=operator).is_success
        request_id, ids = delivered_request(stopped, keys, engine, [4.0, 2.0, -1.0], enrol=True)
        path = f"/v1/capacity-requests/{request_id}"
        started = stopped.post(f"{path}/settle", json={}, headers=operator)
        assert started.status_code == 202, started.text
        settling = started.json()
        assert settling["status"] == "delivered" and settling["settlement_epoch"] is None
        assert settling["epoch"] == 1 and settling["epoch_status"] == "pending"
        # The request shows the job that sends its epoch.
        assert settling["job"]["job_id"] == settling["job_id"]
        assert settling["job"]["kind"] == "settlement"
        assert settling["job"]["status"] == "queued"
        assert settling["history"][-1]["action"] == "settling"
        assert settling["history"][-1]["epoch"] == 1
        again = stopped.post(f"{path}/settle", json={}, headers=operator)
        assert again.status_code == 200 and again.json()["job_id"] == settling["job_id"]
        other = stopped.post(f"{path}/settle", json={"epoch": 9}, headers=operator)
        assert other.status_code == 409 and other.json()["detail"][0]["loc"] == ["body", "epoch"]

    with app(True) as restarted:
        job = wait_job(restarted, keys["operator"], settling["job_id"])
        assert job["status"] == "done", job
        assert job["result"]["request_id"] == request_id and job["result"]["epoch"] == 1
        body = restarted.get(path, headers=operator).json()
        assert body["status"] == "settled" and body["settlement_epoch"] == 1
        assert body["job"]["kind"] == "settlement" and body["job"]["message"] == "confirmed"
        paid = restarted.get("/v1/settlements/1", headers=operator).json()
        assert paid["status"] == "confirmed" and paid["tx_hash"] == job["result"]["tx_hash"]
        assert {leaf["device_id"]: leaf["delivered_kwh"] for leaf in paid["leaves"]} == {
            ids[0]: 4.0,
            ids[1]: 2.0,
        }
        assert paid["skipped"] == {ids[2]: "nothing delivered"}
        # No telemetry in the window: only delivery counts (70%), at the program's 0.5.
        assert paid["total_ovpp"] == pytest.approx(0.7 * 6.0 * 0.5)
        chain = chain_of(restarted)
        assert chain.balance(chain.deployment.distributor) == int(paid["total_units"])
        twice = restarted.post(f"{path}/settle", json={}, headers=operator)
        assert twice.status_code == 409 and "settled" in twice.text


def test_settling_what_cannot_be_settled_is_refused_at_once(
    app: App, keys: dict[str, str], engine: Engine
) -> None:
    operator = bearer(keys["operator"])
    with app(False) as client:
        request_id, _ = delivered_request(client, keys, engine, [3.0], enrol=False)
        path = f"/v1/capacity-requests/{request_id}/settle"
        # Its device is in no program: no rate to pay at.
        rate = client.post(path, json={}, headers=operator)
        assert rate.status_code == 422
        assert rate.json()["detail"][0]["loc"] == ["body", "rate_ovpp_per_kwh"]
        with session_factory(engine).begin() as session:
            row = request_store.get_request(session, request_id)
            request_store.set_status(session, row, "delivering")
        early = client.post(path, json={"rate_ovpp_per_kwh": 1.0}, headers=operator)
        assert early.status_code == 409 and early.json()["detail"][0]["loc"] == ["body", "status"]
        missing = client.post("/v1/capacity-requests/cr-none/settle", json={}, headers=operator)
        assert missing.status_code == 404
        assert client.get("/v1/settlements", headers=operator).json() == []
        with session_factory(engine)() as session:
            assert job_store.latest_job(session, "1", "settlement") is None
