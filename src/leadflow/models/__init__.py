"""Every ORM class, one module per aggregate; importing this package completes
``Base.metadata`` (Alembic, tests). Models import only ``kit`` and ``vocabulary``."""

from leadflow.kit.db import Base
from leadflow.models.abtest import AbTest, AbTestCounter
from leadflow.models.accounts import Account, ApiKey
from leadflow.models.backfills import Backfill
from leadflow.models.bounces import MailOutcome
from leadflow.models.campaigns import Campaign, Variant
from leadflow.models.capture import CaptureConsent
from leadflow.models.enrollments import Enrollment, Message
from leadflow.models.events import Event
from leadflow.models.integrations import Integration, PlatformCustomer, ShopifyCheckout
from leadflow.models.leads import Conversion, Lead, LeadEvent, LeadGroup
from leadflow.models.notifications import IlnDelivery, IlnEndpoint
from leadflow.models.sessions import DashboardSession, LoginLink
from leadflow.models.stats import StatsCounter
from leadflow.models.tracking import Suppression, Visit

__all__ = [
    "AbTest",
    "AbTestCounter",
    "Account",
    "ApiKey",
    "Backfill",
    "Base",
    "Campaign",
    "CaptureConsent",
    "Conversion",
    "DashboardSession",
    "Enrollment",
    "Event",
    "IlnDelivery",
    "IlnEndpoint",
    "Integration",
    "Lead",
    "LeadEvent",
    "LeadGroup",
    "LoginLink",
    "MailOutcome",
    "Message",
    "PlatformCustomer",
    "ShopifyCheckout",
    "StatsCounter",
    "Suppression",
    "Variant",
    "Visit",
]
