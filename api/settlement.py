"""Settlement: delivered response to rewards on chain, through an outbox.

1. :func:`prepare` computes an epoch's rewards (:mod:`contracts.rewards`), their Merkle
   tree and every proof, and writes them to the database with status ``pending``
   before anything is sent. Preparing the same epoch again with the same rewards
   returns what is stored; with other rewards it is refused.
2. :func:`send` posts the epoch. It first asks the chain what it holds for the epoch:
   our root (a send that went through before a crash, or another instance) marks it
   ``confirmed`` with nothing sent; another root marks it ``failed``. Otherwise it sends,
   stores the transaction hash *before* waiting, then checks the receipt. A node that
   goes away leaves the row ``sent`` or ``pending`` with the error: sending again picks
   up there, and the contract refuses a second post of the same epoch id, so nothing is
   ever paid twice.
3. :func:`claim_all` claims every unclaimed reward on the owners' behalf (the tokens
   always go to the owner in the leaf), skipping those already claimed on chain.

These functions commit: an outbox must be on disk before the transaction it records.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from eth_utils import keccak
from sqlalchemy import select
from sqlalchemy.orm import Session
from web3.exceptions import TimeExhausted, TransactionNotFound

from contracts.chain import Chain, ChainError
from contracts.chain import send as send_call
from contracts.merkle import MerkleTree, Reward, leaf_hash
from contracts.rewards import DeviceEpoch, RewardPolicy, contribution_kwh, epoch_rewards
from registry.errors import Conflict, InvalidInput, NotFound, Problem
from registry.tables import Device, Reading, Settlement, SettlementReward

RECEIPT_TIMEOUT_S = 120
ZERO_ADDRESS = "0x" + "0" * 40


@dataclass(frozen=True)
class Delivery:
    """What a device did in the epoch (from M&V). ``availability`` and ``data_quality``
    left ``None`` are measured from the device's telemetry over the epoch's window."""

    device_id: str
    delivered_kwh: float
    availability: float | None = None
    data_quality: float | None = None


SLOT = pd.Timedelta("15min")
DEFAULT_TELEMETRY_INTERVAL_S = 900.0


def telemetry_scores(
    session: Session, device_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, tuple[float, float]]:
    """Per device over ``[start, end)``: availability (share of 15-minute slots with a
    reading that says online) and data quality (readings stored, all of them valid
    since bad ones are refused at the door, over the readings its telemetry interval
    promises), both capped at 1."""
    if end <= start:
        raise InvalidInput([Problem("end", "must be after start", end.isoformat())])
    devices = session.execute(
        select(Device.device_key, Device.device_id, Device.telemetry_interval_s).where(
            Device.device_id.in_(list(device_ids))
        )
    ).all()
    rows = session.execute(
        select(Reading.device_key, Reading.ts, Reading.online).where(
            Reading.device_key.in_([d.device_key for d in devices]),
            Reading.ts >= start,
            Reading.ts < end,
        )
    ).all()
    frame = pd.DataFrame(rows, columns=["device_key", "ts", "online"])
    frame["slot"] = pd.to_datetime(frame["ts"], utc=True).dt.floor(SLOT)
    slots = (end - start) / SLOT.to_pytimedelta()
    span_s = (end - start).total_seconds()
    scores = {}
    for key, device_id, interval_s in devices:
        mine = frame[frame["device_key"] == key]
        online = mine.loc[mine["online"].astype(bool), "slot"].nunique()
        expected = span_s / (interval_s or DEFAULT_TELEMETRY_INTERVAL_S)
        scores[device_id] = (min(1.0, online / slots), min(1.0, len(mine) / expected))
    return scores


def _now() -> datetime:
    return datetime.now(UTC)


def prepare(
    session: Session,
    chain: Chain,
    epoch: int,
    policy: RewardPolicy,
    deliveries: Sequence[Delivery],
    program_id: str | None = None,
    window: tuple[datetime, datetime] | None = None,
) -> Settlement:
    """Compute and store an epoch's rewards and proofs (status ``pending``); measure
    what a delivery leaves out from telemetry over ``window``."""
    ids = [d.device_id.strip().lower() for d in deliveries]
    owners = dict(
        session.execute(
            select(Device.device_id, Device.owner_address).where(Device.device_id.in_(ids))
        ).all()
    )
    problems = [
        Problem(f"deliveries.{i}.device_id", "no such device in the registry", device)
        for i, device in enumerate(ids)
        if device not in owners
    ]
    unmeasured = [
        i for i, d in enumerate(deliveries) if d.availability is None or d.data_quality is None
    ]
    if unmeasured and window is None:
        problems += [
            Problem(
                f"deliveries.{i}.availability",
                "give availability and data_quality, or the epoch's start and end to "
                "measure them from telemetry",
            )
            for i in unmeasured
        ]
    if problems:
        raise InvalidInput(problems)
    scores = telemetry_scores(session, [ids[i] for i in unmeasured], *window) if window else {}
    records = []
    for device, d in zip(ids, deliveries, strict=True):
        measured = scores.get(device, (1.0, 1.0))
        records.append(
            DeviceEpoch(
                device,
                owners[device],
                d.delivered_kwh,
                measured[0] if d.availability is None else d.availability,
                measured[1] if d.data_quality is None else d.data_quality,
            )
        )
    try:
        result = epoch_rewards(epoch, records, policy)
    except ValueError as exc:
        raise InvalidInput([Problem("deliveries", str(exc))]) from exc
    if not result.rewards:
        raise InvalidInput(
            [Problem("deliveries", f"nothing to pay in epoch {epoch}", result.skipped)]
        )
    deployment = chain.deployment
    tree = MerkleTree(
        [leaf_hash(deployment.chain_id, deployment.distributor, r) for r in result.rewards]
    )
    root = "0x" + tree.root.hex()
    existing = session.get(Settlement, epoch)
    if existing is not None:
        if existing.root == root and existing.chain_id == deployment.chain_id:
            return existing
        raise Conflict("settlement", f"epoch {epoch} is already settled with other rewards")
    row = Settlement(
        epoch=epoch,
        program_id=program_id,
        status="pending",
        root=root,
        total_units=str(result.total),
        leaves=len(result.rewards),
        chain_id=deployment.chain_id,
        distributor=deployment.distributor,
        policy={
            "rate_ovpp_per_kwh": policy.rate_ovpp_per_kwh,
            "w_delivery": policy.w_delivery,
            "w_availability": policy.w_availability,
            "w_data_quality": policy.w_data_quality,
        },
        skipped=result.skipped,
        attempts=0,
        created_at=_now(),
    )
    session.add(row)
    by_device = {r.device_id: r for r in records}
    for reward in result.rewards:
        record = by_device["0x" + reward.device_id.hex()]
        session.add(
            SettlementReward(
                epoch=epoch,
                leaf_index=reward.index,
                device_id=record.device_id,
                owner_address=reward.owner,
                amount_units=str(reward.amount),
                delivered_kwh=record.delivered_kwh,
                availability=record.availability,
                data_quality=record.data_quality,
                contribution_kwh=contribution_kwh(record, policy),
                proof=["0x" + p.hex() for p in tree.proof(reward.index)],
            )
        )
    session.commit()
    return row


def _fail(session: Session, row: Settlement, error: str, status: str | None = None) -> None:
    row.last_error = error[:512]
    if status:
        row.status = status
    session.commit()


def send(
    session: Session,
    chain: Chain,
    sender: str,
    epoch: int,
    on_sent: Callable[[str], None] | None = None,
) -> Settlement:
    """Post a prepared epoch (see the module docstring); return its row.

    Parameters
    ----------
    on_sent : callable, optional
        Called with the transaction hash once it is stored, before the receipt is
        awaited (not called when nothing is sent).
    """
    row = session.get(Settlement, epoch)
    if row is None:
        raise NotFound("settlement", str(epoch))
    if row.status == "confirmed":
        return row
    if row.chain_id != chain.deployment.chain_id or row.distributor != chain.deployment.distributor:
        raise Conflict("settlement", f"epoch {epoch} was prepared for another chain or distributor")
    w3 = chain.w3
    try:
        on_chain = bytes(chain.distributor.functions.roots(epoch).call())
    except Exception as exc:  # the node is unreachable: keep the row as it is
        _fail(session, row, f"node unreachable: {exc}")
        raise ChainError(f"post epoch {epoch}", f"node unreachable: {exc}") from exc
    if on_chain == bytes.fromhex(row.root[2:]):
        row.status, row.confirmed_at, row.last_error = "confirmed", _now(), None
        session.commit()
        return row
    if any(on_chain):
        _fail(
            session, row, f"epoch {epoch} holds another root on chain: 0x{on_chain.hex()}", "failed"
        )
        return row
    call = chain.distributor.functions.post_epoch(
        epoch, bytes.fromhex(row.root[2:]), int(row.total_units), row.leaves
    )
    try:
        tx = call.transact({"from": sender})
    except Exception as exc:
        reason = str(exc)
        _fail(session, row, f"not sent: {reason}", "failed" if "revert" in reason else None)
        raise ChainError(f"post epoch {epoch}", reason) from exc
    row.tx_hash = "0x" + bytes(tx).hex()
    row.status = "sent"
    row.attempts += 1
    session.commit()  # the outbox knows the transaction before we wait for it
    if on_sent is not None:
        on_sent(row.tx_hash)
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=RECEIPT_TIMEOUT_S)
    except (TimeExhausted, TransactionNotFound) as exc:
        _fail(session, row, f"no receipt yet: {exc}")
        return row
    except Exception as exc:
        _fail(session, row, f"node unreachable while waiting: {exc}")
        raise ChainError(f"post epoch {epoch}", f"node unreachable: {exc}") from exc
    if receipt["status"] == 1:
        row.status, row.confirmed_at, row.last_error = "confirmed", _now(), None
        session.commit()
    else:
        _fail(session, row, "transaction reverted", "failed")
    return row


def claim_all(session: Session, chain: Chain, sender: str, epoch: int) -> dict[str, int]:
    """Claim every unclaimed reward of a confirmed epoch for its owner."""
    row = session.get(Settlement, epoch)
    if row is None:
        raise NotFound("settlement", str(epoch))
    if row.status != "confirmed":
        raise Conflict("settlement", f"epoch {epoch} is {row.status}, not confirmed on chain")
    counts = {"claimed": 0, "already_claimed": 0}
    rewards = session.scalars(
        select(SettlementReward)
        .where(SettlementReward.epoch == epoch, SettlementReward.claimed_at.is_(None))
        .order_by(SettlementReward.leaf_index)
    ).all()
    for reward in rewards:
        if chain.is_claimed(epoch, reward.leaf_index):
            reward.claimed_at = _now()
            counts["already_claimed"] += 1
        else:
            receipt = chain.claim(
                sender, _reward(reward), [bytes.fromhex(p[2:]) for p in reward.proof]
            )
            reward.claim_tx = "0x" + bytes(receipt["transactionHash"]).hex()
            reward.claimed_at = _now()
            counts["claimed"] += 1
        session.commit()
    return counts


ATTRIBUTES = (
    "device_type",
    "make",
    "model",
    "serial",
    "p_max_kw",
    "p_min_kw",
    "e_max_kwh",
    "site_id",
    "feeder",
    "region",
)
BATCH = 256


def attributes_hash(device: Device) -> bytes:
    """keccak-256 of the device's identifying attributes as canonical JSON (sorted keys,
    no spaces): anyone holding the registry record can check it against the chain."""
    record = {name: getattr(device, name) for name in ATTRIBUTES}
    return keccak(text=json.dumps(record, sort_keys=True, separators=(",", ":")))


def sync_devices(session: Session, chain: Chain, sender: str, device_ids: Sequence[str]) -> int:
    """Register on chain every device of ``device_ids`` that is not there yet (owner
    address required); return how many were registered."""
    registered = 0
    devices = session.scalars(select(Device).where(Device.device_id.in_(list(device_ids)))).all()
    for device in devices:
        key = bytes.fromhex(device.device_id[2:])
        if chain.device(key)["owner"] != ZERO_ADDRESS or not device.owner_address:
            continue
        chain.register_device(sender, key, device.owner_address, attributes_hash(device))
        registered += 1
    return registered


def delivery_ratio_bps(device: Device) -> int:
    """The device's delivery record as basis points (10,000 when it has none yet)."""
    if device.energy_requested_kwh <= 0:
        return 10_000
    return round(
        10_000 * min(1.0, max(0.0, device.energy_delivered_kwh / device.energy_requested_kwh))
    )


