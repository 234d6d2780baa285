"""The demo fleet: devices, programs and telemetry derived from real data, and its seeding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from eth_utils import is_checksum_address
from numpy.lib.stride_tricks import sliding_window_view
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.demo import (
    CATALOG,
    DATA_DIR,
    STORAGE_EFFICIENCY,
    TIMEZONE,
    TYPE_SHARES,
    DemoFleet,
    SeedReport,
    block_power,
    build_fleet,
    dispatch_storage,
    load_ev_sessions,
    load_household_power,
    load_pv_profile,
    owner_address,
    seed_demo,
    type_counts,
)
from registry.enrollment import capability_checks
from registry.errors import InvalidInput
from registry.identity import device_id
from registry.schemas import STORAGE_TYPES, DeviceIn, DeviceType, ProgramIn, Protocol
from registry.tables import Device, Enrollment, EnrollmentLog, Program, Reading
from registry.telemetry import read_telemetry

#: Midnight local time (MDT) on 10 July 2024: no clock change in the two days before.
SUMMER_END = datetime(2024, 7, 10, 6, tzinfo=UTC)
#: Clocks went back on 3 November 2024 at 02:00 MDT.
AUTUMN_END = datetime(2024, 11, 5, 7, tzinfo=UTC)
DEVICES = 60
FEEDERS = 4
SEED = 7
DAYS = 2
STEP_H = 0.25


@pytest.fixture(scope="module")
def fleet() -> DemoFleet:
    return build_fleet(DEVICES, FEEDERS, SEED, end=SUMMER_END, days=DAYS)


@pytest.fixture(scope="module")
def autumn_fleet() -> DemoFleet:
    return build_fleet(DEVICES, FEEDERS, SEED, end=AUTUMN_END, days=3)


def devices_frame(fleet: DemoFleet) -> pd.DataFrame:
    frame = pd.DataFrame(fleet.devices)
    frame["device_id"] = [device_id(d["make"], d["model"], d["serial"]) for d in fleet.devices]
    return frame


def readings_with_devices(fleet: DemoFleet) -> pd.DataFrame:
    columns = ["device_id", "device_type", "site_id", "p_min_kw", "p_max_kw", "e_max_kwh"]
    frame = fleet.readings.merge(devices_frame(fleet)[columns], on="device_id", validate="m:1")
    local = frame["timestamp"].dt.tz_convert(TIMEZONE)
    frame["local_date"] = local.dt.date
    frame["local_hour"] = local.dt.hour + local.dt.minute / 60
    return frame


def of_type(frame: pd.DataFrame, kind: DeviceType) -> pd.DataFrame:
    return frame[frame["device_type"] == kind.value]


def always_online(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame.groupby("device_id")["online"].transform("all")]


def runs(values: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last + 1)`` of each run of positive values."""
    on = np.concatenate([[False], values > 0, [False]])
    edges = np.flatnonzero(np.diff(on.astype(int)))
    return list(zip(edges[::2], edges[1::2], strict=True))


# --------------------------------------------------------------------------- data


def test_data_is_copied_into_the_package_with_its_provenance() -> None:
    names = {path.name for path in DATA_DIR.iterdir()}
    assert {
        "uci_household_power_hourly.csv.gz",
        "nrel_pvwatts_8760_rackmount_golden_co.csv.gz",
        "acn_caltech_2019-09-01_2019-12-31.csv.gz",
        "SOURCES.md",
    } <= names
    sources = (DATA_DIR / "SOURCES.md").read_text()
    for needle in ("CC BY 4.0", "BSD-3", "Lee, Li & Low", "unchanged"):
        assert needle in sources


def test_real_data_loads_with_published_values() -> None:
    household = load_household_power()
    assert len(household) == 34_589
    steps = household["timestamp_local"].diff().dropna()
    assert (steps == pd.Timedelta(hours=1)).all()
    assert household["thermal_kw"].max() == pytest.approx(21.55 * 60 / 1000)
    pv = load_pv_profile()
    assert pv.shape == (8760,)
    # PVWatts' published annual AC output of the 4 kWdc system: 6,023,671 Wh.
    assert pv.sum() * 4000 / 1.2 == pytest.approx(6_023_671, rel=1e-6)
    assert pv.max() == pytest.approx(1.0, abs=1e-6)
    sessions = load_ev_sessions()
    assert len(sessions) == 3177
    assert sessions["energy_kwh"].sum() == pytest.approx(27_974.3, rel=1e-3)
    assert (sessions["duration_h"] > 0).all()
    assert sessions["arrival_hour"].between(0, 24).all()


