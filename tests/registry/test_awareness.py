from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from registry.awareness import capacity_summary
from registry.devices import create_device, retire_device
from registry.enrollment import enroll
from registry.programs import create_program
from registry.telemetry import store_readings
from tests.factories import device_in, program_in

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def test_capacity_by_feeder_and_type_with_enrolled_and_online(session: Session) -> None:
    a = create_device(session, device_in("A"))  # battery ±5 kW on F-12
    b = create_device(session, device_in("B", p_max_kw=10.0, p_min_kw=-10.0, e_max_kwh=20.0))
    c = create_device(session, device_in("C", feeder="F-13"))
    hp = create_device(
        session, device_in("H", device_type="heat_pump", p_max_kw=3.0, p_min_kw=0.0, e_max_kwh=None)
    )
    gone = create_device(session, device_in("G"))
    retire_device(session, gone.device_id)
    create_program(session, program_in())
    enroll(session, a.device_id, "RES-DR", vtn_url="x")
    enroll(session, c.device_id, "RES-DR", vtn_url="x")

    def reading(device_id: str, minutes_ago: float, online: bool) -> dict[str, object]:
        at = NOW - timedelta(minutes=minutes_ago)
        return {"device_id": device_id, "timestamp": at.isoformat(), "p_kw": 0.0, "online": online}

    store_readings(
        session,
        [
            reading(a.device_id, 20, False),
            reading(a.device_id, 5, True),  # latest in window: online
            reading(b.device_id, 10, True),
            reading(b.device_id, 2, False),  # latest says offline
            reading(c.device_id, 30, True),  # outside the 15-minute window
            reading(hp.device_id, 1, True),
        ],
        now=NOW,
    )
    rows = capacity_summary(session, group_by=["feeder", "device_type"], at=NOW)
    by = {(r["feeder"], r["device_type"]): r for r in rows}
    assert set(by) == {("F-12", "battery"), ("F-12", "heat_pump"), ("F-13", "battery")}
    f12 = by[("F-12", "battery")]
    assert (f12["devices"], f12["p_max_kw"], f12["p_min_kw"], f12["flex_kw"]) == (
        2,
        15.0,
        -15.0,
        30.0,
    )
    assert f12["e_max_kwh"] == 33.5
    assert (f12["enrolled_devices"], f12["enrolled_flex_kw"]) == (1, 10.0)
    assert (f12["online_devices"], f12["online_flex_kw"]) == (1, 10.0)
    assert (f12["available_devices"], f12["available_flex_kw"]) == (1, 10.0)
    f13 = by[("F-13", "battery")]
    assert (f13["enrolled_devices"], f13["online_devices"], f13["available_devices"]) == (1, 0, 0)
    assert by[("F-12", "heat_pump")]["online_flex_kw"] == 3.0

    region = capacity_summary(session, group_by=["region"], at=NOW)
    assert region == [{**region[0], "region": "North", "devices": 4}]
    only_f13 = capacity_summary(session, group_by=["feeder"], feeder="F-13", at=NOW)
    assert [r["feeder"] for r in only_f13] == ["F-13"]


def test_connected_counts_devices_enrolled_through_a_ven_the_vtn_hears(session: Session) -> None:
    create_program(session, program_in())
    links = {}
    for name, feeder, kw in (("A", "F-12", 5.0), ("B", "F-12", 10.0), ("C", "F-13", 5.0)):
        device = create_device(
            session, device_in(name, feeder=feeder, p_max_kw=kw, p_min_kw=-kw, e_max_kwh=2 * kw)
        )
        links[name] = enroll(session, device.device_id, "RES-DR", vtn_url="x").ven_id
    create_device(session, device_in("D"))  # not enrolled: never reachable

    heard = {links["B"], links["C"], "ven-of-nobody"}
    rows = capacity_summary(session, group_by=["feeder"], at=NOW, connected_vens=heard)
    by = {r["feeder"]: r for r in rows}
    assert (by["F-12"]["connected_devices"], by["F-12"]["connected_flex_kw"]) == (1, 20.0)
    assert (by["F-13"]["connected_devices"], by["F-13"]["connected_flex_kw"]) == (1, 10.0)
    assert by["F-12"]["enrolled_devices"] == 2

    nothing = capacity_summary(session, group_by=["feeder"], at=NOW, connected_vens=set())
    assert [r["connected_devices"] for r in nothing] == [0, 0]
    unknown = capacity_summary(session, group_by=["feeder"], at=NOW)
    assert "connected_devices" not in unknown[0]
