"""The FastAPI application: assembles settings, the database and the routers."""

from __future__ import annotations

import threading

from fastapi import FastAPI
from sqlalchemy import Engine

from api import errors
from api.routers import (
    devices,
    enrollments,
    forecasts,
    grid,
    health,
    programs,
    settlements,
    telemetry,
)
from api.settings import Settings
from registry.db import make_engine, session_factory

DESCRIPTION = """
OpenVPP turns distributed energy resources into a virtual power plant: a registry of
devices with digital identities, utility programs and enrolment, and telemetry.

Units are in field names (`p_kw`, `e_max_kwh`, `soc_frac`); timestamps are ISO 8601
with an offset, stored in UTC; power is positive when drawn from the grid.
Every `/v1` route needs an API key: `Authorization: Bearer <key>`.
"""


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app. ``engine`` overrides ``settings.database_url`` (tests pass theirs)."""
    settings = settings or Settings()
    engine = engine or make_engine(settings.database_url)
    app = FastAPI(title="OpenVPP", version="0.1.0", description=DESCRIPTION)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)
    app.state.chain = None  # opened on first use: api.deps.get_chain
    app.state.chain_lock = threading.Lock()
    errors.install(app)
    for module in (
        health,
        devices,
        programs,
        enrollments,
        telemetry,
        grid,
        forecasts,
        settlements,
    ):
        app.include_router(module.router)
    return app
