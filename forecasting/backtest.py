"""Rolling-origin backtests beside two naive baselines.

The test span (from ``test_start`` to the end of the data) is cut into ``folds``
consecutive windows on cut-off boundaries. For each window a fresh model is trained on
everything before it, then every forecast of the window is issued at its own cut-off
from the data known then, exactly as it would have run live [1]_.

Every model is scored beside two naive forecasts: the same time yesterday and the same
time last week. Skill is ``1 - MAE / MAE(best naive)``. Metrics are taken over the
intervals where the actual value and both naive forecasts are known.

References
----------
.. [1] Tashman, L.J. (2000) "Out-of-sample tests of forecasting accuracy: an analysis
   and review", *International Journal of Forecasting* 16(4), 437-450.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting import metrics
from forecasting.errors import ForecastError
from forecasting.features import DAY, cutoffs, make_features
from forecasting.models import LoadForecaster

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BacktestResult:
    """What a backtest measured.

    Attributes
    ----------
    metrics : dict
        ``mae``, ``rmse``, ``nmae``, ``pinball``, ``coverage_p10_p90``, ``naive_mae``
        (the better naive), ``naive_day_mae``, ``naive_week_mae``, ``skill``,
        ``intervals`` (scored), ``folds``, ``seconds``.
    folds : pandas.DataFrame
        The same metrics per fold, with its ``start`` and ``end``.
    predictions : pandas.DataFrame
        Per interval: ``actual``, the quantile columns, ``naive_day``, ``naive_week``.
    """

    metrics: dict[str, float]
    folds: pd.DataFrame
    predictions: pd.DataFrame


def default_test_start(target: pd.Series) -> pd.Timestamp:
    """The last year of the data when it holds at least two, else its last quarter."""
    known = target.dropna()
    first, last = known.index[0], known.index[-1]
    span = last - first
    start = last - 365 * DAY if span >= 2 * 365 * DAY else last - span / 4
    return pd.Timestamp(start).normalize()


def backtest(
    target: pd.Series,
    make_model: Callable[[], LoadForecaster],
    *,
    weather: pd.DataFrame | None = None,
    folds: int = 4,
    test_start: pd.Timestamp | str | None = None,
    progress: Progress | None = None,
) -> BacktestResult:
    """Backtest the models ``make_model`` builds on ``target`` (see the module docstring).

    Parameters
    ----------
    target : pandas.Series
        The series on its regular grid.
    make_model : callable
        Returns an untrained :class:`~forecasting.models.LoadForecaster`.
    weather : pandas.DataFrame, optional
        Weather columns on the same grid.
    folds : int
        Test windows, each with its own training run (1 to 52).
    test_start : timestamp, optional
        First interval tested (default :func:`default_test_start`).
    progress : callable, optional
        Called as ``progress(done, total)`` after each fold.
    """
    if not 1 <= folds <= 52:
        raise ForecastError("folds", f"{folds} is outside 1 to 52")
    started = time.perf_counter()
    probe = make_model()
    spec = probe.spec
    needed = spec.history_needed + probe.min_history_days * DAY
    index = pd.DatetimeIndex(target.index)
    start = pd.Timestamp(test_start) if test_start is not None else default_test_start(target)
    if (start.tzinfo is None) != (index.tz is None):
        start = start.tz_localize(index.tz) if start.tzinfo is None else start.tz_convert(None)
    known = target.dropna()
    if known.empty or start >= known.index[-1]:
        raise ForecastError("test_start", f"{start} leaves nothing to test")
    if start - known.index[0] < needed:
        raise ForecastError(
            "test_start",
            f"{start} leaves {start - known.index[0]} of training data; at least "
            f"{needed} is needed",
        )
    test_index = index[index >= start]
    cut = cutoffs(test_index, spec)
    unique = pd.DatetimeIndex(cut.unique())
    if len(unique) < folds:
        raise ForecastError("folds", f"{folds} folds but only {len(unique)} forecasts to test")
    bounds = [unique[i * len(unique) // folds] for i in range(folds)] + [test_index[-1] + spec.freq]

    features = make_features(target, spec, weather, at=test_index)
    frames = []
    rows = []
    for k in range(folds):
        window = (test_index >= bounds[k]) & (test_index < bounds[k + 1])
        model = make_model()
        model.fit(target[target.index < bounds[k]], None if weather is None else weather)
        predicted = model.predict_features(features[window])
        frames.append(predicted)
        rows.append({"start": bounds[k], "end": bounds[k + 1], "model": model.model})
        if progress is not None:
            progress(k + 1, folds)
    predictions = pd.concat(frames)
    predictions.insert(0, "actual", target.reindex(predictions.index))
    predictions["naive_day"] = target.shift(1, freq=DAY).reindex(predictions.index)
    predictions["naive_week"] = target.shift(1, freq=7 * DAY).reindex(predictions.index)
    scored = predictions.dropna(subset=["actual", "naive_day", "naive_week"])
    if scored.empty:
        raise ForecastError(
            "data", "no tested interval has an actual value and both naive forecasts"
        )
    summary = _score(scored, [c for c in predictions.columns if c.startswith("p")])
    summary["folds"] = float(folds)
    summary["seconds"] = time.perf_counter() - started
    per_fold = []
    for row in rows:
        part = scored[(scored.index >= row["start"]) & (scored.index < row["end"])]
        per_fold.append({**row, **(_score(part, list(frames[0].columns)) if len(part) else {})})
    return BacktestResult(summary, pd.DataFrame(per_fold), predictions)


def _score(frame: pd.DataFrame, quantile_columns: list[str]) -> dict[str, float]:
    actual = frame["actual"].to_numpy()
    center = frame["p50"].to_numpy()
    low, high = quantile_columns[0], quantile_columns[-1]
    naive_day = metrics.mae(actual, frame["naive_day"].to_numpy())
    naive_week = metrics.mae(actual, frame["naive_week"].to_numpy())
    best = min(naive_day, naive_week)
    quantiles = {int(c[1:]) / 100: frame[c].to_numpy() for c in quantile_columns}
    model_mae = metrics.mae(actual, center)
    return {
        "mae": model_mae,
        "rmse": metrics.rmse(actual, center),
        "nmae": metrics.nmae(actual, center),
        "pinball": metrics.pinball(actual, quantiles),
        "coverage_p10_p90": metrics.coverage(actual, frame[low].to_numpy(), frame[high].to_numpy()),
        "naive_mae": best,
        "naive_day_mae": naive_day,
        "naive_week_mae": naive_week,
        "skill": metrics.skill(model_mae, best),
        "intervals": float(len(frame)),
        "mean_actual": float(np.mean(actual)),
    }
