"""API authentication and permissions: program-scoped bearer keys for integrations, sessions for people."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from ambassadors.models import ApiKey
from ambassadors.services import api_key_hash, api_key_touch
from core import policies, roles
from core.errors import NotFound


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`; request.auth is the ApiKey, request.user stays anonymous."""

    keyword = "bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <key>' with one key.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The API key is not valid.") from None
        key = ApiKey.objects.select_related("program").filter(key_hash=api_key_hash(raw)).first()
        if key is None or key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("The API key is not valid or was revoked.")
        api_key_touch(key=key)
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


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


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        key = request_api_key(request)
        if key is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": key.pk}


__all__ = [
    "ApiKeyAuthentication",
    "ApiKeyRateThrottle",
    "KeyOrAuthenticated",
    "request_api_key",
    "require",
    "roles",
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
