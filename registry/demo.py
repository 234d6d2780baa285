"""A realistic demo fleet, built from real data, and a seeder that stores it.

:func:`build_fleet` is pure (numpy and pandas only) and deterministic for a seed: it
draws households and a few commercial and industrial (C&I) sites around Denver,
Colorado, gives them real products with their real ratings, and derives every
telemetry profile from real measurements shipped in ``registry/data`` (see
``registry/data/SOURCES.md`` for provenance and licences):

- PV inverters follow NREL PVWatts hourly AC output of a 4 kWdc system in Golden, CO,
  for the same day of year and hour of local standard time.
- Heat pumps, water heaters and thermostats follow the shape of UCI household
  ``Sub_metering_3`` (water heater and air conditioner), from a window of the same
  season in a random year, per device.
- EV chargers replay ACN-Data sessions from Caltech (Lee, Li & Low, e-Energy 2019):
  arrival time of day, length of stay and energy delivered, charging at rated power.
- Home batteries run self-consumption against their household's UCI
  ``Global_active_power`` minus the site's PV; without PV they charge off-peak and
  cover the evening load. C&I storage follows a fixed time-of-use schedule.
- Pool pumps run one contiguous block a day at a per-device start hour.

:func:`seed_demo` stores a fleet through the registry's own functions, so the demo
obeys every rule real data does, and it can run twice without duplicating anything.

Power follows the project's sign convention: positive is drawn from the grid,
negative fed into it. A reading stamped ``t`` gives the mean power over
``[t, t + resolution)`` and, for storage, the state of charge at ``t``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from eth_utils import keccak, to_checksum_address
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.devices import bulk_create_devices
from registry.enrollment import capability_checks, enroll
from registry.errors import InvalidInput, Problem
from registry.identity import device_id as derive_device_id
from registry.programs import create_program
from registry.schemas import STORAGE_TYPES, DeviceType, ProgramIn, Protocol
from registry.tables import Device, Enrollment, Program, utcnow
from registry.telemetry import store_readings

#: Folder of the real data files.
DATA_DIR = Path(__file__).parent / "data"
UCI_FILE = DATA_DIR / "uci_household_power_hourly.csv.gz"
PVWATTS_FILE = DATA_DIR / "nrel_pvwatts_8760_rackmount_golden_co.csv.gz"
ACN_FILE = DATA_DIR / "acn_caltech_2019-09-01_2019-12-31.csv.gz"
#: Lines of system description above the PVWatts table.
PVWATTS_HEADER_LINES = 17
#: AC nameplate of the PVWatts system: 4 kWdc at a DC-to-AC ratio of 1.2 [W].
PVWATTS_AC_NAMEPLATE_W = 4000.0 / 1.2
#: Hours in the PVWatts typical year.
HOURS_PER_YEAR = 8760

#: Where the demo fleet lives: Denver, CO, next to the PVWatts site in Golden.
TIMEZONE = "America/Denver"
#: Local standard time of the PVWatts data (MST, no daylight saving).
STANDARD_UTC_OFFSET = pd.Timedelta(hours=-7)
CITY_LAT = 39.7392
CITY_LON = -104.9903
UTILITY = "Demo Power & Light"
FEEDERS_PER_REGION = 4
#: Regions in order of use and their centre relative to the city [degrees lat, lon].
REGIONS: tuple[tuple[str, float, float], ...] = (
    ("North", 0.12, 0.0),
    ("South", -0.12, 0.0),
    ("East", 0.0, 0.15),
    ("West", 0.0, -0.15),
    ("Central", 0.0, 0.0),
    ("Northeast", 0.09, 0.11),
    ("Northwest", 0.09, -0.11),
    ("Southeast", -0.09, 0.11),
    ("Southwest", -0.09, -0.11),
)

#: Share of each device type in the fleet.
TYPE_SHARES: dict[DeviceType, float] = {
    DeviceType.battery: 0.25,
    DeviceType.ev_charger: 0.25,
    DeviceType.heat_pump: 0.15,
    DeviceType.pool_pump: 0.10,
    DeviceType.pv_inverter: 0.20,
    DeviceType.thermostat: 0.02,
    DeviceType.water_heater: 0.02,
    DeviceType.c_and_i_storage: 0.01,
}
#: Devices per household on average (before empty households are filled).
DEVICES_PER_HOUSEHOLD = 2.5
#: Share of owners with an EVM address.
ADDRESS_SHARE = 0.5
#: Share of devices that go offline for a stretch.
OFFLINE_SHARE = 0.03
#: Shortest and longest offline stretch [h].
OFFLINE_HOURS = (2.0, 12.0)
#: One-way efficiency of charging and of discharging storage.
STORAGE_EFFICIENCY = 0.95
#: State of charge a battery keeps in reserve for backup.
RESERVE_FRAC = 0.1
#: Local hours of the off-peak charging window [h, h) of batteries without PV.
OFF_PEAK_HOURS = (0.0, 5.0)
#: Local hours of the evening peak [h, h).
PEAK_HOURS = (16.0, 21.0)
#: Local hours in which C&I storage charges and discharges [h, h).
CI_CHARGE_HOURS = (0.0, 6.0)
CI_DISCHARGE_HOURS = (15.0, 20.0)
#: Days either side of the demo's day of year from which UCI windows are drawn.
SEASON_DAYS = 30
#: Gap kept between two EV sessions on one charger, in steps.
EV_GAP_STEPS = 2
#: Cells of the (device, block, step) array computed at once by :func:`block_power`.
BLOCK_CELLS = 4_000_000
#: Readings stored per call of :func:`registry.telemetry.store_readings`.
READING_BATCH = 10_000
#: Device ids looked up per ``IN (...)`` query.
ID_CHUNK = 5_000
#: Who enrolls the demo devices, as written to the enrolment log.
SEED_ACTOR = "demo-seed"

READING_COLUMNS = ["device_id", "timestamp", "p_kw", "soc_frac", "online"]


@dataclass(frozen=True)
class Product:
    """A real product and its ratings.

    Parameters
    ----------
    ratings_kw : tuple of float
        Ratings to choose from [kW]; empty when ``rating_range_kw`` is given.
    rating_range_kw : tuple of float, optional
        Lowest and highest rating, drawn uniformly and rounded to ``rating_step_kw`` [kW].
    energy_kwh : float, optional
        Usable energy [kWh], fixed for the product.
    storage_hours : tuple of float, optional
        Shortest and longest duration at rated power, for products sized by the
        project (C&I storage) [h].
    bidirectional : bool
        Whether the device can feed the grid at its rating (V2G chargers).
    weight : float
        Relative chance of the product among those of its type.
    """

    make: str
    model: str
    serial_prefix: str
    ratings_kw: tuple[float, ...] = ()
    rating_range_kw: tuple[float, float] | None = None
    rating_step_kw: float = 0.1
    energy_kwh: float | None = None
    storage_hours: tuple[float, float] | None = None
    bidirectional: bool = False
    weight: float = 1.0


#: Real products of each type, with their datasheet ratings.
CATALOG: dict[DeviceType, tuple[Product, ...]] = {
    DeviceType.battery: (
        Product("Tesla", "Powerwall 2", "TG1", (5.0,), energy_kwh=13.5),
        Product("Tesla", "Powerwall 3", "TG3", (11.5,), energy_kwh=13.5),
        Product("Enphase", "IQ Battery 5P", "EB5", (3.84,), energy_kwh=5.0),
        Product("Enphase", "IQ Battery 10T", "EBT", (3.84,), energy_kwh=10.08),
        Product("LG Energy Solution", "RESU10H Prime", "LGP", (5.0,), energy_kwh=9.6),
        Product("LG Energy Solution", "RESU16H Prime", "LGQ", (7.0,), energy_kwh=16.0),
        Product("SolarEdge", "Home Battery 10kWh", "SEB", (5.0,), energy_kwh=9.7),
        Product("FranklinWH", "aPower", "FWH", (5.0,), energy_kwh=13.6),
    ),
    DeviceType.ev_charger: (
        Product("Wallbox", "Pulsar Plus", "WBP", (7.2, 11.0)),
        Product("ChargePoint", "Home Flex", "CPH", (7.2, 11.0)),
        Product("Emporia", "Level 2 EV Charger", "EMP", (7.2, 11.0)),
        Product("Enel X Way", "JuiceBox 48", "JBX", (7.2, 11.0)),
        Product("Wallbox", "Quasar", "WBQ", (7.4,), bidirectional=True, weight=0.25),
    ),
    DeviceType.heat_pump: (
        Product("Daikin", "Altherma 3 H HT", "DKA", rating_range_kw=(2.5, 6.0)),
        Product("Mitsubishi Electric", "Ecodan PUZ-WM", "MEC", rating_range_kw=(2.0, 4.5)),
        Product("Bosch", "Compress 7000i AW", "BCA", rating_range_kw=(2.0, 5.0)),
        Product("Carrier", "Infinity 24 Heat Pump", "CIN", rating_range_kw=(3.0, 6.0)),
    ),
    DeviceType.pool_pump: (
        Product(
            "Pentair", "IntelliFlo VSF", "PIF", rating_range_kw=(0.75, 2.2), rating_step_kw=0.05
        ),
        Product(
            "Hayward", "TriStar VS 900", "HTS", rating_range_kw=(0.75, 1.9), rating_step_kw=0.05
        ),
        Product("Jandy", "VS FloPro 2.7", "JVS", rating_range_kw=(0.75, 2.0), rating_step_kw=0.05),
    ),
    DeviceType.pv_inverter: (
        Product("SolarEdge", "SE3800H-US", "SE3", (3.8,)),
        Product("SolarEdge", "SE7600H-US", "SE7", (7.6,)),
        Product("SolarEdge", "SE10000H-US", "SEX", (10.0,)),
        Product("Fronius", "Primo 5.0-1", "FRP", (5.0,)),
        Product("SMA", "Sunny Boy 6.0-US", "SMA", (6.0,)),
        Product("Tesla", "Solar Inverter 7.6 kW", "TSI", (7.6,)),
    ),
    DeviceType.thermostat: (
        Product("ecobee", "SmartThermostat Premium", "ECB", rating_range_kw=(2.0, 5.0)),
        Product("Google", "Nest Learning Thermostat 4th gen", "NST", rating_range_kw=(2.0, 5.0)),
    ),
    DeviceType.water_heater: (
        Product("Rheem", "ProTerra Hybrid 50", "RPT", (4.5,)),
        Product("A. O. Smith", "Signature 900 HPTU-50", "AOS", (4.5,)),
    ),
    DeviceType.c_and_i_storage: (
        Product(
            "Tesla",
            "Powerpack 2",
            "TPP",
            rating_range_kw=(100.0, 1000.0),
            rating_step_kw=10.0,
            storage_hours=(2.0, 4.0),
        ),
        Product(
            "Fluence",
            "Edgestack",
            "FLE",
            rating_range_kw=(100.0, 1000.0),
            rating_step_kw=10.0,
            storage_hours=(2.0, 4.0),
        ),
    ),
}
#: Shortest and longest time to respond to an event, per type [s].
RESPONSE_TIME_S: dict[DeviceType, tuple[int, int]] = {
    DeviceType.battery: (1, 5),
    DeviceType.c_and_i_storage: (1, 10),
    DeviceType.pv_inverter: (1, 10),
    DeviceType.ev_charger: (5, 120),
    DeviceType.heat_pump: (30, 300),
    DeviceType.thermostat: (60, 300),
    DeviceType.water_heater: (30, 300),
    DeviceType.pool_pump: (60, 300),
}
#: Telemetry intervals to choose from, per type [s].
TELEMETRY_INTERVAL_S: dict[DeviceType, tuple[int, ...]] = {
    DeviceType.battery: (60, 300),
    DeviceType.c_and_i_storage: (60,),
    DeviceType.pv_inverter: (60, 300, 900),
    DeviceType.ev_charger: (60, 300, 900),
    DeviceType.heat_pump: (300, 900),
    DeviceType.thermostat: (300, 900),
    DeviceType.water_heater: (300, 900),
    DeviceType.pool_pump: (300, 900),
}


@dataclass(frozen=True, eq=False)
class DemoFleet:
    """A demo fleet: devices, the programs offered to them, and their telemetry.

    Attributes
    ----------
    devices : list of dict
        One dict of :class:`~registry.schemas.DeviceIn` fields per device.
    programs : list of dict
        One dict of :class:`~registry.schemas.ProgramIn` fields per program.
    readings : DataFrame
        Columns ``device_id`` (see :func:`registry.identity.device_id`), ``timestamp``
        (UTC), ``p_kw`` [kW], ``soc_frac`` [0-1, NaN unless storage] and ``online``.
    """

    devices: list[dict[str, Any]]
    programs: list[dict[str, Any]]
    readings: pd.DataFrame


# --------------------------------------------------------------------------- real data


@lru_cache(maxsize=1)
def _household_power() -> pd.DataFrame:
    frame = pd.read_csv(
        UCI_FILE, usecols=["timestamp_local", "Global_active_power", "Sub_metering_3"]
    )
    return pd.DataFrame(
        {
            "timestamp_local": pd.to_datetime(frame["timestamp_local"]),
            "load_kw": frame["Global_active_power"].astype(float),
            # Wh per minute, averaged over the hour -> kW.
            "thermal_kw": frame["Sub_metering_3"].astype(float) * 60.0 / 1000.0,
        }
    )


def load_household_power() -> pd.DataFrame:
    """Hourly UCI household power, Sceaux, France (a copy; cached file read).

    Returns
    -------
    DataFrame
        Columns ``timestamp_local`` (naive, start of the hour, consecutive hours),
        ``load_kw`` (``Global_active_power``) [kW] and ``thermal_kw`` (``Sub_metering_3``,
        water heater and air conditioner, Wh per minute * 60 / 1000) [kW].
    """
    return _household_power().copy()


@lru_cache(maxsize=1)
def _pv_profile() -> np.ndarray:
    frame = pd.read_csv(PVWATTS_FILE, skiprows=PVWATTS_HEADER_LINES, nrows=HOURS_PER_YEAR)
    profile = frame["AC System Output (W)"].to_numpy(dtype=float) / PVWATTS_AC_NAMEPLATE_W
    profile.flags.writeable = False
    return profile


def load_pv_profile() -> np.ndarray:
    """PVWatts AC output of the Golden, CO system per hour of the year, per unit of nameplate.

    Returns
    -------
    ndarray
        8,760 values in [0, 1]: hour ``h`` (local standard time, hour-beginning, from
        1 January 00:00) is the mean AC output over that hour divided by the AC
        nameplate (3,333 W, where PVWatts clips) [kW per kW].
    """
    return _pv_profile().copy()


@lru_cache(maxsize=1)
def _ev_sessions() -> pd.DataFrame:
    frame = pd.read_csv(ACN_FILE, usecols=["arrival", "departure", "delivered_energy (kWh)"])
    # The local wall clock of the arrival, without its offset, gives the time of day.
    arrival_local = pd.to_datetime(frame["arrival"].str.slice(0, 19))
    arrival = pd.to_datetime(frame["arrival"], utc=True, format="ISO8601")
    departure = pd.to_datetime(frame["departure"], utc=True, format="ISO8601")
    sessions = pd.DataFrame(
        {
            "arrival_hour": (arrival_local - arrival_local.dt.normalize()) / pd.Timedelta(hours=1),
            "duration_h": (departure - arrival) / pd.Timedelta(hours=1),
            "energy_kwh": frame["delivered_energy (kWh)"].astype(float),
        }
    )
    usable = (sessions["duration_h"] > 0) & (sessions["energy_kwh"] > 0)
    return sessions[usable].reset_index(drop=True)


def load_ev_sessions() -> pd.DataFrame:
    """ACN-Data charging sessions at Caltech, Sept.-Dec. 2019 (a copy; cached file read).

    Returns
    -------
    DataFrame
        Columns ``arrival_hour`` (local time of day of the arrival) [h], ``duration_h``
        (departure minus arrival) [h] and ``energy_kwh`` (``delivered_energy (kWh)``)
        [kWh], one row per session with a positive stay and energy.
    """
    return _ev_sessions().copy()


# --------------------------------------------------------------------------- devices


def type_counts(devices: int) -> dict[DeviceType, int]:
    """Devices of each type: :data:`TYPE_SHARES` of ``devices``, rounded by largest remainder."""
    exact = {kind: share * devices for kind, share in TYPE_SHARES.items()}
    counts = {kind: math.floor(value) for kind, value in exact.items()}
    order = sorted(TYPE_SHARES, key=lambda kind: counts[kind] - exact[kind])
    for kind in order[: devices - sum(counts.values())]:
        counts[kind] += 1
    return counts


def region_names(feeders: int) -> list[str]:
    """Names of the regions that ``feeders`` feeders fall in, :data:`FEEDERS_PER_REGION` each."""
    return [_region(index)[0] for index in range(math.ceil(feeders / FEEDERS_PER_REGION))]


def feeder_name(index: int) -> str:
    """``F-01`` for index 0, ``F-02`` for 1, ..."""
    return f"F-{index + 1:02d}"


def _region(index: int) -> tuple[str, float, float]:
    if index < len(REGIONS):
        return REGIONS[index]
    return (f"Region {index + 1}", 0.0, 0.0)


def owner_address(owner_name: str) -> str:
    """An owner's EVM address: the last 20 bytes of keccak-256 of the name, EIP-55 checksummed."""
    return str(to_checksum_address("0x" + keccak(text=owner_name)[-20:].hex()))


