"""Day-ahead schedules as the registry keeps them: what was asked and the result."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.errors import NotFound
from registry.tables import Schedule, utcnow

#: ``planning`` until the job is done, then ``planned`` (or ``failed`` with the
#: reason), ``dispatched`` once sent as events, or ``cancelled``.
STATUSES = ("planning", "planned", "dispatched", "failed", "cancelled")


def create_schedule(
    session: Session, day: str, params: dict[str, Any], created_by: str, now: datetime | None = None
) -> Schedule:
    now = now or utcnow()
    row = Schedule(
        schedule_id=f"sch-{uuid.uuid4().hex[:16]}",
        day=day,
        status="planning",
        params=params,
        result={},
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    return row


def get_schedule(session: Session, schedule_id: str) -> Schedule:
    row = session.get(Schedule, schedule_id)
    if row is None:
        raise NotFound("schedule", schedule_id)
    return row


def set_status(
    row: Schedule, status: str, reason: str | None = None, now: datetime | None = None
) -> None:
    if status not in STATUSES:
        raise ValueError(f"status: {status!r} is not one of {STATUSES}")
    row.status = status
    row.reason = reason[:2048] if reason else None
    row.updated_at = now or utcnow()


def list_schedules(
    session: Session, *, status: str | None = None, limit: int = 200
) -> list[Schedule]:
    query = select(Schedule)
    if status:
        query = query.where(Schedule.status == status)
    return list(session.scalars(query.order_by(Schedule.created_at.desc()).limit(limit)))
