"""Settlement through the API: the outbox written at once, the job that posts it on
chain, claims, and every reward's proof."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.settlement import attributes_hash
from contracts.chain import Chain, send
from registry.db import session_factory
from registry.tables import Device, Job
from tests.api.conftest import bearer, wait_job
from tests.api.test_telemetry_api import make_device
from tests.factories import OWNER_ADDRESS, program_fields


def deliveries(ids: list[str]) -> list[dict[str, Any]]:
    return [
        {"device_id": ids[0], "delivered_kwh": 4.0, "availability": 1, "data_quality": 1},
        {"device_id": ids[1], "delivered_kwh": 2.5, "availability": 0.5, "data_quality": 0.9},
        {"device_id": ids[2], "delivered_kwh": 0.0, "availability": 1, "data_quality": 1},
    ]


def body(ids: list[str], epoch: int = 1, **change: Any) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "rate_ovpp_per_kwh": 2.0,
        "deliveries": deliveries(ids),
        **change,
    }


def settle(client: TestClient, keys: dict[str, str], payload: dict[str, Any]) -> dict[str, Any]:
    """Post a settlement, wait for the job that sends it, and return the epoch as stored."""
    created = client.post("/v1/settlements", json=payload, headers=bearer(keys["integrator"]))
    assert created.status_code == 202, created.text
    job = wait_job(client, keys["integrator"], created.json()["job_id"])
    assert job["status"] == "done", job
    epoch: dict[str, Any] = client.get(
        f"/v1/settlements/{payload['epoch']}", headers=bearer(keys["analyst"])
    ).json()
    return epoch


def settlement_jobs(engine: Engine) -> int:
    with session_factory(engine)() as session:
        return len(session.scalars(select(Job).where(Job.kind == "settlement")).all())


def test_settle_claim_and_see_rewards(
    client: TestClient, keys: dict[str, str], engine: Engine
) -> None:
    ids = [make_device(client, keys, f"SN-{i}") for i in range(3)]
    admin = bearer(keys["integrator"])
    assert client.post("/v1/programs", json=program_fields(), headers=admin).status_code == 201
    payload = body(ids, program_id="RES-DR")
    created = client.post("/v1/settlements", json=payload, headers=admin)
    assert created.status_code == 202, created.text
    # Prepared before anything is sent: the rewards are stored, a job sends them.
    assert created.json()["status"] == "pending" and created.json()["rewards"] == 2
    job = wait_job(client, keys["integrator"], created.json()["job_id"])
    assert job["status"] == "done" and job["kind"] == "settlement", job
    assert job["message"] == "confirmed" and job["progress"] == 1.0
    epoch = client.get("/v1/settlements/1", headers=admin).json()
    assert epoch["status"] == "confirmed" and epoch["attempts"] == 1 and epoch["rewards"] == 2
    # 4 kWh x 2 OVPP, and 2.5 kWh x (0.7 + 0.2 x 0.5 + 0.1 x 0.9) x 2 OVPP, exact.
    assert epoch["total_units"] == str(8 * 10**18 + 4_450_000_000_000_000_000)
    assert epoch["skipped"] == {ids[2]: "nothing delivered"}
    assert job["result"] == {
        "epoch": 1,
        "status": "confirmed",
        "tx_hash": epoch["tx_hash"],
        "rewards": 2,
        "total_units": epoch["total_units"],
        "total_ovpp": 12.45,
        "request_id": None,
    }
    chain: Chain = client.app.state.chain  # type: ignore[attr-defined]
    assert chain.balance(chain.deployment.distributor) == int(epoch["total_units"])
    receipt = chain.w3.eth.get_transaction_receipt(epoch["tx_hash"])
    assert receipt["status"] == 1

    again = client.post("/v1/settlements", json=payload, headers=admin)
    assert again.status_code == 200 and again.json()["attempts"] == 1  # nothing sent twice
    assert again.json()["job_id"] == job["job_id"] and settlement_jobs(engine) == 1
    resend = client.post("/v1/settlements/1/send", headers=admin)
    assert resend.status_code == 200 and resend.json()["job_id"] == job["job_id"]
    assert chain.balance(chain.deployment.distributor) == int(epoch["total_units"])
    other = client.post("/v1/settlements", json=body(ids, rate_ovpp_per_kwh=3.0), headers=admin)
    assert other.status_code == 409 and "other rewards" in other.text

    rewards = client.get(f"/v1/devices/{ids[1]}/rewards", headers=bearer(keys["owner"]))
    assert rewards.status_code == 200
    [reward] = rewards.json()
    assert reward["amount_units"] == "4450000000000000000" and not reward["claimed"]
    assert reward["owner_address"].lower() == OWNER_ADDRESS.lower() and reward["proof"]

    claims = client.post("/v1/settlements/1/claims", headers=admin)
    assert claims.status_code == 200 and claims.json() == {"claimed": 2, "already_claimed": 0}
    assert chain.balance(OWNER_ADDRESS) == int(epoch["total_units"])
    assert client.get(f"/v1/devices/{ids[1]}/rewards", headers=admin).json()[0]["claimed"]
    assert client.post("/v1/settlements/1/claims", headers=admin).json()["claimed"] == 0

    listed = client.get("/v1/settlements", headers=bearer(keys["analyst"]))
    assert [s["epoch"] for s in listed.json()] == [1]
    detail = client.get("/v1/settlements/1", headers=bearer(keys["analyst"])).json()
    assert [leaf["index"] for leaf in detail["leaves"]] == [0, 1]


def test_a_post_that_went_through_before_a_crash_is_confirmed_not_resent(
    client: TestClient, keys: dict[str, str]
) -> None:
    ids = [make_device(client, keys, f"SN-{i}") for i in range(3)]
    admin = bearer(keys["integrator"])
    prepared = client.post("/v1/settlements", json=body(ids, epoch=5, send=False), headers=admin)
    assert prepared.status_code == 201 and prepared.json()["status"] == "pending"
    assert prepared.json()["job_id"] is None  # nothing to send yet
    # The transaction went out, but the service stopped before recording it.
    chain: Chain = client.app.state.chain  # type: ignore[attr-defined]
    row = prepared.json()
    post = chain.distributor.functions.post_epoch(
        5, bytes.fromhex(row["root"][2:]), int(row["total_units"]), row["rewards"]
    )
    send(chain.w3, "post", post, chain.w3.eth.accounts[0])
    resumed = client.post("/v1/settlements/5/send", headers=admin)
    assert resumed.status_code == 202, resumed.text
    job = wait_job(client, keys["integrator"], resumed.json()["job_id"])
    assert job["status"] == "done" and job["result"]["tx_hash"] is None  # nothing sent
    stored = client.get("/v1/settlements/5", headers=admin).json()
    assert stored["status"] == "confirmed" and stored["attempts"] == 0
    assert chain.balance(chain.deployment.distributor) == int(row["total_units"])  # once


def test_bad_settlements(client: TestClient, keys: dict[str, str], engine: Engine) -> None:
    ids = [make_device(client, keys, f"SN-{i}") for i in range(3)]
    admin = bearer(keys["integrator"])
    unknown = body(ids)
    unknown["deliveries"][1]["device_id"] = "0x" + "00" * 32
    answer = client.post("/v1/settlements", json=unknown, headers=admin)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "deliveries", "1", "device_id"]
    weights = client.post("/v1/settlements", json=body(ids, w_delivery=0.9), headers=admin)
    assert weights.status_code == 422 and "sum to 1" in weights.text
    assert weights.json()["detail"][0]["loc"] == ["body", "w_delivery"]
    program = client.post("/v1/settlements", json=body(ids, program_id="NOPE"), headers=admin)
    assert program.status_code == 422
    assert program.json()["detail"][0]["loc"] == ["body", "program_id"]
    nothing = body(ids)
    nothing["deliveries"] = [
        {"device_id": ids[0], "delivered_kwh": 0, "availability": 1, "data_quality": 1}
    ]
    assert client.post("/v1/settlements", json=nothing, headers=admin).status_code == 422
    assert (
        client.post("/v1/settlements", json=body(ids), headers=bearer(keys["analyst"])).status_code
        == 403
    )
    assert client.get("/v1/settlements/9", headers=admin).status_code == 404
    assert client.post("/v1/settlements/9/claims", headers=admin).status_code == 404
    assert client.post("/v1/settlements/9/send", headers=admin).status_code == 404
    # Nothing refused was stored, and no job was started.
    assert client.get("/v1/settlements", headers=admin).json() == []
    assert settlement_jobs(engine) == 0


def test_availability_and_data_quality_from_telemetry(
    client: TestClient, keys: dict[str, str]
) -> None:
    device = make_device(client, keys, "SN-T", telemetry_interval_s=900)
    start = datetime(2026, 11, 20, 16, tzinfo=UTC)
    # Two hours = 8 slots of 15 min: readings in 4 of them, 3 online.
    readings = [
        {
            "device_id": device,
            "timestamp": (start + timedelta(minutes=15 * i)).isoformat(),
            "p_kw": -2.0,
            "online": i != 2,
        }
        for i in range(4)
    ]
    stored = client.post(
        "/v1/telemetry", json={"readings": readings}, headers=bearer(keys["aggregator"])
    )
    assert stored.json()["stored"] == 4
    missing = client.post(
        "/v1/settlements",
        json={
            "epoch": 3,
            "rate_ovpp_per_kwh": 1.0,
            "deliveries": [{"device_id": device, "delivered_kwh": 10.0}],
        },
        headers=bearer(keys["integrator"]),
    )
    assert missing.status_code == 422 and "epoch's start and end" in missing.text
    settled = settle(
        client,
        keys,
        {
            "epoch": 3,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=2)).isoformat(),
            "rate_ovpp_per_kwh": 1.0,
            "deliveries": [{"device_id": device, "delivered_kwh": 10.0}],
        },
    )
    assert settled["status"] == "confirmed"
    [reward] = client.get(f"/v1/devices/{device}/rewards", headers=bearer(keys["analyst"])).json()
    assert reward["availability"] == 3 / 8 and reward["data_quality"] == 4 / 8
    # 10 kWh x (0.7 + 0.2 x 3/8 + 0.1 x 1/2) = 8.25 kWh at 1 OVPP/kWh.
    assert reward["amount_units"] == str(8_250_000_000_000_000_000)


def test_reputations_follow_delivery_records(
    client: TestClient, keys: dict[str, str], engine: Engine
) -> None:
    ids = [make_device(client, keys, f"SN-{i}") for i in range(3)]
    admin = bearer(keys["integrator"])
    assert settle(client, keys, body(ids))["status"] == "confirmed"
    with session_factory(engine).begin() as session:
        device = session.scalars(select(Device).where(Device.device_id == ids[0])).one()
        device.energy_requested_kwh, device.energy_delivered_kwh = 10.0, 8.0
    first = client.post("/v1/settlements/1/reputations", headers=admin)
    assert first.status_code == 200 and first.json() == {"registered": 2, "updated": 2}
    chain: Chain = client.app.state.chain  # type: ignore[attr-defined]
    on_chain = chain.device(bytes.fromhex(ids[0][2:]))
    assert on_chain["reputation_bps"] == 8_000 and on_chain["reputation_epoch"] == 1
    assert on_chain["owner"].lower() == OWNER_ADDRESS.lower() and on_chain["active"]
    with session_factory(engine)() as session:
        stored = session.scalars(select(Device).where(Device.device_id == ids[0])).one()
        assert on_chain["attributes_hash"] == attributes_hash(stored)
    assert chain.device(bytes.fromhex(ids[1][2:]))["reputation_bps"] == 10_000
    assert chain.device(bytes.fromhex(ids[2][2:]))["owner"] == "0x" + "0" * 40  # not rewarded
    again = client.post("/v1/settlements/1/reputations", headers=admin)
    assert again.json() == {"registered": 0, "updated": 2}
