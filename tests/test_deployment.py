"""The deployment files agree with the code: docker-compose.yml, the Dockerfile, the locks in requirements/,
pyproject.toml, the pre-commit hooks and CI.

Docker cannot run where the tests run, so these tests read the files instead, each with a parser of its
format (YAML, TOML, PEP 508 requirements, Dockerfile instructions): every service the design names is
there, each runs an entry point that exists in the code, and nothing points at a private package index or
at a path of one machine. No database, no Django import. tests/ops_scale/test_image_build.py builds the
image the Dockerfile describes on this machine, and runs it.
"""

from __future__ import annotations

import importlib.machinery
import json
import re
import shlex
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"
DEV_LOCK = ROOT / "requirements" / "dev.lock"
PYPROJECT = ROOT / "pyproject.toml"
PRE_COMMIT_CONFIG = ROOT / ".pre-commit-config.yaml"
CI_SCRIPT = ROOT / ".ci" / "run"

# Files that are committed and read by a build: none of them may name a package index or a local path.
BUILD_FILES = [
    "Makefile",
    "Dockerfile",
    "docker-compose.yml",
    ".ci/run",
    ".ci/services.sh",
    ".pre-commit-config.yaml",
    "requirements/runtime.lock",
    "requirements/dev.lock",
    "pyproject.toml",
]
# Spelled in pieces so that this file does not itself contain what it forbids.
FORBIDDEN_IN_BUILD_FILES = ["index" + "-url", "/simple" + "/", "find" + "-links", "/work/", "/root/", ".pyenv/"]


# --- Parsers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, its continuation lines joined."""

    keyword: str  # upper-case: FROM, RUN, CMD...
    arguments: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of the exec form (`CMD ["a", "b"]`), or None for the shell form."""
        if not self.arguments.startswith("["):
            return None
        try:
            value = json.loads(self.arguments)
        except json.JSONDecodeError:
            return None  # Docker runs a malformed array as a shell command
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None

    def shell_words(self) -> list[str]:
        return shlex.split(self.arguments, comments=False)


def dockerfile_instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile as Docker reads them: a line ending in the escape character `\\`
    goes on with the next one, and lines starting with `#` are comments, even inside a continuation
    (parser directives such as `# syntax=` are comments to us)."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        keyword, _, arguments = " ".join(part for part in pending if part).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = []
    assert not pending, f"the Dockerfile ends inside a continuation: {pending}"
    return instructions


def lock_entries(lock: Path | None = None) -> list[tuple[str, Requirement | None]]:
    """Each requirement line of a lock (both by default), with its PEP 508 parse (None if it does not parse).

    dev.lock's `-r runtime.lock` is its inclusion of the runtime lock, not a requirement."""
    entries: list[tuple[str, Requirement | None]] = []
    for path in [lock] if lock else [RUNTIME_LOCK, DEV_LOCK]:
        entries.extend(_lock_file_entries(path))
    return entries


