"""Writes of the rewards engine: tier configuration, unlocking and revoking grants, reaching milestones,
and the reconciliation that repairs whatever a lost message missed.

Exactly once comes from the database: recalculations lock the counters row they read (one per
ambassador, one per program), and unique constraints on (tier, ambassador, occurrence) and
(tier, occurrence) refuse any duplicate that would slip through anyway.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from ambassadors.models import Ambassador, AmbassadorCounters, Program, ProgramCounters
from config.errors import InvalidInput
from referrals.audit import Actor, audit_record
from referrals.models import Conversion, Signup
from rewards.models import Milestone, RewardGrant, RewardTier
from rewards.pricing import occurrences_due, price_after

logger = logging.getLogger(__name__)

VOUCHER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
SYSTEM = Actor.system("rewards")
# A misconfigured "every 1 cent" tier must not create millions of rows in one run.
MAX_OCCURRENCES_PER_RUN = 1000


def voucher_code_generate() -> str:
    """16 characters from 31 (about 79 bits): unguessable, and still readable over the phone."""
    raw = "".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


# --- Tier configuration ------------------------------------------------------------------------------

TIER_FIELDS = (
    "name", "kind", "metric", "threshold", "repeat_every", "reward_type", "reward_value", "reward_text",
    "referee_reward_type", "referee_reward_value", "step", "drop_type", "drop_value", "is_active",
)  # fmt: skip


def tier_check(*, program: Program, fields: dict[str, Any], tier_id: int | None = None) -> None:
    """Refuse a configuration that cannot work, with the field to fix (admin and API alike)."""
    kind = fields.get("kind") or RewardTier.Kind.INDIVIDUAL
    others = RewardTier.objects.filter(program=program, is_active=True)
    if tier_id is not None:
        others = others.exclude(pk=tier_id)
    if kind == RewardTier.Kind.INDIVIDUAL:
        threshold = fields.get("threshold")
        if threshold is None or threshold <= 0:
            raise InvalidInput("The threshold must be above 0.", field="threshold")
        metric = fields.get("metric") or RewardTier.Metric.QUALIFIED_SIGNUPS
        whole = metric != RewardTier.Metric.CONVERTED_AMOUNT
        repeat = fields.get("repeat_every")
        if repeat is not None and repeat <= 0:
            raise InvalidInput("'Again every' must be above 0, or empty for once only.", field="repeat_every")
        if whole and (threshold != threshold.to_integral_value() or (repeat and repeat != repeat.to_integral_value())):
            raise InvalidInput("Counts are whole numbers.", field="threshold")
        _check_reward(fields.get("reward_type"), fields.get("reward_value"), fields.get("reward_text"), "reward")
        if fields.get("referee_reward_type"):
            _check_reward(fields.get("referee_reward_type"), fields.get("referee_reward_value"), "-", "referee_reward")
        if (
            fields.get("is_active", True)
            and others.filter(kind=RewardTier.Kind.INDIVIDUAL, metric=metric, threshold=threshold).exists()
        ):
            raise InvalidInput("Another active tier already unlocks at this metric and threshold.", field="threshold")
    elif kind == RewardTier.Kind.COLLECTIVE:
        if program.base_price is None or program.floor_price is None:
            raise InvalidInput("Set the program's base and floor price before a collective tier.", field="kind")
        step = fields.get("step")
        if not step or step <= 0:
            raise InvalidInput("The step must be at least 1 subscriber.", field="step")
        drop_type, drop = fields.get("drop_type"), fields.get("drop_value")
        if drop_type not in RewardTier.DropType.values:
            raise InvalidInput("Choose a drop in amount or in percent.", field="drop_type")
        if drop is None or drop <= 0:
            raise InvalidInput("The price drop must be above 0.", field="drop_value")
        if drop_type == RewardTier.DropType.PERCENT and drop > 100:
            raise InvalidInput("A drop of more than 100% makes a negative price.", field="drop_value")
        if drop_type == RewardTier.DropType.AMOUNT and drop > program.base_price:
            raise InvalidInput("A drop above the base price makes a negative price.", field="drop_value")
        if fields.get("is_active", True) and others.filter(kind=RewardTier.Kind.COLLECTIVE).exists():
            raise InvalidInput("The program already has an active collective ladder.", field="kind")
    else:
        raise InvalidInput("A tier is individual or collective.", field="kind")


def _check_reward(reward_type: Any, value: Any, text: Any, prefix: str) -> None:
    if reward_type not in RewardTier.RewardType.values:
        raise InvalidInput("Choose what the tier grants.", field=f"{prefix}_type")
    if reward_type == RewardTier.RewardType.CUSTOM:
        if not text:
            raise InvalidInput("Describe the custom reward.", field="reward_text")
        return
    if value is None or value <= 0:
        raise InvalidInput("The reward's value must be above 0.", field=f"{prefix}_value")
    if reward_type == RewardTier.RewardType.PERCENT_VOUCHER and value > 100:
        raise InvalidInput("A percent voucher is at most 100%.", field=f"{prefix}_value")


def tier_create(*, program: Program, **fields: Any) -> RewardTier:
    tier_check(program=program, fields=fields)
    tier = RewardTier.objects.create(program=program, **fields)
    recalculation_enqueue(program_id=program.pk, ambassador_ids=None)
    return tier


def tier_update(*, tier: RewardTier, **fields: Any) -> RewardTier:
    merged = {name: getattr(tier, name) for name in TIER_FIELDS}
    merged.update(fields)
    tier_check(program=tier.program, fields=merged, tier_id=tier.pk)
    for name, value in fields.items():
        setattr(tier, name, value)
    tier.save()
    recalculation_enqueue(program_id=tier.program_id, ambassador_ids=None)
    return tier


# --- Recalculation -----------------------------------------------------------------------------------


def recalculation_enqueue(*, program_id: int, ambassador_ids: list[int] | None) -> None:
    """After commit, ask a worker to recalculate. `None` means every ambassador of the program.

    A broker that is down loses the message, not the reward: the reconciliation grants it later.
    """

    def send() -> None:
        from rewards.tasks import recalculate

        try:
            recalculate.delay(program_id, ambassador_ids)
        except Exception:
            logger.warning(
                "recalculation of program %s not enqueued; reconciliation will catch up", program_id, exc_info=True
            )

    transaction.on_commit(send)


def metric_value(counters: AmbassadorCounters, metric: str) -> Decimal:
    if metric == RewardTier.Metric.APPROVED_CONVERSIONS:
        return Decimal(counters.conversions)
    if metric == RewardTier.Metric.CONVERTED_AMOUNT:
        return counters.converted_amount
    return Decimal(counters.qualified)


@dataclass
class RecalcResult:
    unlocked: int = 0
    revoked: int = 0
    flagged: int = 0
    reinstated: int = 0


def ambassador_recalculate(*, ambassador_id: int) -> RecalcResult:
    """Bring an ambassador's grants in line with their counters. Safe to run any number of times."""
    result = RecalcResult()
    with transaction.atomic():
        # The lock serialises every recalculation of this ambassador: two workers never decide at once.
        counters = AmbassadorCounters.objects.select_for_update().filter(ambassador_id=ambassador_id).first()
        if counters is None:
            return result
        ambassador = Ambassador.objects.get(pk=ambassador_id)
        tiers = RewardTier.objects.filter(program_id=ambassador.program_id, kind=RewardTier.Kind.INDIVIDUAL)
        for tier in tiers:
            due = 0
            if tier.is_active and tier.threshold is not None:
                due = occurrences_due(metric_value(counters, tier.metric), tier.threshold, tier.repeat_every)
            _settle_grants(tier, ambassador, min(due, MAX_OCCURRENCES_PER_RUN), result)
            if tier.is_double_sided:
                _settle_welcome_grants(tier, ambassador, result)
    return result


