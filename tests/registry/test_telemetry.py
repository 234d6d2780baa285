from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.devices import create_device, retire_device
from registry.errors import NotFound
from registry.tables import Reading
from registry.telemetry import read_telemetry, store_readings
from tests.factories import device_in

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def readings(
    device_id: str, n: int, start: datetime = NOW - timedelta(hours=1)
) -> list[dict[str, Any]]:
    return [
        {
            "device_id": device_id,
            "timestamp": (start + timedelta(minutes=5 * i)).isoformat(),
            "p_kw": 0.5 * i - 2,
            "soc_frac": i / n,
            "online": True,
        }
        for i in range(n)
    ]


def stored(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Reading)) or 0


def test_same_batch_twice_is_stored_once(session: Session) -> None:
    device = create_device(session, device_in())
    batch = readings(device.device_id, 12)
    first = store_readings(session, batch, now=NOW)
    second = store_readings(session, batch, now=NOW)
    session.commit()
    assert (first.received, first.stored, first.duplicates) == (12, 12, 0)
    assert (second.stored, second.duplicates) == (0, 12)
    assert stored(session) == 12


def test_bad_rows_are_returned_with_reasons_and_good_rows_kept(session: Session) -> None:
    device = create_device(session, device_in())
    retired = create_device(session, device_in("OLD"))
    retire_device(session, retired.device_id)
    good = readings(device.device_id, 3)
    bad: list[dict[str, Any]] = [
        {**good[0], "timestamp": "2026-11-21T10:00:00"},  # no offset
        {**good[0], "timestamp": "yesterday"},
        {**good[0], "timestamp": (NOW + timedelta(hours=2)).isoformat()},
        {**good[0], "soc_frac": 1.5},
        {**good[0], "p_kw": "lots"},
        {**good[0], "p_kw": 2e6},
        {**good[0], "device_id": "0x" + "1" * 64},
        {**good[0], "device_id": "not-an-id"},
        {**good[0], "device_id": retired.device_id},
        {**good[0], "online": "maybe"},
        {k: v for k, v in good[0].items() if k != "p_kw"},
    ]
    result = store_readings(session, good + bad, now=NOW)
    session.commit()
    assert (result.received, result.stored) == (14, 3)
    reasons = {r.row: [(p.field, p.message) for p in r.problems] for r in result.rejected}
    assert sorted(reasons) == list(range(3, 14))
    assert reasons[3] == [("timestamp", "must carry a UTC offset such as Z or +01:00")]
    assert reasons[4][0][0] == "timestamp"
    assert reasons[5] == [("timestamp", "is in the future")]
    assert reasons[6] == [("soc_frac", "must be between 0 and 1")]
    assert reasons[7][0][0] == "p_kw"
    assert reasons[8] == [("p_kw", "must be within ±100000 kW")]
    assert reasons[9] == [("device_id", "no such device in the registry")]
    assert reasons[10][0][0] == "device_id"
    assert reasons[11] == [("device_id", "device is retired")]
    assert reasons[12] == [("online", "must be true or false")]
    assert reasons[13] == [("p_kw", "is required [kW]")]
    assert stored(session) == 3


def test_lists_and_objects_as_values_are_rejected_by_field(session: Session) -> None:
    device = create_device(session, device_in())
    good = readings(device.device_id, 2)
    bad = [
        {**good[0], field: value}
        for field in ("device_id", "timestamp", "p_kw", "soc_frac", "online")
        for value in ([good[0][field]], {"value": good[0][field]})
    ]
    result = store_readings(session, good + bad, now=NOW)
    session.commit()
    assert (result.received, result.stored) == (12, 2)
    fields = {r.row: [p.field for p in r.problems] for r in result.rejected}
    assert fields == {
        2 + 2 * k + n: [field]
        for k, field in enumerate(("device_id", "timestamp", "p_kw", "soc_frac", "online"))
        for n in (0, 1)
    }


def test_offsets_are_converted_to_utc_and_read_back_in_range(session: Session) -> None:
    device = create_device(session, device_in())
    batch = [
        {"device_id": device.device_id, "timestamp": "2026-11-21T10:00:00+01:00", "p_kw": 1.0},
        {"device_id": device.device_id, "timestamp": "2026-11-21T09:15:00Z", "p_kw": 2.0},
        # The same instant as the first, with the id in capitals: one reading, not two.
        {
            "device_id": device.device_id.upper().replace("0X", "0x"),
            "timestamp": "2026-11-21T09:00:00Z",
            "p_kw": 3.0,
        },
    ]
    result = store_readings(session, batch, now=NOW)
    assert (result.stored, result.duplicates) == (2, 1)
    frame = read_telemetry(session, device.device_id, start=datetime(2026, 11, 21, 9, tzinfo=UTC))
    assert list(frame["timestamp"]) == [
        pd.Timestamp("2026-11-21T09:00:00Z"),
        pd.Timestamp("2026-11-21T09:15:00Z"),
    ]
    assert list(frame["p_kw"]) == [1.0, 2.0]


def test_soc_absent_is_null_and_online_defaults_true(session: Session) -> None:
    device = create_device(session, device_in())
    store_readings(
        session,
        [{"device_id": device.device_id, "timestamp": "2026-11-21T09:00:00Z", "p_kw": -1.25}],
        now=NOW,
    )
    frame = read_telemetry(session, device.device_id)
    assert frame["soc_frac"].isna().all()
    assert frame["online"].tolist() == [True]
    assert frame["p_kw"].tolist() == [-1.25]


def test_read_unknown_device(session: Session) -> None:
    with pytest.raises(NotFound):
        read_telemetry(session, "0x" + "2" * 64)
