"""The API answers built from console read models: `/api/v1/me` and an ambassador's detail, field by field,
and their query counts, the same for one ambassadorship as for many."""

from __future__ import annotations

from typing import Any

import pytest

from rewards.models import RewardGrant
from tests.conftest import bearer
from tests.factories import ProgramFactory, enroll

pytestmark = pytest.mark.django_db


def voucher(ambassador: Any) -> str:
    return RewardGrant.objects.get(ambassador=ambassador).voucher_code


def test_me_shows_each_ambassadorship_with_stats_rewards_progress_and_channels(screens, api):
    ana, summer = screens["ana"], screens["ana_summer"]
    api.force_login(ana.user)

    response = api.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json() == {
        "username": ana.user.get_username(),
        "programs": [
            {
                "email": "ana@example.com",
                "code": ana.code,
                "display_name": "Ana",
                "link": f"http://testserver/r/{ana.code}",
                # Five human clicks (two on the main link, three on the newsletter's), the bot not counted;
                # three signups of which the disposable address is held for review.
                "stats": {"clicks": 5, "signups": 3, "qualified": 2, "conversions": 0},
                "rewards": [
                    {"tier": "Two friends", "occurrence": 1, "status": "unlocked", "voucher_code": voucher(ana)}
                ],
                "program": {"slug": "book-launch", "name": "The Book Launch"},
                "progress": {
                    "tier": "Five friends",
                    "metric": "qualified_signups",
                    "current": 2,
                    "target": 5,
                    "remaining": 3,
                },
                "channels": [
                    {"channel": "newsletter", "code": f"{ana.code}-NEWSLETTER", "clicks": 3},
                    {"channel": "main", "code": ana.code, "clicks": 2},
                ],
            },
            {
                "email": "ana@example.com",
                "code": summer.code,
                "display_name": "Ana in summer",
                "link": f"http://testserver/r/{summer.code}",
                "stats": {"clicks": 3, "signups": 1, "qualified": 1, "conversions": 1},
                "rewards": [],
                "program": {"slug": "summer-club", "name": "Summer Club"},
                "progress": {
                    "tier": "Fifty spent",
                    "metric": "converted_amount",
                    "current": "12.50",
                    "target": 50,
                    "remaining": "37.50",
                },
                "channels": [
                    {"channel": "newsletter", "code": f"{summer.code}-NEWSLETTER", "clicks": 2},
                    {"channel": "main", "code": summer.code, "clicks": 1},
                ],
            },
        ],
    }


def test_me_of_someone_who_is_no_ambassador_lists_nothing(api, outsider):
    api.force_login(outsider)

    assert api.get("/api/v1/me").json() == {"username": "outsider", "programs": []}


def test_ambassador_detail_shows_stats_and_rewards(screens, api, read_key):
    ana = screens["ana"]

    response = api.get(f"/api/v1/programs/book-launch/ambassadors/{ana.code}", **bearer(read_key))

    assert response.status_code == 200
    assert response.json() == {
        "email": "ana@example.com",
        "code": ana.code,
        "display_name": "Ana",
        "link": f"http://testserver/r/{ana.code}",
        "stats": {"clicks": 5, "signups": 3, "qualified": 2, "conversions": 0},
        "rewards": [{"tier": "Two friends", "occurrence": 1, "status": "unlocked", "voucher_code": voucher(ana)}],
    }


# Queries of /api/v1/me for a signed-in ambassador, whatever the number of ambassadorships:
#   1 the session, 2 the user, 3 the ambassadorships with their programs and counters, 4 the days the
#   click retention purged, 5 clicks per link, 6 signups, 7 approved conversions, 8 grants with their
#   tiers, 9 the active tiers.
ME_QUERIES = 9


def test_me_costs_the_same_queries_for_one_ambassadorship_as_for_many(screens, api, django_assert_num_queries):
    ana = screens["ana"]
    api.force_login(ana.user)
    with django_assert_num_queries(ME_QUERIES):
        assert len(api.get("/api/v1/me").json()["programs"]) == 2

    for n in range(5):
        enroll(ProgramFactory(slug=f"more-{n}"), "ana@example.com")
    with django_assert_num_queries(ME_QUERIES):
        assert len(api.get("/api/v1/me").json()["programs"]) == 7