def _lock_file_entries(path: Path) -> list[tuple[str, Requirement | None]]:
    entries: list[tuple[str, Requirement | None]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or (path == DEV_LOCK and line == "-r runtime.lock"):
            continue
        try:
            entries.append((line, Requirement(line)))
        except InvalidRequirement:
            entries.append((line, None))
    return entries


def is_exact_pin(line: str, requirement: Requirement | None) -> bool:
    """`name==version` and nothing else: no range, wildcard, extra, marker, URL, option nor spacing."""
    if requirement is None or str(requirement) != line:
        return False
    if requirement.extras or requirement.marker or requirement.url:
        return False
    specifiers = list(requirement.specifier)
    return len(specifiers) == 1 and specifiers[0].operator == "==" and not specifiers[0].version.endswith(".*")


def locked_versions(lock: Path | None = None) -> dict[str, str]:
    """Canonical name -> pinned version, in one lock or in both."""
    return {
        canonicalize_name(requirement.name): next(iter(requirement.specifier)).version
        for line, requirement in lock_entries(lock)
        if is_exact_pin(line, requirement)
    }


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    with PYPROJECT.open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    services = compose.get("services") or {}
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


def command_words(svc: dict[str, Any]) -> list[str]:
    """A compose `command` as the argument list the container gets (a string is split as a shell would)."""
    command = svc.get("command")
    if isinstance(command, list):
        return [str(part) for part in command]
    return shlex.split(str(command or ""))


def shell_script(words: list[str]) -> list[str]:
    """The words of `sh -c "script"` (or of the command itself when it is not a shell script)."""
    if len(words) >= 3 and words[0] in {"sh", "bash", "/bin/sh", "/bin/bash"} and words[1] == "-c":
        return shlex.split(words[2])
    return words


def healthcheck_words(test: Any) -> list[str]:
    if isinstance(test, str):
        return shlex.split(test)
    kind, *rest = [str(part) for part in test]
    if kind == "CMD-SHELL":
        return shlex.split(" ".join(rest))
    return rest if kind == "CMD" else []


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


def option_value(words: list[str], *names: str) -> str | None:
    """The value of `--name value` or `--name=value` in an argument list."""
    for i, word in enumerate(words):
        if word in names and i + 1 < len(words):
            return words[i + 1]
        for name in names:
            if word.startswith(f"{name}="):
                return word.split("=", 1)[1]
    return None


# --- docker-compose.yml ------------------------------------------------------------------------------


def test_compose_defines_database_broker_web_worker_and_beat_services(compose):
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(compose["services"])


def test_compose_postgres_keeps_data_in_a_volume_and_reports_health(compose):
    postgres = service(compose, "postgres")
    assert str(postgres["image"]).startswith("postgres:16")
    assert any(str(volume).endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])
    assert healthcheck_words(postgres["healthcheck"]["test"])[:1] == ["pg_isready"]


def test_compose_web_serves_the_wsgi_application_with_gunicorn_after_migrating(compose):
    words = shell_script(command_words(service(compose, "web")))
    assert "gunicorn" in words
    gunicorn = words.index("gunicorn")
    assert "config.wsgi:application" in words[gunicorn:]
    migrate = [i for i in range(len(words) - 1) if words[i : i + 2] == ["manage.py", "migrate"]]
    assert migrate, f"no `manage.py migrate` in {words}"
    assert migrate[0] < gunicorn, "migrations must run before gunicorn"


def test_wsgi_entry_point_named_by_compose_exists_in_the_code():
    assert (ROOT / "config" / "wsgi.py").is_file()
    assert module_file_exists("config.wsgi")


@pytest.mark.parametrize("name, subcommand", [("worker", "worker"), ("beat", "beat")])
def test_compose_celery_services_run_the_config_celery_app(compose, name, subcommand):
    words = command_words(service(compose, name))
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


# --- Dockerfile --------------------------------------------------------------------------------------


def test_dockerfile_parser_joins_continuations_and_skips_comments():
    parsed = dockerfile_instructions(
        "# syntax=docker/dockerfile:1\n"
        "FROM python:3.11-slim\n"
        "RUN apt-get update \\\n"
        "    # a comment inside the continuation\n"
        "\n"
        "    && pip install -r requirements/runtime.lock\n"
        'CMD ["gunicorn", \\\n'
        '     "config.wsgi:application"]\n'
    )
    assert parsed == [
        Instruction("FROM", "python:3.11-slim"),
        Instruction("RUN", "apt-get update && pip install -r requirements/runtime.lock"),
        Instruction("CMD", '["gunicorn", "config.wsgi:application"]'),
    ]
    assert parsed[2].exec_form() == ["gunicorn", "config.wsgi:application"]
    assert parsed[1].exec_form() is None


def test_dockerfile_builds_on_python_3_11_slim(dockerfile):
    bases = [instruction.shell_words()[0] for instruction in dockerfile if instruction.keyword == "FROM"]
    assert bases, "the Dockerfile has no FROM"
    # The last stage is the image that runs.
    assert re.fullmatch(r"python:3\.11-slim(-[\w.]+)?(@sha256:[0-9a-f]+)?", bases[-1]), bases


