"""Baselines for measurement and verification: what a device would have drawn without
the event, and the response it delivered against that.

Every baseline takes a device's (or site's) metered load as a pandas Series [kW] on a
regular grid of tz-aware interval starts (positive = drawn from the grid, as
everywhere in OpenVPP) and an event window, and returns the baseline [kW] for each
interval of the window. Delivered response is ``baseline - metered``; for a battery or
generator, whose export is negative load, that is the metered export minus the
baseline export, the same formula.

Days are the load's own calendar days (its time zone). "Event days" passed in are
excluded from the days a baseline averages, as every method prescribes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import holidays
import numpy as np
import pandas as pd

from forecasting.errors import ForecastError
from forecasting.models import LoadForecaster
from forecasting.profile import profile_forecast

DAY = pd.Timedelta("1D")


class BaselineError(ValueError):
    """A baseline that cannot be computed: the message says which input and why."""


@dataclass(frozen=True)
class Event:
    """An event window ``[start, end)`` (tz-aware, in the load's time zone or any)."""

    start: pd.Timestamp
    end: pd.Timestamp

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise BaselineError("event: start and end need a time zone")
        if self.end <= self.start:
            raise BaselineError("event: end must be after start")


def _grid(load: pd.Series) -> pd.Timedelta:
    index = pd.DatetimeIndex(load.index)
    if index.tz is None:
        raise BaselineError("load: timestamps need a time zone")
    if len(index) < 2:
        raise BaselineError("load: at least two readings are needed")
    step = pd.Timedelta(pd.Series(index).diff().dropna().min())
    if DAY % step != pd.Timedelta(0):
        raise BaselineError(f"load: resolution {step} does not divide a day")
    return step


def _window(load: pd.Series, event: Event) -> pd.DatetimeIndex:
    step = _grid(load)
    tz = pd.DatetimeIndex(load.index).tz
    start, end = event.start.tz_convert(tz), event.end.tz_convert(tz)
    return pd.date_range(start.floor(step), end, freq=step, inclusive="left")


def _day_type(day: pd.Timestamp, country: str | None) -> str:
    calendar = holidays.country_holidays(country, years=day.year) if country else {}
    return "weekend" if day.day_of_week >= 5 or day.date() in calendar else "weekday"


def _local_day(stamp: pd.Timestamp) -> pd.Timestamp:
    """The naive calendar day of ``stamp`` in its own time zone."""
    return stamp.tz_localize(None).normalize()


def _same_time_on(load: pd.Series, times: pd.DatetimeIndex, day: pd.Timestamp) -> np.ndarray:
    """The load on calendar ``day`` (naive) at the wall-clock times of day of ``times``
    (taken relative to the first one's day); NaN where missing or where the wall-clock
    time does not exist that day (a daylight-saving change)."""
    tz = pd.DatetimeIndex(load.index).tz
    offsets = times.tz_localize(None) - _local_day(times[0])
    wall = pd.DatetimeIndex(day + offsets)
    stamps = wall.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    return load.reindex(stamps).to_numpy(dtype=float)


def eligible_days(
    load: pd.Series,
    event: Event,
    count: int,
    *,
    event_days: Iterable[pd.Timestamp] = (),
    country: str | None = None,
    lookback_days: int = 45,
) -> list[pd.Timestamp]:
    """The ``count`` most recent days before the event's day of the same type (working
    day, or weekend/holiday), not event days, with the load complete over the event's
    times of day; most recent first, as naive calendar days."""
    window = _window(load, event)
    event_day = _local_day(window[0])
    kind = _day_type(event_day, country)
    tz = pd.DatetimeIndex(load.index).tz
    excluded = {
        _local_day(pd.Timestamp(d).tz_convert(tz))
        if pd.Timestamp(d).tzinfo
        else pd.Timestamp(d).normalize()
        for d in event_days
    }
    chosen: list[pd.Timestamp] = []
    for back in range(1, lookback_days + 1):
        day = event_day - back * DAY  # naive calendar arithmetic: DST-proof
        if day in excluded or _day_type(day, country) != kind:
            continue
        if np.isnan(_same_time_on(load, window, day)).any():
            continue
        chosen.append(day)
        if len(chosen) == count:
            break
    return chosen


def _adjustment_window(
    window: pd.DatetimeIndex, hours_before: float, gap_hours: float
) -> pd.DatetimeIndex:
    step = window[1] - window[0] if len(window) > 1 else pd.Timedelta("15min")
    end = window[0] - pd.Timedelta(hours=gap_hours)
    return pd.date_range(end - pd.Timedelta(hours=hours_before), end, freq=step, inclusive="left")


def _before_on(
    load: pd.Series, window: pd.DatetimeIndex, adjust: pd.DatetimeIndex, day: pd.Timestamp
) -> np.ndarray:
    """The load on ``day`` at the adjustment window's wall-clock times (relative to
    the event's day, so a window that starts the evening before stays there)."""
    tz = pd.DatetimeIndex(load.index).tz
    offsets = adjust.tz_localize(None) - _local_day(window[0])
    stamps = pd.DatetimeIndex(day + offsets).tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    return load.reindex(stamps).to_numpy(dtype=float)


def caiso_10_in_10(
    load: pd.Series,
    event: Event,
    *,
    event_days: Iterable[pd.Timestamp] = (),
    country: str | None = None,
    cap: float = 0.20,
) -> pd.Series:
    """CAISO's 10-in-10 customer load baseline with a day-of adjustment.

    The average load, interval by interval, of the 10 most recent non-event working
    days before the event (4 of the last 4 weekend days or holidays for an event on
    one), scaled by the day-of ratio: actual over baseline load in the three hours
    that end one hour before the event, limited to ``1 ± cap`` [1]_.

    References
    ----------
    .. [1] California ISO, *Business Practice Manual for Metering*, section on the
       Customer Load Baseline methodology (10-in-10 with load point adjustment);
       California Public Utilities Commission Decision 09-08-027 (2009).
    """
    window = _window(load, event)
    weekend = _day_type(_local_day(window[0]), country) == "weekend"
    days = eligible_days(load, event, 4 if weekend else 10, event_days=event_days, country=country)
    needed = 4 if weekend else 10
    if len(days) < needed:
        raise BaselineError(
            f"load: {len(days)} eligible day(s) before {window[0].date()}; 10-in-10 needs {needed}"
        )
    profile = np.mean([_same_time_on(load, window, d) for d in days], axis=0)
    adjust = _adjustment_window(window, 3.0, 1.0)
    actual = load.reindex(adjust).to_numpy(dtype=float)
    expected = np.mean([_before_on(load, window, adjust, d) for d in days], axis=0)
    ratio = 1.0
    if not np.isnan(actual).any() and expected.sum() > 0:
        ratio = float(np.clip(actual.sum() / expected.sum(), 1 - cap, 1 + cap))
    return pd.Series(profile * ratio, index=window, name="baseline_kw")


def high_x_of_y(
    load: pd.Series,
    event: Event,
    x: int = 4,
    y: int = 5,
    *,
    event_days: Iterable[pd.Timestamp] = (),
    country: str | None = None,
    adjustment_hours: float = 3.0,
    gap_hours: float = 1.0,
) -> pd.Series:
    """PJM-style "high X of Y" customer baseline load with a symmetric additive
    adjustment.

    Of the ``y`` most recent non-event days of the event day's type, the ``x`` with the
    highest average load over the event's hours are averaged interval by interval; the
    baseline is then shifted by the difference between actual and baseline load over
    the ``adjustment_hours`` that end ``gap_hours`` before the event [1]_ (PJM uses high
    4 of 5 working days and high 2 of 3 weekend days).

    References
    ----------
    .. [1] PJM Interconnection, *Manual 11: Energy & Ancillary Services Market
       Operations*, section 10 (Demand Resource participation), Customer Baseline
       Load calculation.
    """
    if not 0 < x <= y:
        raise BaselineError(f"x, y: need 0 < x <= y, got {x} of {y}")
    window = _window(load, event)
    days = eligible_days(load, event, y, event_days=event_days, country=country)
    if len(days) < y:
        raise BaselineError(
            f"load: {len(days)} eligible day(s) before {window[0].date()}; high {x} of {y} "
            f"needs {y}"
        )
    profiles = np.array([_same_time_on(load, window, d) for d in days])
    highest = np.argsort(-profiles.mean(axis=1), kind="stable")[:x]
    chosen = [days[i] for i in sorted(highest)]
    profile = profiles[sorted(highest)].mean(axis=0)
    adjust = _adjustment_window(window, adjustment_hours, gap_hours)
    actual = load.reindex(adjust).to_numpy(dtype=float)
    expected = np.mean([_before_on(load, window, adjust, d) for d in chosen], axis=0)
    shift = 0.0 if np.isnan(actual).any() else float(actual.mean() - expected.mean())
    return pd.Series(profile + shift, index=window, name="baseline_kw")


def model_baseline(
    load: pd.Series,
    event: Event,
    forecaster: LoadForecaster | None = None,
    days: int = 28,
) -> pd.Series:
    """The forecasting models' baseline: the P50 of a day-ahead forecast issued at
    midnight of the event's day from the load before it (:mod:`forecasting`), with a
    trained ``forecaster``; without one, the median of the same time of day over the
    last ``days`` days (:func:`forecasting.profile.profile_forecast`). Either way no
    reading of the event's day is used, so the event cannot lower its own baseline.
    """
    window = _window(load, event)
    step = _grid(load)
    cutoff = window[0].normalize()
    history = load[load.index < cutoff]
    try:
        if forecaster is not None:
            forecast = forecaster.predict(history, cutoff=cutoff)
        else:
            forecast = profile_forecast(history, cutoff, DAY, step, days=days)
    except ForecastError as exc:
        raise BaselineError(f"load: {exc}") from exc
    return forecast["p50"].reindex(window).rename("baseline_kw")


def meter_before(load: pd.Series, event: Event, *, minutes: float = 15.0) -> pd.Series:
    """Meter before / meter after for batteries and other dispatchable resources: the
    average metered power over the ``minutes`` before the event, held through it [1]_.

    References
    ----------
    .. [1] NAESB WEQ Business Practice Standards, WEQ-015 *Measurement and Verification
       of Wholesale Electricity Demand Response*, "Meter Before / Meter After"
       performance evaluation methodology.
    """
    window = _window(load, event)
    before = load[
        (load.index >= window[0] - pd.Timedelta(minutes=minutes)) & (load.index < window[0])
    ]
    if before.dropna().empty:
        raise BaselineError(f"load: no reading in the {minutes:g} minutes before the event")
    return pd.Series(float(before.mean()), index=window, name="baseline_kw")


def delivered(baseline: pd.Series, metered: pd.Series) -> pd.Series:
    """Delivered response [kW] per interval: ``baseline - metered`` (NaN where either
    is missing)."""
    return (baseline - metered.reindex(baseline.index)).rename("delivered_kw")


@dataclass(frozen=True)
class Performance:
    """An event's requested and delivered response.

    Attributes
    ----------
    intervals : pandas.DataFrame
        Per interval: ``requested_kw``, ``delivered_kw`` (all devices).
    performance_ratio : float
        Delivered over requested energy (may exceed 1).
    delivery_ratio : dict
        Per device: delivered over its requested energy, within [0, 1] (what its
        delivery record keeps).
    requested_kwh, delivered_kwh : dict
        Per device, over the event.
    """

    intervals: pd.DataFrame
    performance_ratio: float
    delivery_ratio: dict[str, float]
    requested_kwh: dict[str, float]
    delivered_kwh: dict[str, float]


def performance(
    requested_kw: pd.DataFrame, delivered_kw: pd.DataFrame, step_h: float | None = None
) -> Performance:
    """Score an event from per-device requested and delivered response [kW] (columns:
    device ids; index: interval starts). Missing delivered values count as zero."""
    if requested_kw.empty:
        raise BaselineError("requested_kw: nothing was requested")
    index = requested_kw.index
    if step_h is None:
        stamps = pd.DatetimeIndex(index)
        step_h = (stamps[1] - stamps[0]) / pd.Timedelta("1h") if len(stamps) > 1 else 0.25
    got = delivered_kw.reindex(index=index, columns=requested_kw.columns).fillna(0.0)
    requested = requested_kw.sum(axis=0) * step_h
    delivered_energy = got.sum(axis=0) * step_h
    ratio = {
        str(d): float(np.clip(delivered_energy[d] / requested[d], 0, 1))
        if requested[d] > 0
        else 1.0
        for d in requested_kw.columns
    }
    total_requested = float(requested.sum())
    return Performance(
        intervals=pd.DataFrame(
            {"requested_kw": requested_kw.sum(axis=1), "delivered_kw": got.sum(axis=1)}
        ),
        performance_ratio=float(delivered_energy.sum()) / total_requested
        if total_requested > 0
        else float("nan"),
        delivery_ratio=ratio,
        requested_kwh={str(d): float(v) for d, v in requested.items()},
        delivered_kwh={str(d): float(v) for d, v in delivered_energy.items()},
    )
