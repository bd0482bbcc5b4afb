"""Reads of the tracking core shared by the pages, the API and the admin."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from django.db.models import QuerySet

from ambassadors.models import Ambassador, Program
from ambassadors.normalise import code_key, is_well_formed_code
from config import db
from referrals.models import Conversion, ReferralLink, Signup


class ReferralTarget(NamedTuple):
    """Where a live `/r/<code>` leads: what the redirect needs, read in one statement."""

    ambassador_id: int
    program_id: int
    link_id: int | None  # the channel link, when the code is one
    code: str  # the ambassador's own code, passed on as `ref`
    program_slug: str
    destination_url: str
    allowed_redirect_hosts: tuple[str, ...]
    first_click: bool
    attribution_window_days: int


# A code is an ambassador's own or one of their channel links (codes are unique across both tables).
# Paused and closed programs and inactive ambassadors lead nowhere. LIMIT 1 stops at the first branch
# that finds the code, so the common case, an ambassador's own code, costs one index probe.
LINK_RESOLVE_SQL = (
    "SELECT a.id AS ambassador_id, a.program_id, NULL AS link_id, a.code, p.slug, p.destination_url, "
    "p.allowed_redirect_hosts, p.attribution_model, p.attribution_window_days "
    "FROM ambassadors_ambassador a JOIN ambassadors_program p ON p.id = a.program_id "
    "WHERE a.code_key = %s AND a.is_active AND p.status = %s "
    "UNION ALL "
    "SELECT a.id, a.program_id, l.id, a.code, p.slug, p.destination_url, p.allowed_redirect_hosts, "
    "p.attribution_model, p.attribution_window_days "
    "FROM referrals_referrallink l JOIN ambassadors_ambassador a ON a.id = l.ambassador_id "
    "JOIN ambassadors_program p ON p.id = a.program_id "
    "WHERE l.code_key = %s AND a.is_active AND p.status = %s "
    "LIMIT 1"
)


def link_resolve_params(raw_code: str) -> tuple[str, ...] | None:
    """The parameters of LINK_RESOLVE_SQL for /r/<raw_code>, or None when the code cannot exist."""
    if not is_well_formed_code(raw_code) or len(raw_code) > 64:
        return None
    key, status = code_key(raw_code), Program.Status.OPEN.value
    return key, status, key, status


def referral_target(row: tuple[Any, ...]) -> ReferralTarget:
    """A row of LINK_RESOLVE_SQL as a ReferralTarget."""
    ambassador_id, program_id, link_id, code, slug, destination, hosts, model, window_days = row[:9]
    if isinstance(hosts, str):  # JSON comes back as text, as Django's JSONField reads it
        hosts = json.loads(hosts)
    return ReferralTarget(
        ambassador_id=ambassador_id,
        program_id=program_id,
        link_id=link_id,
        code=code,
        program_slug=slug,
        destination_url=destination,
        allowed_redirect_hosts=tuple(h for h in hosts or () if isinstance(h, str)),
        first_click=model == Program.AttributionModel.FIRST_CLICK,
        attribution_window_days=window_days,
    )


def link_resolve(raw_code: str) -> ReferralTarget | None:
    """Where /r/<code> leads, or None when the link leads nowhere (unknown, paused, closed, inactive).

    The redirect itself resolves and records in one statement: see `click_record`.
    """
    params = link_resolve_params(raw_code)
    row = db.fetch_one(LINK_RESOLVE_SQL, params) if params else None
    return referral_target(row) if row else None


def ambassador_for_code(program: Program, raw_code: str, *, include_links: bool = False) -> Ambassador | None:
    """The ambassador a code names in this program, or None: the one place a code is resolved (but for the
    redirect's own statement, LINK_RESOLVE_SQL). Look-alikes fold; `include_links` also accepts the code
    of one of their channel links, as a referee typing it would. Active or not: callers decide."""
    if not is_well_formed_code(raw_code) or len(raw_code.strip()) > 64:
        return None
    key = code_key(raw_code)
    ambassador = Ambassador.objects.select_related("program", "counters").filter(program=program, code_key=key).first()
    if ambassador is None and include_links:
        link = (
            ReferralLink.objects.select_related("ambassador__program", "ambassador__counters")
            .filter(code_key=key, ambassador__program=program)
            .first()
        )
        ambassador = link.ambassador if link is not None else None
    return ambassador


def signups_for_program(program: Program) -> QuerySet[Signup]:
    return Signup.objects.filter(program=program).select_related("ambassador", "click")


def conversion_for(program: Program, external_id: str) -> Conversion | None:
    return Conversion.objects.filter(program=program, external_id=external_id).select_related("signup").first()
