"""Background jobs: each domain declares its own next to its code; the worker schedules them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from leadflow.config import Settings
from leadflow.kit.clock import Clock
from leadflow.kit.db import Database
from leadflow.kit.mail import MailTransport


@dataclass(frozen=True)
class JobContext:
    """The adapters a job may use, built once by the composition root."""

    settings: Settings
    db: Database
    clock: Clock
    mail: MailTransport


class Job:
    """A task the worker runs every ``interval(settings)`` seconds, never overlapping itself.

    Each run owns its transactions (one per unit of work, committed when the unit succeeds).
    """

    name: ClassVar[str]

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    @classmethod
    def interval(cls, settings: Settings) -> float:
        raise NotImplementedError

    async def run(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Shutting down: take no new work; what is in flight may finish."""

    async def drain(self) -> None:
        """Wait for work the job started outside its runs (the worker bounds the wait)."""

    async def aclose(self) -> None:
        """Release what the job holds (clients, running tasks) at shutdown."""
