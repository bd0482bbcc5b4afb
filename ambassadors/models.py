"""Programs, their ambassadors, their API keys, and the counters that measure each ambassador's value."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext


class Program(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    class AttributionModel(models.TextChoices):
        LAST_CLICK = "last_click", "Last click"
        FIRST_CLICK = "first_click", "First click"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Empty means the hosted program page of Parrain itself.
    destination_url = models.URLField(max_length=500, blank=True)
    # Hosts a referral link's `to` parameter may send visitors to, besides the destination's own host.
    allowed_redirect_hosts = models.JSONField(default=list, blank=True)
    attribution_window_days = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)])
    attribution_model = models.CharField(
        max_length=16, choices=AttributionModel.choices, default=AttributionModel.LAST_CLICK
    )
    # Off: cookieless. /r/<code> sets no cookie at all, and a signup is credited only from what the landing
    # URL carries (ref, click_id passed on by the integration or the hosted form) or the code typed in.
    attribution_cookie = models.BooleanField(default=True)
    hold_period_days = models.PositiveIntegerField(default=14)
    # Clicks older than this are rolled up into daily counts per link and deleted (referrals.services.retention);
    # counts and analytics keep showing them. A click that credited a signup stays, stripped of its IP hash,
    # visitor id and referer: it is the signup's attribution record.
    click_retention_months = models.PositiveSmallIntegerField(
        default=13, validators=[MinValueValidator(1), MaxValueValidator(120)]
    )
    currency = models.CharField(max_length=3, default="EUR")
    base_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    floor_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # More signups than this from one IP hash or visitor within a day go to review.
    velocity_limit = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1)])
    leaderboard_public = models.BooleanField(default=False)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    # The message the share buttons prefill before the link; empty means the translated default
    # ("Join me on <program>:"), which suits most programs in every language.
    share_message = models.CharField(max_length=280, blank=True)
    # Reach vs conversion in the analytics: an influencer brings many clicks and converts few of them, an
    # ambassador converts. Rates are percentages of clicks (bots excluded) that became qualified signups.
    influencer_min_clicks = models.PositiveIntegerField(default=50)
    influencer_max_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("2"))
    ambassador_min_qualified = models.PositiveIntegerField(default=3)
    ambassador_min_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("10"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(floor_price__isnull=True)
                | Q(base_price__isnull=True)
                | Q(floor_price__lte=models.F("base_price")),
                name="program_floor_not_above_base",
            ),
            models.CheckConstraint(
                condition=Q(floor_price__isnull=True) | Q(floor_price__gte=Decimal("0")),
                name="program_floor_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(influencer_max_rate__gte=0, influencer_max_rate__lte=100)
                & Q(ambassador_min_rate__gte=0, ambassador_min_rate__lte=100),
                name="program_label_rates_are_percentages",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class Ambassador(models.Model):
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="ambassadors")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ambassadorships")
    # Shown upper-case; `code_key` (look-alikes folded) is what lookups and uniqueness use.
    # The ambassador's main referral link is /r/<code>; channel links live in referrals.ReferralLink.
    code = models.CharField(max_length=32)
    # Unique across programs, because `/r/<code>` names no program.
    code_key = models.CharField(max_length=32, unique=True, editable=False)
    # The address as typed (trimmed, lower-cased): where mail goes, and what an owner proves to claim it.
    email = models.EmailField(max_length=254)
    # The mailbox `email` lands in (ambassadors.mailbox): `a.n.a+x@googlemail.com` is `ana@gmail.com`.
    # Duplicates are compared in this form. Punycode can make an IDN domain four times as long as typed.
    email_canonical = models.CharField(max_length=2048, editable=False)
    display_name = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When `user` proved it holds `email` (or was named by a trusted caller). Until then `user` is an
    # unclaimed placeholder account nobody can sign in to without a code or link sent to `email`.
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "user"], name="ambassador_user_once_per_program"),
            models.UniqueConstraint(fields=["program", "email_canonical"], name="ambassador_mailbox_once_per_program"),
        ]
        indexes = [
            # A claim looks up every program's profiles enrolled with one address.
            models.Index(fields=["email"], name="ambassador_email"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name or self.email} ({self.code})"

    @property
    def public_name(self) -> str:
        # What others ever see of an ambassador: the name they chose, never a piece of their address.
        return self.display_name or gettext("an ambassador")


class AmbassadorCounters(models.Model):
    """Counts that move with each event, so nothing rescans history on the hot path.

    The reconciliation recomputes them from the source rows and repairs any drift.
    """

    ambassador = models.OneToOneField(Ambassador, on_delete=models.CASCADE, primary_key=True, related_name="counters")
    signups = models.IntegerField(default=0)
    qualified = models.IntegerField(default=0)
    conversions = models.IntegerField(default=0)  # approved ones
    converted_amount = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "ambassador counters"

    def __str__(self) -> str:
        return f"counters of ambassador {self.ambassador_id}"


class ProgramCounters(models.Model):
    program = models.OneToOneField(Program, on_delete=models.CASCADE, primary_key=True, related_name="counters")
    signups = models.IntegerField(default=0)
    # Qualified subscribers, attributed or not: what the collective ladder counts.
    qualified = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "program counters"

    def __str__(self) -> str:
        return f"counters of program {self.program_id}"


class ProgramCounterDelta(models.Model):
    """A change to a program's counters not folded into its ProgramCounters row yet.

    A signup (and a review or override that changes what counts) inserts one of these in its own
    transaction instead of updating the program's one counters row, so the signups of a launch never
    queue behind that row's lock. A worker folds them in (rewards.services.recalculation:
    program_recalculate, under the counters row's lock): it deletes the rows it adds, in one transaction,
    so each is counted exactly once. The reconciliation folds and recounts them from the signups.
    """

    id = models.BigAutoField(primary_key=True)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    signups = models.IntegerField(default=0)
    qualified = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.signups:+d} signups, {self.qualified:+d} qualified of program {self.program_id}"


class ApiKey(models.Model):
    class Scope(models.TextChoices):
        TRACK = "track", "Track signups and conversions"
        READ = "read", "Read stats and attributions"
        MANAGE = "manage", "Manage the program and its tiers"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, help_text="First characters of the key, to recognise it.")
    # SHA-256 of the whole key: keys are 256-bit random tokens, so a slow hash would add nothing.
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({', '.join(self.scopes)}) for {self.program.slug}"

    def has_scope(self, scope: str) -> bool:
        return self.revoked_at is None and scope in self.scopes


# --- Webhooks (design section 7; ambassadors.webhooks sends them) ------------------------------------


class WebhookEndpoint(models.Model):
    """A URL of the program owner's that hears of the events it subscribed to, signed with its secret."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    # Names from core.webhook_events.WEBHOOK_EVENTS.
    event_types = models.JSONField(default=list)
    # Standard Webhooks `whsec_<base64>`: kept readable, since each delivery is signed with it.
    secret = models.CharField(max_length=100, editable=False)
    is_active = models.BooleanField(default=True)
    # Why it stopped: the receiver answered 410 Gone, or a person disabled it.
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.url} ({self.program_id})"


class WebhookDelivery(models.Model):
    """One outbox message to one endpoint: created once (unique), attempted until 2xx or abandoned."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"  # the endpoint was disabled (410) while it waited
        ABANDONED = "abandoned", "Abandoned"  # every attempt of the schedule failed

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    message = models.ForeignKey("core.OutboxMessage", on_delete=models.PROTECT, related_name="webhook_deliveries")
    # The Standard Webhooks `webhook-id`: the same for every attempt, so a receiver can deduplicate.
    event_id = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When the next attempt is due; while an attempt runs, the end of its lease (ambassadors.webhooks).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_response = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "message"], name="webhook_delivery_once")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} to {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One POST of a delivery: its answer (or the error), how long it took, the start of the response."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=200, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"attempt of delivery {self.delivery_id} at {self.at:%Y-%m-%d %H:%M:%S}"
