"""The service runs the VTN: a VEN registers only with the VEN id its enrolment issued."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openleadr import OpenADRClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import Settings
from tests.api.conftest import bearer
from tests.conftest import free_port
from tests.factories import device_fields, program_fields


def service(engine: Engine, tmp_path: Path) -> tuple[TestClient, str]:
    """The app with its VTN on a free port, VENs polling and reporting every second."""
    url = f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    settings = Settings(
        database_url="sqlite://",
        var_dir=tmp_path,
        vtn_url=url,
        vtn_poll_interval_s=1,
        vtn_report_interval_s=1,
    )
    return TestClient(create_app(settings, engine=engine)), url


def enrol(client: TestClient, keys: dict[str, str], serial: str) -> tuple[str, dict[str, Any]]:
    """A new device enrolled in the residential program: its id and the enrolment."""
    device = client.post(
        "/v1/devices", json=device_fields(serial), headers=bearer(keys["integrator"])
    ).json()["device_id"]
    client.post("/v1/programs", json=program_fields(), headers=bearer(keys["operator"]))
    enrolled = client.post(
        "/v1/enrollments",
        json={"device_id": device, "program_id": "RES-DR"},
        headers=bearer(keys["integrator"]),
    ).json()
    return str(device), dict(enrolled)


def test_enrolled_ven_registers_with_the_service_vtn(
    engine: Engine, keys: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app, url = service(engine, tmp_path)
    with app as client:
        device, enrolled = enrol(client, keys, "SN-VEN")
        assert enrolled["vtn_url"] == url

        async def register(name: str) -> str | None:
            ven = OpenADRClient(ven_name=name, vtn_url=url, disable_signature=True)
            await ven.run()
            await ven.stop()
            return ven.registration_id

        assert asyncio.run(register(enrolled["ven_id"])) == f"reg-{enrolled['ven_id']}"

        async def report(name: str, kw: float) -> None:
            ven = OpenADRClient(ven_name=name, vtn_url=url, disable_signature=True)
            ven.add_report(
                callback=lambda: kw,
                resource_id="battery",
                measurement="RealPower",
                unit="W",
                scale="k",
                sampling_rate=timedelta(seconds=1),
                report_duration=timedelta(seconds=60),
            )
            await ven.run()
            await asyncio.sleep(3.5)
            await ven.stop()

        asyncio.run(report(enrolled["ven_id"], -2.5))
        with caplog.at_level(logging.WARNING, logger="api.main"):
            asyncio.run(report(enrolled["ven_id"], 5e6))  # 5 GW: not a device's reading
        telemetry = client.get(
            f"/v1/devices/{device}/telemetry", headers=bearer(keys["analyst"])
        ).json()
        readings = telemetry["readings"]
        assert len(readings) >= 2 and {r["p_kw"] for r in readings} == {-2.5}
        refused = [r.getMessage() for r in caplog.records if "report refused" in r.getMessage()]
        assert refused and "p_kw" in refused[0] and "100000" in refused[0]
        assert asyncio.run(register("ven-000000000000000000000000")) is None
        assert client.app.state.vtn.refused == ["ven-000000000000000000000000"]  # type: ignore[attr-defined]


def test_events_to_a_ven_and_their_answers(
    engine: Engine, keys: dict[str, str], tmp_path: Path
) -> None:
    app, url = service(engine, tmp_path)
    with app as client:
        device, enrolled = enrol(client, keys, "SN-EV1")
        ven_id = enrolled["ven_id"]
        operator = bearer(keys["operator"])
        start = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
        body = {"device_id": device, "start": start, "values": [3.0, -2.0]}
        sent = client.post("/v1/events", json=body, headers=operator)
        assert sent.status_code == 201, sent.text
        event_id = sent.json()["event_id"]
        assert sent.json()["status"] == "pending" and sent.json()["ven_id"] == ven_id
        received: list[Any] = []

        async def listen() -> None:
            ven = OpenADRClient(ven_name=ven_id, vtn_url=url, disable_signature=True)

            async def on_event(event: dict[str, Any]) -> str:
                received.append(event)
                return "optOut"

            ven.add_handler("on_event", on_event)
            await ven.run()
            for _ in range(50):
                if (
                    client.get(f"/v1/events/{event_id}", headers=operator).json()["status"]
                    != "pending"
                ):
                    break
                await asyncio.sleep(0.2)
            await ven.stop()

        asyncio.run(listen())
        detail = client.get(f"/v1/events/{event_id}", headers=bearer(keys["analyst"])).json()
        assert detail["status"] == "opted_out"
        assert [e["action"] for e in detail["log"]] == ["sent", "opt"]
        assert detail["log"][1]["opt_type"] == "optOut"
        assert [i["value"] for i in detail["intervals"]] == [3.0, -2.0]
        listed = client.get("/v1/events", params={"device_id": device}, headers=operator).json()
        assert [e["event_id"] for e in listed] == [event_id]
        cancelled = client.post(f"/v1/events/{event_id}/cancel", headers=operator)
        assert cancelled.json()["status"] == "cancelled"
        assert [e["action"] for e in cancelled.json()["log"]][-1] == "cancelled"
        other = client.post(
            "/v1/devices", json=device_fields("SN-LONE"), headers=bearer(keys["integrator"])
        ).json()["device_id"]
        lone = client.post("/v1/events", json={**body, "device_id": other}, headers=operator)
        assert lone.status_code == 409 and "no open enrolment" in lone.text
        bad = client.post(
            "/v1/events", json={**body, "signal": "SIMPLE", "values": [1.5]}, headers=operator
        )
        assert bad.status_code == 422 and "levels" in bad.text
        analyst = client.post("/v1/events", json=body, headers=bearer(keys["analyst"]))
        assert analyst.status_code == 403


def test_events_need_the_vtn(client: TestClient, keys: dict[str, str]) -> None:
    body = {"device_id": "0x" + "ab" * 32, "start": "2026-11-21T17:00:00Z", "values": [1.0]}
    answer = client.post("/v1/events", json=body, headers=bearer(keys["operator"]))
    assert answer.status_code == 503 and "VTN is not running" in answer.text
