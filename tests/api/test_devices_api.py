from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.identity import device_id
from tests.api.conftest import bearer
from tests.factories import device_fields


def field_of(body: dict[str, Any]) -> list[str]:
    return [item["loc"][-1] for item in body["detail"]]


def test_health_needs_no_key(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_create_get_list_update_retire(client: TestClient, keys: dict[str, str]) -> None:
    integrator = bearer(keys["integrator"])
    created = client.post("/v1/devices", json=device_fields(), headers=integrator)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["device_id"] == device_id("Tesla", "Powerwall 2", "SN-0001")
    assert body["delivery"] == {
        "events_dispatched": 0,
        "energy_requested_kwh": 0.0,
        "energy_delivered_kwh": 0.0,
        "delivery_ratio": None,
    }
    url = f"/v1/devices/{body['device_id']}"
    assert client.get(url, headers=bearer(keys["analyst"])).json()["feeder"] == "F-12"
    listed = client.get("/v1/devices", params={"feeder": "F-12"}, headers=bearer(keys["operator"]))
    assert listed.json()["total"] == 1
    patched = client.patch(url, json={"feeder": "F-7", "status": "suspended"}, headers=integrator)
    assert patched.status_code == 200 and patched.json()["feeder"] == "F-7"
    retired = client.post(f"{url}/retire", headers=integrator)
    assert retired.json()["status"] == "retired"


@pytest.mark.parametrize(
    ("change", "field", "limit_text"),
    [
        ({"p_max_kw": 250_000}, "p_max_kw", "100000"),
        ({"p_min_kw": 6.0}, "p_min_kw", "p_max_kw"),
        ({"e_max_kwh": None}, "e_max_kwh", "> 0"),
        ({"e_max_kwh": -1}, "e_max_kwh", "greater than 0"),
        ({"lat": 91}, "lat", "90"),
        ({"lon": 200, "lat": 1}, "lon", "180"),
        (
            {"owner_address": "0x52908400098527886E0F7030069857D2E4169Ee7"},
            "owner_address",
            "checksum",
        ),
        ({"device_type": "toaster"}, "device_type", "battery"),
        ({"feeder": None}, "feeder", "required"),
        ({"feeder": ""}, "feeder", "at least 1"),
        ({"protocols": ["zigbee"]}, "protocols", "openadr_2.0b"),
        ({"serial": "A|B"}, "serial", "pattern"),
        ({"response_time_s": 0}, "response_time_s", "greater than 0"),
        ({"colour": "red"}, "colour", "not permitted"),
    ],
)
def test_bad_device_gets_422_naming_field_and_limit(
    client: TestClient, keys: dict[str, str], change: dict[str, Any], field: str, limit_text: str
) -> None:
    fields = {**device_fields(), **change}
    fields = {k: v for k, v in fields.items() if v is not None}
    response = client.post("/v1/devices", json=fields, headers=bearer(keys["integrator"]))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert field in [str(part) for item in detail for part in item["loc"]]
    assert any(limit_text in item["msg"] for item in detail), detail
    listed = client.get("/v1/devices", headers=bearer(keys["analyst"])).json()
    assert listed["total"] == 0  # nothing half-written


def test_duplicate_device_is_409(client: TestClient, keys: dict[str, str]) -> None:
    headers = bearer(keys["integrator"])
    assert client.post("/v1/devices", json=device_fields(), headers=headers).status_code == 201
    again = client.post("/v1/devices", json=device_fields(make="TESLA "), headers=headers)
    assert again.status_code == 409
    assert again.json()["detail"][0]["loc"] == ["body", "device_id"]


def test_identity_cannot_be_patched(client: TestClient, keys: dict[str, str]) -> None:
    headers = bearer(keys["integrator"])
    created = client.post("/v1/devices", json=device_fields(), headers=headers).json()
    response = client.patch(
        f"/v1/devices/{created['device_id']}", json={"serial": "X"}, headers=headers
    )
    assert response.status_code == 422
    assert field_of(response.json()) == ["serial"]
    bad_merge = client.patch(
        f"/v1/devices/{created['device_id']}", json={"p_max_kw": -6}, headers=headers
    )
    assert bad_merge.status_code == 422 and field_of(bad_merge.json()) == ["p_min_kw"]
    retire = client.patch(
        f"/v1/devices/{created['device_id']}", json={"status": "retired"}, headers=headers
    )
    assert retire.status_code == 422 and field_of(retire.json()) == ["status"]


def test_auth_401_and_403_have_json_bodies(client: TestClient, keys: dict[str, str]) -> None:
    missing = client.get("/v1/devices")
    assert missing.status_code == 401 and "Bearer" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = client.get("/v1/devices", headers=bearer("ovpp_analyst_not-a-key"))
    assert wrong.status_code == 401 and wrong.json()["detail"] == "unknown or revoked API key"
    forbidden = client.post("/v1/devices", json=device_fields(), headers=bearer(keys["analyst"]))
    assert forbidden.status_code == 403
    assert "integrator" in forbidden.json()["detail"] and "analyst" in forbidden.json()["detail"]


def test_owner_sees_only_own_devices(client: TestClient, keys: dict[str, str]) -> None:
    headers = bearer(keys["integrator"])
    mine = client.post("/v1/devices", json=device_fields("M"), headers=headers).json()
    theirs = client.post(
        "/v1/devices", json=device_fields("T", owner_name="owner-b"), headers=headers
    ).json()
    owner = bearer(keys["owner"])
    listed = client.get("/v1/devices", headers=owner).json()
    assert [d["device_id"] for d in listed["items"]] == [mine["device_id"]]
    assert client.get(f"/v1/devices/{theirs['device_id']}", headers=owner).status_code == 404
    assert client.get(f"/v1/devices/{mine['device_id']}", headers=owner).status_code == 200


def test_bulk_reports_rows(client: TestClient, keys: dict[str, str]) -> None:
    headers = bearer(keys["integrator"])
    rows = [device_fields("A"), device_fields("B", p_max_kw="x"), device_fields("C")]
    response = client.post("/v1/devices/bulk", json={"devices": rows}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert len(body["created"]) == 2
    assert body["errors"][0]["row"] == 1 and body["errors"][0]["problems"][0]["field"] == "p_max_kw"
    atomic = client.post(
        "/v1/devices/bulk",
        json={"devices": [device_fields("D"), rows[1]], "atomic": True},
        headers=headers,
    )
    assert atomic.status_code == 422
    assert atomic.json()["detail"][0]["loc"] == ["body", "rows", "1", "p_max_kw"]
    assert client.get("/v1/devices", headers=headers).json()["total"] == 2


def test_list_limit_is_bounded(client: TestClient, keys: dict[str, str]) -> None:
    response = client.get("/v1/devices", params={"limit": 5000}, headers=bearer(keys["analyst"]))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]
    assert "1000" in response.json()["detail"][0]["msg"]
