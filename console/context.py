"""Template context for every page: which consoles the signed-in person may open (for the header)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from core import policies


def consoles(request: HttpRequest) -> dict[str, Any]:
    principal = policies.Principal.for_user(getattr(request, "user", None))
    if not principal.is_authenticated:
        return {"show_staff_console": False, "show_audit_console": False}
    return {
        "show_staff_console": bool(policies.may_use_staff_console(principal)),
        "show_audit_console": bool(policies.may_read_audit(principal)),
    }
