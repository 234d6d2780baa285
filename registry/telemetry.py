"""Telemetry: batches of readings stored idempotently on (device_id, ts).

A batch is validated column by column with pandas, so that a batch of 10,000
readings costs a few milliseconds to check. Good rows are stored and bad rows come
back with the reason for each; sending the same batch twice stores it once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from registry.db import in_list
from registry.errors import NotFound, Problem
from registry.schemas import P_LIMIT_KW, DeviceStatus
from registry.tables import Device, Reading, utcnow

#: How far ahead of the receiving clock a reading may be stamped (clock skew).
MAX_AHEAD = timedelta(minutes=5)
#: The earliest timestamp accepted.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)

_ZONED = r"(?:Z|z|[+-]\d{2}(?::?\d{2})?)$"
_DEVICE_ID = re.compile(r"^0x[0-9a-f]{64}$")


@dataclass(frozen=True)
class RejectedReading:
    row: int
    problems: list[Problem]

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "problems": [p.as_dict() for p in self.problems]}


@dataclass
class TelemetryResult:
    """Outcome of one batch.

    ``stored`` counts new rows; ``duplicates`` counts good rows already stored (or
    repeated within the batch); ``rejected`` lists the bad rows with their reasons.
    """

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: list[RejectedReading] = field(default_factory=list)


def _frame(readings: Sequence[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    frame = readings if isinstance(readings, pd.DataFrame) else pd.DataFrame.from_records(readings)
    frame = frame.reset_index(drop=True)
    for column in ("device_id", "timestamp", "p_kw", "soc_frac", "online"):
        if column not in frame:
            frame[column] = None
        elif frame[column].dtype == object:
            # A list or an object where a value belongs is checked as its text (and
            # rejected as such), so that the batch's values can be told apart.
            frame[column] = frame[column].map(
                lambda v: str(v) if isinstance(v, list | dict | set | tuple) else v
            )
    return frame


def validate_readings(
    session: Session,
    readings: Sequence[Mapping[str, Any]] | pd.DataFrame,
    now: datetime | None = None,
) -> tuple[pd.DataFrame, list[RejectedReading]]:
    """Check a batch; return the good rows (typed) and the bad ones with reasons.

    The good rows come back as a DataFrame with columns ``device_id`` (lower-case),
    ``device_key`` (its compact storage key), ``ts`` (UTC), ``p_kw``, ``soc_frac`` (NaN
    when absent) and ``online``, indexed by their row number in the batch.
    """
    now = now or utcnow()
    frame = _frame(readings)
    problems: dict[int, list[Problem]] = {}

    def flag(mask: Any, name: str, message: str, limit: Any = None) -> None:
        column = frame[name]
        for row in np.flatnonzero(np.asarray(mask, dtype=bool)):
            value = column.iloc[int(row)]
            value = None if isinstance(value, float) and np.isnan(value) else value
            problems.setdefault(int(row), []).append(Problem(name, message, _plain(value), limit))

    # A fleet's batch repeats few timestamps over many devices, and a device's batch
    # repeats one id: work on the distinct values and spread the answers by code.
    id_codes, raw_ids = pd.factorize(frame["device_id"])
    ids_unique = [_normalized_id(v) for v in raw_ids]
    known = _devices(session, [i for i in ids_unique if i is not None])
    has_id = id_codes >= 0
    id_ok = np.array([i is not None for i in ids_unique] + [False])[id_codes]
    key_unique = [known.get(i, (-1, ""))[0] if i else -1 for i in ids_unique]
    status_unique = [known.get(i, (-1, ""))[1] if i else "" for i in ids_unique]
    status = np.array([*status_unique, ""], dtype=object)[id_codes]
    flag(~has_id, "device_id", "is required (a registry device id)")
    flag(
        has_id & ~id_ok, "device_id", "must be 0x followed by 64 hex digits (a registry device id)"
    )
    flag(id_ok & (status == ""), "device_id", "no such device in the registry")
    flag(status == DeviceStatus.retired.value, "device_id", "device is retired")

    ts_codes, raw_stamps = pd.factorize(frame["timestamp"])
    stamps_unique = pd.Series(raw_stamps, dtype="string").str.strip()
    zoned_unique = stamps_unique.str.contains(_ZONED, regex=True).fillna(False).astype(bool)
    parsed_unique = pd.to_datetime(
        stamps_unique.where(zoned_unique), utc=True, format="ISO8601", errors="coerce"
    )
    has_ts = ts_codes >= 0
    zoned = np.append(zoned_unique.to_numpy(), False)[ts_codes]
    ts = pd.Series(
        pd.DatetimeIndex(parsed_unique).append(pd.DatetimeIndex([pd.NaT], tz=UTC))[ts_codes]
    )
    flag(~has_ts, "timestamp", "is required (ISO 8601 with a UTC offset)")
    flag(has_ts & ~zoned, "timestamp", "must carry a UTC offset such as Z or +01:00")
    flag(zoned & ts.isna().to_numpy(), "timestamp", "is not an ISO 8601 timestamp")
    latest = now + MAX_AHEAD
    flag(ts > pd.Timestamp(latest), "timestamp", "is in the future", latest.isoformat())
    flag(
        ts < pd.Timestamp(EARLIEST),
        "timestamp",
        "is before the earliest accepted",
        EARLIEST.isoformat(),
    )

    p_kw = pd.to_numeric(frame["p_kw"], errors="coerce")
    flag(frame["p_kw"].isna(), "p_kw", "is required [kW]")
    flag(
        frame["p_kw"].notna() & ~np.isfinite(p_kw.fillna(np.nan)),
        "p_kw",
        "must be a finite number [kW]",
    )
    flag(p_kw.abs() > P_LIMIT_KW, "p_kw", f"must be within ±{P_LIMIT_KW:g} kW", P_LIMIT_KW)

    soc = pd.to_numeric(frame["soc_frac"], errors="coerce")
    flag(frame["soc_frac"].notna() & soc.isna(), "soc_frac", "must be a number between 0 and 1")
    flag((soc < 0) | (soc > 1), "soc_frac", "must be between 0 and 1", [0, 1])

    online_codes, online_raw = pd.factorize(frame["online"])
    online = pd.Series(
        np.array([*(_as_bool(v) for v in online_raw), None], dtype=object)[online_codes]
    )
    flag(online.isna() & frame["online"].notna(), "online", "must be true or false")

    rejected = [RejectedReading(row, found) for row, found in sorted(problems.items())]
    good = np.ones(len(frame), dtype=bool)
    good[list(problems)] = False
    ids = np.array([*ids_unique, None], dtype=object)[id_codes]
    keys = np.array([*key_unique, -1], dtype=np.int64)[id_codes]
    clean = pd.DataFrame(
        {
            "device_id": ids[good],
            "device_key": keys[good],
            "ts": ts[good],
            "p_kw": p_kw[good].astype(float),
            "soc_frac": soc[good].astype(float),
            "online": online[good].fillna(True).astype(bool),
        }
    )
    return clean, rejected


def _normalized_id(value: Any) -> str | None:
    """A device id in canonical form (lower-case), or ``None`` if it cannot be one."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return text if _DEVICE_ID.match(text) else None


