"""Grid-level device awareness for operators."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from api.deps import GridViewer, SessionDep, SettingsDep
from api.schemas import CapacityRow, Timestamp
from registry.awareness import capacity_summary

router = APIRouter(prefix="/v1/grid", tags=["grid"])

Group = Literal["region", "feeder", "device_type"]


@router.get("/capacity")
def capacity(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _: GridViewer,
    group_by: Annotated[list[Group] | None, Query()] = None,
    region: str | None = None,
    feeder: str | None = None,
    program_id: str | None = None,
    at: Timestamp | None = None,
) -> list[CapacityRow]:
    """Capacity by region, feeder and type (or the groups asked), with how much is
    enrolled, online, and both (available), in one query; with the VTN running, also
    how much is enrolled through a VEN it hears from now (connected: what a dispatch
    can reach)."""
    vtn = getattr(request.app.state, "vtn", None)
    rows = capacity_summary(
        session,
        group_by=group_by or ["region", "feeder", "device_type"],
        at=at,
        online_window=timedelta(seconds=settings.online_window_s),
        region=region,
        feeder=feeder,
        program_id=program_id,
        connected_vens=vtn.connected() if vtn is not None else None,
    )
    return [CapacityRow.model_validate(r) for r in rows]
