"""The dashboard inside the business's product: POST .../embed-tokens mints a signed, single-use, short-lived
token bound to one ambassador and program; /embed/dashboard shows that dashboard once, framed by the
program's declared hosts only, and refuses with a clear page whatever else it is given."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from commerce.embed import EMBED_SALT
from commerce.models import EmbedToken
from core.actors import Actor
from core.models import AuditEvent
from referrals.services import signup_record
from tests.commerce import support_embed_waitlist as support
from tests.conftest import bearer

ana = support.ana
bob = support.bob
manage_key = support.manage_key
other_program = support.other_program
key = support.key

pytestmark = pytest.mark.django_db


def mint(program: Any, api_key: str, **body: Any) -> Any:
    return Client().post(
        f"/api/v1/programs/{program.slug}/embed-tokens",
        json.dumps(body),
        content_type="application/json",
        **bearer(api_key),
    )


def page_path(answer: Any) -> str:
    url = urlsplit(answer.json()["url"])
    return f"{url.path}?{url.query}"


def test_a_manage_key_gets_a_token_url_and_expiry_for_its_ambassador(program, ana, manage_key, settings):
    settings.EMBED_TOKEN_TTL_SECONDS = 300
    before = timezone.now()

    answer = mint(program, manage_key, email="ANA@example.com")

    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert set(body) == {"token", "url", "expires_at"}
    query = parse_qs(urlsplit(body["url"]).query)
    assert urlsplit(body["url"]).path == "/embed/dashboard"
    assert query == {"program": [program.slug], "token": [body["token"]]}
    row = EmbedToken.objects.get()
    assert (row.ambassador, row.program, row.used_at) == (ana, program, None)
    assert before + timedelta(seconds=299) < row.expires_at <= timezone.now() + timedelta(seconds=300)
    assert AuditEvent.objects.filter(action="embed_token.issued", object_id=str(ana.pk)).count() == 1


def test_the_token_shows_that_ambassadors_dashboard_once_without_a_session(program, ana, manage_key):
    answer = mint(program, manage_key, email=ana.email)
    browser = Client()

    first = browser.get(page_path(answer))

    assert first.status_code == 200
    html = first.content.decode()
    assert f"/r/{ana.code}" in html
    assert 'id="embed-link"' in html
    assert "Share by WhatsApp" in html
    assert first.cookies == {}  # no session, no CSRF cookie: the page grants nothing beyond itself
    assert "_auth_user_id" not in browser.session
    assert first["Cache-Control"].startswith("max-age=0")
    assert first["Referrer-Policy"] == "no-referrer"
    assert "X-Frame-Options" not in first
    assert "frame-ancestors https://shop.example.com https://blog.example.com" in first["Content-Security-Policy"]

    again = browser.get(page_path(answer))

    assert again.status_code == 410
    assert 'data-refusal="used"' in again.content.decode()
    assert f"/r/{ana.code}" not in again.content.decode()


def test_an_expired_token_is_refused_with_410(program, ana, manage_key, settings, time_machine):
    settings.EMBED_TOKEN_TTL_SECONDS = 300
    time_machine.move_to(timezone.now(), tick=False)
    answer = mint(program, manage_key, email=ana.email)

    time_machine.shift(timedelta(seconds=301))
    late = Client().get(page_path(answer))

    assert late.status_code == 410
    assert 'data-refusal="expired"' in late.content.decode()
    assert f"/r/{ana.code}" not in late.content.decode()
    assert EmbedToken.objects.get().used_at is None


def test_a_token_just_inside_its_lifetime_still_works(program, ana, manage_key, settings, time_machine):
    settings.EMBED_TOKEN_TTL_SECONDS = 300
    time_machine.move_to(timezone.now(), tick=False)
    answer = mint(program, manage_key, email=ana.email)

    time_machine.shift(timedelta(seconds=299))

    assert Client().get(page_path(answer)).status_code == 200


def test_a_tampered_token_is_refused_with_403(program, ana, manage_key):
    token = mint(program, manage_key, email=ana.email).json()["token"]
    payload, _, signature = token.partition(":")
    forged_payload = signing.dumps({"j": "x" * 32, "p": program.pk, "a": ana.pk}, salt=EMBED_SALT).partition(":")[0]

    for bad in (token[:-2] + "xx", forged_payload + ":" + signature, "not-a-token", ""):
        answer = Client().get("/embed/dashboard", {"program": program.slug, "token": bad})
        assert answer.status_code == 403, bad
        assert 'data-refusal="tampered"' in answer.content.decode()
    assert EmbedToken.objects.get().used_at is None


def test_a_token_signed_for_another_purpose_is_refused(program, ana):
    """Same secret, another salt (the waitlist link, an unsubscribe link...): not an embed token."""
    token = signing.dumps({"j": "a" * 32, "p": program.pk, "a": ana.pk}, salt="parrain.waitlist.status")

    answer = Client().get("/embed/dashboard", {"token": token})

    assert answer.status_code == 403


def test_another_programs_page_refuses_the_token_and_frames_for_that_program(program, other_program, ana, manage_key):
    token = mint(program, manage_key, email=ana.email).json()["token"]

    answer = Client().get("/embed/dashboard", {"program": other_program.slug, "token": token})

    assert answer.status_code == 403
    assert 'data-refusal="other_program"' in answer.content.decode()
    assert f"/r/{ana.code}" not in answer.content.decode()
    assert "frame-ancestors https://elsewhere.example.net" in answer["Content-Security-Policy"]
    assert EmbedToken.objects.get().used_at is None  # not spent: the right page may still show it


def test_a_key_of_another_program_cannot_mint_a_token_for_this_programs_ambassador(program, other_program, ana):
    other_key = key(other_program, "track", "read", "manage")

    refused = mint(program, other_key, email=ana.email)
    unknown_there = mint(other_program, other_key, email=ana.email)

    assert refused.status_code == 403
    assert unknown_there.status_code == 404
    assert "not an ambassador of this program" in unknown_there.json()["detail"]
    assert not EmbedToken.objects.exists()


@pytest.mark.parametrize("scopes", [("track",), ("read",), ("track", "read")])
def test_only_a_manage_key_mints_tokens(program, ana, scopes):
    assert mint(program, key(program, *scopes), email=ana.email).status_code == 403


def test_each_token_shows_only_its_own_ambassador(program, ana, bob, manage_key):
    for ambassador, other in ((ana, bob), (bob, ana)):
        html = Client().get(page_path(mint(program, manage_key, email=ambassador.email))).content.decode()
        assert f"/r/{ambassador.code}" in html
        assert f"/r/{other.code}" not in html


def test_a_customer_who_is_not_an_ambassador_is_404_unless_enrol_is_asked(program, manage_key):
    missing = mint(program, manage_key, email="carol@example.org")
    enrolled = mint(program, manage_key, email="carol@example.org", enrol=True)

    assert missing.status_code == 404
    assert 'pass "enrol": true' in missing.json()["detail"]
    assert enrolled.status_code == 201
    assert program.ambassadors.filter(email="carol@example.org").exists()


def test_a_customer_is_found_by_the_external_id_of_their_subscription(program, ana, manage_key):
    signup_record(program=program, email=ana.email, external_id="customer-7", actor=Actor.system("test"))

    found = mint(program, manage_key, external_id="customer-7")
    unknown = mint(program, manage_key, external_id="customer-8")

    assert found.status_code == 201
    assert EmbedToken.objects.get().ambassador == ana
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    "body",
    [{}, {"email": "ana@example.com", "external_id": "x"}, {"email": "not-an-address"}, {"email": ["a"]}],
)
def test_bad_input_is_a_400_naming_the_field(program, ana, manage_key, body):
    answer = mint(program, manage_key, **body)

    assert answer.status_code == 400
    assert "email" in answer.json()


def test_an_ambassador_who_left_gets_no_token_and_a_spent_one_shows_nothing(program, ana, manage_key):
    answer = mint(program, manage_key, email=ana.email)
    ana.is_active = False
    ana.save(update_fields=["is_active"])

    assert mint(program, manage_key, email=ana.email).status_code == 404
    gone = Client().get(page_path(answer))
    assert gone.status_code == 410
    assert 'data-refusal="gone"' in gone.content.decode()


def test_the_page_never_answers_a_head_that_would_spend_the_token(program, ana, manage_key):
    answer = mint(program, manage_key, email=ana.email)

    assert Client().head(page_path(answer)).status_code == 405
    assert EmbedToken.objects.get().used_at is None


def test_the_refusal_page_is_translated(program, ana, manage_key):
    answer = mint(program, manage_key, email=ana.email)
    Client().get(page_path(answer))

    again = Client(headers={"accept-language": "fr"}).get(page_path(answer))

    assert again.status_code == 410
    assert again.content.decode().startswith("<!doctype html>")
    assert '<html lang="fr">' in again.content.decode()


def test_the_api_is_rate_limited_per_key(program, ana, manage_key, settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "embed_tokens_key": "2/minute"},
    }

    statuses = [mint(program, manage_key, email=ana.email).status_code for _ in range(3)]

    assert statuses == [201, 201, 429]


def test_the_embedded_dashboard_says_what_a_cash_reward_pays(program, ana, manage_key):
    from rewards.services.grants import grant_create
    from tests.rewards.test_payouts import cash_tier

    grant = grant_create(tier=cash_tier(program, threshold=3, value="50.00"), occurrence=1, ambassador=ana)
    assert grant is not None

    html = Client().get(page_path(mint(program, manage_key, email=ana.email))).content.decode()

    assert "€50.00 paid to your bank account" in html
    assert "Voucher or payment" in html
    assert grant.voucher_code not in html  # a cash reward's reference is not a voucher to use
