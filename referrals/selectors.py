"""Reads of the tracking core shared by the pages, the API and the admin."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from ambassadors.models import Ambassador, Program
from ambassadors.normalise import code_key, is_well_formed_code
from referrals.models import Click, Conversion, ReferralLink, Signup


def link_resolve(raw_code: str) -> tuple[Ambassador, ReferralLink | None] | None:
    """The ambassador (with its program) behind /r/<code>, and the channel link if it is one."""
    if not is_well_formed_code(raw_code) or len(raw_code) > 64:
        return None
    key = code_key(raw_code)
    # One query for the main link, the common case on the hot path. code_key is unique, so no
    # ORDER BY: .first() would add one, and building it costs a third of this lookup's CPU.
    ambassadors = Ambassador.objects.select_related("program").filter(code_key=key).order_by()[:1]
    if ambassadors:
        return ambassadors[0], None
    links = ReferralLink.objects.select_related("ambassador__program").filter(code_key=key).order_by()[:1]
    if links:
        return links[0].ambassador, links[0]
    return None


def ambassador_stats(ambassador: Ambassador) -> dict[str, int]:
    clicks = Click.objects.filter(ambassador=ambassador, is_bot=False).count()
    signups = Signup.objects.filter(ambassador=ambassador).aggregate(
        total=Count("id"), qualified=Count("id", filter=Q(status=Signup.Status.QUALIFIED))
    )
    conversions = Conversion.objects.filter(
        signup__ambassador=ambassador,
        signup__status=Signup.Status.QUALIFIED,
        status=Conversion.Status.APPROVED,
    ).count()
    return {
        "clicks": clicks,
        "signups": signups["total"],
        "qualified": signups["qualified"],
        "conversions": conversions,
    }


def channel_stats(ambassador: Ambassador) -> list[dict[str, Any]]:
    """Clicks per link, so an ambassador sees which channel works."""
    rows = (
        Click.objects.filter(ambassador=ambassador, is_bot=False)
        .values("link__channel", "link__code")
        .annotate(clicks=Count("id"))
        .order_by("-clicks")
    )
    return [
        {
            "channel": r["link__channel"] or "main",
            "code": r["link__code"] or ambassador.code,
            "clicks": r["clicks"],
        }
        for r in rows
    ]


def signups_for_program(program: Program) -> QuerySet[Signup]:
    return Signup.objects.filter(program=program).select_related("ambassador", "click")


def conversion_for(program: Program, external_id: str) -> Conversion | None:
    return Conversion.objects.filter(program=program, external_id=external_id).select_related("signup").first()
