"""Paying cash rewards: what each ambassador is owed, payout runs per program and period, marking a run paid
exactly once, and its exports (CSV, SEPA credit transfer XML).

The ledger is the payout lines: a cash grant is owed until a PAID payment line holds it, and a grant revoked
after it was paid is owed back until a PAID reversal line holds it. The database keeps each at most once
(PayoutLine's `payout_grant_paid_once`), and marking a run paid locks the grants first, so two runs
holding the same grant pay it once: the second skips that line and says which run paid it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from ambassadors.models import Ambassador, Program
from core import clock, policies
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidInput
from core.locking import transaction_retry
from core.text import plain_text
from rewards.models import PayoutDetails, PayoutLine, PayoutRun, PayoutSettings, RewardGrant, RewardTier
from rewards.services.tiers import currency_digits

HOLD_DAYS_MAX = 3650
SEPA_CURRENCY = "EUR"
# Grants that still stand: a revoked one is not owed, a flagged one waits for staff to decide.
_STANDING = (RewardGrant.Status.UNLOCKED, RewardGrant.Status.ISSUED, RewardGrant.Status.REDEEMED)


# Who may: core.policies.may_manage_payouts, may_read_payouts and may_set_payout_details. Re-exported here so
# that callers importing them from this module keep working.
may_manage_payouts = policies.may_manage_payouts
may_set_payout_details = policies.may_set_payout_details


# --- Bank details ------------------------------------------------------------------------------------

_IBAN_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
_BIC_SHAPE = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")


def iban_normalize(value: str, *, field: str = "iban") -> str:
    """The IBAN compact and upper case, its ISO 7064 check digits verified (mod 97 == 1)."""
    compact = re.sub(r"[\s-]", "", str(value or "")).upper()
    if not compact:
        raise InvalidInput("Enter an IBAN.", field=field)
    if not _IBAN_SHAPE.match(compact):
        raise InvalidInput(
            "This is not an IBAN: two letters, two digits, then up to 30 letters or digits.", field=field
        )
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    if int(digits) % 97 != 1:
        raise InvalidInput("This IBAN's check digits are wrong: please check it for a typo.", field=field)
    return compact


def bic_normalize(value: str, *, field: str = "bic") -> str:
    """A BIC (8 or 11 characters) upper case, or "" when none is given."""
    compact = re.sub(r"\s", "", str(value or "")).upper()
    if compact and not _BIC_SHAPE.match(compact):
        raise InvalidInput("This is not a BIC: 8 or 11 letters and digits.", field=field)
    return compact


def payout_details_set(
    *, ambassador: Ambassador, actor: Actor, account_holder: str, iban: str, bic: str = ""
) -> PayoutDetails:
    """Save where the ambassador's cash rewards are paid; audited with the IBAN masked."""
    holder = plain_text(account_holder, field="account_holder", max_length=70, required=True)
    details_iban = iban_normalize(iban)
    details_bic = bic_normalize(bic)
    with transaction.atomic():
        details, created = PayoutDetails.objects.select_for_update().get_or_create(
            ambassador=ambassador,
            defaults={"account_holder": holder, "iban": details_iban, "bic": details_bic},
        )
        before = None if created else _details_snapshot(details)
        details.account_holder, details.iban, details.bic = holder, details_iban, details_bic
        details.save()
        audit_record(
            actor=actor,
            action="payout.details_set",
            object_type="ambassador",
            object_id=ambassador.pk,
            program_id=ambassador.program_id,
            before=before,
            after=_details_snapshot(details),
        )
    return details


def _details_snapshot(details: PayoutDetails) -> dict[str, Any]:
    # Never the whole IBAN in the audit trail: auditors read it, and it is the ambassador's bank account.
    return {"account_holder": details.account_holder, "iban": details.iban_masked, "bic": details.bic}


# --- The program's settings --------------------------------------------------------------------------


def payout_settings_of(program: Program) -> PayoutSettings:
    """The program's payout settings (not saved when it has none: a 30-day hold, no debtor account)."""
    found = PayoutSettings.objects.filter(program=program).first()
    return found if found is not None else PayoutSettings(program=program)


