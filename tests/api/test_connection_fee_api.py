"""A program's connection fee, taken in OVPP on chain when a device enrols."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.chain import open_chain
from contracts.chain import Chain, send
from tests.api.conftest import bearer
from tests.factories import device_fields, program_fields

FEE = 100 * 10**18


def test_fee_from_the_customer_or_no_link(client: TestClient, keys: dict[str, str]) -> None:
    state = client.app.state  # type: ignore[attr-defined]
    state.chain = open_chain(state.settings)
    chain: Chain = state.chain
    accounts = list(chain.w3.eth.accounts)
    customer, administrator = accounts[5], accounts[6]
    device = client.post(
        "/v1/devices",
        json=device_fields("SN-FEE", owner_address=customer),
        headers=bearer(keys["integrator"]),
    ).json()["device_id"]
    program = program_fields("FEE-DR", connection_fee_ovpp=100.0)
    assert (
        client.post("/v1/programs", json=program, headers=bearer(keys["operator"])).status_code
        == 201
    )
    integrator = bearer(keys["integrator"])
    request = {"device_id": device, "program_id": "FEE-DR"}

    refused = client.post("/v1/enrollments", json=request, headers=integrator)
    assert refused.status_code == 402
    assert "connection fee of 100 OVPP" in refused.text and "insufficient allowance" in refused.text
    links = client.get("/v1/enrollments", params={"device_id": device}, headers=integrator)
    assert links.json() == []  # no link formed

    send(
        chain.w3,
        "mint",
        chain.token.functions.mint(customer, 150 * 10**18),
        chain.w3.eth.accounts[0],
    )
    approve = chain.token.functions.approve(chain.deployment.registry, FEE)
    send(chain.w3, "approve", approve, customer)
    enrolled = client.post("/v1/enrollments", json=request, headers=integrator)
    assert enrolled.status_code == 201, enrolled.text
    assert chain.balance(customer) == 50 * 10**18
    assert chain.device(bytes.fromhex(device[2:]))["owner"] == customer  # on chain now

    other = program_fields("FEE-CI", connection_fee_ovpp=100.0)
    assert (
        client.post("/v1/programs", json=other, headers=bearer(keys["operator"])).status_code == 201
    )
    by_program = {
        "device_id": device,
        "program_id": "FEE-CI",
        "fee_payer": "program",
        "fee_payer_address": administrator,
    }
    short = client.post("/v1/enrollments", json=by_program, headers=integrator)
    assert short.status_code == 402 and administrator in short.text
    missing = client.post(
        "/v1/enrollments", json={**by_program, "fee_payer_address": None}, headers=integrator
    )
    assert missing.status_code == 422 and "fee_payer_address" in missing.text
