"""Reward tiers configured by marketing, the grants they unlock, and the milestones of collective ladders."""

from __future__ import annotations

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
    # Double-sided: the referee of each qualified signup gets a welcome voucher too.
    referee_reward_value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    referee_reward_type = models.CharField(max_length=16, choices=RewardType.choices, blank=True)
    step = models.PositiveIntegerField(null=True, blank=True)
    drop_type = models.CharField(max_length=8, choices=DropType.choices, blank=True)
    drop_value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
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
