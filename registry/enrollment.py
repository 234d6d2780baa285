"""Enrolment and routing: capability checks, links, and their append-only history.

Enrolling a device in a program checks the overlap of what the program requires and
what the device states. A requirement the program leaves empty is not checked; one
the device does not state fails, because an unknown capability cannot be relied on.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from registry.errors import Conflict, InvalidInput, NotFound, Problem, RegistryError
from registry.lookups import get_device, get_program
from registry.schemas import DeviceStatus, ProgramStatus
from registry.tables import Device, Enrollment, EnrollmentLog, Program, utcnow


@dataclass(frozen=True)
class Check:
    """One capability check: the device's value against the program's limit."""

    name: str
    field: str
    device_value: Any
    program_limit: Any
    passed: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "field": self.field,
            "device_value": self.device_value,
            "program_limit": self.program_limit,
            "passed": self.passed,
            "message": self.message,
        }


class CapabilityMismatch(RegistryError):
    """The device fails one or more of the program's checks; no link was formed."""

    def __init__(self, device_id: str, program_id: str, failed: list[Check]) -> None:
        super().__init__(f"{device_id} does not meet {program_id}")
        self.device_id = device_id
        self.program_id = program_id
        self.failed = failed


def _at_least(name: str, field: str, value: float | None, limit: float, unit: str) -> Check:
    if value is None:
        return Check(name, field, None, limit, False, f"device does not state {field}")
    ok = value >= limit
    verb = "meets" if ok else "is below"
    return Check(
        name, field, value, limit, ok, f"{field} {value} {unit} {verb} the minimum {limit} {unit}"
    )


def _at_most(name: str, field: str, value: float | None, limit: float, unit: str) -> Check:
    if value is None:
        return Check(name, field, None, limit, False, f"device does not state {field}")
    ok = value <= limit
    verb = "meets" if ok else "exceeds"
    return Check(
        name, field, value, limit, ok, f"{field} {value} {unit} {verb} the maximum {limit} {unit}"
    )


def capability_checks(device: Device, program: Program) -> list[Check]:
    """Every check that applies to this device and program, passed or not."""
    checks = [
        Check(
            "program_open",
            "status",
            None,
            program.status,
            program.status == ProgramStatus.open,
            f"program is {program.status}",
        ),
        Check(
            "device_active",
            "status",
            device.status,
            DeviceStatus.active.value,
            device.status == DeviceStatus.active,
            f"device is {device.status}",
        ),
    ]
    in_territory = device.region in program.regions or device.feeder in program.feeders
    checks.append(
        Check(
            "territory",
            "region/feeder",
            {"region": device.region, "feeder": device.feeder},
            {"regions": program.regions, "feeders": program.feeders},
            in_territory,
            "device is inside the program's territory"
            if in_territory
            else "device's region and feeder are outside the program's territory",
        )
    )
    type_ok = device.device_type in program.device_types
    checks.append(
        Check(
            "device_type",
            "device_type",
            device.device_type,
            program.device_types,
            type_ok,
            f"{device.device_type} is {'' if type_ok else 'not '}a type the program admits",
        )
    )
    if program.min_power_kw is not None:
        span = device.p_max_kw - device.p_min_kw
        checks.append(
            _at_least("min_power", "p_max_kw - p_min_kw", span, program.min_power_kw, "kW")
        )
    if program.min_energy_kwh is not None:
        checks.append(
            _at_least("min_energy", "e_max_kwh", device.e_max_kwh, program.min_energy_kwh, "kWh")
        )
    if program.protocols:
        common = sorted(set(device.protocols) & set(program.protocols))
        checks.append(
            Check(
                "protocol",
                "protocols",
                device.protocols,
                program.protocols,
                bool(common),
                f"device speaks {', '.join(common)}"
                if common
                else "device speaks none of the program's protocols",
            )
        )
    if program.max_response_time_s is not None:
        checks.append(
            _at_most(
                "max_response_time",
                "response_time_s",
                device.response_time_s,
                program.max_response_time_s,
                "s",
            )
        )
    if program.max_telemetry_interval_s is not None:
        checks.append(
            _at_most(
                "telemetry_interval",
                "telemetry_interval_s",
                device.telemetry_interval_s,
                program.max_telemetry_interval_s,
                "s",
            )
        )
    return checks


