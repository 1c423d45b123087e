"""Why a change to an A/B test is refused."""

from __future__ import annotations

from leadflow.kit.errors import DomainError


class AbTestEnded(DomainError):
    problem_code = "ab_test_ended"
    default_detail = "The A/B test has ended; its settings are final."


class AbTestDecided(DomainError):
    problem_code = "ab_test_decided"
    default_detail = "The A/B test already has a winner."