def test_dockerfile_installs_the_pinned_requirements(dockerfile):
    def installs_the_lock(words: list[str]) -> bool:
        for i in range(len(words) - 1):
            if words[i : i + 2] == ["pip", "install"]:
                rest = words[i + 2 :]
                # The options of this pip command, up to the next shell operator.
                for separator in ("&&", "||", ";", "|"):
                    if separator in rest:
                        rest = rest[: rest.index(separator)]
                if option_value(rest, "-r", "--requirement") == "requirements/runtime.lock":
                    return True
        return False

    runs = [instruction.shell_words() for instruction in dockerfile if instruction.keyword == "RUN"]
    assert any(installs_the_lock(words) for words in runs), "no RUN pip install -r requirements/runtime.lock"


def test_dockerfile_collects_static_files_into_the_image(dockerfile):
    runs = [instruction.shell_words() for instruction in dockerfile if instruction.keyword == "RUN"]
    assert any("manage.py" in words and "collectstatic" in words for words in runs)


def test_dockerfile_runs_as_a_user_other_than_root(dockerfile):
    users = [instruction.arguments.split(":")[0] for instruction in dockerfile if instruction.keyword == "USER"]
    assert users, "the image must not run as root"
    assert users[-1] not in {"root", "0"}


def test_dockerfile_runs_gunicorn_on_the_wsgi_application_in_exec_form(dockerfile):
    commands = [instruction for instruction in dockerfile if instruction.keyword == "CMD"]
    assert commands, "the Dockerfile has no CMD"
    # Exec form: gunicorn is PID 1 and gets the container's SIGTERM itself.
    cmd = commands[-1].exec_form()
    assert cmd is not None, f"CMD is not an exec-form JSON array: {commands[-1].arguments}"
    assert cmd[0] == "gunicorn"
    assert "config.wsgi:application" in cmd
    assert option_value(cmd, "--bind", "-b") == "0.0.0.0:8000"


# --- requirements/*.lock and pyproject.toml ---------------------------------------------------------


def test_requirements_lock_pins_every_package_to_one_exact_version():
    entries = lock_entries()
    assert entries, "the locks are empty"
    bad = [line for line, requirement in entries if not is_exact_pin(line, requirement)]
    assert not bad, f"not name==version: {bad}"
    names = [canonicalize_name(requirement.name) for _, requirement in entries if requirement is not None]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"pinned more than once: {duplicates}"


def test_requirements_lock_pins_the_servers_the_deployment_runs():
    assert {"django", "gunicorn", "celery", "redis", "psycopg"} <= set(locked_versions(RUNTIME_LOCK))


def test_every_dependency_in_pyproject_is_pinned_in_the_lock_within_its_range(pyproject):
    locked = locked_versions()
    declared = [*pyproject["project"]["dependencies"], *pyproject["project"]["optional-dependencies"]["dev"]]
    problems = []
    for text in declared:
        requirement = Requirement(text)
        version = locked.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement.name} is not pinned")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} is outside {requirement.specifier}")
    assert not problems, problems


# --- Developer tools: pre-commit, Makefile, CI ---------------------------------------------------------


def test_pre_commit_hooks_are_local_and_run_installed_tools():
    with PRE_COMMIT_CONFIG.open(encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    repos = config["repos"]
    assert repos, "no pre-commit hooks"
    # A remote repository would be cloned from a host CI cannot reach; the tools come from requirements/dev.lock.
    assert {repo["repo"] for repo in repos} == {"local"}
    hooks = [hook for repo in repos for hook in repo["hooks"]]
    assert {hook["language"] for hook in hooks} <= {"system", "pygrep"}
    assert {"ruff-check", "ruff-format", "migrations", "debug-leftovers"} <= {hook["id"] for hook in hooks}


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
