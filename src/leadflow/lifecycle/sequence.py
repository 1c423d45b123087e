"""State changes of an enrollment (a lead's follow-up sequence), in one place."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.leases import release
from leadflow.models.enrollments import Enrollment
from leadflow.vocabulary import EnrollmentState, StopReason


def stop(enrollment: Enrollment, reason: StopReason | str, now: dt.datetime) -> None:
    """Stop a loaded enrollment for good and give up its lease."""
    enrollment.state = EnrollmentState.STOPPED
    enrollment.stop_reason = reason
    settle(enrollment, now)


def complete(enrollment: Enrollment, now: dt.datetime) -> None:
    """Its last step went out."""
    enrollment.state = EnrollmentState.COMPLETED
    settle(enrollment, now)


def settle(enrollment: Enrollment, now: dt.datetime) -> None:
    """Done with it for this tick: give up the lease (the due time says when it is next)."""
    release(enrollment)
    enrollment.updated_at = now


async def stop_active(
    session: AsyncSession, reason: StopReason, now: dt.datetime, *where: ColumnElement[bool]
) -> None:
    """Stop every active enrollment matching ``where`` (a purchase, an unsubscribe, ...)."""
    await session.execute(
        update(Enrollment)
        .where(Enrollment.state == EnrollmentState.ACTIVE.value, *where)
        .values(
            state=EnrollmentState.STOPPED.value,
            stop_reason=reason.value,
            lease_until=None,
            lease_token=None,
            updated_at=now,
        )
    )
