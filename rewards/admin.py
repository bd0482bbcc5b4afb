"""Django admin for tiers and contests (validated by the same rules as the API), grants, milestones and
contest winners (read only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from core import clock, policies
from core.actors import Actor
from core.admin import ReadOnlyAdmin
from core.errors import ParrainError
from rewards.models import (
    Contest,
    ContestWinner,
    Milestone,
    PayoutDetails,
    PayoutLine,
    PayoutRun,
    PayoutSettings,
    RewardGrant,
    RewardTier,
)
from rewards.services import (
    CONTEST_FIELDS,
    TIER_FIELDS,
    contest_check,
    contest_create,
    contest_update,
    grant_redeem,
    tier_check,
    tier_create,
    tier_update,
)


class RewardTierForm(forms.ModelForm):
    class Meta:
        model = RewardTier
        fields = ["program", *TIER_FIELDS]
        help_texts = {
            "voucher_valid_days": "How many days each voucher stays valid once unlocked (1 to 3650), for a tier "
            "that gives a percent or fixed-amount voucher. Empty: never expires. A change applies to vouchers "
            "unlocked from then on."
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # On change the program is read-only (not in the form): the tier's own.
        program = data.get("program") or (self.instance.program if self.instance.pk else None)
        if program is None:
            return data
        fields = {name: data.get(name) for name in TIER_FIELDS}
        fields["is_active"] = data.get("is_active", False)
        try:
            tier_check(program=program, fields=fields, tier_id=self.instance.pk)
        except ParrainError as exc:
            field = exc.field if exc.field in self.fields else None
            raise ValidationError({field: exc.message} if field else exc.message) from exc
        return data


@admin.register(RewardTier)
class RewardTierAdmin(admin.ModelAdmin):
    form = RewardTierForm
    list_display = ["name", "program", "kind", "metric", "threshold", "repeat_every", "step", "is_active"]
    list_filter = ["program", "kind", "is_active"]
    list_select_related = ["program"]

    def get_readonly_fields(self, request: Any, obj: RewardTier | None = None) -> list[str]:
        # A tier's grants and milestones belong to its program: it never moves to another one.
        return ["program"] if obj is not None else []

    def save_model(self, request: Any, obj: RewardTier, form: Any, change: bool) -> None:
        # Through the services, as the API: the same check, an audit event, the recalculation on commit.
        actor = Actor.for_user(request.user)
        if change:
            changed = {name: form.cleaned_data[name] for name in form.changed_data if name in TIER_FIELDS}
            saved = tier_update(tier=obj, actor=actor, **changed)
        else:
            fields = {name: form.cleaned_data[name] for name in TIER_FIELDS if name in form.cleaned_data}
            saved = tier_create(program=form.cleaned_data["program"], actor=actor, **fields)
        # The admin logs and redirects with the object it handed to save_model: make it the saved row.
        obj.__dict__.update(saved.__dict__)


@admin.action(description="Mark the selected vouchers as redeemed", permissions=["redeem"])
def mark_redeemed(modeladmin: Any, request: Any, queryset: Any) -> None:
    done = 0
    principal = policies.Principal.from_request(request)
    for grant in queryset.select_related("tier"):
        decision = policies.may_redeem_grant(principal, grant)
        if not decision:
            messages.warning(request, f"{grant.voucher_code}: {decision.reason}")
            continue
        try:
            grant_redeem(grant=grant, actor=Actor.for_user(request.user))
            done += 1
        except ParrainError as exc:
            messages.warning(request, f"{grant.voucher_code}: {exc.message}")
    messages.success(request, f"{done} voucher(s) marked redeemed.")


@admin.register(RewardGrant)
class RewardGrantAdmin(ReadOnlyAdmin):
    """Grants change only through the engine and the redeem action, each with its audit event."""

    list_display = [
        "voucher_code", "tier", "ambassador", "referee_signup", "occurrence", "status", "flagged", "expires_at",
    ]  # fmt: skip
    list_filter = ["status", "flagged", "tier__program"]
    search_fields = ["voucher_code", "ambassador__email", "ambassador__code"]
    list_select_related = ["tier", "ambassador", "referee_signup"]
    actions = [mark_redeemed]

    def has_redeem_permission(self, request: Any) -> bool:
        # Offered only to whom the policy lets redeem, whatever Django's model permissions show them.
        return bool(policies.may_redeem_grant(policies.Principal.from_request(request)))


@admin.register(Milestone)
class MilestoneAdmin(ReadOnlyAdmin):
    """A milestone reached is a promise kept: never edited, never taken back."""

    list_display = ["program", "tier", "occurrence", "count_at", "price_after", "reached_at"]
    list_filter = ["program"]


class ContestForm(forms.ModelForm):
    class Meta:
        model = Contest
        fields = ["program", *CONTEST_FIELDS]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        fields = {name: data.get(name) for name in CONTEST_FIELDS}
        changed = set(self.changed_data) if self.instance.pk else set(CONTEST_FIELDS)
        if self.instance.pk and not changed:
            return data
        try:
            contest_check(fields=fields, now=clock.now(), changed=changed)
        except ParrainError as exc:
            field = exc.field if exc.field in self.fields else None
            raise ValidationError({field: exc.message} if field else exc.message) from exc
        return data


class ContestWinnerInline(admin.TabularInline):
    """The frozen ranking: recorded once by the freeze, never edited."""

    model = ContestWinner
    fields = ("rank", "ambassador", "score", "reached_at", "notified_at")
    readonly_fields = ("rank", "ambassador", "score", "reached_at", "notified_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Contest)
class ContestAdmin(admin.ModelAdmin):
    form = ContestForm
    list_display = ["name", "program", "metric", "starts_at", "ends_at", "winners_count", "frozen_at"]
    list_filter = ["program", "metric"]
    list_select_related = ["program"]
    inlines = [ContestWinnerInline]

    def get_readonly_fields(self, request: Any, obj: Contest | None = None) -> list[str]:
        # The program never changes (the ranking counts its events); an ended contest is final.
        if obj is None:
            return []
        if obj.frozen_at is not None or obj.ends_at <= clock.now():
            return ["program", *CONTEST_FIELDS, "frozen_at"]
        return ["program"]

    def has_delete_permission(self, request: Any, obj: Contest | None = None) -> bool:
        # Winners and the audit trail refer to it: a contest is not deleted.
        return False

    def save_model(self, request: Any, obj: Contest, form: Any, change: bool) -> None:
        # Through the services, as the API: the same check, and the contest.created / contest.updated event.
        actor = Actor.for_user(request.user)
        if change:
            changed = {name: form.cleaned_data[name] for name in form.changed_data if name in CONTEST_FIELDS}
            if not changed:
                return  # an ended contest shows read-only: saving it as it is changes nothing
            saved = contest_update(contest=obj, actor=actor, **changed)
        else:
            fields = {name: form.cleaned_data[name] for name in CONTEST_FIELDS if name in form.cleaned_data}
            saved = contest_create(program=form.cleaned_data["program"], actor=actor, **fields)
        obj.__dict__.update(saved.__dict__)


@admin.register(ContestWinner)
class ContestWinnerAdmin(ReadOnlyAdmin):
    list_display = ["contest", "rank", "ambassador", "score", "reached_at", "notified_at"]
    list_filter = ["contest__program"]
    list_select_related = ["contest", "ambassador"]


# --- Payouts: read only; runs are created and paid on the staff console (rewards.services.payouts) -----


class PayoutLineInline(admin.TabularInline):
    model = PayoutLine
    fields = ("ambassador", "grant", "kind", "amount_minor", "currency", "status", "skip_reason")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(PayoutRun)
class PayoutRunAdmin(ReadOnlyAdmin):
    """A payout is paid once, with its audit event: from the staff console, never edited here."""

    list_display = ["pk", "program", "period_start", "period_end", "state", "created_at", "paid_at", "paid_by"]
    list_filter = ["state", "program"]
    list_select_related = ["program"]
    inlines = [PayoutLineInline]


@admin.register(PayoutSettings)
class PayoutSettingsAdmin(ReadOnlyAdmin):
    list_display = ["program", "hold_days", "debtor_name", "updated_at"]
    list_select_related = ["program"]
    exclude = ["debtor_iban"]


@admin.register(PayoutDetails)
class PayoutDetailsAdmin(ReadOnlyAdmin):
    """Ambassadors' bank details: the IBAN masked, as on the staff pages."""

    list_display = ["ambassador", "account_holder", "iban_masked", "bic", "updated_at"]
    fields = ("ambassador", "account_holder", "iban_masked", "bic", "updated_at")
    readonly_fields = fields
    list_select_related = ["ambassador"]
