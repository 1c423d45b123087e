"""The notifications' background job: delivering due Instant Lead Notifications."""

from __future__ import annotations

from leadflow.config import Settings
from leadflow.kit.jobs import Job, JobContext
from leadflow.notifications.delivery import Notifier


class IlnJob(Job):
    name = "iln"

    def __init__(self, ctx: JobContext) -> None:
        super().__init__(ctx)
        self.notifier = Notifier(ctx.settings, ctx.db, ctx.clock)

    @classmethod
    def interval(cls, settings: Settings) -> float:
        return settings.iln_interval_seconds

    async def run(self) -> None:
        await self.notifier.tick()

    async def drain(self) -> None:
        await self.notifier.drain()

    async def aclose(self) -> None:
        await self.notifier.aclose()


JOBS: tuple[type[Job], ...] = (IlnJob,)
