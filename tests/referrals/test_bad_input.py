"""Bad input on every writing endpoint: a 4xx with a message, never a 500, and nothing changed."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest
from rest_framework.test import APIClient

from ambassadors.models import Program
from rewards.models import RewardTier
from tests.conftest import bearer
from tests.referrals.helpers import row_counts

pytestmark = pytest.mark.django_db


class Writer(NamedTuple):
    method: str
    path: str
    caller: str
    valid_body: dict[str, Any]
    wrong_types: list[dict[str, Any]]
    # The refund takes an optional body: an empty one is a valid call.
    empty_is_valid: bool = False


P = "/api/v1/programs/{slug}"
WRITERS = {
    "programs-create": Writer(
        "post", "/api/v1/programs/", "marketer", {"slug": "new-one", "name": "New", "currency": "EUR"},
        [{"slug": ["x"], "name": "N"}, {"slug": "ok-slug", "name": {"a": 1}}, {"slug": "s", "name": "n", "currency": 5},
         {"slug": "s", "name": "n", "base_price": "abc", "floor_price": "1"}, {"slug": "bad slug!", "name": "n"},
         {"slug": "s", "name": "n", "allowed_redirect_hosts": "evil.example"}],
    ),
    "program-update": Writer(
        "patch", P + "/", "manage_key", {"name": "Renamed"},
        [{"attribution_window_days": "many"}, {"allowed_redirect_hosts": "evil.example"},
         {"allowed_redirect_hosts": ["a/b"]}, {"velocity_limit": -1}, {"status": "exploded"},
         {"floor_price": "30.00"}, {"currency": "ZZZ"}, {"hold_period_days": 1.5}],
    ),
    "ambassador-enrol": Writer(
        "post", P + "/ambassadors", "track_key", {"email": "new@example.com"},
        [{"email": 42}, {"email": "a@b.co", "code": ["X"]}, {"email": "a@b.co", "display_name": {"x": 1}},
         {"email": {"a": "b"}}, {"email": "no-at-sign"}],
    ),
    "signup-record": Writer(
        "post", P + "/signups", "track_key", {"email": "new@example.org"},
        [{"email": ["a@b.co"]}, {"email": "a@b.co", "referee_ip": "999.1.1.1"}, {"email": "a@b.co", "click_id": {}},
         {"email": "a@b.co", "visitor_id": "x" * 37}, {"email": "a@b.co", "referral_code": True},
         {"email": "x" * 250 + "@b.co"}],
    ),
    "signup-override": Writer(
        "post", P + "/signups/{signup}/override", "auditor", {"ambassador_code": None, "reason": "audit"},
        [{"ambassador_code": None, "reason": ["x"]}, {"ambassador_code": None, "reason": None},
         {"ambassador_code": {"c": 1}, "reason": "x"}, {"reason": "x"}],
    ),
    "conversion-record": Writer(
        "post", P + "/conversions", "track_key",
        {"external_id": "o-2", "email": "friend@example.org", "amount": "1.00", "currency": "EUR"},
        [{"external_id": ["o"], "email": "friend@example.org", "amount": "1.00", "currency": "EUR"},
         {"external_id": "o-3", "email": "friend@example.org", "amount": "1.00", "currency": "EUR",
          "occurred_at": "yesterday"},
         {"external_id": "o-3", "email": 7, "amount": "1.00", "currency": "EUR"},
         {"external_id": "o-3", "email": "friend@example.org", "amount": "1.00", "currency": ["EUR"]},
         {"external_id": "  ", "email": "friend@example.org", "amount": "1.00", "currency": "EUR"}],
    ),
    "conversion-refund": Writer(
        "post", P + "/conversions/o-1/refund", "track_key", {"reason": "refunded"},
        [{"reason": ["x"]}, {"reason": {"a": 1}}, {"reason": "x" * 2001}],
        empty_is_valid=True,
    ),
    "tiers-create": Writer(
        "post", P + "/tiers/", "manage_key",
        {"name": "Five", "kind": "individual", "threshold": "5", "reward_type": "custom", "reward_text": "Mug"},
        [{"name": "x", "kind": "both", "threshold": "5"}, {"name": "x", "threshold": "abc"},
         {"name": "x", "threshold": "-1", "reward_type": "custom", "reward_text": "Mug"},
         {"name": "x", "threshold": "2.5", "reward_type": "custom", "reward_text": "Mug"},
         {"name": "x", "threshold": "5", "reward_type": "percent_voucher", "reward_value": "150"},
         {"name": "x", "kind": "collective", "step": 0, "drop_type": "amount", "drop_value": "1"}],
    ),
    "tier-update": Writer(
        "patch", P + "/tiers/{tier}/", "manage_key", {"name": "Renamed"},
        [{"threshold": "abc"}, {"kind": "nope"}, {"is_active": "maybe"}, {"threshold": "0"},
         {"reward_value": "-5"}],
    ),
}  # fmt: skip

GARBAGE = {
    "empty-object": b"{}",
    "empty-body": b"",
    "json-null": b"null",
    "json-list": b'[{"email": "a@example.org"}]',
    "json-empty-list": b"[]",
    "json-string": b'"friend@example.org"',
    "json-number": b"42",
    "json-true": b"true",
    "malformed": b'{"email": ',
    "trailing-garbage": b'{"email": "a@example.org"} x',
    "single-quotes": b"{'email': 'a@example.org'}",
    "non-utf8": b"\xff\xfe\xfd",
    "non-utf8-inside-string": b'{"email": "\xe9t\xe9@example.org", "reason": "\xe9"}',
    "nan-literal": b'{"amount": NaN, "email": "a@example.org"}',
    "deep-nesting": b'{"email": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "3mb": b'{"email": "' + b"a" * (3 * 1024 * 1024) + b'@example.org"}',
    "10mb": b'{"email": "' + b"a" * (10 * 1024 * 1024) + b'@example.org"}',
}
# An empty body is a valid refund; every other garbage is garbage for every endpoint.
EMPTY_BODIES = {"empty-object", "empty-body", "json-null"}


def snapshot() -> dict[str, Any]:
    """Row counts, plus the rows a PATCH or a refund would change in place."""
    from referrals.models import Conversion

    return {
        **row_counts(),
        "programs": list(Program.objects.order_by("pk").values()),
        "tiers": list(RewardTier.objects.order_by("pk").values()),
        "conversions": list(Conversion.objects.order_by("pk").values("status", "amount")),
    }


def client_for(request: pytest.FixtureRequest, caller: str) -> APIClient:
    client = APIClient()
    if caller.endswith("_key"):
        client.credentials(**bearer(request.getfixturevalue(caller)))
    else:
        client.force_login(request.getfixturevalue(caller))
    return client


def send(client: APIClient, writer: Writer, path: str, raw: bytes, content_type: str = "application/json") -> Any:
    return client.generic(writer.method.upper(), path, raw, content_type=content_type)


@pytest.mark.parametrize(
    ("name", "garbage"),
    [
        pytest.param(name, garbage, id=f"{name}-{garbage}")
        for name, writer in WRITERS.items()
        for garbage in GARBAGE
        if not (writer.empty_is_valid and garbage in EMPTY_BODIES)
        # PATCH with no fields is a valid no-op update.
        and not (writer.method == "patch" and garbage in ("empty-object", "empty-body"))
    ],
)
def test_garbage_bodies_are_refused_and_change_nothing(request, scene, name, garbage):
    writer = WRITERS[name]
    client = client_for(request, writer.caller)
    before = snapshot()

    response = send(client, writer, writer.path.format(**scene), GARBAGE[garbage])

    expected = {413, 400} if garbage in ("3mb", "10mb") else {400}
    assert response.status_code in expected, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert response.json(), "a refusal says why"
    assert snapshot() == before


@pytest.mark.parametrize(
    ("name", "body"),
    [
        pytest.param(name, body, id=f"{name}-{i}")
        for name, writer in WRITERS.items()
        for i, body in enumerate(writer.wrong_types)
    ],
)
def test_wrong_types_are_a_400_with_field_messages_and_change_nothing(request, scene, name, body):
    writer = WRITERS[name]
    client = client_for(request, writer.caller)
    before = snapshot()

    response = send(client, writer, writer.path.format(**scene), json.dumps(body).encode())

    assert response.status_code == 400, response.content
    messages = response.json()
    assert isinstance(messages, dict) and messages
    assert set(messages) != {"detail"}, f"expected a field message, got {messages}"
    assert snapshot() == before


@pytest.mark.parametrize("name", [n for n, w in WRITERS.items() if "{slug}" in w.path])
def test_unknown_program_slug_is_404_and_changes_nothing(request, scene, name):
    writer = WRITERS[name]
    client = client_for(request, writer.caller)
    before = snapshot()

    response = send(client, writer, writer.path.format(**{**scene, "slug": "no-such-program"}),
                    json.dumps(writer.valid_body).encode())  # fmt: skip

    assert response.status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
@pytest.mark.parametrize("name", ["signup-record", "conversion-record", "ambassador-enrol"])
def test_bodies_that_are_not_json_are_415_and_change_nothing(request, scene, name, content_type):
    writer = WRITERS[name]
    client = client_for(request, writer.caller)
    before = snapshot()

    response = send(client, writer, writer.path.format(**scene), b"email=a%40example.org", content_type)

    assert response.status_code == 415
    assert snapshot() == before


@pytest.mark.parametrize("name", WRITERS)
def test_the_valid_body_of_each_case_is_accepted(request, scene, name):
    """The refusals above are refusals of the input, not of the caller or the path."""
    writer = WRITERS[name]
    client = client_for(request, writer.caller)

    response = send(client, writer, writer.path.format(**scene), json.dumps(writer.valid_body).encode())

    assert response.status_code in (200, 201), response.content
