"""The API's paging: opaque cursors over a stable unique ordering, bounded so that nothing a client sends
reaches SQL unchecked.

Every list under /api/v1/ answers `{"next": url|null, "previous": url|null, "results": [...]}`. `?limit=`
sets the page size (default 50, at most 500: more is cut to 500); a limit that is not a positive whole
number, or a cursor that was not handed out by us, is a 400 in the API's error shape (config.exceptions),
never a 500. A view sets `cursor_ordering` to its ordering: its first field must be unique and unchanging
(an id), so that a row written between two pages is neither seen twice nor skips another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request

# PostgreSQL's bigint: a position past it would reach SQL as an out-of-range literal.
BIGINT_MAX = 2**63 - 1


class CursorPagination(pagination.CursorPagination):
    page_size = 50
    max_page_size = 500
    page_size_query_param = "limit"
    page_size_query_description = _(  # type: ignore[assignment]
        "How many results per page: 1 to 500 (more is cut to 500); 50 by default."
    )
    cursor_query_description = _(  # type: ignore[assignment]
        "The page to answer: the `next` or `previous` link of the page before."
    )
    ordering: Any = ("-id",)
    invalid_limit_message = _("A whole number from 1 to 500.")
    invalid_cursor_message = _(  # type: ignore[assignment]
        "Invalid cursor: use the `next` or `previous` link of a page, unchanged."
    )

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> tuple[str, ...]:
        ordering: Sequence[str] = getattr(view, "cursor_ordering", None) or self.ordering
        return tuple(ordering)

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param, "")
        if raw == "":
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: [self.invalid_limit_message]})
        return min(int(raw), self.max_page_size)

    def paginate_queryset(self, queryset: QuerySet[Any], request: Request, view: Any = None) -> list[Any] | None:
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> pagination.Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from None
        if cursor is not None and cursor.position is not None and not self._valid_position(cursor.position):
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
        return cursor

    def _valid_position(self, position: Any) -> bool:
        """Whether a cursor's position is a value of the ordering's first field (it is compared with it in SQL)."""
        try:
            field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
            value = field.to_python(position)
        except (FieldDoesNotExist, DjangoValidationError, ValueError, TypeError):
            return False
        if isinstance(value, int) and not -BIGINT_MAX <= value <= BIGINT_MAX:
            return False
        return value is not None and "\x00" not in str(position)