@dataclass(frozen=True)
class Connection:
    """What a device needs to join a program's OpenADR events.

    ``ven_secret`` is shown once, here; the registry keeps only its SHA-256.
    """

    enrollment_id: int
    device_id: str
    program_id: str
    ven_id: str
    vtn_url: str
    auth: dict[str, str]
    enrolled_at: datetime


def ven_id_for(device_id: str) -> str:
    """The OpenADR VEN id of a device: stable across programs, derived from its id."""
    return "ven-" + device_id.removeprefix("0x")[:24]


def enroll(
    session: Session,
    device_id: str,
    program_id: str,
    *,
    vtn_url: str,
    actor: str | None = None,
    now: datetime | None = None,
) -> Connection:
    """Check a device against a program and, if it passes, link them.

    Raises
    ------
    NotFound
        No such device or program.
    CapabilityMismatch
        With every failed check; nothing is written.
    Conflict
        The device is already enrolled in the program.
    """
    device = get_device(session, device_id)
    program = get_program(session, program_id)
    failed = [c for c in capability_checks(device, program) if not c.passed]
    if failed:
        raise CapabilityMismatch(device.device_id, program.program_id, failed)
    if open_link(session, device.device_id, program.program_id) is not None:
        raise Conflict(
            "program_id", "device is already enrolled in this program", program.program_id
        )
    now = now or utcnow()
    secret = secrets.token_urlsafe(24)
    link = Enrollment(
        device_id=device.device_id,
        program_id=program.program_id,
        ven_id=ven_id_for(device.device_id),
        credential_hash=hashlib.sha256(secret.encode()).hexdigest(),
        enrolled_at=now,
    )
    session.add(link)
    session.flush()
    _log(session, link, "enrolled", now, actor, None)
    return Connection(
        enrollment_id=link.enrollment_id,
        device_id=link.device_id,
        program_id=link.program_id,
        ven_id=link.ven_id,
        vtn_url=vtn_url,
        auth={"method": "ven_secret", "ven_secret": secret},
        enrolled_at=now,
    )


def open_link(session: Session, device_id: str, program_id: str) -> Enrollment | None:
    return session.scalar(
        select(Enrollment).where(
            Enrollment.device_id == device_id,
            Enrollment.program_id == program_id,
            Enrollment.ended_at.is_(None),
        )
    )


