"""Regression tests of day-ahead plans on real data.

A fleet of 32 devices on one feeder (10 homes and a workplace car park) is planned over
one local day of 96 quarter hours:

- base load of each home: the UCI household (Sceaux, France) on ten different days of
  2009, by local hour of day;
- rooftop PV: PVWatts (Golden, CO) for the same day of the year, by hour of local
  standard time, scaled to each inverter;
- EVs: the real ACN-Data sessions at Caltech on Wednesday 16 October 2019 that took at
  least 10 kWh, their arrivals and departures moved to the same local time of day (two
  of them stay overnight, past the horizon's end);
- batteries and shiftable loads: typical home products (parameters below);
- prices: Dutch day-ahead prices (EUR/MWh) of Sunday 12 May 2024 (negative from 09:00
  to 18:00) and Thursday 16 May 2024, and ERCOT's HB_HOUSTON day-ahead prices ($/MWh) of
  Wednesday 13 July 2022 (up to 889 $/MWh at 15:00), hourly, forward-filled to quarter
  hours, per kWh; import and export both at the day-ahead price.

The price slices are in ``tests/data`` (see its SOURCES.md); the other files are read
from ``registry/data``. Pinned figures are regression values: they were measured with
this code and HiGHS 1.15 and say nothing about the right answer beyond what the other
assertions check. When a deliberate change of the model moves them, measure again and
update them together with the comment.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer.checks import residuals
from optimizer.devices import (
    Battery,
    ElectricVehicle,
    Feeder,
    Fleet,
    PhotovoltaicSystem,
    ShiftableLoad,
    Site,
)
from optimizer.prepare import vehicle_window
from optimizer.problem import CapacityRequest, Horizon, Prices, Problem, series
from optimizer.results import Plan, plan

TESTS_DATA = Path(__file__).parents[1] / "data"
REGISTRY_DATA = Path(__file__).parents[2] / "registry" / "data"
NL_PRICES = TESTS_DATA / "nl_day_ahead_price_2024-05-12_and_16_hourly.csv"
ERCOT_PRICES = TESTS_DATA / "ercot_dam_spp_lz_hub_2022-07-13_hourly.csv"
UCI_FILE = REGISTRY_DATA / "uci_household_power_hourly.csv.gz"
PVWATTS_FILE = REGISTRY_DATA / "nrel_pvwatts_8760_rackmount_golden_co.csv.gz"
ACN_FILE = REGISTRY_DATA / "acn_caltech_2019-09-01_2019-12-31.csv.gz"
#: Lines of system description above the PVWatts table.
PVWATTS_HEADER_LINES = 17
#: AC nameplate of the PVWatts system: 4 kWdc at a DC-to-AC ratio of 1.2 [W].
PVWATTS_AC_NAMEPLATE_W = 4000.0 / 1.2
#: The ACN day replayed, and the least energy of a session kept [kWh].
ACN_DAY = "2019-10-16"
ACN_MIN_ENERGY_KWH = 10.0
#: Level-2 chargers at Caltech: 32 A at 208 V [kW].
CHARGER_KW = 6.656
STEP = pd.Timedelta(minutes=15)
FEEDER = "F-12"
#: A capacity tariff on each site's peak import of the day [currency/kW]: about the
#: Flemish capacity tariff (~40 EUR/kW a year) per day, rounded.
DEMAND_CHARGE_PER_KW = 0.10
HOMES = 10
#: Home batteries: (home, charge/discharge power [kW], usable energy [kWh]).
BATTERIES = (
    (0, 5.0, 13.5),
    (1, 5.0, 10.0),
    (2, 3.68, 7.7),
    (4, 5.0, 10.0),
    (6, 4.6, 9.6),
    (8, 3.0, 5.0),
)
#: Rooftop PV: (home, AC rating [kW]).
PV = ((0, 4.0), (1, 3.0), (3, 5.0), (4, 3.6), (6, 4.6), (9, 6.0))
#: Shiftable loads: (id, home, profile per quarter hour [kW], contiguous,
#: earliest, latest and baseline start [local hours]).
SHIFTABLE = (
    ("washer-h1", 1, (2.0, 2.0, 0.4, 0.4, 0.4, 0.4, 0.8, 0.8), True, 7.0, 21.0, 19.0),
    ("dishwasher-h3", 3, (1.8, 1.8, 0.1, 0.1, 0.1, 1.8, 1.8), True, 8.0, 21.0, 20.5),
    ("pool-pump-h5", 5, (1.1,) * 16, False, 6.0, 18.0, 17.0),
    ("water-heater-h7", 7, (2.5,) * 6, False, 0.0, 22.0, 18.0),
)


# --- real data ------------------------------------------------------------------------


@cache
def nl_prices() -> pd.Series:
    """Dutch day-ahead prices by UTC hour start [EUR/MWh]."""
    frame = pd.read_csv(NL_PRICES)
    index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp_utc"])).tz_localize("UTC")
    return pd.Series(frame["price_eur_per_mwh"].to_numpy(dtype=float), index=index)


def ercot_hour_starts(frame: pd.DataFrame) -> pd.DatetimeIndex:
    """UTC starts of ERCOT's hours: ``Hour Ending`` hh:00 (01:00 ... 24:00) in Central
    Prevailing Time is the hour from hh-1:00 local; the repeated hour of the autumn
    change is flagged ``Y`` (the second, standard-time one)."""
    day = pd.to_datetime(frame["Delivery Date"], format="%m/%d/%Y")
    ending = frame["Hour Ending"].str.slice(0, 2).astype(int)
    local = pd.DatetimeIndex(day + pd.to_timedelta(ending - 1, unit="h"))
    first_of_repeat = (frame["Repeated Hour Flag"] != "Y").to_numpy()
    return local.tz_localize("America/Chicago", ambiguous=first_of_repeat).tz_convert("UTC")


@cache
def ercot_prices(column: str = "HB_HOUSTON") -> pd.Series:
    """ERCOT day-ahead settlement point prices by UTC hour start [$/MWh]."""
    frame = pd.read_csv(ERCOT_PRICES)
    return pd.Series(frame[column].to_numpy(dtype=float), index=ercot_hour_starts(frame))


@cache
def household_load() -> pd.Series:
    """UCI household ``Global_active_power`` [kW] by naive local hour start."""
    frame = pd.read_csv(UCI_FILE, usecols=["timestamp_local", "Global_active_power"])
    index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp_local"]))
    return pd.Series(frame["Global_active_power"].to_numpy(dtype=float), index=index)


@cache
def pv_per_unit() -> pd.Series:
    """PVWatts AC output per unit of AC nameplate, by (month, day, hour of local
    standard time, hour-beginning)."""
    frame = pd.read_csv(PVWATTS_FILE, skiprows=PVWATTS_HEADER_LINES, nrows=8760)
    index = pd.MultiIndex.from_frame(frame[["Month", "Day", "Hour"]])
    return pd.Series(frame["AC System Output (W)"].to_numpy(dtype=float), index=index) / (
        PVWATTS_AC_NAMEPLATE_W
    )


@cache
def ev_sessions() -> pd.DataFrame:
    """ACN sessions of :data:`ACN_DAY` with at least :data:`ACN_MIN_ENERGY_KWH`: time of
    day of arrival (local wall clock) [h], stay [h] and delivered energy [kWh]."""
    frame = pd.read_csv(ACN_FILE, usecols=["arrival", "departure", "delivered_energy (kWh)"])
    arrival_local = pd.to_datetime(frame["arrival"].str.slice(0, 19))
    arrival = pd.to_datetime(frame["arrival"], utc=True, format="ISO8601")
    departure = pd.to_datetime(frame["departure"], utc=True, format="ISO8601")
    sessions = pd.DataFrame(
        {
            "arrival_h": (arrival_local - arrival_local.dt.normalize()) / pd.Timedelta(hours=1),
            "stay_h": (departure - arrival) / pd.Timedelta(hours=1),
            "energy_kwh": frame["delivered_energy (kWh)"].astype(float),
        }
    )
    chosen = (arrival_local.dt.strftime("%Y-%m-%d") == ACN_DAY) & (
        sessions["energy_kwh"] >= ACN_MIN_ENERGY_KWH
    )
    return sessions[chosen].sort_values("arrival_h").reset_index(drop=True)


# --- the fleet on a day -----------------------------------------------------------------


def quarter_hours(hourly: pd.Series, horizon: Horizon) -> pd.Series:
    """Hourly values forward-filled onto the horizon's quarter hours."""
    return hourly.reindex(horizon.index, method="ffill")


