"""Django admin for the tracking core: read-only views of the rows the services write.

Attributions change only through overrides and reviews (API and audit pages), which recount and audit.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from referrals.models import AuditEvent, Click, Conversion, ReferralLink, Signup


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(ReferralLink)
class ReferralLinkAdmin(ReadOnlyAdmin):
    list_display = ["code", "channel", "ambassador", "created_at"]
    search_fields = ["code", "ambassador__email"]
    list_select_related = ["ambassador"]


@admin.register(Click)
class ClickAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "ambassador", "link", "user_agent_family", "referer_host", "is_bot"]
    list_filter = ["is_bot"]
    list_select_related = ["ambassador", "link"]
    show_full_result_count = False  # counting a large click table on each page view is slow


@admin.register(Signup)
class SignupAdmin(ReadOnlyAdmin):
    list_display = ["email", "program", "ambassador", "method", "status", "reason", "created_at"]
    list_filter = ["program", "status", "method", "reason"]
    search_fields = ["email", "external_id", "ambassador__code"]
    list_select_related = ["program", "ambassador"]


@admin.register(Conversion)
class ConversionAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "program", "amount", "currency", "status", "occurred_at", "approve_after"]
    list_filter = ["program", "status"]
    search_fields = ["external_id", "signup__email"]
    list_select_related = ["program"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "action", "object_type", "object_id", "actor_type", "actor_label", "reason"]
    list_filter = ["action", "actor_type", "object_type"]
    search_fields = ["object_id", "actor_label", "reason"]
