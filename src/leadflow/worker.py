"""The background worker: every domain's jobs on APScheduler, in the running asyncio loop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from leadflow.abtest.jobs import JOBS as AB_TEST_JOBS
from leadflow.config import Settings
from leadflow.ingest.capture_jobs import JOBS as CAPTURE_JOBS
from leadflow.integrations.jobs import JOBS as INTEGRATION_JOBS
from leadflow.kit import logs
from leadflow.kit.clock import Clock, SystemClock
from leadflow.kit.db import Database
from leadflow.kit.jobs import Job, JobContext
from leadflow.kit.mail import MailTransport, build_transport
from leadflow.kit.metrics import JOB_DURATION, JOB_FAILURES, serve_metrics
from leadflow.kit.secrets import load_keyring, use_keyring
from leadflow.lifecycle.jobs import JOBS as LIFECYCLE_JOBS
from leadflow.notifications.jobs import JOBS as NOTIFICATION_JOBS
from leadflow.templates.isolation import warm_up

log = logging.getLogger("leadflow.worker")

# Every background job, as declared by its domain.
JOBS: tuple[type[Job], ...] = (
    *LIFECYCLE_JOBS,
    *AB_TEST_JOBS,
    *INTEGRATION_JOBS,
    *NOTIFICATION_JOBS,
    *CAPTURE_JOBS,
)


class Worker:
    """Owns the scheduler and the jobs' adapters. Create and start it inside the running
    event loop."""

    def __init__(self, settings: Settings, db: Database, clock: Clock, mail: MailTransport) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.mail = mail
        context = JobContext(settings=settings, db=db, clock=clock, mail=mail)
        self.running: list[Job] = [job(context) for job in JOBS]
        # name -> (run, every seconds)
        self.jobs: dict[str, tuple[Callable[[], Awaitable[None]], float]] = {
            job.name: (job.run, type(job).interval(settings)) for job in self.running
        }
        self.scheduler: AsyncIOScheduler | None = None
        self._runs: set[asyncio.Task[None]] = set()  # job runs in progress

    def start(self) -> None:
        if self.db.dialect == "sqlite":
            log.info("SQLite database: run a single worker process (no SKIP LOCKED on SQLite)")
        warm_up(self.settings)  # predefined templates compiled, template limits applied
        logs.quiet_skipped_runs()
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        for name, (_run, every) in self.jobs.items():
            # max_instances=1 + coalesce: a slow tick never piles up behind itself.
            self.scheduler.add_job(
                self._run,
                "interval",
                args=(name,),
                seconds=every,
                id=name,
                name=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        self.scheduler.start()
        log.info("worker started with jobs: %s", ", ".join(self.jobs))

    async def _run(self, name: str) -> None:
        run, _every = self.jobs[name]
        task = asyncio.current_task()
        if task is not None:
            self._runs.add(task)
        started = time.perf_counter()
        token = logs.bind(job=name)  # on every line of the run, with the ids it touches
        try:
            await run()
        except Exception:
            JOB_FAILURES.labels(name).inc()
            log.exception("job %s failed; it runs again at the next tick", name)
        finally:
            JOB_DURATION.labels(name).observe(time.perf_counter() - started)
            logs.unbind(token)
            self._runs.discard(task)

    def shutdown(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.scheduler = None

    async def aclose(self, grace: float | None = None) -> None:
        """Stop: no new ticks, jobs take no new work, what is in flight gets ``grace`` seconds
        (``LEADFLOW_SHUTDOWN_GRACE_SECONDS``) to finish, then is cancelled."""
        if self.scheduler is not None and self.scheduler.running:
            # Paused, not shut down yet: shutting down cancels the runs in progress.
            self.scheduler.pause()
        for job in self.running:
            job.stop()
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        in_flight = [*self._runs, *(asyncio.ensure_future(job.drain()) for job in self.running)]
        _done, late = await asyncio.wait(in_flight, timeout=grace) if in_flight else ((), ())
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        if late:
            log.warning("shutdown: %d job run(s) cut off after %.0f s", len(late), grace)
        self.shutdown()
        for job in self.running:
            await job.aclose()
        await self.mail.close()


def build_worker(
    settings: Settings,
    db: Database,
    clock: Clock | None = None,
    transport: MailTransport | None = None,
) -> Worker:
    """The composition root for background jobs: builds the adapters once and injects them."""
    return Worker(settings, db, clock or SystemClock(), transport or build_transport(settings))


async def run_worker(settings: Settings) -> None:
    """``leadflow worker``: run jobs until SIGINT/SIGTERM."""
    use_keyring(load_keyring(settings))  # the envelope key of the secrets at rest
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    worker = build_worker(settings, db)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # a second signal: exit at once
            log.warning("second signal: exiting without waiting")
            os._exit(1)
        log.info("stopping: finishing the work in flight (a second signal exits at once)")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    stop_metrics = None
    if settings.metrics_port is not None:
        stop_metrics = serve_metrics(settings.metrics_host, settings.metrics_port)
    worker.start()
    try:
        await stop.wait()
    finally:
        await worker.aclose()
        await db.dispose()
        if stop_metrics is not None:
            stop_metrics()
        log.info("worker stopped")
