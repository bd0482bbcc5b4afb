"""Filters of the API's tier and contest lists (config.filters)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q

from config.filters import strict_boolean
from core import clock
from rewards.models import Contest, RewardTier


class TierFilter(django_filters.FilterSet):
    is_active = strict_boolean("is_active", "Only the tiers that are on (`true`) or off (`false`).")

    class Meta:
        model = RewardTier
        fields = ["kind", "is_active"]


class ContestFilter(django_filters.FilterSet):
    # A contest's status is the clock's, never stored (Contest.status_at): filtered the same way in SQL.
    status = django_filters.ChoiceFilter(
        choices=Contest.Status.choices, method="filter_status", help_text="Scheduled, running or ended, now."
    )
    running = strict_boolean(
        "running", "Only the contests running now (`true`), or the others (`false`).", method="filter_running"
    )

    class Meta:
        model = Contest
        fields: list[str] = []

    def filter_status(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.filter(_status_q(value))

    def filter_running(self, queryset: Any, name: str, value: bool) -> Any:
        running = _status_q(Contest.Status.RUNNING)
        return queryset.filter(running if value else ~running)


def _status_q(status: str) -> Q:
    now = clock.now()
    if status == Contest.Status.SCHEDULED:
        return Q(starts_at__gt=now)
    if status == Contest.Status.RUNNING:
        return Q(starts_at__lte=now, ends_at__gt=now)
    return Q(ends_at__lte=now)
