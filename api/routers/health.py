from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from api.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(session: SessionDep, request: Request) -> dict[str, Any]:
    """Liveness, database reachability, and how many VENs the VTN hears from (polled
    within the last three poll intervals); needs no key."""
    session.execute(text("SELECT 1"))
    vtn = request.app.state.vtn
    return {
        "status": "ok",
        "database": session.get_bind().dialect.name,
        "vtn": {"running": vtn is not None, "connected_vens": len(vtn.connected()) if vtn else 0},
    }
