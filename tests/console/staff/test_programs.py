"""The staff console's programs: the list, creating a program, its settings and its status, through the
services (audited), with the API's validation; only marketing staff get in."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ambassadors.models import Program
from core import clock
from core.actors import Actor
from core.models import AuditEvent
from rewards.services import contest_create, tier_create
from tests.factories import ProgramFactory, enroll, staff_user

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
NEW_PROGRAM = {
    "slug": "spring-box",
    "name": "Spring Box",
    "description": "Seasonal vegetables",
    "destination_url": "https://shop.example.com/spring",
    "allowed_redirect_hosts": "shop.example.com\nblog.example.com",
    "currency": "eur",
    "base_price": "30.00",
    "floor_price": "20.00",
    "attribution_window_days": "30",
    "attribution_model": "last_click",
    "hold_period_days": "14",
    "velocity_limit": "5",
    "leaderboard_public": "on",
    "share_message": "Fresh vegetables, cheaper together:",
    "influencer_min_clicks": "40",
    "influencer_max_rate": "1.5",
    "ambassador_min_qualified": "2",
    "ambassador_min_rate": "12",
}


@pytest.fixture
def staff(marketer) -> Client:
    client = Client()
    client.force_login(marketer)
    return client


def settings_of(program: Program, **changes: str) -> dict[str, str]:
    """The settings form of `program` as the page fills it, with `changes`."""
    data = {
        "slug": program.slug,
        "name": program.name,
        "description": program.description,
        "destination_url": program.destination_url,
        "allowed_redirect_hosts": "\n".join(program.allowed_redirect_hosts),
        "currency": program.currency,
        "base_price": str(program.base_price or ""),
        "floor_price": str(program.floor_price or ""),
        "attribution_window_days": str(program.attribution_window_days),
        "attribution_model": program.attribution_model,
        "hold_period_days": str(program.hold_period_days),
        "velocity_limit": str(program.velocity_limit),
        "share_message": program.share_message,
        "influencer_min_clicks": str(program.influencer_min_clicks),
        "influencer_max_rate": str(program.influencer_max_rate),
        "ambassador_min_qualified": str(program.ambassador_min_qualified),
        "ambassador_min_rate": str(program.ambassador_min_rate),
    }
    return data | changes


def errors_of(response: Any) -> dict[str, list[str]]:
    return {name: list(errors) for name, errors in response.context["form"].errors.items()}


# --- Who gets in -------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in(client, program):
    response = client.get(reverse("staff-home"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("who", ["ambassador", "auditor"])
def test_ambassadors_and_auditors_without_marketing_are_refused(client, program, ambassador, auditor, who):
    client.force_login(ambassador.user if who == "ambassador" else auditor)

    assert client.get(reverse("staff-home")).status_code == 403
    assert client.get(reverse("staff-program", kwargs={"slug": program.slug})).status_code == 403
    assert client.post(reverse("staff-program-create"), NEW_PROGRAM).status_code == 403
    assert not Program.objects.filter(slug="spring-box").exists()


def test_an_unknown_program_is_a_404(staff):
    assert staff.get(reverse("staff-program", kwargs={"slug": "nope"})).status_code == 404


# --- The list ----------------------------------------------------------------------------------------


def test_the_list_shows_each_program_with_its_status_subscribers_and_ambassadors(staff, program):
    enroll(program, "ana@example.com")
    enroll(program, "bob@example.com")
    gone = enroll(program, "gone@example.com")
    type(gone).objects.filter(pk=gone.pk).update(is_active=False)
    program.counters.qualified = 7
    program.counters.save()
    ProgramFactory(slug="winter-box", name="Winter Box", status=Program.Status.PAUSED)

    response = staff.get(reverse("staff-home"))

    assert response.status_code == 200
    rows = {p.slug: p for p in response.context["page"].object_list}
    assert rows["book-launch"].ambassadors_count == 2  # active ones
    assert rows["book-launch"].counters.qualified == 7
    assert rows["winter-box"].status == "paused"
    html = response.content.decode()
    assert reverse("staff-program", kwargs={"slug": "winter-box"}) in html
    assert reverse("staff-analytics", kwargs={"slug": "book-launch"}) in html
    assert reverse("staff-program-create") in html
    assert "Paused" in html


def test_the_list_asks_the_same_number_of_queries_for_two_programs_or_twenty(staff, django_assert_num_queries):
    def programs(count: int) -> None:
        for n in range(count):
            program = ProgramFactory(slug=f"listed-{n}")
            enroll(program, f"amb{n}@example.com")

    programs(2)
    # Session, user, the user's groups (the policy), the count for the pager, the page of programs.
    with django_assert_num_queries(5):
        assert staff.get(reverse("staff-home")).status_code == 200
    programs(18)
    with django_assert_num_queries(5):
        assert staff.get(reverse("staff-home")).status_code == 200


# --- Creating a program ------------------------------------------------------------------------------


def test_a_marketer_creates_a_program_through_the_service_and_it_is_audited(staff, marketer):
    response = staff.post(reverse("staff-program-create"), NEW_PROGRAM)

    assert response.status_code == 302
    assert response["Location"] == reverse("staff-program", kwargs={"slug": "spring-box"})
    program = Program.objects.get(slug="spring-box")
    assert program.currency == "EUR"
    assert program.allowed_redirect_hosts == ["shop.example.com", "blog.example.com"]
    assert (program.base_price, program.floor_price) == (Decimal("30.00"), Decimal("20.00"))
    assert program.leaderboard_public is True
    assert program.influencer_max_rate == Decimal("1.5")
    assert program.counters.qualified == 0
    event = AuditEvent.objects.get(action="program.created", object_id=str(program.pk))
    assert event.actor_type == AuditEvent.ActorType.USER  # the marketer, not the system


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"floor_price": "40.00"}, "floor_price"),  # the service's rule: the floor above the base
        ({"floor_price": ""}, "floor_price"),  # both prices or neither
        ({"currency": "ZZZ"}, "currency"),
        ({"attribution_window_days": "0"}, "attribution_window_days"),  # the API serializer's minimum
        ({"velocity_limit": "0"}, "velocity_limit"),
        ({"influencer_max_rate": "101"}, "influencer_max_rate"),
        ({"allowed_redirect_hosts": "shop.example.com/path"}, "allowed_redirect_hosts"),
        ({"slug": "not a slug"}, "slug"),
    ],
)
def test_a_program_the_api_would_refuse_is_refused_with_the_field_to_fix(staff, changes, field):
    response = staff.post(reverse("staff-program-create"), NEW_PROGRAM | changes)

    assert response.status_code == 400
    assert field in errors_of(response), errors_of(response)
    assert not Program.objects.filter(slug="spring-box").exists()
    assert 'class="error-summary"' in response.content.decode()


def test_a_slug_taken_by_another_program_is_refused(staff, program):
    response = staff.post(reverse("staff-program-create"), NEW_PROGRAM | {"slug": program.slug})

    assert response.status_code == 400
    assert "slug" in errors_of(response)
    assert Program.objects.count() == 1


# --- Settings and status -----------------------------------------------------------------------------


def test_saving_the_settings_goes_through_program_update(staff, program):
    url = reverse("staff-program", kwargs={"slug": program.slug})

    response = staff.post(url, settings_of(program, name="The Book Launch, 2nd edition", velocity_limit="9"))

    assert response.status_code == 302
    program.refresh_from_db()
    assert (program.name, program.velocity_limit) == ("The Book Launch, 2nd edition", 9)
    event = AuditEvent.objects.get(action="program.updated", object_id=str(program.pk))
    assert event.before["velocity_limit"] == 5 and event.after["velocity_limit"] == 9


def test_renaming_the_slug_leads_to_the_new_address(staff, program):
    response = staff.post(reverse("staff-program", kwargs={"slug": program.slug}), settings_of(program, slug="books"))

    assert response["Location"] == reverse("staff-program", kwargs={"slug": "books"})


def test_invalid_settings_show_the_page_again_with_the_error_and_change_nothing(staff, program):
    response = staff.post(
        reverse("staff-program", kwargs={"slug": program.slug}), settings_of(program, floor_price="99.00")
    )

    assert response.status_code == 400
    assert "floor_price" in errors_of(response)
    program.refresh_from_db()
    assert program.floor_price == Decimal("10.00")


def test_pausing_then_resuming_a_program(staff, program):
    url = reverse("staff-program", kwargs={"slug": program.slug})

    assert staff.post(url, {"status": "paused"}).status_code == 302
    program.refresh_from_db()
    assert program.status == "paused"
    assert staff.post(url, {"status": "open"}).status_code == 302
    program.refresh_from_db()
    assert program.status == "open"
    assert AuditEvent.objects.filter(action="program.updated", object_id=str(program.pk)).count() == 2


def test_closing_asks_to_confirm_first(staff, program):
    url = reverse("staff-program", kwargs={"slug": program.slug})

    asked = staff.post(url, {"status": "closed"})

    assert asked.status_code == 200
    assert asked.context["confirm_close"] is True
    assert "Yes, close the program" in asked.content.decode()
    program.refresh_from_db()
    assert program.status == "open"

    assert staff.post(url, {"status": "closed", "confirm": "on"}).status_code == 302
    program.refresh_from_db()
    assert program.status == "closed"
    page = staff.get(url).content.decode()
    assert "Reopen" in page and "Pause" not in page


def test_a_status_change_that_makes_no_sense_changes_nothing(staff, program):
    url = reverse("staff-program", kwargs={"slug": program.slug})

    response = staff.post(url, {"status": "open"})  # it is open already
    staff.post(url, {"status": "deleted"})

    assert response.status_code == 302
    program.refresh_from_db()
    assert program.status == "open"
    assert not AuditEvent.objects.filter(action="program.updated").exists()


def test_the_program_page_asks_the_same_number_of_queries_whatever_its_tiers_and_contests(
    staff, program, django_assert_num_queries
):
    url = reverse("staff-program", kwargs={"slug": program.slug})

    def add(n: int, start: int) -> None:
        for i in range(start, start + n):
            tier_create(
                program=program, actor=SYSTEM, name=f"Tier {i}", kind="individual", metric="qualified_signups",
                threshold=Decimal(i + 1), reward_type="custom", reward_text="A mug",
            )  # fmt: skip
            contest_create(
                program=program, actor=SYSTEM, name=f"Prize {i}", prize_text="Jam",
                starts_at=clock.now() + timedelta(days=i), ends_at=clock.now() + timedelta(days=i + 30),
            )  # fmt: skip

    add(1, 0)
    # Session, user, groups (the policy), the program with its counters, its tiers, its contests.
    with django_assert_num_queries(6):
        assert staff.get(url).status_code == 200
    add(9, 1)
    with django_assert_num_queries(6):
        response = staff.get(url)
    assert len(response.context["tiers"]) == 10
    assert len(response.context["contests"]) == 10


def test_every_marketer_sees_every_program(program):
    other = ProgramFactory(slug="other-launch")
    client = Client()
    client.force_login(staff_user("second-marketer", group="marketing"))

    assert client.get(reverse("staff-program", kwargs={"slug": other.slug})).status_code == 200
    assert client.get(reverse("staff-program", kwargs={"slug": program.slug})).status_code == 200


def test_the_pages_render_in_french(staff, program):
    response = staff.get(reverse("staff-program", kwargs={"slug": program.slug}), HTTP_ACCEPT_LANGUAGE="fr")

    assert response.status_code == 200
    assert '<html lang="fr">' in response.content.decode()


def test_a_form_posted_with_its_csrf_token_is_accepted_and_without_it_refused(marketer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(marketer)
    page = client.get(reverse("staff-program-create"))
    token = page.context["csrf_token"]

    refused = client.post(reverse("staff-program-create"), NEW_PROGRAM)
    accepted = client.post(reverse("staff-program-create"), NEW_PROGRAM | {"csrfmiddlewaretoken": str(token)})

    assert refused.status_code == 403
    assert accepted.status_code == 302
    assert Program.objects.filter(slug="spring-box").count() == 1


def test_the_list_is_paged(staff):
    for n in range(52):
        ProgramFactory(slug=f"paged-{n:02d}", name=f"Paged {n:02d}")

    first = staff.get(reverse("staff-home"))
    second = staff.get(reverse("staff-home"), {"page": "2"})

    assert len(first.context["page"].object_list) == 50
    assert [p.slug for p in second.context["page"].object_list] == ["paged-50", "paged-51"]
    assert 'rel="next"' in first.content.decode()