# --------------------------------------------------------------------------- devices


def test_build_fleet_is_deterministic_for_a_seed(fleet: DemoFleet) -> None:
    again = build_fleet(DEVICES, FEEDERS, SEED, end=SUMMER_END, days=DAYS)
    assert again.devices == fleet.devices
    assert again.programs == fleet.programs
    pd.testing.assert_frame_equal(again.readings, fleet.readings)
    other = build_fleet(DEVICES, FEEDERS, SEED + 1, end=SUMMER_END, days=DAYS)
    assert {d["serial"] for d in other.devices}.isdisjoint(d["serial"] for d in fleet.devices)
    assert not np.array_equal(other.readings["p_kw"], fleet.readings["p_kw"])


def test_devices_do_not_depend_on_the_time_window(fleet: DemoFleet) -> None:
    longer = build_fleet(DEVICES, FEEDERS, SEED, end=AUTUMN_END, days=0)
    assert longer.devices == fleet.devices


def test_every_device_validates_and_has_a_unique_id(fleet: DemoFleet) -> None:
    ids = [device_id(d["make"], d["model"], d["serial"]) for d in fleet.devices]
    for device in fleet.devices:
        DeviceIn.model_validate(device)
    assert len(set(ids)) == DEVICES
    assert list(fleet.readings["device_id"].unique()) == ids


