"""Parrain settings, read once from the environment.

Every value a deployment may change comes from an environment variable (see the README's configuration
table). A value that cannot be understood stops the process with ImproperlyConfigured rather than being
silently replaced by a default.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
import structlog
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """A boolean from the environment; anything but a clear yes/no is a configuration error."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use one of true/false, 1/0, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}")
    return value


_RATE = re.compile(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)")


def env_rate(name: str, default: str) -> str:
    """A rate "<count>/<second|minute|hour|day>" (the API's throttles and the bad-key limit count it per
    fixed window: ambassadors.auth.parse_rate); anything else is a configuration error, not a 500 later."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().replace(" ", "")
    if not _RATE.fullmatch(value):
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a rate: use <count>/<second|minute|hour|day>, e.g. 20/minute"
        )
    return value


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (set DEBUG=true for development)")
    # Development only: a fixed key so sessions survive `make run` restarts.
    SECRET_KEY = "django-insecure-parrain-development-only-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.forms",  # its templates, for the TemplatesSetting form renderer (config/renderers.py)
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "csp",
    "core",
    "ambassadors",
    "referrals",
    "rewards",
    "commerce",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ControlCharactersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page's language: the language cookie set by the switch (set_language), else the browser's.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "config.urls"
# Every form field renders through templates/forms/field.html (labels, help and error ids for ARIA).
FORM_RENDERER = "config.renderers.ParrainFormRenderer"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context.consoles",
            ],
        },
    },
]

# --- Data stores -------------------------------------------------------------------------------------


def service_url(
    name: str, *, schemes: tuple[str, ...], example: str, development_default: str, path_required: bool = False
) -> str:
    """A data store's URL, checked now rather than at first use: required when DEBUG is off, and well formed.

    Development (DEBUG on) falls back to `development_default`; production must say where its data lives.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        if DEBUG:
            return development_default
        raise ImproperlyConfigured(f"{name} is required when DEBUG is off, e.g. {name}={example}")
    problem = ""
    if urlsplit(raw).scheme == "sqlite" and "sqlite" in schemes:
        # A file path, or sqlite://:memory: (what django-environ reads as an in-memory database): no host.
        if raw in ("sqlite://:memory:", "sqlite:///:memory:") or urlsplit(raw).path.strip("/"):
            return raw
        raise ImproperlyConfigured(f"{name} is not a valid URL (it names no file), e.g. {name}={example}")
    try:
        parts = urlsplit(raw)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        parts, port, problem = None, None, str(exc)
    if parts is not None:
        if parts.scheme not in schemes:
            problem = f"its scheme must be one of {', '.join(s + '://' for s in schemes)}"
        elif parts.scheme == "unix":
            problem = "" if parts.path.strip("/") else "it names no file"
        elif not parts.hostname:
            problem = "it names no host"
        elif port is not None and not 0 < port < 65536:
            problem = f"port {port} is out of range"
        elif path_required and not parts.path.strip("/"):
            problem = "it names no database"
    if problem:
        # The URL may hold a password: the message names the variable and the problem, never the value.
        raise ImproperlyConfigured(f"{name} is not a valid URL ({problem}), e.g. {name}={example}")
    return raw


DATABASE_URL = service_url(
    "DATABASE_URL",
    schemes=("postgres", "postgresql", "pgsql", "sqlite"),
    example="postgres://parrain:password@db.internal:5432/parrain",
    development_default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
    path_required=True,
)
try:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
except Exception as exc:  # django-environ raises several types for a malformed URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL Parrain understands: {exc}") from exc
DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60)
# A persistent connection is checked before reuse, so a database restart costs no failed request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("CONN_HEALTH_CHECKS", True)
# The referral redirect's two statements are prepared once per connection (config/db.py); the ORM's
# client-side binding cursors are never prepared whatever this says. Turn it off behind a connection
# pooler in transaction mode that does not support prepared statements.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("PREPARED_STATEMENTS", True):
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 0)
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default: WAL and a busy timeout let the dev server and an eager task share the file.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

