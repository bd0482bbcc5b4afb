"""Rate limits outside DRF (the hosted form, Stripe's webhook), counted by django-ratelimit in the cache;
and the window counters the API's throttles and its bad-key limit count in (ambassadors.auth).

The cache is CACHE_URL: Redis in production, shared by every web process. A cache that fails lets the
request through (logged): a limit is a protection, never a reason to refuse everyone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest
from django_ratelimit.core import get_usage

logger = logging.getLogger(__name__)


def rate_limit_wait(
    request: HttpRequest | Any,
    *,
    group: str,
    key: Callable[[str, Any], str],
    rate: str,
    increment: bool = True,
) -> int | None:
    """Seconds until the window ends when `key` is past `rate` in `group` (count this request first when
    `increment`), else None. `rate` is django-ratelimit's "<count>/<s|m|h|d>" (e.g. "10/m", "10/minute")."""
    try:
        usage = get_usage(request, group=group, key=key, rate=rate, increment=increment)
    except Exception:
        logger.warning("rate limit %s not counted: the cache failed", group, exc_info=True)
        return None
    if not usage or not usage["should_limit"]:
        return None
    return max(int(usage["time_left"]), 1)


def window_count(key: str, *, expires_in: int) -> int:
    """Add one to the counter `key` of the shared cache and return it; the counter expires `expires_in`
    seconds after its first count. On Redis: INCR and EXPIRE NX in one round trip, whatever the count.
    Raises what the cache raises (the caller decides whether to let the request through)."""
    return window_counts([(key, expires_in)])[0]


def window_counts(counters: Sequence[tuple[str, int]]) -> list[int]:
    """window_count of several counters, each a (key, expires_in), in one round trip to Redis."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        client = _redis_client(cache)
        with client.pipeline(transaction=False) as pipe:
            for key, expires_in in counters:
                full_key = cache.make_key(key)  # our own key: nothing to validate
                pipe.incr(full_key)
                pipe.expire(full_key, expires_in, nx=True)
            replies = pipe.execute()
        return [int(count) for count in replies[::2]]
    # Local memory (development, the SQLite-only test run): the same counts, in this process.
    return [1 if cache.add(key, 1, expires_in) else cache.incr(key) for key, expires_in in counters]


def window_peek(key: str) -> int:
    """The count of the counter `key` (window_count's), without counting: 0 when there is none."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        value = _redis_client(cache).get(cache.make_key(key))
        return int(value) if value is not None else 0
    return int(cache.get(key) or 0)


def _redis_client(cache: RedisCache) -> Any:
    """The cache's Redis client, built once per cache object (Django builds one per call: ~50 us)."""
    client = cache.__dict__.get("_parrain_client")
    if client is None:
        client = cache.__dict__["_parrain_client"] = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    return client


# allauth answers its own limits (ACCOUNT_RATE_LIMITS: log-in, sign-up, codes) with a bare 429 and no
# Retry-After; its limits are per minute, so a client waits at most about this long.
ALLAUTH_RETRY_AFTER = 60


class RetryAfterMiddleware:
    """Adds `Retry-After` to a 429 that has none (allauth's), so every 429 tells when to come back."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        response = self.get_response(request)
        if response.status_code == 429 and not response.has_header("Retry-After"):
            response["Retry-After"] = str(ALLAUTH_RETRY_AFTER)
        return response
