"""The peppers that key the IP hashes: the newest hashes what comes in, every one still inside the velocity
window is tried when an address is looked up, and a rotation forgets the old ones for good.

A pepper starts hashing ACTIVATION_DELAY after it is created. Each process caches the peppers for
CACHE_SECONDS, so by the time a new one hashes anything every process has loaded it, and a lookup made
anywhere finds the hashes it made. The redirect therefore reads no pepper from the database: once per
CACHE_SECONDS per process, one query of a table of two or three rows.

Without any row (a fresh install before its first rotation, most tests) the hashes are keyed with
SECRET_KEY, exactly as before peppers existed, and that key stays in use for lookups until the first
rotated pepper has hashed for a whole velocity window.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from core.actors import Actor
from core.audit import audit_record
from referrals.models import IpPepper

CACHE_SECONDS = 60
# Twice the cache period: every process has reloaded at least once before the new pepper hashes.
ACTIVATION_DELAY = timedelta(seconds=2 * CACHE_SECONDS)
# Kept this long after they stopped hashing, beyond the velocity window: a slow clock, a late signup.
MARGIN = timedelta(days=1)
# A rotation sooner than this after the previous one does nothing (unless forced): running the command
# again, or twice from two schedulers, does not churn peppers.
MIN_AGE = timedelta(days=1)


@dataclass(frozen=True)
class Pepper:
    id: int | None  # None: SECRET_KEY, the pepper of an install that never rotated
    secret: str | None
    activates_at: datetime | None  # None: always was


def lookback() -> timedelta:
    """The longest window in which a hashed address is matched again: the signups' velocity window."""
    from referrals.services.signups import VELOCITY_WINDOW  # signups hashes through this module

    return VELOCITY_WINDOW


_cache: tuple[float, tuple[Pepper, ...]] | None = None


def _peppers() -> tuple[Pepper, ...]:
    """Every pepper, oldest first, SECRET_KEY's first of all; from this process's cache when fresh."""
    global _cache
    cached = _cache
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    rows = IpPepper.objects.order_by("created_at", "pk").values_list("pk", "secret", "created_at")
    peppers = (Pepper(None, None, None),) + tuple(
        Pepper(pk, secret, created_at + ACTIVATION_DELAY) for pk, secret, created_at in rows
    )
    _cache = (time.monotonic(), peppers)
    return peppers


def ip_peppers_forget() -> None:
    """Drop this process's cache: after a rotation here, or a test that created and rolled back peppers."""
    global _cache
    _cache = None


def _current(peppers: tuple[Pepper, ...], now: datetime) -> Pepper:
    current = peppers[0]
    for pepper in peppers[1:]:
        if pepper.activates_at is not None and pepper.activates_at <= now:
            current = pepper
    return current


def _live(peppers: tuple[Pepper, ...], now: datetime) -> list[Pepper]:
    """The current pepper first, then every other one that hashed something inside the lookback window
    (or will soon hash: created by a rotation moments ago)."""
    current = _current(peppers, now)
    since = now - lookback()
    live = [current]
    for index, pepper in enumerate(peppers):
        if pepper is current:
            continue
        following = peppers[index + 1] if index + 1 < len(peppers) else None
        stopped_at = following.activates_at if following is not None else None
        not_yet = pepper.activates_at is not None and pepper.activates_at > now
        if not_yet or stopped_at is None or stopped_at > since:
            live.append(pepper)
    return live


def _hash(ip: str, pepper: Pepper) -> str:
    # With secret=None, salted_hmac keys with SECRET_KEY: the hashes made before peppers existed.
    return salted_hmac("parrain.ip", ip, secret=pepper.secret, algorithm="sha256").hexdigest()


def ip_hash(ip: str | None) -> str:
    """Keyed hash of an IP under the current pepper: repeats can be counted, the address cannot be recovered."""
    if not ip:
        return ""
    return _hash(ip, _current(_peppers(), timezone.now()))


def ip_hashes(ip: str | None) -> list[str]:
    """The hashes an address may have been recorded under inside the lookback window, current one first."""
    if not ip:
        return []
    return [_hash(ip, pepper) for pepper in _live(_peppers(), timezone.now())]


@dataclass(frozen=True)
class Rotation:
    created: IpPepper | None  # None: the newest pepper was younger than MIN_AGE, nothing created
    purged: int


def ip_pepper_rotate(*, actor: Actor, force: bool = False, now: datetime | None = None) -> Rotation:
    """Add a new pepper (it hashes from ACTIVATION_DELAY on) and delete the ones no lookup needs any more.

    A pepper is deleted once it stopped hashing longer ago than the lookback window plus MARGIN: from
    then on the hashes it made cannot be linked to an address by anyone, the operators included.
    """
    now = now or timezone.now()
    with transaction.atomic():
        newest = IpPepper.objects.select_for_update().order_by("-created_at", "-pk").first()
        created = None
        if force or newest is None or newest.created_at <= now - MIN_AGE:
            created = IpPepper.objects.create(secret=secrets.token_hex(32), created_at=now)
        purged = _purge(now)
        if created is not None or purged:
            audit_record(
                actor=actor,
                action="ip_pepper.rotated",
                object_type="ip_pepper",
                object_id=created.pk if created is not None else "",
                program_id=None,
                # Never the secret: the ids and times say what happened, and that is all they say.
                after={
                    "pepper": created.pk if created is not None else None,
                    "hashes_from": (created.created_at + ACTIVATION_DELAY).isoformat() if created else None,
                    "purged": purged,
                },
                reason="" if created is not None else "previous pepper too recent; old peppers purged",
            )
    ip_peppers_forget()
    return Rotation(created=created, purged=purged)


def _purge(now: datetime) -> int:
    """Delete the peppers that stopped hashing before the lookback window and MARGIN."""
    cutoff = now - lookback() - MARGIN
    created = list(IpPepper.objects.order_by("created_at", "pk").values_list("pk", "created_at"))
    # A pepper stopped hashing when the next one started (its created_at + ACTIVATION_DELAY).
    following = zip(created, created[1:], strict=False)
    stale = [pk for (pk, _), (_, next_created) in following if next_created + ACTIVATION_DELAY < cutoff]
    if not stale:
        return 0
    deleted, _ = IpPepper.objects.filter(pk__in=stale).delete()
    return deleted
