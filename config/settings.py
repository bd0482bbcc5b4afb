"""Parrain settings, read once from the environment.

Every value a deployment may change comes from an environment variable (see the README's configuration
table). A value that cannot be understood stops the process with ImproperlyConfigured rather than being
silently replaced by a default.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
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
try:
    DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
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

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://")

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
        "anon": env.str("THROTTLE_ANON", default="300/minute"),
        "api_key": env.str("THROTTLE_API_KEY", default="100000/hour"),
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
    "freeze-ended-contests": {"task": "rewards.freeze_ended_contests", "schedule": 60.0},
    # Webhooks: dispatch what a broker outage left in the outbox, send the retries that are due.
    "webhooks-sweep": {"task": "ambassadors.webhooks_sweep", "schedule": 60.0},
    # The staff analytics' daily roll-ups: the day just over, and any day a review or override reopened.
    "rollup-analytics": {"task": "referrals.rollup_analytics", "schedule": 600.0},
}
CELERY_TIMEZONE = "UTC"

# --- Webhooks ----------------------------------------------------------------------------------------
# Deliveries go only to public addresses (no SSRF): private, loopback, link-local... are refused when an
# endpoint is saved and at connect time. True lets them through, for development and the tests' local
# receiver only; never in production.
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", False)

# --- E-mail ------------------------------------------------------------------------------------------
try:
    vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
except Exception as exc:
    raise ImproperlyConfigured(f"EMAIL_URL is not an e-mail URL Parrain understands: {exc}") from exc
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Parrain <noreply@localhost>")
# Where links in e-mails point (the one-click unsubscribe): e-mails are sent by workers, outside any request.
PARRAIN_BASE_URL = env.str("PARRAIN_BASE_URL", default="http://127.0.0.1:8000")

# --- Logging -----------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}

# --- Tracking ----------------------------------------------------------------------------------------
# How many proxies in front of Parrain append to X-Forwarded-For; 0 means use the socket's address.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# --- Rate limits: public endpoints under abuse ---------------------------------------------------------
# Every counter lives in the cache (CACHE_URL): Redis in production, so all web processes share them.
# Rates are "<count>/<second|minute|hour|day>"; a 429 answers with Retry-After.
# The redirect never refuses a visitor: past this many clicks per minute from one IP on one link, the
# click is still recorded and redirected, but flagged `flood`, and credits nobody. 0 turns the count off.
CLICK_FLOOD_PER_MINUTE = env_int("CLICK_FLOOD_PER_MINUTE", 30)
# The hosted subscribe form (POST /p/<slug>/subscribe), per client IP (django-ratelimit).
RATE_LIMIT_SUBSCRIBE = env.str("RATE_LIMIT_SUBSCRIBE", default="10/minute")
# Bearer keys that fail to authenticate, per client IP: past this, every key from that IP gets 429.
RATE_LIMIT_API_KEY_FAILURES = env.str("RATE_LIMIT_API_KEY_FAILURES", default="20/minute")
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
        "signups_key": env.str("THROTTLE_SIGNUPS_KEY", default="6000/minute"),
        "signups_ip": env.str("THROTTLE_SIGNUPS_IP", default="6000/minute"),
        "conversions_key": env.str("THROTTLE_CONVERSIONS_KEY", default="6000/minute"),
        "conversions_ip": env.str("THROTTLE_CONVERSIONS_IP", default="6000/minute"),
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
