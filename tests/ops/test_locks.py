"""Two locks: requirements/runtime.lock is all the production image installs, and holds no development
tool; requirements/dev.lock adds the tools to it. Read as files: no install, no network."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.test_deployment import DOCKERFILE, dockerfile_instructions

ROOT = Path(__file__).resolve().parent.parent.parent
RUNTIME = ROOT / "requirements" / "runtime.lock"
DEV = ROOT / "requirements" / "dev.lock"
# What the image must never hold: test runners, browsers, linters, type checkers and their plugins.
DEV_TOOLS = {
    "pytest", "pytest-django", "playwright", "ruff", "mypy", "schemathesis", "hypothesis", "factory-boy",
    "faker", "time-machine", "zxing-cpp", "pre-commit", "import-linter", "django-stubs",
    "djangorestframework-stubs", "greenlet",
}  # fmt: skip


def pins(path: Path) -> dict[str, str]:
    found = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-r ")):
            continue
        name, _, version = line.partition("==")
        found[canonicalize_name(name)] = version
    return found


def pyproject() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def test_the_runtime_lock_holds_no_development_tool():
    assert not DEV_TOOLS & set(pins(RUNTIME))


def test_every_runtime_dependency_of_pyproject_is_pinned_in_the_runtime_lock_within_its_range():
    runtime = pins(RUNTIME)
    for text in pyproject()["project"]["dependencies"]:
        requirement = Requirement(text)
        version = runtime.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is not in runtime.lock"
        assert requirement.specifier.contains(version, prereleases=True), f"{requirement.name}=={version}"


def test_the_dev_lock_includes_the_runtime_lock_and_pins_the_dev_tools_without_repeating_it():
    lines = [line.strip() for line in DEV.read_text(encoding="utf-8").splitlines()]
    dev = pins(DEV)

    assert "-r runtime.lock" in lines
    assert not set(dev) & set(pins(RUNTIME)), "pinned in both locks: two versions could disagree"
    for text in pyproject()["project"]["optional-dependencies"]["dev"]:
        assert canonicalize_name(Requirement(text).name) in dev, text


def test_both_locks_are_name_equals_version_lines_without_any_index():
    for path in (RUNTIME, DEV):
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#") or line == "-r runtime.lock":
                continue
            requirement = Requirement(line)
            assert str(requirement) == line and [s.operator for s in requirement.specifier] == ["=="], line


def test_the_dockerfile_installs_the_runtime_lock_only():
    instructions = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))
    installs = [i.shell_words() for i in instructions if i.keyword == "RUN" and "pip" in i.shell_words()]
    built = " ".join(i.arguments for i in instructions)  # what Docker runs, comments left out

    assert installs == [["pip", "install", "-r", "requirements/runtime.lock"]]
    assert "dev.lock" not in built and "[dev]" not in built and "pyproject" not in built
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {"requirements/dev.lock", "tests"} <= set(ignored)


def test_make_install_installs_the_dev_lock():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")

    assert "-r requirements/dev.lock" in makefile
    assert not (ROOT / "requirements.lock").exists()
