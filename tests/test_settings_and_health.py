"""Running it: /health/, settings that fail loudly, `check --deploy`, and the management commands."""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection

ROOT = Path(__file__).resolve().parent.parent


# --- /health/ ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_health_is_200_while_the_database_answers(client):
    response = client.get("/health/")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"]) == ("ok", "ok")
    assert "broker" in body
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@pytest.mark.django_db
def test_health_is_503_when_the_database_is_unreachable(client):
    # The database going away is an edge we do not own here: the cursor refusing is the symptom we see.
    with mock.patch.object(connection, "cursor", side_effect=OperationalError("connection refused")):
        response = client.get("/health/")

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]) == ("unavailable", "OperationalError")


# --- Settings fail loudly ----------------------------------------------------------------------------


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment of a fresh process: none of the test settings' defaults leak into it."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(overrides)
    return env


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean_env(**env), capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("value", ["maybe", "2", "tru", "yes please"])
def test_a_debug_value_that_is_not_a_boolean_stops_the_process(value):
    result = run(["-c", "import config.settings"], DEBUG=value, SECRET_KEY="x" * 60)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"DEBUG={value!r} is not a boolean" in result.stderr


def test_no_secret_key_with_debug_off_stops_the_process():
    result = run(["-c", "import config.settings"], DEBUG="false")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is required" in result.stderr


def test_no_secret_key_with_debug_on_is_the_development_default():
    result = run(["-c", "import config.settings as s; print(s.DEBUG, bool(s.SECRET_KEY))"], DEBUG="true")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True True"


@pytest.mark.parametrize(
    ("name", "value"),
    [("CONN_MAX_AGE", "soon"), ("REDIS_URL", "http://127.0.0.1:6379/0"), ("SECURE_SSL_REDIRECT", "perhaps")],
)
def test_other_malformed_settings_stop_the_process(name, value):
    result = run(["-c", "import config.settings"], DEBUG="false", SECRET_KEY="x" * 60, **{name: value})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


def test_check_deploy_has_no_issues_with_production_settings():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="example.com",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"DEBUG": "false", "SECRET_KEY": "x" * 60, "CACHE_URL": "rediscache://127.0.0.1:6379/1"},
            "31536000 True True",
        ),
        ({"DEBUG": "true"}, "0 False False"),
    ],
)
def test_hsts_is_on_outside_development_only(env, expected):
    script = (
        "from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)"
    )
    result = run(["manage.py", "shell", "-c", script], DJANGO_SETTINGS_MODULE="config.settings", **env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


def test_no_content_security_policy_allows_inline_code_or_eval(settings):
    policies = [settings.CONTENT_SECURITY_POLICY, getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)]
    for policy in filter(None, policies):
        for directive, sources in policy["DIRECTIVES"].items():
            for source in sources:
                assert "unsafe" not in str(source), (directive, source)
    assert settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_pages_send_hsts_over_https_and_refuse_to_be_framed_but_the_widget(client, settings):
    from tests.factories import ProgramFactory

    ProgramFactory(slug="framed")
    pages = ["/", "/p/framed/", "/p/framed/subscribe", "/accounts/login/", "/api/docs/", "/r/NOPE-404"]
    for path in pages:
        response = client.get(path, secure=True)
        csp = response.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp, (path, response.status_code, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000"), path
    widget = client.get("/p/framed/widget", secure=True)
    assert widget.status_code == 200
    assert "frame-ancestors 'none'" not in widget.headers["Content-Security-Policy"]


# --- Management commands -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_api_key_prints_the_key_alone_on_its_last_line_and_stores_only_its_hash(program):
    from ambassadors.models import ApiKey

    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", program.slug, "--scopes", "track,read", stdout=out, stderr=err)

    raw = out.getvalue().rstrip("\n").splitlines()[-1]
    assert re.fullmatch(r"[A-Za-z0-9_.-]{20,}", raw)
    key = ApiKey.objects.get()
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert sorted(key.scopes) == ["read", "track"]
    stored = " ".join(str(v) for v in ApiKey.objects.values().get().values())
    assert raw not in stored
    assert raw not in err.getvalue()


@pytest.mark.django_db
def test_the_printed_key_works_against_the_api(program, api):
    out = io.StringIO()
    call_command("create_api_key", program.slug, "--scopes", "read", stdout=out, stderr=io.StringIO())
    raw = out.getvalue().strip().splitlines()[-1]

    response = api.get(f"/api/v1/programs/{program.slug}/signups/", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("scopes", ["track,admin", "", "READ", "track;read"])
def test_create_api_key_refuses_unknown_scopes(program, scopes):
    from ambassadors.models import ApiKey

    with pytest.raises(CommandError):
        call_command("create_api_key", program.slug, "--scopes", scopes, stdout=io.StringIO(), stderr=io.StringIO())

    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_create_api_key_refuses_an_unknown_program():
    with pytest.raises(CommandError, match="No program"):
        call_command("create_api_key", "no-such-program", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_create_api_key_with_an_unknown_scope_exits_with_an_error_and_no_key(program):
    """What an operator sees, against the test database: a message and a non-zero exit, no key, no traceback."""
    from ambassadors.models import ApiKey

    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    result = run(
        ["manage.py", "create_api_key", program.slug, "--scopes", "track,admin"],
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="true",
        DATABASE_URL=url,
    )

    assert result.returncode == 1
    assert "unknown: admin" in result.stderr
    assert "Traceback" not in result.stderr
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_seed_demo_twice_creates_the_same_rows_once():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from ambassadors.models import Ambassador, Program
    from core.models import AuditEvent
    from referrals.models import Click, Signup
    from rewards.models import RewardTier

    models = (Program, Ambassador, Click, Signup, RewardTier, AuditEvent, Group, get_user_model())

    call_command("seed_demo", stdout=io.StringIO())
    first = {m.__name__: m.objects.count() for m in models}
    call_command("seed_demo", stdout=io.StringIO())
    second = {m.__name__: m.objects.count() for m in models}

    assert first == second
    assert first["Program"] == 1 and first["Signup"] > 0 and first["Click"] > 0 and first["RewardTier"] == 2
    program = Program.objects.get(slug="book-launch")
    assert (program.currency, str(program.base_price), str(program.floor_price)) == ("EUR", "20.00", "10.00")
