"""Referral links, clicks, signups and conversions."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q

from ambassadors.models import Ambassador, Program


class ReferralLink(models.Model):
    """An extra link of an ambassador for one channel (newsletter, Instagram...), to see what works.

    The main link, /r/<ambassador code>, needs no row.
    """

    ambassador = models.ForeignKey(Ambassador, on_delete=models.CASCADE, related_name="links")
    channel = models.SlugField(max_length=32)
    code = models.CharField(max_length=64)
    code_key = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ambassador", "channel"], name="link_one_per_channel"),
        ]

    def __str__(self) -> str:
        return f"/r/{self.code}"


class Click(models.Model):
    """One visit through a referral link. The id is a random UUID: it travels in URLs and cookies.

    On PostgreSQL the table is partitioned by month of created_at (migration 0011, referrals.services.partitions)
    and its primary key is (id, created_at); for the ORM the pk stays the id.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexes are kept to those the stats and attribution need: every index costs time on the redirect.
    program = models.ForeignKey(Program, on_delete=models.CASCADE, db_index=False, related_name="+")
    ambassador = models.ForeignKey(Ambassador, on_delete=models.CASCADE, related_name="clicks")
    link = models.ForeignKey(ReferralLink, on_delete=models.SET_NULL, null=True, blank=True, db_index=False)
    created_at = models.DateTimeField()
    visitor_id = models.CharField(max_length=36, blank=True)
    # HMAC of the IP with a server secret: enough to count repeats, useless to find the person.
    ip_hash = models.CharField(max_length=64, blank=True)
    user_agent_family = models.CharField(max_length=64, blank=True)
    referer_host = models.CharField(max_length=255, blank=True)
    is_bot = models.BooleanField(default=False)
    # Past CLICK_FLOOD_PER_MINUTE clicks from one IP on one link: still redirected, but it credits nobody
    # and the analytics leave it out (referrals.services.clicks). A database default too, so bulk loads
    # that list the columns they know (bench/) keep working.
    flood = models.BooleanField(default=False, db_default=False)

    class Meta:
        indexes = [
            # The visitor's earliest click, under first click (referrals.services.attribution): without it a
            # signup passing a click_id scans the program's clicks. Partial: bots and visits without a
            # visitor id are never looked up this way, and leaving them out keeps the index small. Each
            # index costs every redirect's INSERT a little (bench/inprocess.py measures the redirect).
            models.Index(
                fields=["program", "visitor_id", "created_at"],
                condition=~Q(visitor_id="") & Q(is_bot=False),
                name="click_visitor_first_click",
            ),
            # The staff analytics (console/analytics.py): human clicks of a program in a period, counted per
            # ambassador off the index alone (an index-only scan: the ambassador and the flood flag are
            # carried, bots are left out). INCLUDE is PostgreSQL's; SQLite builds it on (program, created_at).
            models.Index(
                fields=["program", "created_at"],
                include=["ambassador", "flood"],
                condition=Q(is_bot=False),
                name="click_human_analytics",
            ),
        ]

    def __str__(self) -> str:
        return f"click {self.id} on {self.ambassador.code}"


