"""A bare WSGI signup endpoint, no framework: the floor Parrain's `POST /api/v1/programs/<slug>/signups` is
measured against (bench/signups.py).

It does one thing: read the JSON body's e-mail and INSERT the subscriber into referrals_signup, under the
table's unique constraint on (program, mailbox), for the program given in BASELINE_PROGRAM_ID; then answer
201 with the same fields as Parrain. No key check, no attribution, no screening, no audit row, no counter,
no task: one prepared statement in autocommit on the connection of bench/baseline_wsgi.py (psycopg 3, one
per worker thread). A duplicate address answers 200, as Parrain does.

    gunicorn bench.baseline_signup_wsgi:application   (env: DATABASE_URL, SECRET_KEY, BASELINE_PROGRAM_ID)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench.baseline_wsgi import _connection
from bench.baseline_wsgi import application as redirect_application

PROGRAM_ID = int(os.environ["BASELINE_PROGRAM_ID"])
INSERT = (
    "INSERT INTO referrals_signup (program_id, email, email_canonical, external_id, ambassador_id, method, "
    "click_id, status, reason, reason_detail, ip_hash, visitor_id, created_at, wants_price_news) "
    "VALUES (%s, %s, %s, '', NULL, 'none', NULL, 'qualified', '', '', '', '', %s, false) RETURNING id, created_at"
)


def _answer(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if environ.get("REQUEST_METHOD") != "POST" or not path.endswith("/signups"):
        return redirect_application(environ, start_response)  # /health/ and the redirect's baseline
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        email = str(json.loads(environ["wsgi.input"].read(length))["email"]).strip().lower()
    except (ValueError, KeyError, TypeError):
        return _answer(start_response, "400 Bad Request", {"email": ["A valid e-mail address."]})
    try:
        row = _connection().execute(INSERT, (PROGRAM_ID, email, email, datetime.now(UTC)), prepare=True).fetchone()
    except psycopg.errors.UniqueViolation:
        return _answer(start_response, "200 OK", {"email": email, "status": "qualified"})
    assert row is not None
    signup_id, created_at = row
    return _answer(
        start_response,
        "201 Created",
        {
            "id": signup_id,
            "email": email,
            "external_id": "",
            "status": "qualified",
            "reason": "",
            "ambassador": None,
            "method": "none",
            "created_at": created_at.isoformat(),
        },
    )
