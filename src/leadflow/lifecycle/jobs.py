"""The lifecycle's background jobs: sending due follow-ups, and campaign backfills."""

from __future__ import annotations

import asyncio
import logging

from leadflow.config import Settings
from leadflow.kit.jobs import Job, JobContext
from leadflow.lifecycle.backfill import run_backfills
from leadflow.lifecycle.dispatcher import Dispatcher

log = logging.getLogger("leadflow.dispatch")


class DispatchJob(Job):
    name = "dispatch"

    def __init__(self, ctx: JobContext) -> None:
        super().__init__(ctx)
        self.dispatcher = Dispatcher(ctx.settings, ctx.db, ctx.clock, ctx.mail)

    @classmethod
    def interval(cls, settings: Settings) -> float:
        return settings.dispatch_interval_seconds

    def stop(self) -> None:
        self.dispatcher.stop()

    async def run(self) -> None:
        report = await self.dispatcher.run_while_due()
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


class BackfillJob(Job):
    """Works through queued campaign backfills, a chunk of leads per transaction. A backfill
    takes minutes, so each tick only starts the runner when it is not running already (the
    ticks go on meanwhile); at shutdown it stops after the chunk in flight, and the next
    worker resumes from there."""

    name = "backfills"

    def __init__(self, ctx: JobContext) -> None:
        super().__init__(ctx)
        self.stopping = False
        self.runner: asyncio.Task[None] | None = None

    @classmethod
    def interval(cls, settings: Settings) -> float:
        return 2.0  # how soon a queued backfill starts; an idle tick is one indexed query

    async def _work(self) -> None:
        try:
            await run_backfills(self.ctx.db, self.ctx.clock, stopping=lambda: self.stopping)
        except Exception:
            log.exception("backfills: the runner failed; it starts again at the next tick")

    async def run(self) -> None:
        if self.stopping or (self.runner is not None and not self.runner.done()):
            return
        self.runner = asyncio.create_task(self._work(), name="backfills")

    def stop(self) -> None:
        self.stopping = True

    async def drain(self) -> None:
        if self.runner is not None:
            await self.runner

    async def aclose(self) -> None:
        if self.runner is not None and not self.runner.done():
            self.runner.cancel()
            await asyncio.gather(self.runner, return_exceptions=True)


JOBS: tuple[type[Job], ...] = (DispatchJob, BackfillJob)