def _households(
    counts: dict[DeviceType, int], households: int, rng: np.random.Generator
) -> list[list[DeviceType]]:
    """Spread residential devices over households, at most one of a type per household.

    Batteries go first to households with PV. Households left empty take a device
    from a household with several, so every household has at least one.
    """
    members: list[list[DeviceType]] = [[] for _ in range(households)]
    with_pv = rng.permutation(households)[: counts[DeviceType.pv_inverter]]
    for index in with_pv:
        members[index].append(DeviceType.pv_inverter)
    without_pv = np.setdiff1d(np.arange(households), with_pv)
    batteries = counts[DeviceType.battery]
    pv_first = np.concatenate([rng.permutation(with_pv), rng.permutation(without_pv)])
    for index in pv_first[:batteries]:
        members[index].append(DeviceType.battery)
    for kind, count in counts.items():
        if kind in (DeviceType.pv_inverter, DeviceType.battery, DeviceType.c_and_i_storage):
            continue
        for index in rng.permutation(households)[:count]:
            members[index].append(kind)
    for empty in [index for index, kinds in enumerate(members) if not kinds]:
        donors = [index for index, kinds in enumerate(members) if len(kinds) > 1]
        donor = members[donors[int(rng.integers(len(donors)))]]
        members[empty].append(donor.pop(int(rng.integers(len(donor)))))
    return members


