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

# Dependencies first, so a code change does not reinstall them. All wheels: no compiler needed.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY . .

# Static files are collected into the image (served by WhiteNoise). The key below exists only for this
# build step, which needs the settings to load with DEBUG off; the running container must be given its own.
RUN DEBUG=false SECRET_KEY=collectstatic-build-step-only-not-a-secret \
    python manage.py collectstatic --noinput

USER parrain

EXPOSE 8000

# gunicorn reads its worker count from WEB_CONCURRENCY (default 3 above: 2 x cores + 1 on a small host).
CMD ["gunicorn", "config.wsgi:application", \
     "--bind", "0.0.0.0:8000", \
     "--worker-tmp-dir", "/dev/shm", \
     "--timeout", "30", \
     "--graceful-timeout", "30", \
     "--access-logfile", "-"]
