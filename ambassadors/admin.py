"""Django admin for programs, ambassadors and API keys. Writes go through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from ambassadors.models import Ambassador, AmbassadorCounters, ApiKey, Program, ProgramCounters
from ambassadors.services import program_check, program_counters_ensure
from config.errors import ParrainError


class ProgramForm(forms.ModelForm):
    class Meta:
        model = Program
        fields = [
            "slug", "name", "description", "destination_url", "allowed_redirect_hosts", "attribution_window_days",
            "attribution_model", "hold_period_days", "currency", "base_price", "floor_price", "velocity_limit",
            "leaderboard_public", "status",
        ]  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            program_check(
                currency=data.get("currency", ""),
                base_price=data.get("base_price"),
                floor_price=data.get("floor_price"),
                allowed_redirect_hosts=data.get("allowed_redirect_hosts", []),
            )
        except ParrainError as exc:
            raise ValidationError({exc.field: exc.message} if exc.field else exc.message) from exc
        return data


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    form = ProgramForm
    list_display = ["name", "slug", "status", "currency", "attribution_model", "created_at"]
    list_filter = ["status", "attribution_model"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def save_model(self, request: Any, obj: Program, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        program_counters_ensure(program=obj)


@admin.register(Ambassador)
class AmbassadorAdmin(admin.ModelAdmin):
    list_display = ["code", "email", "display_name", "program", "is_active", "created_at"]
    list_filter = ["program", "is_active"]
    search_fields = ["code", "email", "display_name"]
    list_select_related = ["program"]
    raw_id_fields = ["user"]
    readonly_fields = ["code", "code_key", "created_at"]

    def has_add_permission(self, request: Any) -> bool:
        # Enrolment goes through the join page or the API, which allocate codes and counters.
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "program", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["program"]
    readonly_fields = ["prefix", "key_hash", "scopes", "created_at", "last_used_at"]
    fields = ["program", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request: Any) -> bool:
        # Keys are shown once: `manage.py create_api_key` prints them.
        return False


@admin.register(AmbassadorCounters)
class AmbassadorCountersAdmin(admin.ModelAdmin):
    list_display = ["ambassador", "signups", "qualified", "conversions", "converted_amount", "updated_at"]
    list_select_related = ["ambassador"]
    readonly_fields = ["ambassador", "signups", "qualified", "conversions", "converted_amount", "updated_at"]

    def has_add_permission(self, request: Any) -> bool:
        return False


@admin.register(ProgramCounters)
class ProgramCountersAdmin(admin.ModelAdmin):
    list_display = ["program", "signups", "qualified", "updated_at"]
    readonly_fields = ["program", "signups", "qualified", "updated_at"]

    def has_add_permission(self, request: Any) -> bool:
        return False
