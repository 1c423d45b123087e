"""The one rule for "this purchase completes that lead", seen from either side.

A purchase completes a lead when it has the lead's reference (the same checkout or
subscription, but not an older billing cycle: a renewal lead is not converted by last year's
payment; the window tolerates platforms that date the event late), or when the same email
bought within the window after the lead was captured. A purchase may arrive before or after
the lead's event, so the rule is asked both ways: which leads does a new purchase complete,
and which earlier purchase completes a new lead.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, and_, or_

from leadflow.models.events import Event
from leadflow.models.leads import Lead
from leadflow.vocabulary import EventType


def purchases_completing(
    *,
    account_id: str,
    reference: str,
    email: str | None,
    captured_at: dt.datetime,
    window: dt.timedelta | None,
) -> ColumnElement[bool]:
    """Purchase events that complete a contact captured at ``captured_at``.

    ``window=None`` drops the bounds: any purchase of the reference, and any purchase of the
    email since ``captured_at`` (a watched checkout is completed by any later order).
    """
    by_reference: ColumnElement[bool] = Event.reference == reference
    by_email: ColumnElement[bool] = and_(Event.email == email, Event.occurred_at >= captured_at)
    if window is not None:
        by_reference = and_(by_reference, Event.occurred_at >= captured_at - window)
        by_email = and_(by_email, Event.occurred_at <= captured_at + window)
    match = or_(by_reference, by_email) if email is not None else by_reference
    return and_(
        Event.account_id == account_id,
        Event.type == EventType.ORDER_COMPLETED.value,
        match,
    )


def completes(
    purchase: Event,
    *,
    reference: str,
    email: str | None,
    captured_at: dt.datetime,
    window: dt.timedelta,
) -> bool:
    """The rule of ``purchases_completing`` on rows already loaded (account and type
    checked by the caller), for matching many leads against candidates read at once."""
    occurred_at = purchase.occurred_at
    if purchase.reference == reference and occurred_at >= captured_at - window:
        return True
    return (
        email is not None
        and purchase.email == email
        and captured_at <= occurred_at <= captured_at + window
    )


def leads_completed_by(purchase: Event, window: dt.timedelta) -> ColumnElement[bool]:
    """Leads that ``purchase`` completes: the same rule as above, with the purchase fixed."""
    occurred_at = purchase.occurred_at
    by_reference = and_(
        Lead.reference == purchase.reference, Lead.captured_at <= occurred_at + window
    )
    by_email = and_(
        Lead.email == purchase.email,
        Lead.captured_at <= occurred_at,
        Lead.captured_at >= occurred_at - window,
    )
    return and_(Lead.account_id == purchase.account_id, or_(by_reference, by_email))