def end_link(
    session: Session,
    link: Enrollment,
    *,
    actor: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> Enrollment:
    """End an open link and log it."""
    now = now or utcnow()
    link.ended_at = now
    link.end_reason = reason
    _log(session, link, "unenrolled", now, actor, reason)
    return link


def unenroll(
    session: Session,
    device_id: str,
    program_id: str,
    *,
    actor: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> Enrollment:
    """End the open link between a device and a program."""
    link = open_link(session, device_id.lower(), program_id)
    if link is None:
        raise NotFound("enrollment", f"{device_id} in {program_id}")
    return end_link(session, link, actor=actor, reason=reason, now=now)


def _log(
    session: Session,
    link: Enrollment,
    action: str,
    at: datetime,
    actor: str | None,
    reason: str | None,
) -> None:
    session.add(
        EnrollmentLog(
            enrollment_id=link.enrollment_id,
            device_id=link.device_id,
            program_id=link.program_id,
            action=action,
            at=at,
            actor=actor,
            reason=reason,
        )
    )
    session.flush()


def links_at(
    session: Session,
    at: datetime,
    *,
    device_id: str | None = None,
    program_id: str | None = None,
) -> list[EnrollmentLog]:
    """The links open at instant ``at``, rebuilt from the append-only log.

    Returns the ``enrolled`` log entry of each link that was formed at or before
    ``at`` and not ended by then.
    """
    ended = aliased(EnrollmentLog)
    query = select(EnrollmentLog).where(
        EnrollmentLog.action == "enrolled",
        EnrollmentLog.at <= at,
        ~select(ended.seq)
        .where(
            and_(
                ended.enrollment_id == EnrollmentLog.enrollment_id,
                ended.action == "unenrolled",
                ended.at <= at,
            )
        )
        .exists(),
    )
    if device_id is not None:
        query = query.where(EnrollmentLog.device_id == device_id.lower())
    if program_id is not None:
        query = query.where(EnrollmentLog.program_id == program_id)
    return list(session.scalars(query.order_by(EnrollmentLog.seq)))


def history(
    session: Session,
    *,
    device_id: str | None = None,
    program_id: str | None = None,
    limit: int = 1000,
) -> list[EnrollmentLog]:
    """The log entries, oldest first."""
    query = select(EnrollmentLog)
    if device_id is not None:
        query = query.where(EnrollmentLog.device_id == device_id.lower())
    if program_id is not None:
        query = query.where(EnrollmentLog.program_id == program_id)
    return list(session.scalars(query.order_by(EnrollmentLog.seq).limit(limit)))


def device_of_ven(session: Session, ven_id: str) -> str | None:
    """The device id behind a VEN id (ids are derived from device ids, so one device)."""
    found = session.scalar(select(Enrollment.device_id).where(Enrollment.ven_id == ven_id).limit(1))
    return str(found) if found is not None else None


def enrolled_ven(session: Session, ven_id: str) -> str | None:
    """``ven_id`` if an open enrolment issued it (the VTN admits only those)."""
    found = session.scalar(
        select(Enrollment.ven_id)
        .where(Enrollment.ven_id == ven_id, Enrollment.ended_at.is_(None))
        .limit(1)
    )
    return str(found) if found is not None else None


#: An OpenADR certificate fingerprint: the last ten bytes of the certificate's SHA-256,
#: upper-case hex pairs separated by colons.
FINGERPRINT = re.compile(r"^([0-9A-F]{2}:){9}[0-9A-F]{2}$")


def set_ven_fingerprint(
    session: Session, enrollment_id: int, fingerprint: str, *, field: str = "fingerprint"
) -> Enrollment:
    """Store the fingerprint of the certificate an open enrolment's VEN connects and
    signs with (signed mode). A device has one VEN whatever its programs, so every open
    enrolment of that VEN gets it; a new fingerprint replaces the old one.

    Raises
    ------
    NotFound
        No open enrolment ``enrollment_id``.
    InvalidInput
        ``fingerprint`` is not ten colon-separated hex pairs (named ``field``).
    """
    canonical = fingerprint.strip().upper()
    if not FINGERPRINT.match(canonical):
        raise InvalidInput(
            [
                Problem(
                    field,
                    "must be ten hex pairs separated by colons (29 characters), the "
                    "OpenADR fingerprint of the VEN's certificate",
                    fingerprint,
                    "AB:CD:EF:01:23:45:67:89:AB:CD",
                )
            ]
        )
    link = session.get(Enrollment, enrollment_id)
    if link is None or link.ended_at is not None:
        raise NotFound("open enrollment", str(enrollment_id))
    for other in session.scalars(
        select(Enrollment).where(Enrollment.ven_id == link.ven_id, Enrollment.ended_at.is_(None))
    ):
        other.ven_cert_fingerprint = canonical
    session.flush()
    return link


def ven_fingerprint(session: Session, ven_id: str) -> str | None:
    """The certificate fingerprint stored for a VEN with an open enrolment, else ``None``
    (a VEN without one cannot connect in signed mode)."""
    found = session.scalar(
        select(Enrollment.ven_cert_fingerprint)
        .where(
            Enrollment.ven_id == ven_id,
            Enrollment.ended_at.is_(None),
            Enrollment.ven_cert_fingerprint.is_not(None),
        )
        .order_by(Enrollment.enrollment_id.desc())
        .limit(1)
    )
    return str(found) if found is not None else None
