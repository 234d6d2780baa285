"""An event's delivered response from metered power, checked against hand-worked numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dispatch.baselines import BaselineError
from dispatch.measure import measure

START = pd.Timestamp("2026-11-20T17:00Z")


def event(values: list[float], minutes: int = 15) -> list[dict[str, object]]:
    step = pd.Timedelta(minutes=minutes)
    return [
        {"start": (START + i * step).isoformat(), "minutes": minutes, "value": v}
        for i, v in enumerate(values)
    ]


def minutes(start: pd.Timestamp, end: pd.Timestamp, kw: float) -> pd.Series:
    index = pd.date_range(start, end, freq="1min", inclusive="left")
    return pd.Series(kw, index=index)


def test_a_battery_measured_meter_before() -> None:
    # Idle at 0.5 kW (self-use) for the hour before; asked for -4 kW, gave -3 kW.
    readings = pd.concat(
        [
            minutes(START - pd.Timedelta(hours=1), START, 0.5),
            minutes(START, START + pd.Timedelta(minutes=30), -3.0),
        ]
    )
    result = measure(event([-4.0, -4.0]), readings, "battery")
    assert result.method == "meter_before"
    assert list(result.intervals["baseline_kw"]) == [0.5, 0.5]
    assert list(result.intervals["requested_kw"]) == [4.5, 4.5]
    assert list(result.intervals["delivered_kw"]) == [3.5, 3.5]
    assert result.requested_kwh == pytest.approx(2 * 4.5 * 0.25)
    assert result.delivered_kwh == pytest.approx(2 * 3.5 * 0.25)
    assert result.performance == pytest.approx(3.5 / 4.5)


def test_a_load_with_ten_days_of_history_gets_caiso_10_in_10() -> None:
    # A thermostat drawing 2 kW on every weekday at the event's hours, 1 kW the rest
    # of the day; in the event it holds 1.2 kW.
    index = pd.date_range(START - pd.Timedelta(days=20), START, freq="15min", inclusive="left")
    hours = index.hour + index.minute / 60
    load = pd.Series(np.where((hours >= 17) & (hours < 18), 2.0, 1.0), index=index)
    during = pd.Series(1.2, index=pd.date_range(START, periods=2, freq="15min"))
    result = measure(event([1.0, 1.0]), pd.concat([load, during]), "thermostat")
    assert result.method == "caiso_10_in_10"
    # The day-of adjustment compares the hours before the event: equal, so none.
    assert list(result.intervals["baseline_kw"]) == pytest.approx([2.0, 2.0])
    assert result.delivered_kwh == pytest.approx(2 * 0.8 * 0.25)
    assert result.requested_kwh == pytest.approx(2 * 1.0 * 0.25)


def test_missing_readings_name_the_interval() -> None:
    readings = minutes(START - pd.Timedelta(hours=1), START + pd.Timedelta(minutes=15), 0.0)
    with pytest.raises(BaselineError, match="readings: none in the event's interval"):
        measure(event([-4.0, -4.0]), readings, "battery")


def test_a_pool_pump_shed_by_simple_levels() -> None:
    # Running at 1.2 kW for the hour before; level 1 (off) for a quarter hour, then 0
    # (normal): it stopped, then ran again at 1.1 kW.
    readings = pd.concat(
        [
            minutes(START - pd.Timedelta(hours=1), START, 1.2),
            minutes(START, START + pd.Timedelta(minutes=15), 0.0),
            minutes(START + pd.Timedelta(minutes=15), START + pd.Timedelta(minutes=30), 1.1),
        ]
    )
    result = measure(event([1, 0]), readings, "pool_pump", signal="SIMPLE")
    assert result.method == "meter_before"  # no ten days of history
    assert list(result.intervals["setpoint_kw"]) == pytest.approx([0.0, 1.2])
    assert list(result.intervals["requested_kw"]) == pytest.approx([1.2, 0.0])
    assert list(result.intervals["delivered_kw"]) == pytest.approx([1.2, 0.1])
    assert result.requested_kwh == pytest.approx(1.2 * 0.25)
    assert result.delivered_kwh == pytest.approx((1.2 + 0.1) * 0.25)
