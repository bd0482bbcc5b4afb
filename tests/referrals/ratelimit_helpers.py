"""The cache the rate-limit tests count in: Redis, as in production, when REDIS_URL is set.

The test settings keep CACHE_URL's default (local memory) so the SQLite-only run needs no server; these
tests point the default cache at REDIS_URL when there is one, so what they check is what production does.
"""

from __future__ import annotations

import os
from typing import Any

REDIS_BACKEND = "django.core.cache.backends.redis.RedisCache"


def redis_cache(location: str) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": REDIS_BACKEND,
            "LOCATION": location,
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }


def use_shared_cache(settings: Any) -> bool:
    """Point the default cache at REDIS_URL when set (and empty it); True when it is Redis."""
    from django.core.cache import cache

    url = os.environ.get("REDIS_URL")
    if url:
        settings.CACHES = redis_cache(url)
    cache.clear()
    return bool(url)
