"""Vouchers at checkout: the shop checks a voucher and redeems it for an order, at most once.

GET /api/v1/programs/<slug>/vouchers/<code> and POST .../vouchers/<code>/redeem (rewards/api_vouchers.py,
rewards.services.grants.grant_redeem_for_order). Who may call them: tests/core/permission_rows_api_vouchers.py.
"""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.urls import reverse

from ambassadors.services import api_key_create
from core.actors import Actor
from core.models import AuditEvent
from rewards.models import RewardGrant, RewardTier
from rewards.services import grant_redeem
from rewards.services.grants import grant_create, grant_withdraw
from tests.conftest import bearer
from tests.factories import ProgramFactory, enroll
from tests.referrals.helpers import at_once
from tests.rewards.conftest import subscribe, voucher_tier

SYSTEM = Actor.system("tests")


def voucher_url(program, code: str) -> str:
    return reverse("api-voucher", kwargs={"slug": program.slug, "voucher_code": code})


def redeem_url(program, code: str) -> str:
    return reverse("api-voucher-redeem", kwargs={"slug": program.slug, "voucher_code": code})


def redeemed_events(grant: RewardGrant):
    return AuditEvent.objects.filter(action="reward.redeemed", object_type="reward_grant", object_id=str(grant.pk))


@pytest.fixture
def grant(program, ambassador) -> RewardGrant:
    """Ana's 20% voucher, unlocked."""
    made = grant_create(tier=voucher_tier(program, threshold=1), occurrence=1, ambassador=ambassador)
    assert made is not None
    return made


@pytest.fixture
def shop(api, track_key):
    """The shop's checkout: an API client with the program's `track` key."""
    api.credentials(**bearer(track_key))
    return api


# --- Checking a voucher ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_valid_voucher_says_what_it_gives_and_to_whom(shop, program, grant):
    response = shop.get(voucher_url(program, grant.voucher_code))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["code"] == grant.voucher_code
    assert (body["valid"], body["status"]) == (True, "unlocked")
    assert body["reward"] == {
        "tier": "1 friends",
        "type": "percent_voucher",
        "value": "20.00",
        "text": "",
        "currency": program.currency,
    }
    assert body["recipient"] == {
        "kind": "ambassador",
        "ambassador_code": grant.ambassador.code,
        "display_name": "Ana",
        "signup_id": None,
        "external_id": None,
    }
    assert (body["redeemed_at"], body["order_reference"], body["revoked_at"], body["revoked_reason"]) == (
        None,
        None,
        None,
        None,
    )
    assert "@" not in response.content.decode(), "no e-mail address is handed to the shop"


@pytest.mark.django_db
def test_the_code_is_matched_ignoring_case_and_surrounding_spaces(shop, program, grant):
    typed = f"  {grant.voucher_code.lower()} "

    response = shop.get(f"/api/v1/programs/{program.slug}/vouchers/{quote(typed)}")

    assert response.status_code == 200, response.content
    assert response.json()["code"] == grant.voucher_code


@pytest.mark.django_db
def test_a_referees_welcome_voucher_names_the_signup_never_the_email(shop, program, ambassador):
    tier = voucher_tier(
        program,
        threshold=1,
        referee_reward_type=RewardTier.RewardType.FIXED_VOUCHER,
        referee_reward_value=Decimal("5"),
    )
    friend = subscribe(program, ambassador, email="zoe@example.org")
    welcome = grant_create(tier=tier, occurrence=1, referee_signup=friend)
    assert welcome is not None

    response = shop.get(voucher_url(program, welcome.voucher_code))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["reward"]["type"] == "fixed_voucher"
    assert body["reward"]["value"] == "5.00"
    assert body["recipient"] == {
        "kind": "referee",
        "ambassador_code": None,
        "display_name": None,
        "signup_id": friend.pk,
        "external_id": friend.external_id,
    }
    assert "zoe" not in response.content.decode()


@pytest.mark.django_db
def test_an_unknown_code_and_another_programs_voucher_are_not_found(shop, program, grant):
    other = ProgramFactory(slug="other-launch", name="Another Launch")
    theirs = grant_create(
        tier=voucher_tier(other, threshold=1), occurrence=1, ambassador=enroll(other, "bea@example.com")
    )
    assert theirs is not None

    for code in ("AAAA-BBBB-CCCC-DDDD", theirs.voucher_code):
        response = shop.get(voucher_url(program, code))
        assert response.status_code == 404, code
        assert response.json() == {"detail": "No voucher with this code in this program."}
        redeem = shop.post(redeem_url(program, code), {"order_reference": "o-1"}, format="json")
        assert redeem.status_code == 404, code
    theirs.refresh_from_db()
    assert theirs.status == "unlocked"


