"""The API's busiest calls, `POST /api/v1/programs/<slug>/signups` and `.../conversions` with a bearer key,
answered without DRF and without the middlewares only pages need.

During a launch a business's backend sends every new subscriber to the first, and its shop every purchase
to the second. Through the full stack, the middlewares of pages (sessions, CSRF, users, messages, static
files, allauth) and DRF's own layers (request wrapping, negotiation, authentication, permission, a
serializer deep-copied per request) cost about as much as recording the signup itself (bench/signups.py,
bench/inprocess.py). So the production WSGI handler (config.wsgi) sends such a call down a short path, in
two steps:

1. `prepare` looks, writing nothing, at everything that could make the answer anything other than a
   recorded signup or purchase: the method, the URL as the URLconf resolves it, the host, HTTPS, the content type and
   the Accept header, the key (known, not revoked, of this program, with the scope, its address not
   locked out for bad keys), and the JSON body against the view's own InputSerializer. Anything unusual
   returns None, and the full stack answers it exactly as it always has (400 with field messages, 401,
   403, 404, 406, 413, 415, 429...).
2. What passes runs through `FastApiHandler`: Django's own request handling (middleware chain, view and
   exception middlewares, 500 handling, the 4xx/5xx log line) built from MIDDLEWARE minus
   API_FAST_PATH_SKIPPED_MIDDLEWARE. Metrics, the request id and the log lines, security headers and the
   language stay; the middlewares of API_FAST_PATH_CONSTANT_HEADER_MIDDLEWARE add headers that are the same
   on every answer of the API, so those are computed once, by the middlewares themselves (not in DEBUG).
   Its views (`referrals.api.signup_fast`, `conversion_fast`) count the DRF view's throttles, record with
   the same service, and answer what the DRF view answers, errors rendered by the API's exception handler.
   tests/referrals/test_api_fast_path.py holds both paths to the same answers, headers and rows.

API_FAST_PATH=false sends every call through the full stack.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import DisallowedHost, MiddlewareNotUsed
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, ResolverMatch, resolve
from django.utils.module_loading import import_string
from rest_framework.exceptions import ParseError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.serializers import Serializer, ValidationError

from ambassadors.auth import key_failures_wait, live_key, throttles_check
from ambassadors.models import ApiKey
from ambassadors.services import api_key_touch
from config.exceptions import exception_handler
from config.parsers import JSONParser
from core import policies

API_PREFIX = "/api/"
# The types of an Accept header DRF answers with its JSON renderer (config.settings: the only one).
_ACCEPTED = frozenset({"*/*", "application/json", "application/*"})
# How the paths of the fast routes end: anything else is not looked up at all.
_ROUTE_ENDINGS = ("/signups", "/conversions")


@dataclass(frozen=True)
class FastRoute:
    """A view of the full stack that the fast path may answer: the DRF view class (its InputSerializer,
    throttles and allowed methods), the policy its key must pass, and the fast view itself."""

    api: Any  # the DRF view class
    policy: Callable[[policies.Principal, Any], policies.Decision]
    view: Callable[..., HttpResponse]

    @property
    def input_serializer(self) -> Serializer[Any]:
        return _serializer(self.api.InputSerializer)

    @property
    def allow_header(self) -> str:
        return _allow_header(self.api)


@cache
def routes() -> dict[str, FastRoute]:
    """URL name -> route. Imported late: the views import models, ready only after django.setup()."""
    from referrals.api import ConversionsApi, SignupsApi, conversion_fast, signup_fast

    return {
        "api-signups": FastRoute(api=SignupsApi, policy=policies.may_track, view=signup_fast),
        "api-conversions": FastRoute(api=ConversionsApi, policy=policies.may_track, view=conversion_fast),
    }


@cache
def _serializer(serializer_class: Any) -> Serializer[Any]:
    """One instance per process: its fields are built (deep-copied) once, not for every request.
    run_validation keeps no state on the instance, so one serves every request in turn."""
    return serializer_class()


@cache
def _allow_header(api: Any) -> str:
    view = api()
    if hasattr(view, "get") and not hasattr(view, "head"):
        view.head = view.get  # what View.setup() does for each request
    return ", ".join(view.allowed_methods)


@dataclass(frozen=True)
class FastCall:
    """What `prepare` found: the route, the URL's arguments, the key (its program loaded) and the input."""

    route: FastRoute
    match: ResolverMatch
    key: ApiKey
    data: dict[str, Any]