def payout_configure(
    *,
    program: Program,
    actor: Actor,
    hold_days: int,
    debtor_name: str = "",
    debtor_iban: str = "",
    debtor_bic: str = "",
) -> PayoutSettings:
    if isinstance(hold_days, bool) or not isinstance(hold_days, int) or not 0 <= hold_days <= HOLD_DAYS_MAX:
        raise InvalidInput(f"The hold is from 0 to {HOLD_DAYS_MAX} days.", field="hold_days")
    name = plain_text(debtor_name, field="debtor_name", max_length=70) or ""
    iban = iban_normalize(debtor_iban, field="debtor_iban") if (debtor_iban or "").strip() else ""
    bic = bic_normalize(debtor_bic, field="debtor_bic")
    with transaction.atomic():
        config, _created = PayoutSettings.objects.select_for_update().get_or_create(program=program)
        before = _settings_snapshot(config)
        config.hold_days, config.debtor_name, config.debtor_iban, config.debtor_bic = hold_days, name, iban, bic
        config.save()
        audit_record(
            actor=actor,
            action="payout.configured",
            object_type="program",
            object_id=program.pk,
            program_id=program.pk,
            before=before,
            after=_settings_snapshot(config),
        )
    return config


def _settings_snapshot(config: PayoutSettings) -> dict[str, Any]:
    return {
        "hold_days": config.hold_days,
        "debtor_name": config.debtor_name,
        "debtor_iban": config.debtor_iban,
        "debtor_bic": config.debtor_bic,
    }


# --- What is owed ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OwedLine:
    """One line a payout would hold: a grant to pay, or one to take back (negative)."""

    ambassador_id: int
    grant_id: int
    kind: str
    amount_minor: int
    currency: str


@dataclass
class Balance:
    """What one ambassador is owed in one currency (negative: they owe it back, carried forward)."""

    ambassador_id: int
    currency: str
    amount_minor: int = 0
    lines: int = 0


def minor_units(amount: Decimal, currency: str) -> int:
    """`amount` (Decimal, major units) as integer minor units of `currency`: 12.30 EUR -> 1230."""
    digits = currency_digits(currency)
    if digits is None:
        raise InvalidInput(f"Unknown currency {currency}.", field="currency")
    scaled = amount.scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise InvalidInput(f"{amount} has more decimal places than {currency} allows.", field="amount")
    return int(scaled)


