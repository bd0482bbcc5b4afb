"""Settings that fail at start, not at first use: the data stores' URLs, Sentry and /metrics' access."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

DB_EXAMPLE = "e.g. DATABASE_URL=postgres://parrain:password@db.internal:5432/parrain"
REDIS_EXAMPLE = "e.g. REDIS_URL=redis://redis.internal:6379/0"
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 60,
    "ALLOWED_HOSTS": "refer.example.com",
    "DATABASE_URL": "postgres://parrain:secret-password@db.internal:5432/parrain",
    "REDIS_URL": "redis://redis.internal:6379/0",
}


def run(args: list[str], **env: str | None) -> subprocess.CompletedProcess[str]:
    """A fresh process with the production settings and `env` over them (None removes a variable)."""
    environment = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings", **PRODUCTION}
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run(
        [sys.executable, *args], cwd=settings.BASE_DIR, env=environment, capture_output=True, text=True, timeout=120
    )


def test_production_settings_load_with_both_urls():
    result = run(["-c", "import config.settings as s; print(s.DATABASES['default']['HOST'], s.REDIS_URL)"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["db.internal", "redis://redis.internal:6379/0"]


@pytest.mark.parametrize(
    ("name", "value", "problem", "example"),
    [
        ("DATABASE_URL", None, "DATABASE_URL is required when DEBUG is off", DB_EXAMPLE),
        ("DATABASE_URL", "", "DATABASE_URL is required when DEBUG is off", DB_EXAMPLE),
        ("DATABASE_URL", "db.internal:5432/parrain", "its scheme must be one of postgres://", DB_EXAMPLE),
        ("DATABASE_URL", "mysql://u:secret-password@db/parrain", "its scheme must be one of", DB_EXAMPLE),
        ("DATABASE_URL", "postgres://u:secret-password@/parrain", "it names no host", DB_EXAMPLE),
        ("DATABASE_URL", "postgres://u:secret-password@db:54x2/parrain", "Port could not be cast", DB_EXAMPLE),
        ("DATABASE_URL", "postgres://u:secret-password@db:5432/", "it names no database", DB_EXAMPLE),
        ("REDIS_URL", None, "REDIS_URL is required when DEBUG is off", REDIS_EXAMPLE),
        ("REDIS_URL", "127.0.0.1:6379", "its scheme must be one of redis://, rediss://, unix://", REDIS_EXAMPLE),
        ("REDIS_URL", "redis://:secret-password@:6379/0", "it names no host", REDIS_EXAMPLE),
        ("REDIS_URL", "redis://:secret-password@redis:70000/0", "Port out of range", REDIS_EXAMPLE),
    ],
)
def test_a_missing_or_malformed_url_stops_the_settings_import_naming_the_variable(name, value, problem, example):
    result = run(["-c", "import config.settings"], **{name: value})

    assert result.returncode != 0
    [message] = [line for line in result.stderr.splitlines() if line.startswith("django.core.exceptions.")]
    assert message.startswith(f"django.core.exceptions.ImproperlyConfigured: {name} ")
    assert problem in message and message.endswith(example)
    assert "secret-password" not in result.stderr  # the message never repeats a password


def test_manage_py_check_stops_on_a_malformed_url():
    result = run(["manage.py", "check"], DATABASE_URL="postgres//db.internal/parrain")

    assert result.returncode != 0
    assert "DATABASE_URL is not a valid URL" in result.stderr


def test_development_keeps_its_defaults_without_urls():
    result = run(
        ["-c", "import config.settings as s; print(s.DATABASES['default']['ENGINE'], s.REDIS_URL)"],
        DEBUG="true",
        DATABASE_URL=None,
        REDIS_URL=None,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "redis://127.0.0.1:6379/0"]


# --- Sentry --------------------------------------------------------------------------------------------

SENTRY_STATE = (
    "import django, sentry_sdk; django.setup(); client = sentry_sdk.get_client(); "
    "print(client.is_active(), client.options.get('send_default_pii'), client.options.get('traces_sample_rate'), "
    "sorted(i for i in client.integrations if i in ('django', 'celery')))"
)


def test_no_sentry_without_a_dsn():
    result = run(["-c", SENTRY_STATE], SENTRY_DSN=None)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "False"


def test_sentry_with_a_dsn_sends_no_personal_data_and_samples_traces_as_told():
    result = run(
        ["-c", SENTRY_STATE], SENTRY_DSN="https://public@errors.example.com/42", SENTRY_TRACES_SAMPLE_RATE="0.1"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True False 0.1 ['celery', 'django']"


@pytest.mark.parametrize(
    ("name", "value"),
    [("SENTRY_DSN", "not a dsn"), ("SENTRY_TRACES_SAMPLE_RATE", "often"), ("SENTRY_TRACES_SAMPLE_RATE", "2")],
)
def test_a_malformed_sentry_setting_stops_the_process(name, value):
    env = {"SENTRY_DSN": "https://public@errors.example.com/42", name: value}
    result = run(["-c", "import config.settings"], **env)

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}" in result.stderr


# --- /metrics and logs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("METRICS_TOKEN", "short"),
        ("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8,the office"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "loud"),
        # Rates the API's window counters cannot read would be a 500 on every call instead.
        ("THROTTLE_SIGNUPS_KEY", "6000/5m"),
        ("THROTTLE_API_KEY", "lots"),
        ("RATE_LIMIT_API_KEY_FAILURES", "20/fortnight"),
        ("CLICK_ASYNC_COMMIT", "sometimes"),
        ("API_FAST_PATH", "maybe"),
    ],
)
def test_a_malformed_operations_setting_stops_the_process(name, value):
    result = run(["-c", "import config.settings"], **{name: value})

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}" in result.stderr


def test_check_deploy_has_no_issues_with_metrics_and_sentry_configured():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY=secrets.token_urlsafe(64),
        METRICS_TOKEN=secrets.token_hex(32),
        METRICS_ALLOWED_NETWORKS="10.0.0.0/8,fd00::/8",
        SENTRY_DSN="https://public@errors.example.com/42",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