def prepare(request: HttpRequest) -> FastCall | None:
    """The call, when the fast path can answer it; None sends the request to the full stack.

    Reads only (the URLconf, the key's row, the cache's count of bad keys): a request sent on to the full
    stack is counted and answered there once.
    """
    if request.method != "POST" or not request.path_info.startswith(API_PREFIX) or not settings.API_FAST_PATH:
        return None
    meta = request.META
    if meta.get("QUERY_STRING") or not _json_accepted(meta.get("HTTP_ACCEPT", "")):
        return None  # ?format=, an indent, a weight or a type to negotiate: DRF's business
    if settings.SECURE_SSL_REDIRECT and not request.is_secure():
        return None
    if settings.PREPEND_WWW or settings.DISALLOWED_USER_AGENTS:
        return None  # CommonMiddleware's business
    try:
        request.get_host()  # the ALLOWED_HOSTS check CommonMiddleware would make
    except DisallowedHost:
        return None
    match = _resolved(request.path_info, settings.ROOT_URLCONF)
    route = routes().get(match.url_name or "") if match is not None else None
    if match is None or route is None or not _json_body_announced(request):
        return None
    key = _bearer_key(request)
    if key is None or key.program.slug != match.kwargs.get("slug"):
        return None
    principal = policies.Principal.for_api_key(program_id=key.program_id, scopes=key.scopes)
    if not route.policy(principal, key.program):
        return None
    # An address that sent too many bad keys is refused before any key is accepted (ambassadors.auth).
    if key_failures_wait(request, increment=False) is not None:
        return None
    data = _json_object(request)
    if data is None:
        return None
    try:
        validated = route.input_serializer.run_validation(data)
    except ValidationError:
        return None
    return FastCall(route=route, match=match, key=key, data=validated)


def _json_accepted(accept: str) -> bool:
    """True when DRF, whose only renderer is JSON, would answer this Accept header with plain JSON: no header,
    or one of the types it names is JSON or a wildcard, and none of those carries a parameter (an indent,
    a weight) that DRF would weigh."""
    if not accept.strip():
        return True
    matched = False
    for item in accept.split(","):
        media_type, _, parameters = item.partition(";")
        if media_type.strip().lower() in _ACCEPTED:
            if parameters.strip():
                return False
            matched = True
    return matched


@lru_cache(maxsize=512)
def _resolved(path: str, urlconf: str) -> ResolverMatch | None:
    """The URLconf's match of a path of a fast route, or None. Resolving walks the API's patterns one by one,
    so the matches of the few paths a deployment's integrations post to are kept (per process)."""
    if not path.endswith(_ROUTE_ENDINGS):
        return None  # not worth a place in the cache
    try:
        return resolve(path, urlconf)
    except Resolver404:
        return None


def _json_body_announced(request: HttpRequest) -> bool:
    """A JSON body in UTF-8 of a length within DATA_UPLOAD_MAX_MEMORY_SIZE (BodySizeLimitMiddleware)."""
    if request.content_type != "application/json":
        return False
    if (request.content_params or {}).get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        return False
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return length > 0 and (limit is None or length <= limit)