def _settle_grants(tier: RewardTier, ambassador: Ambassador, due: int, result: RecalcResult) -> None:
    grants = {g.occurrence: g for g in RewardGrant.objects.filter(tier=tier, ambassador=ambassador)}
    for occurrence in range(1, due + 1):
        grant = grants.get(occurrence)
        if grant is None:
            if _grant_create(tier=tier, ambassador=ambassador, occurrence=occurrence) is not None:
                result.unlocked += 1
        elif grant.status == RewardGrant.Status.REVOKED or grant.flagged:
            _grant_reinstate(grant)
            result.reinstated += 1
    for occurrence, grant in grants.items():
        if occurrence > due:
            outcome = _grant_withdraw(grant, reason=f"{tier.name}: the count fell below occurrence {occurrence}.")
            if outcome == "revoked":
                result.revoked += 1
            elif outcome == "flagged":
                result.flagged += 1


def _settle_welcome_grants(tier: RewardTier, ambassador: Ambassador, result: RecalcResult) -> None:
    qualifying = Signup.objects.filter(ambassador=ambassador, status=Signup.Status.QUALIFIED)
    missing = qualifying.exclude(welcome_grants__tier=tier)
    for signup in missing:
        if _grant_create(tier=tier, referee_signup=signup, occurrence=1) is not None:
            result.unlocked += 1
    # A referee who qualifies again gets the welcome voucher back, as an ambassador gets a grant back.
    withdrawn = RewardGrant.objects.filter(tier=tier, referee_signup__in=qualifying).filter(
        Q(status=RewardGrant.Status.REVOKED) | Q(flagged=True)
    )
    for grant in withdrawn:
        _grant_reinstate(grant)
        result.reinstated += 1
    stale = RewardGrant.objects.filter(tier=tier, referee_signup__isnull=False).filter(
        Q(referee_signup__ambassador=ambassador) & ~Q(referee_signup__status=Signup.Status.QUALIFIED)
    )
    for grant in stale:
        outcome = _grant_withdraw(grant, reason="The referee's signup no longer qualifies.")
        if outcome == "revoked":
            result.revoked += 1


