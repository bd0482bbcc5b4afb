"""Who may call what (design 4 and 5): every endpoint of config/urls.py against every kind of caller."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from rest_framework.test import APIClient

from tests.conftest import bearer
from tests.referrals.helpers import row_counts

pytestmark = pytest.mark.django_db

CALLERS = ("anon", "track", "read", "manage", "other_key", "outsider", "marketer", "auditor")


class Endpoint(NamedTuple):
    method: str
    path: str
    body: dict[str, Any] | None
    # One status per caller, in the order of CALLERS.
    expected: tuple[int, ...]


TIER_BODY = {"name": "Five friends", "kind": "individual", "metric": "qualified_signups", "threshold": "5",
             "reward_type": "custom", "reward_text": "A signed copy"}  # fmt: skip
P = "/api/v1/programs/{slug}"

#                                                                     anon trk  read mng  othr outs mkt  aud
ENDPOINTS = {
    "programs-list": Endpoint("get", "/api/v1/programs/", None, (401, 403, 403, 200, 200, 403, 200, 403)),
    "programs-create": Endpoint(
        "post", "/api/v1/programs/", {"slug": "new-one", "name": "New", "currency": "EUR"},
        (401, 403, 403, 403, 403, 403, 201, 403),
    ),
    "program-read": Endpoint("get", P + "/", None, (401, 403, 403, 200, 403, 403, 200, 403)),
    "program-update": Endpoint("patch", P + "/", {"name": "Renamed"}, (401, 403, 403, 200, 403, 403, 200, 403)),
    "ambassador-enrol": Endpoint(
        "post", P + "/ambassadors", {"email": "new@example.com"}, (401, 201, 403, 201, 403, 403, 201, 403)
    ),
    "ambassador-detail": Endpoint("get", P + "/ambassadors/{code}", None, (401, 403, 200, 403, 403, 404, 200, 200)),
    "signup-record": Endpoint(
        "post", P + "/signups", {"email": "new@example.org"}, (401, 201, 403, 403, 403, 403, 201, 201)
    ),
    "signups-list": Endpoint("get", P + "/signups/", None, (401, 403, 200, 403, 403, 403, 403, 200)),
    "signup-override": Endpoint(
        "post", P + "/signups/{signup}/override", {"ambassador_code": None, "reason": "audit"},
        (401, 403, 403, 403, 403, 403, 403, 200),
    ),
    "conversion-record": Endpoint(
        "post", P + "/conversions",
        {"external_id": "o-2", "email": "friend@example.org", "amount": "1.00", "currency": "EUR"},
        (401, 201, 403, 403, 403, 403, 201, 201),
    ),
    "conversion-refund": Endpoint(
        "post", P + "/conversions/o-1/refund", {}, (401, 200, 403, 403, 403, 403, 403, 200)
    ),
    "price": Endpoint("get", P + "/price", None, (200, 200, 200, 200, 200, 200, 200, 200)),
    "leaderboard-private": Endpoint("get", P + "/leaderboard", None, (401, 403, 200, 403, 403, 403, 200, 200)),
    "tiers-list": Endpoint("get", P + "/tiers/", None, (401, 403, 403, 200, 403, 403, 200, 403)),
    "tiers-create": Endpoint("post", P + "/tiers/", TIER_BODY, (401, 403, 403, 201, 403, 403, 201, 403)),
    "tier-read": Endpoint("get", P + "/tiers/{tier}/", None, (401, 403, 403, 200, 403, 403, 200, 403)),
    "tier-update": Endpoint("patch", P + "/tiers/{tier}/", {"name": "New"}, (401, 403, 403, 200, 403, 403, 200, 403)),
    "me": Endpoint("get", "/api/v1/me", None, (401, 403, 403, 403, 403, 200, 200, 200)),
    "audit-events": Endpoint("get", "/api/v1/audit-events/", None, (401, 403, 403, 403, 403, 403, 403, 200)),
}  # fmt: skip


def client_for(request: pytest.FixtureRequest, caller: str) -> APIClient:
    client = APIClient()
    if caller in ("track", "read", "manage"):
        client.credentials(**bearer(request.getfixturevalue(f"{caller}_key")))
    elif caller == "other_key":
        client.credentials(**bearer(request.getfixturevalue("other_key")))
    elif caller != "anon":
        client.force_login(request.getfixturevalue(caller))
    return client


@pytest.mark.parametrize(
    ("name", "caller", "expected"),
    [
        pytest.param(name, caller, status, id=f"{name}-{caller}")
        for name, endpoint in ENDPOINTS.items()
        for caller, status in zip(CALLERS, endpoint.expected, strict=True)
    ],
)
def test_permission_matrix(request, scene, name, caller, expected):
    endpoint = ENDPOINTS[name]
    client = client_for(request, caller)
    before = row_counts()

    response = getattr(client, endpoint.method)(endpoint.path.format(**scene), endpoint.body, format="json")

    assert response.status_code == expected, response.content
    if expected >= 400:
        assert row_counts() == before, "a refused call changed data"
    if expected == 401:
        assert response.has_header("WWW-Authenticate")


def test_a_key_of_another_program_lists_only_its_own_program(scene, api, other_key):
    response = api.get("/api/v1/programs/", **bearer(other_key))

    assert [p["slug"] for p in response.json()["results"]] == ["other-launch"]


def test_the_leaderboard_is_public_when_the_program_says_so(scene, program, api):
    program.leaderboard_public = True
    program.save()

    assert api.get(f"/api/v1/programs/{program.slug}/leaderboard").status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Bearer prn_not-a-real-key-at-all-0000000000", "Bearer", "Bearer two tokens", "Bearer \u00e9t\u00e9"],
)
def test_an_invalid_key_is_401(scene, api, header):
    response = api.get(f"/api/v1/programs/{scene['slug']}/signups/", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401


def test_a_revoked_key_is_401(scene, program, api):
    from django.utils import timezone

    from ambassadors.services import api_key_create
    from core.actors import Actor

    key, raw = api_key_create(actor=Actor.system("tests"), program=program, scopes=["read"])
    key.revoked_at = timezone.now()
    key.save()

    assert api.get(f"/api/v1/programs/{program.slug}/signups/", **bearer(raw)).status_code == 401


def test_unknown_program_is_404_for_a_permitted_caller(scene, api, auditor):
    api.force_login(auditor)

    assert api.get("/api/v1/programs/no-such-program/signups/").status_code == 404