class Signup(models.Model):
    class Method(models.TextChoices):
        CODE = "code", "Referral code"
        COOKIE = "cookie", "Referral cookie"
        API = "api", "Click id passed by the integration"
        MANUAL = "manual", "Set by an admin"
        NONE = "none", "Not attributed"

    class Status(models.TextChoices):
        QUALIFIED = "qualified", "Qualified"
        PENDING_REVIEW = "pending_review", "Pending review"
        REJECTED = "rejected", "Rejected"

    class Reason(models.TextChoices):
        NONE = "", "—"
        SELF_REFERRAL = "self_referral", "Self-referral"
        DISPOSABLE_EMAIL = "disposable_email", "Disposable e-mail domain"
        VELOCITY = "velocity", "Too many signups from one address or visitor"
        REVIEWED = "reviewed", "Decided by an admin"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="signups")
    # The address as typed (trimmed, lower-cased), for sending.
    email = models.EmailField(max_length=254)
    # The mailbox it lands in (ambassadors.mailbox), for the duplicate and self-referral checks.
    email_canonical = models.CharField(max_length=2048, editable=False)
    external_id = models.CharField(max_length=128, blank=True)
    ambassador = models.ForeignKey(Ambassador, on_delete=models.SET_NULL, null=True, blank=True, related_name="signups")
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.NONE)
    # No database constraint: on PostgreSQL the click table is partitioned by month (migration 0011) and its
    # key is (id, created_at), which a foreign key would have to name whole. Deleting a click through the ORM
    # still sets its signups' click to NULL (Django's collector does SET_NULL).
    click = models.ForeignKey(
        Click, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_constraint=False
    )
    # The channel link of that click (none: the ambassador's main link, or no click), copied when the signup
    # is recorded: the dashboard counts an ambassador's signups per link from their own rows, without
    # finding each one's click by id in every monthly partition. Neither index nor constraint: the
    # dashboard reads it with the ambassador's rows, and links are only ever deleted with their ambassador.
    link = models.ForeignKey(
        ReferralLink,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
        editable=False,
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUALIFIED)
    reason = models.CharField(max_length=32, choices=Reason.choices, blank=True)
    reason_detail = models.CharField(max_length=255, blank=True)
    ip_hash = models.CharField(max_length=64, blank=True)
    visitor_id = models.CharField(max_length=36, blank=True)
    created_at = models.DateTimeField(db_index=True)
    # The subscriber asked to be told when the price drops (a checkbox on the hosted form, or the API).
    wants_price_news = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One signup per mailbox: `a+x@`, Gmail dots or `googlemail.com` are the same person again.
            models.UniqueConstraint(fields=["program", "email_canonical"], name="signup_mailbox_once_per_program"),
            models.UniqueConstraint(
                fields=["program", "external_id"],
                condition=~Q(external_id=""),
                name="signup_external_id_once_per_program",
            ),
        ]
        indexes = [
            models.Index(fields=["program", "ip_hash", "created_at"], name="signup_velocity_ip"),
            models.Index(fields=["program", "visitor_id", "created_at"], name="signup_velocity_visitor"),
            # The audit console's searches (console/audit/queries.py), newest first and paged by keyset on
            # (created_at, id): across programs, in one program, by ambassador, by status. Each answers a
            # page by reading that page's rows off the index, however many million rows there are.
            models.Index(fields=["created_at", "id"], name="signup_recent"),
            models.Index(fields=["program", "created_at", "id"], name="signup_program_recent"),
            models.Index(fields=["ambassador", "created_at", "id"], name="signup_ambassador_recent"),
            models.Index(fields=["status", "created_at", "id"], name="signup_status_recent"),
            # An address typed whole (=) or its beginning (LIKE 'ana%'): the pattern operator class serves
            # both whatever the database's collation. The mailbox form, across programs (the unique
            # constraint's index leads with the program).
            models.Index(fields=["email"], name="signup_email_pattern", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["email_canonical"], name="signup_email_canonical"),
            # The staff analytics (console/analytics.py): a program's signups of a period per UTC day and per
            # ambassador, read off the index alone (status and ambassador carried; PostgreSQL's INCLUDE,
            # SQLite builds it on (program, created_at)). Migration 0009 also gives PostgreSQL statistics on
            # the UTC day, so that it knows a period has a few hundred days, not a row per signup.
            models.Index(fields=["program", "created_at"], include=["status", "ambassador"], name="signup_analytics"),
        ]

    def __str__(self) -> str:
        return f"{self.email} in {self.program_id}"

    @property
    def counts(self) -> bool:
        return self.status == self.Status.QUALIFIED