# Past one machine (README "Operations"). DATABASE_POOLER=pgbouncer: the web processes and workers reach
# PostgreSQL through PgBouncer in transaction mode, where a connection may change server between two
# transactions: no prepared statements, no server-side cursors (the code that streams rows reads
# DISABLE_SERVER_SIDE_CURSORS and fetches in chunks from a client-side cursor instead).
DATABASE_POOLER = env.str("DATABASE_POOLER", default="").strip().lower()
if DATABASE_POOLER not in {"", "none", "pgbouncer"}:
    raise ImproperlyConfigured(f"DATABASE_POOLER={DATABASE_POOLER!r}: use pgbouncer, or leave it empty")
# DATABASE_REPLICA_URL: a read replica, the `replica` alias. Only the staff analytics and their CSV exports
# read from it, inside config.db_router.reading_replica(); everything else stays on the primary.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="").strip()
DATABASE_ROUTERS: list[str] = []
if DATABASE_REPLICA_URL:
    try:
        _replica = env.db_url_config(DATABASE_REPLICA_URL)
    except Exception as exc:
        raise ImproperlyConfigured(f"DATABASE_REPLICA_URL is not a database URL Parrain understands: {exc}") from exc
    if _replica["ENGINE"] != DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL must be a replica of DATABASE_URL, on the same engine")
    for _key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "ATOMIC_REQUESTS"):
        _replica[_key] = DATABASES["default"][_key]
    _replica["OPTIONS"] = dict(DATABASES["default"].get("OPTIONS", {}))
    # Tests give the replica the primary's test database: the same rows, as a replica has.
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
    DATABASE_ROUTERS = ["config.db_router.ReplicaRouter"]
if DATABASE_POOLER == "pgbouncer":
    for _alias in DATABASES.values():
        _alias["DISABLE_SERVER_SIDE_CURSORS"] = True
        if _alias["ENGINE"] == "django.db.backends.postgresql":
            _alias.setdefault("OPTIONS", {})["prepare_threshold"] = None  # psycopg 3: never prepare

REDIS_URL = service_url(
    "REDIS_URL",
    schemes=("redis", "rediss", "unix"),
    example="redis://redis.internal:6379/0",
    development_default="redis://127.0.0.1:6379/0",
)

try:
    CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
except Exception as exc:
    raise ImproperlyConfigured(f"CACHE_URL is not a cache URL Parrain understands: {exc}") from exc

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Users and sign-in -------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
# Accounts by e-mail only. The password is optional at signup: most ambassadors never choose one and sign
# in with a code e-mailed to them (login by code below); the address is proven before anything is bound.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1"]
ACCOUNT_UNIQUE_EMAIL = True
# Vouchers hang on an address: an account must prove its address before it signs in (ambassadors.accounts).
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
# A customer a shop enrolled has no password: a code sent to the address signs them in and proves it.
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_FORMS = {
    "signup": "ambassadors.accounts.SignupForm",
    "request_login_code": "ambassadors.accounts.RequestLoginCodeForm",
}