def _sites(devices: int, feeders: int, rng: np.random.Generator) -> list[list[DeviceType]]:
    """Device types per site: households, then one C&I site per C&I storage unit, shuffled."""
    counts = type_counts(devices)
    commercial = counts[DeviceType.c_and_i_storage]
    residential = devices - commercial
    households = 0
    if residential:
        households = min(
            residential,
            max(
                max(count for kind, count in counts.items() if kind != DeviceType.c_and_i_storage),
                math.ceil(residential / DEVICES_PER_HOUSEHOLD),
                feeders - commercial,
            ),
        )
    sites = _households(counts, households, rng) if households else []
    sites += [[DeviceType.c_and_i_storage] for _ in range(commercial)]
    order = rng.permutation(len(sites))
    return [sorted(sites[index], key=list(TYPE_SHARES).index) for index in order]


def _serial(product: Product, rng: np.random.Generator, taken: set[str]) -> str:
    alphabet = np.array(list("0123456789ABCDEFGHJKLMNPRSTUVWXYZ"))
    while True:
        serial = product.serial_prefix + "".join(rng.choice(alphabet, 10))
        if serial not in taken:
            taken.add(serial)
            return serial


def _rating(product: Product, rng: np.random.Generator) -> float:
    if product.ratings_kw:
        return float(product.ratings_kw[int(rng.integers(len(product.ratings_kw)))])
    assert product.rating_range_kw is not None
    low, high = product.rating_range_kw
    step = product.rating_step_kw
    return round(round(float(rng.uniform(low, high)) / step) * step, 4)