def _grant_create(
    *,
    tier: RewardTier,
    occurrence: int,
    ambassador: Ambassador | None = None,
    referee_signup: Signup | None = None,
) -> RewardGrant | None:
    try:
        with transaction.atomic():
            grant = RewardGrant.objects.create(
                tier=tier,
                ambassador=ambassador,
                referee_signup=referee_signup,
                occurrence=occurrence,
                voucher_code=voucher_code_generate(),
                created_at=timezone.now(),
            )
            _grant_audit(grant, "reward.unlocked", reason=f"{tier.name}, occurrence {occurrence}")
    except IntegrityError:
        # Already granted by a concurrent run: the unique constraint kept it to one.
        return None
    _notify(grant.pk, "unlocked")
    return grant


def _grant_reinstate(grant: RewardGrant) -> None:
    before = _grant_snapshot(grant)
    if grant.status == RewardGrant.Status.REDEEMED:
        # Flagged when its reason went away; the reason is back, so staff have nothing left to decide.
        grant.flagged = False
        grant.save(update_fields=["flagged"])
        _grant_audit(
            grant, "reward.unflagged", before=before, reason="Reached again: the redeemed voucher is earned after all."
        )
        return
    grant.status = RewardGrant.Status.UNLOCKED
    grant.revoked_at = None
    grant.voucher_code = voucher_code_generate()  # the revoked code stays dead
    grant.save(update_fields=["status", "revoked_at", "voucher_code"])
    _grant_audit(grant, "reward.unlocked", before=before, reason="Reached again after a revocation.")
    _notify(grant.pk, "unlocked")


