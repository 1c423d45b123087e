"""Vocabulary shared by every domain: lead sources, event types, and every stored state.

States are ``StrEnum``s whose values are the strings stored in the database, so comparing a
loaded column with a member works and no data migration is ever needed to adopt one.
"""

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


class LeadEventRole(StrEnum):
    """What an event did to a lead."""

    CAPTURE = "capture"
    UPDATE = "update"
    CONVERSION = "conversion"


class CampaignStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class EnrollmentState(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    STOPPED = "stopped"


class StopReason(StrEnum):
    """Why a sequence stopped before its last step."""

    CONVERTED = "converted"
    UNSUBSCRIBED = "unsubscribed"
    EXPIRED = "expired"
    SUPPRESSED = "suppressed"
    CAMPAIGN_ARCHIVED = "campaign_archived"
    CAMPAIGN_ENDED = "campaign_ended"
    VARIANT_REMOVED = "variant_removed"
    SEND_FAILED = "send_failed"
    TEMPLATE_ERROR = "template_error"
    INVALID_SENDER = "invalid_sender"
    SMTP_REJECTED = "smtp_rejected"
    SMTP_UNAVAILABLE = "smtp_unavailable"
    # A worker died after it began handing a step to the mail server, and the account says
    # to stop after such a step (``after_unknown_step``).
    DELIVERY_UNKNOWN = "delivery_unknown"


class MessageStatus(StrEnum):
    """A follow-up email. ``unknown``: its worker died after it began handing the message to
    the mail server (SMTP DATA), so it may have been delivered; never sent again."""

    SENDING = "sending"
    SENT = "sent"
    UNKNOWN = "unknown"
    DEFERRED = "deferred"
    FAILED = "failed"


# Follow-ups that may have reached the lead: they count as sent.
MAYBE_SENT = (MessageStatus.SENT, MessageStatus.UNKNOWN)


class AfterUnknownStep(StrEnum):
    """What an account's sequences do after a step whose delivery is `unknown`."""

    CONTINUE = "continue"
    STOP = "stop"


class DeliveryStatus(StrEnum):
    """An Instant Lead Notification delivery."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class AbTestStatus(StrEnum):
    RUNNING = "running"
    DECIDED = "decided"
    INCONCLUSIVE = "inconclusive"


class CheckoutStatus(StrEnum):
    """A watched Shopify checkout."""

    PENDING = "pending"
    ABANDONED = "abandoned"
    COMPLETED = "completed"


class SuppressionReason(StrEnum):
    MANUAL = "manual"
    BOUNCED = "bounced"
    COMPLAINT = "complaint"
    UNSUBSCRIBED = "unsubscribed"


class BackfillStatus(StrEnum):
    """A campaign backfill: waiting for a worker, working through the leads, or over."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"  # the campaign stopped running (deactivated, archived or ended)
    FAILED = "failed"


LEAD_SOURCE_BY_EVENT: dict[EventType, SourceType] = {
    EventType.CHECKOUT_ABANDONED: SourceType.ABANDONED_CHECKOUT,
    EventType.ORDER_UNFINISHED: SourceType.UNFINISHED_ORDER,
    EventType.TRIAL_STARTED: SourceType.TRIAL,
    EventType.RENEWAL_DUE: SourceType.RENEWAL,
    EventType.LEAD_OPT_IN: SourceType.OPT_IN,
}

# The built-in lead groups every account starts with, in display order.
BUILTIN_GROUPS: tuple[tuple[SourceType, str], ...] = (
    (SourceType.UNFINISHED_ORDER, "Unfinished orders"),
    (SourceType.TRIAL, "Trial users"),
    (SourceType.ABANDONED_CHECKOUT, "Abandoned orders"),
    (SourceType.RENEWAL, "Renewals"),
    (SourceType.OPT_IN, "Subscribers"),
)

DEFAULT_MIN_DELAYS: dict[SourceType, dt.timedelta] = {
    SourceType.ABANDONED_CHECKOUT: dt.timedelta(hours=1),
    SourceType.UNFINISHED_ORDER: dt.timedelta(hours=1),
    SourceType.TRIAL: dt.timedelta(days=1),
    SourceType.RENEWAL: dt.timedelta(days=1),
}
