"""Leads as the API shows them (also the payload of lead notifications)."""

from __future__ import annotations

from leadflow.kit.codes import format_money
from leadflow.leads.schemas import (
    ConversionOut,
    FollowupOut,
    LeadCustomer,
    LeadDetail,
    LeadEventOut,
    LeadGroupOut,
    LeadOut,
    LeadProduct,
    SequenceOut,
)
from leadflow.models.enrollments import Enrollment, Message
from leadflow.models.events import Event
from leadflow.models.leads import Conversion, Lead, LeadGroup
from leadflow.vocabulary import EnrollmentState, LeadStatus, SourceType


def lead_view(lead: Lead) -> LeadOut:
    return LeadOut(
        id=lead.id,
        source_type=SourceType(lead.source_type),
        status=LeadStatus(lead.status),
        reference=lead.reference,
        customer=LeadCustomer(
            email=lead.email,
            first_name=lead.first_name,
            last_name=lead.last_name,
            language=lead.language,
            country=lead.country,
            timezone=lead.timezone,
        ),
        products=[LeadProduct.model_validate(p) for p in lead.products],
        amount=format_money(lead.amount, lead.currency),
        currency=lead.currency,
        recovery_url=lead.recovery_url,
        attributes=lead.attributes,
        captured_at=lead.captured_at,
        converted_at=lead.converted_at,
    )


def event_view(event: Event, role: str) -> LeadEventOut:
    return LeadEventOut(
        id=event.id,
        type=event.type,
        source=event.source,
        role=role,
        occurred_at=event.occurred_at,
        received_at=event.received_at,
    )


def sequence_view(enrollment: Enrollment, messages: list[Message]) -> SequenceOut:
    active = enrollment.state == EnrollmentState.ACTIVE
    return SequenceOut(
        campaign_id=enrollment.campaign_id,
        variant_id=enrollment.variant_id,
        state=enrollment.state,
        stop_reason=enrollment.stop_reason,
        next_step=enrollment.next_step if active else None,
        next_due_at=enrollment.next_due_at if active else None,
        followups=[
            FollowupOut(
                step=m.step,
                status=m.status,
                subject=m.subject,
                sent_at=m.sent_at,
                last_error=m.last_error,
            )
            for m in messages
        ],
    )


def conversion_view(conversion: Conversion) -> ConversionOut:
    return ConversionOut(
        converted_at=conversion.converted_at,
        amount=format_money(conversion.amount, conversion.currency),
        currency=conversion.currency,
        campaign_id=conversion.campaign_id,
        variant_id=conversion.variant_id,
        step=conversion.step,
    )


def lead_detail_view(
    lead: Lead,
    events: list[tuple[Event, str]],
    enrollment: Enrollment | None,
    messages: list[Message],
    conversion: Conversion | None,
) -> LeadDetail:
    return LeadDetail(
        **lead_view(lead).model_dump(),
        events=[event_view(event, role) for event, role in events],
        sequence=sequence_view(enrollment, messages) if enrollment is not None else None,
        conversion=conversion_view(conversion) if conversion is not None else None,
    )


# What each group holds, in a merchant's words (the dashboard shows it beside the count).
GROUP_DESCRIPTIONS = {
    SourceType.ABANDONED_CHECKOUT: "Visitors who started a checkout and left without paying.",
    SourceType.UNFINISHED_ORDER: "Customers who placed an order but did not complete payment.",
    SourceType.TRIAL: "People using a free trial who have not bought yet.",
    SourceType.RENEWAL: "Customers whose subscription or license is coming up for renewal.",
    SourceType.OPT_IN: "Visitors who subscribed on your site.",
}


def group_view(group: LeadGroup, counts: dict[str, int]) -> LeadGroupOut:
    return LeadGroupOut(
        key=SourceType(group.key),
        name=group.name,
        description=GROUP_DESCRIPTIONS[SourceType(group.key)],
        source_type=SourceType(group.key),
        status="active" if group.active else "inactive",
        open_leads=counts.get(group.key, 0),
    )
