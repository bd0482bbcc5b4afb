"""A cookieless program: /r/<code> sets no cookie at all, and a signup is credited only from what the
landing URL carries (ref, click_id) or the code typed in the form."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from ambassadors.models import Program
from core.actors import Actor
from referrals import client as referral_client
from referrals.models import Click, Signup
from referrals.services import signup_record
from tests.conftest import bearer
from tests.factories import ProgramFactory, enroll
from tests.referrals.helpers import CHROME, browser, location_query, visit

pytestmark = pytest.mark.django_db


@pytest.fixture
def cookieless(program) -> Program:
    program.attribution_cookie = False
    program.save()
    return program


def subscribe(client: Client, program: Program, email: str, query: dict[str, str] | None = None) -> Signup:
    """The referee opens the hosted form (the URL it landed on passed along), then posts it as rendered."""
    path = f"/p/{program.slug}/subscribe"
    if query:
        path += "?" + urlencode(query)
    page = client.get(path)
    assert page.status_code == 200
    form = page.context["form"]
    data = {name: form[name].value() or "" for name in ("referral_code", "click_id")}
    response = client.post(path, {"email": email, **data})
    assert response.status_code == 200, response.content
    return Signup.objects.get(program=program, email=email)


def test_the_redirect_of_a_cookieless_program_sets_no_cookie_and_the_landing_url_carries_ref_and_click_id(
    cookieless, ambassador
):
    referee = browser()

    response, click_id = visit(referee, ambassador.code)

    assert not response.cookies
    assert not referee.cookies
    query = location_query(response)
    assert query["ref"] == [ambassador.code]
    assert Click.objects.get(pk=click_id).ambassador == ambassador


@pytest.mark.django_db(transaction=True)  # the handler ends the request as gunicorn would: connections close
def test_the_production_fast_path_sets_no_cookie_either(cookieless, ambassador):
    from config.wsgi import ParrainWSGIHandler

    environ = RequestFactory().get(f"/r/{ambassador.code}", HTTP_USER_AGENT=CHROME).environ
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = status, [(name.lower(), value) for name, value in headers]

    b"".join(ParrainWSGIHandler()(environ, start_response))

    assert answer["status"].startswith("302")
    assert "set-cookie" not in {name for name, _ in answer["headers"]}
    location = dict(answer["headers"])["location"]
    assert f"ref={ambassador.code}" in location and "click_id=" in location


def test_a_program_with_the_cookie_still_sets_it(program, ambassador):
    response, _ = visit(browser(), ambassador.code)

    assert referral_client.referral_cookie_name(program.pk) in response.cookies
    assert referral_client.VISITOR_COOKIE in response.cookies


def test_a_signup_through_the_form_with_the_ref_from_the_url_is_attributed(cookieless, ambassador):
    referee = browser()
    response, click_id = visit(referee, ambassador.code)

    signup = subscribe(referee, cookieless, "friend@example.org", query=location_query_flat(response))

    assert signup.ambassador == ambassador
    assert not referee.cookies.get(referral_client.VISITOR_COOKIE), "the form sets no visitor cookie either"


def test_the_click_id_alone_in_the_hidden_field_attributes_the_signup_to_that_click(cookieless, ambassador):
    referee = browser()
    _, click_id = visit(referee, ambassador.code)

    signup = subscribe(referee, cookieless, "friend@example.org", query={"click_id": click_id})

    assert (signup.ambassador, signup.method, str(signup.click_id)) == (ambassador, "api", click_id)


def test_a_signup_with_nothing_in_the_url_is_not_attributed_even_with_old_cookies(cookieless, ambassador):
    other = ProgramFactory(slug="other-launch", name="Another Launch")
    bob = enroll(other, "bob@example.com")
    referee = browser()
    # An old referral cookie of this program, set while it still used the cookie, and one of another.
    cookieless.attribution_cookie = True
    cookieless.save()
    visit(referee, ambassador.code)
    cookieless.attribution_cookie = False
    cookieless.save()
    visit(referee, bob.code)
    assert referral_client.referral_cookie_name(cookieless.pk) in referee.cookies
    assert referral_client.referral_cookie_name(other.pk) in referee.cookies

    signup = subscribe(referee, cookieless, "friend@example.org")

    assert (signup.ambassador, signup.method) == (None, "none")


def test_the_integration_passes_the_click_id_of_the_landing_url(cookieless, ambassador, track_key):
    _, click_id = visit(browser(), ambassador.code)
    api = Client()

    response = api.post(
        f"/api/v1/programs/{cookieless.slug}/signups",
        {"email": "friend@example.org", "click_id": click_id},
        content_type="application/json",
        **bearer(track_key),
    )

    assert response.status_code == 201
    assert response.json()["ambassador"] == ambassador.code


def test_the_setting_is_in_the_program_api_and_first_click_needs_the_cookie(program, manage_key):
    api = Client()
    path = f"/api/v1/programs/{program.slug}/"

    assert api.get(path, **bearer(manage_key)).json()["attribution_cookie"] is True
    off = api.patch(path, {"attribution_cookie": False}, content_type="application/json", **bearer(manage_key))
    assert off.status_code == 200 and off.json()["attribution_cookie"] is False
    program.refresh_from_db()
    assert program.attribution_cookie is False

    refused = api.patch(
        path, {"attribution_model": "first_click"}, content_type="application/json", **bearer(manage_key)
    )
    assert refused.status_code == 400
    assert "attribution_cookie" in refused.json()
    bad = api.patch(path, {"attribution_cookie": "sometimes"}, content_type="application/json", **bearer(manage_key))
    assert bad.status_code == 400 and "attribution_cookie" in bad.json()


def test_the_staff_form_turns_the_cookie_off(program, marketer):
    staff = Client()
    staff.force_login(marketer)
    url = reverse("staff-program", kwargs={"slug": program.slug})
    page = staff.get(url)
    assert page.status_code == 200
    form = page.context["form"]
    data = {name: "" if value is None else value for name, value in form.initial.items()}
    data["leaderboard_public"] = "on" if program.leaderboard_public else ""
    data["attribution_cookie"] = "False"

    response = staff.post(url, data)

    assert response.status_code == 302, response.content[:500]
    program.refresh_from_db()
    assert program.attribution_cookie is False


def location_query_flat(response: Any) -> dict[str, str]:
    return {name: values[0] for name, values in location_query(response).items()}


def test_signup_record_ignores_a_cookie_click_for_a_cookieless_program_only_in_the_views(cookieless, ambassador):
    # The service still honours a click id it is given: the views decide not to read the cookie.
    _, click_id = visit(browser(), ambassador.code)
    signup, _ = signup_record(program=cookieless, email="api@example.org", click_id=click_id, actor=Actor.system())
    assert signup.ambassador == ambassador
