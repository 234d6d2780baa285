"""Time series in: any CSV with a timestamp column and a numeric target, on a regular grid.

Timestamps label the start of an interval. Naive timestamps are kept as the series'
local wall clock (a household's routine follows it); timestamps with offsets are
converted to UTC unless ``timezone`` names a zone to read them in. Values are averaged
onto the grid at ``freq``: a finer series is aggregated, a coarser one refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.errors import ForecastError


@dataclass(frozen=True)
class LoadedSeries:
    """A target on a regular grid, with optional weather columns on the same grid.

    Attributes
    ----------
    target : pandas.Series
        The target per interval, NaN where missing.
    weather : pandas.DataFrame
        Weather (or other known-ahead) columns per interval; no columns when none.
    freq : pandas.Timedelta
        The grid's resolution.
    rows_read : int
        Rows in the input.
    rows_skipped : int
        Input rows not used: a timestamp that does not parse, or a target that is
        missing or not a number.
    """

    target: pd.Series
    weather: pd.DataFrame
    freq: pd.Timedelta
    rows_read: int
    rows_skipped: int

    @property
    def missing(self) -> int:
        """Intervals of the grid without a target value."""
        return int(self.target.isna().sum())


def parse_freq(value: str | pd.Timedelta, field: str = "freq") -> pd.Timedelta:
    """A resolution such as ``15min``, ``30min`` or ``1h`` that divides a day."""
    try:
        freq = pd.Timedelta(value)
    except (ValueError, TypeError) as exc:
        raise ForecastError(field, f"{value!r} is not a duration such as 15min or 1h") from exc
    if freq <= pd.Timedelta(0) or pd.Timedelta("1D") % freq != pd.Timedelta(0):
        raise ForecastError(field, f"{value} must be positive and divide one day (15min, 1h, ...)")
    return freq


def parse_horizon(value: str | pd.Timedelta, freq: pd.Timedelta) -> pd.Timedelta:
    """A forecast length that is a whole number of intervals."""
    try:
        horizon = pd.Timedelta(value)
    except (ValueError, TypeError) as exc:
        raise ForecastError("horizon", f"{value!r} is not a duration such as 1D or 6h") from exc
    if horizon < freq or horizon % freq != pd.Timedelta(0):
        raise ForecastError("horizon", f"{value} must be a whole number of intervals of {freq}")
    if horizon > pd.Timedelta("7D"):
        raise ForecastError("horizon", f"{value} is longer than the limit of 7 days")
    return horizon


def from_frame(
    frame: pd.DataFrame,
    timestamp_column: str,
    target_column: str,
    weather_columns: Sequence[str] = (),
    freq: str | pd.Timedelta | None = None,
    timezone: str | None = None,
) -> LoadedSeries:
    """Put the columns of ``frame`` on a regular grid (see the module docstring)."""
    for field, column in [("timestamp_column", timestamp_column), ("target_column", target_column)]:
        if column not in frame.columns:
            raise ForecastError(field, f"no column {column!r}; columns are {list(frame.columns)}")
    for column in weather_columns:
        if column not in frame.columns:
            raise ForecastError("weather_columns", f"no column {column!r}")
    rows = len(frame)
    stamps = _timestamps(frame[timestamp_column], timezone)
    target = pd.to_numeric(frame[target_column], errors="coerce")
    usable = stamps.notna().to_numpy() & target.notna().to_numpy()
    usable &= np.isfinite(target.to_numpy(dtype=float, na_value=np.nan))
    skipped = int(rows - usable.sum())
    if usable.sum() < 2:
        raise ForecastError(target_column, "fewer than two rows with a timestamp and a number")
    index = pd.DatetimeIndex(stamps[usable])
    values = pd.DataFrame({"target": target[usable].to_numpy(dtype=float)}, index=index)
    for column in weather_columns:
        values[column] = pd.to_numeric(frame[column][usable], errors="coerce").to_numpy()
    values = values.sort_index()
    # The data's resolution: the most common step between timestamps (those of rows
    # without a value too, since they still show the grid).
    steps = pd.Series(stamps.dropna().sort_values().unique()).diff().dropna()
    steps = steps[steps > pd.Timedelta(0)]
    step = pd.Timedelta(steps.mode().iloc[0]) if len(steps) else pd.Timedelta("1h")
    grid = parse_freq(freq if freq is not None else step)
    if step < grid and grid % step != pd.Timedelta(0):
        raise ForecastError("freq", f"{grid} is not a multiple of the data's resolution {step}")
    if step > grid:
        raise ForecastError(
            "freq", f"{grid} is finer than the data's resolution {step}; use {step} or coarser"
        )
    # Averaging onto the grid also merges duplicate stamps (a repeated local hour).
    regular = values.resample(grid).mean()
    return LoadedSeries(
        target=regular["target"].rename(target_column),
        weather=regular.drop(columns="target"),
        freq=grid,
        rows_read=rows,
        rows_skipped=skipped,
    )


def read_csv(
    path: str | Path,
    timestamp_column: str,
    target_column: str,
    weather_columns: Sequence[str] = (),
    freq: str | pd.Timedelta | None = None,
    timezone: str | None = None,
) -> LoadedSeries:
    """Read a CSV (plain or gzipped) and put it on a regular grid with :func:`from_frame`."""
    path = Path(path)
    if not path.is_file():
        raise ForecastError("data", f"{path}: no such file")
    try:
        frame = pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ForecastError("data", f"{path}: not a readable CSV ({exc})") from exc
    return from_frame(frame, timestamp_column, target_column, weather_columns, freq, timezone)


def _timestamps(column: pd.Series, timezone: str | None) -> pd.Series:
    text = column.astype("string")
    has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False)
    if has_offset.any():
        stamps = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
        return stamps.dt.tz_convert(timezone) if timezone else stamps
    stamps = pd.to_datetime(text, errors="coerce", format="ISO8601")
    if timezone:
        stamps = stamps.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    return stamps