def _bearer_key(request: HttpRequest) -> ApiKey | None:
    """The live key of `Authorization: Bearer <key>`, its program loaded; None for anything else."""
    parts = request.META.get("HTTP_AUTHORIZATION", "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1].isascii():
        return None  # ApiKeyAuthentication refuses these, and counts them against the address
    return live_key(parts[1])


def _json_object(request: HttpRequest) -> dict[str, Any] | None:
    """The body as the API's JSON parser reads it, when it is an object; else None. The body stays readable:
    a request sent on to the full stack is parsed again there."""
    try:
        data = JSONParser().parse(io.BytesIO(request.body), "application/json", {"encoding": "utf-8"})
    except ParseError:
        return None
    return data if isinstance(data, dict) else None


def fast_call(request: HttpRequest) -> FastCall:
    call: FastCall = request.parrain_fast_call  # type: ignore[attr-defined]
    return call


def key_call(request: HttpRequest) -> FastCall:
    """Begin a fast view as DRF begins the view: the key's use recorded, the request made to read as a key's
    call (the throttles, policies and Actor.for_request read it so), the view's throttles counted
    (Throttled when one refuses). Returns the call `prepare` found."""
    call = fast_call(request)
    api_key_touch(key=call.key)
    request.auth = call.key  # type: ignore[attr-defined]
    request.user = AnonymousUser()
    api = call.route.api
    throttles_check([throttle() for throttle in api.throttle_classes], request, api)  # type: ignore[arg-type]
    return call


def json_response(data: Any, *, status: int, headers: dict[str, str] | None = None) -> HttpResponse:
    """What DRF's Response renders with the API's only renderer, JSONRenderer, and the view's Allow header."""
    content = JSONRenderer().render(data)
    response = HttpResponse(content, status=status, content_type="application/json")
    response["Content-Length"] = str(len(content))  # as CommonMiddleware would
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(exc: Exception, request: HttpRequest, allow: str) -> HttpResponse:
    """The API's answer to an error raised by a fast view, as DRF's handling of the same view renders it.
    An error the API's exception handler does not know is raised on: Django answers it with handler500."""
    answer: Response | None = exception_handler(exc, {"request": request, "view": None})
    if answer is None:
        raise exc
    # Retry-After, WWW-Authenticate; the content type is the renderer's.
    headers = {name: value for name, value in answer.items() if name.lower() != "content-type"}
    headers["Allow"] = allow
    return json_response(answer.data, status=answer.status_code, headers=headers)


def constant_headers(middleware_class: type[Any]) -> dict[str, str]:
    """The headers a middleware adds to an API answer when they are the same for every one: computed once,
    by the middleware itself, on an answer of the API (X-Frame-Options; the CSP, no view of the fast path
    asking for a nonce)."""
    request = HttpRequest()
    request.method = "POST"
    request.path = request.path_info = API_PREFIX
    response = HttpResponse(b"{}", content_type="application/json")
    before = set(response.headers)
    answered = middleware_class(lambda _request: response)(request)
    return {name: value for name, value in answered.items() if name not in before}


class ConstantHeaders:
    """A middleware of API_FAST_PATH_CONSTANT_HEADER_MIDDLEWARE in the fast path: its headers, computed once
    (constant_headers), set on each answer that has none of its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse], headers: dict[str, str]) -> None:
        self.get_response = get_response
        self.headers = headers

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for name, value in self.headers.items():
            response.headers.setdefault(name, value)
        return response


class FastApiHandler(BaseHandler):
    """Django's request handling with MIDDLEWARE minus API_FAST_PATH_SKIPPED_MIDDLEWARE, and the URL already
    resolved by `prepare`. Sync only, as the WSGI handler it serves."""

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware()

    def load_middleware(self, is_async: bool = False) -> None:
        """BaseHandler.load_middleware for our shorter list (sync middlewares only, as all of ours are)."""
        self._view_middleware: list[Callable[..., Any]] = []
        self._template_response_middleware: list[Callable[..., Any]] = []
        self._exception_middleware: list[Callable[..., Any]] = []
        handler = convert_exception_to_response(self._get_response)  # type: ignore[attr-defined]
        skipped = set(settings.API_FAST_PATH_SKIPPED_MIDDLEWARE)
        constant = set() if settings.DEBUG else set(settings.API_FAST_PATH_CONSTANT_HEADER_MIDDLEWARE)
        for path in reversed([path for path in settings.MIDDLEWARE if path not in skipped]):
            try:
                if path in constant:
                    middleware: Any = ConstantHeaders(handler, constant_headers(import_string(path)))
                else:
                    middleware = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            if hasattr(middleware, "process_view"):
                self._view_middleware.insert(0, middleware.process_view)
            if hasattr(middleware, "process_template_response"):
                self._template_response_middleware.append(middleware.process_template_response)
            if hasattr(middleware, "process_exception"):
                self._exception_middleware.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self._middleware_chain = handler

    def resolve_request(  # type: ignore[override]  # what Django unpacks of a ResolverMatch
        self, request: HttpRequest
    ) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        call = fast_call(request)
        request.resolver_match = call.match  # the metrics label requests by it, as on the full stack
        return call.route.view, (), dict(call.match.kwargs)


__all__ = [
    "ConstantHeaders",
    "FastApiHandler",
    "FastCall",
    "error_response",
    "fast_call",
    "json_response",
    "key_call",
    "prepare",
]
