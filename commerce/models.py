"""Parrain's links with the business's commerce: Stripe, embedded dashboards, waitlists, cash payouts."""

# --- The embedded dashboard and waitlists (commerce.embed, commerce.waitlist) ----------------------------

from django.db import models  # noqa: E402

from ambassadors.models import Ambassador, Program  # noqa: E402


class EmbedToken(models.Model):
    """One signed token a business's back end asked for, to frame one ambassador's dashboard in its product.

    The signature (django.core.signing) proves Parrain issued it; this row makes it single-use: the page
    marks `used_at` with a conditional UPDATE, so of two loads racing, one shows the dashboard.
    """

    jti = models.CharField(max_length=32, unique=True)
    ambassador = models.ForeignKey(Ambassador, on_delete=models.CASCADE, related_name="+")
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="embed_token_expiry")]

    def __str__(self) -> str:
        return f"embed token {self.jti[:8]}… ({self.program_id})"


class WaitlistSettings(models.Model):
    """A program run as a waitlist (a prelaunch): each subscriber has a place in line, and each friend they
    bring who counts moves them up `places_per_referral` places. Positions are computed at read time
    (commerce.waitlist), never stored."""

    program = models.OneToOneField(Program, on_delete=models.CASCADE, primary_key=True, related_name="waitlist")
    enabled = models.BooleanField(default=False)
    places_per_referral = models.PositiveIntegerField(default=10)
    # The "your place in line" e-mail goes to each subscriber once; the sweep resumes after this signup id.
    notified_through_signup_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "waitlist settings"

    def __str__(self) -> str:
        return f"waitlist of program {self.program_id}"


class WaitlistAdmission(models.Model):
    """A subscriber let in from the waitlist: who, when, by whom. Once per signup (the constraint holds it
    when two admissions race); an admitted subscriber leaves the queue."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    signup = models.OneToOneField("referrals.Signup", on_delete=models.CASCADE, related_name="waitlist_admission")
    position = models.PositiveIntegerField()  # their place in line when admitted
    admitted_at = models.DateTimeField()
    admitted_by = models.CharField(max_length=255)  # the actor's label, as the audit trail has it

    class Meta:
        indexes = [models.Index(fields=["program", "admitted_at"], name="waitlist_admitted_recent")]

    def __str__(self) -> str:
        return f"signup {self.signup_id} admitted"


# --- Stripe (commerce.stripe_accounts, commerce.stripe_events, commerce.stripe_promotions) -----------------


class StripeAccount(models.Model):
    """A program's link with its Stripe account: the webhook signing secret Stripe gave for Parrain's endpoint
    (required to accept any event), an optional restricted API key (for vouchers as promotion codes), and
    whether vouchers become promotion codes. The secrets are write-only: pages show their last 4 characters,
    the audit trail only that they changed."""

    program = models.OneToOneField(Program, on_delete=models.CASCADE, primary_key=True, related_name="stripe_account")
    webhook_secret = models.CharField(max_length=200, blank=True)
    api_key = models.CharField(max_length=255, blank=True)
    promotion_codes_enabled = models.BooleanField(default=False)
    webhook_secret_set_at = models.DateTimeField(null=True, blank=True)
    api_key_set_at = models.DateTimeField(null=True, blank=True)
    # The last event whose signature verified: tells staff that Stripe reaches Parrain.
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_event_type = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"Stripe account of program {self.program_id}"


class StripePaymentLink(models.Model):
    """Which conversion a Stripe payment object belongs to (a PaymentIntent, Charge or Checkout Session id):
    a refund or a dispute names the charge or PaymentIntent, never the object the conversion was recorded
    from. It holds the conversion's external id (the Session's or the Invoice's id), not a key to the row:
    Stripe may tell which PaymentIntent paid an invoice before it tells that the invoice is paid. One row per
    id and program (the constraint holds it when two deliveries race)."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    stripe_id = models.CharField(max_length=255)
    external_id = models.CharField(max_length=128)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["program", "stripe_id"], name="stripe_payment_link_once"),
        ]

    def __str__(self) -> str:
        return f"{self.stripe_id} -> {self.external_id}"


class StripePromotionCode(models.Model):
    """A voucher as a Stripe promotion code: the coupon and the promotion code created for one grant's voucher
    code (a reinstated grant gets a fresh code, hence a new row). `coupon_id` is kept as soon as the coupon
    exists, so a retry after a failed promotion code does not create a second coupon."""

    grant = models.ForeignKey("rewards.RewardGrant", on_delete=models.CASCADE, related_name="+")
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    voucher_code = models.CharField(max_length=32)
    coupon_id = models.CharField(max_length=255, blank=True)
    promotion_code_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    # Set once Stripe confirmed the code `active=false` (the grant revoked, its voucher expired or replaced by a
    # fresh code): a revoked voucher stops working at the checkout too. commerce.stripe_promotions.
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivation_attempts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["grant", "voucher_code"], name="stripe_promotion_code_once"),
        ]
        indexes = [
            models.Index(fields=["program", "promotion_code_id"], name="stripe_promo_by_code_id"),
            models.Index(fields=["program", "coupon_id"], name="stripe_promo_by_coupon_id"),
            # The sweep's candidates for deactivation: codes Stripe still has active.
            models.Index(
                fields=["grant"],
                condition=models.Q(deactivated_at__isnull=True) & ~models.Q(promotion_code_id=""),
                name="stripe_promo_still_active",
            ),
        ]

    def __str__(self) -> str:
        return f"promotion code for grant {self.grant_id}"


class StripeChargeRefund(models.Model):
    """How much of one Stripe charge was refunded, as Stripe's cumulative `amount_refunded` last said, and which
    conversion it paid. Only ever raised (GREATEST), never added to: a redelivered or out-of-order
    `charge.refunded` changes nothing. A conversion's refunded amount is the sum over its charges; when it
    reaches the conversion's amount, the conversion is reversed (commerce.stripe_events)."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    charge_id = models.CharField(max_length=255)
    external_id = models.CharField(max_length=128)  # the conversion's, as StripePaymentLink holds it
    amount_refunded = models.DecimalField(max_digits=14, decimal_places=3)
    currency = models.CharField(max_length=3)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["program", "charge_id"], name="stripe_charge_refund_once"),
            models.CheckConstraint(
                condition=models.Q(amount_refunded__gte=0), name="stripe_charge_refund_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["program", "external_id"], name="stripe_refund_by_conversion")]

    def __str__(self) -> str:
        return f"{self.charge_id}: {self.amount_refunded} {self.currency} refunded"
