"""The API's one error shape, and the DRF exception handler that maps domain errors onto it.

Every error under /api/ is JSON: `{"detail": "<message>"}`, or, for a 400 about the input's fields,
`{"<field>": ["<message>", ...]}` (DRF's own shapes, so clients see one format whichever layer refused).
Errors raised outside DRF (unknown URLs, oversized bodies, CSRF, hostile URLs, unexpected exceptions)
answer the same shape through `error_response` and the handlers in config.health.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ParrainError

API_PREFIX = "/api/"


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def error_response(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    """An error answered outside DRF: the API's JSON shape under /api/, a plain HTML page elsewhere."""
    if is_api_request(request):
        return JsonResponse({"detail": detail}, status=status)
    title = f"{escape(detail)} ({status})"
    return HttpResponse(
        f'<!doctype html><html lang="en"><title>{title}</title><h1>{title}</h1></html>',
        status=status,
        content_type="text/html; charset=utf-8",
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ParrainError):
        return Response(exc.as_detail(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
