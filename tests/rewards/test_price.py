"""The collective price: GET /api/v1/programs/<slug>/price and the program page, counting every qualified
subscriber, attributed or not; a milestone once reached is never taken back."""

from __future__ import annotations

import pytest
from django.test import Client

from core.actors import Actor
from core.models import AuditEvent
from referrals.services import signup_status_change
from rewards.models import Milestone
from tests.factories import ProgramFactory
from tests.rewards.conftest import price_ladder, subscribe

pytestmark = pytest.mark.django_db

AUDITOR = Actor.system("fraud review")


def price(program) -> dict:
    response = Client().get(f"/api/v1/programs/{program.slug}/price")
    assert response.status_code == 200
    return response.json()


def test_the_price_contract_before_anyone_subscribes(program):
    price_ladder(program, step=5, drop="1.00")

    assert price(program) == {
        "currency": "EUR",
        "base_price": "20.00",
        "current_price": "20.00",
        "floor_price": "10.00",
        "subscribers": 0,
        "step": 5,
        "next_drop_at": 5,
        "milestones_reached": 0,
    }


def test_every_qualified_subscriber_counts_attributed_or_not(program, ambassador, committed):
    price_ladder(program, step=5, drop="1.00")

    for i in range(7):
        with committed():  # one commit per signup, as requests come
            subscribe(program, ambassador if i % 2 else None)
    with committed():
        subscribe(program, None, email="someone@mailinator.com")  # pending review: not a subscriber yet

    assert price(program) == {
        "currency": "EUR",
        "base_price": "20.00",
        "current_price": "19.00",
        "floor_price": "10.00",
        "subscribers": 7,
        "step": 5,
        "next_drop_at": 10,
        "milestones_reached": 1,
    }
    milestone = Milestone.objects.get()
    assert (milestone.occurrence, milestone.count_at, str(milestone.price_after)) == (1, 5, "19.00")
    event = AuditEvent.objects.get(action="milestone.reached")
    assert (event.object_type, event.object_id) == ("milestone", str(milestone.pk))


def test_a_percent_ladder_drops_a_share_of_the_base_price(program, committed):
    price_ladder(program, step=2, drop="10", drop_type="percent")

    with committed():
        for _ in range(4):
            subscribe(program)

    assert (price(program)["current_price"], price(program)["milestones_reached"]) == ("16.00", 2)


def test_the_price_stops_at_the_floor_and_no_next_drop_is_announced(program, committed):
    price_ladder(program, step=1, drop="4.00")

    with committed():
        for _ in range(4):
            subscribe(program)

    body = price(program)
    assert (body["current_price"], body["next_drop_at"], body["subscribers"]) == ("10.00", None, 4)


def test_rejecting_signups_after_a_milestone_never_raises_the_price_again(program, committed):
    price_ladder(program, step=5, drop="1.00")
    with committed():
        signups = [subscribe(program) for _ in range(6)]
    assert price(program)["current_price"] == "19.00"

    with committed():
        for signup in signups[:3]:
            signup_status_change(signup=signup, status="rejected", reason="fraud ring", actor=AUDITOR)

    body = price(program)
    assert (body["current_price"], body["milestones_reached"], body["subscribers"]) == ("19.00", 1, 3)
    assert body["next_drop_at"] == 10
    # Back above five subscribers: the milestone already reached is not reached a second time.
    with committed():
        for _ in range(3):
            subscribe(program)
    assert list(Milestone.objects.values_list("occurrence", flat=True)) == [1]
    assert AuditEvent.objects.filter(action="milestone.reached").count() == 1


def test_a_program_without_a_ladder_shows_its_base_price(program):
    body = price(program)

    assert (body["current_price"], body["step"], body["next_drop_at"], body["milestones_reached"]) == (
        "20.00", None, None, 0,
    )  # fmt: skip


def test_the_price_of_an_unknown_program_is_404(db):
    assert Client().get("/api/v1/programs/nope/price").status_code == 404


def test_the_program_page_shows_the_price_subscribers_and_how_many_remain_to_the_next_drop(program, committed):
    price_ladder(program, step=5, drop="1.00")
    with committed():
        for _ in range(7):
            subscribe(program)

    response = Client().get(f"/p/{program.slug}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<strong id="current-price">€19.00</strong>' in html
    assert "<s>€20.00</s>" in html
    assert '<span id="subscribers">7</span> subscribers' in html
    assert '<span id="next-drop">3 more and the price drops for everyone.</span>' in html


def test_the_program_page_says_when_the_floor_is_reached(committed):
    program = ProgramFactory(slug="floor")
    price_ladder(program, step=1, drop="10.00")
    with committed():
        subscribe(program)

    html = Client().get(f"/p/{program.slug}/").content.decode()

    assert '<strong id="current-price">€10.00</strong>' in html
    assert "The price has reached its floor of €10.00." in html