def _energy(product: Product, rating_kw: float, rng: np.random.Generator) -> float | None:
    if product.energy_kwh is not None:
        return product.energy_kwh
    if product.storage_hours is None:
        return None
    hours = float(rng.uniform(*product.storage_hours))
    return float(min(max(round(rating_kw * hours / 10.0) * 10.0, 200.0), 4000.0))


def _protocols(kind: DeviceType, rng: np.random.Generator) -> list[str]:
    draw = float(rng.random())
    openadr = Protocol.openadr_2_0b.value
    if kind == DeviceType.ev_charger:
        ocpp = (Protocol.ocpp_1_6j, Protocol.ocpp_2_0_1)[int(rng.integers(2))].value
        return [openadr, ocpp] if draw < 0.7 else [ocpp]
    if kind == DeviceType.pv_inverter:
        ieee = Protocol.ieee_2030_5.value
        return [ieee] if draw < 0.5 else [openadr, ieee] if draw < 0.8 else [openadr]
    if kind in (DeviceType.battery, DeviceType.c_and_i_storage):
        return [openadr, Protocol.ieee_2030_5.value] if draw < 0.3 else [openadr]
    if kind == DeviceType.thermostat:
        return [openadr, Protocol.matter.value] if draw < 0.3 else [openadr]
    return [openadr]


def _power_limits(kind: DeviceType, product: Product, rating_kw: float) -> tuple[float, float]:
    """``(p_min_kw, p_max_kw)`` of a device of this type and rating [kW]."""
    if kind in STORAGE_TYPES or product.bidirectional:
        return -rating_kw, rating_kw
    if kind == DeviceType.pv_inverter:
        return -rating_kw, 0.0
    return 0.0, rating_kw


def _device(
    kind: DeviceType, site: dict[str, Any], rng: np.random.Generator, serials: set[str]
) -> dict[str, Any]:
    products = CATALOG[kind]
    weights = np.array([product.weight for product in products])
    product = products[int(rng.choice(len(products), p=weights / weights.sum()))]
    rating_kw = _rating(product, rng)
    p_min_kw, p_max_kw = _power_limits(kind, product, rating_kw)
    low, high = RESPONSE_TIME_S[kind]
    intervals = TELEMETRY_INTERVAL_S[kind]
    return {
        "device_type": kind.value,
        "make": product.make,
        "model": product.model,
        "serial": _serial(product, rng, serials),
        **site,
        "p_max_kw": p_max_kw,
        "p_min_kw": p_min_kw,
        "e_max_kwh": _energy(product, rating_kw, rng),
        "response_time_s": float(rng.integers(low, high + 1)),
        "telemetry_interval_s": float(intervals[int(rng.integers(len(intervals)))]),
        "protocols": _protocols(kind, rng),
    }