def _as_bool(value: Any) -> bool | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    text = str(value).strip().lower()
    return {"true": True, "1": True, "false": False, "0": False}.get(text)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if value is pd.NA or value is pd.NaT:
        return None
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _devices(session: Session, ids: list[str]) -> dict[str, tuple[int, str]]:
    """``device_id -> (device_key, status)`` for the ids that exist."""
    found: dict[str, tuple[int, str]] = {}
    if not ids:
        return found
    condition, params = in_list(session, "device_id", ids)
    query = text(f"SELECT device_id, device_key, status FROM devices WHERE {condition}")
    rows = session.execute(query, params).all()
    found.update((device_id, (key, status)) for device_id, key, status in rows)
    return found


def store_readings(
    session: Session,
    readings: Sequence[Mapping[str, Any]] | pd.DataFrame,
    now: datetime | None = None,
) -> TelemetryResult:
    """Validate and store a batch of readings; see :class:`TelemetryResult`.

    Parameters
    ----------
    readings : sequence of mappings or DataFrame
        Fields ``device_id``, ``timestamp`` (ISO 8601 with offset), ``p_kw`` [kW,
        positive = drawn from the grid], optional ``soc_frac`` [0-1] and ``online``
        (default true).
    """
    clean, rejected = validate_readings(session, readings, now)
    result = TelemetryResult(received=len(clean) + len(rejected), rejected=rejected)
    unique = clean.drop_duplicates(["device_key", "ts"])
    result.duplicates = len(clean) - len(unique)
    if len(unique):
        stored = _insert_ignoring_duplicates(session, unique)
        result.stored = stored
        result.duplicates += len(unique) - stored
    return result


