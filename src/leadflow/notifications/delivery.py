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
from sqlalchemy import or_, select, update

from leadflow.config import Settings
from leadflow.kit.clock import Clock
from leadflow.kit.db import Database
from leadflow.kit.signing import sign
from leadflow.notifications.models import IlnDelivery, IlnEndpoint
from leadflow.notifications.service import signing_secrets
from leadflow.notifications.ssrf import guarded_client

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
        try:
            await self._deliver_endpoint(endpoint_id, ids, token, DeliveryReport())
        except Exception:
            log.exception("delivering to endpoint %s failed", endpoint_id)
        finally:
            self._busy.discard(endpoint_id)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.aclose()

    async def _claim(self, token: str, exclude: set[str]) -> dict[str, list[str]]:
        now = self.clock.now()
        async with self.db.session() as session:
            stmt = (
                select(IlnDelivery.id)
                .join(IlnEndpoint, IlnEndpoint.id == IlnDelivery.endpoint_id)
                .where(
                    IlnDelivery.status == "pending",
                    IlnDelivery.next_attempt_at <= now,
                    or_(IlnDelivery.lease_until.is_(None), IlnDelivery.lease_until < now),
                    IlnEndpoint.enabled.is_(True),
                )
                .order_by(IlnDelivery.next_attempt_at, IlnDelivery.id)
                .limit(self.settings.iln_batch_size)
                .with_for_update(of=IlnDelivery, skip_locked=True)
            )
            if exclude:
                stmt = stmt.where(IlnDelivery.endpoint_id.not_in(exclude))
            ids = list((await session.execute(stmt)).scalars())
            if not ids:
                return {}
            rows = await session.execute(
                update(IlnDelivery)
                .where(
                    IlnDelivery.id.in_(ids),
                    IlnDelivery.status == "pending",
                    IlnDelivery.next_attempt_at <= now,  # another worker may have tried it
                    or_(IlnDelivery.lease_until.is_(None), IlnDelivery.lease_until < now),
                )
                .values(lease_until=now + self.lease, lease_token=token)
                .returning(IlnDelivery.id, IlnDelivery.endpoint_id, IlnDelivery.created_at)
            )
            grouped: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
            for delivery_id, endpoint_id, created_at in rows:
                grouped[endpoint_id].append((created_at, delivery_id))
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
            await session.execute(
                update(IlnDelivery)
                .where(IlnDelivery.id.in_(ids), IlnDelivery.lease_token == token)
                .values(lease_until=None, lease_token=None)
            )

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
        outcome = await self._post(endpoint, delivery, now)
        return await self._record(delivery_id, endpoint.id, outcome, report)

    async def _post(
        self, endpoint: IlnEndpoint, delivery: IlnDelivery, now: dt.datetime
    ) -> Outcome:
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = int(now.timestamp())
        signatures = " ".join(
            sign(secret, delivery.webhook_id, timestamp, body)
            for secret in signing_secrets(endpoint, now)
        )
        headers = {
            "content-type": "application/json",
            "user-agent": "leadflow-iln/1",
            "webhook-id": delivery.webhook_id,
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

    def _next_delay(self, attempts: int) -> dt.timedelta | None:
        """Wait after the ``attempts``-th failure; None once the schedule is used up."""
        if attempts > len(self.schedule):
            return None
        base = self.schedule[attempts - 1]
        return base * (1 + self.rng.uniform(0, 0.1))  # jitter: up to +10 %

    async def _record(
        self, delivery_id: str, endpoint_id: str, outcome: Outcome, report: DeliveryReport
    ) -> bool:
        now = self.clock.now()
        disabled = False
        async with self.db.session() as session:
            delivery = await session.get(IlnDelivery, delivery_id)
            if delivery is None:  # the endpoint was deleted while the request was in flight
                return False
            delivery.attempts += 1
            delivery.last_attempt_at = now
            delivery.last_status_code = outcome.status_code
            delivery.last_error = outcome.error
            delivery.lease_until = None
            delivery.lease_token = None
            delivery.updated_at = now
            if outcome.ok:
                delivery.status = "delivered"
                delivery.delivered_at = now
                delivery.next_attempt_at = None
                report.delivered += 1
            elif outcome.status_code == 410:
                delivery.status = "failed"
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
                delay = self._next_delay(delivery.attempts)
                if outcome.retry_after is not None and delay is not None:
                    delay = outcome.retry_after
                if delay is None:
                    delivery.status = "failed"
                    delivery.next_attempt_at = None
                    report.failed += 1
                else:
                    delivery.next_attempt_at = now + delay
                    report.retried += 1
        return disabled


def notifier_for(app: Any) -> Notifier:
    """The API process's notifier (for pings), created on first use, closed at shutdown."""
    notifier: Notifier | None = getattr(app.state, "notifier", None)
    if notifier is None:
        notifier = Notifier(app.state.settings, app.state.db, app.state.clock)
        app.state.notifier = notifier
    return notifier