def fleet_on(day: str, timezone: str, standard_offset_h: float, horizon: Horizon) -> Fleet:
    """The fleet on local ``day`` in ``timezone`` (standard time UTC+``standard_offset_h``)."""
    local = horizon.index.tz_convert(timezone)
    hour_of_day = local.hour.to_numpy()
    midnight = pd.Timestamp(day, tz=timezone)
    month_day = f"{midnight.month:02d}-{midnight.day:02d}"

    load = household_load()
    sites = []
    for h in range(HOMES):
        # Ten different days of the same household, ending on this date in 2009.
        uci_day = pd.Timestamp(f"2009-{month_day}") - pd.Timedelta(days=HOMES - 1 - h)
        hourly = load[uci_day : uci_day + pd.Timedelta(hours=23)].to_numpy()
        assert hourly.shape == (24,)
        sites.append(
            Site(
                f"home-{h}", FEEDER, import_max_kw=17.25, base_load_kw=hourly[hour_of_day].tolist()
            )
        )
    sites.append(Site("work", FEEDER, import_max_kw=150.0))

    standard = horizon.index + pd.Timedelta(hours=standard_offset_h)
    unit = pv_per_unit()
    keys = list(zip(standard.month, standard.day, standard.hour, strict=True))
    shape = unit.loc[keys].to_numpy()
    pv = tuple(
        PhotovoltaicSystem(f"pv-h{h}", f"home-{h}", forecast_kw=(rating * shape).tolist())
        for h, rating in PV
    )
    batteries = tuple(
        Battery(
            f"battery-h{h}",
            f"home-{h}",
            p_charge_max_kw=power,
            p_discharge_max_kw=power,
            e_max_kwh=energy,
            soc_min_frac=0.1,
            soc_initial_frac=0.5,
            soc_final_min_frac=0.5,
            charge_efficiency=0.95,
            discharge_efficiency=0.95,
            degradation_cost_per_kwh=0.02,
        )
        for h, power, energy in BATTERIES
    )

    def at(hours: float) -> pd.Timestamp:
        return midnight + pd.Timedelta(hours=hours)

    sessions = ev_sessions()
    vehicles = tuple(
        ElectricVehicle(
            f"ev-{i}",
            "work",
            arrival=at(arrival_h),
            departure=at(arrival_h + stay_h),
            p_max_kw=CHARGER_KW,
            energy_required_kwh=energy,
            charge_efficiency=0.92,
        )
        for i, (arrival_h, stay_h, energy) in enumerate(
            zip(
                sessions["arrival_h"].to_numpy(dtype=float).tolist(),
                sessions["stay_h"].to_numpy(dtype=float).tolist(),
                sessions["energy_kwh"].to_numpy(dtype=float).tolist(),
                strict=True,
            )
        )
    )
    loads = tuple(
        ShiftableLoad(
            device_id,
            f"home-{h}",
            profile_kw=profile,
            earliest_start=at(earliest),
            latest_start=at(latest),
            contiguous=contiguous,
            baseline_start=at(baseline),
        )
        for device_id, h, profile, contiguous, earliest, latest, baseline in SHIFTABLE
    )
    return Fleet(
        sites=tuple(sites),
        feeders=(Feeder(FEEDER, region="North"),),
        batteries=batteries,
        vehicles=vehicles,
        shiftable_loads=loads,
        pv_systems=pv,
    )


