"""Request guards that must run before any view reads the URL or the body."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from config.exceptions import error_response

# C0 controls and DEL. No URL of ours has one, and PostgreSQL refuses NUL in text outright, so a `%00`
# reaching a lookup would be a 500.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


# The referral redirect checks its code's shape before any query and answers a malformed one with its
# friendly 404 page; it reads one parameter, `to`, checked as a URL and never stored, and a mangled one
# falls back to the destination (tests/referrals/test_redirect.py): a shared link fails kindly.
_EXEMPT_PREFIXES = ("/r/",)


def url_has_control_characters(path: str, query_string: str) -> bool:
    """True when the decoded path, or the query string once percent-decoded, holds a control character."""
    if path.startswith(_EXEMPT_PREFIXES):
        return False
    return bool(_CONTROL_CHARACTERS.search(path) or _CONTROL_CHARACTERS.search(unquote(query_string)))


class ControlCharactersMiddleware:
    """Refuse with 400 a URL holding NUL or another control character, before any view or lookup sees it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if url_has_control_characters(request.path_info, request.META.get("QUERY_STRING", "")):
            return error_response(request, 400, "The URL holds a control character.")
        return self.get_response(request)


class BodySizeLimitMiddleware:
    """Refuse oversized bodies with 413 before anything buffers them.

    Django enforces DATA_UPLOAD_MAX_MEMORY_SIZE for form posts, but DRF's JSON parser reads the raw
    stream, so an API client could otherwise make a worker hold a body of any size in memory.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return error_response(request, 400, "Content-Length is not a number.")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return error_response(request, 413, f"Request body too large: {length} bytes, the limit is {limit}.")
        return self.get_response(request)
