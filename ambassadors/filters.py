"""Filters of the API's program and webhook lists (config.filters)."""

from __future__ import annotations

import django_filters

from ambassadors.models import Program, WebhookDelivery, WebhookEndpoint
from config.filters import strict_boolean


class ProgramFilter(django_filters.FilterSet):
    class Meta:
        model = Program
        fields = ["status"]


class WebhookEndpointFilter(django_filters.FilterSet):
    is_active = strict_boolean("is_active", "Only the endpoints that are on (`true`) or off (`false`).")

    class Meta:
        model = WebhookEndpoint
        fields = ["is_active"]


class WebhookDeliveryFilter(django_filters.FilterSet):
    class Meta:
        model = WebhookDelivery
        fields = ["status"]
