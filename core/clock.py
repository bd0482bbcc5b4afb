"""The one clock of the services: aware UTC, frozen in tests with time-machine like any other."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