# --- Internationalisation and time -------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Site-wide files: the stylesheet, and htmx and Chart.js vendored from npm (`make vendor`).
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# --- Security ----------------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
REFERRAL_COOKIE_SECURE = env_bool("REFERRAL_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    # Only behind a proxy that sets this header itself; otherwise clients could claim HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /health/ must answer a load balancer over plain HTTP inside the private network.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        # Our own files, and the rare inline <script nonce="{{ request.csp_nonce }}">.
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# A CSRF failure answers JSON under /api/, Django's page elsewhere.
CSRF_FAILURE_VIEW = "config.health.csrf_failure"

# Request bodies larger than this are refused with 413 before anything reads them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024, minimum=1024)

# --- API ---------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "ambassadors.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.CursorPagination",  # lists page with cursors
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("THROTTLE_ANON", "300/minute"),
        "api_key": env_rate("THROTTLE_API_KEY", "100000/hour"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Parrain API",
    "DESCRIPTION": (
        "Referral links, attributed signups and conversions, rewards and the collective price.\n\n"
        "**Authentication.** Integrations send `Authorization: Bearer <key>`: a key belongs to one program "
        "and carries scopes `track`, `read` and `manage`. People use their session, with the CSRF token. "
        "Each operation says who may call it, in its description and in `x-parrain-access`.\n\n"
        '**Errors.** Every error is JSON in one shape: `{"detail": "<message>"}`, or, for a 400 about the '
        'input\'s fields, `{"<field>": ["<message>", ...]}`. 400 bad input, 401 no or invalid credentials, '
        "403 not allowed, 404 unknown or not yours to see, 405 method not allowed, 409 idempotency conflict, "
        "413 body too large, 429 rate limited (see `Retry-After`), 500 server error (logged on our side)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["config.schema.drop_duplicate_spellings"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.describe_access",
        "config.schema_examples.add_examples",  # an example for every request and answer
    ],
    # No badge from the public validator: the docs call no third-party host (and our CSP would refuse it).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # reward_type and referee_reward_type share one set of choices: one enum in the schema.
    "ENUM_NAME_OVERRIDES": {"RewardTypeEnum": "rewards.models.RewardTier.RewardType"},
}

# --- Celery ------------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
# kombu's Redis transport, reusing one client per channel rather than building one per message published
# (config/celery_redis.py): a signup enqueues its recalculation after commit, on the request's time.
if REDIS_URL.startswith("redis://"):
    CELERY_BROKER_TRANSPORT = "config.celery_redis:Transport"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
# At least once: a task is acknowledged after it ran, so a worker killed mid-task has it redelivered.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1),
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
# A broker that is down must not hold an HTTP request for long: the reconciliation will catch up.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "approve-due-conversions": {"task": "referrals.approve_due_conversions", "schedule": 300.0},
    "reconcile-rewards": {"task": "rewards.reconcile", "schedule": 900.0},
    # Signups whose recalculation message was lost: counted and their milestones recorded within 30 s.
    "fold-counts": {"task": "rewards.fold_counts", "schedule": 30.0},
    "freeze-ended-contests": {"task": "rewards.freeze_ended_contests", "schedule": 60.0},
    # Webhooks: dispatch what a broker outage left in the outbox, send the retries that are due.
    "webhooks-sweep": {"task": "ambassadors.webhooks_sweep", "schedule": 60.0},
    # Waitlists: "your place in line" to new subscribers; the embedded dashboard's spent tokens.
    "waitlist-notify": {"task": "commerce.waitlist_notify", "schedule": 60.0},
    "embed-tokens-purge": {"task": "commerce.embed_tokens_purge", "schedule": 86400.0},
    # Stripe: vouchers whose promotion code a lost message or a Stripe outage left uncreated.
    "stripe-promotion-codes-sweep": {"task": "commerce.stripe_promotion_codes_sweep", "schedule": 600.0},
    # PostgreSQL: the click table's monthly partitions, made months ahead (idempotent).
    "ensure-click-partitions": {"task": "referrals.ensure_click_partitions", "schedule": 86400.0},
    # The staff analytics' daily roll-ups: the day just over, and any day a review or override reopened.
    "rollup-analytics": {"task": "referrals.rollup_analytics", "schedule": 600.0},
    # Clicks past their program's retention: rolled up per link and day, then deleted.
    "purge-old-clicks": {"task": "referrals.purge_old_clicks", "schedule": 86400.0},
    # A new pepper for the IP hashes every 30 days; peppers out of the velocity window are deleted for good.
    "rotate-ip-pepper": {"task": "referrals.rotate_ip_pepper", "schedule": 30 * 86400.0},
}
CELERY_TIMEZONE = "UTC"
# A program's recalculation (rewards.pending) starts this many milliseconds after the change that asked for
# it, so that a launch's signups share one run instead of keeping a worker folding one at a time: at most
# one fold per program per period, and a grant or a milestone seen that much later. 0: at once.
RECALCULATION_DELAY_MS = env_int("RECALCULATION_DELAY_MS", 250)