def _grant_withdraw(grant: RewardGrant, *, reason: str) -> str:
    """Design 3: not yet redeemed -> revoked; redeemed -> flagged for staff. Returns what happened."""
    if grant.status == RewardGrant.Status.REVOKED or (grant.status == RewardGrant.Status.REDEEMED and grant.flagged):
        return "unchanged"
    before = _grant_snapshot(grant)
    if grant.status == RewardGrant.Status.REDEEMED:
        grant.flagged = True
        grant.save(update_fields=["flagged"])
        action, outcome = "reward.flagged", "flagged"
    else:
        grant.status = RewardGrant.Status.REVOKED
        grant.revoked_at = timezone.now()
        grant.save(update_fields=["status", "revoked_at"])
        action, outcome = "reward.revoked", "revoked"
    _grant_audit(grant, action, before=before, reason=reason)
    if outcome == "revoked":
        _notify(grant.pk, "revoked")
    return outcome


def _grant_audit(
    grant: RewardGrant, action: str, *, before: dict[str, Any] | None = None, reason: str = "", actor: Actor = SYSTEM
) -> None:
    audit_record(
        actor=actor,
        action=action,
        object_type="reward_grant",
        object_id=grant.pk,
        program_id=grant.tier.program_id,
        before=before,
        after=_grant_snapshot(grant),
        reason=reason,
    )


def _grant_snapshot(grant: RewardGrant) -> dict[str, Any]:
    return {
        "tier": grant.tier_id,
        "ambassador": grant.ambassador_id,
        "referee_signup": grant.referee_signup_id,
        "occurrence": grant.occurrence,
        "status": grant.status,
        "flagged": grant.flagged,
    }


def _notify(grant_id: int, event: str) -> None:
    def send() -> None:
        from rewards.tasks import grant_notify

        try:
            grant_notify.delay(grant_id, event)
        except Exception:
            logger.warning("e-mail for grant %s not enqueued", grant_id)

    transaction.on_commit(send)


def welcome_grants_withdraw_unreferred(*, program_id: int) -> int:
    """Revoke the welcome vouchers of referees whom no ambassador referred any more (an override to nobody).

    No ambassador's recalculation sees them, since the signup has no ambassador now. Returns how many.
    """
    revoked = 0
    candidates = (
        RewardGrant.objects.filter(
            tier__program_id=program_id, referee_signup__isnull=False, referee_signup__ambassador__isnull=True
        )
        .exclude(status=RewardGrant.Status.REVOKED)
        .exclude(status=RewardGrant.Status.REDEEMED, flagged=True)
        .values_list("pk", flat=True)
    )
    for grant_id in list(candidates):
        with transaction.atomic():
            # The lock keeps two workers sweeping at once from withdrawing (and e-mailing) twice.
            grant = RewardGrant.objects.select_for_update().select_related("tier").get(pk=grant_id)
            if _grant_withdraw(grant, reason="The referee is no longer referred by an ambassador.") == "revoked":
                revoked += 1
    return revoked


def grant_redeem(*, grant: RewardGrant, actor: Actor) -> RewardGrant:
    """Mark a voucher as used (the shop tells us, or staff do)."""
    with transaction.atomic():
        changed = RewardGrant.objects.filter(
            pk=grant.pk, status__in=[RewardGrant.Status.UNLOCKED, RewardGrant.Status.ISSUED]
        ).update(status=RewardGrant.Status.REDEEMED)
        if not changed:
            raise InvalidInput("Only an unlocked or issued voucher can be redeemed.", field="status")
        grant.refresh_from_db()
        _grant_audit(grant, "reward.redeemed", actor=actor)
    return grant


