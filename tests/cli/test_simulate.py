"""``vpp simulate-fleet``: enrolled devices answer the service's VTN as real VENs."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from api.cli import app
from api.main import create_app
from api.settings import Settings
from registry.db import make_engine, session_factory
from registry.keys import Role, create_key
from tests.api.conftest import bearer
from tests.api.test_vtn_service import enrol
from tests.cli.conftest import runner
from tests.conftest import free_port


def test_simulated_fleet_answers_events_and_reports_telemetry(
    database: str, tmp_path: Path
) -> None:
    engine = make_engine(database)
    with session_factory(engine).begin() as session:
        keys = {
            role.value: create_key(
                session, f"k-{role.value}", role, "owner-a" if role == Role.owner else None
            )
            for role in Role
        }
    vtn_url = f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    settings = Settings(
        database_url=database,
        var_dir=tmp_path / "var",
        vtn_url=vtn_url,
        vtn_poll_interval_s=1,
        vtn_report_interval_s=1,
    )
    with TestClient(create_app(settings, engine=engine)) as client:
        devices = [enrol(client, keys, f"SN-SIM-{i}")[0] for i in range(3)]
        sent: list[int] = []

        def dispatch() -> None:
            start = datetime.now(UTC) + timedelta(seconds=2)
            for device in devices:
                answer = client.post(
                    "/v1/events",
                    json={
                        "device_id": device,
                        "start": start.isoformat(),
                        "minutes": 1,
                        "values": [-1.5],
                    },
                    headers=bearer(keys["operator"]),
                )
                sent.append(answer.status_code)

        timer = threading.Timer(3.0, dispatch)
        timer.start()
        try:
            result = runner.invoke(
                app,
                [
                    "simulate-fleet",
                    "--devices",
                    "3",
                    "--vtn-url",
                    vtn_url,
                    "--duration-s",
                    "9",
                    "--report-interval-s",
                    "1",
                    "--json",
                ],
            )
        finally:
            timer.join()
        assert result.exit_code == 0, result.output
        assert sent and all(code == 201 for code in sent), sent
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary == {"vens": 3, "online": 3, "events": 3, "opt_ins": 3, "opt_outs": 0}
        events = client.get("/v1/events", headers=bearer(keys["operator"])).json()
        assert {e["status"] for e in events} <= {"opted_in", "active", "completed"}
        readings = client.get(
            f"/v1/devices/{devices[0]}/telemetry", headers=bearer(keys["operator"])
        )
        assert readings.status_code == 200, readings.text
        rows = readings.json()["readings"]
        assert rows and all(r["online"] for r in rows)
        # The battery's state of charge comes with its power once its status report is in.
        assert any(r["soc_frac"] is not None and 0 <= r["soc_frac"] <= 1 for r in rows), rows


def test_asking_for_more_devices_than_are_enrolled_is_refused(database: str) -> None:
    result = runner.invoke(app, ["simulate-fleet", "--devices", "5", "--duration-s", "1"])
    assert result.exit_code == 2
    assert "--devices" in result.output and "only 0 devices" in result.output


def test_signed_fleet_connects_with_development_certificates(database: str, tmp_path: Path) -> None:
    engine = make_engine(database)
    with session_factory(engine).begin() as session:
        keys = {
            role.value: create_key(
                session, f"k-{role.value}", role, "owner-a" if role == Role.owner else None
            )
            for role in Role
        }
    certs = tmp_path / "certs"
    made = runner.invoke(app, ["certs", "dev", "--out", str(certs)])
    assert made.exit_code == 0, made.output
    files = dict(line.split("=", 1) for line in made.stdout.strip().splitlines())
    vtn_url = f"https://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    settings = Settings(
        database_url=database,
        var_dir=tmp_path / "var",
        vtn_url=vtn_url,
        vtn_cert=Path(files["VTN_CERT"]),
        vtn_key=Path(files["VTN_KEY"]),
        vtn_ca_file=Path(files["VTN_CA_FILE"]),
        vtn_poll_interval_s=1,
    )
    with TestClient(create_app(settings, engine=engine)) as client:
        devices = [enrol(client, keys, f"SN-SIGNED-{i}")[0] for i in range(2)]
        fleet = ["simulate-fleet", "--devices", "2", "--vtn-url", vtn_url, "--certs", str(certs)]
        lacking = runner.invoke(app, [*fleet, "--duration-s", "1"])
        assert lacking.exit_code == 2 and "--certs: no certificate for 2 VENs" in lacking.output
        made = runner.invoke(app, ["certs", "dev", "--out", str(certs), "--vens", "2"])
        assert made.exit_code == 0, made.output

        def dispatch() -> None:
            start = datetime.now(UTC) + timedelta(seconds=2)
            for device in devices:
                client.post(
                    "/v1/events",
                    json={"device_id": device, "start": start.isoformat(), "values": [-1.0]},
                    headers=bearer(keys["operator"]),
                ).raise_for_status()

        timer = threading.Timer(3.0, dispatch)
        timer.start()
        try:
            result = runner.invoke(app, [*fleet, "--duration-s", "7", "--json"])
        finally:
            timer.join()
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary == {"vens": 2, "online": 2, "events": 2, "opt_ins": 2, "opt_outs": 0}
        assert client.app.state.vtn.refused == []  # type: ignore[attr-defined]


def test_certs_dev_refuses_more_vens_than_are_enrolled(database: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["certs", "dev", "--out", str(tmp_path / "c"), "--vens", "3"])
    assert result.exit_code == 2
    assert "--vens: 3 asked, but only 0 VENs" in result.output
