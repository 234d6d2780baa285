"""Saved models come back identical, with their metadata, or are refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from forecasting.errors import ForecastError
from forecasting.features import FeatureSpec
from forecasting.models import LoadForecaster
from forecasting.series import LoadedSeries
from forecasting.store import load_model, save_model


def test_round_trip(tmp_path: Path, household: LoadedSeries) -> None:
    history = household.target["2009-01-01":"2009-06-30"]
    model = LoadForecaster(FeatureSpec(household.freq, country="FR"), model="linear").fit(history)
    meta = save_model(model, tmp_path, "sceaux-linear", metrics={"mae": 0.4}, target_column="kw")
    assert meta["features"][:3] == ["time_of_day_h", "day_of_week", "day_of_year"]
    assert meta["training_end"] == "2009-06-30T23:00:00"
    assert meta["freq"] == "0 days 01:00:00"
    assert "scikit-learn" in meta["versions"]
    loaded, stored = load_model(tmp_path, "sceaux-linear")
    assert stored["metrics"] == {"mae": 0.4}
    pd.testing.assert_frame_equal(loaded.predict(history), model.predict(history))


def test_refusals(tmp_path: Path, household: LoadedSeries) -> None:
    model = LoadForecaster(FeatureSpec(household.freq), model="linear")
    with pytest.raises(ForecastError, match="not trained yet"):
        save_model(model, tmp_path, "x")
    model.fit(household.target["2009-01-01":"2009-06-30"])
    with pytest.raises(ForecastError, match=r"name: '\.\./evil'"):
        save_model(model, tmp_path, "../evil")
    with pytest.raises(ForecastError, match="no model 'missing'"):
        load_model(tmp_path, "missing")
    save_model(model, tmp_path, "old")
    meta_path = tmp_path / "old.json"
    meta = json.loads(meta_path.read_text())
    meta["versions"]["scikit-learn"] = "0.24.2"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ForecastError, match=r"trained with scikit-learn 0\.24\.2"):
        load_model(tmp_path, "old")
