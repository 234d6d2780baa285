"""POST /v1/forecasts: load forecasts from stored telemetry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from forecasting.features import FeatureSpec
from forecasting.models import LoadForecaster
from tests.api.conftest import bearer
from tests.api.test_telemetry_api import make_device
from tests.forecasting.conftest import UCI

CUTOFF = pd.Timestamp("2009-11-10T00:00Z")


@pytest.fixture(scope="module")
def household() -> pd.Series:
    """70 days of real household load before the cut-off (UCI, hourly), labelled UTC."""
    frame = pd.read_csv(UCI, parse_dates=["timestamp_local"])
    series = frame.set_index("timestamp_local")["Global_active_power"]
    series.index = pd.DatetimeIndex(series.index).tz_localize("UTC")
    return series[CUTOFF - pd.Timedelta("70D") : CUTOFF - pd.Timedelta("1h")].asfreq("1h")


def meter(client: TestClient, keys: dict[str, str], serial: str, site: str = "site-1") -> str:
    return make_device(
        client,
        keys,
        serial,
        device_type="smart_meter",
        make="Itron",
        model="Gen5",
        p_max_kw=20,
        p_min_kw=-20,
        e_max_kwh=None,
        site_id=site,
    )


def send(client: TestClient, keys: dict[str, str], device_id: str, values: pd.Series) -> None:
    readings = [
        {
            "device_id": device_id,
            "timestamp": stamp.isoformat(),
            "p_kw": round(float(v), 4),
        }
        for stamp, v in zip(pd.DatetimeIndex(values.index), values, strict=True)
    ]
    for i in range(0, len(readings), 100):
        answer = client.post(
            "/v1/telemetry",
            json={"readings": readings[i : i + 100]},
            headers=bearer(keys["aggregator"]),
        )
        assert answer.status_code == 200 and not answer.json()["rejected"], answer.text


def test_device_forecast_is_the_model_trained_on_its_telemetry(
    client: TestClient, keys: dict[str, str], household: pd.Series
) -> None:
    device_id = meter(client, keys, "M-1")
    send(client, keys, device_id, household)
    body = {"device_id": device_id, "cutoff": CUTOFF.isoformat(), "freq": "1h", "history_days": 70}
    response = client.post("/v1/forecasts", json=body, headers=bearer(keys["analyst"]))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["method"] == "gbm" and answer["devices"] == 1
    assert answer["history"]["intervals_with_values"] == len(household)
    points = answer["intervals"]
    assert len(points) == 24
    assert pd.Timestamp(points[0]["start"]) == CUTOFF
    # The same forecast as the model trained directly on the same series.
    stored = household.round(4)
    model = LoadForecaster(FeatureSpec(pd.Timedelta("1h"), cutoff_offset=pd.Timedelta(0)))
    direct = model.fit(stored).predict(stored, cutoff=CUTOFF)
    np.testing.assert_allclose([p["p50_kw"] for p in points], direct["p50"], rtol=1e-9)
    assert all(p["p10_kw"] <= p["p50_kw"] <= p["p90_kw"] for p in points)


def test_site_sums_its_devices_and_short_history_uses_recent_days(
    client: TestClient, keys: dict[str, str], household: pd.Series
) -> None:
    week = household[-7 * 24 :]
    first, second = meter(client, keys, "M-A", "site-9"), meter(client, keys, "M-B", "site-9")
    send(client, keys, first, week)
    send(client, keys, second, week * 0.5)
    body = {"site_id": "site-9", "cutoff": CUTOFF.isoformat(), "freq": "1h", "horizon": "6h"}
    response = client.post("/v1/forecasts", json=body, headers=bearer(keys["aggregator"]))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["method"] == "profile" and answer["devices"] == 2
    assert "a learned model needs" in answer["notes"][0]
    assert len(answer["intervals"]) == 6
    # P50 at midnight: the median of the site's load at midnight over the week.
    midnights = (week * 1.5)[pd.DatetimeIndex(week.index).hour == 0]
    assert answer["intervals"][0]["p50_kw"] == pytest.approx(
        float(np.quantile(midnights.round(4), 0.5)), rel=1e-3
    )


def test_bad_requests_name_the_field(client: TestClient, keys: dict[str, str]) -> None:
    headers = bearer(keys["analyst"])
    both = client.post(
        "/v1/forecasts", json={"device_id": "0x1", "feeder": "F-12"}, headers=headers
    )
    assert (
        both.status_code == 422
        and "exactly one of device_id, site_id, feeder and region" in both.text
    )
    unknown = client.post("/v1/forecasts", json={"feeder": "F-99"}, headers=headers)
    assert unknown.status_code == 404 and "F-99" in unknown.text
    region = client.post("/v1/forecasts", json={"region": "Atlantis"}, headers=headers)
    assert region.status_code == 404 and "Atlantis" in region.text
    make_device(client, keys, "B-1")
    freq = client.post("/v1/forecasts", json={"feeder": "F-12", "freq": "7min"}, headers=headers)
    assert freq.status_code == 422 and "freq" in freq.text and "divide one day" in freq.text
    empty = client.post("/v1/forecasts", json={"feeder": "F-12"}, headers=headers)
    assert empty.status_code == 422 and "no values before the cut-off" in empty.text
    days = client.post(
        "/v1/forecasts", json={"feeder": "F-12", "history_days": 1000}, headers=headers
    )
    assert days.status_code == 422 and "history_days" in days.text
    operator = client.post(
        "/v1/forecasts", json={"feeder": "F-12"}, headers=bearer(keys["operator"])
    )
    assert operator.status_code == 403 and "analyst, aggregator" in operator.text
