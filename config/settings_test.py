"""Settings for the test suite: the production settings, with test-only defaults for what they require.

The environment still wins: `make test` points DATABASE_URL and REDIS_URL at PostgreSQL and Redis.
"""

import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# Production settings require both URLs (config/settings.py); a bare `pytest` keeps its old defaults.
os.environ.setdefault("DATABASE_URL", "sqlite:///" + str(Path(__file__).resolve().parent.parent / "db.sqlite3"))
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

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
