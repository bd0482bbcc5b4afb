"""The deployment files agree with the code: docker-compose.yml, the Dockerfile, requirements.lock and CI.

Docker cannot run where the tests run, so these tests read the files instead: every service the design
names is there, each runs an entry point that exists in the code, and nothing points at a private package
index or at a path of one machine. No database, no Django import.
"""

from __future__ import annotations

import importlib.machinery
import re
import shlex
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
LOCK_FILE = ROOT / "requirements.lock"
CI_SCRIPT = ROOT / ".ci" / "run"

# Files that are committed and read by a build: none of them may name a package index or a local path.
BUILD_FILES = [
    "Makefile",
    "Dockerfile",
    "docker-compose.yml",
    ".ci/run",
    ".ci/services.sh",
    "requirements.lock",
    "pyproject.toml",
]
# Spelled in pieces so that this file does not itself contain what it forbids.
FORBIDDEN_IN_BUILD_FILES = ["index" + "-url", "/simple" + "/", "find" + "-links", "/work/", "/root/", ".pyenv/"]

PIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?==[A-Za-z0-9][A-Za-z0-9.+!_-]*$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    services = compose.get("services") or {}
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


def command_text(svc: dict[str, Any]) -> str:
    command = svc.get("command")
    if isinstance(command, list):
        return " ".join(str(part) for part in command)
    return str(command or "")


def module_file_exists(dotted: str) -> bool:
    """Finds a module on the repository's path without importing it, nor its parent packages."""
    parts = dotted.split(".")
    search_path: list[str] | None = [str(ROOT)]
    spec = None
    for part in parts:
        spec = importlib.machinery.PathFinder.find_spec(part, search_path)
        if spec is None:
            return False
        search_path = list(spec.submodule_search_locations or [])
    return spec is not None and spec.origin is not None and Path(spec.origin).is_file()


def test_compose_defines_database_broker_web_worker_and_beat_services(compose):
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(compose["services"])


def test_compose_postgres_keeps_data_in_a_volume_and_reports_health(compose):
    postgres = service(compose, "postgres")
    assert str(postgres["image"]).startswith("postgres:16")
    assert any(str(volume).endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])
    assert "pg_isready" in " ".join(map(str, postgres["healthcheck"]["test"]))


def test_compose_web_serves_the_wsgi_application_with_gunicorn_after_migrating(compose):
    command = command_text(service(compose, "web"))
    assert "gunicorn" in command
    assert "config.wsgi:application" in command
    assert "migrate" in command
    assert command.index("migrate") < command.index("gunicorn"), "migrations must run before gunicorn"


def test_wsgi_entry_point_named_by_compose_exists_in_the_code():
    assert (ROOT / "config" / "wsgi.py").is_file()
    assert module_file_exists("config.wsgi")


@pytest.mark.parametrize("name, subcommand", [("worker", "worker"), ("beat", "beat")])
def test_compose_celery_services_run_the_config_celery_app(compose, name, subcommand):
    words = shlex.split(command_text(service(compose, name)))
    assert words[:4] == ["celery", "-A", "config", subcommand]
    assert (ROOT / "config" / "celery.py").is_file()
    assert module_file_exists("config.celery")


@pytest.mark.parametrize("name", ["web", "worker", "beat"])
def test_compose_app_services_are_configured_from_the_environment_with_debug_off(compose, name):
    env = service(compose, name)["environment"]
    assert str(env["DEBUG"]).lower() == "false"
    # ${VAR:?message} makes compose refuse to start without the variable: no default secret anywhere.
    assert str(env["SECRET_KEY"]).startswith("${SECRET_KEY:?")
    assert str(env["DATABASE_URL"]).startswith("postgres://")
    assert "@postgres:5432/" in str(env["DATABASE_URL"])
    assert str(env["REDIS_URL"]).startswith("redis://redis:6379/")
    assert "ALLOWED_HOSTS" in env


def test_dockerfile_installs_pinned_requirements_and_runs_gunicorn_as_non_root():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert re.search(r"pip install[^\n]*-r requirements\.lock", text)
    assert "collectstatic" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users, "the image must not run as root"
    assert users[-1] not in {"root", "0"}
    cmd = re.search(r"^CMD\s+(\[.*?\])\s*$", text, re.MULTILINE | re.DOTALL)
    assert cmd is not None
    assert "gunicorn" in cmd.group(1)
    assert "config.wsgi:application" in cmd.group(1)
    assert "0.0.0.0:8000" in cmd.group(1)


def test_requirements_lock_pins_every_package_to_one_exact_version():
    lines = [line.strip() for line in LOCK_FILE.read_text(encoding="utf-8").splitlines()]
    pins = [line for line in lines if line and not line.startswith("#")]
    assert pins, "requirements.lock is empty"
    bad = [line for line in pins if not PIN.match(line)]
    assert not bad, f"not name==version: {bad}"
    names = [re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() for line in pins]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"pinned more than once: {duplicates}"


def test_requirements_lock_pins_the_servers_the_deployment_runs():
    names = {
        re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
        for line in LOCK_FILE.read_text(encoding="utf-8").splitlines()
        if "==" in line
    }
    assert {"django", "gunicorn", "celery", "redis", "psycopg"} <= names


@pytest.mark.parametrize("relative", BUILD_FILES)
def test_build_files_name_no_package_index_nor_local_path(relative):
    path = ROOT / relative
    if not path.exists():
        pytest.fail(f"{relative} is missing")
    text = path.read_text(encoding="utf-8").lower()
    found = [needle for needle in FORBIDDEN_IN_BUILD_FILES if needle in text]
    assert not found, f"{relative} contains {found}"


def test_ci_script_is_executable_strict_bash():
    mode = CI_SCRIPT.stat().st_mode
    assert mode & stat.S_IXUSR, ".ci/run must be executable"
    text = CI_SCRIPT.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert "PARRAIN_REQUIRE_SERVICES=1" in text
    assert "pkill" not in text and "killall" not in text, "CI stops only the processes it started"


def test_makefile_offers_the_documented_targets():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("install", "run", "test", "lint", "bench", "clean"):
        assert re.search(rf"^{target}:", text, re.MULTILINE), f"no `make {target}`"
    phony = re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE)
    assert phony is not None
    assert {"install", "run", "test", "lint", "bench", "clean"} <= set(phony.group(1).split())


def test_docker_build_context_leaves_out_local_state():
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()}
    assert {".git", ".venv", "db.sqlite3*", "staticfiles", ".env"} <= ignored
