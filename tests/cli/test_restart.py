"""``vpp serve`` killed (SIGKILL) while it plans a capacity request, then started again:
the accepted request is planned after the restart, and the telemetry accepted before
the kill is all there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.cli.test_serve import VPP, free_port


class Server:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [VPP, "serve", "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{self.base}/health", timeout=2)
                return
            except requests.ConnectionError:
                assert self.process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the service did not answer in 60 s"
                time.sleep(0.2)

    def call(self, method: str, path: str, key: str, **kwargs: Any) -> Any:
        answer = requests.request(
            method,
            self.base + path,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
            **kwargs,
        )
        assert answer.status_code < 300, answer.text
        return answer.json()


@pytest.fixture
def service_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "VAR_DIR": str(tmp_path / "var"),
        "VTN_ENABLED": "false",
        "JOB_POLL_S": "0.2",
    }
    for step in (
        ["db", "upgrade"],
        ["demo-fleet", "--devices", "300", "--feeders", "2", "--days", "3"],
        ["keys", "dev"],
    ):
        subprocess.run([VPP, *step], env=env, check=True, capture_output=True, timeout=300)
    yield env


def test_a_request_planned_when_the_service_is_killed_is_planned_after_restart(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    keys = json.loads((tmp_path / "var" / "dev-keys.json").read_text())
    log = tmp_path / "serve.log"
    server = Server(service_env, log)
    try:
        devices = server.call("GET", "/v1/devices", keys["analyst"], params={"limit": 5})
        now = datetime.now(UTC).replace(microsecond=0)
        # Odd seconds: never on the demo fleet's quarter-hour readings.
        first = now.replace(second=1) - timedelta(minutes=3)
        readings = [
            {
                "device_id": d["device_id"],
                "timestamp": (first + timedelta(seconds=2 * k)).isoformat(),
                "p_kw": 1.5,
            }
            for d in devices["items"]
            for k in range(40)
        ]
        stored = server.call(
            "POST", "/v1/telemetry", keys["integrator"], json={"readings": readings}
        )
        assert stored["stored"] == len(readings)
        # A long, fine window over the whole region: planning takes seconds.
        start = now + timedelta(minutes=10)
        accepted = server.call(
            "POST",
            "/v1/capacity-requests",
            keys["operator"],
            json={
                "region": devices["items"][0]["region"],
                "start": start.isoformat(),
                "end": (start + timedelta(hours=4)).isoformat(),
                "kw": 40,
                "resolution_s": 60,
                "auto_dispatch": False,
            },
        )
        path = f"/v1/capacity-requests/{accepted['id']}"
        deadline = time.monotonic() + 60
        while True:
            body = server.call("GET", path, keys["operator"])
            if body["job"]["status"] == "running" and body["job"]["progress"] >= 0.4:
                break  # the optimizer is at work
            assert body["status"] == "planning", body  # still planning: the kill must land
            assert time.monotonic() < deadline, body
            time.sleep(0.05)
    finally:
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=20)

    again = Server(service_env, log)
    try:
        deadline = time.monotonic() + 240
        while True:
            body = again.call("GET", path, keys["operator"])
            if body["status"] != "planning":
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.5)
        assert body["status"] == "planned", body
        assert body["plan"]["devices_called"] > 0
        # The same job, started twice: cut off once, then done.
        assert body["job"]["status"] == "done" and body["job"]["attempts"] == 2
        for device in devices["items"]:
            found = again.call(
                "GET",
                f"/v1/devices/{device['device_id']}/telemetry",
                keys["analyst"],
                params={
                    "start": first.isoformat(),
                    "end": (first + timedelta(seconds=80)).isoformat(),
                },
            )
            ours = {
                datetime.fromisoformat(r["timestamp"])
                for r in readings
                if r["device_id"] == device["device_id"]
            }
            kept = [r for r in found["readings"] if datetime.fromisoformat(r["timestamp"]) in ours]
            assert len(kept) == 40 and all(r["p_kw"] == 1.5 for r in kept)
    finally:
        again.process.terminate()
        again.process.wait(timeout=20)
