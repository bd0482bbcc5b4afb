"""Reconciliation: recount from the source rows, repair drift, grant what a lost message missed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from ambassadors.models import Ambassador, AmbassadorCounters, Program, ProgramCounterDelta, ProgramCounters
from ambassadors.services import program_counts_pending, program_counts_take
from config import metrics
from core.audit import audit_record
from core.clock import now
from core.locking import transaction_retry
from referrals.models import Conversion, Signup
from rewards.models import RewardGrant, RewardTier
from rewards.services.grants import (
    SYSTEM,
    welcome_grants_withdraw_unreferred,
)
from rewards.services.recalculation import (
    ambassador_recalculate,
    program_recalculate,
    tier_due,
)


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


def reconcile(*, program: Program | None = None, on_progress: Callable[[], None] | None = None) -> ReconcileReport:
    """Recompute every counter from the source rows, repair drift, then grant what is missing.

    Run twice in a row, the second run changes nothing. ``on_progress`` is called after each committed
    step (one ambassador recalculated): the command's progress bar, which may stop the run there.
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
            if on_progress is not None:
                on_progress()
        report.revoked += welcome_grants_withdraw_unreferred(program_id=prog.pk)
        report.milestones += program_recalculate(program_id=prog.pk)
    # What it repaired is drift: /health/, check_parrain and /metrics report it.
    metrics.reconciliation_record(
        repairs={k: v for k, v in report.as_dict().items() if k != "ambassadors_recalculated"}, finished_at=now()
    )
    return report


def _repair_ambassador_counters(program: Program) -> int:
    """Find the counters that look drifted in bulk, then repair each under its lock (_ambassador_counters_repair)."""
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
    existing = set(
        AmbassadorCounters.objects.filter(ambassador__program=program).values_list("ambassador_id", flat=True)
    )
    missing = Ambassador.objects.filter(program=program).exclude(pk__in=existing).values_list("pk", flat=True)
    AmbassadorCounters.objects.bulk_create(
        [AmbassadorCounters(ambassador_id=pk) for pk in missing], ignore_conflicts=True
    )
    suspects: list[int] = []
    for counters in AmbassadorCounters.objects.filter(ambassador__program=program).iterator(chunk_size=5000):
        s = signups.get(counters.ambassador_id, {})
        c = conversions.get(counters.ambassador_id, {})
        truth = (s.get("total", 0), s.get("qualified", 0), c.get("count", 0), c.get("amount") or Decimal("0"))
        if _ambassador_values(counters) != truth:
            suspects.append(counters.ambassador_id)
    # The bulk recount above is read without locks: an event committed between it and the counters'
    # read looks like drift. Each suspect is recounted again under the writers' lock before anything is
    # written, so only real drift is repaired (and audited).
    return sum(_ambassador_counters_repair(program_id=program.pk, ambassador_id=pk) for pk in suspects)


def _ambassador_values(counters: AmbassadorCounters) -> tuple[int, int, int, Decimal]:
    return counters.signups, counters.qualified, counters.conversions, counters.converted_amount


def _counters_snapshot(values: tuple[int, int, int, Decimal]) -> dict[str, int | str]:
    signups, qualified, conversions, amount = values
    return {"signups": signups, "qualified": qualified, "conversions": conversions, "converted_amount": str(amount)}


@transaction_retry()
def _ambassador_counters_repair(*, program_id: int, ambassador_id: int) -> int:
    """Recount one ambassador from the source rows under the lock every writer takes; write if it differs."""
    with transaction.atomic():
        # Every event that changes this ambassador's counts updates this row in its own transaction: once
        # we hold it, each such event has either committed (our recount below sees it) or not yet reached
        # the row (its rows are invisible to us, and its increment lands on our value after we commit).
        counters = AmbassadorCounters.objects.select_for_update(no_key=True).get(ambassador_id=ambassador_id)
        signups = Signup.objects.filter(ambassador_id=ambassador_id).aggregate(
            total=Count("id"), qualified=Count("id", filter=Q(status=Signup.Status.QUALIFIED))
        )
        conversions = Conversion.objects.filter(
            status=Conversion.Status.APPROVED,
            signup__status=Signup.Status.QUALIFIED,
            signup__ambassador_id=ambassador_id,
        ).aggregate(count=Count("id"), amount=Sum("amount"))
        truth = (signups["total"], signups["qualified"], conversions["count"], conversions["amount"] or Decimal("0"))
        before = _ambassador_values(counters)
        if before == truth:
            return 0
        AmbassadorCounters.objects.filter(pk=counters.pk).update(
            signups=truth[0], qualified=truth[1], conversions=truth[2], converted_amount=truth[3]
        )
        audit_record(
            actor=SYSTEM,
            action="counters.repaired",
            object_type="ambassador",
            object_id=ambassador_id,
            program_id=program_id,
            before=_counters_snapshot(before),
            after=_counters_snapshot(truth),
        )
    return 1


