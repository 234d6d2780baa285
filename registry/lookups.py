"""Finding devices and programs by id, shared by every registry module."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.errors import NotFound
from registry.tables import Device, Program


def find_device(session: Session, device_id: str) -> Device | None:
    """The device with this id (any case, surrounding space ignored), or ``None``."""
    return session.scalar(select(Device).where(Device.device_id == device_id.strip().lower()))


def get_device(session: Session, device_id: str) -> Device:
    device = find_device(session, device_id)
    if device is None:
        raise NotFound("device", device_id)
    return device


def get_program(session: Session, program_id: str) -> Program:
    program = session.get(Program, program_id)
    if program is None:
        raise NotFound("program", program_id)
    return program
