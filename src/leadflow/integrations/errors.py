"""Why a platform webhook is refused."""

from __future__ import annotations

from leadflow.integrations.schemas import Platform
from leadflow.kit.errors import DomainError


class IntegrationNotConfigured(DomainError):
    problem_code = "integration_not_configured"
    default_detail = "No webhook secret is configured for this platform."

    def __init__(self, platform: Platform) -> None:
        super().__init__(
            f"No {platform.value} webhook secret is configured for this account: set it with "
            f"PUT /v1/integrations/{platform.value}."
        )