# --- Redeeming ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_redeeming_records_the_order_and_the_same_order_again_gets_the_same_redemption(shop, program, grant):
    first = shop.post(redeem_url(program, grant.voucher_code), {"order_reference": "order-1001"}, format="json")

    assert first.status_code == 200, first.content
    body = first.json()
    assert (body["valid"], body["status"], body["order_reference"]) == (False, "redeemed", "order-1001")
    assert body["redeemed_at"] is not None
    grant.refresh_from_db()
    assert (grant.status, grant.redeemed_order) == ("redeemed", "order-1001")

    again = shop.post(redeem_url(program, grant.voucher_code), {"order_reference": "order-1001"}, format="json")

    assert again.status_code == 200
    assert again.json() == body
    assert shop.get(voucher_url(program, grant.voucher_code)).json() == body
    (event,) = redeemed_events(grant)
    assert event.reason == "Order order-1001"
    assert event.after["redeemed_order"] == "order-1001"
    assert event.before["status"] == "unlocked"


@pytest.mark.django_db
def test_another_order_is_told_when_and_by_which_order_the_voucher_was_redeemed(shop, program, grant):
    shop.post(redeem_url(program, grant.voucher_code), {"order_reference": "order-1001"}, format="json")
    grant.refresh_from_db()

    response = shop.post(redeem_url(program, grant.voucher_code), {"order_reference": "order-2002"}, format="json")

    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "already redeemed" in detail
    assert grant.redeemed_at.isoformat(timespec="seconds") in detail
    assert "another order (order-1001)" in detail
    grant.refresh_from_db()
    assert grant.redeemed_order == "order-1001"
    assert redeemed_events(grant).count() == 1


@pytest.mark.django_db
def test_a_voucher_staff_marked_redeemed_is_refused_to_any_order(shop, program, grant):
    grant_redeem(grant=grant, actor=SYSTEM)

    response = shop.post(redeem_url(program, grant.voucher_code), {"order_reference": "order-1"}, format="json")

    assert response.status_code == 409
    assert "by staff, without an order" in response.json()["detail"]
    check = shop.get(voucher_url(program, grant.voucher_code)).json()
    assert (check["status"], check["order_reference"]) == ("redeemed", "")
    assert check["redeemed_at"] is not None


@pytest.mark.django_db
def test_a_revoked_voucher_is_refused_with_its_reason(shop, program, grant):
    assert grant_withdraw(grant, reason="The referee's signup no longer qualifies.") == "revoked"

    check = shop.get(voucher_url(program, grant.voucher_code))
    response = shop.post(redeem_url(program, grant.voucher_code), {"order_reference": "order-1"}, format="json")

    body = check.json()
    assert (body["valid"], body["status"]) == (False, "revoked")
    assert body["revoked_reason"] == "The referee's signup no longer qualifies."
    assert body["revoked_at"] is not None
    assert response.status_code == 409
    assert "revoked" in response.json()["detail"]
    assert "The referee's signup no longer qualifies." in response.json()["detail"]
    grant.refresh_from_db()
    assert (grant.status, grant.redeemed_order, grant.redeemed_at) == ("revoked", "", None)
    assert not redeemed_events(grant).exists()


@pytest.mark.django_db
def test_a_read_key_may_check_but_not_redeem(api, read_key, program, grant):
    api.credentials(**bearer(read_key))

    assert api.get(voucher_url(program, grant.voucher_code)).status_code == 200
    assert api.post(redeem_url(program, grant.voucher_code), {"order_reference": "o"}, format="json").status_code == 403
    grant.refresh_from_db()
    assert grant.status == "unlocked"


# --- Hostile input: 400 or 404, never a 500, nothing changed ------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"order_reference": "order\n1001"},
        {"order_reference": "order\r\nX-Injected: 1"},
        {"order_reference": "order\x00"},
        {"order_reference": "order\u202e1001"},
        {"order_reference": "x" * 129},
        {"order_reference": "x" * 100_000},
        {"order_reference": ""},
        {"order_reference": "   "},
        {"order_reference": None},
        {"order_reference": ["order-1"]},
        {"order_reference": {"id": 1}},
        {},
        ["order-1"],
        "order-1",
    ],
    ids=lambda body: repr(body)[:40],
)
def test_a_hostile_order_reference_is_refused(shop, program, grant, body):
    response = shop.post(redeem_url(program, grant.voucher_code), body, format="json")

    assert response.status_code == 400, response.content
    grant.refresh_from_db()
    assert grant.status == "unlocked"
    assert not redeemed_events(grant).exists()


