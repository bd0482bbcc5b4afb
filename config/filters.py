"""The API's lists: filtered with a django-filter FilterSet and paged with cursors (config.pagination).

A list view extends `ListApi`, names its `filterset_class`, its `cursor_ordering` and a `queryset` of its
model (read by the schema only; each request builds its own, after the policy allowed it), and answers with
`self.paged(queryset, Serializer)`. A filter value that does not parse is a 400 with a message per field;
the schema lists every filter, `cursor` and `limit`.
"""

from __future__ import annotations

import datetime
from typing import Any

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from config.pagination import CursorPagination


class ListApi(GenericAPIView):  # type: ignore[type-arg]
    filter_backends = [DjangoFilterBackend]
    pagination_class = CursorPagination
    cursor_ordering: tuple[str, ...] = ("-id",)

    def paged(self, queryset: Any, serializer_class: type[BaseSerializer[Any]], **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(queryset))
        return self.get_paginated_response(serializer_class(page, many=True, **kwargs).data)


def strict_boolean(field_name: str, help_text: str, **kwargs: Any) -> Any:
    """`true` or `false`, anything else a 400 (django-filter's BooleanFilter ignores what it cannot read)."""
    return django_filters.TypedChoiceFilter(
        field_name=field_name,
        choices=[("true", "true"), ("false", "false")],
        coerce=lambda value: value == "true",
        help_text=help_text,
        **kwargs,
    )


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date and time, turned to UTC: PostgreSQL refuses offsets past ±15:59 (`-17:03`), and a
    value near year 1 or 9999 may not exist in UTC at all; both are a 400, not a 500."""

    def to_python(self, value: Any) -> Any:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(datetime.UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError(_("Enter a valid date and time."), code="invalid") from None


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
