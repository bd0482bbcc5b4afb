"""One signup's attribution told in full for an admin: built on console.selectors.attribution_explain (the
credited click, the method, every audited decision), plus what the audit page adds: the rule and the
window that decided, the competing clicks of the same visitor, the conversions, and the ambassadors
concerned with their counts. A fixed number of queries, however many clicks, events or conversions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q
from django.utils.translation import gettext as _

from ambassadors.models import Ambassador, Program
from console.audit.labels import CONVERSION_STATUSES, SIGNUP_METHODS, SIGNUP_REASONS, SIGNUP_STATUSES, label
from console.selectors import AttributionExplanation, AuditLine, attribution_explain
from referrals.models import Click, Conversion, Signup

# The visitor's clicks shown beside the credited one: a visitor clicking more is a robot or a test.
MAX_CLICKS = 200


@dataclass(frozen=True)
class ClickLine:
    id: str
    created_at: datetime
    ambassador_code: str
    ambassador_name: str
    channel: str  # "main" for the ambassador's own code
    ip_hash: str
    user_agent_family: str
    referer_host: str
    is_bot: bool
    credited: bool  # the click that credited this signup
    in_window: bool  # inside the attribution window before the signup
    same_ip: bool  # from the same (hashed) address as the signup


@dataclass(frozen=True)
class ConversionLine:
    external_id: str
    occurred_at: datetime
    amount: Decimal
    currency: str
    status: str

    @property
    def status_label(self) -> str:
        return label(CONVERSION_STATUSES, self.status)


@dataclass(frozen=True)
class AmbassadorLine:
    code: str
    display_name: str
    email: str
    is_credited: bool
    signups: int
    qualified: int


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class EventLine:
    line: AuditLine
    what: str
    who: str
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class SignupAudit:
    explanation: AttributionExplanation
    program_name: str
    program_slug: str
    attribution_model: str  # last_click or first_click
    window_days: int
    window_start: datetime
    visitor_id: str
    click: ClickLine | None  # the credited click, with what the explanation leaves out (address hash)
    competing: tuple[ClickLine, ...]  # the visitor's other clicks in the window, oldest first
    rule: str  # in plain words: what decided
    verdict: str  # in plain words: the status and why
    conversions: tuple[ConversionLine, ...]
    ambassadors: tuple[AmbassadorLine, ...]  # credited now, clicked, or credited before an override
    events: tuple[EventLine, ...]  # oldest first

    @property
    def method_label(self) -> str:
        return label(SIGNUP_METHODS, self.explanation.method)

    @property
    def status_label(self) -> str:
        return label(SIGNUP_STATUSES, self.explanation.status)

    @property
    def reason_label(self) -> str:
        return label(SIGNUP_REASONS, self.explanation.reason)

    @property
    def pending_review(self) -> bool:
        return self.explanation.status == Signup.Status.PENDING_REVIEW


def signup_for_audit(signup_id: int) -> Signup | None:
    """The signup with what its page needs beside it (program, credited click): one query."""
    return Signup.objects.select_related("program", "click").filter(pk=signup_id).first()


def signup_audit(signup: Signup) -> SignupAudit:
    """A signup read by `signup_for_audit`, explained: 5 queries, however many clicks, events, conversions."""
    explanation = attribution_explain(signup)  # 2 queries
    program: Program = signup.program
    window_start = signup.created_at - timedelta(days=program.attribution_window_days)
    credited_click: Click | None = signup.click
    visitor_id = (credited_click.visitor_id if credited_click is not None else "") or signup.visitor_id

    # The credited click, and the visitor's human clicks in the window before the signup: 1 query.
    wanted = Q(pk=signup.click_id) if signup.click_id else Q(pk__in=[])
    if visitor_id:
        wanted |= Q(
            program_id=program.pk,
            visitor_id=visitor_id,
            is_bot=False,
            flood=False,  # past the per-IP rate: recorded, never credited (referrals.services.attribution)
            created_at__gte=window_start,
            created_at__lte=signup.created_at,
        )
    clicks = list(
        Click.objects.filter(wanted).select_related("ambassador", "link").order_by("created_at", "id")[:MAX_CLICKS]
    )
    lines = [_click_line(c, signup, window_start) for c in clicks]
    credited = next((line for line in lines if line.credited), None)

    conversions = tuple(
        ConversionLine(
            external_id=c.external_id, occurred_at=c.occurred_at, amount=c.amount, currency=c.currency, status=c.status
        )
        for c in Conversion.objects.filter(signup_id=signup.pk).order_by("occurred_at", "id")
    )  # 1 query

    events = tuple(_event_line(e) for e in explanation.events)
    return SignupAudit(
        explanation=explanation,
        program_name=program.name,
        program_slug=program.slug,
        attribution_model=program.attribution_model,
        window_days=program.attribution_window_days,
        window_start=window_start,
        visitor_id=visitor_id,
        click=credited,
        competing=tuple(line for line in lines if not line.credited),
        rule=_rule(explanation, program, credited),
        verdict=_verdict(explanation),
        conversions=conversions,
        ambassadors=_ambassadors(signup, clicks, explanation),  # 1 query
        events=events,
    )


def _click_line(click: Click, signup: Signup, window_start: datetime) -> ClickLine:
    return ClickLine(
        id=str(click.pk),
        created_at=click.created_at,
        ambassador_code=click.ambassador.code,
        ambassador_name=click.ambassador.display_name,
        channel=click.link.channel if click.link is not None else "main",
        ip_hash=click.ip_hash,
        user_agent_family=click.user_agent_family,
        referer_host=click.referer_host,
        is_bot=click.is_bot,
        credited=click.pk == signup.click_id,
        in_window=window_start <= click.created_at <= signup.created_at,
        same_ip=bool(click.ip_hash) and click.ip_hash == signup.ip_hash,
    )


def _ambassadors(
    signup: Signup, clicks: list[Click], explanation: AttributionExplanation
) -> tuple[AmbassadorLine, ...]:
    """Whoever this signup concerns: the one credited, those the visitor clicked, and those credited before
    an override (the trail names them by code), each with their counts as they are now."""
    ids = {c.ambassador_id for c in clicks}
    if signup.ambassador_id is not None:
        ids.add(signup.ambassador_id)
    codes = set()
    for event in explanation.events:
        for snapshot in (event.before, event.after):
            if snapshot and isinstance(snapshot.get("ambassador"), str):
                codes.add(snapshot["ambassador"])
    found = (
        Ambassador.objects.filter(Q(pk__in=ids) | Q(code__in=codes), program_id=signup.program_id)
        .select_related("counters")
        .order_by("created_at", "id")
    )
    lines = []
    for ambassador in found:
        try:
            counters = ambassador.counters
            signups, qualified = counters.signups, counters.qualified
        except ObjectDoesNotExist:
            signups = qualified = 0
        lines.append(
            AmbassadorLine(
                code=ambassador.code,
                display_name=ambassador.display_name,
                email=ambassador.email,
                is_credited=ambassador.pk == signup.ambassador_id,
                signups=signups,
                qualified=qualified,
            )
        )
    return tuple(sorted(lines, key=lambda line: not line.is_credited))


def _model_label(program: Program) -> str:
    return _("first click") if program.attribution_model == Program.AttributionModel.FIRST_CLICK else _("last click")


def _rule(explanation: AttributionExplanation, program: Program, click: ClickLine | None) -> str:
    days, model = program.attribution_window_days, _model_label(program)
    code = explanation.ambassador.code if explanation.ambassador else ""
    method = explanation.method
    if method == Signup.Method.CODE:
        return _(
            "The referral code %(code)s was given with the signup. A code given at signup wins over any click."
        ) % {"code": code}
    if method == Signup.Method.COOKIE:
        return _(
            "The referral cookie in the subscriber's browser carried the click below, to %(code)s. The program "
            "credits the %(model)s inside a %(days)s-day window: the cookie keeps that click."
        ) % {"code": code, "model": model, "days": days}
    if method == Signup.Method.API:
        return _(
            "The shop's integration passed the id of the click below, to %(code)s. The program credits the "
            "%(model)s of the visitor inside a %(days)s-day window."
        ) % {"code": code, "model": model, "days": days}
    if method == Signup.Method.MANUAL:
        if code:
            return _("An admin credited %(code)s by hand: the audit trail below says who and why.") % {"code": code}
        return _("An admin set the credit by hand: the audit trail below says who and why.")
    return _(
        "Nobody is credited: no referral code was given and no click inside the %(days)s-day window was found."
    ) % {"days": days}


def _verdict(explanation: AttributionExplanation) -> str:
    reason = label(SIGNUP_REASONS, explanation.reason)
    detail = explanation.reason_detail
    if explanation.status == Signup.Status.QUALIFIED:
        if explanation.ambassador is not None:
            return _("It counts: for %(code)s's rewards and for the collective counter.") % {
                "code": explanation.ambassador.code
            }
        return _("It counts for the collective counter; no ambassador is credited.")
    if explanation.status == Signup.Status.PENDING_REVIEW:
        text = _("It is held for review and does not count yet. Why: %(reason)s.") % {"reason": reason}
    else:
        text = _("It was rejected and does not count. Why: %(reason)s.") % {"reason": reason}
    return f"{text} {detail}".strip() if detail else text


def action_label(action: str) -> str:
    labels = {
        "signup.recorded": _("Recorded"),
        "signup.overridden": _("Credit changed by an admin"),
        "signup.reviewed": _("Reviewed"),
        "signup.status_changed": _("Status changed by an admin"),
    }
    return labels.get(action, action)


def _event_line(line: AuditLine) -> EventLine:
    before, after = line.before or {}, line.after or {}
    changes = tuple(
        Change(field=key, before=before.get(key), after=after.get(key))
        for key in sorted(set(before) | set(after))
        if (before.get(key) or None) != (after.get(key) or None)
    )
    who = line.actor_label or line.actor_type
    return EventLine(line=line, what=action_label(line.action), who=who, changes=changes)
