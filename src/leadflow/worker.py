"""The background worker: APScheduler jobs on the running asyncio loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from leadflow.abtest.service import evaluate_running
from leadflow.config import Settings
from leadflow.dispatch.dispatcher import Dispatcher
from leadflow.dispatch.mail import MailTransport, build_transport
from leadflow.integrations.shopify import abandon_due_checkouts
from leadflow.kit.clock import Clock, SystemClock
from leadflow.kit.db import Database
from leadflow.notifications.delivery import Notifier

log = logging.getLogger("leadflow.worker")

Job = Callable[[], Awaitable[None]]

# How often due Shopify checkouts are turned into abandoned-checkout leads.
SHOPIFY_ABANDON_INTERVAL = 60.0


class Worker:
    """Owns the scheduler. Create and start it inside the running event loop."""

    def __init__(self, settings: Settings, db: Database, clock: Clock | None = None) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock or SystemClock()
        self.scheduler: AsyncIOScheduler | None = None
        self.jobs: dict[str, tuple[Job, float]] = {}
        self.closers: list[Callable[[], Awaitable[None]]] = []

    def add_job(self, name: str, job: Job, every_seconds: float) -> None:
        self.jobs[name] = (job, every_seconds)

    def start(self) -> None:
        if self.db.dialect == "sqlite":
            log.info("SQLite database: run a single worker process (no SKIP LOCKED on SQLite)")
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        for name, (job, every) in self.jobs.items():
            # max_instances=1 + coalesce: a slow tick never piles up behind itself.
            self.scheduler.add_job(
                _guarded(name, job),
                "interval",
                seconds=every,
                id=name,
                name=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        self.scheduler.start()
        log.info("worker started with jobs: %s", ", ".join(self.jobs) or "(none yet)")

    def shutdown(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.scheduler = None

    async def aclose(self) -> None:
        self.shutdown()
        for close in self.closers:
            await close()


def _guarded(name: str, job: Job) -> Job:
    async def run() -> None:
        try:
            await job()
        except Exception:
            log.exception("job %s failed; it runs again at the next tick", name)

    return run


def build_worker(
    settings: Settings,
    db: Database,
    clock: Clock | None = None,
    transport: MailTransport | None = None,
) -> Worker:
    """The composition root for background jobs and the adapters they use."""
    worker = Worker(settings, db, clock)
    mail = transport or build_transport(settings)
    dispatcher = Dispatcher(settings, db, worker.clock, mail)

    async def dispatch() -> None:
        report = await dispatcher.run_once()
        if report.claimed:
            log.info(
                "dispatch: %d claimed, %d sent, %d rescheduled, %d retried, %d failed, %d stopped",
                report.claimed,
                report.sent,
                report.rescheduled,
                report.retried,
                report.failed,
                report.stopped,
            )

    worker.add_job("dispatch", dispatch, settings.dispatch_interval_seconds)
    worker.closers.append(mail.close)

    async def evaluate_ab_tests() -> None:
        await evaluate_running(db, worker.clock)

    worker.add_job("ab_tests", evaluate_ab_tests, settings.ab_eval_interval_seconds)

    async def abandon_shopify_checkouts() -> None:
        report = await abandon_due_checkouts(
            db, worker.clock, dt.timedelta(days=settings.attribution_days)
        )
        if report.abandoned or report.failed:
            log.info(
                "shopify: %d checkouts abandoned, %d completed, %d failed",
                report.abandoned,
                report.completed,
                report.failed,
            )

    worker.add_job("shopify_abandonment", abandon_shopify_checkouts, SHOPIFY_ABANDON_INTERVAL)

    notifier = Notifier(settings, db, worker.clock)
    worker.add_job("iln", notifier.tick, settings.iln_interval_seconds)
    worker.closers.append(notifier.aclose)
    return worker


async def run_worker(settings: Settings) -> None:
    """``leadflow worker``: run jobs until SIGINT/SIGTERM."""
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    worker = build_worker(settings, db)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker.start()
    try:
        await stop.wait()
    finally:
        await worker.aclose()
        await db.dispose()
        log.info("worker stopped")
