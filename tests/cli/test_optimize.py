"""``vpp optimize`` on a registry device CSV and a price CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from api.cli import app
from registry.importer import COLUMNS
from tests.factories import device_fields

runner = CliRunner()


@pytest.fixture
def fleet_csv(tmp_path: Path) -> Path:
    rows = [
        device_fields("B1", soc_initial_frac="0.9"),
        device_fields("B2", site_id="site-2"),
        device_fields(
            "EV1",
            device_type="ev_charger",
            make="Wallbox",
            model="Pulsar",
            p_max_kw=7.4,
            p_min_kw=0,
            e_max_kwh=None,
            arrival="2026-11-21T17:00:00Z",
            departure="2026-11-22T07:00:00Z",
            energy_required_kwh="20",
        ),
        device_fields(
            "PV1",
            device_type="pv_inverter",
            make="SolarEdge",
            model="SE5000",
            p_max_kw=0,
            p_min_kw=-5,
            e_max_kwh=None,
        ),
        device_fields(
            "M1",
            device_type="smart_meter",
            make="Itron",
            model="Gen5",
            p_max_kw=20,
            p_min_kw=-20,
            e_max_kwh=None,
        ),
    ]
    path = tmp_path / "fleet.csv"
    columns = [*COLUMNS, "soc_initial_frac", "arrival", "departure", "energy_required_kwh"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()})
    return path


@pytest.fixture
def prices_csv(tmp_path: Path) -> Path:
    hours = pd.date_range("2026-11-21T00:00Z", periods=24, freq="1h")
    mwh = [80.0] * 6 + [120.0] * 4 + [40.0] * 6 + [200.0] * 5 + [90.0] * 3
    path = tmp_path / "prices.csv"
    pd.DataFrame(
        {"timestamp": hours.strftime("%Y-%m-%dT%H:%M:%SZ"), "price_eur_per_mwh": mwh}
    ).to_csv(path, index=False)
    return path


def last_json(output: str) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return summary


def test_day_ahead_plans_every_controllable_device(
    fleet_csv: Path, prices_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "plan.csv"
    result = runner.invoke(
        app,
        [
            "optimize",
            "day-ahead",
            "--fleet",
            str(fleet_csv),
            "--prices",
            str(prices_csv),
            "--out",
            str(out),
            "--json",
            "--demand-charge",
            "0.1",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = last_json(result.stdout)
    assert summary["status"] == "optimal" and summary["devices"] == 4 and summary["skipped"] == 1
    frame = pd.read_csv(out)
    assert len(frame) == 4 * 96
    assert list(frame.columns) == ["timestamp_utc", "device_id", "p_kw", "baseline_kw"]
    by_hour = frame.assign(hour=frame["timestamp_utc"].str[11:13].astype(int))
    batteries = by_hour[by_hour["p_kw"].abs() > 1e-6]
    # Batteries (and the EV) buy in the cheap 10:00-16:00 hours, not the dear 16:00-21:00.
    evening = batteries[(batteries["hour"] >= 16) & (batteries["hour"] < 21)]["p_kw"].sum()
    assert evening < 0


def test_capacity_request_reports_shortfall_and_reasons(fleet_csv: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "optimize",
            "capacity",
            "--fleet",
            str(fleet_csv),
            "--feeder",
            "F-12",
            "--start",
            "2026-11-21T17:00:00Z",
            "--end",
            "2026-11-21T18:00:00Z",
            "--kw",
            "50",
            "--out",
            str(tmp_path / "plan.csv"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    [request] = last_json(result.stdout)["requests"]
    assert len(request["intervals"]) == 4
    first = request["intervals"][0]
    # Two 5 kW batteries and an EV that can pause its charging: far short of 50 kW.
    assert first["shortfall_kw"] > 30
    assert first["reasons"] and "battery" in first["reasons"][0]
    assert first["marginal_cost_per_kw"] == pytest.approx(10.0 * 0.25)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "--start",
                "2026-11-21T18:00:00Z",
                "--end",
                "2026-11-21T17:00:00Z",
                "--kw",
                "5",
                "--feeder",
                "F-12",
            ],
            "request cli: end: must be after start",
        ),
        (
            [
                "--start",
                "2026-11-21T17:00:00Z",
                "--end",
                "2026-11-21T18:00:00Z",
                "--kw",
                "5",
                "--feeder",
                "F-99",
            ],
            "feeder: 'F-99' has no sites",
        ),
        (
            [
                "--start",
                "2026-11-21T17:00:00Z",
                "--end",
                "2026-11-21T18:00:00Z",
                "--kw",
                "-5",
                "--feeder",
                "F-12",
            ],
            "kw: must be >= 0",
        ),
        (
            [
                "--start",
                "tomorrow",
                "--end",
                "2026-11-21T18:00:00Z",
                "--kw",
                "5",
                "--feeder",
                "F-12",
            ],
            "--start: not an ISO 8601 timestamp",
        ),
    ],
)
def test_bad_capacity_input_is_one_clear_line(
    fleet_csv: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["optimize", "capacity", "--fleet", str(fleet_csv), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_bad_fleet_row_names_line_and_field(tmp_path: Path, prices_csv: Path) -> None:
    path = tmp_path / "fleet.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerow(
            {
                k: v
                for k, v in device_fields("A", lat=None, lon=None, owner_address=None).items()
                if k != "protocols"
            }
        )
        writer.writerow(
            {
                **{
                    k: v
                    for k, v in device_fields("B", lat=None, lon=None, owner_address=None).items()
                    if k != "protocols"
                },
                "p_max_kw": "lots",
            }
        )
    result = runner.invoke(
        app, ["optimize", "day-ahead", "--fleet", str(path), "--prices", str(prices_csv)]
    )
    assert result.exit_code == 2
    assert "line 3: p_max_kw" in " ".join(result.output.split())


def test_decomposed_on_a_local_dask_cluster(
    fleet_csv: Path, prices_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASK_WORKERS", "1")
    args = ["optimize", "day-ahead", "--fleet", str(fleet_csv), "--prices", str(prices_csv)]
    whole = runner.invoke(app, [*args, "--out", str(tmp_path / "a.csv"), "--json"])
    parts = runner.invoke(
        app, [*args, "--out", str(tmp_path / "b.csv"), "--json", "--method", "decomposed"]
    )
    assert whole.exit_code == 0 and parts.exit_code == 0, parts.output
    # One chunk holds this whole fleet: the same optimum either way.
    assert last_json(parts.stdout)["objective"] == pytest.approx(
        last_json(whole.stdout)["objective"], rel=1e-6
    )
    wrong = runner.invoke(app, [*args, "--method", "fastest"])
    assert wrong.exit_code == 2 and "method" in wrong.output
