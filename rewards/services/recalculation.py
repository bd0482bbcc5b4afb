"""Recalculation: bringing an ambassador's grants and a program's milestones in line with their counters.

Exactly once comes from the database: recalculations lock the counters row they read (one per
ambassador, one per program), and unique constraints on (tier, ambassador, occurrence) and
(tier, occurrence) refuse any duplicate that would slip through anyway. Lock order: core.locking.

An inactive tier is frozen: it unlocks nothing new (no welcome voucher either) and takes nothing back.
Deactivating stops new unlocks only; a reward is withdrawn only when an active tier's count really fell.
Reactivating it grants what became due meanwhile (and withdraws what no longer is).

A program's counters are folded, not updated by each signup: a signup inserts a ProgramCounterDelta row
(ambassadors.services.counters_add), and program_recalculate, run by the task the signup enqueues after
its commit, deletes the program's committed delta rows and adds them to the counters row under that row's
lock, in the transaction that then records the milestones. The signups of a launch never wait for one
another; the displayed count lags a signup by that task's round trip (a periodic sweep, fold_counts,
catches a lost message). The tasks themselves are coalesced per program (rewards.pending): a burst of
signups publishes one message per run of the worker, not one per signup."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ambassadors.models import Ambassador, AmbassadorCounters, Program, ProgramCounterDelta, ProgramCounters
from ambassadors.services import program_counts_take
from core.audit import audit_record
from core.locking import transaction_retry
from referrals.models import Signup
from rewards import pending
from rewards.models import Milestone, RewardGrant, RewardTier
from rewards.pricing import occurrences_due, price_after
from rewards.services.grants import (
    SYSTEM,
    grant_create,
    grant_reinstate,
    grant_withdraw,
    welcome_grants_withdraw_unreferred,
)

logger = logging.getLogger(__name__)

# A misconfigured "every 1 cent" tier must not create millions of rows in one run.
MAX_OCCURRENCES_PER_RUN = 1000


def recalculation_enqueue(*, program_id: int, ambassador_ids: list[int] | None) -> None:
    """After commit, ask a worker to recalculate. `None` means every ambassador of the program.

    Changes of a few ambassadors are coalesced per program (rewards.pending): the first change marks the
    program and publishes one `rewards.recalculate_pending`, due RECALCULATION_DELAY_MS later; the changes
    that commit before that task starts only add their ambassadors to its mark. Eager tasks (the embedded
    default) run at once. A broker that is down loses the mark and the message, not the reward: the sweep
    folds the counts and the reconciliation grants what is due.
    """

    def send() -> None:
        from rewards.tasks import recalculate, recalculate_pending

        try:
            if ambassador_ids is None or recalculate.app.conf.task_always_eager:
                recalculate.delay(program_id, ambassador_ids)
                return
            # The mark lives in the broker's Redis: when it fails, so would the message.
            if pending.mark(program_id, ambassador_ids):
                delay_ms = settings.RECALCULATION_DELAY_MS
                recalculate_pending.apply_async((program_id,), countdown=delay_ms / 1000 if delay_ms else None)
        except Exception:
            logger.warning(
                "recalculation of program %s not enqueued; reconciliation will catch up", program_id, exc_info=True
            )

    transaction.on_commit(send)


def pending_recalculate(*, program_id: int) -> int:
    """What `rewards.recalculate_pending` does: unmark the program, recalculate the ambassadors marked and
    the program, then forget those ambassadors (unless marked again meanwhile). Returns the ambassadors
    recalculated. Safe to run any number of times, and with nothing marked (it then folds the program)."""
    taken = pending.take(program_id)
    for ambassador_id in sorted(taken):
        ambassador_recalculate(ambassador_id=ambassador_id)
    welcome_grants_withdraw_unreferred(program_id=program_id)
    program_recalculate(program_id=program_id)
    pending.clear(program_id, taken)
    return len(taken)


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


def tier_due(tier: RewardTier, counters: AmbassadorCounters) -> int:
    """Occurrences of an active individual tier the counters make due (capped per run)."""
    if tier.threshold is None:
        return 0
    due = occurrences_due(metric_value(counters, tier.metric), tier.threshold, tier.repeat_every)
    return min(due, MAX_OCCURRENCES_PER_RUN)


@transaction_retry()
def ambassador_recalculate(*, ambassador_id: int) -> RecalcResult:
    """Bring an ambassador's grants in line with their counters. Safe to run any number of times."""
    result = RecalcResult()
    with transaction.atomic():
        # The lock serialises every recalculation of this ambassador: two workers never decide at once.
        # Step 4 of core.locking's order; what follows takes grants only (step 5). The welcome vouchers
        # created below refer to signups (step 1), checked at COMMIT in FOR KEY SHARE mode, which no
        # writer's FOR NO KEY UPDATE on a signup blocks.
        counters = AmbassadorCounters.objects.select_for_update(no_key=True).filter(ambassador_id=ambassador_id).first()
        if counters is None:
            return result
        ambassador = Ambassador.objects.get(pk=ambassador_id)
        tiers = RewardTier.objects.filter(
            program_id=ambassador.program_id, kind=RewardTier.Kind.INDIVIDUAL, is_active=True
        )
        for tier in tiers:
            _settle_grants(tier, ambassador, tier_due(tier, counters), result)
            if tier.is_double_sided:
                _settle_welcome_grants(tier, ambassador, result)
    return result


