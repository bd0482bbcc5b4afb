"""Who may do what: the staff roles of design section 5, in one place for pages, API and admin."""

from __future__ import annotations

from typing import Any

MARKETING_GROUP = "marketing"
AUDITORS_GROUP = "auditors"


def _in_group(user: Any, name: str) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    cache = getattr(user, "_parrain_groups", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._parrain_groups = cache
    return name in cache


def is_auditor(user: Any) -> bool:
    """Admins: audit, override attributions, review fraud."""
    return bool(getattr(user, "is_superuser", False)) or _in_group(user, AUDITORS_GROUP)


def is_marketing(user: Any) -> bool:
    """Marketing staff: programs, tiers and analytics; never overrides."""
    return bool(getattr(user, "is_superuser", False)) or _in_group(user, MARKETING_GROUP)


def is_staff_member(user: Any) -> bool:
    return is_marketing(user) or is_auditor(user)