def _insert_ignoring_duplicates(session: Session, frame: pd.DataFrame) -> int:
    """Insert rows, skipping those already stored; return how many were new.

    The two back-ends each get their fastest path: PostgreSQL copies the batch into a
    temporary table and inserts from it in one statement; SQLite takes one prepared
    statement over all rows. Both leave the typing of timestamps to this function, in
    the storage format :class:`~registry.tables.UTCDateTime` uses.
    """
    connection = session.connection()
    dbapi = connection.connection.driver_connection
    assert dbapi is not None
    soc = frame["soc_frac"].astype(object).where(frame["soc_frac"].notna(), None).tolist()
    keys = frame["device_key"].tolist()
    p_kw = frame["p_kw"].tolist()
    online = frame["online"].tolist()
    if connection.dialect.name == "postgresql":
        stamps = frame["ts"].dt.to_pydatetime().tolist()
        cursor = dbapi.cursor()
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS telemetry_incoming (device_key integer, "
            "ts timestamptz, p_kw float8, soc_frac float8, online boolean) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(
            "COPY telemetry_incoming (device_key, ts, p_kw, soc_frac, online) "
            "FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "timestamptz", "float8", "float8", "bool"])
            for row in zip(keys, stamps, p_kw, soc, online, strict=True):
                copy.write_row(row)
        cursor.execute(
            "INSERT INTO telemetry (device_key, ts, p_kw, soc_frac, online) "
            "SELECT device_key, ts, p_kw, soc_frac, online FROM telemetry_incoming "
            "ON CONFLICT (device_key, ts) DO NOTHING"
        )
        stored = cursor.rowcount
        cursor.execute("TRUNCATE telemetry_incoming")
        return int(stored)
    text_stamps = frame["ts"].dt.tz_convert(None).dt.strftime("%Y-%m-%d %H:%M:%S.%f").tolist()
    cursor = dbapi.cursor()
    cursor.executemany(
        "INSERT INTO telemetry (device_key, ts, p_kw, soc_frac, online) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (device_key, ts) DO NOTHING",
        zip(keys, text_stamps, p_kw, soc, online, strict=True),
    )
    return int(cursor.rowcount)


def read_telemetry(
    session: Session,
    device_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 100_000,
) -> pd.DataFrame:
    """Readings of one device in ``[start, end)``, oldest first.

    Returns
    -------
    DataFrame
        Columns ``timestamp`` (UTC), ``p_kw`` [kW], ``soc_frac`` [0-1], ``online``.
    """
    device_key = session.scalar(
        select(Device.device_key).where(Device.device_id == device_id.strip().lower())
    )
    if device_key is None:
        raise NotFound("device", device_id)
    query = select(Reading.ts, Reading.p_kw, Reading.soc_frac, Reading.online).where(
        Reading.device_key == device_key
    )
    if start is not None:
        query = query.where(Reading.ts >= start)
    if end is not None:
        query = query.where(Reading.ts < end)
    rows = session.execute(query.order_by(Reading.ts).limit(limit)).all()
    frame = pd.DataFrame(rows, columns=["timestamp", "p_kw", "soc_frac", "online"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame
