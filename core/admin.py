"""Django admin for the audit trail: read only, as the trail itself is."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from core.models import AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "action", "object_type", "object_id", "actor_type", "actor_label", "reason"]
    list_filter = ["action", "actor_type", "object_type"]
    search_fields = ["object_id", "actor_label", "reason"]
