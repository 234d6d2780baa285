"""Utility programs: what each requires of the devices it admits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.errors import Conflict
from registry.lookups import get_program
from registry.schemas import ProgramIn, ProgramStatus
from registry.tables import Program, utcnow


def create_program(session: Session, data: ProgramIn, now: datetime | None = None) -> Program:
    """Create a program; its id is chosen by the utility and must be new."""
    if session.get(Program, data.program_id) is not None:
        raise Conflict("program_id", "a program with this id exists", data.program_id)
    now = now or utcnow()
    program = Program(**data.model_dump(mode="json"), created_at=now, updated_at=now)
    session.add(program)
    session.flush()
    return program


def list_programs(session: Session, status: ProgramStatus | None = None) -> list[Program]:
    query = select(Program).order_by(Program.program_id)
    if status is not None:
        query = query.where(Program.status == status.value)
    return list(session.scalars(query))


def close_program(session: Session, program_id: str, now: datetime | None = None) -> Program:
    """Close a program to new enrolments; open links stay until ended one by one."""
    program = get_program(session, program_id)
    program.status = ProgramStatus.closed.value
    program.updated_at = now or utcnow()
    return program
