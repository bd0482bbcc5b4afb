"""The fraud review queue in a real browser: an auditor selects two held signups, approves them with a
reason, reads the confirmation, and finds both decisions in the audit trail. Both pages pass axe-core."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from core.actors import Actor
from core.models import AuditEvent
from referrals.models import Signup
from referrals.services import signup_record
from tests.factories import ProgramFactory, enroll, staff_user
from tests.pages.conftest import assert_accessible, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SYSTEM = Actor.system("test")


@pytest.fixture
def held(db) -> list[Signup]:
    """Three signups from throw-away addresses, held for review, brought by Ana."""
    program = ProgramFactory(slug="book-launch", name="The Book Launch")
    ana = enroll(program, "ana@example.com", display_name="Ana")
    return [
        signup_record(program=program, email=f"reader{n}@mailinator.com", referral_code=ana.code, actor=SYSTEM)[0]
        for n in range(3)
    ]


def sign_in(browser: Any, live_server: Any, user: Any) -> None:
    """Plant a session of `user` in the browser as a cookie (no log-in form to drive)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    browser.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])


def test_an_auditor_approves_two_held_signups_and_finds_them_in_the_trail(live_server, browser, page, held):
    # Given an auditor and three signups held for review
    assert {s.status for s in held} == {Signup.Status.PENDING_REVIEW}
    sign_in(browser, live_server, staff_user("auditor", group="auditors"))

    # When they open the queue
    page.goto(f"{live_server.url}/audit/review/")
    page.get_by_role("heading", level=1, name="Signups held for review").wait_for()
    assert page.get_by_role("row").count() == 4  # the header and three held signups
    assert page.get_by_text("A disposable (throw-away) e-mail address").count() == 3
    assert_accessible(page)
    screenshot(page, "audit-review")

    # (A box selects the whole page, and clears it again)
    select_all = page.get_by_label("Select all the signups of this page")
    select_all.check()
    assert page.locator('input[name="signups"]:checked').count() == 3
    select_all.uncheck()
    assert page.locator('input[name="signups"]:checked').count() == 0

    # And approve two of them with a reason
    page.get_by_label("Select reader0@mailinator.com").check()
    page.get_by_label("Select reader2@mailinator.com").check()
    page.get_by_label("Approve: the signup counts for its ambassador").check()
    page.get_by_label("Reason").fill("Known customers: paid by card")
    page.get_by_role("button", name="Apply to the selected signups").click()

    # Then they read the confirmation, and only the third is still waiting
    page.get_by_role("status").get_by_text("2 signups approved.").wait_for()
    assert page.get_by_role("row").count() == 2
    assert page.get_by_role("link", name="reader1@mailinator.com").count() == 1
    statuses = dict(Signup.objects.values_list("email", "status"))
    assert statuses == {
        "reader0@mailinator.com": "qualified",
        "reader1@mailinator.com": "pending_review",
        "reader2@mailinator.com": "qualified",
    }

    # And the trail shows both decisions, who made them and why
    page.get_by_role("link", name="Audit trail").click()
    page.get_by_role("heading", level=1, name="Audit trail").wait_for()
    decisions = page.get_by_role("row").filter(has_text="Known customers: paid by card")
    assert decisions.count() == 2
    assert decisions.first.get_by_text("auditor").count() == 1
    links = sorted(decisions.get_by_role("link").evaluate_all("links => links.map(a => a.getAttribute('href'))"))
    assert links == sorted(f"/audit/signups/{s.pk}/" for s in (held[0], held[2]))
    assert AuditEvent.objects.filter(action="signup.reviewed").count() == 2
    assert_accessible(page)
    screenshot(page, "audit-trail")
