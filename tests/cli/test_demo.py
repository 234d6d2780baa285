"""``vpp demo`` against the steps of ``make run`` as real processes: the service with
its VTN, a simulated fleet of VENs, and the scripted day from forecast to claim."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.cli.test_restart import Server
from tests.cli.test_serve import VPP, free_port


def test_the_scripted_day_runs_against_the_running_service(tmp_path: Path) -> None:
    vtn = f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "VAR_DIR": str(tmp_path / "var"),
        "VTN_URL": vtn,
        "VTN_POLL_INTERVAL_S": "1",
        "VTN_REPORT_INTERVAL_S": "2",
        "DISPATCH_ANSWER_WITHIN_S": "5",
        "MEASURE_AFTER_S": "6",
        "LIVE_DELIVERY_EVERY_S": "3",
        "JOB_POLL_S": "0.2",
    }
    for step in (
        ["db", "upgrade"],
        ["demo-fleet", "--devices", "120", "--feeders", "2", "--days", "3"],
        ["keys", "dev"],
    ):
        subprocess.run([VPP, *step], env=env, check=True, capture_output=True, timeout=300)
    log = tmp_path / "serve.log"
    server = Server(env, log)
    simulate = ["--devices", "60", "--opt-out", "0.1", "--wait-s", "30"]
    with (tmp_path / "fleet.log").open("wb") as out:
        fleet = subprocess.Popen(
            [VPP, "simulate-fleet", *simulate, "--report-interval-s", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        demo = subprocess.run(
            [VPP, "demo", "--url", server.base, "--steps", "3", "--step-s", "10"],
            env={**env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        fleet.terminate()
        fleet.wait(timeout=30)
        server.process.terminate()
        server.process.wait(timeout=30)
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output + log.read_text()[-3000:]
    for title in ("1. the fleet", "2. forecast", "3. day-ahead schedule", "5. settlement"):
        assert title in output, output
    assert "round 1:" in output and "delivered" in output
    assert "settled on chain: epoch 1" in output
    claimed = json.loads(
        output.split("claimed for the owners: ")[1].splitlines()[0].replace("'", '"')
    )
    assert claimed["claimed"] >= 1, output
    assert "the day is done" in output
