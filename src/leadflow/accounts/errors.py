"""The refusals of the accounts package (rendered as RFC 9457 problems)."""

from __future__ import annotations

from leadflow.kit.errors import DomainError


class LastApiKey(DomainError):
    http_status = 409
    problem_code = "last_api_key"
    default_detail = (
        "This is the account's only active API key: create another key before revoking it, "
        "so the account keeps access to the API."
    )