class Conversion(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending (hold period)"
        APPROVED = "approved", "Approved"
        REVERSED = "reversed", "Reversed"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="conversions")
    signup = models.ForeignKey(Signup, on_delete=models.PROTECT, related_name="conversions")
    external_id = models.CharField(max_length=128)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    occurred_at = models.DateTimeField()
    approve_after = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # SHA-256 of the canonical request, so a retried call is recognised and a different one refused.
    request_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    approved_at = models.DateTimeField(null=True, blank=True)
    reversed_at = models.DateTimeField(null=True, blank=True)
    # The signup's credit, copied here and kept in step in the transactions that change it (recording the
    # purchase; an override, review or status change of the signup: referrals.services.review), so that the
    # staff analytics sum a period's purchases per ambassador without joining them to the signups.
    signup_ambassador = models.ForeignKey(
        Ambassador, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    signup_status = models.CharField(max_length=16, blank=True, default="", db_default="")
    signup_created_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "external_id"], name="conversion_external_id_once"),
            models.CheckConstraint(condition=Q(amount__gte=Decimal("0")), name="conversion_amount_not_negative"),
        ]
        indexes = [
            # The audit console's conversion search, newest purchase first, paged by keyset on
            # (occurred_at, id): across programs, in one program, by status; an order number across programs.
            models.Index(fields=["occurred_at", "id"], name="conversion_recent"),
            models.Index(fields=["program", "occurred_at", "id"], name="conversion_program_recent"),
            # The staff analytics: a period's approved purchases with what they credit, off the index alone.
            models.Index(
                fields=["program", "occurred_at"],
                include=["signup", "amount", "signup_ambassador", "signup_status", "signup_created_at"],
                condition=Q(status="approved"),
                name="conversion_analytics",
            ),
            models.Index(fields=["status", "occurred_at", "id"], name="conversion_status_recent"),
            models.Index(fields=["external_id"], name="conversion_external_id"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {self.amount} {self.currency}"


# --- Daily roll-ups: what the staff analytics read for the days that are over -------------------------
#
# The analytics of a 90-day period would otherwise count every click and signup of the period on every
# view. A day that is over is rolled up once per program (referrals.services.rollups): its human clicks
# per link and its signups per ambassador, and a RollupDay row says which of the two are sealed. Reads take
# the sealed days from here and the others (today, and any day a change reopened) from the source rows,
# so a figure is the same whichever way it is read. Clicks of a day never change once the day is over, so
# their roll-up stays sealed (and lets the retention delete old clicks); a signup reviewed or reassigned
# reopens its day's signups until the next roll-up.
#
# Above the days, weeks: once the seven days of an ISO week (Monday to Sunday, UTC) are sealed, their rows
# are summed once per ambassador into WeeklyClicks and WeeklySignups, and a RollupWeek row says which of the
# two are sealed. A period reads its whole weeks from there, its other sealed days from the daily rows.
# Reopening a day's signups reopens its week's signups in the same transaction.


class RollupDay(models.Model):
    """One UTC day of one program: whether its clicks and its signups are rolled up (sealed), and the day's
    totals over the whole program, which the analytics' series read (valid while the matching part is
    sealed; walk-ins are signups - referred)."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    clicks_sealed = models.BooleanField(default=False)
    signups_sealed = models.BooleanField(default=False)
    # The click rows of the day were deleted by the retention: the roll-up is all there is of them.
    clicks_purged = models.BooleanField(default=False)
    rolled_up_at = models.DateTimeField(null=True, blank=True)
    human_clicks = models.PositiveIntegerField(default=0)  # bots and flood left out
    signups = models.PositiveIntegerField(default=0)  # every signup of the day, whatever its status
    qualified = models.PositiveIntegerField(default=0)
    referred = models.PositiveIntegerField(default=0)  # with an ambassador, whatever their status
    referred_qualified = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["program", "day"], name="rollup_day_once")]

    def __str__(self) -> str:
        return f"{self.program_id} {self.day}"


class DailyClicks(models.Model):
    """The clicks of one day through one link of an ambassador (link null: the main link /r/<code>)."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    ambassador = models.ForeignKey(Ambassador, on_delete=models.CASCADE, related_name="+", db_index=False)
    link = models.ForeignKey(ReferralLink, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    day = models.DateField()
    human = models.PositiveIntegerField(default=0)  # what every count shows: bots and flood left out
    bots = models.PositiveIntegerField(default=0)
    flood = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            # The analytics of a period, per ambassador; the dashboards, per ambassador.
            models.Index(fields=["program", "day"], include=["ambassador", "human"], name="daily_clicks_period"),
            models.Index(fields=["ambassador", "day"], name="daily_clicks_ambassador"),
        ]

    def __str__(self) -> str:
        return f"{self.ambassador_id} {self.day}: {self.human}"


class DailySignups(models.Model):
    """The signups of one day credited to one ambassador (null: the walk-ins), whatever their status."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    ambassador = models.ForeignKey(Ambassador, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    day = models.DateField()
    signups = models.PositiveIntegerField(default=0)
    qualified = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(
                fields=["program", "day"], include=["ambassador", "signups", "qualified"], name="daily_signups_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ambassador_id} {self.day}: {self.signups}"


class RollupWeek(models.Model):
    """One ISO week (its Monday, UTC) of one program: whether its clicks and its signups are summed into the
    weekly roll-ups (sealed). Sealed only when its seven days are, and reopened with any of them."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    week = models.DateField()  # a Monday
    clicks_sealed = models.BooleanField(default=False)
    signups_sealed = models.BooleanField(default=False)
    rolled_up_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["program", "week"], name="rollup_week_once")]

    def __str__(self) -> str:
        return f"{self.program_id} week of {self.week}"


class WeeklyClicks(models.Model):
    """The human clicks of one ISO week through every link of an ambassador (only ambassadors with some)."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    ambassador = models.ForeignKey(Ambassador, on_delete=models.CASCADE, related_name="+", db_index=False)
    week = models.DateField()
    human = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["program", "week"], include=["ambassador", "human"], name="weekly_clicks_period"),
            models.Index(fields=["ambassador"], name="weekly_clicks_ambassador"),
        ]

    def __str__(self) -> str:
        return f"{self.ambassador_id} week of {self.week}: {self.human}"


class WeeklySignups(models.Model):
    """The signups of one ISO week credited to one ambassador (only ambassadors with some; walk-ins are in
    the days' totals), whatever their status."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    ambassador = models.ForeignKey(Ambassador, on_delete=models.CASCADE, related_name="+", db_index=False)
    week = models.DateField()
    signups = models.PositiveIntegerField(default=0)
    qualified = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(
                fields=["program", "week"], include=["ambassador", "signups", "qualified"], name="weekly_signups_period"
            ),
            models.Index(fields=["ambassador"], name="weekly_signups_ambassador"),
        ]

    def __str__(self) -> str:
        return f"{self.ambassador_id} week of {self.week}: {self.signups}"


class IpPepper(models.Model):
    """A secret that keys the IP hashes of clicks and signups (referrals.services.peppers).

    `manage.py rotate_ip_pepper` adds a new one, which hashes what comes next, and deletes those that
    stopped hashing longer ago than the velocity window and a margin: the hashes they made can then no
    longer be linked to any address, by anyone. With no row (a fresh install before its first rotation),
    the hashes are keyed with SECRET_KEY.
    """

    secret = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_index=True)  # set by the rotation, from its clock

    def __str__(self) -> str:
        return f"IP pepper {self.pk} of {self.created_at:%Y-%m-%d %H:%M}"  # never the secret