def program_recalculate(*, program_id: int) -> int:
    """Record every collective milestone the program's subscriber count has reached. Never removes one."""
    created = 0
    with transaction.atomic():
        # The lock serialises milestone decisions for the program: each step is reached exactly once.
        counters = ProgramCounters.objects.select_for_update().filter(program_id=program_id).first()
        if counters is None:
            return 0
        program = Program.objects.get(pk=program_id)
        for tier in RewardTier.objects.filter(program=program, kind=RewardTier.Kind.COLLECTIVE, is_active=True):
            if not tier.step:
                continue
            due = max(counters.qualified, 0) // tier.step
            last = Milestone.objects.filter(tier=tier).order_by("-occurrence").values_list("occurrence", flat=True)
            reached = last.first() or 0
            for occurrence in range(reached + 1, min(due, reached + MAX_OCCURRENCES_PER_RUN) + 1):
                try:
                    with transaction.atomic():
                        milestone = Milestone.objects.create(
                            tier=tier,
                            program=program,
                            occurrence=occurrence,
                            count_at=counters.qualified,
                            price_after=price_after(program, tier, occurrence),
                            reached_at=timezone.now(),
                        )
                        audit_record(
                            actor=SYSTEM,
                            action="milestone.reached",
                            object_type="milestone",
                            object_id=milestone.pk,
                            program_id=program.pk,
                            after={
                                "tier": tier.pk,
                                "occurrence": occurrence,
                                "count_at": counters.qualified,
                                "price_after": str(milestone.price_after),
                            },
                        )
                    created += 1
                except IntegrityError:
                    continue
    return created


# --- Reconciliation ----------------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    ambassadors_repaired: int = 0
    programs_repaired: int = 0
    ambassadors_recalculated: int = 0
    unlocked: int = 0
    revoked: int = 0
    milestones: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def reconcile(*, program: Program | None = None) -> ReconcileReport:
    """Recompute every counter from the source rows, repair drift, then grant what is missing.

    Run twice in a row, the second run changes nothing.
    """
    report = ReconcileReport()
    programs = Program.objects.all() if program is None else Program.objects.filter(pk=program.pk)
    for prog in programs.order_by("pk"):
        report.ambassadors_repaired += _repair_ambassador_counters(prog)
        report.programs_repaired += _repair_program_counters(prog)
        for ambassador_id in _ambassadors_needing_recalculation(prog):
            outcome = ambassador_recalculate(ambassador_id=ambassador_id)
            report.ambassadors_recalculated += 1
            report.unlocked += outcome.unlocked + outcome.reinstated
            report.revoked += outcome.revoked
        report.revoked += welcome_grants_withdraw_unreferred(program_id=prog.pk)
        report.milestones += program_recalculate(program_id=prog.pk)
    return report


def _repair_ambassador_counters(program: Program) -> int:
    signups = {
        row["ambassador_id"]: row
        for row in Signup.objects.filter(program=program, ambassador__isnull=False)
        .values("ambassador_id")
        .annotate(total=Count("id"), qualified=Count("id", filter=Q(status=Signup.Status.QUALIFIED)))
    }
    conversions = {
        row["signup__ambassador_id"]: row
        for row in Conversion.objects.filter(
            program=program,
            status=Conversion.Status.APPROVED,
            signup__status=Signup.Status.QUALIFIED,
            signup__ambassador__isnull=False,
        )
        .values("signup__ambassador_id")
        .annotate(count=Count("id"), amount=Sum("amount"))
    }
    repaired = 0
    existing = set(
        AmbassadorCounters.objects.filter(ambassador__program=program).values_list("ambassador_id", flat=True)
    )
    missing = Ambassador.objects.filter(program=program).exclude(pk__in=existing).values_list("pk", flat=True)
    AmbassadorCounters.objects.bulk_create(
        [AmbassadorCounters(ambassador_id=pk) for pk in missing], ignore_conflicts=True
    )
    stale: list[AmbassadorCounters] = []
    for counters in AmbassadorCounters.objects.filter(ambassador__program=program).iterator(chunk_size=5000):
        s = signups.get(counters.ambassador_id, {})
        c = conversions.get(counters.ambassador_id, {})
        truth = (
            s.get("total", 0),
            s.get("qualified", 0),
            c.get("count", 0),
            c.get("amount") or Decimal("0"),
        )
        if (counters.signups, counters.qualified, counters.conversions, counters.converted_amount) != truth:
            counters.signups, counters.qualified, counters.conversions, counters.converted_amount = truth
            stale.append(counters)
    for counters in stale:
        # Per row, and conditional on the value we read: an event that moved it meanwhile wins,
        # and the next run looks again.
        AmbassadorCounters.objects.filter(pk=counters.pk).update(
            signups=counters.signups,
            qualified=counters.qualified,
            conversions=counters.conversions,
            converted_amount=counters.converted_amount,
        )
        audit_record(
            actor=SYSTEM,
            action="counters.repaired",
            object_type="ambassador",
            object_id=counters.ambassador_id,
            program_id=program.pk,
            after={
                "signups": counters.signups,
                "qualified": counters.qualified,
                "conversions": counters.conversions,
                "converted_amount": str(counters.converted_amount),
            },
        )
        repaired += 1
    return repaired


