"""Capacity requests as the registry keeps them: each request, where it stands, and
its history (accepted, planned, dispatch rounds, approval, cancellation, delivery)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.errors import NotFound
from registry.tables import CapacityRequestLog, CapacityRequestRow, utcnow

#: Where a request stands; the last three are final.
Status = Literal[
    "planning",
    "planned",
    "dispatched",
    "delivering",
    "delivered",
    "settled",
    "cancelled",
    "failed",
]
STATUSES: tuple[str, ...] = get_args(Status)
FINAL = frozenset({"settled", "cancelled", "failed"})
#: Requests that hold devices: a later overlapping request is planned around them.
HOLDING = frozenset({"planned", "dispatched", "delivering"})


def create_request(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    feeder: str | None,
    region: str | None,
    kw: float | None,
    cap_kw: float | None,
    price_per_kwh: float,
    shortfall_price_per_kwh: float,
    auto_dispatch: bool,
    resolution_s: int,
    created_by: str,
    now: datetime | None = None,
) -> CapacityRequestRow:
    now = now or utcnow()
    row = CapacityRequestRow(
        request_id=f"cr-{uuid.uuid4().hex[:16]}",
        feeder=feeder,
        region=region,
        start=start,
        end=end,
        kw=kw,
        cap_kw=cap_kw,
        price_per_kwh=price_per_kwh,
        shortfall_price_per_kwh=shortfall_price_per_kwh,
        auto_dispatch=auto_dispatch,
        status="planning",
        plan={"resolution_s": resolution_s},
        intervals=[],
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    log(session, row.request_id, "accepted", now, by=created_by)
    return row


def log(session: Session, request_id: str, action: str, at: datetime, **detail: Any) -> None:
    session.add(CapacityRequestLog(request_id=request_id, action=action, at=at, detail=detail))


def get_request(session: Session, request_id: str) -> CapacityRequestRow:
    row = session.get(CapacityRequestRow, request_id)
    if row is None:
        raise NotFound("capacity request", request_id)
    return row


def set_status(
    session: Session,
    row: CapacityRequestRow,
    status: str,
    reason: str | None = None,
    now: datetime | None = None,
    **detail: Any,
) -> None:
    """Move a request to ``status`` and log it (with ``reason`` and ``detail``)."""
    if status not in STATUSES:
        raise ValueError(f"status: {status!r} is not one of {STATUSES}")
    now = now or utcnow()
    row.status = status
    row.reason = reason[:2048] if reason else None
    row.updated_at = now
    extra = {"reason": reason} if reason else {}
    log(session, row.request_id, status, now, **extra, **detail)


def history(session: Session, request_id: str) -> list[CapacityRequestLog]:
    return list(
        session.scalars(
            select(CapacityRequestLog)
            .where(CapacityRequestLog.request_id == request_id)
            .order_by(CapacityRequestLog.entry_id)
        )
    )


def list_requests(
    session: Session,
    *,
    status: str | None = None,
    feeder: str | None = None,
    limit: int = 200,
) -> list[CapacityRequestRow]:
    query = select(CapacityRequestRow)
    if status:
        query = query.where(CapacityRequestRow.status == status)
    if feeder:
        query = query.where(CapacityRequestRow.feeder == feeder)
    order = (CapacityRequestRow.created_at.desc(), CapacityRequestRow.request_id)
    return list(session.scalars(query.order_by(*order).limit(limit)))


def overlapping(
    session: Session,
    start: datetime,
    end: datetime,
    exclude: str | None = None,
    statuses: frozenset[str] = HOLDING,
) -> list[CapacityRequestRow]:
    """Requests in ``statuses`` (other than ``exclude``) whose windows overlap
    ``[start, end)``, oldest first (the caller checks which devices they share)."""
    query = select(CapacityRequestRow).where(
        CapacityRequestRow.status.in_(tuple(statuses)),
        CapacityRequestRow.start < end,
        CapacityRequestRow.end > start,
    )
    if exclude:
        query = query.where(CapacityRequestRow.request_id != exclude)
    return list(session.scalars(query.order_by(CapacityRequestRow.created_at)))