# --- Webhooks ----------------------------------------------------------------------------------------
# Deliveries go only to public addresses (no SSRF): private, loopback, link-local... are refused when an
# endpoint is saved and at connect time. True lets them through, for development and the tests' local
# receiver only; never in production.
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", False)

# --- Stripe ------------------------------------------------------------------------------------------
# Where the Stripe API answers (vouchers as promotion codes). Tests point it at a local stub; never change
# it in production.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
# Seconds to wait for the Stripe API; a task that times out is retried with backoff.
STRIPE_API_TIMEOUT = env_int("STRIPE_API_TIMEOUT", 20, minimum=1)

# --- E-mail ------------------------------------------------------------------------------------------
try:
    vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
except Exception as exc:
    raise ImproperlyConfigured(f"EMAIL_URL is not an e-mail URL Parrain understands: {exc}") from exc
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Parrain <noreply@localhost>")
# Where links in e-mails point (the one-click unsubscribe): e-mails are sent by workers, outside any request.
PARRAIN_BASE_URL = env.str("PARRAIN_BASE_URL", default="http://127.0.0.1:8000")

# --- The dashboard inside the business's product -----------------------------------------------------
# How long a token of POST /api/v1/programs/<slug>/embed-tokens may be used (once): the business's back end
# asks for one as it renders its page, so a few minutes is plenty.
EMBED_TOKEN_TTL_SECONDS = env_int("EMBED_TOKEN_TTL_SECONDS", 300, minimum=10)

# --- Logging -----------------------------------------------------------------------------------------
# structlog through django-structlog: one JSON object per line in production, readable lines in development.
# Every line of a request carries its request_id (X-Request-ID, config.request_id.RequestIdMiddleware), and
# so does every line of a Celery task the request enqueued (the id travels in the task's headers).
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")
if LOG_FORMAT not in {"json", "console"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be json or console")
# What every line gets, whether it was written through structlog or a plain logging.getLogger().
_LOG_CHAIN: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,  # request_id, user_id, task_id...
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *(
                    [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
                    if LOG_FORMAT == "json"
                    else [structlog.dev.ConsoleRenderer(colors=False)]
                ),
            ],
            "foreign_pre_chain": [*_LOG_CHAIN, structlog.stdlib.ExtraAdder()],
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.server": {"level": "WARNING"}},
}
structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        *_LOG_CHAIN,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.UnicodeDecoder(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)
# The request id comes from the caller's X-Request-ID when it is sane (RequestIdMiddleware checks it
# first), else a new one; each task a request enqueues logs it too (config/celery.py adds the worker side).
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# No raw IP address in the logs: clicks store only a hash of it, the logs do not undo that.
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False
INSTALLED_APPS.append("django_structlog")
# Outermost, so that every line of the request, the middleware's included, has the id.
MIDDLEWARE[:0] = ["config.request_id.RequestIdMiddleware", "django_structlog.middlewares.RequestMiddleware"]

