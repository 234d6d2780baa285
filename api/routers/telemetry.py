"""Telemetry in: batches of readings, stored idempotently."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import SessionDep, SettingsDep, TelemetrySender
from api.schemas import TelemetryIn, TelemetryOut
from registry.errors import InvalidInput, Problem
from registry.telemetry import store_readings

router = APIRouter(prefix="/v1/telemetry", tags=["telemetry"])


@router.post("")
def ingest(
    body: TelemetryIn,
    session: SessionDep,
    settings: SettingsDep,
    _: TelemetrySender,
    response: Response,
) -> TelemetryOut:
    """Store a batch. Good rows are stored, bad rows come back with a reason each;
    sending the same batch twice stores it once. 422 when every row is bad."""
    limit = settings.max_telemetry_batch
    if len(body.readings) > limit:
        raise InvalidInput(
            [Problem("readings", f"at most {limit} readings per batch", len(body.readings), limit)]
        )
    result = store_readings(session, body.readings)
    session.commit()
    if result.rejected and len(result.rejected) == result.received:
        response.status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
    return TelemetryOut.model_validate(
        {
            "received": result.received,
            "stored": result.stored,
            "duplicates": result.duplicates,
            "rejected": [r.as_dict() for r in result.rejected],
        }
    )