def day_ahead(
    day: str, timezone: str, standard_offset_h: float, hourly_per_mwh: pd.Series, integer: bool
) -> Problem:
    start = pd.Timestamp(day, tz=timezone).tz_convert("UTC")
    horizon = Horizon(start, 96, STEP)
    price = quarter_hours(hourly_per_mwh, horizon) / 1000.0
    assert price.notna().all()
    return Problem(
        horizon,
        fleet_on(day, timezone, standard_offset_h, horizon),
        prices=Prices(price, price, demand_charge_per_kw=DEMAND_CHARGE_PER_KW),
        integer=integer,
        name=f"day-ahead {day}",
    )


@cache
def nl_negative_day() -> Problem:
    # A MILP: the washer and dishwasher runs stay whole, and no battery may charge and
    # discharge at once (which the LP relaxation may do to burn energy at negative prices).
    return day_ahead("2024-05-12", "Europe/Amsterdam", 1.0, nl_prices(), integer=True)


@cache
def nl_normal_day() -> Problem:
    return day_ahead("2024-05-16", "Europe/Amsterdam", 1.0, nl_prices(), integer=False)


@cache
def houston_day() -> Problem:
    return day_ahead("2022-07-13", "America/Chicago", -6.0, ercot_prices(), integer=False)


def solved(problem: Problem) -> Plan:
    result = plan(problem)
    assert result.status == "optimal"
    assert residuals(problem, result) == []
    return result


