"""django-prometheus's request middlewares, safe to build from several threads at once.

Their metrics are one process-wide object that the first middleware built creates; two threads building
a handler at the same time (a threaded server loading lazily, tests posting from threads) would both
create it and register every metric twice. A lock makes the first creation the only one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django_prometheus import middleware

_creating = threading.Lock()


class PrometheusBeforeMiddleware(middleware.PrometheusBeforeMiddleware):
    def __init__(self, get_response: Callable[..., Any] | None = None) -> None:
        with _creating:
            super().__init__(get_response)


class PrometheusAfterMiddleware(middleware.PrometheusAfterMiddleware):
    def __init__(self, get_response: Callable[..., Any] | None = None) -> None:
        with _creating:
            super().__init__(get_response)
