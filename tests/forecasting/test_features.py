"""Features never use a value from after their interval's cut-off."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.features import FeatureSpec, cutoffs, make_features

HOUR = pd.Timedelta("1h")


def series(days: int = 40, seed: int = 0, freq: str = "1h") -> pd.Series:
    index = pd.date_range(
        "2026-01-01", periods=days * int(pd.Timedelta("1D") / pd.Timedelta(freq)), freq=freq
    )
    values = np.random.default_rng(seed).gamma(2.0, 0.5, len(index))
    return pd.Series(values, index=index)


def test_cutoffs_day_ahead_and_intraday() -> None:
    index = pd.DatetimeIndex(["2026-01-02 00:00", "2026-01-02 05:00", "2026-01-02 13:00"])
    day = cutoffs(index, FeatureSpec(HOUR))
    assert list(day) == [pd.Timestamp("2026-01-02")] * 3
    six = cutoffs(index, FeatureSpec(HOUR, horizon=6 * HOUR))
    assert list(six) == [
        pd.Timestamp(s) for s in ("2026-01-02 00:00", "2026-01-02 00:00", "2026-01-02 12:00")
    ]
    noon = cutoffs(index, FeatureSpec(HOUR, cutoff_offset=12 * HOUR))
    assert list(noon) == [pd.Timestamp("2026-01-01 12:00")] * 2 + [pd.Timestamp("2026-01-02 12:00")]


def test_lags_and_anchored_values() -> None:
    y = series()
    X = make_features(y, FeatureSpec(HOUR, country="FR"))
    t = pd.Timestamp("2026-01-30 15:00")
    assert X.loc[t, "lag_1d"] == y[t - pd.Timedelta("1D")]
    assert X.loc[t, "lag_7d"] == y[t - pd.Timedelta("7D")]
    assert X.loc[t, "last"] == y[pd.Timestamp("2026-01-29 23:00")]  # the last hour before midnight
    assert X.loc[t, "lead_h"] == 15
    assert X.loc[t, "last_day_mean"] == pytest.approx(y["2026-01-29"].mean())
    assert X.loc[pd.Timestamp("2026-01-01 10:00"), "holiday"] == 1.0  # New Year's Day
    assert X.loc[t, "holiday"] == 0.0


def test_two_day_horizon_starts_its_lags_at_two_days() -> None:
    spec = FeatureSpec(HOUR, horizon=pd.Timedelta("2D"))
    assert spec.first_lag_days == 2
    assert "lag_1d" not in spec.columns()


@settings(max_examples=25, deadline=None)
@given(
    day=st.integers(30, 38),
    hours=st.sampled_from([1, 6, 24]),
    offset_h=st.sampled_from([0, 6]),
    freq=st.sampled_from(["15min", "1h"]),
)
def test_no_feature_changes_when_the_future_changes(
    day: int, hours: int, offset_h: int, freq: str
) -> None:
    """Rewriting everything from a cut-off on leaves that block's features as they were."""
    spec = FeatureSpec(pd.Timedelta(freq), horizon=hours * HOUR, cutoff_offset=offset_h * HOUR)
    y = series(freq=freq)
    cut = pd.Timestamp("2026-01-01") + pd.Timedelta(days=day) + offset_h * HOUR
    block = pd.date_range(cut, cut + hours * HOUR, freq=freq, inclusive="left")
    before = make_features(y, spec, at=block)
    changed = y.copy()
    changed[changed.index >= cut] = 1000.0
    after = make_features(changed, spec, at=block)
    pd.testing.assert_frame_equal(before, after)
    # ...and the features do use the history: changing the past changes them.
    past = y.copy()
    past[(past.index < cut) & (past.index >= cut - pd.Timedelta("1D"))] += 5.0
    assert not make_features(past, spec, at=block).equals(before)