def build_devices(devices: int, feeders: int, seed: int) -> list[dict[str, Any]]:
    """The devices of a demo fleet, as dicts of :class:`~registry.schemas.DeviceIn` fields.

    Sites are numbered ``site-0001``, ... and owned by ``owner-0001``, ...; about half
    the owners (always ``owner-0001``) have an EVM address. Sites are dealt to the
    feeders in turn, so every feeder has at least one. Devices are listed by site.
    """
    _check_sizes(devices, feeders, seed)
    rng = np.random.default_rng([seed, 0])
    feeder_centres = []
    for index in range(feeders):
        _, lat_offset, lon_offset = _region(index // FEEDERS_PER_REGION)
        jitter = rng.normal(0.0, 0.03, 2)
        feeder_centres.append(
            (CITY_LAT + lat_offset + jitter[0], CITY_LON + lon_offset + jitter[1])
        )
    serials: set[str] = set()
    out: list[dict[str, Any]] = []
    for number, kinds in enumerate(_sites(devices, feeders, rng), start=1):
        feeder = (number - 1) % feeders
        owner = f"owner-{number:04d}"
        has_address = number == 1 or float(rng.random()) < ADDRESS_SHARE
        lat, lon = np.asarray(feeder_centres[feeder]) + rng.normal(0.0, 0.01, 2)
        site = {
            "owner_name": owner,
            "owner_address": owner_address(owner) if has_address else None,
            "site_id": f"site-{number:04d}",
            "lat": round(float(lat), 5),
            "lon": round(float(lon), 5),
            "feeder": feeder_name(feeder),
            "region": _region(feeder // FEEDERS_PER_REGION)[0],
            "utility": UTILITY,
        }
        out.extend(_device(kind, site, rng, serials) for kind in kinds)
    return out


def build_programs(feeders: int) -> list[dict[str, Any]]:
    """The three demo programs, as dicts of :class:`~registry.schemas.ProgramIn` fields."""
    regions = region_names(feeders)
    openadr = Protocol.openadr_2_0b.value
    return [
        {
            "program_id": "DEMO-RES-DR",
            "name": "Residential demand response",
            "utility": UTILITY,
            "regions": regions,
            "device_types": [
                DeviceType.battery.value,
                DeviceType.heat_pump.value,
                DeviceType.pool_pump.value,
                DeviceType.water_heater.value,
                DeviceType.thermostat.value,
                DeviceType.ev_charger.value,
            ],
            "min_power_kw": 1.0,
            "protocols": [openadr],
            "max_response_time_s": 300.0,
            "max_telemetry_interval_s": 900.0,
            "incentive_ovpp_per_kwh": 0.5,
            "connection_fee_ovpp": 0.0,
        },
        {
            "program_id": "DEMO-EV-MANAGED",
            "name": "Managed EV charging",
            "utility": UTILITY,
            "regions": regions,
            "device_types": [DeviceType.ev_charger.value],
            "min_power_kw": 3.6,
            "protocols": [openadr, Protocol.ocpp_1_6j.value, Protocol.ocpp_2_0_1.value],
            "max_response_time_s": 60.0,
            "max_telemetry_interval_s": 900.0,
            "incentive_ovpp_per_kwh": 0.3,
            "connection_fee_ovpp": 0.0,
        },
        {
            "program_id": "DEMO-CI-CAPACITY",
            "name": "C&I storage capacity",
            "utility": UTILITY,
            "regions": regions,
            "device_types": [DeviceType.c_and_i_storage.value],
            "min_power_kw": 50.0,
            "min_energy_kwh": 100.0,
            "protocols": [openadr, Protocol.ieee_2030_5.value],
            "max_response_time_s": 60.0,
            "max_telemetry_interval_s": 300.0,
            "incentive_ovpp_per_kwh": 0.8,
            "connection_fee_ovpp": 100.0,
        },
    ]


def _check_sizes(devices: int, feeders: int, seed: int) -> None:
    if devices < 1:
        raise ValueError(f"devices must be at least 1, got {devices}")
    if not 1 <= feeders <= devices:
        raise ValueError(f"feeders must be between 1 and devices ({devices}), got {feeders}")
    if seed < 0:
        raise ValueError(f"seed must not be negative, got {seed}")


# --------------------------------------------------------------------------- profiles


def step_times(end: pd.Timestamp, days: int, resolution: timedelta) -> pd.DatetimeIndex:
    """The reading instants: ``days`` days of steps of ``resolution``, the last at ``end`` (UTC)."""
    steps = int(timedelta(days=days) // resolution)
    return pd.date_range(end=end.tz_convert("UTC"), periods=steps, freq=resolution)


def local_hours(times: pd.DatetimeIndex) -> tuple[pd.Timestamp, np.ndarray]:
    """Local midnight of the first instant and the wall-clock hours since it [h].

    The hours follow the wall clock of :data:`TIMEZONE`, so they jump by one hour
    where daylight saving time starts or ends.
    """
    local = times.tz_convert(TIMEZONE).tz_localize(None)
    midnight = local[0].normalize()
    return midnight, ((local - midnight) / pd.Timedelta(hours=1)).to_numpy(dtype=float)


def hours_after(start: pd.Timestamp, local_times: np.ndarray) -> np.ndarray:
    """Hours from the UTC instant ``start`` to local wall-clock times of :data:`TIMEZONE` [h].

    Ambiguous times (when clocks go back) are read as daylight time; times that do not
    exist (when clocks go forward) are moved forward.
    """
    flat = pd.DatetimeIndex(np.ravel(local_times))
    zoned = flat.tz_localize(
        TIMEZONE, ambiguous=np.ones(len(flat), dtype=bool), nonexistent="shift_forward"
    )
    hours = (zoned.tz_convert("UTC") - start) / pd.Timedelta(hours=1)
    return hours.to_numpy(dtype=float).reshape(np.shape(local_times))


def periodic_interpolation(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` at fractional ``positions``, wrapping around its end."""
    lower = np.floor(positions).astype(np.int64)
    fraction = positions - lower
    low = values[lower % len(values)]
    high = values[(lower + 1) % len(values)]
    return low + (high - low) * fraction


def pv_shape(times: pd.DatetimeIndex) -> np.ndarray:
    """PVWatts AC output per unit of nameplate at each instant (local standard time) [kW/kW]."""
    standard = (times.tz_convert("UTC") + STANDARD_UTC_OFFSET).tz_localize(None)
    hour_of_year = (
        (standard.day_of_year.to_numpy() - 1) * 24.0
        + standard.hour.to_numpy()
        + standard.minute.to_numpy() / 60.0
        + standard.second.to_numpy() / 3600.0
    )
    # Hourly values are means over the hour: place each at its middle.
    return periodic_interpolation(_pv_profile(), hour_of_year - 0.5)


def uci_window_starts(
    count: int, first_local_day: pd.Timestamp, window_hours: float, rng: np.random.Generator
) -> np.ndarray:
    """Rows of UCI midnights to start ``count`` windows at, in the season of ``first_local_day``.

    The season is :data:`SEASON_DAYS` either side of its day of year, in any year.
    """
    stamps = _household_power()["timestamp_local"]
    rows = np.arange(len(stamps))
    day_gap = np.abs(stamps.dt.day_of_year.to_numpy() - first_local_day.day_of_year)
    in_season = np.minimum(day_gap, 365 - day_gap) <= SEASON_DAYS
    fits = (rows >= 1) & (rows + window_hours + 2 < len(stamps))
    candidates = rows[(stamps.dt.hour.to_numpy() == 0) & in_season & fits]
    if not len(candidates):
        candidates = rows[(stamps.dt.hour.to_numpy() == 0) & fits]
    return rng.choice(candidates, count)


def uci_profiles(column: str, starts: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """UCI ``column`` [kW] from each start row, at wall-clock ``hours`` after it, interpolated.

    Returns an array of shape ``(len(starts), len(hours))`` [kW].
    """
    values = _household_power()[column].to_numpy(dtype=float)
    # Hourly means sit at the middle of their hour.
    positions = starts[:, None] + hours[None, :] - 0.5
    lower = np.floor(positions).astype(np.int64)
    fraction = positions - lower
    return values[lower] + (values[lower + 1] - values[lower]) * fraction


def block_power(
    step_hours: np.ndarray,
    step_h: float,
    starts_h: np.ndarray,
    lengths_h: np.ndarray,
    power_kw: np.ndarray,
) -> np.ndarray:
    """Mean power per step of devices that run at ``power_kw`` in blocks [kW].

    Parameters
    ----------
    step_hours : ndarray, shape (steps,)
        Start of each step [h].
    step_h : float
        Length of a step [h].
    starts_h, lengths_h : ndarray, shape (devices, blocks)
        Start and length of each block of each device [h]; blocks of one device must
        not overlap.
    power_kw : ndarray, shape (devices,)
        Power while running [kW].

    Returns
    -------
    ndarray, shape (devices, steps)
        Mean power over each step, so that energy per block is exactly
        ``power_kw * lengths_h`` where the block lies inside the steps [kW].
    """
    devices = len(power_kw)
    out = np.zeros((devices, len(step_hours)))
    per_device = max(1, starts_h.shape[1] * len(step_hours))
    chunk = max(1, BLOCK_CELLS // per_device)
    for begin in range(0, devices, chunk):
        end = begin + chunk
        start = starts_h[begin:end, :, None]
        length = lengths_h[begin:end, :, None]
        on_h = np.clip(step_hours + step_h - start, 0.0, length) - np.clip(
            step_hours - start, 0.0, length
        )
        out[begin:end] = on_h.sum(axis=1) / step_h * power_kw[begin:end, None]
    return out


def dispatch_storage(
    target_kw: np.ndarray,
    p_min_kw: np.ndarray,
    p_max_kw: np.ndarray,
    e_max_kwh: np.ndarray,
    soc_start_frac: np.ndarray,
    step_h: float,
    online: np.ndarray,
    *,
    efficiency: float = STORAGE_EFFICIENCY,
    reserve_frac: float = RESERVE_FRAC,
) -> tuple[np.ndarray, np.ndarray]:
    """Follow a target power as closely as ratings and state of charge allow.

    Parameters
    ----------
    target_kw : ndarray, shape (devices, steps)
        Wanted power, positive to charge [kW].
    p_min_kw, p_max_kw, e_max_kwh, soc_start_frac : ndarray, shape (devices,)
        Ratings [kW], [kW], [kWh] and the state of charge before the first step [0-1].
    step_h : float
        Length of a step [h].
    online : ndarray of bool, shape (devices, steps)
        Offline steps have zero power.
    efficiency : float
        One-way efficiency of charging and of discharging.
    reserve_frac : float
        State of charge below which the device does not discharge [0-1].

    Returns
    -------
    power_kw, soc_frac : ndarray, shape (devices, steps)
        Mean power over each step [kW] and the state of charge at its start [0-1].
    """
    power_kw = np.zeros_like(target_kw, dtype=float)
    soc_frac = np.zeros_like(target_kw, dtype=float)
    energy_kwh = soc_start_frac * e_max_kwh
    for step in range(target_kw.shape[1]):
        soc_frac[:, step] = energy_kwh / e_max_kwh
        room_kw = (e_max_kwh - energy_kwh) / (efficiency * step_h)
        available_kw = np.maximum(energy_kwh - reserve_frac * e_max_kwh, 0.0) * efficiency / step_h
        low = np.maximum(p_min_kw, -available_kw)
        high = np.minimum(p_max_kw, room_kw)
        power = np.where(online[:, step], np.clip(target_kw[:, step], low, high), 0.0)
        stored = np.where(power > 0, power * efficiency, power / efficiency) * step_h
        energy_kwh = np.clip(energy_kwh + stored, 0.0, e_max_kwh)
        power_kw[:, step] = power
    return power_kw, soc_frac


def _in_hours(hours: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    hour_of_day = np.mod(hours, 24.0)
    return (hour_of_day >= window[0]) & (hour_of_day < window[1])


@dataclass(frozen=True)
class _Clock:
    """The time axis of the readings."""

    times: pd.DatetimeIndex
    step_h: float
    #: Hours since the first instant [h].
    step_hours: np.ndarray
    #: Local midnight of the first instant.
    midnight: pd.Timestamp
    #: Local wall-clock hours since ``midnight`` [h].
    wall_hours: np.ndarray
    #: Local midnights from the day before the first instant to the day of the last.
    days: np.ndarray

    @classmethod
    def of(cls, times: pd.DatetimeIndex, resolution: timedelta) -> _Clock:
        midnight, wall_hours = local_hours(times)
        last_day = int(wall_hours[-1] // 24)
        days = (midnight + pd.to_timedelta(np.arange(-1, last_day + 1), unit="D")).to_numpy()
        step_h = resolution / timedelta(hours=1)
        return cls(times, step_h, np.arange(len(times)) * step_h, midnight, wall_hours, days)

    def daily(self, hour_of_day: np.ndarray) -> np.ndarray:
        """Hours after the first instant of a local time of day on each day [h].

        ``hour_of_day`` has shape ``(devices, days)`` or ``(devices, 1)``.
        """
        offsets = np.round(np.asarray(hour_of_day) * 3.6e9).astype("timedelta64[us]")
        local = self.days[None, :] + offsets
        return hours_after(self.times[0], local)


def _pv_power(clock: _Clock, ratings_kw: np.ndarray) -> np.ndarray:
    return -pv_shape(clock.times)[None, :] * ratings_kw[:, None]


def _thermal_power(clock: _Clock, ratings_kw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    starts = uci_window_starts(len(ratings_kw), clock.midnight, clock.wall_hours[-1], rng)
    peak_kw = float(_household_power()["thermal_kw"].max())
    return uci_profiles("thermal_kw", starts, clock.wall_hours) / peak_kw * ratings_kw[:, None]


def _ev_power(clock: _Clock, ratings_kw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sessions = _ev_sessions()
    chargers, days = len(ratings_kw), len(clock.days)
    picks = rng.integers(0, len(sessions), (chargers, days))
    plugged = rng.random((chargers, days)) < rng.uniform(0.5, 0.9, chargers)[:, None]
    arrivals_h = clock.daily(sessions["arrival_hour"].to_numpy()[picks])
    stays_h = sessions["duration_h"].to_numpy()[picks]
    energy_kwh = sessions["energy_kwh"].to_numpy()[picks]
    free_h = np.full(chargers, -np.inf)
    for day in range(days):
        plugged[:, day] &= arrivals_h[:, day] >= free_h
        leave_h = arrivals_h[:, day] + stays_h[:, day] + EV_GAP_STEPS * clock.step_h
        free_h = np.where(plugged[:, day], leave_h, free_h)
    charging_h = np.where(plugged, np.minimum(energy_kwh / ratings_kw[:, None], stays_h), 0.0)
    return block_power(clock.step_hours, clock.step_h, arrivals_h, charging_h, ratings_kw)


def _pool_power(clock: _Clock, ratings_kw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    pumps = len(ratings_kw)
    start_hour = rng.integers(7, 13, pumps).astype(float)
    run_h = rng.integers(4, 9, pumps).astype(float)
    starts_h = clock.daily(np.repeat(start_hour[:, None], len(clock.days), axis=1))
    lengths_h = np.repeat(run_h[:, None], len(clock.days), axis=1)
    return block_power(clock.step_hours, clock.step_h, starts_h, lengths_h, ratings_kw)


def _battery_target(
    clock: _Clock, load_kw: np.ndarray, pv_kw: np.ndarray, has_pv: np.ndarray, p_max_kw: np.ndarray
) -> np.ndarray:
    """Self-consumption where the site has PV; otherwise off-peak charging and peak cover [kW]."""
    self_consumption = -(load_kw + pv_kw)
    off_peak = _in_hours(clock.wall_hours, OFF_PEAK_HOURS)[None, :]
    peak = _in_hours(clock.wall_hours, PEAK_HOURS)[None, :]
    time_of_use = np.where(off_peak, p_max_kw[:, None], np.where(peak, -load_kw, 0.0))
    return np.where(has_pv[:, None], self_consumption, time_of_use)


def _c_and_i_target(clock: _Clock, p_max_kw: np.ndarray, e_max_kwh: np.ndarray) -> np.ndarray:
    charge = _in_hours(clock.wall_hours, CI_CHARGE_HOURS)[None, :]
    discharge = _in_hours(clock.wall_hours, CI_DISCHARGE_HOURS)[None, :]
    charge_kw = np.minimum(e_max_kwh / np.diff(CI_CHARGE_HOURS)[0], p_max_kw)
    discharge_kw = np.minimum(e_max_kwh / np.diff(CI_DISCHARGE_HOURS)[0], p_max_kw)
    return np.where(charge, charge_kw[:, None], np.where(discharge, -discharge_kw[:, None], 0.0))


def _online_mask(devices: int, clock: _Clock, rng: np.random.Generator) -> np.ndarray:
    """About :data:`OFFLINE_SHARE` of devices offline for one stretch each."""
    steps = len(clock.times)
    online = np.ones((devices, steps), dtype=bool)
    chosen = rng.permutation(devices)[: round(OFFLINE_SHARE * devices)]
    for index in chosen:
        length = max(1, round(float(rng.uniform(*OFFLINE_HOURS)) / clock.step_h))
        length = min(length, steps)
        begin = int(rng.integers(0, steps - length + 1))
        online[index, begin : begin + length] = False
    return online


def build_readings(
    devices: Sequence[dict[str, Any]], times: pd.DatetimeIndex, resolution: timedelta, seed: int
) -> pd.DataFrame:
    """Telemetry of ``devices`` at ``times``, derived from the real data (see the module).

    Returns
    -------
    DataFrame
        See :class:`DemoFleet`; sorted by device (in the order given), then time.
    """
    ids = [derive_device_id(d["make"], d["model"], d["serial"]) for d in devices]
    shape = (len(ids), len(times))
    if not len(times) or not devices:
        return _readings_frame(
            ids, times, np.zeros(shape), np.full(shape, np.nan), np.ones(shape, dtype=bool)
        )
    rng = np.random.default_rng([seed, 1])
    clock = _Clock.of(times, resolution)
    kinds = np.array([d["device_type"] for d in devices])
    p_max = np.array([d["p_max_kw"] for d in devices], dtype=float)
    p_min = np.array([d["p_min_kw"] for d in devices], dtype=float)
    e_max = np.array([d["e_max_kwh"] or np.nan for d in devices], dtype=float)
    sites = np.array([d["site_id"] for d in devices])
    power = np.zeros(shape)
    soc = np.full(shape, np.nan)
    online = _online_mask(len(devices), clock, rng)

    def of(*types: DeviceType) -> np.ndarray:
        return np.flatnonzero(np.isin(kinds, [t.value for t in types]))

    pv = of(DeviceType.pv_inverter)
    power[pv] = _pv_power(clock, p_max[pv] - p_min[pv])
    thermal = of(DeviceType.heat_pump, DeviceType.water_heater, DeviceType.thermostat)
    power[thermal] = _thermal_power(clock, p_max[thermal], rng)
    chargers = of(DeviceType.ev_charger)
    power[chargers] = _ev_power(clock, p_max[chargers], rng)
    pumps = of(DeviceType.pool_pump)
    power[pumps] = _pool_power(clock, p_max[pumps], rng)
    power = np.where(online, power, 0.0)

    batteries = of(DeviceType.battery)
    pv_by_site: dict[str, list[int]] = {}
    for index in pv:
        pv_by_site.setdefault(str(sites[index]), []).append(int(index))
    has_pv = np.array([str(site) in pv_by_site for site in sites[batteries]], dtype=bool)
    pv_kw = np.zeros((len(batteries), len(times)))
    for row, site in enumerate(sites[batteries]):
        if str(site) in pv_by_site:
            pv_kw[row] = power[pv_by_site[str(site)]].sum(axis=0)
    starts = uci_window_starts(len(batteries), clock.midnight, clock.wall_hours[-1], rng)
    load_kw = uci_profiles("load_kw", starts, clock.wall_hours)
    target = _battery_target(clock, load_kw, pv_kw, has_pv, p_max[batteries])
    commercial = of(DeviceType.c_and_i_storage)
    target_ci = _c_and_i_target(clock, p_max[commercial], e_max[commercial])
    storage = np.concatenate([batteries, commercial])
    power[storage], soc[storage] = dispatch_storage(
        np.concatenate([target, target_ci]),
        p_min[storage],
        p_max[storage],
        e_max[storage],
        rng.uniform(0.3, 0.7, len(storage)),
        clock.step_h,
        online[storage],
    )
    power = np.clip(power, p_min[:, None], p_max[:, None])
    return _readings_frame(ids, times, power, soc, online)


def _readings_frame(
    ids: list[str],
    times: pd.DatetimeIndex,
    power_kw: np.ndarray,
    soc_frac: np.ndarray,
    online: np.ndarray,
) -> pd.DataFrame:
    steps = len(times)
    return pd.DataFrame(
        {
            "device_id": pd.Series(np.repeat(np.array(ids, dtype=object), steps), dtype="str"),
            "timestamp": times.take(np.tile(np.arange(steps), len(ids))),
            "p_kw": power_kw.ravel().astype(float),
            "soc_frac": soc_frac.ravel().astype(float),
            "online": online.ravel().astype(bool),
        },
        columns=READING_COLUMNS,
    )


def build_fleet(
    devices: int,
    feeders: int,
    seed: int,
    *,
    end: datetime | None = None,
    days: int = 7,
    resolution: timedelta = timedelta(minutes=15),
) -> DemoFleet:
    """Build a demo fleet and its recent telemetry from real data.

    Parameters
    ----------
    devices : int
        Number of devices (at least 1).
    feeders : int
        Number of feeders ``F-01``, ``F-02``, ... (1 to ``devices``), four to a region.
    seed : int
        Random seed (not negative); the same seed gives the same fleet.
    end : datetime, optional
        Time of the last reading, time-zone aware; default: now, floored to ``resolution``.
    days : int
        Days of readings [d]; 0 gives none.
    resolution : timedelta
        Time between readings.

    Returns
    -------
    DemoFleet
        The devices (independent of ``end``, ``days`` and ``resolution``), three
        programs and the readings.
    """
    _check_sizes(devices, feeders, seed)
    if days < 0:
        raise ValueError(f"days must not be negative, got {days}")
    if resolution <= timedelta(0) or resolution > timedelta(days=1):
        raise ValueError(f"resolution must be positive and at most one day, got {resolution}")
    if end is None:
        last = pd.Timestamp.now(tz="UTC").floor(resolution)
    elif end.tzinfo is None:
        raise ValueError("end must be time-zone aware")
    else:
        last = pd.Timestamp(end).tz_convert("UTC")
    fleet_devices = build_devices(devices, feeders, seed)
    times = step_times(last, days, resolution)
    return DemoFleet(
        devices=fleet_devices,
        programs=build_programs(feeders),
        readings=build_readings(fleet_devices, times, resolution, seed),
    )


# --------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class SeedReport:
    """What :func:`seed_demo` added: new devices, programs, enrolments and readings.

    ``skipped_devices`` counts devices that were already registered.
    """

    devices: int
    programs: int
    enrollments: int
    readings: int
    skipped_devices: int


def _devices_by_id(session: Session, ids: Sequence[str]) -> list[Device]:
    """The registered devices among ``ids``, in the order of ``ids``."""
    found: list[Device] = []
    for begin in range(0, len(ids), ID_CHUNK):
        chunk = list(ids[begin : begin + ID_CHUNK])
        found.extend(session.scalars(select(Device).where(Device.device_id.in_(chunk))))
    order = {device_id: index for index, device_id in enumerate(ids)}
    return sorted(found, key=lambda device: order[device.device_id])


def _registered(session: Session, ids: Sequence[str]) -> set[str]:
    """The ids among ``ids`` that are registered."""
    found: set[str] = set()
    for begin in range(0, len(ids), ID_CHUNK):
        chunk = list(ids[begin : begin + ID_CHUNK])
        found.update(session.scalars(select(Device.device_id).where(Device.device_id.in_(chunk))))
    return found


def _open_links(session: Session, program_ids: Iterable[str]) -> set[tuple[str, str]]:
    query = select(Enrollment.device_id, Enrollment.program_id).where(
        Enrollment.ended_at.is_(None), Enrollment.program_id.in_(list(program_ids))
    )
    return {(row.device_id, row.program_id) for row in session.execute(query)}


def reading_records(readings: pd.DataFrame) -> pd.DataFrame:
    """Readings as :func:`registry.telemetry.store_readings` takes them (ISO 8601 UTC stamps)."""
    naive = readings["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    return pd.DataFrame(
        {
            "device_id": readings["device_id"].to_numpy(),
            "timestamp": np.datetime_as_string(naive, unit="s", timezone="UTC"),
            "p_kw": readings["p_kw"].to_numpy(),
            "soc_frac": readings["soc_frac"].to_numpy(),
            "online": readings["online"].to_numpy(),
        }
    )


def seed_demo(
    session: Session,
    fleet: DemoFleet,
    *,
    vtn_url: str,
    progress: Callable[[str, int, int], None] | None = None,
) -> SeedReport:
    """Store a demo fleet through the registry: devices, programs, enrolments, readings.

    Devices already registered are skipped (and counted), programs whose id exists
    are kept as they are, every device is enrolled in every program whose capability
    checks it passes and that it is not linked to yet, and readings are stored in
    batches of :data:`READING_BATCH`, idempotently. Running it twice adds nothing.

    Nothing is committed: the caller commits (or rolls back) the whole seed as one
    transaction.

    Parameters
    ----------
    vtn_url : str
        Address of the OpenADR VTN given to each enrolment.
    progress : callable, optional
        Called as ``progress(stage, done, total)`` with stage ``"devices"``,
        ``"programs"``, ``"enrollments"`` or ``"readings"``.

    Returns
    -------
    SeedReport
        What was added. Readings the registry refuses (a retired device, a time in the
        future) are not stored and not counted.

    Raises
    ------
    InvalidInput
        A device of the fleet is invalid, or appears twice in it.
    """

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    now = utcnow()
    total = len(fleet.devices)
    ids = [derive_device_id(d["make"], d["model"], d["serial"]) for d in fleet.devices]
    registered = _registered(session, ids)
    result = bulk_create_devices(
        session, fleet.devices, now=now, progress=lambda done: report("devices", done, total)
    )
    problems = [
        Problem(f"devices.{error.row}.{problem.field}", problem.message, problem.value)
        for error in result.errors
        if error.device_id not in registered
        for problem in error.problems
    ]
    if problems:
        raise InvalidInput(problems)

    programs_added = 0
    programs: list[Program] = []
    for index, raw in enumerate(fleet.programs, start=1):
        data = ProgramIn.model_validate(raw)
        program = session.get(Program, data.program_id)
        if program is None:
            program = create_program(session, data, now=now)
            programs_added += 1
        programs.append(program)
        report("programs", index, len(fleet.programs))

    linked = _open_links(session, [program.program_id for program in programs])
    enrolled = 0
    stored_devices = _devices_by_id(session, ids)
    for index, device in enumerate(stored_devices, start=1):
        for program in programs:
            if (device.device_id, program.program_id) in linked:
                continue
            if all(check.passed for check in capability_checks(device, program)):
                enroll(
                    session,
                    device.device_id,
                    program.program_id,
                    vtn_url=vtn_url,
                    actor=SEED_ACTOR,
                    now=now,
                )
                enrolled += 1
        if index % 100 == 0 or index == len(stored_devices):
            report("enrollments", index, len(stored_devices))

    records = reading_records(fleet.readings)
    stored = 0
    for begin in range(0, len(records), READING_BATCH):
        batch = records.iloc[begin : begin + READING_BATCH]
        stored += store_readings(session, batch, now=now).stored
        report("readings", begin + len(batch), len(records))
    return SeedReport(
        devices=len(result.created),
        programs=programs_added,
        enrollments=enrolled,
        readings=stored,
        skipped_devices=len(registered),
    )
