"""The Celery app: `celery -A config worker` and `celery -A config beat`, configured from CELERY_* settings."""

import copy
import logging.config
import os
from typing import Any

import structlog
from celery import Celery
from celery.signals import setup_logging, task_postrun
from django_structlog.celery.steps import DjangoStructLogInitStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("parrain")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The worker binds the request id a task was sent with (django-structlog), so its log lines carry it.
app.steps["worker"].add(DjangoStructLogInitStep)


@task_postrun.connect
def _forget_the_task_context(task: Any = None, **kwargs: Any) -> None:
    """A worker's lines between two tasks (the next "received") must not carry the last task's ids."""
    if task is not None and not task.request.is_eager:  # an eager task runs inside its request: keep its id
        structlog.contextvars.clear_contextvars()


@setup_logging.connect
def _logging_from_settings(loglevel: Any = None, logfile: str | None = None, **kwargs: Any) -> None:
    """Workers and beat log like the web processes (settings.LOGGING: JSON in production), not Celery's way;
    `--loglevel` and `--logfile` still apply."""
    from django.conf import settings

    config = copy.deepcopy(settings.LOGGING)
    if logfile:
        config["handlers"]["console"] = {"class": "logging.FileHandler", "filename": logfile, "formatter": "structured"}
    if loglevel:
        config["root"]["level"] = loglevel
    logging.config.dictConfig(config)


# Tasks run and failed, counted for /metrics (config/metrics.py); connected in every process of the app.
from config import metrics  # noqa: E402

metrics.connect_task_signals()
