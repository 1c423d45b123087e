"""Imports every model so ``Base.metadata`` is complete (Alembic, tests)."""

from leadflow.accounts.models import Account, ApiKey
from leadflow.ingest.models import Event
from leadflow.kit.db import Base
from leadflow.leads.models import Lead, LeadEvent, LeadGroup

__all__ = ["Account", "ApiKey", "Base", "Event", "Lead", "LeadEvent", "LeadGroup"]
