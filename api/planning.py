"""From registry exports and price files to optimizer problems, and plans back to CSV.

The fleet file is the registry's device CSV (``vpp registry import`` format), so an
export can be planned directly. Optional planning columns refine each device:

- ``arrival``, ``departure`` (ISO 8601 with offset), ``energy_required_kwh``: an EV's
  session; without them an EV charger is planned for a session from 18:00 to 07:00
  UTC of the horizon's first day, needing half of what it could charge in that time
  (at most 30 kWh).
- ``soc_initial_frac``: a battery's state of charge at the start (default 0.5; it must
  end no lower).
- ``delivery_ratio``: the device's delivery record (default 1.0).

Defaults for what a device row cannot say (stated here, not hidden): heat pumps have
COP 3, 10 kWh/°C, 0.25 kW/°C and 5 °C outside; pool pumps run 4 h and water heaters
2 h at their rating anywhere in the horizon; thermostats follow 60% of their rating
and may shed 30%; PV follows a clear-day bell from 06:00 to 18:00 UTC scaled to its
rating; smart meters are not controllable and are left out.

A load whose baseline is known from its telemetry (``baselines`` of
:func:`fleet_from_rows`, from :mod:`api.load_baselines`) follows it instead: a
thermostat's forecast is that baseline; a heat pump holds its temperature in an
outdoor temperature at which that takes the baseline's power; a pool pump or water
heater is a curtailable load at that baseline which may be switched off for as long as
its usual run (4 h and 2 h) and runs the energy it missed later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from optimizer.devices import (
    Battery,
    CurtailableLoad,
    ElectricVehicle,
    Feeder,
    Fleet,
    HeatPump,
    PhotovoltaicSystem,
    Series,
    ShiftableLoad,
    Site,
)
from optimizer.problem import Horizon, Prices
from optimizer.results import Plan
from registry.devices import problems_from
from registry.identity import device_id
from registry.importer import read_devices_csv
from registry.schemas import DeviceIn

PLANNING_COLUMNS = (
    "arrival",
    "departure",
    "energy_required_kwh",
    "soc_initial_frac",
    "delivery_ratio",
)


class PlanningInputError(ValueError):
    """A fleet or price file cannot be planned; the message names the line and field."""


@dataclass(frozen=True)
class FleetFile:
    fleet: Fleet
    skipped: list[str]


def read_fleet(path: Path, horizon: Horizon, feeder_capacity_kw: float | None = None) -> FleetFile:
    """Read a registry device CSV (with optional planning columns) into a fleet."""
    return fleet_from_rows(read_devices_csv(path, PLANNING_COLUMNS), horizon, feeder_capacity_kw)


def fleet_from_rows(
    rows: Iterable[Mapping[str, Any]],
    horizon: Horizon,
    feeder_capacity_kw: float | None = None,
    baselines: Mapping[str, Series] | None = None,
) -> FleetFile:
    """Turn device rows into optimizer devices, sites and feeders; ``baselines`` gives
    by device id what a load draws without a plan [kW], one value per interval of the
    horizon (loads not in it get the nominal baselines of the module's docstring).

    Raises
    ------
    PlanningInputError
        Naming the line (header = line 1) and field of the first bad row.
    """
    kinds: dict[str, list[Any]] = {
        "batteries": [],
        "vehicles": [],
        "shiftable_loads": [],
        "curtailable_loads": [],
        "heat_pumps": [],
        "pv_systems": [],
    }
    sites: dict[str, tuple[str, str]] = {}
    skipped: list[str] = []
    for number, raw in enumerate(rows, start=2):
        extra = {k: raw[k] for k in PLANNING_COLUMNS if k in raw}
        fields = {k: v for k, v in raw.items() if k not in PLANNING_COLUMNS}
        try:
            device = DeviceIn.model_validate(fields)
        except ValidationError as exc:
            problem = problems_from(exc)[0]
            raise PlanningInputError(f"line {number}: {problem.field}: {problem.message}") from None
        sites.setdefault(device.site_id, (device.feeder, device.region))
        measured = (baselines or {}).get(_device_id(device))
        converted = _device(device, extra, horizon, number, measured)
        if converted is None:
            skipped.append(f"line {number}: {device.device_type.value} is not controllable")
            continue
        kind, value = converted
        kinds[kind].append(value)
    feeders = sorted({(feeder, region) for feeder, region in sites.values()})
    fleet = Fleet(
        sites=tuple(Site(site_id, feeder) for site_id, (feeder, _) in sites.items()),
        feeders=tuple(Feeder(f, region=r, import_max_kw=feeder_capacity_kw) for f, r in feeders),
        **{k: tuple(v) for k, v in kinds.items()},
    )
    return FleetFile(fleet, skipped)


def _number(extra: Mapping[str, Any], name: str, default: float, line: int) -> float:
    if name not in extra:
        return default
    try:
        value = float(extra[name])
    except ValueError:
        raise PlanningInputError(f"line {line}: {name}: not a number: {extra[name]!r}") from None
    if not math.isfinite(value):
        raise PlanningInputError(f"line {line}: {name}: must be finite")
    return value


def _time(extra: Mapping[str, Any], name: str, default: pd.Timestamp, line: int) -> pd.Timestamp:
    if name not in extra:
        return default
    stamp = pd.Timestamp(extra[name])
    if stamp.tzinfo is None:
        raise PlanningInputError(f"line {line}: {name}: needs a UTC offset, got {extra[name]!r}")
    return stamp.tz_convert("UTC")


def _device(
    device: DeviceIn,
    extra: Mapping[str, Any],
    horizon: Horizon,
    line: int,
    measured: Series | None = None,
) -> tuple[str, Any] | None:
    kind = device.device_type.value
    common: dict[str, Any] = {
        "device_id": _device_id(device),
        "site_id": device.site_id,
        "delivery_factor": min(1.0, max(0.01, _number(extra, "delivery_ratio", 1.0, line))),
    }
    steps = horizon.intervals
    if kind in ("battery", "c_and_i_storage"):
        soc = _number(extra, "soc_initial_frac", 0.5, line)
        return "batteries", Battery(
            **common,
            p_charge_max_kw=max(device.p_max_kw, 0.0),
            p_discharge_max_kw=max(-device.p_min_kw, 0.0),
            e_max_kwh=float(device.e_max_kwh or 0.0),
            soc_initial_frac=soc,
            soc_final_min_frac=soc,
        )
    if kind in ("ev_charger", "ev"):
        day = horizon.start.normalize()
        arrival = _time(extra, "arrival", day + pd.Timedelta(hours=18), line)
        departure = _time(extra, "departure", day + pd.Timedelta(hours=31), line)
        hours = max(0.0, (departure - arrival).total_seconds() / 3600)
        energy = _number(
            extra, "energy_required_kwh", min(30.0, 0.5 * device.p_max_kw * hours), line
        )
        v2g = max(-device.p_min_kw, 0.0)
        return "vehicles", ElectricVehicle(
            **common,
            arrival=arrival,
            departure=departure,
            p_max_kw=max(device.p_max_kw, 0.0),
            energy_required_kwh=energy,
            v2g_p_max_kw=v2g if device.e_max_kwh else 0.0,
            e_max_kwh=device.e_max_kwh,
        )
    if kind in ("pool_pump", "water_heater"):
        run_h = 4.0 if kind == "pool_pump" else 2.0
        if measured is not None:
            return "curtailable_loads", CurtailableLoad(
                **common,
                baseline_kw=tuple(measured),
                max_curtail_frac=1.0,
                max_event_h=run_h,
                rebound_frac=1.0,
                p_max_kw=max(device.p_max_kw, 0.0),
            )
        run = max(1, round(run_h / horizon.step_h))
        return "shiftable_loads", ShiftableLoad(
            **common,
            profile_kw=(max(device.p_max_kw, 0.0),) * min(run, steps),
            earliest_start=horizon.start,
            latest_start=horizon.start + (steps - min(run, steps)) * horizon.resolution,
        )
    if kind == "thermostat":
        nominal = [0.6 * max(device.p_max_kw, 0.0)] * steps
        return "curtailable_loads", CurtailableLoad(
            **common,
            baseline_kw=tuple(measured) if measured is not None else nominal,
            p_max_kw=device.p_max_kw,
        )
    if kind == "heat_pump":
        pump = HeatPump(
            **common,
            p_max_kw=max(device.p_max_kw, 0.0),
            cop=3.0,
            thermal_capacity_kwh_per_c=10.0,
            heat_loss_kw_per_c=0.25,
            outdoor_temp_c=[5.0] * steps,
        )
        return "heat_pumps", pump if measured is None else _drawing(pump, measured)
    if kind == "pv_inverter":
        return "pv_systems", PhotovoltaicSystem(
            **common, forecast_kw=clear_day_kw(horizon, -device.p_min_kw)
        )
    return None


def _drawing(pump: HeatPump, baseline_kw: Series) -> HeatPump:
    """``pump`` in the outdoor temperature at which holding its starting temperature
    takes ``baseline_kw`` (within its rating), so that its baseline is that power."""
    held = min(max(pump.temp_initial_c, pump.temp_min_c), pump.temp_max_c)
    outdoor = [held - p * pump.cop / pump.heat_loss_kw_per_c for p in baseline_kw]
    return replace(pump, outdoor_temp_c=outdoor)


def _device_id(device: DeviceIn) -> str:
    return device_id(device.make, device.model, device.serial)


def clear_day_kw(horizon: Horizon, rating_kw: float) -> list[float]:
    """A clear-day bell from 06:00 to 18:00 UTC peaking at 80% of ``rating_kw`` [kW]."""
    hours = horizon.index.hour + horizon.index.minute / 60 + horizon.step_h / 2
    bell = np.clip(np.sin(np.pi * (hours - 6) / 12), 0, None)
    return list(0.8 * max(rating_kw, 0.0) * bell)


def read_prices(path: Path, horizon: Horizon) -> pd.DataFrame:
    """Read a price CSV and spread it over the horizon's intervals.

    The file has a timestamp column (``timestamp``, ``timestamp_utc`` or ``time``,
    ISO 8601 with offset; each price holds until the next) and a price column in
    currency per kWh (``price_per_kwh``, optionally ``export_price_per_kwh``) or per
    MWh (any column whose name contains ``per_mwh``, divided by 1,000).

    Returns
    -------
    DataFrame
        ``import_price_per_kwh`` and ``export_price_per_kwh`` on the horizon's index.
    """
    if not path.is_file():
        raise PlanningInputError(f"{path}: no such file")
    return spread_prices(pd.read_csv(path), horizon, str(path))


def spread_prices(frame: pd.DataFrame, horizon: Horizon, source: str) -> pd.DataFrame:
    """Prices as :func:`read_prices` reads them, from a frame; errors name ``source``."""
    time_column = next((c for c in ("timestamp", "timestamp_utc", "time") if c in frame), None)
    if time_column is None:
        raise PlanningInputError(f"{source}: needs a timestamp column (timestamp or timestamp_utc)")
    stamps = pd.to_datetime(frame[time_column], utc=True, format="ISO8601", errors="coerce")
    if stamps.isna().any():
        line = int(np.flatnonzero(stamps.isna().to_numpy())[0]) + 2
        raise PlanningInputError(f"{source}: line {line}: {time_column}: not an ISO 8601 timestamp")
    if "price_per_kwh" in frame:
        imports = pd.to_numeric(frame["price_per_kwh"], errors="coerce")
        exports = (
            pd.to_numeric(frame["export_price_per_kwh"], errors="coerce")
            if "export_price_per_kwh" in frame
            else imports
        )
    else:
        per_mwh = next((c for c in frame.columns if "per_mwh" in c.lower()), None)
        if per_mwh is None:
            raise PlanningInputError(f"{source}: needs a price_per_kwh or *_per_mwh column")
        imports = pd.to_numeric(frame[per_mwh], errors="coerce") / 1000
        exports = imports
    bad = imports.isna() | exports.isna()
    if bad.any():
        line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise PlanningInputError(f"{source}: line {line}: price: not a number")
    prices = pd.DataFrame(
        {"import_price_per_kwh": imports.to_numpy(), "export_price_per_kwh": exports.to_numpy()},
        index=pd.DatetimeIndex(stamps),
    ).sort_index()
    prices = prices[~prices.index.duplicated()]
    spread = prices.reindex(prices.index.union(horizon.index)).ffill().reindex(horizon.index)
    missing = spread.index[spread.isna().any(axis=1)]
    if len(missing):
        raise PlanningInputError(
            f"{source}: no price for {len(missing)} intervals of the horizon, first {missing[0]}"
        )
    return spread


def prices_for(frame: pd.DataFrame, demand_charge_per_kw: float = 0.0) -> Prices:
    return Prices(
        import_price_per_kwh=frame["import_price_per_kwh"],
        export_price_per_kwh=frame["export_price_per_kwh"],
        demand_charge_per_kw=demand_charge_per_kw,
    )


def plan_frame(plan: Plan) -> pd.DataFrame:
    """The plan in long form: ``timestamp_utc, device_id, p_kw, baseline_kw``."""

    def long(frame: pd.DataFrame, name: str) -> pd.DataFrame:
        return (
            frame.rename_axis("timestamp_utc")
            .reset_index()
            .melt(id_vars="timestamp_utc", var_name="device_id", value_name=name)
        )

    frame = long(plan.power_kw, "p_kw")
    frame["baseline_kw"] = long(plan.baseline_kw[plan.power_kw.columns], "baseline_kw")[
        "baseline_kw"
    ].to_numpy()
    frame["timestamp_utc"] = frame["timestamp_utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return frame
