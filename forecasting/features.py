"""Features for a forecast issued at a cut-off: nothing after the cut-off is ever used.

A forecast of length ``horizon`` is issued at each cut-off ``anchor + k * horizon``
(``anchor`` = midnight + ``cutoff_offset``): a day-ahead forecast has ``horizon`` = 1 day
and cut-offs at midnight, an intraday one, say, 6 h and cut-offs every 6 h. An interval
starting at ``t`` belongs to the forecast issued at the last cut-off ``c <= t``; an
interval's value is known once it has ended, so the data known at ``c`` are those of the
intervals starting before ``c``.

The features of interval ``t`` (with its cut-off ``c``):

- calendar: time of day, day of week, day of year, public holiday (the ``holidays``
  package, for the series' country), hours since the cut-off;
- lags at the same time of day ``d`` days back, only for ``d`` days >= ``horizon``
  (so that every lag is known at ``c``), and their mean and median over the last 7
  and 28 such days, and over the same weekday of the last four weeks;
- anchored at ``c``: the last value, the mean of the last three intervals, the mean,
  maximum and spread of the last day, and the mean of the last 7 and 28 days;
- for day-ahead forecasts, an analog-day forecast: what followed the past days whose
  last two days looked most like the two before the cut-off (:func:`_analog_profile`);
- weather columns at ``t`` as given (forecasts known at issue time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import holidays
import numpy as np
import pandas as pd

from forecasting.errors import ForecastError

DAY = pd.Timedelta("1D")
ZERO = pd.Timedelta(0)
CALENDAR = ("time_of_day_h", "day_of_week", "day_of_year", "holiday", "lead_h")


@dataclass(frozen=True)
class FeatureSpec:
    """How features are made for a series.

    Parameters
    ----------
    freq : pandas.Timedelta
        The series' resolution (divides a day).
    horizon : pandas.Timedelta
        Length of one forecast; also the spacing of cut-offs.
    cutoff_offset : pandas.Timedelta
        Cut-offs are at midnight plus this offset (plus multiples of ``horizon``).
    country : str or None
        ISO country code for public holidays; ``None`` = no holiday feature.
    weather_columns : tuple of str
        Columns used as they are at the target interval.
    """

    freq: pd.Timedelta
    horizon: pd.Timedelta = DAY
    cutoff_offset: pd.Timedelta = ZERO
    country: str | None = None
    weather_columns: tuple[str, ...] = ()

    @property
    def steps_per_day(self) -> int:
        return int(DAY / self.freq)

    @property
    def first_lag_days(self) -> int:
        """The shortest lag in days that is known at every interval's cut-off."""
        return max(1, math.ceil(self.horizon / DAY))

    @property
    def history_needed(self) -> pd.Timedelta:
        """History a cut-off needs behind it: two weeks of day lags (the 28-day
        profiles use what there is of their window)."""
        return (self.first_lag_days + 14) * DAY

    def columns(self) -> list[str]:
        first = self.first_lag_days
        lags = [f"lag_{d}d" for d in _lag_days(first)]
        profile = ["profile_7d_mean", "profile_7d_median", "profile_28d_mean", "profile_28d_median"]
        weekly = ["same_weekday_4w_mean"]
        anchored = [
            "last",
            "last_3_mean",
            "last_day_mean",
            "last_day_max",
            "last_day_std",
            "last_7d_mean",
            "last_28d_mean",
        ]
        analog = ["analog_2d"] if self.horizon == DAY else []
        return [*CALENDAR, *lags, *profile, *weekly, *anchored, *analog, *self.weather_columns]


def _lag_days(first: int) -> list[int]:
    return sorted({*range(first, first + 7), *(d for d in (7, 14) if d >= first)})


def cutoffs(index: pd.DatetimeIndex, spec: FeatureSpec) -> pd.DatetimeIndex:
    """The cut-off of every interval in ``index``."""
    anchor = index.normalize() + spec.cutoff_offset
    # Intervals before the day's anchor belong to the previous day's cycle.
    anchor = anchor.where(anchor <= index, anchor - DAY)
    blocks = (index - anchor) // spec.horizon
    return pd.DatetimeIndex(anchor + blocks * spec.horizon)


