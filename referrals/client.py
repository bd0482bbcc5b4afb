"""What a request tells about the visitor: their IP (behind trusted proxies only) and visitor id."""

from __future__ import annotations

import uuid
from functools import lru_cache

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
    value = _read_signed(request, VISITOR_COOKIE, VISITOR_SALT)
    if value:
        return value, False
    return uuid.uuid4().hex, True


def set_visitor_cookie(response: HttpResponse, value: str) -> None:
    _set_signed(response, VISITOR_COOKIE, VISITOR_SALT, value, VISITOR_MAX_AGE)


def referral_cookie_name(program_id: int) -> str:
    return f"prn_ref_{program_id}"


def referral_click_id(request: HttpRequest, program_id: int, window_days: int) -> str | None:
    """The click id the browser carries for this program, if signed by us and inside the window."""
    return _read_signed(request, referral_cookie_name(program_id), REFERRAL_SALT, max_age=window_days * 86400)


def set_referral_cookie(response: HttpResponse, program_id: int, click_id: str, window_days: int) -> None:
    _set_signed(response, referral_cookie_name(program_id), REFERRAL_SALT, click_id, window_days * 86400)


# Signed as HttpResponse.set_signed_cookie would (a TimestampSigner whose salt names the cookie, so a
# value cannot be moved to another cookie), with the signer built once per cookie and secret rather
# than twice per redirect: a few percent of the redirect's time (bench/inprocess.py).


@lru_cache(maxsize=256)
def _signer(salt: str, key: str, fallback_keys: tuple[str, ...]) -> signing.TimestampSigner:
    return signing.TimestampSigner(key=key, fallback_keys=fallback_keys, salt=salt)


def cookie_signer(name: str, salt: str) -> signing.TimestampSigner:
    return _signer(f"{salt}:{name}", settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))


def _read_signed(request: HttpRequest, name: str, salt: str, max_age: int | None = None) -> str | None:
    value = request.COOKIES.get(name)
    if not value:
        return None
    try:
        return cookie_signer(name, salt).unsign(value, max_age=max_age)
    except signing.BadSignature:
        return None


def _set_signed(response: HttpResponse, name: str, salt: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        cookie_signer(name, salt).sign(value),
        max_age=max_age,
        httponly=True,
        samesite="Lax",
        secure=settings.REFERRAL_COOKIE_SECURE,
    )
