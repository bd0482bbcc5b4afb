"""Clicks through /r/<code>: the hashed, bot-flagged record of a visit and where it leads."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import crawleruseragents
import ua_parser
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from config import db
from core.ratelimits import window_count
from referrals.models import Click
from referrals.selectors import (
    LINK_RESOLVE_SQL,
    ReferralTarget,
    link_resolve,
    link_resolve_params,
    referral_target,
)

# The current pepper's hash, re-exported for signups and the package: cached, no query per click.
from referrals.services.peppers import ip_hash as ip_hash

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4096)
def classify_user_agent(user_agent: str) -> tuple[str, bool]:
    """(family, is_bot). Cached: the same few browsers make most of the traffic."""
    if not user_agent.strip():
        return "", True
    family = ua_parser.parse_user_agent(user_agent)
    name = family.family if family else "Other"
    return name[:64], crawleruseragents.is_crawler(user_agent)


class RecordedClick(NamedTuple):
    id: uuid.UUID
    is_bot: bool
    flood: bool = False


FLOOD_WINDOW = 60  # seconds: CLICK_FLOOD_PER_MINUTE counts clicks in fixed minutes
_cache_down_logged_at = 0.0


def click_flood(ip_hash_value: str, code_key: str, now: float | None = None) -> bool:
    """Whether this click is past CLICK_FLOOD_PER_MINUTE from one IP (its hash) on one link this minute.

    One round trip to the shared Redis cache (INCR and EXPIRE NX, core.ratelimits.window_count, the
    counter the API's rate limits use too): the only cost the redirect pays, and no database round trip.
    Counted before the link's lookup, which also writes the click (one statement), hence per link rather
    than per program. A cache that fails counts nothing and flags nothing: a visitor is never refused, and
    the failure is logged (at most once a minute per process).
    """
    limit = settings.CLICK_FLOOD_PER_MINUTE
    if not limit or not ip_hash_value:
        return False
    bucket = int((time.time() if now is None else now) // FLOOD_WINDOW)
    key = f"parrain:flood:{ip_hash_value[:32]}:{code_key}:{bucket}"
    try:
        count = window_count(key, expires_in=FLOOD_WINDOW * 2)  # each minute has its own key
    except Exception:
        global _cache_down_logged_at
        if time.monotonic() - _cache_down_logged_at > 60:
            _cache_down_logged_at = time.monotonic()
            logger.warning("click flood counter unavailable: clicks are not counted", exc_info=True)
        return False
    return count > limit


# What a click holds of its own; its program, ambassador and link come from the link's lookup.
_CLICK_OWN_FIELDS = ("id", "created_at", "visitor_id", "ip_hash", "user_agent_family", "referer_host", "is_bot")


_CLICK_LINK_FIELDS = ("program_id", "ambassador_id", "link_id")
# Written as a constant of the statement: a flood click has its own (rarely prepared) statement.
_CLICK_FLAG_FIELDS = ("flood",)


@cache
def _click_sql(flood: bool = False, async_commit: bool = False) -> tuple[str, str]:
    """(the INSERT of a click, the link's lookup and that INSERT in one statement for PostgreSQL).

    Hand-written rather than Click.objects.create(), which would build the INSERT anew on every
    redirect (see config/db.py).
    """
    columns = {f.attname: f.column for f in Click._meta.concrete_fields}
    fields = _CLICK_OWN_FIELDS + _CLICK_FLAG_FIELDS + _CLICK_LINK_FIELDS
    if set(columns) != set(fields):
        # A field added to Click must be given a value here too, or the redirect would drop it.
        raise ImproperlyConfigured(f"click_record writes {sorted(fields)}, Click has {sorted(columns)}")
    table, names = Click._meta.db_table, ", ".join(columns[f] for f in fields)
    own = ", ".join(["%s"] * len(_CLICK_OWN_FIELDS) + ["TRUE" if flood else "FALSE"])
    insert = f"INSERT INTO {table} ({names}) VALUES ({own}, %s, %s, %s)"  # noqa: S608 (names from the model)
    # PostgreSQL runs a data-modifying WITH exactly once: the click is inserted for the row the lookup
    # finds, and for none when the link leads nowhere. The click id is chosen before the statement, so
    # ON CONFLICT makes a retry after a dropped connection harmless (db.fetch_one retries once); without a
    # target, since the key of the partitioned click table is (id, created_at), both chosen before the statement.
    # CLICK_ASYNC_COMMIT: PostgreSQL decides how a transaction commits from synchronous_commit as it stands
    # at the commit, so setting it for this statement's own transaction (set_config's `true`: it goes back
    # when the transaction ends) makes this click's commit asynchronous, and no other. Run for the row
    # found: a link that leads nowhere writes nothing, and has nothing to commit.
    commit = ", set_config('synchronous_commit', 'off', true)" if async_commit else ""
    resolve_and_insert = (
        f"WITH target AS ({LINK_RESOLVE_SQL}), "  # noqa: S608 (fixed strings)
        f"recorded AS (INSERT INTO {table} ({names}) SELECT {own}, {', '.join(_CLICK_LINK_FIELDS)} FROM target "
        "ON CONFLICT DO NOTHING) "
        f"SELECT *{commit} FROM target"
    )
    return insert, resolve_and_insert


def click_record(
    *,
    code: str,
    ip: str | None,
    user_agent: str,
    referer: str,
    visitor_id: str,
    is_head: bool = False,
) -> tuple[ReferralTarget, RecordedClick] | None:
    """Records one visit through /r/<code>: where the link leads and the click, or None, and nothing
    written, when it leads nowhere (see `link_resolve`)."""
    params = link_resolve_params(code)
    if params is None:
        return None
    family, is_bot = classify_user_agent(user_agent[:512])
    # Link previews fetch with HEAD or announce themselves; neither is a person clicking.
    is_bot = is_bot or is_head
    click_id = uuid.uuid4()
    hashed_ip = ip_hash(ip)
    flood = click_flood(hashed_ip, params[0])
    own = (
        db.prep_value(Click._meta.pk, click_id),
        db.prep_value(Click._meta.get_field("created_at"), timezone.now()),
        visitor_id[:36],
        hashed_ip,
        family,
        (urlsplit(referer).hostname or "")[:255] if referer else "",
        is_bot,
    )
    # Asynchronous only when the statement is its own transaction: inside a caller's, the setting would
    # decide how the caller's writes commit too.
    async_commit = settings.CLICK_ASYNC_COMMIT and not db.in_transaction()
    insert, resolve_and_insert = _click_sql(flood, async_commit)
    if db.is_postgresql():
        # One round trip instead of two: every shared link lands here (bench/redirect.py).
        row = db.fetch_one(resolve_and_insert, (*params, *own))
        target = referral_target(row) if row else None
    else:
        target = link_resolve(code)
        if target is not None:
            db.execute(insert, (*own, target.program_id, target.ambassador_id, target.link_id))
    if target is None:
        return None
    return target, RecordedClick(click_id, is_bot, flood)


def safe_redirect_target(to: str | None, *, destination_url: str, allowed_hosts: Iterable[str]) -> str | None:
    """`to` when it is an absolute http(s) URL on the destination's host or an allowed host; else None.

    Never an open redirect: scheme-relative, backslash, userinfo and javascript: tricks are refused.
    """
    if not to or len(to) > 2000 or any(ord(c) < 33 or c == "\\" for c in to):
        return None
    try:
        parts = urlsplit(to)
        hostname = parts.hostname
        port = parts.port  # noqa: F841 (raises ValueError on a malformed port)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not hostname or parts.username or parts.password:
        return None
    allowed = {h.strip().lower() for h in allowed_hosts if h.strip()}
    destination_host = urlsplit(destination_url).hostname if destination_url else None
    if destination_host:
        allowed.add(destination_host.lower())
    if hostname.lower() not in allowed:
        return None
    # Django's own check as a second opinion on what browsers would do with the string.
    if not url_has_allowed_host_and_scheme(to, allowed_hosts={parts.netloc}, require_https=False):
        return None
    return to


def with_referral_params(url: str, *, code: str, click_id: str) -> str:
    """The destination with ref and click_id added, keeping the query it had."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("ref", "click_id")]
    query += [("ref", code), ("click_id", click_id)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
