"""Vocabulary shared by every domain: lead sources, statuses, event types."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum


class SourceType(StrEnum):
    ABANDONED_CHECKOUT = "abandoned_checkout"
    UNFINISHED_ORDER = "unfinished_order"
    TRIAL = "trial"
    RENEWAL = "renewal"
    OPT_IN = "opt_in"


class LeadStatus(StrEnum):
    OPEN = "open"
    CONVERTED = "converted"
    UNSUBSCRIBED = "unsubscribed"
    EXPIRED = "expired"


class EventType(StrEnum):
    CHECKOUT_ABANDONED = "checkout.abandoned"
    ORDER_UNFINISHED = "order.unfinished"
    TRIAL_STARTED = "trial.started"
    RENEWAL_DUE = "renewal.due"
    ORDER_COMPLETED = "order.completed"
    LEAD_OPT_IN = "lead.opt_in"


LEAD_SOURCE_BY_EVENT: dict[EventType, SourceType] = {
    EventType.CHECKOUT_ABANDONED: SourceType.ABANDONED_CHECKOUT,
    EventType.ORDER_UNFINISHED: SourceType.UNFINISHED_ORDER,
    EventType.TRIAL_STARTED: SourceType.TRIAL,
    EventType.RENEWAL_DUE: SourceType.RENEWAL,
    EventType.LEAD_OPT_IN: SourceType.OPT_IN,
}

# The four built-in lead groups every account starts with, in display order.
BUILTIN_GROUPS: tuple[tuple[SourceType, str], ...] = (
    (SourceType.UNFINISHED_ORDER, "Unfinished orders"),
    (SourceType.TRIAL, "Trial users"),
    (SourceType.ABANDONED_CHECKOUT, "Abandoned orders"),
    (SourceType.RENEWAL, "Renewals"),
)

DEFAULT_MIN_DELAYS: dict[SourceType, dt.timedelta] = {
    SourceType.ABANDONED_CHECKOUT: dt.timedelta(hours=1),
    SourceType.UNFINISHED_ORDER: dt.timedelta(hours=1),
    SourceType.TRIAL: dt.timedelta(days=1),
    SourceType.RENEWAL: dt.timedelta(days=1),
}