# --- independent arithmetic -------------------------------------------------------------


def price_of(problem: Problem) -> np.ndarray:
    assert problem.prices is not None
    return np.asarray(problem.prices.import_price_per_kwh, dtype=float)


def baseline_cost(problem: Problem, result: Plan) -> dict[str, float]:
    """What the baseline (nothing planned) costs by the plan's terms: energy and demand
    charge from the sites' base load and each device's baseline power at the day's
    prices, and the EV energy that uncontrolled charging cannot deliver (batteries idle:
    no wear)."""
    horizon = problem.horizon
    net = pd.DataFrame(
        {s.site_id: series(s.base_load_kw, horizon) for s in problem.fleet.sites},
        index=horizon.index,
    )
    for device in problem.fleet.devices():
        net[device.site_id] += result.baseline_kw[device.device_id].to_numpy()
    dt = horizon.step_h
    energy = float(dt * (price_of(problem) @ net.to_numpy()).sum())
    peaks = net.clip(lower=0).max().sum()
    unmet = 0.0
    for vehicle in problem.fleet.vehicles:
        # What uncontrolled charging leaves missing of the (prorated) energy to add.
        need = vehicle_window(vehicle, horizon).energy_kwh
        added = dt * vehicle.charge_efficiency * result.baseline_kw[vehicle.device_id].sum()
        unmet += vehicle.unmet_energy_cost_per_kwh * max(0.0, need - float(added))
    return {
        "energy": energy,
        "demand_charge": DEMAND_CHARGE_PER_KW * float(peaks),
        "unmet_ev_energy": unmet,
    }


def weighted_prices(problem: Problem, result: Plan) -> tuple[float, float]:
    """Average price of the batteries' charging and of their discharging [per kWh]."""
    price = price_of(problem)
    power = result.power_kw[[b.device_id for b in problem.fleet.batteries]].to_numpy()
    charge = np.clip(power, 0, None).sum(axis=1)
    discharge = np.clip(-power, 0, None).sum(axis=1)
    return float(price @ charge / charge.sum()), float(price @ discharge / discharge.sum())


# --- tests ------------------------------------------------------------------------------


def test_price_slices_are_the_days_they_claim() -> None:
    nl = nl_prices()
    assert len(nl) == 48
    assert nl.index[0] == pd.Timestamp("2024-05-11T22:00Z")  # 00:00 CEST
    assert nl.min() == -200.0
    houston = ercot_prices()
    # Hour Ending 01:00 of 13 July is 00:00-01:00 CDT, which starts at 05:00 UTC; the
    # dearest hour, ending 16:00 CDT, starts at 20:00 UTC.
    assert houston.index[0] == pd.Timestamp("2022-07-13T05:00Z")
    assert houston.idxmax() == pd.Timestamp("2022-07-13T20:00Z")
    assert houston.max() == 889.35
    assert (np.diff(houston.index.to_numpy()) == np.timedelta64(1, "h")).all()


