"""Filters of the API's signup and audit-event lists (config.filters)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q

from ambassadors.models import Program
from ambassadors.normalise import code_key
from config.filters import IsoDateTimeFilter
from core.models import AuditEvent
from referrals.models import Signup


class SignupFilter(django_filters.FilterSet):
    ambassador = django_filters.CharFilter(
        method="filter_ambassador", help_text="The referring ambassador's code; `none` for unattributed signups."
    )
    email = django_filters.CharFilter(lookup_expr="iexact", help_text="The subscriber's e-mail (any case).")
    created_after = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Recorded at or after (ISO 8601)."
    )
    created_before = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Recorded before (ISO 8601)."
    )

    class Meta:
        model = Signup
        fields = ["status", "method", "reason"]

    def filter_ambassador(self, queryset: Any, name: str, value: str) -> Any:
        if value.lower() == "none":
            return queryset.filter(ambassador__isnull=True)
        return queryset.filter(ambassador__code_key=code_key(value))


class AuditEventFilter(django_filters.FilterSet):
    after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text="At or after (ISO 8601).")
    before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt", help_text="Before (ISO 8601).")
    action = django_filters.CharFilter(lookup_expr="startswith", help_text="The action, or its start (`signup.`).")
    actor = django_filters.CharFilter(method="filter_actor", help_text="Who acted: their label or their id.")
    program = django_filters.CharFilter(method="filter_program", help_text="The program's slug.")

    class Meta:
        model = AuditEvent
        fields = ["program_id", "actor_type", "actor_id", "object_type", "object_id"]

    def filter_actor(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.filter(Q(actor_label=value) | Q(actor_id=value))

    def filter_program(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.filter(program_id__in=Program.objects.filter(slug=value).values("pk"))
