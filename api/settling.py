"""Settlements sent on chain as background jobs.

An epoch is prepared at once, by the call that asks for it: :func:`api.settlement.prepare`
writes its rewards and proofs before anything is sent (the outbox). A job of kind
``settlement`` then posts it (:func:`api.settlement.send`), one epoch at a time per
service, and when the epoch pays for a capacity request it marks the request
``settled``.

The job's subject is the epoch (its id as text), and an epoch has at most one job
queued or running: :func:`start` returns the one under way. Its progress says
``sending``, ``sent`` (with the transaction) and ``confirmed``; its result holds the
epoch, the transaction, the number of rewards and their total. A node that fails
fails the job with the reason and leaves the epoch ``pending`` or ``sent``: another
job (``POST /v1/settlements/{epoch}/send``) picks up where it stopped, and a job cut
off by a stop is resumed at the next start, since sending is safe to repeat. A queued
job can be cancelled; a running one cannot, nor one whose transaction is out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from api import settlement
from api.capacity import Services, settled
from api.chain import sender
from api.jobs import JobFailed
from contracts.chain import ChainError
from registry import jobs as store
from registry import requests as request_store
from registry.errors import Conflict, RegistryError
from registry.tables import CapacityRequestLog, Job, Settlement

JOB_KIND = "settlement"
#: The history entry of a capacity request whose epoch is prepared and sent by a job.
SETTLING = "settling"
#: Epochs in these states have a transaction out: their job is not cancelled.
SENT = ("sent", "confirmed")


def subject(epoch: int) -> str:
    """A settlement job's subject: the epoch id as text."""
    return str(epoch)


def start(session: Session, epoch: int, request_id: str | None = None) -> tuple[Job, bool]:
    """The job that sends ``epoch``: the one queued or running, else a new one (then
    ``True``). ``request_id`` names the capacity request the epoch settles. The caller
    commits."""
    job = store.active_job(session, JOB_KIND, subject(epoch))
    if job is None:
        params = {"epoch": epoch, "request_id": request_id}
        return store.create_job(session, JOB_KIND, subject(epoch), params=params), True
    if request_id is not None and (job.params or {}).get("request_id") is None:
        job.params = {**(job.params or {}), "request_id": request_id}
    return job, False


def latest(session: Session, epoch: int) -> Job | None:
    """The newest settlement job of ``epoch``."""
    return store.latest_job(session, subject(epoch), JOB_KIND)


def pending_epoch(history: Sequence[CapacityRequestLog]) -> int | None:
    """The epoch a capacity request's rewards were prepared in (its last ``settling``
    entry), or ``None``."""
    for entry in reversed(history):
        if entry.action == SETTLING:
            return int(entry.detail["epoch"])
    return None


def cancel(session: Session, job: Job) -> None:
    """Cancel a queued settlement job; a running one, or one whose epoch has its
    transaction out, is refused (409) with the reason."""
    epoch = int((job.params or {})["epoch"])
    row = session.get(Settlement, epoch)
    if row is not None and row.status in SENT:
        raise Conflict(
            "status",
            f"epoch {epoch} is {row.status} on chain (transaction {row.tx_hash}): a "
            "transaction that is out cannot be called back",
            row.status,
        )
    if not store.cancel_queued(session, job.job_id):
        session.refresh(job)
        raise Conflict(
            "status",
            f"the job is {job.status}: epoch {epoch} is being sent on chain, and a "
            "settlement is cancelled only while its job is queued",
            job.status,
        )
    session.refresh(job)


def result(row: Settlement, request_id: str | None) -> dict[str, Any]:
    """What a settlement job keeps once its epoch is confirmed."""
    return {
        "epoch": row.epoch,
        "status": row.status,
        "tx_hash": row.tx_hash,
        "rewards": row.leaves,
        "total_units": row.total_units,
        "total_ovpp": int(row.total_units) / 10**18,
        "request_id": request_id,
    }


def _progress(services: Services, job_id: str, progress: float, message: str) -> None:
    with services.sessions.begin() as session:
        store.set_progress(session, job_id, progress, message)


def send_epoch(services: Services, job_id: str) -> None:
    """Post the job's epoch and, once it is confirmed, mark its capacity request
    settled and keep the result; a node that fails, or a chain that refuses, fails the
    job with the reason."""
    with services.sessions() as session:
        epoch = int((store.get_job(session, job_id).params or {})["epoch"])
    _progress(services, job_id, 0.1, f"sending epoch {epoch}")
    if services.chain is None:
        raise JobFailed("chain: this service has no chain to send to")
    opened = services.chain

    def sent(tx_hash: str) -> None:
        _progress(services, job_id, 0.5, f"sent in transaction {tx_hash}; waiting for its receipt")

    with services.sessions() as session:
        try:
            chain = opened()
            row = settlement.send(
                session, chain, sender(services.settings, chain.w3), epoch, on_sent=sent
            )
        except ChainError as exc:
            raise JobFailed(
                f"{exc.action}: {exc.reason} (epoch {epoch} is kept: "
                f"POST /v1/settlements/{epoch}/send sends it again)"
            ) from exc
        except RegistryError as exc:
            raise JobFailed(str(exc)) from exc
        if row.status != "confirmed":
            raise JobFailed(f"epoch {epoch} is {row.status}: {row.last_error}")
        job = store.get_job(session, job_id)
        request_id = (job.params or {}).get("request_id")
        if request_id is not None:
            request = request_store.get_request(session, request_id)
            if request.status == "delivered":
                settled(session, request, epoch, services.clock())
        job.result = result(row, request_id)
        store.set_progress(session, job_id, 1.0, "confirmed")
        session.commit()


async def run_job(services: Services, job: Job) -> None:
    async with services.sending:
        await asyncio.to_thread(send_epoch, services, job.job_id)
