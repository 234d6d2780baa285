"""The ``vpp`` command line, run in-process against a SQLite file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api.cli import app
from registry.db import make_engine, session_factory
from registry.importer import COLUMNS
from registry.keys import authenticate
from registry.tables import Device
from tests.cli.conftest import runner
from tests.factories import device_fields


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()})


def devices_in(url: str) -> int:
    with session_factory(make_engine(url))() as session:
        return session.scalar(select(func.count()).select_from(Device)) or 0


def test_import_stores_good_rows_and_reports_bad_ones_by_line(
    database: str, tmp_path: Path
) -> None:
    path = tmp_path / "devices.csv"
    write_csv(
        path,
        [
            device_fields("A", protocols=["openadr_2.0b", "ieee_2030_5"]),
            device_fields("B", p_max_kw=-1, p_min_kw=0),
            device_fields("C", owner_address=None, lat=None, lon=None),
        ],
    )
    report = tmp_path / "errors.json"
    result = runner.invoke(
        app, ["registry", "import", str(path), "--json", "--errors-out", str(report)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["rows"], summary["created"]) == (3, 2)
    assert summary["errors"][0]["line"] == 3
    assert summary["errors"][0]["problems"][0]["field"] == "p_min_kw"
    assert json.loads(report.read_text()) == summary["errors"]
    assert devices_in(database) == 2
    again = runner.invoke(app, ["registry", "import", str(path)])
    assert "0 of 3 devices imported" in again.output
    assert again.exit_code == 1


def test_bad_csv_header_is_a_message_not_a_traceback(database: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("make,model,colour\nTesla,PW2,red\n")
    result = runner.invoke(app, ["registry", "import", str(path)])
    assert result.exit_code == 2
    assert (
        "missing required columns" in result.output and "unknown columns: colour" in result.output
    )
    assert "Traceback" not in result.output
    missing = runner.invoke(app, ["registry", "import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_keys(database: str, tmp_path: Path) -> None:
    created = runner.invoke(app, ["keys", "create", "--name", "ops", "--role", "operator"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    with session_factory(make_engine(database))() as session:
        principal = authenticate(session, secret)
    assert principal is not None and principal.role.value == "operator"
    bad_role = runner.invoke(app, ["keys", "create", "--name", "x", "--role", "admin"])
    assert bad_role.exit_code == 2 and "--role must be one of" in bad_role.output
    duplicate = runner.invoke(app, ["keys", "create", "--name", "ops", "--role", "analyst"])
    assert duplicate.exit_code == 2 and "exists" in duplicate.output
    dev = runner.invoke(app, ["keys", "dev"])
    assert dev.exit_code == 0
    keys = json.loads((tmp_path / "var" / "dev-keys.json").read_text())
    assert set(keys) == {"operator", "aggregator", "integrator", "analyst", "owner"}


def test_unreachable_database_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "database unreachable" in result.output and "Traceback" not in result.output
