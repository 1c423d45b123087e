"""The integrations' background job: turning due Shopify checkouts into abandoned-checkout
leads (Shopify has no "checkout abandoned" webhook)."""

from __future__ import annotations

import datetime as dt
import logging

from leadflow.config import Settings
from leadflow.integrations.shopify import abandon_due_checkouts
from leadflow.kit.jobs import Job

log = logging.getLogger("leadflow.integrations.shopify")

# How often due Shopify checkouts are turned into abandoned-checkout leads.
SHOPIFY_ABANDON_INTERVAL = 60.0


class ShopifyAbandonmentJob(Job):
    name = "shopify_abandonment"

    stopping = False

    @classmethod
    def interval(cls, settings: Settings) -> float:
        return SHOPIFY_ABANDON_INTERVAL

    def stop(self) -> None:
        self.stopping = True

    def _stopping(self) -> bool:
        return self.stopping

    async def run(self) -> None:
        window = dt.timedelta(days=self.ctx.settings.attribution_days)
        report = await abandon_due_checkouts(
            self.ctx.db, self.ctx.clock, window, stopping=self._stopping
        )
        if report.abandoned or report.failed:
            log.info(
                "shopify: %d checkouts abandoned, %d completed, %d failed",
                report.abandoned,
                report.completed,
                report.failed,
            )


JOBS: tuple[type[Job], ...] = (ShopifyAbandonmentJob,)
