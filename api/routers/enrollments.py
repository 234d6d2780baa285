"""Enrolment and routing: check a device against a program, link, unlink, and history."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime

from api.deps import GridViewer, Integrator, SessionDep, SettingsDep
from api.schemas import (
    CheckOut,
    ConnectionOut,
    EligibilityOut,
    EnrollmentIn,
    EnrollmentOut,
    LinkOut,
    LogEntryOut,
    UnenrollIn,
)
from registry import enrollment as store
from registry.errors import NotFound
from registry.lookups import get_device, get_program
from registry.tables import Enrollment, utcnow

router = APIRouter(prefix="/v1/enrollments", tags=["enrollments"])


@router.post("", status_code=status.HTTP_201_CREATED)
def enroll(
    body: EnrollmentIn, session: SessionDep, settings: SettingsDep, principal: Integrator
) -> ConnectionOut:
    """Enrol a device in a program. Runs every capability check that applies; on
    failure answers 422 with each failed check, the device's value and the program's
    limit, and forms no link. On success returns the connection parameters."""
    connection = store.enroll(
        session, body.device_id, body.program_id, vtn_url=settings.vtn_url, actor=principal.name
    )
    checks = store.capability_checks(
        get_device(session, body.device_id), get_program(session, body.program_id)
    )
    session.commit()
    return ConnectionOut.model_validate(
        {**asdict(connection), "checks": [c.as_dict() for c in checks]}
    )


@router.post("/check")
def check(body: EnrollmentIn, session: SessionDep, _: GridViewer) -> EligibilityOut:
    """Run the capability checks without enrolling (routing: which program fits)."""
    checks = store.capability_checks(
        get_device(session, body.device_id), get_program(session, body.program_id)
    )
    return EligibilityOut(
        device_id=body.device_id.lower(),
        program_id=body.program_id,
        eligible=all(c.passed for c in checks),
        checks=[CheckOut.model_validate(c.as_dict()) for c in checks],
    )


@router.get("")
def links(
    session: SessionDep,
    _: GridViewer,
    at: AwareDatetime | None = None,
    device_id: str | None = None,
    program_id: str | None = None,
) -> list[LinkOut]:
    """Links open at instant ``at`` (default now), rebuilt from the append-only log."""
    when: datetime = at or utcnow()
    found = store.links_at(session, when, device_id=device_id, program_id=program_id)
    return [LinkOut.model_validate(entry) for entry in found]


@router.get("/log")
def log(
    session: SessionDep,
    _: GridViewer,
    device_id: str | None = None,
    program_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[LogEntryOut]:
    """The append-only log of links formed and ended, oldest first."""
    entries = store.history(session, device_id=device_id, program_id=program_id, limit=limit)
    return [LogEntryOut.model_validate(e) for e in entries]


@router.delete("/{enrollment_id}")
def unenroll(
    enrollment_id: int,
    session: SessionDep,
    principal: Integrator,
    body: UnenrollIn | None = None,
) -> EnrollmentOut:
    """End a link. The record stays, with its end time and reason, and the log grows."""
    link = session.get(Enrollment, enrollment_id)
    if link is None or link.ended_at is not None:
        raise NotFound("open enrollment", str(enrollment_id))
    store.end_link(session, link, actor=principal.name, reason=body.reason if body else None)
    session.commit()
    return EnrollmentOut.model_validate(link)
