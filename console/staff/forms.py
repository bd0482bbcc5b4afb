"""Forms of the staff console: a program's settings, a reward tier, a contest.

Each form checks its input with the API's own serializer (so a page accepts exactly what the API accepts)
and leaves the rules to the services, which the views call; a tier is also checked by
`rewards.services.tier_check` here, because its preview must only ever show a tier that could be saved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ambassadors.api import ProgramSerializer
from ambassadors.models import Program
from ambassadors.services import PROGRAM_FIELDS
from core.errors import ParrainError
from rewards.api import TierSerializer
from rewards.api_contests import ContestSerializer
from rewards.models import Contest, RewardTier
from rewards.services import CONTEST_FIELDS, TIER_FIELDS, tier_check

# The settings form edits everything but the status, which has its own buttons (pause, close, reopen).
SETTINGS_FIELDS = tuple(name for name in PROGRAM_FIELDS if name != "status")
DATETIME_INPUT = "%Y-%m-%dT%H:%M"


class ApiCheckedForm(forms.Form):
    """A form whose valid data also passes the API serializer `serializer_class` (its errors on the fields)."""

    serializer_class: type[serializers.Serializer]
    instance: Any = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned  # the field's own message is enough: the serializer would repeat it
        serializer = self.serializer_class(
            self.instance, data=self.api_data(cleaned), partial=self.instance is not None
        )
        if not serializer.is_valid():
            for name, errors in serializer.errors.items():
                for error in errors if isinstance(errors, list) else [errors]:
                    self.add_error(name if name in self.fields else None, str(error))
        return cleaned

    def api_data(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in cleaned.items() if name in self.fields}

    def add_service_error(self, exc: ParrainError) -> None:
        """A service's refusal, on the field it names (or above the form)."""
        self.add_error(exc.field if exc.field in self.fields else None, exc.message)


def _choices(pairs: list[tuple[str, Any]], *, blank: bool = False) -> list[tuple[str, Any]]:
    return ([("", "---------")] if blank else []) + pairs


# --- Programs ----------------------------------------------------------------------------------------


class ProgramForm(ApiCheckedForm):
    serializer_class = ProgramSerializer

    slug = forms.SlugField(
        max_length=64,
        label=_("Slug"),
        help_text=_("Letters, digits and hyphens: spring-box gives the address /p/spring-box/."),
    )
    name = forms.CharField(max_length=200, label=_("Name"))
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label=_("Description"))
    destination_url = forms.URLField(
        max_length=500,
        required=False,
        assume_scheme="https",
        label=_("Destination URL"),
        help_text=_("Where referral links send visitors. Empty: the program's page on Parrain."),
    )
    allowed_redirect_hosts = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Allowed redirect hosts"),
        help_text=_("Other hosts a referral link may send visitors to, one per line, such as shop.example.com."),
    )
    currency = forms.CharField(
        max_length=3, min_length=3, initial="EUR", label=_("Currency"), help_text=_("An ISO 4217 code, such as EUR.")
    )
    base_price = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        required=False,
        label=_("Base price"),
        help_text=_("The price before any collective drop. Give both prices, or neither."),
    )
    floor_price = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        required=False,
        label=_("Floor price"),
        help_text=_("The price never drops below this."),
    )
    attribution_window_days = forms.IntegerField(
        initial=30, label=_("Attribution window (days)"), help_text=_("How long after a click a signup is credited.")
    )
    attribution_model = forms.ChoiceField(
        choices=[("last_click", _("Last click")), ("first_click", _("First click"))],
        initial="last_click",
        label=_("Attribution model"),
        help_text=_("Which ambassador gets the credit when a visitor clicked several links."),
    )
    # A choice rather than a checkbox: a form posted without it (an older page, a script) keeps the
    # cookie, where an absent checkbox would read as "off" and make the program cookieless unasked.
    attribution_cookie = forms.TypedChoiceField(
        choices=[
            ("True", _("With a cookie: the browser remembers the referral for the attribution window")),
            ("False", _("Cookieless: only the landing page's address (ref, click_id) or a typed code")),
        ],
        coerce=lambda value: value == "True",
        empty_value=True,  # type: ignore[arg-type]  # the stubs say str; Django returns whatever is given
        required=False,
        initial=True,
        widget=forms.RadioSelect,
        label=_("Attribution cookie"),
        help_text=_("Cookieless links set no cookie at all. First-click attribution needs the cookie."),
    )
    hold_period_days = forms.IntegerField(
        initial=14,
        label=_("Hold period (days)"),
        help_text=_("How long a conversion waits before it counts, for refunds to arrive."),
    )
    click_retention_months = forms.IntegerField(
        initial=13,
        required=False,  # left empty: the program keeps what it has (13 for a new one)
        min_value=1,
        max_value=120,
        label=_("Click retention (months)"),
        help_text=_("Older clicks are rolled up into daily counts and deleted; every count keeps them."),
    )
    velocity_limit = forms.IntegerField(
        initial=5,
        label=_("Velocity limit"),
        help_text=_("More signups than this from one address or visitor in a day go to review."),
    )
    leaderboard_public = forms.BooleanField(required=False, label=_("Public leaderboard"))
    share_message = forms.CharField(
        max_length=280,
        required=False,
        label=_("Share message"),
        help_text=_("The text share buttons put before the link. Empty: “Join me on” and the program's name."),
    )
    influencer_min_clicks = forms.IntegerField(
        initial=50, min_value=0, label=_("Influencer: at least this many clicks")
    )
    influencer_max_rate = forms.DecimalField(
        max_digits=5, decimal_places=2, initial=2, label=_("Influencer: under this rate (%) of clicks qualified")
    )
    ambassador_min_qualified = forms.IntegerField(
        initial=3, min_value=0, label=_("Ambassador: at least this many qualified signups")
    )
    ambassador_min_rate = forms.DecimalField(
        max_digits=5, decimal_places=2, initial=10, label=_("Ambassador: at least this rate (%) of clicks qualified")
    )

    def __init__(self, *args: Any, program: Program | None = None, **kwargs: Any) -> None:
        if program is not None and not args and "initial" not in kwargs:
            kwargs["initial"] = program_initial(program)
        super().__init__(*args, **kwargs)
        self.instance = program

    def clean_allowed_redirect_hosts(self) -> list[str]:
        text = self.cleaned_data.get("allowed_redirect_hosts") or ""
        return [host.strip() for host in text.replace(",", "\n").splitlines() if host.strip()]

    def clean_click_retention_months(self) -> int:
        months = self.cleaned_data.get("click_retention_months")
        if months is None:
            return self.instance.click_retention_months if self.instance is not None else 13
        return int(months)

    def clean_currency(self) -> str:
        return str(self.cleaned_data["currency"]).strip().upper()

    def program_fields(self) -> dict[str, Any]:
        """What program_create / program_update take from this form."""
        return {name: self.cleaned_data[name] for name in SETTINGS_FIELDS}


