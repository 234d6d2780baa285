"""The job runner: background work whose state lives in the database.

One asyncio task takes queued jobs (:func:`registry.jobs.claim_next`; a conditional
update, so runners of several service processes never take the same job), up to
``parallel`` at once, and awaits the handler of each kind; CPU-bound steps run in
worker threads, and a job that waits (for VENs to answer, say) holds up no other. A
second task calls ``tick`` every few seconds (work that follows the clock).

At start, jobs a stop cut off are queued again or, past their attempts, failed
(:func:`registry.jobs.recover`), and ``on_failed`` hears of each. At stop, a running
job goes back to the queue, to resume at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from registry import jobs as store
from registry.tables import Job

logger = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[None]]


class JobFailed(Exception):
    """A job that cannot be done, for a reason its subject keeps (not a fault of ours:
    logged without a traceback)."""


class JobRunner:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        handlers: Mapping[str, Handler],
        *,
        tick: Callable[[], None] | None = None,
        tick_s: float = 2.0,
        poll_s: float = 0.5,
        on_failed: Callable[[Job], None] | None = None,
        max_attempts: int = 3,
        parallel: int = 4,
    ) -> None:
        self.sessions = sessions
        self.handlers = dict(handlers)
        self.tick = tick
        self.tick_s = tick_s
        self.poll_s = poll_s
        self.on_failed = on_failed
        self.max_attempts = max_attempts
        self.parallel = parallel
        #: Ids of the jobs running now.
        self.running: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    async def start(self) -> None:
        try:
            with self.sessions.begin() as session:
                failed = store.recover(session, self.max_attempts)
        except (OperationalError, ProgrammingError) as exc:
            raise RuntimeError(
                f"background jobs cannot start: {exc.orig} (run `vpp db upgrade`)"
            ) from exc
        for job in failed:
            logger.warning("job %s given up: %s", job.job_id, job.error)
            if self.on_failed is not None:
                self.on_failed(job)
        self._tasks = [asyncio.create_task(self._jobs())]
        if self.tick is not None:
            self._tasks.append(asyncio.create_task(self._ticks()))

    def wake(self) -> None:
        """Look for work now rather than at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _jobs(self) -> None:
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    while len(running) < self.parallel:
                        with self.sessions.begin() as session:
                            job = store.claim_next(session)
                            if job is None:
                                break
                            session.expunge(job)
                        task = asyncio.create_task(self._run(job))
                        running.add(task)
                        task.add_done_callback(running.discard)
                        task.add_done_callback(lambda _: self._wake.set())
                except Exception:  # the runner must outlive any one failure
                    logger.exception("job runner")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
        finally:
            for task in list(running):
                task.cancel()
            for task in list(running):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _run(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        self.running.add(job.job_id)
        try:
            if handler is None:
                raise RuntimeError(f"kind: no handler for jobs of kind {job.kind!r}")
            await handler(job)
        except asyncio.CancelledError:
            with self.sessions.begin() as session:
                store.requeue(session, job.job_id, "the service stopped; resumes at its start")
            raise
        except Exception as exc:
            if isinstance(exc, store.Cancelled):
                logger.info("job %s (%s) stopped: cancelled", job.job_id, job.kind)
            elif isinstance(exc, JobFailed):
                logger.warning("job %s (%s) failed: %s", job.job_id, job.kind, exc)
            else:
                logger.exception("job %s (%s) failed", job.job_id, job.kind)
            with self.sessions.begin() as session:
                if store.get_job(session, job.job_id).status == "running":
                    reason = (
                        str(exc) if isinstance(exc, JobFailed) else f"{type(exc).__name__}: {exc}"
                    )
                    store.finish(session, job.job_id, "failed", reason)
        else:
            with self.sessions.begin() as session:
                if store.get_job(session, job.job_id).status == "running":
                    store.finish(session, job.job_id, "done")
        finally:
            self.running.discard(job.job_id)

    async def _ticks(self) -> None:
        assert self.tick is not None
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("job runner tick")
            await asyncio.sleep(self.tick_s)


def wake(app: Any) -> None:
    """Have the app's job runner (when it runs one) look for work now."""
    runner: JobRunner | None = getattr(app.state, "jobs", None)
    if runner is not None:
        runner.wake()
