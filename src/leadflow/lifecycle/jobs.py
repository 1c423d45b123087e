"""The lifecycle's background job: sending due follow-ups."""

from __future__ import annotations

import logging

from leadflow.config import Settings
from leadflow.kit.jobs import Job, JobContext
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
        report = await self.dispatcher.run_once()
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


JOBS: tuple[type[Job], ...] = (DispatchJob,)
