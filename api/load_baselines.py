"""Baselines of controllable loads from their own telemetry, for planning.

A load's baseline is what it would draw without a plan [kW], per interval of the
planning horizon; a plan can only reduce a load from there. Heat pumps, thermostats,
pool pumps and water heaters (:data:`BASELINE_TYPES`) take it from their metered
readings, one of three ways, and the plan's notes say how many took which:

- ``recent``: for a window starting soon (the caller passes ``recent``, the span to
  look back over), the mean of the load's readings over that span before now, held
  over the horizon: what it does now is what it would do then.
- ``profile``: otherwise, per interval, the mean of its readings in the same
  15-minute slot of the UTC day over the last :data:`PROFILE_DAYS` days: on days of
  the same type (working day or weekend) when at least :data:`MIN_DAYS` of them have a
  reading in the slot, else on all days; a slot never seen takes the mean of all its
  readings. A load needs readings on :data:`MIN_DAYS` days for a profile.
- ``nominal``: without such readings, the registry row's figure
  (:mod:`api.planning`).

EV chargers keep their session model: whether a car is plugged in is not something a
charger's own past hours foretell well, and measurement treats them as storage.

How the plan's baseline relates to what measurement uses
--------------------------------------------------------
Measurement (:func:`api.measurement.measure_event`, :func:`dispatch.measure.measure`)
takes a load's baseline from the same readings: CAISO's 10-in-10 (the mean of the same
interval on the ten most recent working days, or four weekend days, with complete
readings, scaled by a day-of ratio from the three hours that end an hour before the
event, within ±20%) when ten such days exist, else meter-before (the mean of its
readings in the hour before the event, held through it). Against that baseline it
counts ``requested = baseline - setpoint`` and ``delivered = baseline - metered``. The
setpoint a device gets is the plan's baseline minus the reduction the plan expects of
it, so the two agree when the baselines do: every kW the plan's baseline is above
measurement's is a kW the plan expects and measurement neither requests nor credits.

- ``recent`` is meter-before taken when the plan is made rather than when the event
  starts: the same figure for an event starting now, and for one starting within the
  hour an average over mostly the same readings.
- ``profile`` is what 10-in-10 averages, with its split by type of day, over the days
  at hand (up to 28 rather than the ten most recent) and without the day-of
  adjustment, which needs the hours just before the event and so cannot be known
  when planning ahead. With fewer than ten days of readings measurement falls back to
  meter-before, of which the profile of a load with daily habits is the forecast.
- ``nominal`` is a figure from the device's rating, not from what it draws; a load
  drawing less than that is expected to give more than measurement will find.

For an on/off load (``SIMPLE`` levels) measurement asks for the whole baseline in each
interval where the level sheds it, so the plan, which may shed part of a baseline,
expects no more than what is asked. What remains different shows in each device's
delivery record (delivered over requested energy), which the plan uses as the
device's delivery factor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from optimizer.problem import Horizon
from registry.tables import Device, Reading

#: Loads whose baseline comes from their telemetry.
BASELINE_TYPES = frozenset({"heat_pump", "thermostat", "pool_pump", "water_heater"})
#: Days of history a profile averages [d].
PROFILE_DAYS = 28
#: Days with readings a profile needs, and a slot's mean by type of day.
MIN_DAYS = 3
#: Resolution of the profile: a slot of the day.
SLOT = pd.Timedelta(minutes=15)
#: How each baseline was made, in the order notes name them.
METHODS = ("recent", "profile", "nominal")


@dataclass(frozen=True)
class LoadBaselines:
    """Per device id: its baseline on the horizon [kW] (``recent`` and ``profile``
    only) and how it was made (every load asked about)."""

    kw: dict[str, np.ndarray]
    method: dict[str, str]

    def counts(self) -> dict[str, int]:
        """How many loads got each kind of baseline."""
        found = list(self.method.values())
        return {m: found.count(m) for m in METHODS if m in found}

    def note(self, recent: timedelta | None) -> str:
        """The plan's note: how many loads got which baseline (``recent``: the span
        the recent power was averaged over)."""
        words = {
            "recent": f"their mean power over the last {recent}",
            "profile": f"their mean by time of day over the last {PROFILE_DAYS} days",
            "nominal": "their registry rating (no telemetry to go on)",
        }
        parts = [f"{n} from {words[m]}" for m, n in self.counts().items()]
        return "load baselines: " + "; ".join(parts)


def profiles(
    readings: pd.DataFrame, targets: pd.DatetimeIndex, min_days: int = MIN_DAYS
) -> pd.DataFrame:
    """Each device's mean by 15-minute slot of the day at ``targets`` (slot starts)
    from ``readings`` (``device_id``, ``ts`` UTC, ``p_kw``), by type of day where
    ``min_days`` days of that type have the slot; columns only for devices with
    readings on ``min_days`` days."""
    if readings.empty:
        return pd.DataFrame(index=targets)
    slot = readings["ts"].dt.floor(SLOT)
    grid = readings.assign(slot=slot).pivot_table(
        index="slot", columns="device_id", values="p_kw", aggfunc="mean"
    )
    days = grid.notna().groupby(pd.DatetimeIndex(grid.index).normalize()).any().sum()
    grid = grid.loc[:, days[days >= min_days].index]
    if grid.empty:
        return pd.DataFrame(index=targets)
    stamps = pd.DatetimeIndex(grid.index)
    of_day = (stamps - stamps.normalize()) // SLOT
    weekend = stamps.day_of_week >= 5
    typed = grid.groupby([of_day, weekend]).mean()
    seen = grid.groupby([of_day, weekend]).count()
    plain = grid.groupby(of_day).mean()
    wanted = pd.MultiIndex.from_arrays(
        [(targets - targets.normalize()) // SLOT, targets.day_of_week >= 5]
    )
    by_type = typed.reindex(wanted).to_numpy()
    enough = seen.reindex(wanted).fillna(0).to_numpy() >= min_days
    values = np.where(enough, by_type, plain.reindex(wanted.get_level_values(0)).to_numpy())
    out = pd.DataFrame(values, index=targets, columns=grid.columns)
    return out.fillna(grid.mean())


def on_horizon(fine: pd.DataFrame, horizon: Horizon) -> pd.DataFrame:
    """Values per 15-minute slot onto the horizon: each interval takes the mean of the
    slots that start in it, or the slot it falls in when shorter than a slot."""
    step = pd.Timedelta(horizon.resolution)
    if step >= SLOT:
        position = (pd.DatetimeIndex(fine.index) - horizon.start) // step
        out = fine.groupby(position).mean().reindex(range(horizon.intervals))
    else:
        out = fine.reindex(horizon.index.floor(SLOT))
    out.index = horizon.index
    return out


def _history(
    session: Session, keys: Mapping[int, str], start: datetime, end: datetime
) -> pd.DataFrame:
    rows = session.execute(
        select(Reading.device_key, Reading.ts, Reading.p_kw).where(
            Reading.device_key.in_(list(keys)), Reading.ts >= start, Reading.ts < end
        )
    ).all()
    device_keys, stamps, power = (list(c) for c in zip(*rows, strict=True)) if rows else ([],) * 3
    return pd.DataFrame(
        {
            "device_id": pd.Series(device_keys, dtype=object).map(keys),
            "ts": pd.to_datetime(pd.Series(stamps, dtype=object), utc=True),
            "p_kw": pd.Series(power, dtype=float),
        }
    )


def load_baselines(
    session: Session,
    devices: Sequence[Device],
    horizon: Horizon,
    *,
    now: datetime,
    recent_kw: Mapping[int, float] | None = None,
) -> LoadBaselines:
    """Baselines over ``horizon`` of the ``devices`` of :data:`BASELINE_TYPES` from their
    readings before ``now``; with ``recent_kw`` (mean power by device key over the
    last span, for a window starting soon) those in it hold that power.

    Baselines are within ``[0, p_max_kw]``: a load neither feeds the grid nor draws
    above its rating.
    """
    loads = [d for d in devices if d.device_type in BASELINE_TYPES]
    rating = {d.device_id: max(d.p_max_kw, 0.0) for d in loads}
    recent_kw = recent_kw or {}
    kw: dict[str, np.ndarray] = {}
    method: dict[str, str] = {}
    for device in loads:
        if device.device_key in recent_kw:
            kw[device.device_id] = np.full(horizon.intervals, recent_kw[device.device_key])
            method[device.device_id] = "recent"
    rest = {d.device_key: d.device_id for d in loads if d.device_id not in kw}
    if rest:
        start = pd.Timestamp(now) - pd.Timedelta(days=PROFILE_DAYS)
        history = _history(session, rest, start.to_pydatetime(), now)
        targets = pd.date_range(horizon.start.floor(SLOT), horizon.end, freq=SLOT, inclusive="left")
        spread = on_horizon(profiles(history, targets), horizon)
        for device_id in spread.columns:
            kw[str(device_id)] = spread[device_id].to_numpy(dtype=float)
            method[str(device_id)] = "profile"
    for device in loads:
        method.setdefault(device.device_id, "nominal")
        if device.device_id in kw:
            kw[device.device_id] = np.clip(kw[device.device_id], 0.0, rating[device.device_id])
    return LoadBaselines(kw, method)