# --- Tracking ----------------------------------------------------------------------------------------
# How many proxies in front of Parrain append to X-Forwarded-For; 0 means use the socket's address.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# --- Rate limits: public endpoints under abuse ---------------------------------------------------------
# Every counter lives in the cache (CACHE_URL): Redis in production, so all web processes share them.
# Rates are "<count>/<second|minute|hour|day>"; a 429 answers with Retry-After.
# The redirect never refuses a visitor: past this many clicks per minute from one IP on one link, the
# click is still recorded and redirected, but flagged `flood`, and credits nobody. 0 turns the count off.
CLICK_FLOOD_PER_MINUTE = env_int("CLICK_FLOOD_PER_MINUTE", 30)
# PostgreSQL: a click's INSERT commits without waiting for its WAL to reach the disk (synchronous_commit off
# for that one transaction, which the redirect's statement sets itself). The click is committed and visible
# before the 302 leaves, so a web process that dies loses nothing; a crash of PostgreSQL itself (or of its
# machine) can lose the clicks of its last fraction of a second (3 x wal_writer_delay, 0.6 s by default).
# Signups, conversions and rewards always wait for the disk. false: every click waits for the disk too.
CLICK_ASYNC_COMMIT = env_bool("CLICK_ASYNC_COMMIT", True)
# PostgreSQL: the click table is partitioned by month; the partitions of this many months ahead are made in
# advance (beat, daily; `manage.py ensure_click_partitions`; every migrate). See referrals/services/partitions.py.
CLICK_PARTITIONS_AHEAD = env_int("CLICK_PARTITIONS_AHEAD", 3)
# The hosted subscribe form (POST /p/<slug>/subscribe), per client IP (django-ratelimit).
RATE_LIMIT_SUBSCRIBE = env.str("RATE_LIMIT_SUBSCRIBE", default="10/minute")
# Bearer keys that fail to authenticate, per client IP: past this, every key from that IP gets 429.
RATE_LIMIT_API_KEY_FAILURES = env_rate("RATE_LIMIT_API_KEY_FAILURES", "20/minute")
# Stripe webhook calls whose signature does not verify, per client IP: past this, 429.
RATE_LIMIT_STRIPE_WEBHOOK_FAILURES = env.str("RATE_LIMIT_STRIPE_WEBHOOK_FAILURES", default="20/minute")
RATELIMIT_USE_CACHE = "default"
RATELIMIT_FAIL_OPEN = True  # a cache that fails lets requests through (core.ratelimits)
# allauth's 429 (its limits below) comes without Retry-After: this adds it.
MIDDLEWARE.append("core.ratelimits.RetryAfterMiddleware")
# The signup and conversion APIs (DRF throttles), per key and per client IP. A shop's server sends all
# its calls from one address with one key, so neither is lower than a busy shop's bursts.
_THROTTLE_RATES = REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
assert isinstance(_THROTTLE_RATES, dict)
_THROTTLE_RATES.update(
    {
        "signups_key": env_rate("THROTTLE_SIGNUPS_KEY", "6000/minute"),
        "signups_ip": env_rate("THROTTLE_SIGNUPS_IP", "6000/minute"),
        "conversions_key": env_rate("THROTTLE_CONVERSIONS_KEY", "6000/minute"),
        "conversions_ip": env_rate("THROTTLE_CONVERSIONS_IP", "6000/minute"),
        # Embed tokens: one per view of the dashboard inside the business's product, per key.
        "embed_tokens_key": env_rate("THROTTLE_EMBED_TOKENS_KEY", "1200/minute"),
    }
)
# The client IP behind TRUSTED_PROXY_COUNT proxies, alike for DRF's throttles, allauth and the rest.
REST_FRAMEWORK["NUM_PROXIES"] = TRUSTED_PROXY_COUNT or None
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT
# allauth's own limits (its defaults, spelled out so each is a deliberate choice): log-in attempts per
# IP, failed log-ins per IP and per address, codes and e-mails sent per address.
ACCOUNT_RATE_LIMITS = {
    "login": env.str("RATE_LIMIT_LOGIN", default="30/m/ip"),
    "login_failed": env.str("RATE_LIMIT_LOGIN_FAILED", default="10/m/ip,5/5m/key"),
    "signup": "20/m/ip",
    "request_login_code": "20/m/ip,3/m/key",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "reauthenticate": "10/m/user",
}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # A Redis that is down or unreachable must cost a request milliseconds, not seconds.
    CACHES["default"].setdefault("OPTIONS", {}).setdefault("socket_connect_timeout", 0.25)
    CACHES["default"]["OPTIONS"].setdefault("socket_timeout", 0.25)

