"""Reward tiers configured by marketing, the grants they unlock, the milestones of collective ladders, and
contests with their winners."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import models
from django.db.models import Q

from ambassadors.models import Ambassador, Program
from referrals.models import Signup


class RewardTier(models.Model):
    class Kind(models.TextChoices):
        INDIVIDUAL = "individual", "Individual"
        COLLECTIVE = "collective", "Collective (price ladder)"

    class Metric(models.TextChoices):
        QUALIFIED_SIGNUPS = "qualified_signups", "Qualified signups"
        APPROVED_CONVERSIONS = "approved_conversions", "Approved conversions"
        CONVERTED_AMOUNT = "converted_amount", "Converted amount"

    class RewardType(models.TextChoices):
        PERCENT_VOUCHER = "percent_voucher", "Percent voucher"
        FIXED_VOUCHER = "fixed_voucher", "Fixed-amount voucher"
        ACCOUNT_CREDIT = "account_credit", "Account credit"
        CUSTOM = "custom", "Custom reward"
        # Money paid to the ambassador's bank account by a payout run (rewards.services.payouts).
        CASH = "cash", "Cash"

    class DropType(models.TextChoices):
        AMOUNT = "amount", "Amount"
        PERCENT = "percent", "Percent of the base price"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="tiers")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.INDIVIDUAL)
    metric = models.CharField(max_length=24, choices=Metric.choices, default=Metric.QUALIFIED_SIGNUPS)
    # Individual: the value of the metric that unlocks the first occurrence; then one more every
    # `repeat_every` (empty: once only). Collective: `step` subscribers per price drop.
    threshold = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    repeat_every = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    reward_type = models.CharField(max_length=16, choices=RewardType.choices, blank=True)
    reward_value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    reward_text = models.CharField(max_length=255, blank=True)
    # A cash reward's currency (ISO 4217, upper case), its amount being reward_value; blank for other rewards.
    reward_currency = models.CharField(max_length=3, blank=True)
    # Double-sided: the referee of each qualified signup gets a welcome voucher too.
    referee_reward_value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    referee_reward_type = models.CharField(max_length=16, choices=RewardType.choices, blank=True)
    step = models.PositiveIntegerField(null=True, blank=True)
    drop_type = models.CharField(max_length=8, choices=DropType.choices, blank=True)
    drop_value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # How long each voucher of the tier stays valid once unlocked, in days (1 to 3650, tiers that give a
    # voucher only: rewards.services.tiers); empty: never expires. Sets RewardGrant.expires_at when granted.
    voucher_valid_days = models.PositiveIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["program", "kind", "threshold", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(threshold__isnull=True) | Q(threshold__gt=Decimal("0")),
                name="tier_threshold_positive",
            ),
            models.CheckConstraint(
                condition=Q(repeat_every__isnull=True) | Q(repeat_every__gt=Decimal("0")),
                name="tier_repeat_positive",
            ),
            models.CheckConstraint(condition=Q(step__isnull=True) | Q(step__gt=0), name="tier_step_positive"),
            models.CheckConstraint(
                condition=Q(voucher_valid_days__isnull=True) | Q(voucher_valid_days__range=(1, 3650)),
                name="tier_voucher_valid_days_range",
            ),
            # A cash reward says how much of which currency: a payout cannot guess either.
            models.CheckConstraint(
                condition=~Q(reward_type="cash")
                | (Q(reward_value__gt=Decimal("0")) & Q(reward_currency__regex=r"^[A-Z]{3}$")),
                name="tier_cash_has_amount_and_currency",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.program.slug}: {self.name}"

    @property
    def is_double_sided(self) -> bool:
        return bool(self.referee_reward_type)


class RewardGrant(models.Model):
    class Status(models.TextChoices):
        UNLOCKED = "unlocked", "Unlocked"
        ISSUED = "issued", "Issued"
        REDEEMED = "redeemed", "Redeemed"
        REVOKED = "revoked", "Revoked"

    tier = models.ForeignKey(RewardTier, on_delete=models.PROTECT, related_name="grants")
    # An ambassador's grant, or (double-sided tiers) a referee's welcome voucher.
    ambassador = models.ForeignKey(Ambassador, on_delete=models.CASCADE, null=True, blank=True, related_name="grants")
    referee_signup = models.ForeignKey(
        Signup, on_delete=models.CASCADE, null=True, blank=True, related_name="welcome_grants"
    )
    occurrence = models.PositiveIntegerField(default=1)
    voucher_code = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.UNLOCKED)
    # A redeemed grant whose reason later went away: staff decide, the customer keeps it meanwhile.
    flagged = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The redemption: when, and the shop's order it paid for (blank when staff marked it from the admin).
    # The API's redeem is idempotent on this reference: the same order again gets the same redemption.
    redeemed_at = models.DateTimeField(null=True, blank=True)
    redeemed_order = models.CharField(max_length=128, blank=True)
    # When the voucher stops being redeemable (the tier's voucher_valid_days after it was unlocked); empty:
    # never. Expiry is derived from the clock when read (is_expired_at), never stored as a status.
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Exactly once, whatever the number of workers or deliveries: the database says no.
            models.UniqueConstraint(
                fields=["tier", "ambassador", "occurrence"],
                condition=Q(ambassador__isnull=False),
                name="grant_once_per_tier_occurrence",
            ),
            models.UniqueConstraint(
                fields=["tier", "referee_signup"],
                condition=Q(referee_signup__isnull=False),
                name="welcome_grant_once_per_signup",
            ),
            models.CheckConstraint(
                condition=Q(ambassador__isnull=False) | Q(referee_signup__isnull=False),
                name="grant_has_recipient",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tier.name} #{self.occurrence} ({self.status})"

    def is_expired_at(self, moment: datetime) -> bool:
        """Still unlocked or issued, but past its expiry date at `moment`: it can no longer be redeemed. A
        redeemed or revoked voucher keeps its own status, whatever the date."""
        return (
            self.expires_at is not None
            and moment >= self.expires_at
            and self.status in (self.Status.UNLOCKED, self.Status.ISSUED)
        )


class Milestone(models.Model):
    """One step of a collective ladder reached by a program; never taken back."""

    tier = models.ForeignKey(RewardTier, on_delete=models.PROTECT, related_name="milestones")
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="milestones")
    occurrence = models.PositiveIntegerField()
    count_at = models.PositiveIntegerField()
    price_after = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    reached_at = models.DateTimeField()

    class Meta:
        ordering = ["tier", "occurrence"]
        constraints = [
            models.UniqueConstraint(fields=["tier", "occurrence"], name="milestone_once_per_tier_occurrence"),
        ]

    def __str__(self) -> str:
        return f"{self.tier.name} step {self.occurrence}"


class Contest(models.Model):
    """A prize for the best ambassadors of a period (LaFraise's monthly prize): ranked on what happened
    inside [starts_at, ends_at), frozen once when it ends (rewards.services.contests)."""

    class Metric(models.TextChoices):
        QUALIFIED_SIGNUPS = "qualified_signups", "Qualified referrals"
        APPROVED_CONVERSIONS = "approved_conversions", "Approved conversions"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        ENDED = "ended", "Ended"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="contests")
    name = models.CharField(max_length=120)
    prize_text = models.CharField(max_length=255)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    winners_count = models.PositiveIntegerField(default=1)
    metric = models.CharField(max_length=24, choices=Metric.choices, default=Metric.QUALIFIED_SIGNUPS)
    # Set once, by the freeze that recorded the winners: the gate that makes the freeze happen once.
    frozen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="contest_ends_after_start"),
            models.CheckConstraint(condition=Q(winners_count__gte=1), name="contest_winners_at_least_one"),
        ]
        indexes = [
            # The periodic freeze looks for ended contests not frozen yet: few rows, the index stays small.
            models.Index(fields=["ends_at"], condition=Q(frozen_at__isnull=True), name="contest_to_freeze"),
        ]

    def __str__(self) -> str:
        return f"{self.program.slug}: {self.name}"

    def status_at(self, moment: datetime) -> str:
        """Derived from the clock, never stored, so it cannot drift: the freeze has its own `frozen_at`."""
        if moment < self.starts_at:
            return self.Status.SCHEDULED
        if moment < self.ends_at:
            return self.Status.RUNNING
        return self.Status.ENDED


class ContestWinner(models.Model):
    """One place of a frozen contest's final ranking."""

    contest = models.ForeignKey(Contest, on_delete=models.CASCADE, related_name="winners")
    rank = models.PositiveIntegerField()
    ambassador = models.ForeignKey(Ambassador, on_delete=models.CASCADE, related_name="contest_wins")
    score = models.PositiveIntegerField()
    # When the ambassador reached the score (their last counted event): what broke a tie.
    reached_at = models.DateTimeField()
    # When the winner's e-mail went (core.notifications holds the at-most-once marker); still empty after a
    # lost message, the periodic freeze asks for it again.
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["contest", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["contest", "rank"], name="contest_winner_rank_once"),
            models.UniqueConstraint(fields=["contest", "ambassador"], name="contest_winner_once_per_ambassador"),
            models.CheckConstraint(condition=Q(rank__gte=1), name="contest_winner_rank_positive"),
        ]

    def __str__(self) -> str:
        return f"#{self.rank} of {self.contest_id}"


