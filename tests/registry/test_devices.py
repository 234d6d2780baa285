from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.devices import (
    DeviceFilter,
    bulk_create_devices,
    create_device,
    get_device,
    list_devices,
    record_delivery,
    retire_device,
    update_device,
)
from registry.errors import Conflict, InvalidInput, NotFound
from registry.identity import device_id
from registry.schemas import DeviceUpdate
from registry.tables import Device
from tests.factories import device_fields, device_in


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Device)) or 0


def test_create_and_read_back(session: Session) -> None:
    created = create_device(session, device_in())
    session.commit()
    found = get_device(session, created.device_id.upper().replace("0X", "0x"))
    assert found.device_id == device_id("Tesla", "Powerwall 2", "SN-0001")
    assert found.p_min_kw == -5.0 and found.e_max_kwh == 13.5
    assert found.protocols == ["openadr_2.0b"]
    assert found.status == "active"
    assert found.created_at.tzinfo is not None


def test_duplicate_is_refused_even_when_written_differently(session: Session) -> None:
    create_device(session, device_in())
    session.commit()
    with pytest.raises(Conflict) as info:
        create_device(session, device_in(make=" TESLA", model="powerwall  2", serial="sn-0001"))
    assert info.value.field == "device_id"
    session.rollback()
    assert count(session) == 1


def test_bulk_stores_good_rows_and_reports_bad_ones(session: Session) -> None:
    create_device(session, device_in("EXISTING"))
    rows = [
        device_fields("A"),
        device_fields("B", p_max_kw=1e9),
        device_fields("A"),
        device_fields("C", lat=95),
        device_fields("EXISTING"),
        device_fields("D"),
    ]
    result = bulk_create_devices(session, rows, chunk=2)
    session.commit()
    assert len(result.created) == 2
    assert [e.row for e in result.errors] == [1, 2, 3, 4]
    fields = {e.row: [p.field for p in e.problems] for e in result.errors}
    assert fields == {1: ["p_max_kw"], 2: ["device_id"], 3: ["lat"], 4: ["device_id"]}
    assert result.errors[0].problems[0].limit == 100_000
    assert count(session) == 3


def test_atomic_bulk_writes_nothing_when_a_row_is_bad(session: Session) -> None:
    rows = [device_fields("A"), device_fields("B", feeder="")]
    with pytest.raises(InvalidInput) as info:
        bulk_create_devices(session, rows, atomic=True)
    assert info.value.problems[0].field == "rows.1.feeder"
    session.rollback()
    assert count(session) == 0


def test_filters_and_paging(session: Session) -> None:
    rows = [device_fields(f"N{i}", feeder="F-1" if i % 2 else "F-2") for i in range(7)]
    rows.append(device_fields("HP", device_type="heat_pump", p_min_kw=0, e_max_kwh=None))
    bulk_create_devices(session, rows)
    page, total = list_devices(session, DeviceFilter(feeder="F-1"), limit=2)
    assert total == 3 and len(page) == 2
    assert [d.device_id for d in page] == sorted(d.device_id for d in page)
    _, total_hp = list_devices(session, DeviceFilter(device_type="heat_pump"))
    assert total_hp == 1


def test_update_checks_the_merged_device(session: Session) -> None:
    device = create_device(session, device_in())
    with pytest.raises(InvalidInput) as info:
        update_device(session, device.device_id, DeviceUpdate(p_min_kw=6.0))
    assert info.value.problems[0].field == "p_min_kw"
    updated = update_device(session, device.device_id, DeviceUpdate(p_max_kw=7.0, feeder="F-9"))
    assert (updated.p_max_kw, updated.feeder, updated.p_min_kw) == (7.0, "F-9", -5.0)


def test_retired_device_cannot_change(session: Session) -> None:
    device = create_device(session, device_in())
    retire_device(session, device.device_id)
    with pytest.raises(InvalidInput) as info:
        update_device(session, device.device_id, DeviceUpdate(feeder="F-1"))
    assert info.value.problems[0].field == "status"


def test_unknown_device(session: Session) -> None:
    with pytest.raises(NotFound):
        get_device(session, "0x" + "0" * 64)


def test_delivery_record_accumulates_events(session: Session) -> None:
    device = create_device(session, device_in("SN-REC"))
    record_delivery(session, device.device_id, 4.0, 3.0)
    record_delivery(session, device.device_id, 2.0, 5.0)  # over-delivery counts as requested
    record_delivery(session, device.device_id, 1.0, -0.5)  # added load counts as zero
    session.commit()
    stored = get_device(session, device.device_id)
    assert stored.events_dispatched == 3
    assert stored.energy_requested_kwh == 7.0 and stored.energy_delivered_kwh == 5.0
    with pytest.raises(InvalidInput, match="requested_kwh"):
        record_delivery(session, device.device_id, -1.0, 0.0)
