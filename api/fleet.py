"""From the registry to an optimizer problem: the enrolled devices of a feeder or
region, their state from telemetry, and the uncontrolled load from a forecast.

A device takes part when it is active and has an open enrolment (its VEN id is then
known). Its planning inputs come from the registry: the latest state of charge it
reported (storage), its delivery record (delivered over requested energy), and the
defaults of :mod:`api.planning` for what the registry cannot say. The load behind the
meters that nobody controls (devices without an open enrolment, smart meters) is
forecast over the horizon from their telemetry with
:func:`api.forecasts.forecast_scope` (P50) and carried by one site per feeder; without
such telemetry it is taken as zero and the notes say so. Heat pumps, thermostats, pool
pumps and water heaters with telemetry take their baseline from their own readings
(:mod:`api.load_baselines`: recent power for a window starting soon, else their
profile by time of day), and the notes say how many loads got which baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from api.forecasts import ForecastQuery, forecast_scope
from api.load_baselines import load_baselines
from api.planning import fleet_from_rows
from optimizer.devices import Fleet, Site
from optimizer.problem import Horizon
from registry.errors import InvalidInput, NotFound
from registry.tables import Device, Enrollment, Reading

#: Registry fields that make a device row for :func:`api.planning.fleet_from_rows`.
DEVICE_FIELDS = (
    "device_type",
    "make",
    "model",
    "serial",
    "owner_name",
    "p_max_kw",
    "p_min_kw",
    "e_max_kwh",
    "site_id",
    "feeder",
    "region",
)
#: Resolution of the uncontrolled-load forecast [min].
BASE_LOAD_MINUTES = 15
#: Loads that can reduce (not storage, not generation, not meters).
LOAD_TYPES = frozenset({"ev_charger", "ev", "heat_pump", "thermostat", "pool_pump", "water_heater"})
#: A load averaging below this share of its rating is off.
IDLE_FRAC = 0.05
#: State of charge older than this is not used [h].
SOC_MAX_AGE_H = 24.0


@dataclass
class RegistryFleet:
    """A scope's fleet as the optimizer sees it, with each device's VEN id."""

    fleet: Fleet
    ven_of: dict[str, str]
    device_types: dict[str, str]
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    baseline_method: str = "none"
    #: Loads left out as idle (see ``idle_within``).
    idle: list[str] = field(default_factory=list)
    #: How each load's baseline was made (``recent``, ``profile`` or ``nominal``).
    load_baselines: dict[str, str] = field(default_factory=dict)


def _mean_power(
    session: Session, keys: list[int], start: datetime, end: datetime
) -> dict[int, float]:
    """Mean metered power [kW] per device key over ``[start, end)`` (those with readings)."""
    if not keys:
        return {}
    rows = session.execute(
        select(Reading.device_key, func.avg(Reading.p_kw))
        .where(Reading.device_key.in_(keys), Reading.ts >= start, Reading.ts < end)
        .group_by(Reading.device_key)
    ).all()
    return {int(k): float(v) for k, v in rows if v is not None}


def _latest_soc(session: Session, keys: list[int], since: datetime) -> dict[int, float]:
    if not keys:
        return {}
    latest = (
        select(Reading.device_key, func.max(Reading.ts).label("ts"))
        .where(
            Reading.device_key.in_(keys),
            Reading.soc_frac.is_not(None),
            Reading.ts >= since,
        )
        .group_by(Reading.device_key)
        .subquery()
    )
    rows = session.execute(
        select(Reading.device_key, Reading.soc_frac).join(
            latest, (Reading.device_key == latest.c.device_key) & (Reading.ts == latest.c.ts)
        )
    ).all()
    return {int(k): float(v) for k, v in rows if v is not None}


def registry_fleet(
    session: Session,
    horizon: Horizon,
    *,
    feeder: str | None = None,
    region: str | None = None,
    program_id: str | None = None,
    now: datetime,
    idle_within: timedelta | None = None,
    recent: timedelta | None = None,
) -> RegistryFleet:
    """The enrolled, active devices of ``feeder`` and/or ``region`` (all when neither
    is given), enrolled in ``program_id`` when given, as a fleet over ``horizon``.

    With ``idle_within``, loads whose metered power over that span before ``now``
    averaged below :data:`IDLE_FRAC` of their rating are left out (a load that is off
    has nothing to reduce); loads without readings in the span stay in. With
    ``recent`` (a window starting soon), loads with readings in that span before
    ``now`` hold their mean power over it as their baseline; the others follow their
    profile by time of day, or their nominal baseline without telemetry
    (:func:`api.load_baselines.load_baselines`).

    Raises
    ------
    NotFound
        When no device at all is registered on the scope.
    """
    conditions: list[ColumnElement[bool]] = []
    for name, value, column in (
        ("feeder", feeder, Device.feeder),
        ("region", region, Device.region),
    ):
        if value:
            conditions.append(column == value)
            if not session.scalar(select(func.count()).select_from(Device).where(column == value)):
                raise NotFound(name, value)
    enrolled: list[ColumnElement[bool]] = [Enrollment.ended_at.is_(None)]
    if program_id:
        enrolled.append(Enrollment.program_id == program_id)
    rows = session.execute(
        select(Device, func.min(Enrollment.ven_id))
        .join(Enrollment, Enrollment.device_id == Device.device_id)
        .where(*conditions, *enrolled, Device.status == "active")
        .group_by(Device.device_key)
        .order_by(Device.device_key)
    ).all()
    name, value = (
        ("feeder", feeder) if feeder else ("region", region) if region else ("fleet", "all")
    )
    soc = _latest_soc(
        session,
        [d.device_key for d, _ in rows if d.e_max_kwh],
        now - timedelta(hours=SOC_MAX_AGE_H),
    )
    loads = [d for d, _ in rows if d.device_type in LOAD_TYPES]
    means: dict[timedelta, dict[int, float]] = {}

    def mean_over(span: timedelta) -> dict[int, float]:
        if span not in means:
            means[span] = _mean_power(session, [d.device_key for d in loads], now - span, now)
        return means[span]

    idle: list[str] = []
    if idle_within is not None:
        mean = mean_over(idle_within)
        idle = [
            d.device_id
            for d in loads
            if d.device_key in mean and mean[d.device_key] < IDLE_FRAC * max(d.p_max_kw, 0.0)
        ]
        rows = [row for row in rows if row[0].device_id not in set(idle)]
    baselines = load_baselines(
        session,
        [d for d, _ in rows],
        horizon,
        now=now,
        recent_kw=mean_over(recent) if recent is not None else None,
    )
    records: list[dict[str, Any]] = []
    ven_of: dict[str, str] = {}
    types: dict[str, str] = {}
    for device, ven_id in rows:
        record: dict[str, Any] = {k: getattr(device, k) for k in DEVICE_FIELDS}
        if device.device_key in soc:
            record["soc_initial_frac"] = str(min(max(soc[device.device_key], 0.0), 1.0))
        if device.energy_requested_kwh > 0:
            ratio = device.energy_delivered_kwh / device.energy_requested_kwh
            record["delivery_ratio"] = str(ratio)
        records.append(record)
        ven_of[device.device_id] = str(ven_id)
        types[device.device_id] = device.device_type
    built = fleet_from_rows(records, horizon, baselines=baselines.kw)
    found = RegistryFleet(
        built.fleet,
        ven_of,
        types,
        skipped=built.skipped,
        idle=idle,
        load_baselines=baselines.method,
    )
    if idle:
        found.notes.append(
            f"{len(idle)} loads averaged below {IDLE_FRAC:.0%} of their rating over the last "
            f"{idle_within}: off, nothing to reduce, left out"
        )
    if baselines.method:
        found.notes.append(baselines.note(recent))
    if not rows:
        found.notes.append(f"no active device of {name} {value} has an open enrolment")
        return found
    _add_base_load(session, found, horizon, now=now)
    return found


def _add_base_load(
    session: Session,
    found: RegistryFleet,
    horizon: Horizon,
    *,
    now: datetime,
) -> None:
    """Forecast the uncontrolled load of each feeder in the fleet (devices without an
    open enrolment, and meters) over the horizon and put it on one site of that feeder.

    The forecast runs on a 15-minute grid (telemetry's usual resolution) and each
    horizon interval takes the value of the forecast interval it falls in.
    """
    step = pd.Timedelta(minutes=BASE_LOAD_MINUTES)
    first = horizon.start.floor(step)
    span = (horizon.end - first).ceil(step)
    sites = list(found.fleet.sites)
    methods = set()
    for feeder in found.fleet.feeders:
        query = ForecastQuery(
            feeder=feeder.feeder_id,
            uncontrolled_only=True,
            cutoff=first.to_pydatetime(),
            horizon=f"{int(span / step) * BASE_LOAD_MINUTES}min",
            freq=f"{BASE_LOAD_MINUTES}min",
            history_days=28,
        )
        try:
            answer = forecast_scope(session, query, now)
        except (NotFound, InvalidInput) as exc:
            found.notes.append(
                f"feeder {feeder.feeder_id}: no forecast of the uncontrolled load ({exc}); "
                "taken as 0 kW"
            )
            continue
        p50 = answer.forecast["p50"].tz_convert("UTC")
        spread = p50.reindex(p50.index.union(horizon.index)).ffill().reindex(horizon.index)
        if spread.isna().any():
            found.notes.append(
                f"feeder {feeder.feeder_id}: the forecast misses intervals; taken as 0 kW there"
            )
            spread = spread.fillna(0.0)
        methods.add(answer.method)
        sites.append(
            Site(
                f"{feeder.feeder_id}/uncontrolled",
                feeder.feeder_id,
                base_load_kw=tuple(float(v) for v in spread),
            )
        )
    found.baseline_method = ",".join(sorted(methods)) or "none"
    if len(sites) != len(found.fleet.sites):
        found.fleet = replace(found.fleet, sites=tuple(sites))


def horizon_for(
    start: datetime, end: datetime, now: datetime, resolution_s: int, max_intervals: int = 960
) -> Horizon:
    """Intervals of ``resolution_s`` from the start of the window (or the interval
    holding ``now``, if later) past its end: as long again as the window and at least
    four hours, for storage to recover and deferred loads to run, within
    ``max_intervals`` in all."""
    step = pd.Timedelta(seconds=resolution_s)
    first = max(pd.Timestamp(start), pd.Timestamp(now).floor(step)).floor(step)
    window = (pd.Timestamp(end) - first).ceil(step)
    tail = max(window, pd.Timedelta(hours=4))
    intervals = min(int((window + tail) / step), max(max_intervals, int(window / step)))
    return Horizon(first, intervals, step.to_pytimedelta())
