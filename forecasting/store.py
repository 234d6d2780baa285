"""Trained models saved by name, with the metadata needed to trust them later.

Each model is two files in a directory: ``NAME.joblib`` (the fitted object) and
``NAME.json`` (what it forecasts, its features, resolution, horizon, training span,
backtest metrics and the library versions it was trained with). A model pickled by
another scikit-learn release may not load or may predict differently, so loading one
trained with a different major.minor release is refused with a clear error.
"""

from __future__ import annotations

import json
import platform
import re
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pvlib
import sklearn

from forecasting.errors import ForecastError
from forecasting.features import FeatureSpec
from forecasting.models import LoadForecaster

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "pvlib": pvlib.__version__,
    }


def _paths(directory: Path, name: str) -> tuple[Path, Path]:
    if not NAME.match(name):
        raise ForecastError(
            "name", f"{name!r}: use 1-64 letters, digits, '.', '_' or '-', starting alphanumeric"
        )
    return directory / f"{name}.joblib", directory / f"{name}.json"


def metadata(model: LoadForecaster, **extra: Any) -> dict[str, Any]:
    """What is stored beside a load model."""
    spec = model.spec
    span = model.training_span_
    return {
        "kind": "load",
        "model": model.model,
        "quantiles": list(model.quantiles),
        "freq": str(spec.freq),
        "horizon": str(spec.horizon),
        "cutoff_offset": str(spec.cutoff_offset),
        "country": spec.country,
        "weather_columns": list(spec.weather_columns),
        "features": model.columns_,
        "training_start": span[0].isoformat() if span else None,
        "training_end": span[1].isoformat() if span else None,
        "training_rows": model.training_rows_,
        "band_margin": model.margin_,
        "settings": {
            k: v
            for k, v in asdict(model).items()
            if k
            in (
                "calibration_days",
                "learning_rate",
                "max_iter",
                "max_leaf_nodes",
                "min_samples_leaf",
                "random_state",
            )
        },
        "versions": versions(),
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }


def save_model(
    model: LoadForecaster, directory: str | Path, name: str, **extra: Any
) -> dict[str, Any]:
    """Save a trained model as ``name`` in ``directory``; return its metadata.

    ``extra`` (for example ``metrics=...`` from a backtest, ``target_column=...``) is
    stored with the metadata.
    """
    if not model.is_fitted:
        raise ForecastError("model", "not trained yet; nothing to save")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_path, meta_path = _paths(directory, name)
    meta = metadata(model, name=name, **extra)
    joblib.dump(model, model_path)
    meta_path.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return meta


def read_metadata(directory: str | Path, name: str) -> dict[str, Any]:
    _, meta_path = _paths(Path(directory), name)
    if not meta_path.is_file():
        known = sorted(p.stem for p in Path(directory).glob("*.json"))
        raise ForecastError("name", f"no model {name!r} in {directory} (saved: {known or 'none'})")
    result: dict[str, Any] = json.loads(meta_path.read_text())
    return result


def load_model(directory: str | Path, name: str) -> tuple[LoadForecaster, dict[str, Any]]:
    """Load the model saved as ``name``, refusing one from another scikit-learn release."""
    meta = read_metadata(directory, name)
    saved = meta.get("versions", {}).get("scikit-learn", "?")
    if saved.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        raise ForecastError(
            "name",
            f"model {name!r} was trained with scikit-learn {saved}; this is "
            f"{sklearn.__version__}: train it again",
        )
    model_path, _ = _paths(Path(directory), name)
    model = joblib.load(model_path)
    if not isinstance(model, LoadForecaster):
        raise ForecastError("name", f"{model_path} does not hold a load model")
    return model, meta


def spec_from(meta: dict[str, Any]) -> FeatureSpec:
    return FeatureSpec(
        freq=pd.Timedelta(meta["freq"]),
        horizon=pd.Timedelta(meta["horizon"]),
        cutoff_offset=pd.Timedelta(meta["cutoff_offset"]),
        country=meta.get("country"),
        weather_columns=tuple(meta.get("weather_columns", ())),
    )
