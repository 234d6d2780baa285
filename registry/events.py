"""OpenADR events as the registry keeps them: each event and its log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.errors import NotFound
from registry.tables import DispatchEvent, DispatchLog, utcnow

STATUS_OF_OPT = {"optIn": "opted_in", "optOut": "opted_out"}


def _log(session: Session, event_id: str, action: str, at: datetime, **detail: Any) -> None:
    session.add(DispatchLog(event_id=event_id, action=action, at=at, detail=detail))


def record_sent(
    session: Session,
    event_id: str,
    *,
    ven_id: str,
    device_id: str,
    signal_name: str,
    intervals: list[dict[str, Any]],
    capacity_request_id: str | None = None,
    now: datetime | None = None,
) -> DispatchEvent:
    now = now or utcnow()
    event = DispatchEvent(
        event_id=event_id,
        ven_id=ven_id,
        device_id=device_id,
        capacity_request_id=capacity_request_id,
        signal_name=signal_name,
        intervals=intervals,
        status="pending",
        created_at=now,
        updated_at=now,
    )
    session.add(event)
    _log(session, event_id, "sent", now, ven_id=ven_id, intervals=len(intervals))
    return event


def record_response(
    session: Session, event_id: str, opt_type: str, now: datetime | None = None
) -> DispatchEvent | None:
    """Store a VEN's opt-in or opt-out (``None`` for an event we do not know)."""
    event = session.get(DispatchEvent, event_id)
    if event is None:
        return None
    now = now or utcnow()
    if event.status == "cancelled":
        # A late answer to a cancelled event is kept, but does not revive it.
        _log(session, event_id, "opt", now, opt_type=opt_type, after="cancelled")
        return event
    event.status = STATUS_OF_OPT.get(opt_type, event.status)
    event.updated_at = now
    _log(session, event_id, "opt", now, opt_type=opt_type)
    return event


def record_modified(
    session: Session, event_id: str, intervals: list[dict[str, Any]], now: datetime | None = None
) -> DispatchEvent:
    """New setpoints for an event already out; it waits for a fresh answer."""
    event = get_event(session, event_id)
    now = now or utcnow()
    event.intervals = intervals
    event.status = "pending"
    event.updated_at = now
    _log(session, event_id, "modified", now, intervals=len(intervals))
    return event


def record_cancel(session: Session, event_id: str, now: datetime | None = None) -> DispatchEvent:
    event = get_event(session, event_id)
    now = now or utcnow()
    event.status = "cancelled"
    event.updated_at = now
    _log(session, event_id, "cancelled", now)
    return event


def record_measured(
    session: Session, event_id: str, result: dict[str, Any], now: datetime | None = None
) -> None:
    """Keep an event's measured response (see :mod:`dispatch.measure`) in its log."""
    _log(session, event_id, "measured", now or utcnow(), **result)


def measured(session: Session, event_id: str) -> dict[str, Any] | None:
    """The event's measured response, if it was measured."""
    found = session.scalar(
        select(DispatchLog)
        .where(DispatchLog.event_id == event_id, DispatchLog.action == "measured")
        .order_by(DispatchLog.entry_id.desc())
        .limit(1)
    )
    return dict(found.detail) if found is not None else None


def get_event(session: Session, event_id: str) -> DispatchEvent:
    event = session.get(DispatchEvent, event_id)
    if event is None:
        raise NotFound("event", event_id)
    return event


def event_log(session: Session, event_id: str) -> list[DispatchLog]:
    return list(
        session.scalars(
            select(DispatchLog)
            .where(DispatchLog.event_id == event_id)
            .order_by(DispatchLog.entry_id)
        )
    )


def list_events(
    session: Session,
    *,
    device_id: str | None = None,
    capacity_request_id: str | None = None,
    status: str | None = None,
    limit: int = 500,
) -> list[DispatchEvent]:
    query = select(DispatchEvent)
    if device_id:
        query = query.where(DispatchEvent.device_id == device_id.strip().lower())
    if capacity_request_id:
        query = query.where(DispatchEvent.capacity_request_id == capacity_request_id)
    if status:
        query = query.where(DispatchEvent.status == status)
    return list(session.scalars(query.order_by(DispatchEvent.created_at.desc()).limit(limit)))
