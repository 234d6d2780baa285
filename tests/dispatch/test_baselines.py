"""Baselines on a small real load series (UCI household, Sceaux, January 2010),
checked against numbers worked out from the days each method names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dispatch.baselines import (
    BaselineError,
    Event,
    caiso_10_in_10,
    delivered,
    eligible_days,
    high_x_of_y,
    meter_before,
    model_baseline,
    performance,
)
from forecasting.features import FeatureSpec
from forecasting.models import LoadForecaster
from tests.forecasting.conftest import UCI

ZONE = "Europe/Paris"
EVENT = Event(pd.Timestamp("2010-01-20 17:00", tz=ZONE), pd.Timestamp("2010-01-20 20:00", tz=ZONE))
HOURS = [17, 18, 19]
ADJUST = [13, 14, 15]  # the three hours that end one hour before the event


@pytest.fixture(scope="module")
def load() -> pd.Series:
    frame = pd.read_csv(UCI, parse_dates=["timestamp_local"])
    series = frame.set_index("timestamp_local")["Global_active_power"]
    january = series["2009-12-01":"2010-01-31"]
    january.index = pd.DatetimeIndex(january.index).tz_localize(ZONE)
    return january


def at(load: pd.Series, day: str, hours: list[int]) -> np.ndarray:
    return np.array([load[pd.Timestamp(f"{day} {h:02d}:00", tz=ZONE)] for h in hours])


# The ten working days before Wednesday 20 January 2010 (weekends skipped).
TEN = ["2010-01-19", "2010-01-18", "2010-01-15", "2010-01-14", "2010-01-13",
       "2010-01-12", "2010-01-11", "2010-01-08", "2010-01-07", "2010-01-06"]  # fmt: skip


def test_ten_in_ten_with_day_of_adjustment(load: pd.Series) -> None:
    days = eligible_days(load, EVENT, 10, country="FR")
    assert [d.strftime("%Y-%m-%d") for d in days] == TEN
    profile = np.mean([at(load, d, HOURS) for d in TEN], axis=0)
    ratio = (
        at(load, "2010-01-20", ADJUST).sum()
        / np.mean([at(load, d, ADJUST) for d in TEN], axis=0).sum()
    )
    baseline = caiso_10_in_10(load, EVENT, country="FR")
    assert list(pd.DatetimeIndex(baseline.index).hour) == HOURS
    np.testing.assert_allclose(baseline.to_numpy(), profile * np.clip(ratio, 0.8, 1.2), rtol=1e-12)


def test_event_days_and_holidays_are_skipped(load: pd.Series) -> None:
    days = eligible_days(load, EVENT, 10, event_days=[pd.Timestamp("2010-01-19")], country="FR")
    assert "2010-01-19" not in [d.strftime("%Y-%m-%d") for d in days]
    assert days[-1] == pd.Timestamp("2010-01-05")
    # An event on Monday 4 January looks back past New Year's Day, a holiday in France.
    monday = Event(
        pd.Timestamp("2010-01-04 18:00", tz=ZONE), pd.Timestamp("2010-01-04 19:00", tz=ZONE)
    )
    back = [d.strftime("%m-%d") for d in eligible_days(load, monday, 3, country="FR")]
    assert back == ["12-31", "12-30", "12-29"]
    weekend = [d.strftime("%m-%d") for d in eligible_days(load, monday, 1)]
    assert weekend == ["01-01"]  # without a country, 1 January is a working day


def test_high_four_of_five_with_additive_adjustment(load: pd.Series) -> None:
    five = TEN[:5]
    means = {d: at(load, d, HOURS).mean() for d in five}
    four = sorted(five, key=lambda d: -means[d])[:4]
    profile = np.mean([at(load, d, HOURS) for d in four], axis=0)
    shift = at(load, "2010-01-20", ADJUST).mean() - np.mean([at(load, d, ADJUST) for d in four])
    baseline = high_x_of_y(load, EVENT, 4, 5, country="FR")
    np.testing.assert_allclose(baseline.to_numpy(), profile + shift, rtol=1e-12)


def test_model_baseline_uses_nothing_of_the_event_day(load: pd.Series) -> None:
    baseline = model_baseline(load, EVENT)
    window = pd.date_range("2010-01-20 17:00", periods=3, freq="1h", tz=ZONE)
    # Without a trained model: the median of the same hour over the working days among
    # the 28 days before.
    days = pd.date_range("2009-12-23", "2010-01-19", freq="D", tz=ZONE)
    working = days[days.day_of_week < 5]
    for hour, value in zip(HOURS, baseline, strict=True):
        same_hour = load.reindex(working + pd.Timedelta(hours=hour))
        assert value == pytest.approx(float(np.quantile(same_hour, 0.5)))
    assert list(baseline.index) == list(window)
    changed = load.copy()
    changed["2010-01-20"] = 0.0  # a deep response on the event day
    pd.testing.assert_series_equal(model_baseline(changed, EVENT), baseline)
    history = load[:"2010-01-19 23:00"]
    trained = LoadForecaster(FeatureSpec(pd.Timedelta("1h"), country="FR"), model="linear")
    trained.fit(history)
    forecast = trained.predict(history, cutoff=pd.Timestamp("2010-01-20", tz=ZONE))
    np.testing.assert_allclose(
        model_baseline(load, EVENT, trained).to_numpy(), forecast["p50"].iloc[HOURS].to_numpy()
    )


def test_meter_before_holds_the_last_reading_through_the_event() -> None:
    index = pd.date_range("2026-11-21 16:00", periods=16, freq="5min", tz="UTC")
    battery = pd.Series(
        [1.2] * 9 + [0.9, 1.0, 1.1] + [-4.0] * 4, index=index
    )  # charging, then discharging
    event = Event(index[12], index[12] + pd.Timedelta("20min"))
    baseline = meter_before(battery, event, minutes=15)
    assert baseline.iloc[0] == pytest.approx((0.9 + 1.0 + 1.1) / 3)
    response = delivered(baseline, battery)
    assert response.iloc[0] == pytest.approx(1.0 + 4.0)  # stopped charging 1 kW and exported 4 kW


def test_performance_of_an_event() -> None:
    index = pd.date_range("2026-11-21 17:00", periods=4, freq="15min", tz="UTC")
    requested = pd.DataFrame({"a": [4.0] * 4, "b": [2.0] * 4}, index=index)
    got = pd.DataFrame({"a": [4.0, 4.0, 3.0, 5.0], "b": [1.0, np.nan, 1.0, 1.0]}, index=index)
    result = performance(requested, got)
    assert result.requested_kwh == {"a": 4.0, "b": 2.0}
    assert result.delivered_kwh == {"a": 4.0, "b": 0.75}
    assert result.delivery_ratio == {"a": 1.0, "b": 0.375}
    assert result.performance_ratio == pytest.approx(4.75 / 6.0)
    assert list(result.intervals["delivered_kw"]) == [5.0, 4.0, 4.0, 6.0]


def test_what_cannot_be_computed_is_named(load: pd.Series) -> None:
    early = Event(
        pd.Timestamp("2009-12-03 17:00", tz=ZONE), pd.Timestamp("2009-12-03 18:00", tz=ZONE)
    )
    with pytest.raises(BaselineError, match="10-in-10 needs 10"):
        caiso_10_in_10(load, early)
    with pytest.raises(BaselineError, match="x, y"):
        high_x_of_y(load, EVENT, 6, 5)
    with pytest.raises(BaselineError, match="event: end must be after start"):
        Event(EVENT.end, EVENT.start)
    naive = load.tz_localize(None)
    with pytest.raises(BaselineError, match="load: timestamps need a time zone"):
        caiso_10_in_10(naive, EVENT)
