"""Delivering the outbox: signed POSTs, retries on the Standard Webhooks schedule, dead letters."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import logging
import random
import secrets
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select, update

from leadflow.config import Settings
from leadflow.kit import logs
from leadflow.kit.clock import Clock
from leadflow.kit.db import Database
from leadflow.kit.leases import claim_due, lease, lease_free, release, release_held
from leadflow.kit.metrics import CLAIM_BATCH, ILN_DELIVERIES, ILN_OLDEST_PENDING
from leadflow.kit.signing import sign
from leadflow.models.notifications import IlnDelivery, IlnEndpoint
from leadflow.notifications.service import signing_secrets
from leadflow.notifications.ssrf import guarded_client
from leadflow.vocabulary import DeliveryStatus

log = logging.getLogger("leadflow.iln")

RETRY_AFTER_STATUSES = {429, 502, 503, 504}
MAX_RETRY_AFTER = dt.timedelta(hours=24)


@dataclass
class DeliveryReport:
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    retry_after: dt.timedelta | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def parse_retry_after(value: str | None, now: dt.datetime) -> dt.timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(dt.timedelta(seconds=int(value)), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(max(when - now, dt.timedelta(0)), MAX_RETRY_AFTER)


class Notifier:
    """Claims due deliveries and sends them; endpoints are served concurrently, each in order,
    so one slow receiver only delays its own notifications."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.schedule = settings.iln_retry_delays
        self.client = client or guarded_client(
            allow_private=settings.iln_allow_private,
            connect=settings.iln_connect_timeout_seconds,
            read=settings.iln_read_timeout_seconds,
        )
        self.rng = rng or random.Random()  # jitter only, not security
        self.lease = dt.timedelta(seconds=settings.iln_lease_seconds)
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run_once(self) -> DeliveryReport:
        """Claim and deliver everything due now, waiting for the results (tests, CLI)."""
        report = DeliveryReport()
        token = secrets.token_hex(16)
        claimed = await self._claim(token, exclude=set())
        report.claimed = sum(len(ids) for ids in claimed.values())
        await asyncio.gather(
            *(self._deliver_endpoint(eid, ids, token, report) for eid, ids in claimed.items())
        )
        return report

    async def tick(self) -> None:
        """The worker job: start deliveries for endpoints not already busy and return, so a
        slow endpoint never holds up the next tick for the others."""
        token = secrets.token_hex(16)
        claimed = await self._claim(token, exclude=set(self._busy))
        for endpoint_id, ids in claimed.items():
            self._busy.add(endpoint_id)
            task = asyncio.create_task(self._run_endpoint(endpoint_id, ids, token))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_endpoint(self, endpoint_id: str, ids: list[str], token: str) -> None:
        logs.bind(endpoint_id=endpoint_id, **logs.ids("delivery_ids", ids))  # this task's lines
        try:
            await self._deliver_endpoint(endpoint_id, ids, token, DeliveryReport())
        except Exception:
            log.exception("delivering to endpoint %s failed", endpoint_id)
        finally:
            self._busy.discard(endpoint_id)

    async def drain(self) -> None:
        """Wait for the deliveries already started (the caller bounds the wait)."""
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.aclose()

    async def _claim(self, token: str, exclude: set[str]) -> dict[str, list[str]]:
        now = self.clock.now()
        due = (IlnDelivery.status == DeliveryStatus.PENDING, IlnDelivery.next_attempt_at <= now)
        candidates = (
            select(IlnDelivery.id)
            .join(IlnEndpoint, IlnEndpoint.id == IlnDelivery.endpoint_id)
            .where(*due, lease_free(IlnDelivery, now), IlnEndpoint.enabled.is_(True))
            .order_by(IlnDelivery.next_attempt_at, IlnDelivery.id)
            .limit(self.settings.iln_batch_size)
        )
        if exclude:
            candidates = candidates.where(IlnDelivery.endpoint_id.not_in(exclude))
        async with self.db.session() as session:
            # Re-checking the due time: another worker may have tried it meanwhile.
            rows = await claim_due(
                session,
                candidates,
                model=IlnDelivery,
                still_due=(*due, lease_free(IlnDelivery, now)),
                claim=lease(now, self.lease, token),
                returning=(IlnDelivery.endpoint_id, IlnDelivery.created_at),
            )
            oldest = await session.scalar(
                select(func.min(IlnDelivery.created_at))
                .join(IlnEndpoint, IlnEndpoint.id == IlnDelivery.endpoint_id)
                .where(IlnDelivery.status == DeliveryStatus.PENDING, IlnEndpoint.enabled.is_(True))
            )
        CLAIM_BATCH.labels("iln").observe(len(rows))
        ILN_OLDEST_PENDING.set(max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
        grouped: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
        for row in rows:
            grouped[row.endpoint_id].append((row.created_at, row.id))
        return {eid: [d for _, d in sorted(items)] for eid, items in grouped.items()}

    async def _deliver_endpoint(
        self, endpoint_id: str, ids: list[str], token: str, report: DeliveryReport
    ) -> None:
        for delivery_id in ids:
            disabled = await self.deliver(delivery_id, token, report)
            if disabled:
                await self._release_all(ids, token)
                return

    async def _release_all(self, ids: list[str], token: str) -> None:
        async with self.db.session() as session:
            await release_held(session, IlnDelivery, ids, token)

    async def deliver(self, delivery_id: str, token: str | None, report: DeliveryReport) -> bool:
        """One attempt. Returns True when the endpoint got disabled (410 Gone)."""
        async with self.db.session() as session:
            delivery = await session.get(IlnDelivery, delivery_id)
            if delivery is None:  # its endpoint was deleted meanwhile
                return False
            endpoint = await session.get_one(IlnEndpoint, delivery.endpoint_id)
            if token is not None and delivery.lease_token != token:
                return False
        now = self.clock.now()
        outcome = await self.attempt(endpoint, delivery.webhook_id, delivery.payload, now)
        return await self._record(delivery_id, endpoint.id, outcome, report)

    async def attempt(
        self, endpoint: IlnEndpoint, webhook_id: str, payload: dict[str, Any], now: dt.datetime
    ) -> Outcome:
        """One signed POST of ``payload`` to ``endpoint``; records nothing, so it needs no
        stored delivery (a ping attempts first, then stores the outcome)."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = int(now.timestamp())
        signatures = " ".join(
            sign(secret, webhook_id, timestamp, body) for secret in signing_secrets(endpoint, now)
        )
        headers = {
            "content-type": "application/json",
            "user-agent": "leadflow-iln/1",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures,
        }
        try:
            response = await self.client.post(endpoint.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(None, f"{exc.__class__.__name__}: {exc}"[:500])
        error = None if 200 <= response.status_code < 300 else response.text[:500]
        retry_after = None
        if response.status_code in RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        return Outcome(response.status_code, error, retry_after)

    def _retry_delay(
        self, delivery: IlnDelivery, retry_after: dt.timedelta | None, now: dt.datetime
    ) -> dt.timedelta | None:
        """The wait before the next attempt; None once the delivery has failed for good.

        The schedule is a time horizon (its waits added up, counted from the first failure),
        not a number of answers: a receiver's Retry-After is honoured without using up a
        step, as long as it falls within the horizon; past it, the schedule's steps go on.
        """
        if delivery.retry_until is None:
            delivery.retry_until = now + sum(self.schedule, dt.timedelta(0))
        if retry_after is not None and now + retry_after <= delivery.retry_until:
            return retry_after
        delivery.schedule_step += 1
        if delivery.schedule_step > len(self.schedule):
            return None
        base = self.schedule[delivery.schedule_step - 1]
        return base * (1 + self.rng.uniform(0, 0.1))  # jitter: up to +10 %

    async def _record(
        self, delivery_id: str, endpoint_id: str, outcome: Outcome, report: DeliveryReport
    ) -> bool:
        now = self.clock.now()
        disabled = False
        outcome_label = "gone" if outcome.status_code == 410 else "delivered"
        async with self.db.session() as session:
            delivery = await session.get(IlnDelivery, delivery_id)
            if delivery is None:  # the endpoint was deleted while the request was in flight
                return False
            delivery.attempts += 1
            delivery.last_attempt_at = now
            delivery.last_status_code = outcome.status_code
            delivery.last_error = outcome.error
            release(delivery)
            delivery.updated_at = now
            if outcome.ok:
                delivery.status = DeliveryStatus.DELIVERED
                delivery.delivered_at = now
                delivery.next_attempt_at = None
                report.delivered += 1
            elif outcome.status_code == 410:
                delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = None
                await session.execute(
                    update(IlnEndpoint)
                    .where(IlnEndpoint.id == endpoint_id)
                    .values(enabled=False, disabled_reason="410 Gone", updated_at=now)
                )
                report.failed += 1
                disabled = True
                log.warning("endpoint %s answered 410 Gone: disabled", endpoint_id)
            else:
                delay = self._retry_delay(delivery, outcome.retry_after, now)
                if delay is None:
                    delivery.status = DeliveryStatus.FAILED
                    delivery.next_attempt_at = None
                    report.failed += 1
                    outcome_label = "failed"
                else:
                    delivery.next_attempt_at = now + delay
                    report.retried += 1
                    outcome_label = "retried"
        ILN_DELIVERIES.labels(outcome_label).inc()
        return disabled
