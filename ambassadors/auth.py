"""API authentication and permissions: program-scoped bearer keys for integrations, sessions for people."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NoReturn, cast

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from ambassadors.models import ApiKey, Program
from ambassadors.services import api_key_hash, api_key_touch
from config import db
from core import policies, roles
from core.errors import NotFound
from core.ratelimits import window_counts, window_peek

logger = logging.getLogger(__name__)

KEY_FAILURES_GROUP = "parrain.api_key_failures"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`; request.auth is the ApiKey, request.user stays anonymous."""

    keyword = "bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        # An address that sent too many bad keys is refused before any lookup (RATE_LIMIT_API_KEY_FAILURES).
        _refuse_if_too_many_failures(request, increment=False)
        if len(header) != 2:
            _key_failed(request, "Use 'Authorization: Bearer <key>' with one key.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            _key_failed(request, "The API key is not valid.")
        key = live_key(raw)
        if key is None:
            _key_failed(request, "The API key is not valid or was revoked.")
        api_key_touch(key=key)
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


# Every API call looks its key up with its program: what `ApiKey.objects.select_related("program")
# .filter(key_hash=...).first()` returns, as one fixed statement built once per process from the models'
# fields (config.db: prepared on PostgreSQL). Building that query through the ORM cost more Python than the
# rest of the authentication. The rows become model instances as the ORM makes them (Model.from_db, each
# column through its field's converters: the scopes' JSON, for one).
_Converters = list[tuple[list[Callable[..., Any]], Any]]
_KEY_LOOKUP: tuple[str, _Converters, int] | None = None


def _columns(model: type[Model], alias: str) -> tuple[list[str], _Converters]:
    connection = connections[DEFAULT_DB_ALIAS]
    quote = connection.ops.quote_name
    columns: list[str] = []
    converters: _Converters = []
    for field in model._meta.concrete_fields:
        columns.append(f"{alias}.{quote(field.column)}")
        col = field.get_col(alias)
        converters.append((connection.ops.get_db_converters(col) + col.get_db_converters(connection), col))
    return columns, converters


def _key_lookup() -> tuple[str, _Converters, int]:
    global _KEY_LOOKUP
    if _KEY_LOOKUP is None:
        quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
        key_columns, key_converters = _columns(ApiKey, "k")
        program_columns, program_converters = _columns(Program, "p")
        sql = (
            f"SELECT {', '.join(key_columns + program_columns)} "  # noqa: S608 (names from the models)
            f"FROM {quote(ApiKey._meta.db_table)} k INNER JOIN {quote(Program._meta.db_table)} p "
            f"ON p.{quote(Program._meta.pk.column)} = k.{quote(ApiKey._meta.get_field('program').column)} "
            f"WHERE k.{quote(ApiKey._meta.get_field('key_hash').column)} = %s LIMIT 1"
        )
        _KEY_LOOKUP = (sql, key_converters + program_converters, len(key_columns))
    return _KEY_LOOKUP


def live_key(raw: str) -> ApiKey | None:
    """The key a client sent, its program loaded, unless it is unknown or revoked: what every API call
    accepts (DRF's authentication here, and config.api_fast_path)."""
    key = api_key_with_program(api_key_hash(raw))
    return key if key is not None and key.revoked_at is None else None


def api_key_with_program(key_hash: str) -> ApiKey | None:
    """The key with this hash, its program loaded alongside (revoked keys too: the caller decides)."""
    sql, converters, split = _key_lookup()
    row = db.fetch_one(sql, [key_hash])
    connection = connections[DEFAULT_DB_ALIAS]
    # The statement just ran on this request's connection (config.db retries it once on a dropped one):
    # that is the health check CONN_HEALTH_CHECKS would otherwise make with a `SELECT 1` round trip of its
    # own at the request's first transaction.
    connection.health_check_done = True  # type: ignore[attr-defined]  # Django sets it, stubs omit it
    if row is None:
        return None
    values = []
    for value, (field_converters, col) in zip(row, converters, strict=True):
        for converter in field_converters:
            value = converter(value, col, connection)
        values.append(value)
    key = ApiKey.from_db(DEFAULT_DB_ALIAS, [f.attname for f in ApiKey._meta.concrete_fields], values[:split])
    program = Program.from_db(DEFAULT_DB_ALIAS, [f.attname for f in Program._meta.concrete_fields], values[split:])
    key.program = program
    return key


def _client_ident(group: str, request: Any) -> str:
    """The client's address as DRF's throttles see it (NUM_PROXIES follows TRUSTED_PROXY_COUNT)."""
    return BaseThrottle().get_ident(request) or ""


@dataclass(frozen=True, slots=True)
class Window:
    """One throttle's counter for one request: its key, its limit, and the seconds left in its window."""

    key: str
    limit: int
    expires_in: int
    wait: float


def counting_window(name: str, rate: str) -> Window:
    """The current fixed window of the counter `name` at `rate` ("<count>/<second|minute|hour|day>"): each
    window has its own key, which expires a second after the window ends."""
    limit, period = parse_rate(rate)
    now = time.time()
    window = int(now // period)
    return Window(key=f"{name}:{window}", limit=limit, expires_in=period + 1, wait=(window + 1) * period - now)


def key_failures_wait(request: Any, *, increment: bool) -> int | None:
    """Seconds the client's address stays refused for sending too many bad keys (RATE_LIMIT_API_KEY_FAILURES),
    counting this request as one more when `increment`; None while it may still try.

    Counted per fixed window in the shared cache, as the throttles count (one INCR, or one GET to look): a
    cache that fails lets the request through (logged)."""
    window = counting_window(
        f"parrain:keyfail:{_client_ident(KEY_FAILURES_GROUP, request)}", settings.RATE_LIMIT_API_KEY_FAILURES
    )
    try:
        count = window_counts([(window.key, window.expires_in)])[0] if increment else window_peek(window.key)
    except Exception:
        logger.warning("bad API keys not counted: the cache failed", exc_info=True)
        return None
    if count <= window.limit:
        return None
    return max(math.ceil(window.wait), 1)


def _refuse_if_too_many_failures(request: Request, *, increment: bool) -> None:
    wait = key_failures_wait(request, increment=increment)
    if wait is not None:
        raise exceptions.Throttled(wait=wait, detail=_("Too many invalid API keys from this address. Try again later."))


def _key_failed(request: Request, message: str) -> NoReturn:
    """Counts a bad key against the client's address: 401, or 429 once past the limit. Never returns."""
    _refuse_if_too_many_failures(request, increment=True)
    raise exceptions.AuthenticationFailed(message)


def request_api_key(request: Request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


def require(decision: policies.Decision) -> None:
    """Answer a refused policy decision (core.policies) over HTTP: 401, 403 or 404; an allowed one passes."""
    if decision:
        return
    if decision.outcome is policies.Outcome.UNAUTHENTICATED:
        raise exceptions.NotAuthenticated()
    if decision.outcome is policies.Outcome.HIDDEN:
        raise NotFound(decision.reason)
    raise exceptions.PermissionDenied(decision.reason)


class KeyOrAuthenticated(permissions.BasePermission):
    """Authenticated means a signed-in user or a valid key; finer rules are checked in the view."""

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = policies.Principal.from_request(request)
        return principal.is_api_key or principal.is_authenticated


_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@lru_cache(maxsize=64)
def parse_rate(rate: str) -> tuple[int, int]:
    """(count, seconds) of "<count>/<second|minute|hour|day>", as DRF reads it (only the first letter)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0]]


class WindowRateThrottle(BaseThrottle):
    """A rate "<count>/<second|minute|hour|day>" counted per window in the shared cache: one INCR per request.

    DRF's SimpleRateThrottle keeps the time of every request of the window in one cache entry, read and
    written whole on each request: at an API key's default 100,000/hour that entry grows to 100,000 floats,
    about a megabyte moved twice per request in the middle of a launch. A counter per window costs the same
    at any rate. Windows are fixed (the minute, the hour...); a refused request counts too, so a client
    hammering past its limit does not reopen it. A cache that fails lets the request through (logged).
    """

    scope = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def rate(self, request: Request, view: Any) -> str | None:
        return cast(str | None, api_settings.DEFAULT_THROTTLE_RATES.get(self.scope))

    def ident(self, request: Request, view: Any) -> str | None:
        """Who is counted (None: nobody, the request passes)."""
        raise NotImplementedError

    def window(self, request: Request, view: Any) -> Window | None:
        """This request's counter, or None when nobody is counted (no rate, or no one to count)."""
        rate = self.rate(request, view)
        ident = self.ident(request, view) if rate else None
        if rate is None or ident is None:
            return None
        return counting_window(f"parrain:throttle:{self.scope}:{ident}", rate)

    def allow_request(self, request: Request, view: Any) -> bool:
        return throttles_allow([self], request, view)

    def wait(self) -> float | None:
        return self._wait


def throttles_allow(throttles: Sequence[WindowRateThrottle], request: Request, view: Any) -> bool:
    """Count the request in every throttle's window, all in one round trip to the cache: True when each lets
    it through. A refusing throttle's wait() then says how long; a cache that fails lets it through."""
    windows = [(throttle, throttle.window(request, view)) for throttle in throttles]
    counted = [(throttle, window) for throttle, window in windows if window is not None]
    if not counted:
        return True
    try:
        counts = window_counts([(window.key, window.expires_in) for _throttle, window in counted])
    except Exception:
        scopes = ", ".join(throttle.scope for throttle, _window in counted)
        logger.warning("throttles %s not counted: the cache failed", scopes, exc_info=True)
        return True
    allowed = True
    for (throttle, window), count in zip(counted, counts, strict=True):
        if count > window.limit:
            throttle._wait = window.wait
            allowed = False
    return allowed


def throttles_check(throttles: Sequence[WindowRateThrottle], request: Request, view: Any) -> None:
    """What APIView.check_throttles does, the throttles counted in one round trip: Throttled, with the
    longest wait of those refusing, when one refuses."""
    if not throttles_allow(throttles, request, view):
        waits = [wait for throttle in throttles if (wait := throttle.wait()) is not None]
        raise exceptions.Throttled(wait=max(waits, default=None))


class CountedThrottles:
    """An APIView mixin: its throttles count a request in one round trip to the cache, not one each."""

    def check_throttles(self, request: Request) -> None:
        throttles = self.get_throttles()  # type: ignore[attr-defined]
        if all(isinstance(throttle, WindowRateThrottle) for throttle in throttles):
            throttles_check(throttles, request, self)
            return
        super().check_throttles(request)  # type: ignore[misc]


class ApiKeyRateThrottle(WindowRateThrottle):
    """Every request of a key (THROTTLE_API_KEY); requests without a key are not counted here."""

    scope = "api_key"

    def ident(self, request: Request, view: Any) -> str | None:
        key = request_api_key(request)
        return None if key is None else str(key.pk)


class _ViewScopedThrottle(WindowRateThrottle):
    """A throttle of the view's `throttle_scope`: `<scope>_key` or `<scope>_ip` in DEFAULT_THROTTLE_RATES,
    read at each request (settings may change in tests). Only writes are limited."""

    suffix = ""

    def rate(self, request: Request, view: Any) -> str | None:
        base = getattr(view, "throttle_scope", None)
        if not base or request.method in permissions.SAFE_METHODS:  # the writes are what is limited
            return None
        self.scope = f"{base}_{self.suffix}"
        return super().rate(request, view)


class ScopedKeyThrottle(_ViewScopedThrottle):
    """Per API key (requests signed in with a session are counted per user)."""

    suffix = "key"

    def ident(self, request: Request, view: Any) -> str | None:
        key = request_api_key(request)
        if key is not None:
            return f"k{key.pk}"
        return f"u{request.user.pk}" if request.user.is_authenticated else None


class ScopedIpThrottle(_ViewScopedThrottle):
    """Per client address, whichever key or session it uses."""

    suffix = "ip"

    def ident(self, request: Request, view: Any) -> str | None:
        return self.get_ident(request)


__all__ = [
    "ApiKeyAuthentication",
    "ApiKeyRateThrottle",
    "CountedThrottles",
    "KeyOrAuthenticated",
    "key_failures_wait",
    "live_key",
    "ScopedIpThrottle",
    "ScopedKeyThrottle",
    "request_api_key",
    "require",
    "roles",
    "throttles_allow",
    "throttles_check",
]


try:
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
        """Documents the bearer keys in the OpenAPI schema, so /api/docs/ offers to send one."""

        target_class = "ambassadors.auth.ApiKeyAuthentication"
        name = "apiKey"

        def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
            return {"type": "http", "scheme": "bearer", "description": "A program's API key"}
except ImportError:  # pragma: no cover - drf-spectacular is a pinned dependency
    pass