def make_features(
    target: pd.Series,
    spec: FeatureSpec,
    weather: pd.DataFrame | None = None,
    at: pd.DatetimeIndex | None = None,
) -> pd.DataFrame:
    """Features (see the module docstring) for the intervals ``at`` (default: every
    interval of ``target``), from the history in ``target``.

    ``target`` must be on the regular grid of ``spec.freq``; intervals of ``at`` beyond
    its end are forecast from what it holds (their lags are NaN where unknown).
    """
    index = pd.DatetimeIndex(target.index)
    if index.freq is None or pd.Timedelta(index.freq) != spec.freq:  # type: ignore[arg-type]
        target = target.asfreq(spec.freq)  # type: ignore[arg-type]
    at = pd.DatetimeIndex(target.index if at is None else at)
    if len(at) == 0:
        return pd.DataFrame(columns=spec.columns(), dtype=float)
    start = min(target.index[0], at[0]) if len(target) else at[0]
    end = max(target.index[-1], at[-1]) if len(target) else at[-1]
    grid = pd.date_range(start, end, freq=spec.freq)
    y = target.reindex(grid).to_numpy(dtype=float)
    n = len(grid)
    position = grid.get_indexer(at)
    if (position < 0).any():
        raise ForecastError("at", f"timestamps off the grid of {spec.freq}")
    cut = cutoffs(at, spec)
    # The last interval known at the cut-off, as a grid position (may be < 0: none).
    known = grid.get_indexer(cut - spec.freq)
    outside = known < 0
    known_before_start = ((cut - spec.freq - grid[0]) / spec.freq).to_numpy()
    known = np.where(outside, np.floor(known_before_start).astype(np.int64), known)

    def take(series: np.ndarray, where: np.ndarray) -> np.ndarray:
        ok = (where >= 0) & (where < n)
        out = np.full(len(where), np.nan)
        out[ok] = series[where[ok]]
        return out

    frame: dict[str, np.ndarray] = {}
    local = at
    frame["time_of_day_h"] = (local.hour + local.minute / 60).to_numpy(dtype=float)
    frame["day_of_week"] = local.day_of_week.to_numpy(dtype=float)
    frame["day_of_year"] = local.day_of_year.to_numpy(dtype=float)
    frame["holiday"] = _holidays(local, spec.country)
    frame["lead_h"] = ((at - cut) / pd.Timedelta("1h")).to_numpy(dtype=float)

    per_day = spec.steps_per_day
    first = spec.first_lag_days
    for d in _lag_days(first):
        frame[f"lag_{d}d"] = take(y, position - d * per_day)
    week = np.column_stack([take(y, position - d * per_day) for d in range(first, first + 7)])
    month = np.column_stack([take(y, position - d * per_day) for d in range(first, first + 28)])
    weekdays = [7 * w for w in range(1, 6) if 7 * w >= first][:4]
    same = np.column_stack([take(y, position - d * per_day) for d in weekdays])
    with np.errstate(all="ignore"):
        frame["profile_7d_mean"] = _nan_stat(np.nanmean, week)
        frame["profile_7d_median"] = _nan_stat(np.nanmedian, week)
        frame["profile_28d_mean"] = _nan_stat(np.nanmean, month)
        frame["profile_28d_median"] = _nan_stat(np.nanmedian, month)
        frame["same_weekday_4w_mean"] = _nan_stat(np.nanmean, same)

    series = pd.Series(y)
    rolling = {
        "last": series,
        "last_3_mean": series.rolling(3, min_periods=1).mean(),
        "last_day_mean": series.rolling(per_day, min_periods=per_day // 2).mean(),
        "last_day_max": series.rolling(per_day, min_periods=per_day // 2).max(),
        "last_day_std": series.rolling(per_day, min_periods=per_day // 2).std(),
        "last_7d_mean": series.rolling(7 * per_day, min_periods=per_day).mean(),
        "last_28d_mean": series.rolling(28 * per_day, min_periods=per_day).mean(),
    }
    for name, values in rolling.items():
        frame[name] = take(values.to_numpy(dtype=float), known)

    if spec.horizon == DAY:
        frame["analog_2d"] = _analog_profile(grid, y, spec)[position]

    if spec.weather_columns:
        if weather is None:
            raise ForecastError("weather_columns", "the model needs weather columns; none given")
        missing = [c for c in spec.weather_columns if c not in weather.columns]
        if missing:
            raise ForecastError("weather_columns", f"missing column(s) {missing}")
        aligned = weather.reindex(at)
        for column in spec.weather_columns:
            frame[column] = aligned[column].to_numpy(dtype=float)
    return pd.DataFrame(frame, index=at)[spec.columns()]


ANALOG_KS = (10, 20, 30, 40)


def _analog_profile(
    grid: pd.DatetimeIndex, y: np.ndarray, spec: FeatureSpec, ks: Sequence[int] = ANALOG_KS
) -> np.ndarray:
    """Analog-day forecast for every position of ``grid`` (day-ahead horizon only).

    The grid is cut into forecast days ``[c, c + 1 day)`` at the cut-offs ``c``. For
    forecast day ``j`` the query is the profile of the two days before its cut-off
    (days ``j-1`` and ``j-2``). Candidates are the past days ``a`` whose two-day profile
    (``a``, ``a-1``) and following day ``a+1`` are complete, with ``a + 1 <= j - 1`` (the
    analog's outcome ended before ``j``'s cut-off) and with ``a + 1`` of the same day type
    as ``j`` (day of week; public holidays count as Sundays; with fewer than
    ``min(ks)`` such days, the same class: working day or weekend). The ``k`` nearest
    (Euclidean) give the median of their following days; the feature is the mean of those
    medians over ``ks``. NaN where fewer than ``min(ks)`` candidates exist. This is the
    nearest-neighbour "analog" method of weather forecasting [1]_ applied to load.

    References
    ----------
    .. [1] Lorenz, E.N. (1969) "Atmospheric predictability as revealed by naturally
       occurring analogues", *Journal of the Atmospheric Sciences* 26(4), 636-646.
    """
    per_day = spec.steps_per_day
    n = len(grid)
    first_cut = cutoffs(grid[:1], spec)[0]
    offset = round((grid[0] - first_cut) / spec.freq)
    blocks = -(-(offset + n) // per_day)
    flat = np.full(blocks * per_day, np.nan)
    flat[offset : offset + n] = y
    days = flat.reshape(blocks, per_day)
    starts = pd.DatetimeIndex(first_cut + np.arange(blocks) * DAY)
    kind = np.where(_holidays(starts, spec.country) > 0, 6, starts.day_of_week.to_numpy())
    complete = ~np.isnan(days).any(axis=1)
    pair = np.full((blocks, 2 * per_day), np.nan)
    pair[1:] = np.hstack([days[1:], days[:-1]])
    usable = np.zeros(blocks, dtype=bool)
    usable[1:-1] = complete[1:-1] & complete[:-2] & complete[2:]
    out = np.full((blocks, per_day), np.nan)
    ks = sorted(ks)
    for j in range(3, blocks):
        query = pair[j - 1]
        if np.isnan(query).any():
            continue
        a = np.flatnonzero(usable[: j - 1])  # a <= j - 2, so a + 1 <= j - 1
        same = a[kind[a + 1] == kind[j]]
        # Short histories: days of the same class (working day or not) will do.
        a = same if len(same) >= ks[0] else a[(kind[a + 1] >= 5) == (kind[j] >= 5)]
        if len(a) < ks[0]:
            continue
        order = a[np.argsort(((pair[a] - query) ** 2).sum(axis=1), kind="stable")]
        medians = [np.median(days[order[:k] + 1], axis=0) for k in ks if k <= len(order)]
        out[j] = np.mean(medians, axis=0)
    return out.ravel()[offset : offset + n]


def _nan_stat(function: object, values: np.ndarray) -> np.ndarray:
    out = np.full(values.shape[0], np.nan)
    some = ~np.isnan(values).all(axis=1)
    if some.any():
        out[some] = function(values[some], axis=1)  # type: ignore[operator]
    return out


def _holidays(index: pd.DatetimeIndex, country: str | None) -> np.ndarray:
    if country is None:
        return np.zeros(len(index))
    try:
        calendar = holidays.country_holidays(
            country, years=range(index.year.min(), index.year.max() + 1)
        )
    except NotImplementedError as exc:
        raise ForecastError(
            "country", f"{country!r} is not a country the holidays package knows"
        ) from exc
    days = pd.Index(index.date)
    return np.asarray(days.isin(list(calendar.keys())), dtype=float)  # type: ignore[arg-type]
