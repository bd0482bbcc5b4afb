"""Small helpers every JSON API view shares."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from core.errors import InvalidInput


def json_object(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request's JSON body, refused with a 400 unless it is an object (`{}` for no body when allowed)."""
    data = request.data
    if allow_empty and (data is None or data == {} or data == ""):
        return {}
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object.")
    return data
