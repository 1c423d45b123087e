"""Imports every model so ``Base.metadata`` is complete (Alembic, tests)."""

from leadflow.abtest.models import AbTest
from leadflow.accounts.models import Account, ApiKey
from leadflow.campaigns.models import Campaign, Variant
from leadflow.dispatch.models import Enrollment, Message
from leadflow.ingest.models import Event
from leadflow.integrations.models import Integration, PlatformCustomer, ShopifyCheckout
from leadflow.kit.db import Base
from leadflow.leads.models import Conversion, Lead, LeadEvent, LeadGroup
from leadflow.notifications.models import IlnDelivery, IlnEndpoint
from leadflow.stats.models import StatsCounter
from leadflow.tracking.models import Suppression, Visit

__all__ = [
    "AbTest",
    "Account",
    "ApiKey",
    "Base",
    "Campaign",
    "Conversion",
    "Enrollment",
    "Event",
    "IlnDelivery",
    "IlnEndpoint",
    "Integration",
    "Lead",
    "LeadEvent",
    "LeadGroup",
    "Message",
    "PlatformCustomer",
    "ShopifyCheckout",
    "StatsCounter",
    "Suppression",
    "Variant",
    "Visit",
]
