from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import bearer
from tests.factories import device_fields, program_fields


def setup_device_and_program(client: TestClient, keys: dict[str, str], **device: Any) -> str:
    created = client.post(
        "/v1/devices", json=device_fields(**device), headers=bearer(keys["integrator"])
    )
    assert created.status_code == 201, created.text
    program = client.post("/v1/programs", json=program_fields(), headers=bearer(keys["operator"]))
    assert program.status_code == 201, program.text
    return str(created.json()["device_id"])


def test_enrol_check_history_and_unenrol(client: TestClient, keys: dict[str, str]) -> None:
    device_id = setup_device_and_program(client, keys)
    integrator = bearer(keys["integrator"])
    check = client.post(
        "/v1/enrollments/check",
        json={"device_id": device_id, "program_id": "RES-DR"},
        headers=integrator,
    )
    assert check.json()["eligible"] is True
    enrolled = client.post(
        "/v1/enrollments", json={"device_id": device_id, "program_id": "RES-DR"}, headers=integrator
    )
    assert enrolled.status_code == 201, enrolled.text
    body = enrolled.json()
    assert body["vtn_url"].startswith("http://127.0.0.1")
    assert body["ven_id"].startswith("ven-") and body["auth"]["method"] == "ven_secret"
    assert all(c["passed"] for c in body["checks"])
    again = client.post(
        "/v1/enrollments", json={"device_id": device_id, "program_id": "RES-DR"}, headers=integrator
    )
    assert again.status_code == 409
    links = client.get(
        "/v1/enrollments", params={"program_id": "RES-DR"}, headers=integrator
    ).json()
    assert [link["device_id"] for link in links] == [device_id]
    ended = client.request(
        "DELETE",
        f"/v1/enrollments/{body['enrollment_id']}",
        json={"reason": "customer left"},
        headers=integrator,
    )
    assert ended.status_code == 200 and ended.json()["end_reason"] == "customer left"
    assert client.get("/v1/enrollments", headers=integrator).json() == []
    log = client.get(
        "/v1/enrollments/log", params={"device_id": device_id}, headers=integrator
    ).json()
    assert [e["action"] for e in log] == ["enrolled", "unenrolled"]
    past = client.get("/v1/enrollments", params={"at": log[0]["at"]}, headers=integrator).json()
    assert [link["device_id"] for link in past] == [device_id]


def test_failed_enrolment_lists_every_failed_check(
    client: TestClient, keys: dict[str, str]
) -> None:
    device_id = setup_device_and_program(client, keys, p_max_kw=1.0, p_min_kw=0.0, region="South")
    response = client.post(
        "/v1/enrollments",
        json={"device_id": device_id, "program_id": "RES-DR"},
        headers=bearer(keys["integrator"]),
    )
    assert response.status_code == 422
    failed = {c["check"]: c for c in response.json()["failed_checks"]}
    assert set(failed) == {"territory", "min_power"}
    assert (
        failed["min_power"]["device_value"] == 1.0 and failed["min_power"]["program_limit"] == 3.0
    )
    assert failed["min_power"]["field"] == "p_max_kw - p_min_kw"
    log = client.get("/v1/enrollments/log", headers=bearer(keys["analyst"])).json()
    assert log == []


def test_bad_program_input(client: TestClient, keys: dict[str, str]) -> None:
    operator = bearer(keys["operator"])
    no_territory = client.post(
        "/v1/programs", json=program_fields(regions=[], feeders=[]), headers=operator
    )
    assert no_territory.status_code == 422
    assert no_territory.json()["detail"][0]["loc"] == ["body", "feeders"]
    bad_id = client.post("/v1/programs", json=program_fields("has space"), headers=operator)
    assert bad_id.status_code == 422 and bad_id.json()["detail"][0]["loc"] == ["body", "program_id"]
    negative = client.post("/v1/programs", json=program_fields(min_power_kw=-1), headers=operator)
    assert negative.status_code == 422 and negative.json()["detail"][0]["loc"] == [
        "body",
        "min_power_kw",
    ]
    assert client.post("/v1/programs", json=program_fields(), headers=operator).status_code == 201
    assert client.post("/v1/programs", json=program_fields(), headers=operator).status_code == 409
    as_owner = client.post("/v1/programs", json=program_fields("X"), headers=bearer(keys["owner"]))
    assert as_owner.status_code == 403


def test_unknown_device_or_program_is_404(client: TestClient, keys: dict[str, str]) -> None:
    response = client.post(
        "/v1/enrollments",
        json={"device_id": "0x" + "a" * 64, "program_id": "NOPE"},
        headers=bearer(keys["integrator"]),
    )
    assert response.status_code == 404 and "not found" in response.json()["detail"]
    malformed = client.post(
        "/v1/enrollments",
        json={"device_id": "0x12", "program_id": "NOPE"},
        headers=bearer(keys["integrator"]),
    )
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["loc"] == [
        "body",
        "device_id",
    ]
