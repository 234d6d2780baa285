"""Devices: register, list, read, update, retire, bulk import, and their telemetry."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import select

from api.deps import AnyRole, Integrator, SessionDep, SettingsDep
from api.schemas import (
    BulkDevicesIn,
    BulkDevicesOut,
    DeviceList,
    DeviceOut,
    EnrollmentOut,
    ReadingOut,
    TelemetrySeries,
    Timestamp,
)
from registry import devices as store
from registry.errors import InvalidInput, NotFound, Problem
from registry.keys import Principal, Role
from registry.schemas import DeviceIn, DeviceStatus, DeviceType, DeviceUpdate
from registry.tables import Device, Enrollment
from registry.telemetry import read_telemetry

router = APIRouter(prefix="/v1/devices", tags=["devices"])


def _visible(principal: Principal, device: Device) -> Device:
    """Owners see only their own devices; to them others do not exist."""
    if principal.role == Role.owner and device.owner_name != principal.subject:
        raise NotFound("device", device.device_id)
    return device


@router.post("", status_code=status.HTTP_201_CREATED)
def create_device(body: DeviceIn, session: SessionDep, _: Integrator) -> DeviceOut:
    """Register a device; its id is keccak-256 of the normalized make|model|serial."""
    device = store.create_device(session, body)
    session.commit()
    return DeviceOut.of(device)


@router.post("/bulk")
def create_devices(
    body: BulkDevicesIn,
    session: SessionDep,
    settings: SettingsDep,
    _: Integrator,
    response: Response,
) -> BulkDevicesOut:
    """Register many devices. Good rows are stored and bad ones reported, row by row;
    with ``atomic`` any bad row stores nothing (422). All rows bad: 422."""
    limit = settings.max_bulk_devices
    if len(body.devices) > limit:
        raise InvalidInput(
            [Problem("devices", f"at most {limit} devices per request", len(body.devices), limit)]
        )
    result = store.bulk_create_devices(session, body.devices, atomic=body.atomic)
    session.commit()
    if not result.created and result.errors:
        response.status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
    return BulkDevicesOut.model_validate(
        {"created": result.created, "errors": [e.as_dict() for e in result.errors]}
    )


@router.get("")
def list_devices(
    session: SessionDep,
    principal: AnyRole,
    feeder: str | None = None,
    region: str | None = None,
    device_type: DeviceType | None = None,
    program_id: str | None = None,
    status_: Annotated[DeviceStatus | None, Query(alias="status")] = None,
    site_id: str | None = None,
    owner_name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> DeviceList:
    """Devices matching every filter given, ordered by id."""
    if principal.role == Role.owner:
        owner_name = principal.subject
    where = store.DeviceFilter(
        feeder=feeder,
        region=region,
        device_type=device_type.value if device_type else None,
        program_id=program_id,
        status=status_.value if status_ else None,
        owner_name=owner_name,
        site_id=site_id,
    )
    items, total = store.list_devices(session, where, limit=limit, offset=offset)
    return DeviceList(
        items=[DeviceOut.of(d) for d in items], total=total, limit=limit, offset=offset
    )


@router.get("/{device_id}")
def get_device(device_id: str, session: SessionDep, principal: AnyRole) -> DeviceOut:
    return DeviceOut.of(_visible(principal, store.get_device(session, device_id)))


@router.patch("/{device_id}")
def update_device(
    device_id: str, body: DeviceUpdate, session: SessionDep, _: Integrator
) -> DeviceOut:
    """Change a device's attributes; its identity (make, model, serial) never changes."""
    device = store.update_device(session, device_id, body)
    session.commit()
    return DeviceOut.of(device)


@router.post("/{device_id}/retire")
def retire_device(device_id: str, session: SessionDep, principal: Integrator) -> DeviceOut:
    """Retire a device: it stays on record, its open enrolments end (and are logged)."""
    device = store.retire_device(session, device_id, actor=principal.name)
    session.commit()
    return DeviceOut.of(device)


@router.get("/{device_id}/enrollments")
def device_enrollments(
    device_id: str, session: SessionDep, principal: AnyRole
) -> list[EnrollmentOut]:
    """Every enrolment of the device, open and ended, oldest first."""
    device = _visible(principal, store.get_device(session, device_id))
    links = session.scalars(
        select(Enrollment)
        .where(Enrollment.device_id == device.device_id)
        .order_by(Enrollment.enrollment_id)
    )
    return [EnrollmentOut.model_validate(link) for link in links]


@router.get(
    "/{device_id}/telemetry",
    response_model=TelemetrySeries,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
)
def device_telemetry(
    device_id: str,
    session: SessionDep,
    principal: AnyRole,
    start: Timestamp | None = None,
    end: Timestamp | None = None,
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
) -> TelemetrySeries | Response:
    """Readings in ``[start, end)``, oldest first, as JSON or CSV (``timestamp_utc`` column)."""
    device = _visible(principal, store.get_device(session, device_id))
    frame = read_telemetry(session, device.device_id, start, end, limit=limit)
    if format_ == "csv":
        out = frame.rename(columns={"timestamp": "timestamp_utc"})
        out["timestamp_utc"] = out["timestamp_utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        return Response(out.to_csv(index=False), media_type="text/csv")
    frame["soc_frac"] = frame["soc_frac"].astype(object).where(frame["soc_frac"].notna(), None)
    readings = [ReadingOut.model_validate(row) for row in frame.to_dict("records")]
    return TelemetrySeries(device_id=device.device_id, readings=readings)
