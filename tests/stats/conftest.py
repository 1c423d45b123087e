"""The dispatch fixtures (real SMTP sink and dispatcher) for these tests."""

from tests.dispatch.conftest import dispatcher, mail_settings, smtp_sink  # noqa: F401
