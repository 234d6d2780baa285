"""Load forecasts with quantiles: gradient boosting or a linear model, calibrated bands.

Two model families, chosen by backtest (:mod:`forecasting.backtest`):

- ``gbm``: one scikit-learn ``HistGradientBoostingRegressor`` per quantile with the
  quantile (pinball) loss. The P50 is the conditional median, the forecast that
  minimizes the MAE.
- ``linear``: a ridge regression on the same features (time of day and day of week
  one-hot encoded, gaps imputed), its quantiles taken from its errors on a held-out
  calibration window.

Bands are calibrated by conformalized quantile regression [1]_: the models are first
fitted without the last ``calibration_days``, the band is widened (or narrowed) by the
conformity score that makes it hold ``P90 - P10`` = 80% of that window, and the models
are then fitted again on everything.

References
----------
.. [1] Romano, Y., Patterson, E. and Candès, E. (2019) "Conformalized quantile
   regression", *Advances in Neural Information Processing Systems* 32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from forecasting.errors import ForecastError
from forecasting.features import DAY, FeatureSpec, cutoffs, make_features

QUANTILES = (0.1, 0.5, 0.9)
MODELS = ("gbm", "linear")


@dataclass
class LoadForecaster:
    """Quantile forecasts of a load (or any numeric) series issued at cut-offs.

    Parameters
    ----------
    spec : FeatureSpec
        Resolution, horizon, cut-offs, country and weather columns.
    model : {"gbm", "linear"}
        Model family (see the module docstring).
    quantiles : tuple of float
        Quantiles forecast; must hold 0.5 and be symmetric around it.
    calibration_days : int
        Days held out at the end of the training data to calibrate the band; 0 = none.
    min_history_days : int
        Least days of training data after the features' warm-up
        (``spec.history_needed``), 80% of their intervals with values.
    learning_rate, max_iter, max_leaf_nodes, min_samples_leaf : gradient boosting settings
    random_state : int
        Seed for every random choice.
    """

    spec: FeatureSpec
    model: str = "gbm"
    quantiles: tuple[float, ...] = QUANTILES
    calibration_days: int = 56
    min_history_days: int = 28
    learning_rate: float = 0.1
    max_iter: int = 100
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 40
    random_state: int = 0
    fitted_: dict[float, Any] = field(default_factory=dict, repr=False)
    margin_: float = 0.0
    residual_quantiles_: dict[float, float] = field(default_factory=dict, repr=False)
    training_span_: tuple[pd.Timestamp, pd.Timestamp] | None = None
    training_rows_: int = 0
    columns_: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ForecastError("model", f"{self.model!r} is not one of {', '.join(MODELS)}")
        if 0.5 not in self.quantiles or any(not 0 < q < 1 for q in self.quantiles):
            raise ForecastError("quantiles", "must lie in (0, 1) and include 0.5")
        self.quantiles = tuple(sorted(self.quantiles))

    # -- fitting --------------------------------------------------------------------

    def fit(self, target: pd.Series, weather: pd.DataFrame | None = None) -> LoadForecaster:
        """Fit on every interval of ``target`` that has a value and its features."""
        self._check_series(target)
        features = make_features(target, self.spec, weather)
        known = target.dropna()
        warm = known.index[0] + self.spec.history_needed if len(known) else None
        usable = target.notna().to_numpy() & (target.index >= warm if warm else False)
        if usable.sum() < 0.8 * self.min_history_days * self.spec.steps_per_day:
            raise ForecastError(
                "data",
                f"{int(usable.sum())} usable intervals after the first "
                f"{self.spec.history_needed.days} days of history; training needs "
                f"{self.min_history_days} days of them (80% with values)",
            )
        X, y = features[usable], target[usable].to_numpy(dtype=float)
        self.margin_ = 0.0
        self.residual_quantiles_ = {}
        held_out = X.index >= X.index[-1] - self.calibration_days * DAY
        calibrate = self.calibration_days > 0 and 0 < held_out.sum() < 0.5 * len(X)
        # A feature with no value at all in training (an analog forecast needs ten past
        # days of the same kind) is left out rather than learned from nothing.
        first = X[~held_out] if calibrate else X
        self.columns_ = [c for c in X.columns if first[c].notna().any()]
        X = X[self.columns_]
        if calibrate:
            self._fit_models(X[~held_out], y[~held_out])
            self._calibrate(X[held_out], y[held_out])
        self._fit_models(X, y)
        self.training_span_ = (X.index[0], X.index[-1])
        self.training_rows_ = len(X)
        return self

    def _fit_models(self, X: pd.DataFrame, y: np.ndarray) -> None:
        # One thread: OpenMP threads waiting on a busy core made fits 5 to 40 times slower
        # (1,700 rows: 3.5 s against 0.6 s; a year's backtest: 660 s against 50 s), and
        # the gain on an idle 2-core machine is small.
        with threadpool_limits(limits=1):
            self._fit_each(X, y)

    def _fit_each(self, X: pd.DataFrame, y: np.ndarray) -> None:
        if self.model == "gbm":
            self.fitted_ = {}
            for q in self.quantiles:
                estimator = HistGradientBoostingRegressor(
                    loss="quantile",
                    quantile=q,
                    learning_rate=self.learning_rate,
                    max_iter=self.max_iter,
                    max_leaf_nodes=self.max_leaf_nodes,
                    min_samples_leaf=self.min_samples_leaf,
                    random_state=self.random_state,
                )
                self.fitted_[q] = estimator.fit(X, y)
        else:
            self.fitted_ = {0.5: _linear_pipeline(list(X.columns)).fit(X, y)}

    def _calibrate(self, X: pd.DataFrame, y: np.ndarray) -> None:
        if self.model == "linear":
            residual = y - self.fitted_[0.5].predict(X)
            self.residual_quantiles_ = {q: float(np.quantile(residual, q)) for q in self.quantiles}
        raw = self._raw(X)
        low, high = self.quantiles[0], self.quantiles[-1]
        score = np.maximum(raw[low] - y, y - raw[high])
        level = min(1.0, (high - low) * (1 + 1 / len(y)))
        self.margin_ = float(np.quantile(score, level))

    # -- predicting -----------------------------------------------------------------

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted_)

    def _raw(self, X: pd.DataFrame) -> dict[float, np.ndarray]:
        if self.model == "gbm":
            return {q: self.fitted_[q].predict(X) for q in self.quantiles}
        center = self.fitted_[0.5].predict(X)
        offsets = self.residual_quantiles_ or {q: 0.0 for q in self.quantiles}
        return {q: center + offsets[q] for q in self.quantiles}

    def predict_features(self, X: pd.DataFrame) -> pd.DataFrame:
        """Quantile forecasts for a feature frame: columns ``p10``, ``p50``, ``p90``
        (one per quantile), non-crossing, the band calibrated."""
        if not self.is_fitted:
            raise ForecastError("model", "not trained yet")
        with threadpool_limits(limits=1):
            raw = self._raw(X[self.columns_])
        low, high = self.quantiles[0], self.quantiles[-1]
        raw[low] = raw[low] - self.margin_
        raw[high] = raw[high] + self.margin_
        stacked = np.sort(np.column_stack([raw[q] for q in self.quantiles]), axis=1)
        return pd.DataFrame(stacked, index=X.index, columns=[_name(q) for q in self.quantiles])

    def predict(
        self,
        history: pd.Series,
        weather: pd.DataFrame | None = None,
        cutoff: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """The forecast issued at ``cutoff`` (default: the first cut-off after the last
        value of ``history``), covering one horizon, from ``history`` before it."""
        self._check_series(history)
        known = history.dropna()
        if known.empty:
            raise ForecastError("data", "no values to forecast from")
        if cutoff is None:
            after = known.index[-1] + self.spec.freq
            cutoff = cutoffs(pd.DatetimeIndex([after]), self.spec)[0]
            if cutoff < after:
                cutoff = cutoff + self.spec.horizon
        cutoff = pd.Timestamp(cutoff)
        if (cutoff.tzinfo is None) != (pd.DatetimeIndex(history.index).tz is None):
            raise ForecastError(
                "cutoff", "give it with the same time zone as the data's timestamps"
            )
        span = cutoff - known.index[0]
        if span < self.spec.history_needed:
            raise ForecastError(
                "data",
                f"{span} of history before the cut-off; a forecast needs "
                f"{self.spec.history_needed}",
            )
        targets = pd.date_range(
            cutoff, cutoff + self.spec.horizon, freq=self.spec.freq, inclusive="left"
        )
        past = history[history.index < cutoff]
        features = make_features(past, self.spec, weather, at=targets)
        return self.predict_features(features)

    def _check_series(self, series: pd.Series) -> None:
        if not isinstance(series.index, pd.DatetimeIndex):
            raise ForecastError("data", "the series needs a timestamp index")
        if len(series) > 1:
            step = pd.Series(series.index).diff().dropna().min()
            if step != self.spec.freq:
                raise ForecastError(
                    "freq", f"the data's resolution is {step}; this model is for {self.spec.freq}"
                )


def _name(q: float) -> str:
    return f"p{round(q * 100):02d}"


def _linear_pipeline(columns: list[str]) -> Any:
    categorical = ["time_of_day_h", "day_of_week"]
    numeric = [c for c in columns if c not in categorical]
    encode = ColumnTransformer(
        [
            ("calendar", OneHotEncoder(handle_unknown="ignore"), categorical),
            ("numeric", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
        ]
    )
    return make_pipeline(encode, Ridge(alpha=1.0))
