"""Reading any CSV onto a regular grid, and the errors that name what is wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import ForecastError
from forecasting.series import from_frame, parse_freq, parse_horizon


def frame(
    values: list[object], start: str = "2026-01-01 00:00", freq: str = "15min"
) -> pd.DataFrame:
    stamps = pd.date_range(start, periods=len(values), freq=freq).strftime("%Y-%m-%d %H:%M")
    return pd.DataFrame({"ts": stamps, "kw": values})


def test_rows_without_a_number_are_skipped_and_counted() -> None:
    data = frame([1.0, "n/a", 3.0, None, 5.0, 6.0, 7.0, 8.0])
    data.loc[5, "ts"] = "not a time"
    series = from_frame(data, "ts", "kw")
    assert series.rows_read == 8
    assert series.rows_skipped == 3  # "n/a", None and the bad timestamp
    assert series.freq == pd.Timedelta("15min")
    assert series.missing == 3  # their intervals stay on the grid without a value
    assert series.target.iloc[0] == 1.0
    assert series.target.iloc[7] == 8.0


def test_a_finer_series_is_averaged_onto_the_grid() -> None:
    series = from_frame(frame([1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 14.0]), "ts", "kw", freq="1h")
    np.testing.assert_allclose(series.target.to_numpy(), [2.5, 11.0])


def test_offsets_are_converted_to_utc() -> None:
    data = pd.DataFrame(
        {"ts": ["2026-03-01T01:00:00+01:00", "2026-03-01T02:00:00+01:00"], "kw": [1, 2]}
    )
    series = from_frame(data, "ts", "kw")
    assert str(pd.DatetimeIndex(series.target.index).tz) == "UTC"
    assert series.target.index[0] == pd.Timestamp("2026-03-01T00:00Z")


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"timestamp_column": "time"}, "timestamp_column", "no column 'time'"),
        ({"target_column": "load"}, "target_column", "no column 'load'"),
        ({"weather_columns": ["ghi"]}, "weather_columns", "no column 'ghi'"),
        ({"freq": "5min"}, "freq", "finer than the data's resolution 0 days 00:15:00"),
        ({"freq": "7min"}, "freq", "divide one day"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, object], field: str, words: str) -> None:
    arguments: dict[str, object] = {"timestamp_column": "ts", "target_column": "kw", **kwargs}
    with pytest.raises(ForecastError) as error:
        from_frame(frame([1.0, 2.0, 3.0]), **arguments)  # type: ignore[arg-type]
    assert error.value.field == field
    assert words in str(error.value)


def test_durations_are_checked() -> None:
    assert parse_freq("30min") == pd.Timedelta("30min")
    with pytest.raises(ForecastError, match="freq: 'soon'"):
        parse_freq("soon")
    with pytest.raises(ForecastError, match="whole number of intervals"):
        parse_horizon("45min", pd.Timedelta("30min"))
    with pytest.raises(ForecastError, match="limit of 7 days"):
        parse_horizon("8D", pd.Timedelta("1h"))
