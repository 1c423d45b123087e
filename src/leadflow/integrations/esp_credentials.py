"""What each email service provider's webhook secret must look like, checked when it is set."""

from __future__ import annotations

from leadflow.integrations.esp import sendgrid_key
from leadflow.integrations.schemas import Platform
from leadflow.integrations.ses import TOPIC_ARN
from leadflow.kit.errors import field_error


def check_esp_credentials(platform: Platform, secret: str) -> None:
    if platform is Platform.POSTMARK:
        user, colon, password = secret.partition(":")
        if not colon or not user or not password:
            raise field_error(
                "secret", "the basic auth credentials of the Postmark webhook URL, user:password"
            )
    elif platform is Platform.SENDGRID:
        try:
            sendgrid_key(secret)
        except ValueError as exc:
            raise field_error("secret", str(exc)) from None
    elif platform is Platform.SES and not TOPIC_ARN.fullmatch(secret):
        raise field_error(
            "secret", "the ARN of the SNS topic (arn:aws:sns:<region>:<account>:<name>)"
        )
