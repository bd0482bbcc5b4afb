"""Django admin for tiers (validated by the same rule as the API), grants and milestones."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from config.errors import ParrainError
from referrals.admin import ReadOnlyAdmin
from referrals.audit import Actor
from rewards.models import Milestone, RewardGrant, RewardTier
from rewards.services import TIER_FIELDS, grant_redeem, recalculation_enqueue, tier_check


class RewardTierForm(forms.ModelForm):
    class Meta:
        model = RewardTier
        fields = ["program", *TIER_FIELDS]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        program = data.get("program")
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

    def save_model(self, request: Any, obj: RewardTier, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        recalculation_enqueue(program_id=obj.program_id, ambassador_ids=None)


@admin.action(description="Mark the selected vouchers as redeemed")
def mark_redeemed(modeladmin: Any, request: Any, queryset: Any) -> None:
    done = 0
    for grant in queryset.select_related("tier"):
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


@admin.register(Milestone)
class MilestoneAdmin(ReadOnlyAdmin):
    """A milestone reached is a promise kept: never edited, never taken back."""

    list_display = ["program", "tier", "occurrence", "count_at", "price_after", "reached_at"]
    list_filter = ["program"]
