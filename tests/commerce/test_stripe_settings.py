"""The staff console's Stripe page: marketing staff set the webhook signing secret Stripe gave (shown once:
masked afterwards), rotate it, set the API key; every change audited without the secrets."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from commerce.models import StripeAccount
from commerce.stripe_accounts import masked, stripe_account_update
from core.actors import Actor
from core.errors import InvalidInput
from core.models import AuditEvent
from tests.commerce.stripe_support import API_KEY, SECRET, deliver, event, invoice

pytestmark = pytest.mark.django_db

ROTATED = "whsec_" + "R0tat3dS3cr3tAfterALeak00000000"


def _page(program) -> str:
    return reverse("staff-stripe", kwargs={"slug": program.slug})


def _client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def _post(client: Client, url: str, data: dict) -> object:
    client.get(url)  # the CSRF cookie, as a browser has it
    return client.post(url, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


def _audit_text() -> str:
    return " ".join(str((e.before, e.after, e.reason)) for e in AuditEvent.objects.filter(object_type="stripe_account"))


def test_the_page_tells_the_endpoint_to_register_and_the_events_to_select(program, marketer):
    response = _client(marketer).get(_page(program))

    assert response.status_code == 200
    body = response.content.decode()
    assert f"http://testserver/integrations/stripe/{program.slug}/webhook" in body
    for name in ("checkout.session.completed", "invoice.paid", "charge.refunded", "charge.dispute.created"):
        assert name in body
    assert "client_reference_id" in body and "parrain_ref" in body


def test_the_secret_is_stored_shown_masked_and_never_audited(program, marketer):
    client = _client(marketer)

    response = _post(client, _page(program), {"webhook_secret": f"  {SECRET} "})

    assert response.status_code == 302
    account = StripeAccount.objects.get(program=program)
    assert account.webhook_secret == SECRET and account.webhook_secret_set_at is not None
    page = client.get(_page(program)).content.decode()
    assert SECRET not in page and SECRET[6:] not in page
    assert masked(SECRET) in page and masked(SECRET).endswith(SECRET[-4:])
    (audited,) = AuditEvent.objects.filter(action="stripe_account.updated")
    assert audited.after["webhook_secret"] == masked(SECRET)
    assert SECRET not in _audit_text()
    assert audited.actor_label == "marketer"
    # And Stripe's events now verify with it.
    assert deliver(program.slug, event("invoice.paid", invoice())).status_code == 200


def test_rotating_the_secret_replaces_it_and_the_old_one_stops_verifying(program, marketer):
    client = _client(marketer)
    _post(client, _page(program), {"webhook_secret": SECRET})

    _post(client, _page(program), {"webhook_secret": ROTATED})

    assert StripeAccount.objects.get(program=program).webhook_secret == ROTATED
    assert AuditEvent.objects.filter(action="stripe_account.updated").count() == 2
    assert SECRET not in _audit_text() and ROTATED not in _audit_text()
    assert deliver(program.slug, event("invoice.paid", invoice())).status_code == 400
    assert deliver(program.slug, event("invoice.paid", invoice()), secret=ROTATED).status_code == 200


def test_an_empty_field_keeps_the_secret_and_changes_nothing(program, marketer):
    client = _client(marketer)
    _post(client, _page(program), {"webhook_secret": SECRET})

    response = _post(client, _page(program), {"webhook_secret": ""})

    assert response.status_code == 302
    assert StripeAccount.objects.get(program=program).webhook_secret == SECRET
    assert AuditEvent.objects.filter(action="stripe_account.updated").count() == 1


@pytest.mark.parametrize(
    "value", ["sk_live_notasecret", "whsec_short", "whsec_" + "x" * 20 + " spaces inside", "<script>"]
)
def test_what_is_not_a_signing_secret_is_refused_and_stored_nowhere(program, marketer, value):
    response = _post(_client(marketer), _page(program), {"webhook_secret": value})

    assert response.status_code == 400
    assert "whsec_" in response.content.decode()
    assert not StripeAccount.objects.filter(program=program).exclude(webhook_secret="").exists()
    assert not AuditEvent.objects.filter(action="stripe_account.updated").exists()


def test_the_api_key_is_write_only_and_promotion_codes_need_it(program, marketer):
    client = _client(marketer)

    refused = _post(client, _page(program), {"promotion_codes_enabled": "on"})
    saved = _post(client, _page(program), {"api_key": API_KEY, "promotion_codes_enabled": "on"})

    assert (refused.status_code, saved.status_code) == (400, 302)
    account = StripeAccount.objects.get(program=program)
    assert (account.api_key, account.promotion_codes_enabled) == (API_KEY, True)
    page = client.get(_page(program)).content.decode()
    assert API_KEY not in page and "rk_test_••••" + API_KEY[-4:] in page
    assert API_KEY not in _audit_text()

    _post(client, _page(program), {"remove_api_key": "on", "promotion_codes_enabled": "on"})

    account.refresh_from_db()
    assert (account.api_key, account.promotion_codes_enabled) == ("", False)


def test_the_service_refuses_a_malformed_key_with_its_field(program):
    with pytest.raises(InvalidInput) as refused:
        stripe_account_update(program=program, actor=Actor.system("test"), api_key="pk_live_publishable0123456789")

    assert refused.value.field == "api_key"


@pytest.mark.parametrize("who", ["auditor", "ambassador"])
def test_only_marketing_staff_see_or_change_it(program, ambassador, auditor, who):
    user = auditor if who == "auditor" else ambassador.user
    client = Client()
    client.force_login(user)

    seen = client.get(_page(program))
    changed = client.post(_page(program), {"webhook_secret": SECRET})
    anonymous = Client().post(_page(program), {"webhook_secret": SECRET})

    assert (seen.status_code, changed.status_code) == (403, 403)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert not StripeAccount.objects.exists()


def test_an_unknown_program_is_404(marketer):
    assert _client(marketer).get(reverse("staff-stripe", kwargs={"slug": "nope"})).status_code == 404


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_page_renders_in_each_language(program, marketer, language):
    client = _client(marketer)
    client.cookies["django_language"] = language

    assert client.get(_page(program)).status_code == 200
