"""OpenADR events: send setpoints to a device's VEN, follow their answers, cancel."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from api import measurement
from api.deps import Dispatcher, GridViewer, SessionDep
from api.schemas import Timestamp
from dispatch.vtn import Vtn
from registry import events as store
from registry.enrollment import enrolled_ven, ven_id_for
from registry.lookups import get_device
from registry.tables import DispatchEvent, utcnow

router = APIRouter(prefix="/v1/events", tags=["events"])


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    start: Timestamp
    minutes: int = Field(15, ge=1, le=1440, description="Length of each interval")
    values: Annotated[list[float], Field(min_length=1, max_length=288)] = Field(
        description="Setpoints [kW] (LOAD_DISPATCH) or levels 0-3 (SIMPLE), one per interval"
    )
    signal: Literal["LOAD_DISPATCH", "SIMPLE"] = "LOAD_DISPATCH"
    capacity_request_id: str | None = Field(None, max_length=64)


class EventOut(BaseModel):
    event_id: str
    ven_id: str
    device_id: str
    capacity_request_id: str | None
    signal_name: str
    intervals: list[dict[str, Any]]
    status: str
    created_at: datetime
    updated_at: datetime
    log: list[dict[str, Any]] | None = None


def _out(event: DispatchEvent, log: list[Any] | None = None) -> EventOut:
    entries = (
        [{"action": e.action, "at": e.at, **e.detail} for e in log] if log is not None else None
    )
    return EventOut.model_validate(
        {
            **{c: getattr(event, c) for c in EventOut.model_fields if c != "log"},
            "log": entries,
        }
    )


def _vtn(request: Request) -> Vtn:
    vtn: Vtn | None = request.app.state.vtn
    if vtn is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the VTN is not running (VTN_ENABLED=false)"
        )
    return vtn


@router.post("", status_code=status.HTTP_201_CREATED)
async def send_event(
    body: EventIn, session: SessionDep, request: Request, _: Dispatcher
) -> EventOut:
    """Send an event to the VEN of an enrolled device; its answer (opt in or out)
    updates the event's status."""
    vtn = _vtn(request)
    device = get_device(session, body.device_id)
    ven_id = enrolled_ven(session, ven_id_for(device.device_id))
    if ven_id is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"device {device.device_id} has no open enrolment (no VEN)"
        )
    step = timedelta(minutes=body.minutes)
    try:
        if body.signal == "SIMPLE":
            levels = [int(v) for v in body.values]
            if levels != body.values:
                raise ValueError("values: SIMPLE levels are whole numbers 0 to 3")
            event_id = vtn.send_levels(ven_id, body.start, step, levels)
        else:
            event_id = vtn.send_setpoints(ven_id, body.start, step, body.values)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    intervals = [
        {"start": (body.start + i * step).isoformat(), "minutes": body.minutes, "value": v}
        for i, v in enumerate(body.values)
    ]
    event = store.record_sent(
        session,
        event_id,
        ven_id=ven_id,
        device_id=device.device_id,
        signal_name=body.signal,
        intervals=intervals,
        capacity_request_id=body.capacity_request_id,
    )
    session.commit()
    return _out(event)


@router.get("")
def list_events(
    session: SessionDep,
    _: GridViewer,
    device_id: str | None = None,
    capacity_request_id: str | None = None,
    status_: Annotated[str | None, Query(alias="status")] = None,
) -> list[EventOut]:
    found = store.list_events(
        session, device_id=device_id, capacity_request_id=capacity_request_id, status=status_
    )
    return [_out(e) for e in found]


@router.get("/{event_id}")
def get_event(event_id: str, session: SessionDep, _: GridViewer) -> EventOut:
    """An event with its whole log (sent, answers, cancellation)."""
    return _out(store.get_event(session, event_id), store.event_log(session, event_id))


@router.post("/{event_id}/measure")
def measure_event(event_id: str, session: SessionDep, _: Dispatcher) -> dict[str, Any]:
    """Measure what the device delivered in a finished event it opted into (metered
    power from its telemetry against a baseline), add it to the device's delivery
    record once, and keep it in the event's log; measuring again returns the same."""
    event = store.get_event(session, event_id)
    try:
        detail = measurement.measure_event(session, event, utcnow())
    except measurement.NotMeasurable as exc:
        code = status.HTTP_409_CONFLICT if exc.conflict else status.HTTP_422_UNPROCESSABLE_CONTENT
        raise HTTPException(code, exc.message) from exc
    session.commit()
    return {"event_id": event_id, "device_id": event.device_id, **detail}


@router.post("/{event_id}/cancel")
async def cancel_event(
    event_id: str, session: SessionDep, request: Request, _: Dispatcher
) -> EventOut:
    vtn = _vtn(request)
    event = store.get_event(session, event_id)
    vtn.cancel(event.ven_id, event.event_id)
    store.record_cancel(session, event_id)
    session.commit()
    return _out(event, store.event_log(session, event_id))
