"""Training, forecasting from a cut-off, and what a model refuses."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.errors import ForecastError
from forecasting.features import FeatureSpec
from forecasting.models import LoadForecaster
from forecasting.series import LoadedSeries


@pytest.fixture(scope="module")
def trained(household: LoadedSeries) -> LoadForecaster:
    history = household.target[:"2009-12-31"]
    return LoadForecaster(FeatureSpec(household.freq, country="FR")).fit(history)


def test_forecast_of_the_next_day(trained: LoadForecaster, household: LoadedSeries) -> None:
    history = household.target[:"2010-03-09 23:00"]
    forecast = trained.predict(history)
    assert list(forecast.columns) == ["p10", "p50", "p90"]
    assert forecast.index[0] == pd.Timestamp("2010-03-10 00:00")
    assert len(forecast) == 24
    assert (forecast["p10"] <= forecast["p50"]).all() and (forecast["p50"] <= forecast["p90"]).all()
    actual = household.target["2010-03-10"]
    # The band holds most of the day's hours and the median is in the right range.
    inside = ((actual >= forecast["p10"]) & (actual <= forecast["p90"])).mean()
    assert inside >= 0.5
    assert abs(forecast["p50"].mean() - actual.mean()) < 0.5


def test_the_forecast_ignores_data_after_the_cutoff(
    trained: LoadForecaster, household: LoadedSeries
) -> None:
    cut = pd.Timestamp("2010-03-10")
    early = trained.predict(household.target[:"2010-03-09 23:00"], cutoff=cut)
    late = trained.predict(household.target, cutoff=cut)
    pd.testing.assert_frame_equal(early, late)


def test_training_span_and_band(trained: LoadForecaster) -> None:
    assert trained.training_span_ is not None
    assert trained.training_span_[1] == pd.Timestamp("2009-12-31 23:00")
    assert trained.training_rows_ > 20_000


def test_what_a_model_refuses(trained: LoadForecaster, household: LoadedSeries) -> None:
    spec = FeatureSpec(household.freq)
    with pytest.raises(ForecastError, match="model: 'prophet' is not one of gbm, linear"):
        LoadForecaster(spec, model="prophet")
    with pytest.raises(ForecastError, match="training needs 28 days of them"):
        LoadForecaster(spec).fit(household.target[:"2007-01-20"])
    half_hourly = household.target[:"2010-01-31"].resample("30min").ffill()
    with pytest.raises(
        ForecastError, match="resolution is 0 days 00:30:00; this model is for 0 days 01:00:00"
    ):
        trained.predict(half_hourly)
    with pytest.raises(ForecastError, match="a forecast needs"):
        trained.predict(household.target["2010-01-01":"2010-01-10"])
    weather_spec = FeatureSpec(household.freq, weather_columns=("temp_air_c",))
    with pytest.raises(ForecastError, match="weather_columns: the model needs weather"):
        LoadForecaster(weather_spec).fit(household.target)
