"""POST /p/<slug>/join: a signed-in person becomes an ambassador under their verified address, once."""

from __future__ import annotations

from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.test import Client

from ambassadors.models import Ambassador, Program
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def verified_user(email: str = "carla@example.org", **kwargs: Any) -> Any:
    user = UserFactory(username=email.split("@")[0], email=email, **kwargs)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def browser_of(user: Any) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_post(client: Client, url: str, data: dict[str, str] | None = None) -> Any:
    """Post as the page would: read the CSRF cookie set by a GET first."""
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    return client.post(url, {**(data or {}), "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


def test_join_makes_the_user_an_ambassador_under_their_verified_address(program):
    carla = verified_user()

    response = csrf_post(browser_of(carla), f"/p/{program.slug}/join")

    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/#program-{program.slug}"
    ambassador = Ambassador.objects.get(program=program)
    assert (ambassador.user, ambassador.email, ambassador.claimed_at is not None) == (carla, "carla@example.org", True)


def test_joining_again_keeps_the_one_ambassadorship(program):
    client = browser_of(verified_user())
    csrf_post(client, f"/p/{program.slug}/join")

    again = csrf_post(client, f"/p/{program.slug}/join")

    assert again.status_code == 302
    assert Ambassador.objects.filter(program=program).count() == 1


def test_the_dashboard_shows_the_link_ready_to_copy_after_joining(program):
    client = browser_of(verified_user())
    response = csrf_post(client, f"/p/{program.slug}/join")

    dashboard = client.get(response["Location"])

    code = Ambassador.objects.get(program=program).code
    html = dashboard.content.decode()
    assert f'id="program-{program.slug}"' in html
    assert f'value="http://testserver/r/{code}" readonly' in html
    assert "data-copy-target" in html


def test_anonymous_join_is_sent_to_log_in_and_back(program):
    response = Client().post(f"/p/{program.slug}/join")

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/p/{program.slug}/join"
    assert not Ambassador.objects.exists()


def test_a_closed_program_refuses_with_a_message(program):
    program.status = Program.Status.CLOSED
    program.save(update_fields=["status"])
    client = Client()
    client.force_login(verified_user())

    response = client.post(f"/p/{program.slug}/join", follow=True)

    assert not Ambassador.objects.exists()
    assert "is closed" in response.content.decode()


def test_without_a_verified_address_nobody_is_enrolled(program):
    client = Client()
    client.force_login(UserFactory(username="unverified", email="unverified@example.org"))

    response = client.post(f"/p/{program.slug}/join")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/email/"
    assert not Ambassador.objects.exists()


def test_join_needs_the_csrf_token(program):
    response = browser_of(verified_user()).post(f"/p/{program.slug}/join")

    assert response.status_code == 403
    assert not Ambassador.objects.exists()
