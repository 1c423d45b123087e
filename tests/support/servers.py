"""The real local servers the tests start: a free port for one, the SMTP address in use."""

from __future__ import annotations

import socket

from leadflow.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def smtp_url(settings: Settings) -> str:
    assert settings.smtp_url is not None
    return settings.smtp_url.get_secret_value()
