"""Settlements: rewards for delivered response, posted on chain and claimed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api import settlement
from api.chain import sender
from api.deps import AnyRole, ChainDep, GridViewer, ProgramAdmin, SessionDep, SettingsDep
from api.schemas import Timestamp
from contracts.chain import ChainError
from contracts.rewards import RewardPolicy
from registry.keys import Role
from registry.lookups import get_device
from registry.tables import Settlement, SettlementReward

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
    send: bool = Field(True, description="Post on chain now (else only prepare)")


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


@router.post("/v1/settlements", status_code=status.HTTP_201_CREATED)
async def create_settlement(
    body: SettlementIn,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    _: ProgramAdmin,
    response: Response,
) -> SettlementOut:
    """Prepare an epoch's rewards (written before anything is sent) and post it. The
    same epoch with the same rewards returns what is stored (200); with other rewards
    409. A node that fails answers 502 and leaves the epoch to be sent again."""
    try:
        policy = RewardPolicy(
            body.rate_ovpp_per_kwh, body.w_delivery, body.w_availability, body.w_data_quality
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
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
    if existed:
        response.status_code = status.HTTP_200_OK
    if body.send:
        row = await _on_chain(settlement.send, session, settings, chain, body.epoch)
    return SettlementOut.model_validate(settlement.summary(row))


@router.post("/v1/settlements/{epoch}/send")
async def send_settlement(
    epoch: Epoch, session: SessionDep, settings: SettingsDep, chain: ChainDep, _: ProgramAdmin
) -> SettlementOut:
    """Post (or confirm) a prepared epoch; safe to repeat."""
    row = await _on_chain(settlement.send, session, settings, chain, epoch)
    return SettlementOut.model_validate(settlement.summary(row))


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
