"""Django admin for tiers (validated by the same rule as the API), grants and milestones."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from core import policies
from core.actors import Actor
from core.admin import ReadOnlyAdmin
from core.errors import ParrainError
from rewards.models import Milestone, RewardGrant, RewardTier
from rewards.services import TIER_FIELDS, grant_redeem, tier_check, tier_create, tier_update


class RewardTierForm(forms.ModelForm):
    class Meta:
        model = RewardTier
        fields = ["program", *TIER_FIELDS]

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

    list_display = ["voucher_code", "tier", "ambassador", "referee_signup", "occurrence", "status", "flagged"]
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
