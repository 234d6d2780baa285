"""Grid-level device awareness: what capacity sits where, enrolled and online."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from registry.schemas import DeviceStatus
from registry.tables import Device, Enrollment, Reading, utcnow

#: Columns a summary may be grouped by.
GROUPS = ("region", "feeder", "device_type")
#: A device is online when its latest reading within this window says so.
ONLINE_WINDOW = timedelta(minutes=15)


def capacity_summary(
    session: Session,
    *,
    group_by: Sequence[str] = GROUPS,
    at: datetime | None = None,
    online_window: timedelta = ONLINE_WINDOW,
    region: str | None = None,
    feeder: str | None = None,
    program_id: str | None = None,
    connected_vens: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Capacity by group, with how much of it is enrolled and online, in one query.

    Parameters
    ----------
    group_by : sequence of {"region", "feeder", "device_type"}
    at : datetime, optional
        The instant to report for (default now). Online means the device's latest
        reading in ``(at - online_window, at]`` has ``online`` true.
    program_id : str, optional
        Count only enrolments in this program as enrolled.
    connected_vens : collection of str, optional
        The VENs the VTN hears from now: each group then also counts its
        ``connected_devices`` and ``connected_flex_kw`` (enrolled through one of them:
        what a dispatch can reach).

    Returns
    -------
    list of dict
        One per group: the group columns, ``devices``, ``p_max_kw`` and ``p_min_kw``
        (sums of the ratings [kW]), ``flex_kw`` (sum of ``p_max_kw - p_min_kw``),
        ``e_max_kwh``, and ``enrolled_*``, ``online_*`` and ``available_*``
        (enrolled and online) counts and flexible power [kW]. Retired devices are left out.
    """
    unknown = [g for g in group_by if g not in GROUPS]
    if unknown:
        raise ValueError(f"group_by: {unknown} not in {list(GROUPS)}")
    at = at or utcnow()
    latest = (
        select(Reading.device_key, func.max(Reading.ts).label("ts"))
        .where(Reading.ts > at - online_window, Reading.ts <= at)
        .group_by(Reading.device_key)
        .subquery("latest")
    )
    online = (
        select(Reading.device_key)
        .join(latest, and_(Reading.device_key == latest.c.device_key, Reading.ts == latest.c.ts))
        .where(Reading.online.is_(True))
        .subquery("online_now")
    )
    links = select(Enrollment.device_id).where(Enrollment.ended_at.is_(None))
    if program_id is not None:
        links = links.where(Enrollment.program_id == program_id)
    enrolled = links.distinct().subquery("enrolled")

    is_enrolled = enrolled.c.device_id.is_not(None)
    is_online = online.c.device_key.is_not(None)
    flex = Device.p_max_kw - Device.p_min_kw

    def count_if(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    def flex_if(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, flex), else_=0.0)), 0.0)

    groups = [getattr(Device, g) for g in group_by]
    query = (
        select(
            *groups,
            func.count().label("devices"),
            func.sum(Device.p_max_kw).label("p_max_kw"),
            func.sum(Device.p_min_kw).label("p_min_kw"),
            func.sum(flex).label("flex_kw"),
            func.coalesce(func.sum(Device.e_max_kwh), 0.0).label("e_max_kwh"),
            count_if(is_enrolled).label("enrolled_devices"),
            flex_if(is_enrolled).label("enrolled_flex_kw"),
            count_if(is_online).label("online_devices"),
            flex_if(is_online).label("online_flex_kw"),
            count_if(and_(is_enrolled, is_online)).label("available_devices"),
            flex_if(and_(is_enrolled, is_online)).label("available_flex_kw"),
        )
        .outerjoin(enrolled, enrolled.c.device_id == Device.device_id)
        .outerjoin(online, online.c.device_key == Device.device_key)
        .where(Device.status != DeviceStatus.retired.value)
        .group_by(*groups)
        .order_by(*groups)
    )
    if region is not None:
        query = query.where(Device.region == region)
    if feeder is not None:
        query = query.where(Device.feeder == feeder)
    out = []
    for row in session.execute(query).mappings():
        item = dict(row)
        for key, value in item.items():
            if key.endswith(("_kw", "_kwh")):
                item[key] = round(float(value or 0.0), 6)
            elif key.endswith("devices"):
                item[key] = int(value or 0)
        out.append(item)
    if connected_vens is not None:
        _add_connected(session, out, group_by, set(connected_vens), region, feeder, program_id)
    return out


def _add_connected(
    session: Session,
    rows: list[dict[str, Any]],
    group_by: Sequence[str],
    vens: set[str],
    region: str | None,
    feeder: str | None,
    program_id: str | None,
) -> None:
    """Add to each group its devices enrolled through a VEN in ``vens``: the VEN ids
    are matched here, not in SQL, since a fleet's set of them can be long."""
    query = (
        select(
            *[getattr(Device, g) for g in group_by],
            Device.device_id,
            Enrollment.ven_id,
            Device.p_max_kw - Device.p_min_kw,
        )
        .join(Enrollment, Enrollment.device_id == Device.device_id)
        .where(Enrollment.ended_at.is_(None), Device.status != DeviceStatus.retired.value)
    )
    if program_id is not None:
        query = query.where(Enrollment.program_id == program_id)
    if region is not None:
        query = query.where(Device.region == region)
    if feeder is not None:
        query = query.where(Device.feeder == feeder)
    reached: dict[tuple[Any, ...], dict[str, float]] = {}
    counted: set[str] = set()
    width = len(group_by)
    for row in session.execute(query):
        device_id, ven_id, flex = row[width], row[width + 1], row[width + 2]
        if ven_id not in vens or device_id in counted:
            continue
        counted.add(device_id)
        group = reached.setdefault(tuple(row[:width]), {"devices": 0, "flex": 0.0})
        group["devices"] += 1
        group["flex"] += float(flex or 0.0)
    for item in rows:
        found = reached.get(tuple(item[g] for g in group_by), {"devices": 0, "flex": 0.0})
        item["connected_devices"] = int(found["devices"])
        item["connected_flex_kw"] = round(found["flex"], 6)