@pytest.mark.django_db
def test_an_order_reference_of_128_characters_is_taken(shop, program, grant):
    reference = "é" * 128

    response = shop.post(redeem_url(program, grant.voucher_code), {"order_reference": reference}, format="json")

    assert response.status_code == 200
    assert response.json()["order_reference"] == reference


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_refused(shop, program, grant):
    response = shop.generic(
        "POST", redeem_url(program, grant.voucher_code), "{not json", content_type="application/json"
    )

    assert response.status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw_code",
    [
        "a%2Fb",
        "..%2F..%2Fadmin",
        "%00",
        "ABCD%00EFGH",
        "%C3%84BCD-EFGH",
        "%E2%80%AEABCD",
        "%F0%9F%98%80",
        "%FF%FE",
        "x" * 5000,
        "%20",
        "ABCD-EFGH-JKMN-PQRS%0A",
        "'%20OR%201=1--",
    ],
)
def test_a_hostile_code_is_not_found_nor_a_server_error(shop, program, grant, raw_code):
    base = f"/api/v1/programs/{program.slug}/vouchers/"

    check = shop.get(base + raw_code)
    redeem = shop.post(base + raw_code + "/redeem", {"order_reference": "o-1"}, format="json")

    # 404, or 400 where the site refuses the URL itself (a control character) before any view.
    assert check.status_code in (400, 404), check.content
    assert redeem.status_code in (400, 404), redeem.content
    assert "detail" in check.json()
    grant.refresh_from_db()
    assert grant.status == "unlocked"


@pytest.mark.django_db
def test_a_code_with_slashes_is_not_found(shop, program, grant):
    base = f"/api/v1/programs/{program.slug}/vouchers/"

    assert shop.get(base + grant.voucher_code + "/x").status_code == 404
    assert shop.post(base + "a/b/redeem", {"order_reference": "o-1"}, format="json").status_code == 404


# --- Concurrent checkouts, against PostgreSQL with real threads ---------------------------------------


@pytest.fixture
def racing(transactional_db, program, ambassador):
    """Ana's voucher, committed, and the shop's key: what 20 concurrent checkouts need."""
    made = grant_create(tier=voucher_tier(program, threshold=1), occurrence=1, ambassador=ambassador)
    assert made is not None
    key = api_key_create(actor=SYSTEM, program=program, scopes=["track"])[1]
    return made, key


def _redeem(program, code: str, key: str, order: str):
    def call(client, i):
        response = client.post(
            redeem_url(program, code),
            data=json.dumps({"order_reference": order.format(i=i)}),
            content_type="application/json",
            **bearer(key),
        )
        return response.status_code, response.json()

    return call


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_orders_racing_for_one_voucher_one_wins_nineteen_are_told(program, racing):
    grant, key = racing

    results = at_once(_redeem(program, grant.voucher_code, key, "order-{i}"), threads=20)

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 19, statuses
    ((_, winner),) = [(s, body) for s, body in results if s == 200]
    grant.refresh_from_db()
    assert (grant.status, grant.redeemed_order) == ("redeemed", winner["order_reference"])
    for status, body in results:
        if status == 409:
            assert f"by another order ({grant.redeemed_order})" in body["detail"]
    assert redeemed_events(grant).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_order_twenty_times_at_once_is_one_redemption(program, racing):
    grant, key = racing

    results = at_once(_redeem(program, grant.voucher_code, key, "order-1001"), threads=20)

    assert [status for status, _ in results] == [200] * 20
    bodies = {json.dumps(body, sort_keys=True) for _, body in results}
    assert len(bodies) == 1, bodies
    grant.refresh_from_db()
    assert (grant.status, grant.redeemed_order) == ("redeemed", "order-1001")
    (event,) = redeemed_events(grant)
    assert event.reason == "Order order-1001"


# --- Every answer matches the published schema -------------------------------------------------------


@pytest.mark.django_db
def test_each_answer_matches_the_documented_schema(shop, program, grant, client):
    import requests
    import schemathesis
    from schemathesis.core.transport import Response

    schema = schemathesis.openapi.from_dict(client.get("/api/schema/", HTTP_ACCEPT="application/json").json())
    check = schema["/api/v1/programs/{slug}/vouchers/{voucher_code}"]["GET"]
    redeem = schema["/api/v1/programs/{slug}/vouchers/{voucher_code}/redeem"]["POST"]
    code = grant.voucher_code

    answers = [
        (check, shop.get(voucher_url(program, code)), 200),
        (check, shop.get(voucher_url(program, "AAAA-BBBB")), 404),
        (redeem, shop.post(redeem_url(program, code), {"order_reference": "x" * 129}, format="json"), 400),
        (redeem, shop.post(redeem_url(program, code), ["not an object"], format="json"), 400),
        (redeem, shop.post(redeem_url(program, code), {"order_reference": "order-1"}, format="json"), 200),
        (redeem, shop.post(redeem_url(program, code), {"order_reference": "order-2"}, format="json"), 409),
        (check, shop.get(voucher_url(program, code)), 200),
    ]

    for operation, response, status in answers:
        assert response.status_code == status, response.content
        operation.validate_response(
            Response(
                status_code=response.status_code,
                headers={name: [value] for name, value in response.headers.items()},
                content=response.content,
                request=requests.Request("GET", "http://testserver/").prepare(),
                elapsed=0.0,
                verify=True,
            )
        )