def program_initial(program: Program) -> dict[str, Any]:
    initial = {name: getattr(program, name) for name in SETTINGS_FIELDS}
    initial["allowed_redirect_hosts"] = "\n".join(program.allowed_redirect_hosts or [])
    return initial


class ProgramStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Program.Status.choices)
    confirm = forms.BooleanField(required=False)


# --- Reward tiers ------------------------------------------------------------------------------------

KIND_CHOICES = [
    ("individual", _("Individual (each ambassador's reward)")),
    ("collective", _("Collective (price ladder)")),
]
METRIC_CHOICES = [
    ("qualified_signups", _("Qualified signups")),
    ("approved_conversions", _("Approved conversions")),
    ("converted_amount", _("Converted amount")),
]
REWARD_CHOICES = [
    ("percent_voucher", _("Percent voucher")),
    ("fixed_voucher", _("Fixed-amount voucher")),
    ("account_credit", _("Account credit")),
    ("custom", _("Custom reward")),
    ("cash", _("Cash (paid by bank transfer)")),
]
DROP_CHOICES = [("amount", _("An amount")), ("percent", _("A percent of the base price"))]


def _amount(label: Any, help_text: Any = "", *, digits: int = 12) -> forms.DecimalField:
    return forms.DecimalField(max_digits=digits, decimal_places=2, required=False, label=label, help_text=help_text)


