"""Day-ahead schedules over the API, on real ERCOT day-ahead prices (tests/data)."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import bearer

ERCOT = Path(__file__).parents[1] / "data" / "ercot_dam_spp_lz_hub_2022-07-13_hourly.csv"


def ercot_prices(day: str) -> list[dict[str, Any]]:
    """ERCOT's LZ_HOUSTON settlement point prices of 2022-07-13 [$/MWh], hour by hour,
    moved onto ``day`` (hour ending 01:00 is the hour from 00:00)."""
    frame = pd.read_csv(ERCOT)
    start = pd.Timestamp(day, tz="UTC")
    return [
        {"timestamp": (start + pd.Timedelta(hours=h)).isoformat(), "price_per_kwh": p / 1000}
        for h, p in enumerate(frame["LZ_HOUSTON"])
    ]


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).date().isoformat()


def wait_planned(client: TestClient, key: str, schedule_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, Any] = client.get(
            f"/v1/schedules/{schedule_id}", headers=bearer(key)
        ).json()
        if body["status"] != "planning" or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


@pytest.mark.usefixtures("demo_fleet")
def test_a_fleet_schedule_is_cheaper_than_its_baseline_and_reads_as_csv(
    client: TestClient, keys: dict[str, str]
) -> None:
    aggregator = keys["aggregator"]
    day = tomorrow()
    answer = client.post(
        "/v1/schedules/day-ahead",
        json={"date": day, "prices": ercot_prices(day), "feeder": "F-01"},
        headers=bearer(aggregator),
    )
    assert answer.status_code == 202, answer.text
    body = wait_planned(client, aggregator, answer.json()["id"])
    assert body["status"] == "planned", body
    aggregate = body["aggregate"]
    assert len(aggregate) == 96 and aggregate[0]["start"].startswith(day)
    # Same devices, same prices: the schedule costs less than the fleet left alone
    # (EVs charging on arrival into the evening peak, batteries idle), and its energy
    # cost recomputed from the sites' net power is the optimizer's.
    assert body["energy_cost"] == pytest.approx(body["cost"]["energy"], rel=1e-6, abs=1e-6)
    assert body["energy_cost"] < body["baseline_energy_cost"] - 1.0, body
    # The fleet moves consumption into the cheap hours.
    cheap = sorted(aggregate, key=lambda a: a["import_price_per_kwh"])[:24]
    assert sum(a["p_kw"] - a["baseline_kw"] for a in cheap) > 0

    csv = client.get(
        f"/v1/schedules/{body['id']}", params={"format": "csv"}, headers=bearer(keys["analyst"])
    )
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    rows = pd.read_csv(io.StringIO(csv.text))
    assert list(rows.columns) == ["timestamp_utc", "device_id", "p_kw", "baseline_kw"]
    assert rows["device_id"].nunique() == body["devices"]
    per_interval = rows.groupby("timestamp_utc", sort=True)["p_kw"].sum().to_numpy()
    assert per_interval == pytest.approx([a["p_kw"] for a in aggregate], abs=1e-2)
    listed = client.get("/v1/schedules", headers=bearer(aggregator)).json()
    assert [s["id"] for s in listed] == [body["id"]]


@pytest.mark.usefixtures("demo_fleet")
def test_prices_as_a_csv_upload_plan_the_same_schedule(
    client: TestClient, keys: dict[str, str]
) -> None:
    aggregator = bearer(keys["aggregator"])
    day = tomorrow()
    prices = ercot_prices(day)
    inline = client.post(
        "/v1/schedules/day-ahead",
        json={"date": day, "prices": prices, "feeder": "F-02", "demand_charge_per_kw": 2.0},
        headers=aggregator,
    ).json()["id"]
    text = pd.DataFrame(prices).to_csv(index=False)
    upload = client.post(
        "/v1/schedules/day-ahead/upload",
        data={"date": day, "feeder": "F-02", "demand_charge_per_kw": "2.0"},
        files={"prices": ("prices.csv", text, "text/csv")},
        headers=aggregator,
    )
    assert upload.status_code == 202, upload.text
    first = wait_planned(client, keys["aggregator"], inline)
    second = wait_planned(client, keys["aggregator"], upload.json()["id"])
    assert first["status"] == second["status"] == "planned"
    assert second["objective"] == pytest.approx(first["objective"], rel=1e-6)
    assert first["cost"]["demand_charge"] > 0


@pytest.mark.usefixtures("demo_fleet")
def test_bad_prices_are_refused_with_the_line_and_nothing_is_stored(
    client: TestClient, keys: dict[str, str]
) -> None:
    aggregator = bearer(keys["aggregator"])
    day = tomorrow()
    late = ercot_prices(day)[12:]  # nothing before noon
    gap = client.post(
        "/v1/schedules/day-ahead", json={"date": day, "prices": late}, headers=aggregator
    )
    assert gap.status_code == 422 and "no price for 48 intervals" in gap.text
    broken = "timestamp,price_per_kwh\n" + f"{day}T00:00:00Z,0.1\n{day}T01:00:00Z,cheap\n"
    upload = client.post(
        "/v1/schedules/day-ahead/upload",
        data={"date": day},
        files={"prices": ("prices.csv", broken, "text/csv")},
        headers=aggregator,
    )
    assert upload.status_code == 422 and "line 3: price" in upload.text
    negative = client.post(
        "/v1/schedules/day-ahead",
        json={"date": day, "prices": ercot_prices(day), "demand_charge_per_kw": -1},
        headers=aggregator,
    )
    assert negative.status_code == 422 and "demand_charge_per_kw" in negative.text
    assert client.get("/v1/schedules", headers=aggregator).json() == []
    no_vtn = client.post("/v1/schedules/none/dispatch", headers=aggregator)
    assert no_vtn.status_code == 503
