"""Utility programs."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import AnyRole, ProgramAdmin, SessionDep
from api.schemas import ProgramOut
from registry import programs as store
from registry.schemas import ProgramIn, ProgramStatus

router = APIRouter(prefix="/v1/programs", tags=["programs"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_program(body: ProgramIn, session: SessionDep, _: ProgramAdmin) -> ProgramOut:
    """Create a program with its territory, admitted device types and requirements."""
    program = store.create_program(session, body)
    session.commit()
    return ProgramOut.model_validate(program)


@router.get("")
def list_programs(
    session: SessionDep, _: AnyRole, status_: ProgramStatus | None = None
) -> list[ProgramOut]:
    return [ProgramOut.model_validate(p) for p in store.list_programs(session, status_)]


@router.get("/{program_id}")
def get_program(program_id: str, session: SessionDep, _: AnyRole) -> ProgramOut:
    return ProgramOut.model_validate(store.get_program(session, program_id))


@router.post("/{program_id}/close")
def close_program(program_id: str, session: SessionDep, _: ProgramAdmin) -> ProgramOut:
    """Close the program to new enrolments; open links stay until ended."""
    program = store.close_program(session, program_id)
    session.commit()
    return ProgramOut.model_validate(program)
