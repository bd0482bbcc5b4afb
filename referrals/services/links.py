"""Channel links of an ambassador: /r/<CODE>-<CHANNEL>, to see which channel works."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db import IntegrityError, connection, transaction

from ambassadors.models import Ambassador
from ambassadors.normalise import code_key
from core.errors import InvalidInput
from core.locking import transaction_retry
from core.text import plain_text
from referrals.models import ReferralLink


def link_create(*, ambassador: Ambassador, channel: str) -> ReferralLink:
    """A channel link `/r/<CODE>-<CHANNEL>`; asking again for a channel returns the same link."""
    from django.utils.text import slugify

    # Refused rather than slugified away: `news\r\nletter` is a mistake the person should see.
    channel = slugify(plain_text(channel, field="channel"))[:32]
    if not channel:
        raise InvalidInput("A channel name has letters or digits.", field="channel")
    existing = ReferralLink.objects.filter(ambassador=ambassador, channel=channel).first()
    if existing is not None:
        return existing
    code = f"{ambassador.code}-{channel.upper()}"[:64]
    try:
        with transaction.atomic():
            return ReferralLink.objects.create(
                ambassador=ambassador, channel=channel, code=code, code_key=code_key(code)
            )
    except IntegrityError:
        existing = ReferralLink.objects.filter(ambassador=ambassador, channel=channel).first()
        if existing is None:
            raise InvalidInput("This link code is already taken.", field="channel") from None
        return existing


@transaction_retry()  # lock order: core.locking (step 1 only, many signups in one statement)
def signup_links_fill(*, program_id: int, day: date, window_days: int) -> int:
    """Give the signups of one UTC day that lack it the channel link of the click that credited them; returns
    how many were filled.

    Since migration referrals 0015 every signup records its click's link when it is recorded; the release
    before did not, so the signups it records while an upgrade is under way (after the migration, before the
    web processes switch) count under the main link on the dashboard. This repairs them: run again, it finds
    nothing to do. A signup's click is at most `window_days` older than it, which bounds the click partitions
    read on PostgreSQL.
    """
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = start + timedelta(days=1)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "UPDATE referrals_signup s SET link_id = c.link_id FROM referrals_click c "
                "WHERE s.program_id = %s AND s.created_at >= %s AND s.created_at < %s "
                "AND s.link_id IS NULL AND s.click_id IS NOT NULL AND c.id = s.click_id "
                "AND c.created_at >= %s AND c.created_at < %s AND c.link_id IS NOT NULL",
                [program_id, start, end, start - timedelta(days=window_days + 1), end],
            )
        else:
            cursor.execute(
                "UPDATE referrals_signup SET link_id = (SELECT c.link_id FROM referrals_click c "
                "WHERE c.id = referrals_signup.click_id) "
                "WHERE program_id = %s AND created_at >= %s AND created_at < %s "
                "AND link_id IS NULL AND click_id IS NOT NULL "
                "AND EXISTS (SELECT 1 FROM referrals_click c WHERE c.id = referrals_signup.click_id "
                "AND c.link_id IS NOT NULL)",
                [program_id, *(connection.ops.adapt_datetimefield_value(moment) for moment in (start, end))],
            )
        return cursor.rowcount
