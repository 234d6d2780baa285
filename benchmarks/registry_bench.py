"""Registry throughput: devices imported per second and telemetry readings stored per second.

Prints one JSON line per database: SQLite (a file in a temporary folder) and, when
``TEST_DATABASE_URL`` is set, PostgreSQL (in a private schema dropped afterwards).

- devices: ``vpp registry import``'s path (CSV read, validation, id derivation,
  duplicate check, insert, commit) over ``--devices`` rows;
- readings: ``POST /v1/telemetry``'s storage path (validation, idempotent insert,
  commit) over batches of 10,000 readings: every device reports at successive
  15-minute timestamps, as a fleet does.

Usage: ``python benchmarks/registry_bench.py [--devices 20000] [--batches 30]``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select, text

from registry.db import make_engine, session_factory, upgrade
from registry.devices import bulk_create_devices
from registry.importer import COLUMNS, read_devices_csv
from registry.tables import Device
from registry.telemetry import store_readings

BATCH = 10_000


def write_devices_csv(path: Path, count: int) -> None:
    types = [
        ("battery", "Tesla", "Powerwall 2", 5.0, -5.0, 13.5),
        ("ev_charger", "Wallbox", "Pulsar Plus", 7.4, 0.0, None),
        ("heat_pump", "Daikin", "Altherma 3", 4.0, 0.0, None),
        ("pv_inverter", "SolarEdge", "SE6000H", 0.0, -6.0, None),
    ]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for i in range(count):
            kind, make, model, p_max, p_min, e_max = types[i % len(types)]
            writer.writerow(
                {
                    "device_type": kind,
                    "make": make,
                    "model": model,
                    "serial": f"BENCH-{i:08d}",
                    "owner_name": f"owner-{i // 3:06d}",
                    "p_max_kw": p_max,
                    "p_min_kw": p_min,
                    "e_max_kwh": e_max if e_max is not None else "",
                    "response_time_s": 30,
                    "telemetry_interval_s": 300,
                    "site_id": f"site-{i // 3:06d}",
                    "lat": 52.0 + (i % 100) / 1000,
                    "lon": 4.0 + (i % 97) / 1000,
                    "feeder": f"F-{i % 40:02d}",
                    "region": f"R-{i % 5}",
                    "protocols": "openadr_2.0b;ieee_2030_5",
                }
            )


def bench_devices(engine: Engine, csv_path: Path, count: int) -> float:
    sessions = session_factory(engine)
    started = time.perf_counter()
    with sessions.begin() as session:
        result = bulk_create_devices(session, read_devices_csv(csv_path), chunk=1_000)
    elapsed = time.perf_counter() - started
    assert len(result.created) == count, result.errors[:3]
    return count / elapsed


def bench_readings(engine: Engine, batches: int) -> float:
    sessions = session_factory(engine)
    with sessions() as session:
        ids = list(
            session.scalars(select(Device.device_id).order_by(Device.device_key).limit(BATCH))
        )
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=30)
    stored = 0
    elapsed = 0.0
    for b in range(batches):
        rows = []
        for i in range(BATCH):
            at = start + timedelta(minutes=15 * (b * BATCH + i) // len(ids))
            rows.append(
                {
                    "device_id": ids[i % len(ids)],
                    "timestamp": at.isoformat(),
                    "p_kw": (i % 17) * 0.25 - 2.0,
                    "soc_frac": (i % 11) / 10,
                    "online": True,
                }
            )
        started = time.perf_counter()  # building the batch is the client's work
        with sessions.begin() as session:
            result = store_readings(session, rows)
        elapsed += time.perf_counter() - started
        assert not result.rejected, result.rejected[:3]
        stored += result.stored
    assert stored == batches * BATCH
    return stored / elapsed


def each_database(folder: Path) -> Iterator[tuple[str, Engine, Engine | None, str | None]]:
    yield "sqlite", make_engine(f"sqlite:///{folder / 'bench.db'}"), None, None
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = make_engine(url)
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
        yield "postgresql", engine, admin, schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv_path = folder / "devices.csv"
        write_devices_csv(csv_path, args.devices)
        for name, engine, admin, schema in each_database(folder):
            try:
                upgrade(engine)
                devices_per_s = bench_devices(engine, csv_path, args.devices)
                readings_per_s = bench_readings(engine, args.batches)
            finally:
                engine.dispose()
                if admin is not None:
                    with admin.begin() as connection:
                        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                    admin.dispose()
            print(
                json.dumps(
                    {
                        "database": name,
                        "devices": args.devices,
                        "devices_per_s": round(devices_per_s),
                        "readings": args.batches * BATCH,
                        "batch": BATCH,
                        "readings_per_s": round(readings_per_s),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
