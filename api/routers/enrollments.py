"""Enrolment and routing: check a device against a program, link, unlink, and history."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from sqlalchemy.orm import Session

from api.chain import sender
from api.deps import GridViewer, Integrator, SessionDep, SettingsDep, get_chain
from api.schemas import (
    CheckOut,
    ConnectionOut,
    EligibilityOut,
    EnrollmentIn,
    EnrollmentOut,
    LinkOut,
    LogEntryOut,
    Timestamp,
    UnenrollIn,
    VenCertificateIn,
    VenCertificateOut,
)
from api.settings import Settings
from api.settlement import sync_devices
from contracts.chain import ChainError
from dispatch.certs import fingerprint, issued_by
from registry import enrollment as store
from registry.errors import InvalidInput, NotFound, Problem
from registry.lookups import get_device, get_program
from registry.tables import Device, Enrollment, Program, utcnow

router = APIRouter(prefix="/v1/enrollments", tags=["enrollments"])


@router.post("", status_code=status.HTTP_201_CREATED)
def enroll(
    body: EnrollmentIn,
    session: SessionDep,
    settings: SettingsDep,
    principal: Integrator,
    request: Request,
) -> ConnectionOut:
    """Enrol a device in a program. Runs every capability check that applies; on
    failure answers 422 with each failed check, the device's value and the program's
    limit, and forms no link. A program with a connection fee takes it in OVPP from
    the payer's allowance to the device registry contract first; a payer short of
    allowance or balance gets 402 with the chain's reason, and no link is formed. On
    success returns the connection parameters."""
    connection = store.enroll(
        session, body.device_id, body.program_id, vtn_url=settings.vtn_url, actor=principal.name
    )
    device = get_device(session, body.device_id)
    program = get_program(session, body.program_id)
    checks = store.capability_checks(device, program)
    if program.connection_fee_ovpp > 0:
        _charge_fee(body, device, program, settings, request, session)
    session.commit()
    return ConnectionOut.model_validate(
        {**asdict(connection), "checks": [c.as_dict() for c in checks]}
    )


def _charge_fee(
    body: EnrollmentIn,
    device: Device,
    program: Program,
    settings: Settings,
    request: Request,
    session: Session,
) -> None:
    payer = device.owner_address if body.fee_payer == "customer" else body.fee_payer_address
    if not payer:
        session.rollback()
        field = "owner_address" if body.fee_payer == "customer" else "fee_payer_address"
        raise InvalidInput(
            [Problem(field, f"needed to pay the connection fee of {program.program_id}")]
        )
    chain = get_chain(request)
    amount = int(Decimal(repr(program.connection_fee_ovpp)) * 10**18)
    try:
        account = sender(settings, chain.w3)
        sync_devices(session, chain, account, [device.device_id])
        chain.charge_connection_fee(
            account, bytes.fromhex(device.device_id[2:]), program.program_id, payer, amount
        )
    except ChainError as exc:
        session.rollback()
        raise HTTPException(
            status.HTTP_402_PAYMENT_REQUIRED,
            f"connection fee of {program.connection_fee_ovpp:g} OVPP from {payer}: "
            f"{exc.reason} (approve the device registry {chain.deployment.registry} for it)",
        ) from exc


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
    at: Timestamp | None = None,
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
    enrollment_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
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


@router.put("/{enrollment_id}/certificate")
def register_certificate(
    enrollment_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: VenCertificateIn,
    session: SessionDep,
    settings: SettingsDep,
    _: Integrator,
) -> VenCertificateOut:
    """Register the certificate that the enrolment's VEN connects and signs with in
    signed mode, as the PEM certificate or its fingerprint; the VTN refuses that VEN any
    other. Every open enrolment of the same VEN (the device's other programs) gets it,
    and a new one replaces the old. A PEM certificate must be issued by the CA of
    VTN_CA_FILE when that is set."""
    if (body.certificate_pem is None) == (body.fingerprint is None):
        raise InvalidInput(
            [Problem("certificate_pem", "give exactly one of certificate_pem and fingerprint")]
        )
    field, value = "fingerprint", body.fingerprint or ""
    if body.certificate_pem is not None:
        field = "certificate_pem"
        try:
            value = fingerprint(body.certificate_pem)
        except ValueError as exc:
            raise InvalidInput([Problem(field, str(exc))]) from exc
        if settings.vtn_ca_file is not None and not issued_by(
            body.certificate_pem, settings.vtn_ca_file.read_bytes()
        ):
            raise InvalidInput(
                [Problem(field, f"not issued by the VTN's CA (VTN_CA_FILE {settings.vtn_ca_file})")]
            )
    link = store.set_ven_fingerprint(session, enrollment_id, value, field=field)
    session.commit()
    return VenCertificateOut(
        enrollment_id=link.enrollment_id,
        ven_id=link.ven_id,
        fingerprint=str(link.ven_cert_fingerprint),
    )