@pytest.mark.parametrize(("devices", "feeders"), [(60, 4), (500, 8), (13, 13), (1, 1)])
def test_device_and_feeder_counts_match_the_arguments(devices: int, feeders: int) -> None:
    built = build_fleet(devices, feeders, 3, end=SUMMER_END, days=0)
    frame = pd.DataFrame(built.devices)
    assert len(frame) == devices
    assert sorted(frame["feeder"].unique()) == [f"F-{i:02d}" for i in range(1, feeders + 1)]
    regions_of = frame.groupby("feeder")["region"].nunique()
    assert (regions_of == 1).all()
    assert frame["region"].nunique() == -(-feeders // 4)
    assert set(frame["utility"]) == {"Demo Power & Light"}


def test_type_shares_are_as_intended() -> None:
    counts = pd.DataFrame(build_fleet(500, 8, 1, days=0).devices)["device_type"].value_counts()
    assert counts.sum() == 500
    for kind, share in TYPE_SHARES.items():
        assert abs(counts.get(kind.value, 0) - share * 500) <= 1, kind
    assert type_counts(60)[DeviceType.battery] == 15
    assert sum(type_counts(7).values()) == 7


def test_sites_have_one_owner_and_at_most_one_device_of_a_type(fleet: DemoFleet) -> None:
    frame = pd.DataFrame(fleet.devices)
    per_site = frame.drop_duplicates(["site_id", "owner_name", "feeder", "lat", "lon"])
    assert per_site["site_id"].is_unique
    assert not frame.duplicated(["site_id", "device_type"]).any()
    assert (
        frame["site_id"].str.removeprefix("site-") == frame["owner_name"].str.removeprefix("owner-")
    ).all()
    assert set(frame.loc[frame["site_id"] == "site-0001", "owner_name"]) == {"owner-0001"}
    assert frame["lat"].between(39.4, 40.1).all()
    assert frame["lon"].between(-105.4, -104.6).all()


def test_about_half_the_owners_have_a_checksummed_address() -> None:
    frame = pd.DataFrame(build_fleet(500, 8, 2, days=0).devices)
    owners = frame.drop_duplicates("owner_name").set_index("owner_name")["owner_address"]
    assert 0.35 < owners.notna().mean() < 0.65
    assert owners["owner-0001"] == owner_address("owner-0001")
    for name, address in owners.dropna().items():
        assert is_checksum_address(address)
        assert address == owner_address(str(name))


def test_ratings_are_realistic_and_signed_by_the_project_convention() -> None:
    frame = pd.DataFrame(build_fleet(500, 8, 5, days=0).devices)
    rating = pd.concat([frame["p_max_kw"], -frame["p_min_kw"]], axis=1).max(axis=1)
    limits = {
        "battery": (3.3, 11.5),
        "ev_charger": (7.2, 11.0),
        "heat_pump": (2.0, 6.0),
        "pool_pump": (0.75, 2.2),
        "pv_inverter": (3.0, 10.0),
        "c_and_i_storage": (100.0, 1000.0),
    }
    for kind, (low, high) in limits.items():
        chosen = rating[frame["device_type"] == kind]
        assert chosen.between(low, high).all(), kind
    assert (frame["p_min_kw"] <= frame["p_max_kw"]).all()
    pv = frame[frame["device_type"] == "pv_inverter"]
    assert (pv["p_max_kw"] == 0).all() and (pv["p_min_kw"] < 0).all()
    storage = frame[frame["device_type"].isin(list(STORAGE_TYPES))]
    assert (storage["p_min_kw"] == -storage["p_max_kw"]).all()
    homes = storage[storage["device_type"] == "battery"]["e_max_kwh"]
    assert homes.between(5, 20).all()
    plants = storage[storage["device_type"] == "c_and_i_storage"]["e_max_kwh"]
    assert plants.between(200, 4000).all()
    chargers = frame[frame["device_type"] == "ev_charger"]
    assert 0 < (chargers["p_min_kw"] < 0).sum() < len(chargers) / 4
    assert (frame["response_time_s"].between(1, 300)).all()
    assert (frame["telemetry_interval_s"].between(60, 900)).all()
    makes = {(p.make, p.model) for products in CATALOG.values() for p in products}
    assert set(zip(frame["make"], frame["model"], strict=True)) <= makes


def test_protocols_are_known_and_chargers_speak_ocpp() -> None:
    frame = pd.DataFrame(build_fleet(500, 8, 5, days=0).devices)
    known = {p.value for p in Protocol}
    assert all(set(protocols) <= known for protocols in frame["protocols"])
    speaks = frame["protocols"].map(lambda p: "openadr_2.0b" in p)
    assert speaks.mean() > 0.5
    chargers = frame.loc[frame["device_type"] == "ev_charger", "protocols"]
    assert all(any(p.startswith("ocpp") for p in protocols) for protocols in chargers)


def test_programs_validate_and_cover_every_region(fleet: DemoFleet) -> None:
    programs = {p["program_id"]: ProgramIn.model_validate(p) for p in fleet.programs}
    assert set(programs) == {"DEMO-RES-DR", "DEMO-EV-MANAGED", "DEMO-CI-CAPACITY"}
    regions = {d["region"] for d in fleet.devices}
    assert all(set(p.regions) == regions for p in programs.values())
    residential = programs["DEMO-RES-DR"]
    assert residential.min_power_kw == 1 and residential.incentive_ovpp_per_kwh == 0.5
    assert programs["DEMO-CI-CAPACITY"].min_energy_kwh == 100


@pytest.mark.parametrize(
    "arguments",
    [
        {"devices": 0, "feeders": 1, "seed": 1},
        {"devices": 3, "feeders": 4, "seed": 1},
        {"devices": 3, "feeders": 1, "seed": -1},
        {"devices": 3, "feeders": 1, "seed": 1, "days": -1},
        {"devices": 3, "feeders": 1, "seed": 1, "end": datetime(2024, 1, 1)},
        {"devices": 3, "feeders": 1, "seed": 1, "resolution": timedelta(0)},
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build_fleet(**arguments)


# --------------------------------------------------------------------------- readings


def test_readings_cover_the_window_at_the_resolution(fleet: DemoFleet) -> None:
    readings = fleet.readings
    assert list(readings.columns) == ["device_id", "timestamp", "p_kw", "soc_frac", "online"]
    assert str(readings["timestamp"].dt.tz) == "UTC"
    assert len(readings) == DEVICES * DAYS * 96
    for _, stamps in readings.groupby("device_id")["timestamp"]:
        assert stamps.iloc[-1] == pd.Timestamp(SUMMER_END)
        assert (stamps.diff().dropna() == pd.Timedelta(minutes=15)).all()


def test_no_days_gives_no_readings() -> None:
    readings = build_fleet(5, 2, 1, days=0).readings
    assert readings.empty
    assert list(readings.columns) == ["device_id", "timestamp", "p_kw", "soc_frac", "online"]


def test_default_end_is_now_floored_to_the_resolution() -> None:
    before = pd.Timestamp.now(tz="UTC")
    last = build_fleet(3, 1, 1, days=1, resolution=timedelta(hours=1)).readings["timestamp"].max()
    assert last == before.floor("h") or last == pd.Timestamp.now(tz="UTC").floor("h")


@pytest.mark.parametrize("fleet_name", ["fleet", "autumn_fleet"])
def test_every_reading_lies_within_its_device_limits(
    fleet_name: str, request: pytest.FixtureRequest
) -> None:
    frame = readings_with_devices(request.getfixturevalue(fleet_name))
    assert np.isfinite(frame["p_kw"]).all()
    assert (frame["p_kw"] >= frame["p_min_kw"] - 1e-9).all()
    assert (frame["p_kw"] <= frame["p_max_kw"] + 1e-9).all()
    storage = frame["device_type"].isin(list(STORAGE_TYPES))
    assert frame.loc[storage, "soc_frac"].between(0, 1).all()
    assert frame.loc[~storage, "soc_frac"].isna().all()
    assert (frame.loc[~frame["online"], "p_kw"] == 0).all()


def test_a_few_devices_go_offline_for_a_stretch() -> None:
    readings = build_fleet(500, 8, 1, end=SUMMER_END, days=2).readings
    offline = readings.loc[~readings["online"], "device_id"].unique()
    assert 10 <= len(offline) <= 20
    for _, online in readings[readings["device_id"].isin(offline)].groupby("device_id")["online"]:
        assert len(runs((~online).to_numpy().astype(float))) == 1


def test_pv_feeds_the_grid_by_day_and_is_zero_at_night(fleet: DemoFleet) -> None:
    pv = always_online(of_type(readings_with_devices(fleet), DeviceType.pv_inverter))
    assert pv["device_id"].nunique() >= 8
    assert (pv["p_kw"] <= 0).all()
    night = (pv["local_hour"] >= 22) | (pv["local_hour"] < 4)
    assert (pv.loc[night, "p_kw"] == 0).all()
    noon = pv[pv["local_hour"] == 13]  # solar noon under daylight saving time
    assert len(noon) == pv["device_id"].nunique() * DAYS
    assert (noon["p_kw"] < -0.2 * noon["p_min_kw"].abs()).all()


def test_pv_is_pvwatts_output_scaled_to_the_inverter(fleet: DemoFleet) -> None:
    pv = always_online(of_type(readings_with_devices(fleet), DeviceType.pv_inverter))
    profile = load_pv_profile()
    standard = pv["timestamp"].dt.tz_convert("UTC") - pd.Timedelta(hours=7)
    at_middle = standard.dt.minute == 30
    hour_of_year = (standard.dt.day_of_year - 1) * 24 + standard.dt.hour
    expected = -profile[hour_of_year[at_middle].to_numpy()] * pv.loc[at_middle, "p_min_kw"].abs()
    np.testing.assert_allclose(pv.loc[at_middle, "p_kw"], expected, atol=1e-9)


def test_heat_pumps_replay_a_window_of_uci_sub_metering_3(fleet: DemoFleet) -> None:
    household = load_household_power()
    thermal = household["thermal_kw"].to_numpy()
    peak = thermal.max()
    frame = always_online(of_type(readings_with_devices(fleet), DeviceType.heat_pump))
    assert frame["device_id"].nunique() >= 5
    for _, device in frame.groupby("device_id"):
        # At half past each hour the readings sit on an hourly UCI value.
        middle = device[device["local_hour"] % 1 == 0.5]
        observed = middle["p_kw"].to_numpy() * peak / device["p_max_kw"].iloc[0]
        windows = sliding_window_view(thermal, len(observed))
        matches = np.flatnonzero(np.abs(windows - observed).max(axis=1) < 1e-9)
        assert len(matches), "no UCI window reproduces the readings"
        first = household["timestamp_local"].iloc[matches[0]]
        assert first.hour == 0  # the window starts at a UCI midnight
        assert abs(first.day_of_year - 190) <= 31  # and in the same season (July)
        assert np.corrcoef(windows[matches[0]], observed)[0, 1] > 0.999


def test_ev_sessions_deliver_the_acn_session_energy(fleet: DemoFleet) -> None:
    sessions = load_ev_sessions()
    frame = always_online(of_type(readings_with_devices(fleet), DeviceType.ev_charger))
    checked = 0
    for _, device in frame.groupby("device_id"):
        rating = device["p_max_kw"].iloc[0]
        power = device["p_kw"].to_numpy()
        assert power.min() >= 0
        possible = np.concatenate(
            [sessions["energy_kwh"], rating * sessions["duration_h"]]
        )  # all of it, or as much as the stay allowed at rated power
        for first, last in runs(power):
            if first == 0 or last == len(power):
                continue  # cut by the window
            energy = power[first:last].sum() * STEP_H
            assert np.isclose(possible, energy, rtol=1e-9, atol=1e-9).any()
            assert np.isclose(power[first + 1 : last - 1], rating).all()
            checked += 1
    assert checked >= 10


def test_pool_pumps_run_one_block_of_the_same_length_every_day(fleet: DemoFleet) -> None:
    frame = always_online(of_type(readings_with_devices(fleet), DeviceType.pool_pump))
    assert frame["device_id"].nunique() >= 3
    for _, device in frame.groupby("device_id"):
        rating = device["p_max_kw"].iloc[0]
        blocks = runs(device["p_kw"].to_numpy())
        assert len(blocks) == DAYS
        days = device.groupby("local_date")["p_kw"]
        hours = (days.sum() * STEP_H / rating)[days.size() >= 95]  # whole days only
        assert len(hours) == DAYS
        assert hours.between(4 - 1e-9, 8 + 1e-9).all()
        assert np.allclose(hours, hours.iloc[0])


def test_storage_state_of_charge_integrates_its_power(fleet: DemoFleet) -> None:
    frame = readings_with_devices(fleet)
    storage = frame[frame["device_type"].isin(list(STORAGE_TYPES))]
    assert storage["device_id"].nunique() >= 10
    for _, device in storage.groupby("device_id"):
        power = device["p_kw"].to_numpy()[:-1]
        stored = np.where(power > 0, power * STORAGE_EFFICIENCY, power / STORAGE_EFFICIENCY)
        change = np.diff(device["soc_frac"].to_numpy()) * device["e_max_kwh"].iloc[0]
        np.testing.assert_allclose(change, stored * STEP_H, atol=1e-9)
        assert (device["p_kw"] != 0).any()


def test_home_batteries_charge_from_pv_surplus_or_off_peak(fleet: DemoFleet) -> None:
    frame = readings_with_devices(fleet)
    batteries = of_type(frame, DeviceType.battery)
    pv = of_type(frame, DeviceType.pv_inverter)
    site_pv = pv.groupby(["site_id", "timestamp"])["p_kw"].sum().rename("pv_kw").reset_index()
    joined = batteries.merge(site_pv, on=["site_id", "timestamp"], how="left")
    with_pv = joined[joined["pv_kw"].notna()]
    without_pv = joined[joined["pv_kw"].isna()]
    assert with_pv["device_id"].nunique() >= 5
    charging = with_pv["p_kw"] > 1e-12
    assert charging.any()
    assert (with_pv.loc[charging, "pv_kw"] < 0).all()
    assert (with_pv.loc[charging, "p_kw"] <= -with_pv.loc[charging, "pv_kw"] + 1e-9).all()
    # Without PV, a battery charges off-peak (00:00-05:00) and covers the evening load.
    assert without_pv["device_id"].nunique() >= 1
    assert (without_pv.loc[without_pv["p_kw"] > 0, "local_hour"] < 5).all()
    assert without_pv.loc[without_pv["local_hour"] < 5, "p_kw"].max() > 0
    evening = without_pv["local_hour"].between(16, 21, inclusive="left")
    assert (without_pv.loc[without_pv["p_kw"] < 0, "local_hour"].between(16, 21)).all()
    assert without_pv.loc[evening, "p_kw"].min() < 0


def test_block_power_spreads_each_block_exactly_over_the_steps() -> None:
    steps = np.arange(8) * 0.5
    power = block_power(
        steps, 0.5, np.array([[0.75, 2.5]]), np.array([[1.0, 0.2]]), np.array([4.0])
    )
    np.testing.assert_allclose(power[0], [0, 2, 4, 2, 0, 1.6, 0, 0])
    assert power.sum() * 0.5 == pytest.approx(4.0 * 1.2)


def test_dispatch_storage_respects_ratings_reserve_and_capacity() -> None:
    target = np.array([[10.0, 10.0, 10.0, -10.0, -10.0, -10.0]])
    online = np.ones_like(target, dtype=bool)
    online[0, 2] = False
    power, soc = dispatch_storage(
        target, np.array([-5.0]), np.array([5.0]), np.array([10.0]), np.array([0.5]), 1.0, online
    )
    eta = STORAGE_EFFICIENCY
    # Rated power; the room left; offline; rated power; down to the 10% reserve; empty.
    last_kw = (10 - 5 / eta - 1) * eta
    np.testing.assert_allclose(power[0], [5, 0.25 / eta, 0, -5, -last_kw, 0], atol=1e-12)
    np.testing.assert_allclose(soc[0], [0.5, 0.975, 1, 1, 1 - 0.5 / eta, 0.1], atol=1e-12)


# --------------------------------------------------------------------------- seeding


def count(session: Session, table: type[Any]) -> int:
    return session.scalar(select(func.count()).select_from(table)) or 0


def test_seed_demo_stores_the_fleet_once(session: Session, fleet: DemoFleet) -> None:
    calls: list[tuple[str, int, int]] = []
    report = seed_demo(
        session, fleet, vtn_url="http://vtn.test/", progress=lambda *a: calls.append(a)
    )
    session.commit()
    assert report.devices == DEVICES and report.skipped_devices == 0
    assert report.programs == 3
    assert report.readings == len(fleet.readings)
    assert count(session, Device) == DEVICES
    assert count(session, Program) == 3
    assert count(session, Reading) == len(fleet.readings)
    assert 0 < report.enrollments == count(session, Enrollment) == count(session, EnrollmentLog)
    assert {stage for stage, _, _ in calls} == {"devices", "programs", "enrollments", "readings"}
    assert calls[-1] == ("readings", len(fleet.readings), len(fleet.readings))

    links = {
        tuple(row) for row in session.execute(select(Enrollment.device_id, Enrollment.program_id))
    }
    for device in session.scalars(select(Device)):
        for program in session.scalars(select(Program)):
            passes = all(c.passed for c in capability_checks(device, program))
            assert passes == ((device.device_id, program.program_id) in links)
    assert any(program_id == "DEMO-CI-CAPACITY" for _, program_id in links)

    first = fleet.devices[0]
    assert first["owner_name"] == "owner-0001"
    stored = read_telemetry(session, stored_id(first))
    expected = fleet.readings[fleet.readings["device_id"] == stored_id(first)]
    np.testing.assert_allclose(stored["p_kw"], expected["p_kw"])
    assert list(stored["timestamp"]) == list(expected["timestamp"])

    again = seed_demo(session, fleet, vtn_url="http://vtn.test/")
    session.commit()
    assert again == SeedReport(
        devices=0, programs=0, enrollments=0, readings=0, skipped_devices=DEVICES
    )
    assert count(session, Device) == DEVICES
    assert count(session, Enrollment) == report.enrollments
    assert count(session, Reading) == len(fleet.readings)


def stored_id(device: dict[str, Any]) -> str:
    return device_id(device["make"], device["model"], device["serial"])


def test_seed_demo_skips_registered_devices_and_refuses_invalid_ones(
    session: Session, fleet: DemoFleet
) -> None:
    some = DemoFleet(fleet.devices[:10], fleet.programs[:1], fleet.readings.iloc[:0])
    first = seed_demo(session, some, vtn_url="http://vtn.test/")
    assert (first.devices, first.programs, first.readings) == (10, 1, 0)
    report = seed_demo(session, fleet, vtn_url="http://vtn.test/")
    assert report.devices == DEVICES - 10 and report.skipped_devices == 10
    assert report.programs == 2
    assert count(session, Device) == DEVICES
    session.rollback()
    assert count(session, Device) == 0  # nothing is committed by seed_demo

    broken = dict(fleet.devices[0], p_min_kw=1.0, p_max_kw=0.5)
    with pytest.raises(InvalidInput, match="p_min_kw"):
        seed_demo(session, DemoFleet([broken], [], fleet.readings.iloc[:0]), vtn_url="x")
