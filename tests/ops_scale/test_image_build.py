"""The production image, built as its Dockerfile says, without Docker (no engine runs where the tests run).

Each instruction of the Dockerfile is carried out on this machine instead: FROM is this machine's Python of the
same version, ENV is applied, the build context is the project's files as `.dockerignore` leaves them, the
dependencies are installed from the runtime lock into a fresh virtual environment, the static files are
collected by the Dockerfile's own command line, and the image's CMD starts gunicorn. An instruction this
test does not know fails it: the Dockerfile and this test change together.

What it shows: the runtime lock alone installs everything the application needs, and nothing to test, lint
or drive a browser; the context holds what the application serves (templates, translations, the vendored
front-end files), and the image's command serves pages, static files and the health check against a real
database. What only Docker can show (the base image's system libraries, the unprivileged user) is left to
tests/test_deployment.py's reading of the file.
"""

from __future__ import annotations

import fnmatch
import http.client
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import ProgramFactory
from tests.rewards.conftest import database_url_for_workers, free_port, stop_process, wait_until
from tests.rewards.test_workers import broker  # noqa: F401  (a fixture)
from tests.test_deployment import DOCKERFILE, dockerfile_instructions

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ROOT = Path(settings.BASE_DIR)
# What the image must not hold: the development lock's tools.
TEST_TOOLS = ["pytest", "ruff", "mypy", "hypothesis", "playwright", "factory", "schemathesis", "time_machine"]


def _matches(pattern: list[str], path: list[str]) -> bool:
    """A .dockerignore pattern against a path, both split on "/": `**` spans any number of directories, any
    other part is a shell pattern for one name (Go's filepath.Match, as Docker uses it)."""
    if not pattern:
        return not path
    if pattern[0] == "**":
        return any(_matches(pattern[1:], path[i:]) for i in range(len(path) + 1))
    return bool(path) and fnmatch.fnmatchcase(path[0], pattern[0]) and _matches(pattern[1:], path[1:])


def dockerignore() -> list[list[str]]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip().strip("/") for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert not [p for p in patterns if p.startswith("!")], "exceptions (!) are not read by this test yet"
    return [pattern.split("/") for pattern in patterns]


def build_context(destination: Path) -> None:
    """The project's files as `docker build .` sends them: a path is left out when it, or a directory above
    it, matches a pattern of .dockerignore."""
    patterns = dockerignore()

    def ignored(relative: Path) -> bool:
        return any(_matches(pattern, list(relative.parts)) for pattern in patterns)

    for folder, directories, files in os.walk(ROOT):
        here = Path(folder).relative_to(ROOT)
        directories[:] = [d for d in directories if not ignored(here / d)]
        for name in files:
            if not ignored(here / name):
                (destination / here).mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / here / name, destination / here / name, follow_symlinks=True)


class Image:
    """The image's file system (`app`, its WORKDIR) and environment, built instruction by instruction."""

    def __init__(self, folder: Path) -> None:
        self.app = folder / "app"
        self.app.mkdir()
        self.venv = folder / "venv"  # the base image's site-packages: the interpreter's, for the image alone
        subprocess.run([sys._base_executable, "-m", "venv", str(self.venv)], check=True)  # type: ignore[attr-defined]
        # A container's environment: the image's ENV and what `docker run` passes, nothing of this machine's
        # (but where to find programs, and pip's cache below).
        self.env = {"PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/")}
        self.cmd: list[str] = []

    def run(self, script: str) -> None:
        done = subprocess.run(["bash", "-c", script], cwd=self.app, env=self.env, capture_output=True, text=True)
        assert done.returncode == 0, f"RUN {script}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    def build(self) -> None:
        for instruction in dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8")):
            keyword, arguments = instruction.keyword, instruction.arguments
            if keyword == "FROM":
                assert arguments.startswith("python:3.11"), arguments
                assert sys.version_info[:2] == (3, 11)
            elif keyword == "ENV":
                self.env.update(dict(pair.split("=", 1) for pair in shlex.split(arguments)))
                # The image keeps no pip cache; this build may use the machine's (the same wheels either way).
                self.env.pop("PIP_NO_CACHE_DIR", None)
            elif keyword == "WORKDIR":
                assert arguments == "/app", arguments
            elif keyword == "COPY" and arguments == ". .":
                build_context(self.app)
            elif keyword == "COPY":
                source, target = shlex.split(arguments)
                (self.app / target).mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, self.app / target)
            elif keyword == "RUN" and arguments.startswith("groupadd "):
                pass  # creates the image's user: not on this machine
            elif keyword == "RUN" and (arguments.startswith("pip install") or "manage.py collectstatic" in arguments):
                self.run(arguments)
            elif keyword in ("USER", "EXPOSE"):
                pass  # what the container runs as and publishes: Docker's business
            elif keyword == "CMD":
                self.cmd = json.loads(arguments)
            else:
                raise AssertionError(f"this test does not know how to build `{keyword} {arguments}`: teach it")
        assert self.cmd, "the Dockerfile has no CMD"

    def installed(self, module: str) -> bool:
        probe = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
        return subprocess.run([str(self.venv / "bin" / "python"), "-c", probe], env=self.env).returncode == 0


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": "127.0.0.1"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_image_builds_from_the_runtime_lock_and_serves_the_application(tmp_path, broker):  # noqa: F811
    program = ProgramFactory(slug="image-check", name="Built without Docker")
    image = Image(tmp_path)
    image.build()

    assert [tool for tool in TEST_TOOLS if image.installed(tool)] == []
    assert image.installed("gunicorn") and image.installed("psycopg") and image.installed("celery")
    assert not (image.app / "tests").exists() and not (image.app / "requirements" / "dev.lock").exists()
    assert (image.app / "staticfiles" / "vendor").is_dir()  # collected into the image

    port = free_port()
    command = [port_bound(word, port) for word in image.cmd]
    env = image.env | {
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": database_url_for_workers(),
        "REDIS_URL": broker,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "WEB_CONCURRENCY": "1",
        "CONN_MAX_AGE": "0",
    }
    log = tmp_path / "gunicorn.log"
    with open(log, "w") as output:
        server = subprocess.Popen(command, cwd=image.app, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:

        def answers() -> bool:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                return get(port, "/health/")[0] == 200
            except OSError:
                return False

        wait_until(answers, timeout=60, interval=0.2, what="the image's gunicorn")
        health = json.loads(get(port, "/health/")[1])
        page = get(port, f"/p/{program.slug}/")
        static = get(port, "/static/vendor/htmx-2.0.11/htmx.min.js")
        unknown = get(port, "/r/NO-SUCH-LINK")
    finally:
        stop_process(server, timeout=15)

    assert (health["status"], health["database"], health["broker"]) == ("ok", "ok", "ok")
    assert page[0] == 200 and program.name.encode() in page[1]
    assert static[0] == 200 and b"htmx" in static[1]
    assert unknown[0] == 404


def port_bound(word: str, port: int) -> str:
    """The CMD's `--bind 0.0.0.0:8000` on a free port of this machine's loopback instead."""
    return f"127.0.0.1:{port}" if word.startswith("0.0.0.0:") else word
