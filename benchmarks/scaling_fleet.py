"""Reproducible fleets for optimizer benchmarks and scale tests.

``scaling_problem(devices, seed)`` builds the benchmark case of the optimizer issue:
96 15-minute intervals; 40% batteries, 40% EVs, 20% shiftable loads (interruptible,
so the problem stays an LP); two devices per site, 100 devices per feeder, every
feeder capped at 80% of its devices' summed import rating; day-ahead prices with a
morning and an evening peak; and one capacity request on the region: 15% of the
fleet's battery discharge power for 17:00-20:00 UTC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer.devices import Battery, ElectricVehicle, Feeder, Fleet, ShiftableLoad, Site
from optimizer.problem import CapacityRequest, Horizon, Prices, Problem

START = pd.Timestamp("2026-11-21T00:00Z")
STEP = pd.Timedelta("15min")
INTERVALS = 96


def price_curve(intervals: int = INTERVALS) -> np.ndarray:
    """A day-ahead shape [currency/kWh]: night trough, morning and evening peaks."""
    hours = np.arange(intervals) * STEP.total_seconds() / 3600
    morning = np.exp(-(((hours - 8) / 1.5) ** 2))
    evening = np.exp(-(((hours - 18.5) / 2.0) ** 2))
    return 0.08 + 0.10 * morning + 0.22 * evening


def scaling_problem(devices: int, seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
    horizon = Horizon(START, INTERVALS, STEP.to_pytimedelta())
    batteries_n = round(0.4 * devices)
    vehicles_n = round(0.4 * devices)
    loads_n = devices - batteries_n - vehicles_n
    kinds = ["battery"] * batteries_n + ["ev"] * vehicles_n + ["load"] * loads_n
    rng.shuffle(kinds)
    feeders_n = max(1, devices // 100)
    sites = []
    batteries, vehicles, loads = [], [], []
    import_rating = np.zeros(feeders_n)
    for i, kind in enumerate(kinds):
        site_index = i // 2
        feeder_index = (i // 100) % feeders_n
        if i % 2 == 0:
            sites.append(Site(f"site-{site_index:06d}", f"F-{feeder_index:04d}"))
        site_id = f"site-{site_index:06d}"
        device_id = f"dev-{i:06d}"
        if kind == "battery":
            power = float(rng.choice([3.3, 5.0, 7.6, 10.0]))
            hours = float(rng.choice([1.0, 2.0, 4.0]))
            batteries.append(
                Battery(
                    device_id,
                    site_id,
                    p_charge_max_kw=power,
                    p_discharge_max_kw=power,
                    e_max_kwh=power * hours,
                    soc_initial_frac=float(rng.uniform(0.2, 0.8)),
                    soc_final_min_frac=0.5,
                    soc_min_frac=0.1,
                    degradation_cost_per_kwh=0.02,
                )
            )
            import_rating[feeder_index] += power
        elif kind == "ev":
            power = float(rng.choice([3.7, 7.4, 11.0]))
            arrival = START + STEP * int(rng.integers(60, 84))  # 15:00-21:00
            stay = int(rng.integers(16, 48))  # 4-12 h
            departure = min(arrival + STEP * stay, START + STEP * INTERVALS)
            energy = float(rng.uniform(0.3, 0.9)) * power * stay * 0.25
            vehicles.append(
                ElectricVehicle(
                    device_id,
                    site_id,
                    arrival=arrival,
                    departure=departure,
                    p_max_kw=power,
                    energy_required_kwh=energy,
                    unmet_energy_cost_per_kwh=1.0,
                )
            )
            import_rating[feeder_index] += power
        else:
            power = float(rng.uniform(0.75, 2.2))
            run = int(rng.integers(8, 24))
            earliest = int(rng.integers(0, INTERVALS - run - 8))
            latest = int(rng.integers(earliest, INTERVALS - run))
            loads.append(
                ShiftableLoad(
                    device_id,
                    site_id,
                    profile_kw=(power,) * run,
                    earliest_start=START + STEP * earliest,
                    latest_start=START + STEP * latest,
                    contiguous=False,
                )
            )
            import_rating[feeder_index] += power
    feeders = tuple(
        Feeder(f"F-{f:04d}", region="North", import_max_kw=round(0.8 * import_rating[f], 3))
        for f in range(feeders_n)
    )
    fleet = Fleet(
        sites=tuple(sites),
        feeders=feeders,
        batteries=tuple(batteries),
        vehicles=tuple(vehicles),
        shiftable_loads=tuple(loads),
    )
    discharge = sum(b.p_discharge_max_kw for b in batteries)
    request = CapacityRequest(
        "evening-peak",
        START + pd.Timedelta(hours=17),
        START + pd.Timedelta(hours=20),
        region="North",
        kw=round(0.15 * discharge, 3),
        shortfall_price_per_kwh=5.0,
    )
    prices = Prices(import_price_per_kwh=price_curve(), export_price_per_kwh=price_curve() * 0.8)
    return Problem(horizon, fleet, prices=prices, requests=(request,), name=f"scaling-{devices}")
