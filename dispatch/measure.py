"""One event's delivered response, from the device's metered power and a baseline.

For each interval of the event: the baseline (what the device would have drawn), the
setpoint it was sent, the metered power (mean of its readings in the interval), the
requested change (baseline - setpoint, never below zero) and the delivered change
(baseline - metered). A storage device (battery, EV) is measured meter-before (its
mean power in the hour before the event, held through it); other loads by CAISO's
10-in-10 with day-of adjustment when ten eligible days of readings exist, else
meter-before, and the result says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd

from dispatch.baselines import BaselineError, Event, caiso_10_in_10

#: Registry device types measured meter-before: their baseline is what they did just before.
STORAGE_TYPES = frozenset({"battery", "c_and_i_storage", "ev", "ev_charger"})
#: Registry device types switched on and off (SIMPLE levels), not set to a power.
ON_OFF_TYPES = frozenset({"pool_pump", "water_heater"})
#: Minutes of readings before the event that meter-before averages.
METER_BEFORE_MINUTES = 60.0


@dataclass(frozen=True)
class Measured:
    """An event measured: per interval (index: interval starts) ``baseline_kw``,
    ``setpoint_kw``, ``metered_kw``, ``requested_kw`` and ``delivered_kw``; totals [kWh]
    and the baseline method used."""

    intervals: pd.DataFrame
    requested_kwh: float
    delivered_kwh: float
    method: str

    @property
    def performance(self) -> float | None:
        """Delivered over requested energy (``None`` when nothing was requested)."""
        if self.requested_kwh <= 0:
            return None
        return self.delivered_kwh / self.requested_kwh

    def as_dict(self) -> dict[str, Any]:
        rows = self.intervals.reset_index(names="start")
        rows["start"] = rows["start"].map(lambda t: t.isoformat())
        return {
            "method": self.method,
            "requested_kwh": self.requested_kwh,
            "delivered_kwh": self.delivered_kwh,
            "performance": self.performance,
            "intervals": rows.to_dict("records"),
        }


def metered_kw(telemetry: pd.DataFrame) -> pd.Series:
    """Readings as the registry returns them (``timestamp``, ``p_kw``) as a series."""
    return pd.Series(
        telemetry["p_kw"].to_numpy(dtype=float), index=pd.DatetimeIndex(telemetry["timestamp"])
    )


def interval_length(interval: dict[str, Any]) -> timedelta:
    """An interval's length, to the millisecond (``minutes`` may be a fraction such as
    1/6 for ten seconds)."""
    return timedelta(seconds=round(float(interval["minutes"]) * 60, 3))


def measure(
    intervals: Sequence[dict[str, Any]],
    readings: pd.Series,
    device_type: str,
    signal: str = "LOAD_DISPATCH",
) -> Measured:
    """Measure an event sent as ``intervals`` (``{"start", "minutes", "value"}``:
    setpoints [kW], or for a ``SIMPLE`` event levels, where 1-3 asks the load to be off
    and 0 asks nothing) from ``readings`` (metered kW indexed by UTC time).

    Raises
    ------
    BaselineError
        No reading inside an interval, or too few before the event for a baseline.
    """
    if not intervals:
        raise BaselineError("intervals: the event has none")
    starts = pd.DatetimeIndex([pd.Timestamp(i["start"]) for i in intervals]).tz_convert("UTC")
    minutes = float(intervals[0]["minutes"])
    step = pd.Timedelta(interval_length(intervals[0]))
    if any(float(i["minutes"]) != minutes for i in intervals):
        raise BaselineError("intervals: measured events have intervals of one length")
    readings = readings.sort_index()
    readings.index = pd.DatetimeIndex(readings.index).tz_convert("UTC")
    event = Event(starts[0], starts[-1] + step)
    # Metered power on the event's grid, before and during the event.
    grid = readings.resample(step, origin=starts[0]).mean()
    metered = grid.reindex(starts)
    if metered.isna().any():
        missing = [t.isoformat() for t in metered.index[metered.isna()]]
        raise BaselineError(f"readings: none in the event's interval(s) {', '.join(missing)}")
    method = "meter_before"
    baseline: pd.Series | None = None
    # CAISO's baseline works on the clock's grid: events that start on it only.
    on_clock = starts[0] == starts[0].floor(step)
    if device_type not in STORAGE_TYPES and on_clock:
        try:
            baseline = caiso_10_in_10(grid, event).reindex(starts)
            method = "caiso_10_in_10"
        except BaselineError:
            baseline = None
    if baseline is None or baseline.isna().any():
        # Meter before (NAESB WEQ-015): the mean metered power in the minutes before
        # the event, held through it.
        method = "meter_before"
        span = pd.Timedelta(minutes=max(METER_BEFORE_MINUTES, minutes))
        before = readings[(readings.index >= starts[0] - span) & (readings.index < starts[0])]
        if before.dropna().empty:
            raise BaselineError(
                f"readings: none in the {span.total_seconds() / 60:g} minutes before the event"
            )
        baseline = pd.Series(float(before.mean()), index=starts)
    values = pd.Series([float(i["value"]) for i in intervals], index=starts)
    # Level 1-3 asks the load to be off; level 0 asks nothing.
    setpoint = baseline.where(values < 1, 0.0) if signal == "SIMPLE" else values
    frame = pd.DataFrame(
        {
            "baseline_kw": baseline.to_numpy(),
            "setpoint_kw": setpoint.to_numpy(),
            "metered_kw": metered.to_numpy(),
        },
        index=starts,
    )
    frame["requested_kw"] = (frame["baseline_kw"] - frame["setpoint_kw"]).clip(lower=0.0)
    frame["delivered_kw"] = frame["baseline_kw"] - frame["metered_kw"]
    hours = minutes / 60
    return Measured(
        frame,
        float(frame["requested_kw"].sum() * hours),
        float(frame["delivered_kw"].sum() * hours),
        method,
    )
