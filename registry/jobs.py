"""Background jobs as the database keeps them, so that none is lost when the service stops.

A job is ``queued`` until a runner claims it (``running``), then ``done``, ``failed``
(``error`` says why) or ``cancelled``. :func:`recover` runs when the service starts:
a job still ``running`` was cut off by a stop; it is queued again to resume, or failed
with the reason once it has been started ``max_attempts`` times.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from registry.errors import NotFound
from registry.tables import Job, utcnow

FINAL = frozenset({"done", "failed", "cancelled"})
ACTIVE = ("queued", "running")


def create_job(
    session: Session,
    kind: str,
    subject_id: str,
    now: datetime | None = None,
    params: dict[str, Any] | None = None,
) -> Job:
    job = Job(
        params=params,
        job_id=f"job-{uuid.uuid4().hex[:16]}",
        kind=kind,
        subject_id=subject_id,
        status="queued",
        progress=0.0,
        attempts=0,
        created_at=now or utcnow(),
    )
    session.add(job)
    return job


def get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound("job", job_id)
    return job


def latest_job(session: Session, subject_id: str, kind: str | None = None) -> Job | None:
    """The newest job of ``subject_id`` (of ``kind`` only, when given)."""
    query = select(Job).where(Job.subject_id == subject_id)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return session.scalar(query.order_by(Job.created_at.desc()).limit(1))


def active_job(session: Session, kind: str, subject_id: str) -> Job | None:
    """The queued or running job of ``kind`` on ``subject_id``, if there is one."""
    return session.scalar(
        select(Job)
        .where(Job.kind == kind, Job.subject_id == subject_id, Job.status.in_(ACTIVE))
        .order_by(Job.created_at)
        .limit(1)
    )


def claim_next(session: Session, now: datetime | None = None) -> Job | None:
    """Take the oldest queued job: ``running``, one more attempt. ``None`` when none
    waits or another runner took it first."""
    job = session.scalar(
        select(Job).where(Job.status == "queued").order_by(Job.created_at).limit(1)
    )
    if job is None:
        return None
    taken = session.execute(
        update(Job)
        .where(Job.job_id == job.job_id, Job.status == "queued")
        .values(status="running", attempts=Job.attempts + 1, started_at=now or utcnow())
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.refresh(job)
    return job


def set_progress(session: Session, job_id: str, progress: float, message: str) -> None:
    job = get_job(session, job_id)
    job.progress = min(max(progress, 0.0), 1.0)
    job.message = message[:512]


def finish(
    session: Session,
    job_id: str,
    status: str = "done",
    error: str | None = None,
    now: datetime | None = None,
) -> Job:
    if status not in FINAL:
        raise ValueError(f"status: {status!r} is not one of {sorted(FINAL)}")
    job = get_job(session, job_id)
    job.status = status
    job.error = error[:2048] if error else None
    if status == "done":
        job.progress = 1.0
    job.finished_at = now or utcnow()
    return job


def requeue(session: Session, job_id: str, message: str) -> None:
    """Put a running job back in the queue (the service is stopping)."""
    job = get_job(session, job_id)
    if job.status == "running":
        job.status = "queued"
        job.message = message[:512]


def cancel_queued(session: Session, job_id: str, now: datetime | None = None) -> bool:
    """Cancel the job only if it is still queued: a runner that claims it at the same
    moment wins, and this returns ``False``."""
    done = session.execute(
        update(Job)
        .where(Job.job_id == job_id, Job.status == "queued")
        .values(status="cancelled", finished_at=now or utcnow(), error=None)
    )
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def cancel_jobs(session: Session, subject_id: str, now: datetime | None = None) -> int:
    """Cancel the queued and running jobs of ``subject_id``; a running one stops at its
    next step. Returns how many."""
    jobs = session.scalars(
        select(Job).where(Job.subject_id == subject_id, Job.status.in_(ACTIVE))
    ).all()
    for job in jobs:
        finish(session, job.job_id, "cancelled", now=now)
    return len(jobs)


def recover(session: Session, max_attempts: int = 3, now: datetime | None = None) -> list[Job]:
    """Jobs left ``running`` by a stop: queued again, or failed after ``max_attempts``
    starts. Returns the failed ones."""
    failed = []
    for job in session.scalars(select(Job).where(Job.status == "running")).all():
        if job.attempts >= max_attempts:
            finish(
                session,
                job.job_id,
                "failed",
                f"the service stopped while this job ran, {job.attempts} times; given up",
                now,
            )
            failed.append(job)
        else:
            job.status = "queued"
            job.message = "resumed after the service restarted"
    return failed


class Cancelled(Exception):
    """The job was cancelled while it ran."""


def check_cancelled(session: Session, job_id: str) -> None:
    """Raise :class:`Cancelled` when the job has been cancelled (a running job calls
    this at each step)."""
    if get_job(session, job_id).status == "cancelled":
        raise Cancelled(job_id)
