"""Builders of small fleets for optimizer tests."""

from __future__ import annotations

from typing import Any

import pandas as pd

from optimizer.devices import Battery, Feeder, Fleet, Site
from optimizer.problem import Horizon

START = pd.Timestamp("2026-11-21T00:00Z")


def hours(n: int) -> Horizon:
    """``n`` one-hour intervals from START (one interval = 1 kWh per kW)."""
    return Horizon(START, n, pd.Timedelta("1h"))


def at(hour: float) -> pd.Timestamp:
    return START + pd.Timedelta(hours=hour)


def battery(device_id: str = "b1", **change: Any) -> Battery:
    fields: dict[str, Any] = {
        "device_id": device_id,
        "site_id": "s1",
        "p_charge_max_kw": 5.0,
        "p_discharge_max_kw": 5.0,
        "e_max_kwh": 10.0,
        "soc_initial_frac": 0.0,
        "charge_efficiency": 1.0,
        "discharge_efficiency": 1.0,
        "degradation_cost_per_kwh": 0.0,
    }
    fields.update(change)
    return Battery(**fields)


def one_site(**devices: Any) -> Fleet:
    """One site on feeder F-1 (region North) holding ``devices`` (Fleet fields)."""
    return Fleet(sites=(Site("s1", "F-1"),), feeders=(Feeder("F-1", region="North"),), **devices)
