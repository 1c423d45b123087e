"""Why a change to a notification is refused."""

from __future__ import annotations

from leadflow.kit.errors import DomainError


class DeliveryPending(DomainError):
    problem_code = "already_pending"
    default_detail = "The delivery is still being attempted."
