"""The follow-up email of ``compose.build_email`` straight in its wire form, for bulk sending:
the same headers, in the same order, and the same text and HTML bodies, written without the
email package's object model (parsing and refolding every header costs milliseconds a
message, more than sending it)."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime

from leadflow.kit.mail import WireEmail, wire_email
from leadflow.templates.render import Rendered


def build_wire_email(
    *,
    rendered: Rendered,
    from_header: str,
    to: str,
    message_id: str,
    list_unsubscribe: str,
    now: dt.datetime,
) -> WireEmail:
    """Raises ValueError for what only ``build_email`` can write (an address outside ASCII,
    a header that is not one line)."""
    domain = from_header.rsplit("@", 1)[-1].rstrip(">") or "leadflow.local"
    return wire_email(
        [
            ("From", from_header),
            ("To", to),
            ("Subject", rendered.subject),
            ("Date", format_datetime(now)),
            ("Message-ID", f"<{message_id}@{domain}>"),
            # RFC 8058 one-click unsubscribe: mailbox providers POST to this URL.
            ("List-Unsubscribe", f"<{list_unsubscribe}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ],
        text=rendered.text,
        html=rendered.html,
    )
