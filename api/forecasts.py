"""Forecasts from stored telemetry: the load of a device, site, feeder or region.

The composition of the registry (telemetry) and :mod:`forecasting`: read the scope's
readings, put them on a grid, train a model on them and forecast the next horizon, or,
when the history is too short for a learned model, forecast from the spread of recent
days (:func:`forecasting.profile.profile_forecast`) and say so.

A scope's load is the sum of its devices' mean power per interval. An interval counts
when at least ``MIN_REPORTING`` of the devices that reported in the window reported
in it; their sum is scaled up to all of them (a device that missed a reading is taken
to behave like the others that interval). Other intervals are gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from forecasting.errors import ForecastError
from forecasting.features import DAY, FeatureSpec
from forecasting.models import LoadForecaster
from forecasting.profile import profile_forecast
from forecasting.series import parse_freq, parse_horizon
from registry.errors import InvalidInput, NotFound, Problem
from registry.tables import Device, Enrollment, Reading

MIN_REPORTING = 0.8


@dataclass(frozen=True)
class ForecastQuery:
    """What to forecast. Exactly one of ``device_id``, ``site_id``, ``feeder`` and
    ``region``."""

    device_id: str | None = None
    site_id: str | None = None
    feeder: str | None = None
    region: str | None = None
    cutoff: datetime | None = None
    horizon: str = "1D"
    freq: str = "15min"
    history_days: int = 90
    model: str = "auto"
    timezone: str = "UTC"
    country: str | None = None
    #: Only the load nobody controls: devices without an open enrolment, and meters.
    uncontrolled_only: bool = False


@dataclass
class ForecastAnswer:
    scope: dict[str, str]
    devices: int
    method: str
    cutoff: pd.Timestamp
    freq: pd.Timedelta
    horizon: pd.Timedelta
    forecast: pd.DataFrame
    history: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def scope_of(session: Session, query: ForecastQuery) -> tuple[dict[str, str], Any, int]:
    given = {
        k: v
        for k, v in (
            ("device_id", query.device_id),
            ("site_id", query.site_id),
            ("feeder", query.feeder),
            ("region", query.region),
        )
        if v
    }
    if len(given) != 1:
        raise InvalidInput(
            [
                Problem(
                    "device_id", "give exactly one of device_id, site_id, feeder and region", given
                )
            ]
        )
    [(kind, value)] = given.items()
    column = {
        "device_id": Device.device_id,
        "site_id": Device.site_id,
        "feeder": Device.feeder,
        "region": Device.region,
    }
    wanted = value.strip().lower() if kind == "device_id" else value
    condition = column[kind] == wanted
    if query.uncontrolled_only:
        enrolled = exists().where(
            Enrollment.device_id == Device.device_id, Enrollment.ended_at.is_(None)
        )
        condition = condition & (~enrolled | (Device.device_type == "smart_meter"))
    devices = session.scalar(select(func.count()).select_from(Device).where(condition)) or 0
    if not devices:
        raise NotFound(kind.replace("_id", ""), value)
    return {kind: value}, condition, devices


def scope_load(
    session: Session,
    condition: Any,
    start: pd.Timestamp,
    end: pd.Timestamp,
    freq: pd.Timedelta,
) -> tuple[pd.Series, int]:
    """The load [kW] of the devices matching ``condition`` (on the devices table) per
    interval of ``freq`` in ``[start, end)`` (UTC index), and how many devices reported
    in the window."""
    rows = session.execute(
        select(Reading.device_key, Reading.ts, Reading.p_kw)
        .join(Device, Device.device_key == Reading.device_key)
        .where(condition, Reading.ts >= start.to_pydatetime(), Reading.ts < end.to_pydatetime())
    ).all()
    grid = pd.date_range(start, end, freq=freq, inclusive="left")
    if not rows:
        return pd.Series(float("nan"), index=grid), 0
    frame = pd.DataFrame(rows, columns=["device_key", "ts", "p_kw"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["slot"] = frame["ts"].dt.floor(freq)
    per_device = frame.pivot_table(
        index="slot", columns="device_key", values="p_kw", aggfunc="mean"
    )
    per_device = per_device.reindex(grid)
    reporting = per_device.shape[1]
    present = per_device.notna().sum(axis=1)
    total = per_device.sum(axis=1) * reporting / present.where(present > 0)
    total[present < MIN_REPORTING * reporting] = float("nan")
    return total, reporting


def forecast_scope(session: Session, query: ForecastQuery, now: datetime) -> ForecastAnswer:
    """Forecast the load of a device, site or feeder from its stored telemetry."""
    try:
        freq = parse_freq(query.freq)
        horizon = parse_horizon(query.horizon, freq)
    except ForecastError as exc:
        raise InvalidInput([Problem(exc.field, exc.message)]) from exc
    scope, condition, devices = scope_of(session, query)
    issued = pd.Timestamp(query.cutoff or now)
    if issued.tzinfo is None:
        raise InvalidInput([Problem("cutoff", "needs a UTC offset")])
    issued = issued.tz_convert("UTC").ceil(freq)
    start = issued - query.history_days * DAY
    load, reporting = scope_load(session, condition, start, issued, freq)
    try:
        local = load.tz_convert(query.timezone)
    except Exception as exc:  # pytz/zoneinfo raise different types for an unknown zone
        raise InvalidInput([Problem("timezone", f"{query.timezone!r} is not a time zone")]) from exc
    cutoff_local = issued.tz_convert(query.timezone)
    notes: list[str] = []
    known = local.dropna()
    history = {
        "start": start.isoformat(),
        "end": issued.isoformat(),
        "intervals": len(local),
        "intervals_with_values": len(known),
        "devices_reporting": reporting,
    }
    spec = FeatureSpec(
        freq,
        horizon,
        cutoff_offset=cutoff_local - cutoff_local.normalize(),
        country=query.country,
    )
    method = query.model
    forecaster = LoadForecaster(spec, model="gbm" if method == "auto" else method)
    enough = (
        len(known) > 0
        and known.index[-1] - known.index[0]
        >= spec.history_needed + forecaster.min_history_days * DAY
    )
    if method == "auto":
        method = "gbm" if enough else "profile"
        if not enough:
            days = (known.index[-1] - known.index[0]).days if len(known) else 0
            notes.append(
                f"{days} days of telemetry: a learned model needs "
                f"{(spec.history_needed + forecaster.min_history_days * DAY).days}, so this "
                "forecast is the spread of the same time of day over recent days"
            )
    try:
        if method == "profile":
            forecast = profile_forecast(local, cutoff_local, horizon, freq)
        else:
            forecaster.fit(local)
            forecast = forecaster.predict(local, cutoff=cutoff_local)
            if forecaster.training_span_ is not None:
                history["training_intervals"] = forecaster.training_rows_
    except ForecastError as exc:
        raise InvalidInput([Problem(exc.field, exc.message)]) from exc
    if reporting < devices:
        notes.append(f"{devices - reporting} of {devices} devices sent no telemetry in the window")
    return ForecastAnswer(
        scope=scope,
        devices=devices,
        method=method,
        cutoff=cutoff_local,
        freq=freq,
        horizon=horizon,
        forecast=forecast,
        history=history,
        notes=notes,
    )
