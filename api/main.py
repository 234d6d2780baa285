"""The FastAPI application: assembles settings, the database and the routers."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from sqlalchemy import Engine

from api import backtests, capacity, errors, schedules, settling
from api.chain import open_chain, shared_chain
from api.jobs import JobRunner
from api.routers import (
    capacity_requests,
    dashboard,
    day_ahead,
    devices,
    enrollments,
    events,
    forecasts,
    grid,
    health,
    jobs,
    programs,
    settlements,
    telemetry,
)
from api.settings import Settings
from contracts.chain import Chain, ChainError
from dispatch.certs import Credentials
from dispatch.vtn import OptResponse, Vtn
from registry.db import make_engine, session_factory
from registry.enrollment import device_of_ven, enrolled_ven, ven_fingerprint
from registry.events import record_response
from registry.tables import Job
from registry.telemetry import store_readings

logger = logging.getLogger(__name__)

DESCRIPTION = """
OpenVPP turns distributed energy resources into a virtual power plant: a registry of
devices with digital identities, utility programs and enrolment, and telemetry.

Units are in field names (`p_kw`, `e_max_kwh`, `soc_frac`); timestamps are ISO 8601
with an offset, stored in UTC; power is positive when drawn from the grid.
Every `/v1` route needs an API key: `Authorization: Bearer <key>`. The operator
dashboard at `/` needs none to load; it asks for the viewer's key and sends it.
"""


def _check_chain(app: FastAPI) -> None:
    """With a node configured, check it at start: a node of another chain, or without
    our contracts, stops the start with the reason; a node that does not answer is
    logged, and chain routes answer 502 until it does."""
    settings: Settings = app.state.settings
    if not settings.chain_rpc_url:
        return
    try:
        app.state.chain = open_chain(settings)
    except ChainError as exc:
        if "no EVM node answers" not in exc.reason:
            raise RuntimeError(f"chain check at start-up: {exc}") from exc
        logger.warning("chain check at start-up: %s", exc)


def _chain(app: FastAPI) -> Callable[[], Chain]:
    """Opens the app's chain for its jobs (the routes' own: :func:`api.chain.shared_chain`)."""
    return lambda: shared_chain(app.state)


def _vtn(app: FastAPI) -> Vtn:
    """The VTN on VTN_URL's host and port, admitting the VEN ids of open enrolments; in
    signed mode (VTN_CERT, VTN_KEY, VTN_CA_FILE) only over a connection with the
    certificate registered on the enrolment."""
    settings: Settings = app.state.settings
    address = urlsplit(settings.vtn_url)

    def lookup(ven_name: str) -> str | None:
        with app.state.session_factory() as session:
            return enrolled_ven(session, ven_name)

    def fingerprint(ven_id: str) -> str | None:
        with app.state.session_factory() as session:
            return ven_fingerprint(session, ven_id)

    credentials = None
    if settings.vtn_cert and settings.vtn_key and settings.vtn_ca_file:
        credentials = Credentials(settings.vtn_cert, settings.vtn_key, settings.vtn_ca_file)

    async def readings(
        ven_id: str, values: list[tuple[datetime, float]], status: dict[str, Any]
    ) -> None:
        with app.state.session_factory() as session:
            device = device_of_ven(session, ven_id)
            if device is None:
                return
            rows = [
                {
                    "device_id": device,
                    "timestamp": stamp.isoformat(),
                    "p_kw": kw,
                    "soc_frac": status.get("soc_frac"),
                    "online": status.get("online", True),
                }
                for stamp, kw in values
            ]
            result = store_readings(session, rows)
            session.commit()
            for rejected in result.rejected:
                # A bad reading is stored nowhere; the log says which and why.
                logger.warning("VEN %s: report refused: %s", ven_id, rejected.as_dict())

    async def responded(response: OptResponse) -> None:
        with app.state.session_factory() as session:
            record_response(session, response.event_id, response.opt_type, response.at)
            session.commit()

    return Vtn(
        lookup,
        on_response=responded,
        host=address.hostname or "127.0.0.1",
        port=address.port or 8080,
        poll_interval_s=settings.vtn_poll_interval_s,
        on_readings=readings,
        report_interval_s=settings.vtn_report_interval_s,
        credentials=credentials,
        fingerprint_lookup=fingerprint if credentials is not None else None,
    )


def _runner(app: FastAPI, services: capacity.Services) -> JobRunner:
    """Background jobs: capacity requests planned and dispatched, and moved on with the
    clock to delivery; day-ahead schedules planned; forecast backtests; settlement
    epochs sent on chain."""

    async def request(job: Job) -> None:
        await capacity.run_job(services, job)

    async def schedule(job: Job) -> None:
        await schedules.run_job(services, job)

    async def backtest(job: Job) -> None:
        await backtests.run_job(services, job)

    async def settle(job: Job) -> None:
        await settling.run_job(services, job)

    def failed(job: Job) -> None:
        capacity.job_failed(services, job)
        schedules.job_failed(services, job)

    return JobRunner(
        app.state.session_factory,
        {
            capacity.JOB_KIND: request,
            schedules.JOB_KIND: schedule,
            backtests.JOB_KIND: backtest,
            settling.JOB_KIND: settle,
        },
        tick=lambda: capacity.advance(services),
        poll_s=app.state.settings.job_poll_s,
        on_failed=failed,
        parallel=app.state.settings.jobs_parallel,
    )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    _check_chain(app)
    settings: Settings = app.state.settings
    vtn = _vtn(app) if settings.vtn_enabled else None
    if vtn is not None:
        await vtn.start()
    app.state.vtn = vtn
    services = capacity.Services(app.state.session_factory, settings, vtn, chain=_chain(app))
    app.state.capacity = services
    runner = _runner(app, services) if settings.jobs_enabled else None
    if runner is not None:
        await runner.start()
    app.state.jobs = runner
    try:
        yield
    finally:
        if runner is not None:
            await runner.stop()
        if vtn is not None:
            await vtn.stop()


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app. ``engine`` overrides ``settings.database_url`` (tests pass theirs)."""
    settings = settings or Settings()
    engine = engine or make_engine(settings.database_url)
    app = FastAPI(title="OpenVPP", version="0.1.0", description=DESCRIPTION, lifespan=_lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)
    app.state.chain = None  # opened on first use: api.chain.shared_chain
    app.state.chain_lock = threading.Lock()
    # Set by the lifespan; a placeholder so routes work in apps run without it.
    app.state.vtn = None
    app.state.jobs = None
    app.state.capacity = capacity.Services(app.state.session_factory, settings, chain=_chain(app))
    errors.install(app)
    for module in (
        health,
        devices,
        programs,
        enrollments,
        events,
        capacity_requests,
        day_ahead,
        telemetry,
        grid,
        forecasts,
        jobs,
        settlements,
        dashboard,
    ):
        app.include_router(module.router)
    app.mount("/static", dashboard.static_files(), name="static")
    return app
