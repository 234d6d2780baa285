from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pandas as pd
from fastapi.testclient import TestClient

from tests.api.conftest import bearer
from tests.factories import device_fields


def make_device(
    client: TestClient, keys: dict[str, str], serial: str = "SN-1", **change: object
) -> str:
    response = client.post(
        "/v1/devices", json=device_fields(serial, **change), headers=bearer(keys["integrator"])
    )
    assert response.status_code == 201, response.text
    return str(response.json()["device_id"])


def test_batch_in_is_idempotent_and_partial(client: TestClient, keys: dict[str, str]) -> None:
    device_id = make_device(client, keys)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    readings = [
        {
            "device_id": device_id,
            "timestamp": (start + timedelta(minutes=15 * i)).isoformat(),
            "p_kw": i,
        }
        for i in range(4)
    ]
    bad = {"device_id": device_id, "timestamp": start.isoformat(), "p_kw": 1, "soc_frac": 2}
    headers = bearer(keys["aggregator"])
    first = client.post("/v1/telemetry", json={"readings": [*readings, bad]}, headers=headers)
    assert first.status_code == 200
    assert first.json()["stored"] == 4
    assert first.json()["rejected"] == [
        {
            "row": 4,
            "problems": [
                {
                    "field": "soc_frac",
                    "message": "must be between 0 and 1",
                    "value": 2,
                    "limit": [0, 1],
                }
            ],
        }
    ]
    second = client.post("/v1/telemetry", json={"readings": readings}, headers=headers)
    assert (second.json()["stored"], second.json()["duplicates"]) == (0, 4)
    all_bad = client.post("/v1/telemetry", json={"readings": [bad]}, headers=headers)
    assert all_bad.status_code == 422

    out = client.get(f"/v1/devices/{device_id}/telemetry", headers=bearer(keys["analyst"]))
    assert [r["p_kw"] for r in out.json()["readings"]] == [0.0, 1.0, 2.0, 3.0]
    csv = client.get(
        f"/v1/devices/{device_id}/telemetry",
        params={"format": "csv", "start": (start + timedelta(minutes=15)).isoformat()},
        headers=bearer(keys["analyst"]),
    )
    assert csv.headers["content-type"].startswith("text/csv")
    frame = pd.read_csv(io.StringIO(csv.text))
    assert list(frame.columns) == ["timestamp_utc", "p_kw", "soc_frac", "online"]
    assert frame["p_kw"].tolist() == [1.0, 2.0, 3.0]


def test_telemetry_limits_and_roles(client: TestClient, keys: dict[str, str]) -> None:
    device_id = make_device(client, keys)
    row = {"device_id": device_id, "timestamp": "2026-01-01T00:00:00Z", "p_kw": 1}
    too_many = client.post(
        "/v1/telemetry", json={"readings": [row] * 101}, headers=bearer(keys["integrator"])
    )
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["body", "readings"]
    assert too_many.json()["detail"][0]["ctx"] == {"limit": 100}
    empty = client.post("/v1/telemetry", json={"readings": []}, headers=bearer(keys["integrator"]))
    assert empty.status_code == 422
    as_analyst = client.post(
        "/v1/telemetry", json={"readings": [row]}, headers=bearer(keys["analyst"])
    )
    assert as_analyst.status_code == 403
    naive = client.get(
        f"/v1/devices/{device_id}/telemetry",
        params={"start": "2026-01-01T00:00:00"},
        headers=bearer(keys["analyst"]),
    )
    assert naive.status_code == 422 and naive.json()["detail"][0]["loc"] == ["query", "start"]


def test_grid_capacity(client: TestClient, keys: dict[str, str]) -> None:
    make_device(client, keys, "A")
    make_device(client, keys, "B", feeder="F-13")
    response = client.get(
        "/v1/grid/capacity", params=[("group_by", "feeder")], headers=bearer(keys["operator"])
    )
    assert response.status_code == 200
    rows = {r["feeder"]: r for r in response.json()}
    assert rows["F-12"]["flex_kw"] == 10.0 and rows["F-13"]["devices"] == 1
    assert rows["F-12"]["device_type"] is None
    bad_group = client.get(
        "/v1/grid/capacity", params=[("group_by", "colour")], headers=bearer(keys["operator"])
    )
    assert bad_group.status_code == 422 and bad_group.json()["detail"][0]["loc"] == [
        "query",
        "group_by",
        0,
    ]
    assert client.get("/v1/grid/capacity", headers=bearer(keys["owner"])).status_code == 403