def _repair_program_counters(program: Program) -> int:
    truth = Signup.objects.filter(program=program).aggregate(
        total=Count("id"), qualified=Count("id", filter=Q(status=Signup.Status.QUALIFIED))
    )
    counters, _ = ProgramCounters.objects.get_or_create(program=program)
    pending_signups, pending_qualified = program_counts_pending(program_id=program.pk)
    shown = (counters.signups + pending_signups, counters.qualified + pending_qualified)
    if shown == (truth["total"], truth["qualified"]):
        return 0
    # Read without a lock, as above: recount under the folds' lock before believing it.
    return _program_counters_repair(program_id=program.pk)


def _take_and_recount(program_id: int) -> tuple[int, int, int, int]:
    """(signups, qualified) of the program's rows, and of the delta rows taken, as of one moment.

    A signup inserts its row and its delta in one transaction: seen from one snapshot, each signup is
    in both or in neither. On PostgreSQL one statement gives that snapshot; elsewhere (SQLite, one
    writer at a time) the DELETE takes the write lock first, so nothing commits until we do.
    """
    signups_table = connection.ops.quote_name(Signup._meta.db_table)
    if connection.vendor == "postgresql":
        deltas_table = connection.ops.quote_name(ProgramCounterDelta._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH taken AS (DELETE FROM {deltas_table} WHERE program_id = %s RETURNING signups, qualified) "  # noqa: S608
                f"SELECT (SELECT count(*) FROM {signups_table} WHERE program_id = %s), "
                f"(SELECT count(*) FROM {signups_table} WHERE program_id = %s AND status = %s), "
                "(SELECT coalesce(sum(signups), 0) FROM taken), (SELECT coalesce(sum(qualified), 0) FROM taken)",
                [program_id, program_id, program_id, Signup.Status.QUALIFIED],
            )
            total, qualified, taken_signups, taken_qualified = cursor.fetchone()
        return total, qualified, taken_signups, taken_qualified
    taken_signups, taken_qualified = program_counts_take(program_id=program_id)
    truth = Signup.objects.filter(program_id=program_id).aggregate(
        total=Count("id"), qualified=Count("id", filter=Q(status=Signup.Status.QUALIFIED))
    )
    return truth["total"], truth["qualified"], taken_signups, taken_qualified


@transaction_retry()
def _program_counters_repair(*, program_id: int) -> int:
    with transaction.atomic():
        # The lock every fold takes (program_recalculate): no delta row is added while we hold it.
        counters = ProgramCounters.objects.select_for_update(no_key=True).get(program_id=program_id)
        total, qualified, taken_signups, taken_qualified = _take_and_recount(program_id)
        shown = (counters.signups + taken_signups, counters.qualified + taken_qualified)
        if shown != (counters.signups, counters.qualified) or shown != (total, qualified):
            ProgramCounters.objects.filter(pk=program_id).update(
                signups=total, qualified=qualified, updated_at=timezone.now()
            )
        if shown == (total, qualified):
            return 0  # only folded: no drift
        audit_record(
            actor=SYSTEM,
            action="counters.repaired",
            object_type="program",
            object_id=program_id,
            program_id=program_id,
            before={"signups": shown[0], "qualified": shown[1]},
            after={"signups": total, "qualified": qualified},
        )
    return 1


def _ambassadors_needing_recalculation(program: Program) -> list[int]:
    """Ambassadors whose live grants differ from what their counters make due (bulk, no per-row query)."""
    # Inactive tiers are frozen (recalculation.py): nothing is due from them, nothing to take back.
    tiers = list(RewardTier.objects.filter(program=program, kind=RewardTier.Kind.INDIVIDUAL, is_active=True))
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
            if live.get((tier.pk, counters.ambassador_id), 0) != tier_due(tier, counters):
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
