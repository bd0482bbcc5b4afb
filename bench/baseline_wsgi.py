"""A bare WSGI referral redirect, no framework: the floor Parrain's `/r/<code>` is measured against.

It does the work the redirect must do and nothing more: look the code up in ambassadors_ambassador
(with its program), INSERT the click into referrals_click with the same columns, and answer 302 to the
destination with ref and click_id, setting the same two signed cookies (visitor id, referral click).
psycopg 3 in autocommit, one connection per worker thread (one per worker with sync workers), every
statement prepared. bench/redirect.py serves it with the same gunicorn settings as Parrain:

    gunicorn bench.baseline_wsgi:application   (env: DATABASE_URL, SECRET_KEY)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

SECRET = os.environ["SECRET_KEY"].encode()
DATABASE_URL = os.environ["DATABASE_URL"]
VISITOR_MAX_AGE = 365 * 24 * 3600

LOOKUP = (
    "SELECT a.id, a.program_id, a.code, a.is_active, p.status, p.destination_url, p.attribution_window_days "
    "FROM ambassadors_ambassador a JOIN ambassadors_program p ON p.id = a.program_id WHERE a.code_key = %s"
)
INSERT = (
    "INSERT INTO referrals_click (id, program_id, ambassador_id, link_id, created_at, visitor_id, ip_hash, "
    "user_agent_family, referer_host, is_bot) VALUES (%s, %s, %s, NULL, %s, %s, %s, %s, %s, %s)"
)
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

_local = threading.local()


def _connection() -> psycopg.Connection[Any]:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        # prepare_threshold=0: every statement is prepared on its first use, then only executed.
        conn = psycopg.connect(DATABASE_URL, autocommit=True, prepare_threshold=0)
        _local.conn = conn
    return conn


def _salted_hmac(salt: str, value: str) -> bytes:
    # Django's salted_hmac with SHA-256, so the hashes and cookies match what Parrain writes.
    key = hashlib.sha256(salt.encode() + SECRET).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).digest()


def _b62(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = _B62[r] + out
    return out or "0"


def _signed(name: str, salt: str, value: str) -> str:
    # django.core.signing.TimestampSigner as referrals/client.py uses it (salt "<salt>:<cookie name>",
    # the SECRET_KEY as key): Parrain can read it.
    signed = f"{value}:{_b62(int(time.time()))}"
    mac = _salted_hmac(f"{salt}:{name}signer", signed)
    return f"{signed}:{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _cookie(name: str, value: str, max_age: int) -> tuple[str, str]:
    return ("Set-Cookie", f"{name}={value}; HttpOnly; Max-Age={max_age}; Path=/; SameSite=Lax")


@lru_cache(maxsize=4096)
def _family(user_agent: str) -> str:
    for name in ("Firefox", "Edg", "Chrome", "Safari"):
        if f"{name}/" in user_agent:
            return name
    return "Other"


def _destination(url: str, code: str, click_id: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("ref", "click_id")]
    query += [("ref", code), ("click_id", click_id)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/health/":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    method = environ.get("REQUEST_METHOD", "GET")
    if not path.startswith("/r/") or method not in ("GET", "HEAD"):
        start_response("404 Not Found", [("Content-Length", "0")])
        return []
    key = path[3:].strip().upper().translate(_LOOKALIKES)
    conn = _connection()
    row = conn.execute(LOOKUP, (key,), prepare=True).fetchone()
    if row is None or not row[3] or row[4] != "open":
        start_response("404 Not Found", [("Content-Length", "0")])
        return []
    ambassador_id, program_id, code, _active, _status, destination, window_days = row
    user_agent = environ.get("HTTP_USER_AGENT", "")[:512]
    is_bot = method == "HEAD" or not user_agent.strip()
    ip = environ.get("REMOTE_ADDR") or ""
    referer = environ.get("HTTP_REFERER", "")
    click_id = uuid.uuid4()
    visitor = uuid.uuid4().hex
    conn.execute(
        INSERT,
        (
            click_id,
            program_id,
            ambassador_id,
            datetime.now(UTC),
            visitor,
            _salted_hmac("parrain.ip", ip).hex() if ip else "",
            _family(user_agent),
            (urlsplit(referer).hostname or "")[:255] if referer else "",
            is_bot,
        ),
        prepare=True,
    )
    headers = [
        ("Location", _destination(destination, code, str(click_id))),
        ("Cache-Control", "no-store"),
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", "0"),
    ]
    if not is_bot:
        headers.append(_cookie("prn_vid", _signed("prn_vid", "parrain.visitor", visitor), VISITOR_MAX_AGE))
        name = f"prn_ref_{program_id}"
        headers.append(_cookie(name, _signed(name, "parrain.referral", str(click_id)), window_days * 86400))
    start_response("302 Found", headers)
    return []
