"""The one-click unsubscribe of bulk e-mails (RFC 8058) works from the link the e-mail carries; the
subscriber's opt-in to price news comes from the hosted form or the API."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client

from core.models import AuditEvent, EmailOptOut
from core.notifications import PRICE_DROPPED, unsubscribe_token
from referrals.models import Signup
from rewards.models import Milestone
from rewards.tasks import price_drop_send
from tests.conftest import bearer
from tests.rewards.conftest import SHOP, price_ladder

pytestmark = pytest.mark.django_db


def _price_emails_to(address: str) -> list[Any]:
    return [m for m in mail.outbox if m.to == [address] and "price dropped" in m.subject]


@pytest.fixture
def dropped(program, ambassador, django_capture_on_commit_callbacks) -> Milestone:
    """The price dropped once; Ana (the ambassador) got the e-mail."""
    from referrals.services import signup_record

    price_ladder(program, step=1)
    with django_capture_on_commit_callbacks(execute=True):
        signup_record(program=program, email="keen@example.org", actor=SHOP, wants_price_news=True)
    return Milestone.objects.get(program=program)


def _link_path(message: Any) -> str:
    return urlsplit(message.extra_headers["List-Unsubscribe"].strip("<>")).path


def _next_drop(milestone: Milestone) -> Milestone:
    return Milestone.objects.create(
        tier=milestone.tier,
        program=milestone.program,
        occurrence=milestone.occurrence + 1,
        count_at=milestone.count_at + 1,
        price_after="18.00",
        reached_at=milestone.reached_at,
    )


def test_a_one_click_post_to_the_list_unsubscribe_url_unsubscribes_and_no_more_mail_comes(dropped, ambassador):
    (message,) = _price_emails_to("ana@example.com")
    client = Client(enforce_csrf_checks=True)  # a mail client has no cookie and no CSRF token

    response = client.post(
        _link_path(message), "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200
    assert EmailOptOut.objects.filter(program_id=dropped.program_id, kind=PRICE_DROPPED).count() == 1
    assert AuditEvent.objects.filter(action="email.unsubscribed").count() == 1
    later = _next_drop(dropped)
    price_drop_send(later.pk, [ambassador.pk], list(Signup.objects.values_list("pk", flat=True)))
    assert len(_price_emails_to("ana@example.com")) == 1  # nothing new for Ana
    assert len(_price_emails_to("keen@example.org")) == 2  # the other recipient still gets it


def test_opening_the_link_asks_first_and_does_not_unsubscribe(dropped):
    (message,) = _price_emails_to("keen@example.org")
    client = Client()

    response = client.get(_link_path(message))

    assert response.status_code == 200
    assert b'method="post"' in response.content
    assert b'id="unsubscribe-confirm"' in response.content
    assert not EmailOptOut.objects.exists()


def test_the_confirmation_button_unsubscribes_and_a_second_click_changes_nothing(dropped):
    (message,) = _price_emails_to("keen@example.org")
    client = Client(enforce_csrf_checks=True)

    first = client.post(_link_path(message), {"List-Unsubscribe": "One-Click"})
    second = client.post(_link_path(message), {"List-Unsubscribe": "One-Click"})

    assert first.status_code == second.status_code == 200
    assert b"You are unsubscribed" in first.content
    assert EmailOptOut.objects.count() == 1
    assert AuditEvent.objects.filter(action="email.unsubscribed").count() == 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_or_foreign_token_is_a_404_and_unsubscribes_nobody(program, method):
    token = unsubscribe_token(recipient="ana@example.com", program_id=program.pk, kind=PRICE_DROPPED)
    tampered = token[:-3] + ("xyz" if not token.endswith("xyz") else "abc")
    unknown_program = unsubscribe_token(recipient="ana@example.com", program_id=999_999, kind=PRICE_DROPPED)
    client = Client()

    for bad in (tampered, unknown_program, "not-a-token"):
        assert getattr(client, method)(f"/u/{bad}").status_code == 404
    assert not EmailOptOut.objects.exists()


def test_the_hosted_form_records_the_opt_in_to_price_news(program):
    client = Client()

    client.post(f"/p/{program.slug}/subscribe", {"email": "keen@example.org", "wants_price_news": "on"})
    client.post(f"/p/{program.slug}/subscribe", {"email": "quiet@example.org"})

    assert dict(Signup.objects.values_list("email", "wants_price_news")) == {
        "keen@example.org": True,
        "quiet@example.org": False,
    }


def test_the_api_records_the_opt_in_to_price_news(program, api, track_key):
    api.credentials(**bearer(track_key))

    response = api.post(
        f"/api/v1/programs/{program.slug}/signups",
        {"email": "keen@example.org", "wants_price_news": True},
        format="json",
    )

    assert response.status_code == 201
    assert Signup.objects.get().wants_price_news is True