def test_ercot_repeated_hour_of_the_autumn_change() -> None:
    # The 25-hour day of 6 November 2022: Hour Ending 02:00 comes twice, flagged N then Y.
    frame = pd.DataFrame(
        {
            "Delivery Date": ["11/06/2022"] * 4,
            "Hour Ending": ["01:00", "02:00", "02:00", "03:00"],
            "Repeated Hour Flag": ["N", "N", "Y", "N"],
        }
    )
    starts = ercot_hour_starts(frame)
    expected = pd.date_range("2022-11-06T05:00Z", periods=4, freq="h")
    assert list(starts) == list(expected)


def test_fleet_is_built_from_the_real_sessions() -> None:
    problem = nl_normal_day()
    fleet = problem.fleet
    assert len(fleet.devices()) == 32
    assert len(fleet.vehicles) == 16
    sessions = ev_sessions()
    assert sessions["energy_kwh"].sum() == pytest.approx(265.25, abs=0.01)
    # Two cars stay overnight, past the horizon's end.
    assert sum(v.departure > problem.horizon.end for v in fleet.vehicles) == 2


def test_normal_day_plan_is_cheaper_than_the_baseline() -> None:
    problem = nl_normal_day()
    result = solved(problem)
    assert result.objective == pytest.approx(sum(result.costs.values()), rel=1e-9)
    baseline = baseline_cost(problem, result)
    savings = sum(baseline.values()) - result.objective
    # Regression values (EUR), measured: see the module docstring.
    assert result.objective == pytest.approx(29.91103879030436, rel=1e-6)
    assert sum(baseline.values()) == pytest.approx(38.92748919964269, rel=1e-9)
    assert savings == pytest.approx(9.016450409338333, rel=1e-5)  # 23% of the baseline
    # Every EV gets what its stay allows, as uncontrolled charging does.
    assert result.costs["unmet_ev_energy"] == pytest.approx(baseline["unmet_ev_energy"])
    # Batteries buy low and sell high: 0.2 and 11.1 ct/kWh on average (mean 6.8 ct).
    charge_price, discharge_price = weighted_prices(problem, result)
    assert charge_price < float(price_of(problem).mean()) < discharge_price
    assert discharge_price - charge_price >= 0.10  # EUR per kWh
    # The capacity tariff flattens peaks.
    assert result.costs["demand_charge"] < baseline["demand_charge"]


def test_negative_price_day_curtails_pv_and_moves_load_into_negative_hours() -> None:
    problem = nl_negative_day()
    result = solved(problem)
    assert result.mip_gap is not None and result.mip_gap <= 1e-4
    price = price_of(problem)
    negative = price < 0
    positive = price > 0
    # PV: untouched at positive prices; at negative ones fully curtailed, except where
    # more import would raise its site's peak (the capacity tariff outweighs the price).
    curtailed = 0.0
    for pv in problem.fleet.pv_systems:
        p = result.power_kw[pv.device_id].to_numpy()
        forecast = np.asarray(pv.forecast_kw)
        np.testing.assert_allclose(p[positive], -forecast[positive], atol=1e-6)
        net = result.site_net_kw[pv.site_id].to_numpy()
        at_peak = net >= net.max() - 1e-6
        np.testing.assert_allclose(p[negative & ~at_peak], 0.0, atol=1e-6)
        curtailed += float((p + forecast)[negative].sum()) * problem.horizon.step_h
    # Regression value (kWh, of 204.85 kWh forecast), measured: see the module docstring.
    assert curtailed == pytest.approx(183.82479098, rel=1e-5)
    # Shiftable loads run wholly in the negative hours; their baselines, in the evening,
    # run at most partly in them.
    for load in problem.fleet.shiftable_loads:
        p = result.power_kw[load.device_id].to_numpy()
        assert p[negative].sum() == pytest.approx(sum(load.profile_kw), rel=1e-6)
        run = result.baseline_kw[load.device_id].to_numpy()
        assert run[negative].sum() <= 0.5 * sum(load.profile_kw)
    # EVs draw no more outside the negative hours than uncontrolled charging does, and
    # more inside them.
    evs = [v.device_id for v in problem.fleet.vehicles]
    planned = result.power_kw[evs].to_numpy()
    uncontrolled = result.baseline_kw[evs].to_numpy()
    assert planned[~negative].sum() <= uncontrolled[~negative].sum() + 1e-6
    assert planned[negative].sum() > uncontrolled[negative].sum()
    # Batteries charge in the cheapest hours and discharge in the dearest.
    charge_price, discharge_price = weighted_prices(problem, result)
    assert charge_price < 0 < discharge_price
    baseline = baseline_cost(problem, result)
    # Regression values (EUR), measured: see the module docstring. A MILP, pinned to its
    # optimality tolerance. EVs take no more than they need, even at negative prices.
    assert result.objective == pytest.approx(-29.481479955437134, rel=1e-5)
    assert sum(baseline.values()) == pytest.approx(11.965036620395187, rel=1e-9)