def _repair_program_counters(program: Program) -> int:
    truth = Signup.objects.filter(program=program).aggregate(
        total=Count("id"), qualified=Count("id", filter=Q(status=Signup.Status.QUALIFIED))
    )
    counters, _ = ProgramCounters.objects.get_or_create(program=program)
    if (counters.signups, counters.qualified) == (truth["total"], truth["qualified"]):
        return 0
    ProgramCounters.objects.filter(pk=program.pk).update(signups=truth["total"], qualified=truth["qualified"])
    audit_record(
        actor=SYSTEM,
        action="counters.repaired",
        object_type="program",
        object_id=program.pk,
        program_id=program.pk,
        before={"signups": counters.signups, "qualified": counters.qualified},
        after={"signups": truth["total"], "qualified": truth["qualified"]},
    )
    return 1


def _ambassadors_needing_recalculation(program: Program) -> list[int]:
    """Ambassadors whose live grants differ from what their counters make due (bulk, no per-row query)."""
    tiers = list(RewardTier.objects.filter(program=program, kind=RewardTier.Kind.INDIVIDUAL))
    if not tiers:
        return []
    live = {
        (row["tier_id"], row["ambassador_id"]): row["n"]
        for row in RewardGrant.objects.filter(tier__in=tiers, ambassador__isnull=False)
        .exclude(status=RewardGrant.Status.REVOKED)
        .exclude(status=RewardGrant.Status.REDEEMED, flagged=True)
        .values("tier_id", "ambassador_id")
        .annotate(n=Count("id"))
    }
    needing: set[int] = set()
    for counters in AmbassadorCounters.objects.filter(ambassador__program=program).iterator(chunk_size=5000):
        for tier in tiers:
            due = 0
            if tier.is_active and tier.threshold is not None:
                due = min(
                    occurrences_due(metric_value(counters, tier.metric), tier.threshold, tier.repeat_every),
                    MAX_OCCURRENCES_PER_RUN,
                )
            if live.get((tier.pk, counters.ambassador_id), 0) != due:
                needing.add(counters.ambassador_id)
    double_sided = [t for t in tiers if t.is_double_sided]
    if double_sided:
        # Referees' welcome vouchers: ambassadors with a qualified signup lacking one, or a stale one.
        for tier in double_sided:
            live_welcome = (
                RewardGrant.objects.filter(tier=tier, referee_signup__isnull=False)
                .exclude(status=RewardGrant.Status.REVOKED)
                .exclude(status=RewardGrant.Status.REDEEMED, flagged=True)
            )
            needing.update(
                Signup.objects.filter(program=program, status=Signup.Status.QUALIFIED, ambassador__isnull=False)
                .exclude(pk__in=live_welcome.values("referee_signup_id"))
                .values_list("ambassador_id", flat=True)
            )
            needing.update(
                live_welcome.exclude(referee_signup__status=Signup.Status.QUALIFIED).values_list(
                    "referee_signup__ambassador_id", flat=True
                )
            )
    needing.discard(None)  # type: ignore[arg-type]
    return sorted(needing)
