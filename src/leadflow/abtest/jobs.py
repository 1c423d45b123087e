"""The A/B tests' background job: deciding tests whose criterion or end time is reached."""

from __future__ import annotations

from leadflow.abtest.service import evaluate_running
from leadflow.config import Settings
from leadflow.kit.jobs import Job


class AbTestJob(Job):
    name = "ab_tests"

    @classmethod
    def interval(cls, settings: Settings) -> float:
        return settings.ab_eval_interval_seconds

    async def run(self) -> None:
        await evaluate_running(self.ctx.db, self.ctx.clock)


JOBS: tuple[type[Job], ...] = (AbTestJob,)