def test_houston_day_and_an_evening_capacity_request() -> None:
    problem = houston_day()
    result = solved(problem)
    baseline = baseline_cost(problem, result)
    savings = sum(baseline.values()) - result.objective
    # Batteries buy at 5.7 and sell at 82 ct/kWh on average (mean 20 ct).
    charge_price, discharge_price = weighted_prices(problem, result)
    assert charge_price < 0.1 < 0.5 < discharge_price  # $ per kWh
    # Regression values ($), measured: see the module docstring.
    assert result.objective == pytest.approx(37.95129991834508, rel=1e-6)
    assert sum(baseline.values()) == pytest.approx(94.65322129814189, rel=1e-9)
    assert savings == pytest.approx(56.70192137979681, rel=1e-5)  # 60% of the baseline

    # The operator asks the feeder for 30 kW less than its baseline from 17:00 to 20:00
    # CDT, at ERCOT's 2022 offer cap (5,000 $/MWh) for every kWh short.
    evening = pd.Timestamp("2022-07-13T17:00", tz="America/Chicago")
    request = CapacityRequest(
        "evening-peak",
        evening,
        evening + pd.Timedelta(hours=3),
        feeder=FEEDER,
        kw=30.0,
        shortfall_price_per_kwh=5.0,
    )
    asked = replace(problem, requests=(request,))
    answer = solved(asked)
    outcome = answer.requests[0]
    assert outcome.shortfall_kw.index[0] == pd.Timestamp("2022-07-13T22:00Z")
    assert len(outcome.shortfall_kw) == 12
    # The first hour falls short by what six batteries at full discharge (26.28 kW) and
    # the shiftable loads moved out of it (1.1 kW) cannot give: 30 - 27.38 kW.
    short = np.r_[[2.62] * 4, [0.0] * 8]
    np.testing.assert_allclose(outcome.shortfall_kw.to_numpy(), short, atol=1e-6)
    np.testing.assert_allclose(outcome.expected_kw.to_numpy(), 30.0 - short, atol=1e-6)
    assert set(outcome.reasons) == set(outcome.shortfall_kw.index[:4])
    for reasons in outcome.reasons.values():
        assert "battery discharging at its power limit: 6 devices" in reasons
    # Regression values ($), measured: see the module docstring. One more kW in a short
    # quarter hour costs the shortfall price (5 $/kWh * 0.25 h); in the others, what the
    # energy moved into them costs.
    assert outcome.shortfall_kwh == pytest.approx(2.62, rel=1e-6)
    marginal = np.r_[[1.25] * 4, [0.17315] * 4, [0.17628] * 4]
    np.testing.assert_allclose(outcome.marginal_cost_per_kw.to_numpy(), marginal, rtol=1e-6)
    assert answer.objective - result.objective == pytest.approx(62.61703310807929, rel=1e-6)
