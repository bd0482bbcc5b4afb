"""What a request tells about the visitor: their IP (behind trusted proxies only) and visitor id."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from ipware import get_client_ip

VISITOR_COOKIE = "prn_vid"
VISITOR_SALT = "parrain.visitor"
REFERRAL_SALT = "parrain.referral"
VISITOR_MAX_AGE = 365 * 24 * 3600


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, unless the deployment declares proxies in front of it (TRUSTED_PROXY_COUNT).

    Trusting X-Forwarded-For without a proxy would let anyone pick their own address and dodge
    the velocity limit.
    """
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return request.META.get("REMOTE_ADDR") or None
    ip, _routable = get_client_ip(request, proxy_count=count)
    return ip


def visitor_id(request: HttpRequest) -> tuple[str, bool]:
    """(id, is_new): the long-lived, signed visitor id of this browser."""
    try:
        value = request.get_signed_cookie(VISITOR_COOKIE, salt=VISITOR_SALT, default=None)
    except signing.BadSignature:
        value = None
    if value:
        return value, False
    return uuid.uuid4().hex, True


def set_visitor_cookie(response: HttpResponse, value: str) -> None:
    response.set_signed_cookie(
        VISITOR_COOKIE,
        value,
        salt=VISITOR_SALT,
        max_age=VISITOR_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=settings.REFERRAL_COOKIE_SECURE,
    )


def referral_cookie_name(program_id: int) -> str:
    return f"prn_ref_{program_id}"


def referral_click_id(request: HttpRequest, program_id: int, window_days: int) -> str | None:
    """The click id the browser carries for this program, if signed by us and inside the window."""
    try:
        return request.get_signed_cookie(
            referral_cookie_name(program_id), salt=REFERRAL_SALT, default=None, max_age=window_days * 86400
        )
    except signing.BadSignature:
        return None


def set_referral_cookie(response: HttpResponse, program_id: int, click_id: str, window_days: int) -> None:
    response.set_signed_cookie(
        referral_cookie_name(program_id),
        click_id,
        salt=REFERRAL_SALT,
        max_age=window_days * 86400,
        httponly=True,
        samesite="Lax",
        secure=settings.REFERRAL_COOKIE_SECURE,
    )
