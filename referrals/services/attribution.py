"""Which ambassador a new signup is credited to, and why (design section 2.2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ambassadors.models import Ambassador, Program
from ambassadors.normalise import is_well_formed_code
from core.errors import InvalidInput
from referrals.models import Click, Signup
from referrals.selectors import (
    ambassador_for_code,
)


@dataclass(frozen=True)
class Attribution:
    ambassador: Ambassador | None
    method: str
    click: Click | None


def _ambassador_by_code(program: Program, raw_code: str) -> Ambassador:
    if not is_well_formed_code(raw_code):
        raise InvalidInput("A referral code has letters, digits and hyphens only.", field="referral_code")
    ambassador = ambassador_for_code(program, raw_code, include_links=True)
    if ambassador is None or not ambassador.is_active:
        raise InvalidInput("No active ambassador has this referral code in this program.", field="referral_code")
    return ambassador


def _click_in_window(program: Program, click_id: str | None, now: datetime) -> Click | None:
    if not click_id:
        return None
    try:
        click = Click.objects.select_related("ambassador").filter(pk=click_id, program=program).first()
    except Exception:  # a malformed UUID raises ValidationError from the field
        return None
    # A bot's click, or one past the flood rate (referrals.services.clicks), credits nobody.
    if click is None or click.is_bot or click.flood or not click.ambassador.is_active:
        return None
    if click.created_at < now - timedelta(days=program.attribution_window_days):
        return None
    return click


def attribution_decide(
    *,
    program: Program,
    referral_code: str | None,
    cookie_click_id: str | None,
    click_id: str | None,
    now: datetime,
) -> Attribution:
    """Design 2.2: a code given with the signup; else the click (cookie, then click_id) inside the window.

    Which click the cookie holds (first or last) is settled when the cookie is set, at the redirect.
    """
    if referral_code:
        return Attribution(_ambassador_by_code(program, referral_code), Signup.Method.CODE, None)
    click = _click_in_window(program, cookie_click_id, now)
    if click is not None:
        return Attribution(click.ambassador, Signup.Method.COOKIE, click)
    click = _click_in_window(program, click_id, now)
    if click is not None:
        click = _first_click_of_visitor(program, click, now)
        return Attribution(click.ambassador, Signup.Method.API, click)
    return Attribution(None, Signup.Method.NONE, None)


def _first_click_of_visitor(program: Program, click: Click, now: datetime) -> Click:
    """Under first click, the visitor's earliest live click; else the one given.

    An integration passes the click_id of the URL the visitor landed on last; no cookie settled it.
    """
    if program.attribution_model != Program.AttributionModel.FIRST_CLICK or not click.visitor_id:
        return click
    first = (
        Click.objects.select_related("ambassador")
        .filter(
            program=program,
            visitor_id=click.visitor_id,
            is_bot=False,
            flood=False,
            ambassador__is_active=True,
            created_at__gte=now - timedelta(days=program.attribution_window_days),
            created_at__lte=click.created_at,
        )
        .order_by("created_at")
        .first()
    )
    return first or click


def attribution_reason(attribution: Attribution, program: Program) -> str:
    if attribution.ambassador is None:
        return "No referral code, and no click inside the attribution window."
    if attribution.method == Signup.Method.CODE:
        return f"Referral code {attribution.ambassador.code} given with the signup."
    model = program.get_attribution_model_display().lower()
    click = attribution.click.pk if attribution.click else ""
    return f"Click {click} ({model}) inside the {program.attribution_window_days}-day window."
