"""The service runs the VTN: a VEN registers only with the VEN id its enrolment issued."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from openleadr import OpenADRClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import Settings
from tests.api.conftest import bearer
from tests.conftest import free_port
from tests.factories import device_fields, program_fields


def test_enrolled_ven_registers_with_the_service_vtn(
    engine: Engine, keys: dict[str, str], tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    settings = Settings(
        database_url="sqlite://",
        var_dir=tmp_path,
        vtn_url=url,
        vtn_poll_interval_s=1,
        vtn_report_interval_s=1,
    )
    with TestClient(create_app(settings, engine=engine)) as client:
        device = client.post(
            "/v1/devices", json=device_fields("SN-VEN"), headers=bearer(keys["integrator"])
        ).json()["device_id"]
        client.post("/v1/programs", json=program_fields(), headers=bearer(keys["operator"]))
        enrolled = client.post(
            "/v1/enrollments",
            json={"device_id": device, "program_id": "RES-DR"},
            headers=bearer(keys["integrator"]),
        ).json()
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
        telemetry = client.get(
            f"/v1/devices/{device}/telemetry", headers=bearer(keys["analyst"])
        ).json()
        readings = telemetry["readings"]
        assert len(readings) >= 2 and {r["p_kw"] for r in readings} == {-2.5}
        assert asyncio.run(register("ven-000000000000000000000000")) is None
        assert client.app.state.vtn.refused == ["ven-000000000000000000000000"]  # type: ignore[attr-defined]