def _settle_grants(tier: RewardTier, ambassador: Ambassador, due: int, result: RecalcResult) -> None:
    grants = {g.occurrence: g for g in RewardGrant.objects.filter(tier=tier, ambassador=ambassador)}
    for occurrence in range(1, due + 1):
        grant = grants.get(occurrence)
        if grant is None:
            if grant_create(tier=tier, ambassador=ambassador, occurrence=occurrence) is not None:
                result.unlocked += 1
        elif (grant.status == RewardGrant.Status.REVOKED or grant.flagged) and grant_reinstate(grant):
            result.reinstated += 1
    for occurrence, grant in grants.items():
        if occurrence > due:
            outcome = grant_withdraw(grant, reason=f"{tier.name}: the count fell below occurrence {occurrence}.")
            if outcome == "revoked":
                result.revoked += 1
            elif outcome == "flagged":
                result.flagged += 1


def _settle_welcome_grants(tier: RewardTier, ambassador: Ambassador, result: RecalcResult) -> None:
    qualifying = Signup.objects.filter(ambassador=ambassador, status=Signup.Status.QUALIFIED)
    missing = qualifying.exclude(welcome_grants__tier=tier)
    for signup in missing:
        if grant_create(tier=tier, referee_signup=signup, occurrence=1) is not None:
            result.unlocked += 1
    # A referee who qualifies again gets the welcome voucher back, as an ambassador gets a grant back.
    withdrawn = RewardGrant.objects.filter(tier=tier, referee_signup__in=qualifying).filter(
        Q(status=RewardGrant.Status.REVOKED) | Q(flagged=True)
    )
    for grant in withdrawn:
        if grant_reinstate(grant):
            result.reinstated += 1
    stale = RewardGrant.objects.filter(tier=tier, referee_signup__isnull=False).filter(
        Q(referee_signup__ambassador=ambassador) & ~Q(referee_signup__status=Signup.Status.QUALIFIED)
    )
    for grant in stale:
        outcome = grant_withdraw(grant, reason="The referee's signup no longer qualifies.")
        if outcome == "revoked":
            result.revoked += 1


@transaction_retry()
def program_recalculate(*, program_id: int) -> int:
    """Fold the program's new signups into its counters, then record every collective milestone the
    subscriber count has reached. Never removes one."""
    created = 0
    announce: Milestone | None = None  # the run's last milestone that lowered the price
    if not ProgramCounters.objects.filter(program_id=program_id).exists():
        if not Program.objects.filter(pk=program_id).exists():
            return 0
        ProgramCounters.objects.get_or_create(program_id=program_id)
    with transaction.atomic():
        # The lock serialises folds and milestone decisions for the program: each delta row is added
        # once (deleted in the transaction that adds it), each step reached exactly once. Step 3 of
        # core.locking's order, then milestones (step 5). Only workers (and the reconciliation) take
        # it: signups insert their delta rows and never wait for it.
        counters = ProgramCounters.objects.select_for_update(no_key=True).get(program_id=program_id)
        signups, qualified = program_counts_take(program_id=program_id)
        if signups or qualified:
            counters.signups += signups
            counters.qualified += qualified
            ProgramCounters.objects.filter(pk=program_id).update(
                signups=counters.signups, qualified=counters.qualified, updated_at=timezone.now()
            )
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
                before = price_after(program, tier, occurrence - 1)
                if milestone.price_after is not None and before is not None and milestone.price_after < before:
                    announce = milestone
        if announce is not None:
            price_drop_enqueue(milestone_id=announce.pk)
    return created


def program_counts_fold_pending() -> int:
    """Fold every program that has signups not counted yet, and recalculate every program with ambassadors
    still marked pending (the periodic sweep, rewards.fold_counts).

    A change's own recalculation handles it within the task's round trip; this catches those whose message
    the broker lost, within the sweep's period rather than the reconciliation's. Returns the programs done.
    """
    from rewards.tasks import recalculate

    program_ids = set(ProgramCounterDelta.objects.values_list("program_id", flat=True).distinct())
    try:
        # Eager tasks (the embedded default) never mark: they recalculate as each change commits.
        marked = set() if recalculate.app.conf.task_always_eager else set(pending.pending_programs())
    except redis.RedisError:
        logger.warning("pending recalculations not swept: Redis failed", exc_info=True)
        marked = set()
    for program_id in sorted(program_ids | marked):
        if program_id in marked:
            pending_recalculate(program_id=program_id)
        else:
            program_recalculate(program_id=program_id)
    return len(program_ids | marked)


def price_drop_enqueue(*, milestone_id: int) -> None:
    """After commit, e-mail "the price dropped" (rewards.notifications). Several steps reached in one run
    make one e-mail, about the last. A broker that is down loses this e-mail, as it would lose any."""

    def send() -> None:
        from rewards.tasks import price_drop_announce

        try:
            price_drop_announce.delay(milestone_id)
        except Exception:
            logger.warning("price-drop e-mail of milestone %s not enqueued", milestone_id, exc_info=True)

    transaction.on_commit(send)