# --- Operations: metrics, error reports, health ---------------------------------------------------------
# Request counts and latencies (django-prometheus): first and last of the stack, around everything else.
MIDDLEWARE.insert(0, "config.metrics_middleware.PrometheusBeforeMiddleware")
MIDDLEWARE.append("config.metrics_middleware.PrometheusAfterMiddleware")
# A key's POST of a signup or a conversion, the API's busiest calls, skips DRF and these middlewares when
# it is an ordinary one (config/api_fast_path.py); anything else goes through the whole stack. false turns
# it off. Skipped: those of pages, and those whose checks the fast path has made already (the URL, the
# body's size, the host) or whose work it does itself (Content-Length, Retry-After).
API_FAST_PATH = env_bool("API_FAST_PATH", True)
API_FAST_PATH_SKIPPED_MIDDLEWARE = [
    "config.middleware.ControlCharactersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.BodySizeLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.ratelimits.RetryAfterMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]
# On the fast path, these add the same headers to every answer (X-Frame-Options, the CSP without a nonce):
# computed once per process, by the middlewares themselves, instead of on each call (not in DEBUG).
API_FAST_PATH_CONSTANT_HEADER_MIDDLEWARE = [
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]
# /metrics answers 404 to everyone but the scraper: a request with `Authorization: Bearer <METRICS_TOKEN>`,
# or a direct connection (no X-Forwarded-For) from one of METRICS_ALLOWED_NETWORKS. Both empty by default:
# behind a proxy on the same host every visitor would look local, so no address is trusted unless listed.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
if METRICS_TOKEN and len(METRICS_TOKEN) < 24:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 24 characters (e.g. `openssl rand -hex 32`)")
try:
    METRICS_ALLOWED_NETWORKS = [
        ipaddress.ip_network(value, strict=False) for value in env.list("METRICS_ALLOWED_NETWORKS", default=[])
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS is not a list of addresses or networks: {exc}") from exc
# Scraped over plain HTTP inside the private network, like /health/.
SECURE_REDIRECT_EXEMPT.append(r"^metrics$")

# /health/ and `manage.py check_parrain` warn when beat has not ticked for this long (its schedule is saved
# to the database every 3 minutes), and when more tasks than this wait in a queue.
HEALTH_BEAT_MAX_MINUTES = env_int("HEALTH_BEAT_MAX_MINUTES", 10, minimum=4)
HEALTH_QUEUE_MAX = env_int("HEALTH_QUEUE_MAX", 1000, minimum=1)

# Error reports to Sentry (or a compatible service) only when SENTRY_DSN is set. No personal data is sent
# (send_default_pii off: no IP address, cookie or user); traces are sampled at SENTRY_TRACES_SAMPLE_RATE.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
_traces_rate = env.str("SENTRY_TRACES_SAMPLE_RATE", default="0")
try:
    SENTRY_TRACES_SAMPLE_RATE = float(_traces_rate)
except ValueError:
    raise ImproperlyConfigured(f"SENTRY_TRACES_SAMPLE_RATE={_traces_rate!r} is not a number between 0 and 1") from None
if not 0 <= SENTRY_TRACES_SAMPLE_RATE <= 1:
    raise ImproperlyConfigured(f"SENTRY_TRACES_SAMPLE_RATE={_traces_rate!r} is not a number between 0 and 1")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.utils import BadDsn

    try:
        sentry_sdk.init(
            dsn=SENTRY_DSN,
            integrations=[DjangoIntegration(), CeleryIntegration()],
            send_default_pii=False,
            traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
            environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        )
    except BadDsn as exc:
        raise ImproperlyConfigured(f"SENTRY_DSN is not a DSN Sentry understands: {exc}") from None
