"""Settlements: rewards for delivered response, posted on chain by a background job
(:mod:`api.settling`) and claimed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import settlement, settling
from api.chain import sender
from api.deps import AnyRole, ChainDep, GridViewer, ProgramAdmin, SessionDep, SettingsDep
from api.jobs import wake
from api.schemas import Timestamp
from contracts.chain import ChainError
from contracts.rewards import RewardPolicy
from registry.errors import InvalidInput, NotFound, Problem
from registry.keys import Role
from registry.lookups import get_device
from registry.tables import Job, Program, Settlement, SettlementReward

router = APIRouter(tags=["settlements"])

#: A settlement epoch in a path (the same limit as when it is posted).
Epoch = Annotated[int, Path(ge=0, le=2**53, description="Settlement epoch id")]
T = TypeVar("T")


class DeliveryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: str
    delivered_kwh: float = Field(ge=0, le=1_000_000)
    availability: float | None = Field(
        None, ge=0, le=1, description="Share of the epoch online (default: from telemetry)"
    )
    data_quality: float | None = Field(
        None, ge=0, le=1, description="Share of expected telemetry received (default: measured)"
    )


class SettlementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epoch: int = Field(ge=0, le=2**53, description="Settlement epoch id (posted once)")
    program_id: str | None = None
    start: Timestamp | None = Field(None, description="Epoch start (to measure telemetry)")
    end: Timestamp | None = Field(None, description="Epoch end")
    rate_ovpp_per_kwh: float = Field(ge=0, le=1_000_000)
    w_delivery: float = Field(0.7, ge=0, le=1)
    w_availability: float = Field(0.2, ge=0, le=1)
    w_data_quality: float = Field(0.1, ge=0, le=1)
    deliveries: Annotated[list[DeliveryIn], Field(min_length=1, max_length=100_000)]
    send: bool = Field(True, description="Post on chain, by a job (else only prepare)")


class SettlementOut(BaseModel):
    epoch: int
    program_id: str | None
    status: str
    root: str
    total_units: str
    total_ovpp: float
    rewards: int
    chain_id: int
    distributor: str
    tx_hash: str | None
    attempts: int
    last_error: str | None
    skipped: dict[str, Any]
    created_at: datetime
    confirmed_at: datetime | None


class RewardOut(BaseModel):
    epoch: int
    index: int
    device_id: str
    owner_address: str
    amount_units: str
    amount_ovpp: float
    delivered_kwh: float
    availability: float
    data_quality: float
    contribution_kwh: float
    proof: list[str]
    epoch_status: str
    claimed: bool
    claim_tx: str | None


async def _on_chain(
    function: Callable[..., T], session: Any, settings: Any, chain: Any, epoch: int
) -> T:
    """Run a settlement step that talks to the node; a node that fails is a 502."""
    try:
        return await run_in_threadpool(function, session, chain, sender(settings, chain.w3), epoch)
    except ChainError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"{exc.action}: {exc.reason}") from exc


class SettlementJobOut(SettlementOut):
    """An epoch and the job that sends it on chain (``GET /v1/jobs/{job_id}``)."""

    job_id: str | None = Field(
        description="The job that sends the epoch, or sent it last; null when none has"
    )


def _policy(body: SettlementIn) -> RewardPolicy:
    try:
        return RewardPolicy(
            body.rate_ovpp_per_kwh, body.w_delivery, body.w_availability, body.w_data_quality
        )
    except ValueError as exc:
        name, _, message = str(exc).partition(": ")
        field = "w_delivery" if name == "weights" else name
        raise InvalidInput([Problem(field, message)]) from exc


def _in_background(
    session: Session, request: Request, response: Response, row: Settlement, code: int
) -> SettlementJobOut:
    """Have a job send ``row`` unless it is confirmed: 202 when this starts one, else
    ``code`` (the job under way, or the last one, is named)."""
    job, started = None, False
    if row.status != "confirmed":
        job, started = settling.start(session, row.epoch)
        session.commit()
        wake(request.app)
    else:
        job = settling.latest(session, row.epoch)
    response.status_code = status.HTTP_202_ACCEPTED if started else code
    return _with_job(row, job)


def _with_job(row: Settlement, job: Job | None) -> SettlementJobOut:
    """The epoch as stored, with the job that sends (or sent) it."""
    return SettlementJobOut.model_validate(
        {**settlement.summary(row), "job_id": job.job_id if job else None}
    )


@router.post(
    "/v1/settlements",
    status_code=status.HTTP_202_ACCEPTED,
    response_description="Prepared; the job `job_id` sends it",
    responses={
        200: {
            "model": SettlementJobOut,
            "description": "The epoch was stored with the same rewards: nothing new",
        },
        201: {"model": SettlementJobOut, "description": "Prepared, not sent (`send` false)"},
    },
)
async def create_settlement(
    body: SettlementIn,
    session: SessionDep,
    chain: ChainDep,
    request: Request,
    _: ProgramAdmin,
    response: Response,
) -> SettlementJobOut:
    """Prepare an epoch's rewards at once (written before anything is sent; bad input
    422, an epoch stored with other rewards 409) and post it on chain in the
    background: 202 with ``job_id``, the job that sends it. The same epoch with the
    same rewards returns what is stored (200) and the job under way, starting none;
    one left unsent by a job that failed gets a new job (202). A node that fails fails
    the job and leaves the epoch to be sent again."""
    policy = _policy(body)
    if body.program_id is not None and session.get(Program, body.program_id) is None:
        raise InvalidInput([Problem("program_id", "no such program", body.program_id)])
    deliveries = [settlement.Delivery(**d.model_dump()) for d in body.deliveries]
    existed = session.get(Settlement, body.epoch) is not None
    window = (body.start, body.end) if body.start and body.end else None
    row = await run_in_threadpool(
        settlement.prepare,
        session,
        chain,
        body.epoch,
        policy,
        deliveries,
        body.program_id,
        window,
    )
    code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
    if not body.send:
        response.status_code = code
        return _with_job(row, settling.latest(session, row.epoch))
    return _in_background(session, request, response, row, code)


@router.post(
    "/v1/settlements/{epoch}/send",
    status_code=status.HTTP_202_ACCEPTED,
    response_description="The job `job_id` sends it",
    responses={
        200: {
            "model": SettlementJobOut,
            "description": "Confirmed already, or a job sends it: nothing new",
        }
    },
)
def send_settlement(
    epoch: Epoch, session: SessionDep, request: Request, _: ProgramAdmin, response: Response
) -> SettlementJobOut:
    """Post (or confirm) a prepared epoch in the background, as ``POST /v1/settlements``
    does: 202 with a new job; 200 when the epoch is confirmed or a job already sends
    it. Safe to repeat: an epoch whose transaction went through is confirmed, never
    sent twice."""
    row = session.get(Settlement, epoch)
    if row is None:
        raise NotFound("settlement", str(epoch))
    return _in_background(session, request, response, row, status.HTTP_200_OK)


@router.post("/v1/settlements/{epoch}/claims")
async def claim_settlement(
    epoch: Epoch, session: SessionDep, settings: SettingsDep, chain: ChainDep, _: ProgramAdmin
) -> dict[str, int]:
    """Claim every unclaimed reward of a confirmed epoch on its owners' behalf."""
    return await _on_chain(settlement.claim_all, session, settings, chain, epoch)