def update_reputations(session: Session, chain: Chain, sender: str, epoch: int) -> dict[str, int]:
    """Write the delivery ratio of every device rewarded in ``epoch`` to the chain's
    device registry (registering devices not there yet), in batches of 256."""
    row = session.get(Settlement, epoch)
    if row is None:
        raise NotFound("settlement", str(epoch))
    ids = list(
        session.scalars(select(SettlementReward.device_id).where(SettlementReward.epoch == epoch))
    )
    registered = sync_devices(session, chain, sender, ids)
    devices = session.scalars(select(Device).where(Device.device_id.in_(ids))).all()
    updated = 0
    for start in range(0, len(devices), BATCH):
        batch = devices[start : start + BATCH]
        call = chain.registry.functions.set_reputations(
            [bytes.fromhex(d.device_id[2:]) for d in batch],
            [delivery_ratio_bps(d) for d in batch],
            epoch,
        )
        send_call(chain.w3, f"reputations of epoch {epoch}", call, sender)
        updated += len(batch)
    return {"registered": registered, "updated": updated}


def _reward(row: SettlementReward) -> Reward:
    return Reward(
        row.epoch,
        row.leaf_index,
        bytes.fromhex(row.device_id[2:]),
        row.owner_address,
        int(row.amount_units),
    )


def summary(row: Settlement) -> dict[str, Any]:
    return {
        "epoch": row.epoch,
        "program_id": row.program_id,
        "status": row.status,
        "root": row.root,
        "total_units": row.total_units,
        "total_ovpp": int(row.total_units) / 10**18,
        "rewards": row.leaves,
        "chain_id": row.chain_id,
        "distributor": row.distributor,
        "tx_hash": row.tx_hash,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "skipped": row.skipped,
        "created_at": row.created_at,
        "confirmed_at": row.confirmed_at,
    }


def reward_out(row: SettlementReward, status: str) -> dict[str, Any]:
    return {
        "epoch": row.epoch,
        "index": row.leaf_index,
        "device_id": row.device_id,
        "owner_address": row.owner_address,
        "amount_units": row.amount_units,
        "amount_ovpp": int(row.amount_units) / 10**18,
        "delivered_kwh": row.delivered_kwh,
        "availability": row.availability,
        "data_quality": row.data_quality,
        "contribution_kwh": row.contribution_kwh,
        "proof": row.proof,
        "epoch_status": status,
        "claimed": row.claimed_at is not None,
        "claim_tx": row.claim_tx,
    }
