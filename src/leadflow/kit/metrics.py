"""Prometheus metrics: every one leadflow exposes, defined here so that every layer can record.

Each process (API replica, worker) counts for itself and exposes its own numbers; Prometheus
adds them up. Under a pre-forking server set ``PROMETHEUS_MULTIPROC_DIR``: prometheus-client
then keeps the values in files there and any process answers for all of them.

Nothing is labelled by account, lead or any other id: a label's values must stay few.
Counting a change that a transaction makes waits for its commit (``count_after_commit``): a
transaction rolled back, or retried after a deadlock, counts nothing, or once.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger("leadflow.metrics")

EVENTS_INGESTED = Counter(
    "leadflow_events_ingested",
    "Inbound events by source (generic, shopify, stripe, ...), event type and result "
    "(accepted, duplicate, ignored, invalid, rejected).",
    ["source", "type", "result"],
)
LEAD_STATUS_CHANGES = Counter(
    "leadflow_lead_status_changes",
    "Leads moving from one status to another (from_status 'none': a new lead). Leads in a "
    "status: what entered it minus what left it.",
    ["from_status", "to_status"],
)
FOLLOWUPS = Counter(
    "leadflow_followups",
    "Follow-up sends by outcome (sent, deferred: retried later, failed: given up) and step.",
    ["outcome", "step"],
)
DISPATCH_LAG = Gauge(
    "leadflow_dispatch_lag_seconds",
    "How late the oldest due follow-up was when the dispatcher last claimed (0: none due).",
    multiprocess_mode="livemax",
)
CLAIM_BATCH = Histogram(
    "leadflow_claim_batch_size",
    "Rows taken per claim of due work, by queue (dispatch, iln).",
    ["queue"],
    buckets=(0, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000),
)
ILN_DELIVERIES = Counter(
    "leadflow_iln_deliveries",
    "Instant Lead Notification attempts by outcome (delivered, retried, failed, gone).",
    ["outcome"],
)
ILN_OLDEST_PENDING = Gauge(
    "leadflow_iln_oldest_pending_seconds",
    "Age of the oldest notification still pending to an enabled endpoint (0: none).",
    multiprocess_mode="livemax",
)
AB_DECISIONS = Counter(
    "leadflow_ab_decisions",
    "A/B tests ended, by outcome (decided, inconclusive) and by whom (worker, merchant).",
    ["outcome", "by"],
)
REQUEST_DURATION = Histogram(
    "leadflow_http_request_duration_seconds",
    "HTTP requests until their response is complete, by method, route template and status "
    "class (2xx, 4xx, ...).",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DB_POOL_CHECKED_OUT = Gauge(
    "leadflow_db_pool_checked_out",
    "Database connections in use (checked out of the pool).",
    multiprocess_mode="livesum",
)
DB_POOL_CAPACITY = Gauge(
    "leadflow_db_pool_capacity",
    "Database connections the pool may open (pool size plus overflow).",
    multiprocess_mode="livesum",
)
JOB_DURATION = Histogram(
    "leadflow_job_duration_seconds",
    "Worker job runs by job, failed ones included.",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
JOB_FAILURES = Counter("leadflow_job_failures", "Worker job runs that raised, by job.", ["job"])


def step_label(step: int) -> str:
    return str(step) if 1 <= step <= 3 else "other"


def record_dispatch_claim(now: dt.datetime, due_times: Sequence[dt.datetime]) -> None:
    """A claim of due follow-ups (oldest due first): its size, and how late the oldest was."""
    CLAIM_BATCH.labels("dispatch").observe(len(due_times))
    lag = (now - min(due_times)).total_seconds() if due_times else 0.0
    DISPATCH_LAG.set(max(lag, 0.0))


# Counting after commit ---------------------------------------------------------------------

_PENDING = "leadflow.metrics.pending"


def count_after_commit(session: AsyncSession | Session, counter: Any, amount: float = 1) -> None:
    """Increment ``counter`` (a labelled child) by ``amount`` once ``session`` commits; a
    rollback forgets it."""
    pending: dict[Any, float] = session.info.setdefault(_PENDING, {})
    pending[counter] = pending.get(counter, 0) + amount


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        for counter, amount in pending.items():
            counter.inc(amount)


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


# Connection pool ---------------------------------------------------------------------------


def _capacity(engine: AsyncEngine) -> int:
    pool = engine.sync_engine.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", 0)
    return size() + max(overflow, 0) if callable(size) else 1


_watched: weakref.WeakSet[AsyncEngine] = weakref.WeakSet()


def watch_pool(engine: AsyncEngine) -> None:
    """Keep the pool gauges up to date: one increment per checkout and checkin."""
    pool = engine.sync_engine.pool
    DB_POOL_CAPACITY.inc(_capacity(engine))
    _watched.add(engine)

    @event.listens_for(pool, "checkout")
    def _checkout(*_: Any) -> None:
        DB_POOL_CHECKED_OUT.inc()

    @event.listens_for(pool, "checkin")
    def _checkin(*_: Any) -> None:
        DB_POOL_CHECKED_OUT.dec()


def forget_pool(engine: AsyncEngine) -> None:
    """The engine is disposed: its capacity no longer counts (once, however often it is)."""
    if engine in _watched:
        _watched.discard(engine)
        DB_POOL_CAPACITY.dec(_capacity(engine))


# Exposition --------------------------------------------------------------------------------


def registry() -> CollectorRegistry:
    """What a scrape reads: with ``PROMETHEUS_MULTIPROC_DIR`` every process's values."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return merged
    return REGISTRY


def exposition() -> tuple[bytes, str]:
    """The body and content type of a scrape."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def serve_metrics(host: str, port: int) -> Callable[[], None] | None:
    """Serve ``/metrics`` on ``host:port`` from a thread of this process (prometheus-client's
    own server). Returns how to stop it, or None when the port is taken: under
    ``PROMETHEUS_MULTIPROC_DIR`` another process of the same server answers for all."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry())
    except OSError as exc:
        log.warning("metrics: cannot listen on %s:%d (%s); not serving them there", host, port, exc)
        return None
    log.info("metrics served on http://%s:%d/metrics", host, port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