# --- Paying cash rewards (rewards.services.payouts) --------------------------------------------------


class PayoutSettings(models.Model):
    """How a program pays its cash rewards: the hold before a grant is payable, and the business's own bank
    account (the debtor of the SEPA credit transfer file). Not saved until staff change it."""

    program = models.OneToOneField(Program, on_delete=models.CASCADE, primary_key=True, related_name="payout_settings")
    # A cash grant is payable once it is this many days old: long enough for the refunds that revoke it.
    hold_days = models.PositiveIntegerField(default=30)
    debtor_name = models.CharField(max_length=70, blank=True)
    debtor_iban = models.CharField(max_length=34, blank=True)
    debtor_bic = models.CharField(max_length=11, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "payout settings"
        constraints = [
            models.CheckConstraint(condition=Q(hold_days__lte=3650), name="payout_hold_days_range"),
        ]

    def __str__(self) -> str:
        return f"payouts of program {self.program_id}"


class PayoutDetails(models.Model):
    """Where an ambassador's cash rewards go: the account holder and IBAN (BIC optional) they typed on their
    own page. Staff see the IBAN masked; only the SEPA file carries it whole."""

    ambassador = models.OneToOneField(
        Ambassador, on_delete=models.CASCADE, primary_key=True, related_name="payout_details"
    )
    account_holder = models.CharField(max_length=70)
    iban = models.CharField(max_length=34)  # stored compact, upper case, checksum verified
    bic = models.CharField(max_length=11, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "payout details"

    def __str__(self) -> str:
        return f"payout details of ambassador {self.ambassador_id}"

    @property
    def iban_masked(self) -> str:
        """The country and the last four characters, the rest hidden: enough to recognise an account."""
        return f"{self.iban[:2]}** **** {self.iban[-4:]}" if len(self.iban) > 6 else "****"


class PayoutRun(models.Model):
    """One payout of a program for a period: a draft listing what each ambassador is owed, then paid once."""

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        PAID = "paid", "Paid"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="payout_runs")
    period_start = models.DateField()
    period_end = models.DateField()  # inclusive: grants unlocked up to the end of this day (UTC)
    state = models.CharField(max_length=5, choices=State.choices, default=State.DRAFT)
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=255, blank=True)  # the actor's label, as the audit trail has it
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")), name="payout_period_order"),
            models.CheckConstraint(
                condition=Q(state="draft", paid_at__isnull=True) | Q(state="paid", paid_at__isnull=False),
                name="payout_paid_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"payout {self.pk} of program {self.program_id} ({self.period_start} to {self.period_end})"


class PayoutLine(models.Model):
    """What one grant adds to (a payment) or takes from (a reversal: the grant was revoked after it was paid)
    an ambassador's payout. A line is paid with its run, or skipped with the reason (paid by another run
    meanwhile; the ambassador's total not above zero, carried to the next run)."""

    class Kind(models.TextChoices):
        PAYMENT = "payment", "Payment"
        REVERSAL = "reversal", "Reversal"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        SKIPPED = "skipped", "Skipped"

    run = models.ForeignKey(PayoutRun, on_delete=models.CASCADE, related_name="lines")
    ambassador = models.ForeignKey(Ambassador, on_delete=models.PROTECT, related_name="payout_lines")
    grant = models.ForeignKey(RewardGrant, on_delete=models.PROTECT, related_name="payout_lines")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # Integer minor units of `currency` (cents for EUR): negative for a reversal. Never a float.
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.PENDING)
    skip_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["ambassador_id", "grant_id", "kind"]
        constraints = [
            # Exactly once, whatever the number of runs and of staff pressing "Mark paid" at once: a grant is
            # paid at most once, and taken back at most once.
            models.UniqueConstraint(
                fields=["grant", "kind"], condition=Q(status="paid"), name="payout_grant_paid_once"
            ),
            models.UniqueConstraint(fields=["run", "grant", "kind"], name="payout_line_once_per_run"),
            models.CheckConstraint(
                condition=Q(kind="payment", amount_minor__gt=0) | Q(kind="reversal", amount_minor__lt=0),
                name="payout_line_sign",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of grant {self.grant_id} in payout {self.run_id}"
