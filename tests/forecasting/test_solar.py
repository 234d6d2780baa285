"""The pvlib chain against NREL PVWatts, and the learned correction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import ForecastError
from forecasting.solar import (
    PVSystemSpec,
    SolarForecaster,
    clear_sky_weather,
    physical_output,
    read_pvwatts_hourly,
)
from tests.forecasting.conftest import PVWATTS

PUBLISHED_AC_KWH = 6023.671  # NREL PVWatts, Golden CO, 4 kWdc (SOURCES.md)


@pytest.fixture(scope="module")
def pvwatts() -> tuple[pd.DataFrame, pd.Series, PVSystemSpec]:
    return read_pvwatts_hourly(PVWATTS)


def test_header_describes_the_system(pvwatts: tuple[pd.DataFrame, pd.Series, PVSystemSpec]) -> None:
    _, ac, system = pvwatts
    assert system.dc_capacity_kw == 4.0
    assert system.tilt_deg == 20.0 and system.azimuth_deg == 180.0
    assert system.losses_frac == pytest.approx(0.1408)
    assert system.dc_ac_ratio == 1.2
    assert ac.sum() == pytest.approx(PUBLISHED_AC_KWH, abs=0.001)


def test_chain_reproduces_pvwatts_annual_energy(
    pvwatts: tuple[pd.DataFrame, pd.Series, PVSystemSpec],
) -> None:
    weather, ac, system = pvwatts
    out = physical_output(weather, system)
    annual = out["ac_kw"].sum()
    assert annual == pytest.approx(PUBLISHED_AC_KWH, rel=0.01)  # the goal
    assert annual == pytest.approx(PUBLISHED_AC_KWH, rel=0.001)  # what it does
    assert out["ac_kw"].max() <= system.ac_capacity_kw + 1e-9  # clipped at the AC rating
    hourly_error = np.abs(out["ac_kw"] - ac).mean()
    assert hourly_error < 0.01  # kW, against a mean daytime output near 1.4 kW


def test_learned_correction_improves_on_held_out_months(
    pvwatts: tuple[pd.DataFrame, pd.Series, PVSystemSpec],
) -> None:
    weather, ac, system = pvwatts
    train = (pd.DatetimeIndex(weather.index).month % 3) != 0
    test = ~train
    forecaster = SolarForecaster(system).fit(ac[train], weather[train])
    forecast = forecaster.predict(pd.DatetimeIndex(weather.index[test]), weather[test])
    physical = physical_output(weather[test], system)["ac_kw"]
    learned_error = np.abs(forecast["p50"] - ac[test]).mean()
    assert learned_error < np.abs(physical - ac[test]).mean()
    assert (forecast["p10"] <= forecast["p90"]).all()
    assert forecast["p90"].max() <= system.ac_capacity_kw


def test_without_weather_it_learns_from_clear_sky(
    pvwatts: tuple[pd.DataFrame, pd.Series, PVSystemSpec],
) -> None:
    weather, ac, system = pvwatts
    train = (pd.DatetimeIndex(weather.index).month % 3) != 0
    clear = physical_output(
        clear_sky_weather(pd.DatetimeIndex(weather.index[~train]), system), system
    )["ac_kw"]
    forecaster = SolarForecaster(system).fit(ac[train])
    forecast = forecaster.predict(pd.DatetimeIndex(weather.index[~train]))
    assert np.abs(forecast["p50"] - ac[~train]).mean() < np.abs(clear - ac[~train]).mean()
    night = clear <= 0
    assert (forecast.loc[night.to_numpy(), "p90"] == 0).all()
    with pytest.raises(ForecastError, match="weather: this model was trained with weather"):
        SolarForecaster(system).fit(ac[train], weather[train]).predict(
            pd.DatetimeIndex(weather.index[:24])
        )


def test_bad_system_and_weather_are_named() -> None:
    with pytest.raises(ForecastError, match="tilt_deg: 95 must be between 0 and 90"):
        PVSystemSpec(39.7, -105.2, tilt_deg=95)
    with pytest.raises(ForecastError, match="losses_frac"):
        PVSystemSpec(39.7, -105.2, losses_frac=1.5)
    index = pd.date_range("2026-06-01", periods=3, freq="1h", tz="UTC")
    with pytest.raises(ForecastError, match="weather: missing column"):
        physical_output(pd.DataFrame({"dni_w_per_m2": [0, 0, 0]}, index=index), PVSystemSpec(0, 0))
