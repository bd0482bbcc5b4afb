# Parrain production image: gunicorn serving config.wsgi, the same image runs the Celery worker and beat
# (see docker-compose.yml). Every setting comes from the environment at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEB_CONCURRENCY=3

WORKDIR /app

# An unprivileged user owns nothing in /app: the code and the collected static files stay read-only.
RUN groupadd --system parrain \
    && useradd --system --gid parrain --no-create-home --home-dir /app --shell /usr/sbin/nologin parrain

# Dependencies first, so a code change does not reinstall them. All wheels: no compiler needed. The runtime
# lock only: no test runner, linter, type checker or browser driver in the image (those are in dev.lock).
COPY requirements/runtime.lock requirements/
RUN pip install -r requirements/runtime.lock

COPY . .

# Static files are collected into the image (served by WhiteNoise). The key and URLs below exist only for
# this build step, which needs the settings to load with DEBUG off and connects to nothing; the running
# container must be given its own.
RUN DEBUG=false SECRET_KEY=collectstatic-build-step-only-not-a-secret \
    DATABASE_URL=postgres://build@localhost:5432/build REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput

USER parrain

EXPOSE 8000

# gunicorn reads its worker count from WEB_CONCURRENCY (default 3 above: 2 x cores + 1 on a small host), and
# gunicorn.conf.py (found in /app by itself) for /metrics across its workers when PROMETHEUS_MULTIPROC_DIR is set.
CMD ["gunicorn", "config.wsgi:application", \
     "--bind", "0.0.0.0:8000", \
     "--worker-tmp-dir", "/dev/shm", \
     "--timeout", "30", \
     "--graceful-timeout", "30", \
     "--access-logfile", "-"]