def major_units(amount_minor: int, currency: str) -> Decimal:
    """Integer minor units back as a Decimal of the currency's places: 1230 EUR -> Decimal("12.30")."""
    digits = currency_digits(currency) or 0
    return Decimal(amount_minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def _paid_line(kind: str) -> Exists:
    return Exists(PayoutLine.objects.filter(grant=OuterRef("pk"), kind=kind, status=PayoutLine.Status.PAID))


def owed_lines(program: Program, *, until: datetime, now: datetime | None = None) -> list[OwedLine]:
    """Every line owed now for grants unlocked before `until`: cash grants still standing, past the hold, not
    paid yet; and reversals of grants paid then revoked (whenever they were unlocked). Two queries."""
    now = now or clock.now()
    hold_days = payout_settings_of(program).hold_days
    cash = RewardGrant.objects.filter(
        tier__program=program,
        tier__reward_type=RewardTier.RewardType.CASH,
        tier__reward_value__gt=0,  # always, by tier_cash_has_amount_and_currency
        ambassador__isnull=False,
    )
    payments = (
        cash.filter(status__in=_STANDING, flagged=False, created_at__lt=until)
        .filter(created_at__lte=now - timedelta(days=hold_days))
        .exclude(_paid_line(PayoutLine.Kind.PAYMENT))
        .values_list("pk", "ambassador_id", "tier__reward_value", "tier__reward_currency")
        .order_by("ambassador_id", "pk")
    )
    lines = [
        OwedLine(ambassador_id, grant_id, PayoutLine.Kind.PAYMENT, minor_units(value, currency), currency)
        for grant_id, ambassador_id, value, currency in payments
        if value is not None
    ]
    # What was paid for a grant since revoked: taken back at the paid amount, whatever the tier says now.
    reversals = (
        PayoutLine.objects.filter(
            run__program=program,
            kind=PayoutLine.Kind.PAYMENT,
            status=PayoutLine.Status.PAID,
            grant__status=RewardGrant.Status.REVOKED,
        )
        .exclude(
            Exists(
                PayoutLine.objects.filter(
                    grant=OuterRef("grant"), kind=PayoutLine.Kind.REVERSAL, status=PayoutLine.Status.PAID
                )
            )
        )
        .values_list("grant_id", "ambassador_id", "amount_minor", "currency")
        .order_by("ambassador_id", "grant_id")
    )
    lines += [
        OwedLine(ambassador_id, grant_id, PayoutLine.Kind.REVERSAL, -amount, currency)
        for grant_id, ambassador_id, amount, currency in reversals
    ]
    return sorted(lines, key=lambda line: (line.ambassador_id, line.grant_id, line.kind))


def balances_owed(program: Program, *, now: datetime | None = None) -> list[Balance]:
    """Each ambassador's balance per currency, as a run created now for a period ending today would hold."""
    now = now or clock.now()
    return _balances(owed_lines(program, until=now, now=now))


def _balances(lines: Any) -> list[Balance]:
    by_key: dict[tuple[int, str], Balance] = {}
    for line in lines:
        balance = by_key.setdefault((line.ambassador_id, line.currency), Balance(line.ambassador_id, line.currency))
        balance.amount_minor += line.amount_minor
        balance.lines += 1
    return sorted(by_key.values(), key=lambda b: (b.currency, -b.amount_minor, b.ambassador_id))


def totals_by_currency(lines: Any) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        totals[line.currency] += line.amount_minor
    return dict(sorted(totals.items()))


# --- Runs --------------------------------------------------------------------------------------------


def period_bounds(period_start: date, period_end: date) -> tuple[datetime, datetime]:
    """The period's days as aware UTC moments: from the start of the first to the end of the last."""
    return (
        datetime.combine(period_start, time.min, tzinfo=UTC),
        datetime.combine(period_end + timedelta(days=1), time.min, tzinfo=UTC),
    )


def payout_run_create(*, program: Program, period_start: date, period_end: date, actor: Actor) -> PayoutRun:
    """A draft run holding every line owed now for grants unlocked up to the period's end (earlier ones not
    paid yet included: a balance carried forward is owed still). Several drafts may hold the same grant:
    marking paid settles it once (payout_run_mark_paid)."""
    if period_end < period_start:
        raise InvalidInput("The period ends before it starts.", field="period_end")
    now = clock.now()
    if period_start > now.date():
        raise InvalidInput("The period cannot start in the future.", field="period_start")
    _start, until = period_bounds(period_start, period_end)
    with transaction.atomic():
        lines = owed_lines(program, until=until, now=now)
        if not lines:
            raise InvalidInput("Nothing is owed for this period: no cash reward is past its hold and unpaid.")
        run = PayoutRun.objects.create(
            program=program,
            period_start=period_start,
            period_end=period_end,
            created_at=now,
            created_by=actor.label,
        )
        PayoutLine.objects.bulk_create(
            PayoutLine(
                run=run,
                ambassador_id=line.ambassador_id,
                grant_id=line.grant_id,
                kind=line.kind,
                amount_minor=line.amount_minor,
                currency=line.currency,
            )
            for line in lines
        )
        audit_record(
            actor=actor,
            action="payout.run_created",
            object_type="payout_run",
            object_id=run.pk,
            program_id=program.pk,
            after={
                "period_start": period_start.isoformat(),
                "period_end": period_end.isoformat(),
                "lines": len(lines),
                "totals_minor": totals_by_currency(lines),
            },
        )
    return run


@dataclass
class PaidOutcome:
    run: PayoutRun
    paid: list[PayoutLine] = field(default_factory=list)
    skipped: list[PayoutLine] = field(default_factory=list)


@transaction_retry()
def payout_run_mark_paid(*, run: PayoutRun, actor: Actor, reason: str = "") -> PaidOutcome:
    """Mark the run's lines paid, in one transaction with one audit event listing each line's outcome.

    Exactly once: the run's grants are locked (step 5 of core.locking's order, ascending ids) before the
    ledger is read, so two runs holding the same grant, marked paid at the same moment, are settled one
    after the other; the second sees the first's PAID lines and skips those, naming the run that paid them.
    `payout_grant_paid_once` is the database's last word if any path forgets the lock. A line is skipped
    too when its grant changed since the draft (revoked, flagged, reinstated), and every line of an
    ambassador whose total in a currency is not above zero: it stays owed, carried to the next run.
    """
    reason = plain_text(reason, field="reason", max_length=500) or ""
    with transaction.atomic():
        # The run's own row: two clicks on "Mark paid" for the same run pay it once.
        locked = PayoutRun.objects.select_for_update(no_key=True, of=("self",)).select_related("program").get(pk=run.pk)
        if locked.state == PayoutRun.State.PAID:
            raise Conflict(
                f"This payout was already marked paid on {locked.paid_at:%Y-%m-%d %H:%M} UTC "
                f"by {locked.paid_by or 'someone'}."
            )
        lines = list(locked.lines.order_by("ambassador_id", "grant_id", "kind"))
        grant_ids = sorted({line.grant_id for line in lines})
        # Step 5: the grants this run pays, FOR NO KEY UPDATE, ascending: what serialises overlapping runs.
        grants = {
            pk: (status, flagged)
            for pk, status, flagged in RewardGrant.objects.select_for_update(no_key=True, of=("self",))
            .filter(pk__in=grant_ids)
            .order_by("pk")
            .values_list("pk", "status", "flagged")
        }
        # Read after the locks: a run that paid one of these grants has committed by now.
        paid_elsewhere = dict(
            (((grant_id, kind), run_id))
            for grant_id, kind, run_id in PayoutLine.objects.filter(
                grant_id__in=grant_ids, status=PayoutLine.Status.PAID
            )
            .exclude(run=locked)
            .values_list("grant_id", "kind", "run_id")
        )
        payable: list[PayoutLine] = []
        skipped: list[PayoutLine] = []
        for line in lines:
            line.skip_reason = _why_not_payable(line, grants.get(line.grant_id), paid_elsewhere)
            (skipped if line.skip_reason else payable).append(line)
        # Not above zero in a currency (a refund taken back exceeds what is owed): nothing is paid, carried.
        for balance in _balances(payable):
            if balance.amount_minor <= 0:
                carried = [
                    line
                    for line in payable
                    if (line.ambassador_id, line.currency) == (balance.ambassador_id, balance.currency)
                ]
                for line in carried:
                    line.skip_reason = (
                        f"The ambassador's balance in {balance.currency} is not above zero "
                        f"({major_units(balance.amount_minor, balance.currency)}): carried to the next payout."
                    )
                payable = [line for line in payable if line not in carried]
                skipped += carried
        now = clock.now()
        for line in payable:
            line.status, line.skip_reason = PayoutLine.Status.PAID, ""
        for line in skipped:
            line.status = PayoutLine.Status.SKIPPED
        PayoutLine.objects.bulk_update([*payable, *skipped], ["status", "skip_reason"])
        locked.state, locked.paid_at, locked.paid_by = PayoutRun.State.PAID, now, actor.label
        locked.save(update_fields=["state", "paid_at", "paid_by"])
        run.state, run.paid_at, run.paid_by = locked.state, locked.paid_at, locked.paid_by
        audit_record(
            actor=actor,
            action="payout.run_paid",
            object_type="payout_run",
            object_id=locked.pk,
            program_id=locked.program_id,
            before={"state": PayoutRun.State.DRAFT},
            after={
                "state": PayoutRun.State.PAID,
                "totals_minor": totals_by_currency(payable),
                "paid": [_line_record(line) for line in payable],
                "skipped": [{**_line_record(line), "reason": line.skip_reason} for line in skipped],
            },
            reason=reason,
        )
    return PaidOutcome(run=locked, paid=payable, skipped=sorted(skipped, key=lambda x: (x.ambassador_id, x.grant_id)))


def _why_not_payable(line: PayoutLine, grant: tuple[str, bool] | None, paid_elsewhere: dict[Any, int]) -> str:
    other_run = paid_elsewhere.get((line.grant_id, line.kind))
    if other_run is not None:
        done = "paid" if line.kind == PayoutLine.Kind.PAYMENT else "taken back"
        return f"Already {done} in payout #{other_run}: a reward is paid once."
    if grant is None:
        return "The reward no longer exists."
    status, flagged = grant
    if line.kind == PayoutLine.Kind.PAYMENT:
        if status == RewardGrant.Status.REVOKED:
            return "The reward was revoked after this payout was drafted."
        if flagged:
            return "The reward is flagged for staff to decide."
    elif status != RewardGrant.Status.REVOKED:
        return "The reward was reinstated after this payout was drafted: nothing to take back."
    return ""


def _line_record(line: PayoutLine) -> dict[str, Any]:
    return {
        "line": line.pk,
        "ambassador": line.ambassador_id,
        "grant": line.grant_id,
        "kind": line.kind,
        "amount_minor": line.amount_minor,
        "currency": line.currency,
    }


# --- Reading a run, and its files --------------------------------------------------------------------


@dataclass
class RunAmbassador:
    """One ambassador's part of a run in one currency: the lines counted, the total, and the SEPA outcome."""

    ambassador: Ambassador
    currency: str
    amount_minor: int
    lines: list[PayoutLine]
    details: PayoutDetails | None
    sepa_reason: str = ""  # why not in the SEPA file ("" when it is)

    @property
    def amount(self) -> Decimal:
        return major_units(self.amount_minor, self.currency)


def run_lines(run: PayoutRun) -> list[PayoutLine]:
    """The run's lines with their ambassador, grant, tier and bank details: one query."""
    return list(
        run.lines.select_related("ambassador", "ambassador__payout_details", "grant__tier").order_by(
            "ambassador_id", "currency", "grant_id", "kind"
        )
    )


def _counted(run: PayoutRun, line: PayoutLine) -> bool:
    # A draft counts every line it proposes; a paid run only what it paid.
    return line.status == (PayoutLine.Status.PAID if run.state == PayoutRun.State.PAID else PayoutLine.Status.PENDING)


def run_ambassadors(run: PayoutRun, lines: list[PayoutLine]) -> list[RunAmbassador]:
    groups: dict[tuple[int, str], RunAmbassador] = {}
    for line in lines:
        if not _counted(run, line):
            continue
        details = getattr(line.ambassador, "payout_details", None) if _has_details(line.ambassador) else None
        group = groups.setdefault(
            (line.ambassador_id, line.currency), RunAmbassador(line.ambassador, line.currency, 0, [], details)
        )
        group.amount_minor += line.amount_minor
        group.lines.append(line)
    for group in groups.values():
        group.sepa_reason = _sepa_reason(run, group)
    return sorted(groups.values(), key=lambda g: (g.currency, g.ambassador.pk))


def _has_details(ambassador: Ambassador) -> bool:
    try:
        ambassador.payout_details  # noqa: B018 (the reverse one-to-one raises when there is none)
    except PayoutDetails.DoesNotExist:
        return False
    return True


def _sepa_reason(run: PayoutRun, group: RunAmbassador) -> str:
    if group.currency != SEPA_CURRENCY:
        return f"SEPA transfers pay euros only: pay this {group.currency} amount another way."
    if group.amount_minor <= 0:
        return "The balance is not above zero: nothing to pay, carried to the next payout."
    if group.details is None:
        return "No bank details: the ambassador has not given an IBAN yet. Pay another way, or ask them for it."
    if run.state != PayoutRun.State.PAID:
        return ""  # in the file once the run is marked paid
    return ""


CSV_HEADER = (
    "run", "period_start", "period_end", "line", "status", "ambassador_code", "ambassador_name", "ambassador_email",
    "account_holder", "iban", "grant", "tier", "kind", "amount", "currency", "note",
)  # fmt: skip


def run_csv_rows(run: PayoutRun) -> Iterator[tuple[Any, ...]]:
    """One row per line of the run (skipped ones too, with why), amounts as exact decimals. The IBAN is
    masked: the SEPA file is the one that carries it whole. Lines come from one query read in chunks."""
    queryset = (
        run.lines.select_related("ambassador", "ambassador__payout_details", "grant__tier")
        .order_by("ambassador_id", "currency", "grant_id", "kind")
        .iterator(chunk_size=2000)
    )
    for line in queryset:
        details = line.ambassador.payout_details if _has_details(line.ambassador) else None
        yield (
            run.pk,
            run.period_start,
            run.period_end,
            line.pk,
            line.status,
            line.ambassador.code,
            line.ambassador.display_name,
            line.ambassador.email,
            details.account_holder if details else "",
            details.iban_masked if details else "",
            line.grant_id,
            line.grant.tier.name,
            line.kind,
            major_units(line.amount_minor, line.currency),
            line.currency,
            line.skip_reason,
        )


def run_sepa_xml(run: PayoutRun) -> bytes:
    """The SEPA credit transfer (pain.001.001.03) of a paid run: one transfer per ambassador whose euro total
    is above zero and who gave an IBAN. Only a paid run has one: its lines are settled, so the file pays
    nothing another run paid."""
    import sepaxml

    run = PayoutRun.objects.select_related("program").get(pk=run.pk)  # its state as committed, not as read
    if run.state != PayoutRun.State.PAID:
        raise InvalidInput("Mark the payout paid first: the SEPA file pays exactly what was marked paid.")
    config = payout_settings_of(run.program)
    if not config.debtor_name or not config.debtor_iban:
        raise InvalidInput(
            "Set the program's bank account (name and IBAN) in the payout settings first.", field="debtor_iban"
        )
    groups = [g for g in run_ambassadors(run, run_lines(run)) if not g.sepa_reason]
    if not groups:
        raise InvalidInput("No transfer to make: nobody in this payout is paid in euros to a known IBAN.")
    sepa_config: dict[str, Any] = {
        "name": config.debtor_name,
        "IBAN": config.debtor_iban,
        "batch": True,
        "currency": SEPA_CURRENCY,
    }
    if config.debtor_bic:
        sepa_config["BIC"] = config.debtor_bic
    transfer = sepaxml.SepaTransfer(sepa_config, clean=True)
    paid_on = run.paid_at.date() if run.paid_at else clock.now().date()
    for group in groups:
        details = group.details
        assert details is not None  # noqa: S101 (groups without details have a sepa_reason)
        payment: dict[str, Any] = {
            "name": details.account_holder,
            "IBAN": details.iban,
            "amount": group.amount_minor,
            "execution_date": paid_on,
            "description": f"{run.program.name} rewards {run.period_start:%Y-%m-%d} to {run.period_end:%Y-%m-%d}",
            "endtoend_id": f"PARRAIN-{run.pk}-{group.ambassador.pk}"[:35],
        }
        if details.bic:
            payment["BIC"] = details.bic
        transfer.add_payment(payment)
    xml: bytes = transfer.export(validate=True)
    return xml


def run_totals(run: PayoutRun, lines: list[PayoutLine]) -> dict[str, Decimal]:
    """The run's total per currency (what it proposes while a draft, what it paid once paid)."""
    return {
        currency: major_units(amount, currency)
        for currency, amount in totals_by_currency(line for line in lines if _counted(run, line)).items()
    }


def paid_ledger_minor(program: Program) -> dict[str, int]:
    """Everything ever paid for the program's cash rewards, net of reversals, per currency (the ledger)."""
    totals: dict[str, int] = defaultdict(int)
    rows = PayoutLine.objects.filter(run__program=program, status=PayoutLine.Status.PAID).values_list(
        "currency", "amount_minor"
    )
    for currency, amount in rows:
        totals[currency] += amount
    return dict(totals)


def draft_runs_overlapping(run: PayoutRun) -> list[int]:
    """Other drafts of the program holding one of this run's grants: marking both paid pays each grant once."""
    return list(
        PayoutRun.objects.filter(program_id=run.program_id, state=PayoutRun.State.DRAFT)
        .exclude(pk=run.pk)
        .filter(Q(lines__grant_id__in=run.lines.values("grant_id")))
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
