"""EV availability learned from real sessions (ACN-Data, Caltech, autumn 2019)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import ForecastError
from forecasting.ev import Availability, ev_availability, expected_sessions, read_acn_sessions
from tests.forecasting.conftest import DATA

ZONE = "America/Los_Angeles"
NOVEMBER = pd.Timestamp("2019-11-01", tz=ZONE)
DECEMBER = pd.Timestamp("2019-12-01", tz=ZONE)


@pytest.fixture(scope="module")
def sessions() -> pd.DataFrame:
    return read_acn_sessions(DATA / "acn_caltech_2019-09-01_2019-12-31.csv.gz", ZONE)


@pytest.fixture(scope="module")
def learned(sessions: pd.DataFrame) -> Availability:
    """Learned on September and October only."""
    return ev_availability(sessions[sessions["arrival"] < NOVEMBER], by_site=False)["all"]


def test_the_garage_is_a_workplace(learned: Availability) -> None:
    assert learned.sessions_per_weekday > 3 * learned.sessions_per_weekend_day
    assert 8 <= learned.arrival_h["p50"] <= 11  # arrivals in the morning
    assert learned.arrival_h["p10"] <= learned.arrival_h["p50"] <= learned.arrival_h["p90"]
    assert 3 <= learned.stay_h["p50"] <= 9  # a working day or part of one
    assert learned.energy_kwh["p10"] < learned.energy_kwh["p50"] < learned.energy_kwh["p90"]


def test_it_holds_a_month_later(sessions: pd.DataFrame, learned: Availability) -> None:
    november = sessions[(sessions["arrival"] >= NOVEMBER) & (sessions["arrival"] < DECEMBER)]
    actual = ev_availability(november, by_site=False)["all"]
    assert learned.sessions_per_weekday == pytest.approx(actual.sessions_per_weekday, rel=0.15)
    assert learned.arrival_h["p50"] == pytest.approx(actual.arrival_h["p50"], abs=0.5)
    # Daily energy of the expected sessions against what November delivered: closer
    # than assuming each day repeats the one a week before.
    days = pd.date_range("2019-11-08", "2019-11-30", freq="D", tz=ZONE)
    delivered = november.groupby(november["arrival"].dt.normalize())["energy_kwh"].sum()
    delivered = delivered.reindex(
        pd.date_range(NOVEMBER, DECEMBER, freq="D", tz=ZONE, inclusive="left"), fill_value=0.0
    )
    expected = np.array([expected_sessions(learned, d)["energy_kwh"].sum() for d in days])
    week_before = delivered.reindex(days - pd.DateOffset(days=7)).to_numpy()
    assert (
        np.abs(expected - delivered[days].to_numpy()).mean()
        < np.abs(week_before - delivered[days].to_numpy()).mean()
    )


def test_expected_sessions_of_a_day(learned: Availability) -> None:
    monday = pd.Timestamp("2019-12-02", tz=ZONE)
    planned = expected_sessions(learned, monday)
    assert len(planned) == round(learned.sessions_per_weekday)
    assert planned["arrival"].is_monotonic_increasing
    assert (planned["departure"] > planned["arrival"]).all()
    assert (planned["arrival"].dt.normalize() == monday).all()
    assert len(expected_sessions(learned, pd.Timestamp("2019-12-07", tz=ZONE))) < len(planned)
    assert len(expected_sessions(learned, monday, count=3)) == 3
    with pytest.raises(ForecastError, match="day: give the day with the site's time zone"):
        expected_sessions(learned, pd.Timestamp("2019-12-02"))


def test_per_station_and_bad_input(sessions: pd.DataFrame) -> None:
    stations = ev_availability(sessions)
    assert len(stations) == sessions["site_id"].nunique()
    assert sum(a.sessions.shape[0] for a in stations.values()) == len(
        sessions.dropna(subset=["arrival", "departure", "energy_kwh"])
    )
    with pytest.raises(ForecastError, match="sessions: missing column"):
        ev_availability(sessions.drop(columns="site_id"))
