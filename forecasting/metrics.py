"""Forecast error metrics over the intervals where the actual value is known.

References
----------
.. [1] Hyndman, R.J. and Athanasopoulos, G. (2021) *Forecasting: principles and
   practice*, 3rd ed., OTexts, sections 5.8 (MAE, RMSE, skill scores) and 5.9
   (quantile scores).
.. [2] Koenker, R. and Bassett, G. (1978) "Regression quantiles", *Econometrica*
   46(1), 33-50 (the pinball loss).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt


def mae(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Mean absolute error [unit of the series]."""
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(forecast))))


def rmse(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Root mean squared error [unit of the series]."""
    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(forecast)) ** 2)))


def nmae(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """MAE divided by the mean absolute actual value [-]."""
    scale = float(np.mean(np.abs(np.asarray(actual))))
    return mae(actual, forecast) / scale if scale > 0 else float("nan")


def pinball(actual: npt.ArrayLike, quantiles: Mapping[float, npt.ArrayLike]) -> float:
    """Pinball (quantile) loss averaged over the quantiles given [unit of the series]."""
    observed = np.asarray(actual)
    losses = []
    for q, forecast in quantiles.items():
        error = observed - np.asarray(forecast)
        losses.append(np.mean(np.maximum(q * error, (q - 1) * error)))
    return float(np.mean(losses))


def coverage(actual: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> float:
    """Share of actual values inside ``[lower, upper]`` [-]."""
    observed = np.asarray(actual)
    return float(np.mean((observed >= np.asarray(lower)) & (observed <= np.asarray(upper))))


def skill(model_mae: float, naive_mae: float) -> float:
    """1 - MAE / MAE(naive): 0 = no better than the naive forecast, 1 = perfect."""
    return 1 - model_mae / naive_mae if naive_mae > 0 else float("nan")
