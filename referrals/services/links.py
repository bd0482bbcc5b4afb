"""Channel links of an ambassador: /r/<CODE>-<CHANNEL>, to see which channel works."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from ambassadors.models import Ambassador
from ambassadors.normalise import code_key
from core.errors import InvalidInput
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