class TierForm(ApiCheckedForm):
    serializer_class = TierSerializer

    name = forms.CharField(max_length=120, label=_("Name"))
    kind = forms.ChoiceField(choices=KIND_CHOICES, initial="individual", label=_("Kind"))
    is_active = forms.BooleanField(required=False, initial=True, label=_("Active"))
    # An individual tier: what unlocks it, and what it grants.
    # Not required: a collective tier's form (its individual settings disabled by the page's script) sends none.
    metric = forms.ChoiceField(choices=METRIC_CHOICES, initial="qualified_signups", required=False, label=_("Counted"))
    threshold = _amount(_("Threshold"), _("The count (or amount) that unlocks the reward."), digits=14)
    repeat_every = _amount(
        _("Again every"), _("Unlocks again each time the count grows by this. Empty: once."), digits=14
    )
    reward_type = forms.ChoiceField(choices=_choices(REWARD_CHOICES, blank=True), required=False, label=_("Reward"))
    reward_value = _amount(_("Reward value"), _("A percent for a percent voucher, else an amount."))
    reward_text = forms.CharField(
        max_length=255, required=False, label=_("Reward description"), help_text=_("What a custom reward is.")
    )
    reward_currency = forms.CharField(
        max_length=3,
        required=False,
        label=_("Cash currency"),
        help_text=_("For a cash reward: its ISO 4217 code (EUR, USD...). Empty for any other reward."),
    )
    referee_reward_type = forms.ChoiceField(
        choices=_choices(REWARD_CHOICES, blank=True),
        required=False,
        label=_("Welcome reward of the friend"),
        help_text=_("Double-sided: each qualified friend gets this too. Empty: none."),
    )
    referee_reward_value = _amount(_("Welcome reward value"))
    # The range is the API's (TierSerializer); that only a voucher has one is tier_check's rule.
    voucher_valid_days = forms.IntegerField(
        required=False,
        label=_("Vouchers valid for (days)"),
        help_text=_(
            "How long each voucher stays valid once unlocked, from 1 to 3650 days, for a percent or "
            "fixed-amount voucher. Empty: they never expire. A change applies to vouchers unlocked from then on."
        ),
    )
    # A collective tier: the price ladder.
    step = forms.IntegerField(
        required=False,
        label=_("Step (subscribers)"),
        help_text=_("The price drops each time this many more subscribe."),
    )
    drop_type = forms.ChoiceField(choices=_choices(DROP_CHOICES, blank=True), required=False, label=_("Drop in"))
    drop_value = _amount(_("Drop"), _("How much each step takes off: an amount, or a percent of the base price."))

    INDIVIDUAL_FIELDS = ("metric", "threshold", "repeat_every", "reward_type", "reward_value", "reward_text",
                         "reward_currency", "referee_reward_type", "referee_reward_value",
                         "voucher_valid_days")  # fmt: skip
    COLLECTIVE_FIELDS = ("step", "drop_type", "drop_value")

    def __init__(self, *args: Any, program: Program, tier: RewardTier | None = None, **kwargs: Any) -> None:
        if tier is not None and not args and "initial" not in kwargs:
            kwargs["initial"] = {name: getattr(tier, name) for name in TIER_FIELDS}
        super().__init__(*args, **kwargs)
        self.program = program
        self.instance = tier

    def clean_metric(self) -> str:
        return str(self.cleaned_data.get("metric") or RewardTier.Metric.QUALIFIED_SIGNUPS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.errors:
            # The service's own check, as tier_create and tier_update will run it: a preview shows only a
            # tier that could be saved.
            try:
                tier_check(
                    program=self.program,
                    fields=self.tier_fields(),
                    tier_id=self.instance.pk if self.instance is not None else None,
                )
            except ParrainError as exc:
                self.add_service_error(exc)
        return cleaned

    def tier_fields(self) -> dict[str, Any]:
        """What tier_create / tier_update take from this form (every field: the form shows them all)."""
        fields = (
            {name: self.cleaned_data.get(name) for name in TIER_FIELDS}
            | {name: self.cleaned_data.get(name) or "" for name in ("reward_type", "referee_reward_type", "drop_type")}
            | {"reward_currency": (self.cleaned_data.get("reward_currency") or "").strip().upper()}
        )
        if fields.get("kind") == RewardTier.Kind.COLLECTIVE:
            # A ladder grants no voucher: a validity left in the hidden individual settings (sent when the page
            # runs without its script) is ignored, as the other individual settings are.
            fields["voucher_valid_days"] = None
            fields["reward_currency"] = ""
        return fields


# --- Contests ----------------------------------------------------------------------------------------


class UtcDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format=DATETIME_INPUT)


def _moment(label: Any) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        widget=UtcDateTimeInput(),
        input_formats=[DATETIME_INPUT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        help_text=_("In UTC."),
    )


class ContestForm(ApiCheckedForm):
    serializer_class = ContestSerializer

    name = forms.CharField(max_length=120, label=_("Name"))
    prize_text = forms.CharField(max_length=255, label=_("Prize"), help_text=_("What the winners get."))
    starts_at = _moment(_("Starts"))
    ends_at = _moment(_("Ends"))
    winners_count = forms.IntegerField(initial=1, label=_("Number of winners"))
    metric = forms.ChoiceField(
        choices=[("qualified_signups", _("Qualified referrals")), ("approved_conversions", _("Approved conversions"))],
        initial="qualified_signups",
        label=_("Ranked by"),
    )

    def __init__(self, *args: Any, contest: Contest | None = None, **kwargs: Any) -> None:
        if contest is not None and not args and "initial" not in kwargs:
            kwargs["initial"] = {name: getattr(contest, name) for name in CONTEST_FIELDS}
        super().__init__(*args, **kwargs)
        self.instance = contest

    def contest_fields(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in CONTEST_FIELDS}

    def api_data(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        data = super().api_data(cleaned)
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}
