"""A forecast for short histories: the spread of the same time of day over recent days.

A learned model needs weeks of history (:attr:`FeatureSpec.history_needed` plus
``min_history_days``). A device enrolled last week still needs a baseline, so this
forecast takes, for every interval of the horizon, the values at the same time of day
on the last ``days`` days before the cut-off (the same kind of day, weekday or weekend,
when two weeks or more are at hand) and returns their 10th, 50th and 90th percentiles.
It is the "X of Y days" family of baselines that utilities use for demand response [1]_.

References
----------
.. [1] EnerNOC (2011) "The demand response baseline", white paper; and CAISO (2017)
   "Baselines for demand response", Business Practice Manual for Metering, section 10.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.errors import ForecastError
from forecasting.features import DAY

MIN_DAYS = 3


def profile_forecast(
    history: pd.Series,
    cutoff: pd.Timestamp,
    horizon: pd.Timedelta,
    freq: pd.Timedelta,
    days: int = 28,
) -> pd.DataFrame:
    """P10/P50/P90 per interval of ``[cutoff, cutoff + horizon)`` from ``history``.

    Parameters
    ----------
    history : pandas.Series
        Values on a regular grid of ``freq`` (NaN where missing); only those before
        ``cutoff`` are used.
    cutoff : pandas.Timestamp
        Issue time.
    horizon : pandas.Timedelta
        Length of the forecast (at most 7 days).
    freq : pandas.Timedelta
        Resolution.
    days : int
        Days of history looked at.
    """
    past = history[history.index < cutoff].dropna()
    if past.empty:
        raise ForecastError("data", "no values before the cut-off")
    window = past[past.index >= cutoff - days * DAY]
    stamps = pd.DatetimeIndex(window.index)
    days_at_hand = int(stamps.normalize().nunique())
    if days_at_hand < MIN_DAYS:
        raise ForecastError(
            "data",
            f"{days_at_hand} day(s) with values in the {days} days before the cut-off; "
            f"a forecast needs at least {MIN_DAYS}",
        )
    targets = pd.date_range(cutoff, cutoff + horizon, freq=freq, inclusive="left")
    by_type = days_at_hand >= 14
    slot = (stamps - stamps.normalize()) // freq
    weekend = stamps.day_of_week >= 5
    values = window.to_numpy(dtype=float)
    out = np.full((len(targets), 3), np.nan)
    target_slot = (targets - targets.normalize()) // freq
    target_weekend = targets.day_of_week >= 5
    for i, (s, w) in enumerate(zip(target_slot, target_weekend, strict=True)):
        mask = slot == s
        if by_type and (mask & (weekend == w)).sum() >= MIN_DAYS:
            mask &= weekend == w
        if mask.any():
            out[i] = np.quantile(values[mask], [0.1, 0.5, 0.9])
    if np.isnan(out).any():
        # A time of day never seen (sparse telemetry): the whole window's spread.
        out[np.isnan(out[:, 0])] = np.quantile(values, [0.1, 0.5, 0.9])
    return pd.DataFrame(out, index=targets, columns=["p10", "p50", "p90"])
