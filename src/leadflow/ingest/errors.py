"""Why a webhook delivery is refused (also raised by the platform formats)."""

from __future__ import annotations

from leadflow.kit.errors import DomainError, FieldProblem


class InvalidSignature(DomainError):
    http_status = 401
    problem_code = "invalid_signature"
    default_detail = "The signature does not match."


class TimestampOutOfTolerance(DomainError):
    http_status = 401
    problem_code = "timestamp_out_of_tolerance"
    default_detail = "The delivery's timestamp is too far from now; replays are refused."


class PayloadTooLarge(DomainError):
    http_status = 413
    problem_code = "payload_too_large"
    default_detail = "The body is too large."


class MalformedBody(DomainError):
    """The body cannot be read as the format the endpoint takes."""

    http_status = 422
    problem_code = "malformed_body"
    default_detail = "The body is malformed."

    def __init__(self, detail: str | None = None, *, message: str = "malformed body") -> None:
        super().__init__(detail, errors=[FieldProblem(field="body", message=message)])


class MalformedJson(MalformedBody):
    problem_code = "malformed_json"
    default_detail = "The body is not valid JSON."
