"""POST /v1/events/{id}/measure: delivered response from telemetry, into the delivery record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from registry import events as store
from registry.db import session_factory
from tests.api.conftest import bearer
from tests.api.test_telemetry_api import make_device


def readings(device: str, start: datetime, minutes: int, kw: float) -> list[dict[str, object]]:
    return [
        {"device_id": device, "timestamp": (start + timedelta(minutes=m)).isoformat(), "p_kw": kw}
        for m in range(minutes)
    ]


def test_a_finished_event_is_measured_once_into_the_delivery_record(
    client: TestClient, keys: dict[str, str], engine: Engine
) -> None:
    device = make_device(client, keys, "SN-MEASURE")
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    rows = readings(device, start - timedelta(hours=1), 60, 0.0) + readings(device, start, 30, -4.0)
    sent = client.post("/v1/telemetry", json={"readings": rows}, headers=bearer(keys["integrator"]))
    assert sent.status_code in (200, 201), sent.text
    intervals = [
        {"start": (start + timedelta(minutes=15 * i)).isoformat(), "minutes": 15, "value": -5.0}
        for i in range(2)
    ]
    with session_factory(engine).begin() as session:
        for event_id, answer in (("ev-in", "optIn"), ("ev-out", "optOut")):
            store.record_sent(
                session,
                event_id,
                ven_id="ven-x",
                device_id=device,
                signal_name="LOAD_DISPATCH",
                intervals=intervals,
            )
            store.record_response(session, event_id, answer)
    operator = bearer(keys["operator"])
    first = client.post("/v1/events/ev-in/measure", headers=operator)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["method"] == "meter_before"
    assert body["requested_kwh"] == 2 * 5.0 * 0.25 and body["delivered_kwh"] == 2 * 4.0 * 0.25
    assert body["performance"] == 0.8
    assert [i["delivered_kw"] for i in body["intervals"]] == [4.0, 4.0]
    again = client.post("/v1/events/ev-in/measure", headers=operator)
    assert again.json() == body
    record = client.get(f"/v1/devices/{device}", headers=operator).json()["delivery"]
    assert record["events_dispatched"] == 1 and record["delivery_ratio"] == 0.8
    log = client.get("/v1/events/ev-in", headers=operator).json()["log"]
    assert [entry["action"] for entry in log][-1] == "measured"
    refused = client.post("/v1/events/ev-out/measure", headers=operator)
    assert refused.status_code == 409 and "opted_out" in refused.json()["detail"]
    viewer = client.post("/v1/events/ev-in/measure", headers=bearer(keys["analyst"]))
    assert viewer.status_code == 403
