"""Settings for the test suite: the production settings, with test-only defaults for what they require.

The environment still wins: `make test` points DATABASE_URL and REDIS_URL at PostgreSQL and Redis.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# Production settings require both URLs (config/settings.py); a bare `pytest` keeps its old defaults.
os.environ.setdefault("DATABASE_URL", "sqlite:///" + str(Path(__file__).resolve().parent.parent / "db.sqlite3"))
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_url_of_this_test_process(url: str, worker: str) -> str:
    """`make test` runs the suite in two processes (pytest-xdist); each gets its own Redis database, the
    given one for gw0 and the next ones for the others, as pytest-django gives each its own test database:
    one process's Celery queue, rate limits and cache never see the other's."""
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    base = int(parts.path.lstrip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + int(worker[2:])}"))


# Once per test process: the Celery workers and servers a test starts inherit both variables, and must
# stay on the database their test process chose.
if not os.environ.get("PARRAIN_TEST_REDIS_CHOSEN"):
    os.environ["REDIS_URL"] = _redis_url_of_this_test_process(
        os.environ["REDIS_URL"], os.environ.get("PYTEST_XDIST_WORKER", "")
    )
    os.environ["PARRAIN_TEST_REDIS_CHOSEN"] = "1"

from config.settings import *  # noqa: E402,F403

# Hashing passwords slowly is a feature in production and only a cost in tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests run the app as a browser would see it in production, but over plain HTTP.
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
REFERRAL_COOKIE_SECURE = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
