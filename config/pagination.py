"""The API's paging: DRF's limit/offset, bounded so that no number a client sends reaches SQL unchecked."""

from __future__ import annotations

from rest_framework import pagination
from rest_framework.request import Request


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """`?limit=&offset=` with the limit cut to max_limit and the offset clamped.

    Without a cap, `?limit=99999999999999999999` reaches PostgreSQL as a LIMIT beyond bigint: a 500.
    Negative, zero or non-numeric values fall back to the defaults, as in DRF.
    """

    max_limit = 500
    # Past any real table: DRF answers an empty page without running the slice when offset > count.
    max_offset = 2**62

    def get_offset(self, request: Request) -> int:
        return min(super().get_offset(request), self.max_offset)