@router.post("/v1/settlements/{epoch}/reputations")
async def update_reputations(
    epoch: Epoch, session: SessionDep, settings: SettingsDep, chain: ChainDep, _: ProgramAdmin
) -> dict[str, int]:
    """Write the delivery ratio of every device rewarded in the epoch to the chain's
    device registry, registering there the devices that are not yet."""
    return await _on_chain(settlement.update_reputations, session, settings, chain, epoch)


@router.get("/v1/settlements")
def list_settlements(session: SessionDep, _: GridViewer) -> list[SettlementOut]:
    rows = session.scalars(select(Settlement).order_by(Settlement.epoch.desc()).limit(500))
    return [SettlementOut.model_validate(settlement.summary(r)) for r in rows]


@router.get("/v1/settlements/{epoch}")
def get_settlement(epoch: Epoch, session: SessionDep, _: GridViewer) -> dict[str, Any]:
    row = session.get(Settlement, epoch)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"settlement {epoch} not found")
    rewards = session.scalars(
        select(SettlementReward)
        .where(SettlementReward.epoch == epoch)
        .order_by(SettlementReward.leaf_index)
    )
    return {
        **SettlementOut.model_validate(settlement.summary(row)).model_dump(),
        "leaves": [RewardOut.model_validate(settlement.reward_out(r, row.status)) for r in rewards],
    }


@router.get("/v1/devices/{device_id}/rewards")
def device_rewards(device_id: str, session: SessionDep, principal: AnyRole) -> list[RewardOut]:
    """Every epoch's reward of a device: amount, proof and claim status (owners see
    their own devices only)."""
    device = get_device(session, device_id)
    if principal.role == Role.owner and device.owner_name != principal.subject:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device_id!r} not found")
    rows = session.execute(
        select(SettlementReward, Settlement.status)
        .join(Settlement, Settlement.epoch == SettlementReward.epoch)
        .where(SettlementReward.device_id == device.device_id)
        .order_by(SettlementReward.epoch.desc())
    ).all()
    return [RewardOut.model_validate(settlement.reward_out(r, s)) for r, s in rows]
