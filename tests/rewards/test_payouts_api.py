"""Cash rewards seen from outside the staff console: the payouts read API (rewards/api_payouts.py), a cash
reward's code refused as a voucher (rewards/api_vouchers.py, rewards.services.grants), the payout policies in
core.policies, and the words ambassadors read about a cash reward (pages and e-mails)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.utils import translation
from rest_framework.test import APIClient

from ambassadors.models import Ambassador, Program
from ambassadors.services import api_key_create
from core import clock, policies
from core.actors import Actor
from core.errors import Conflict
from core.models import AuditEvent
from rewards.models import PayoutRun, RewardGrant, RewardTier
from rewards.notifications import grant_email_send
from rewards.services import tier_create
from rewards.services.grants import CASH_NOT_REDEEMABLE, grant_create, grant_redeem, grant_withdraw
from rewards.services.payouts import payout_run_create, payout_run_mark_paid
from tests.conftest import bearer
from tests.factories import ProgramFactory, UserFactory, enroll, staff_user

pytestmark = pytest.mark.django_db

STAFF = Actor.system("tests")


def cash_tier(program: Program, *, value: str = "20.00", currency: str = "EUR", threshold: int = 1) -> RewardTier:
    return tier_create(
        actor=STAFF,
        program=program,
        name=f"{value} {currency} at {threshold}",
        kind=RewardTier.Kind.INDIVIDUAL,
        threshold=Decimal(threshold),
        reward_type=RewardTier.RewardType.CASH,
        reward_value=Decimal(value),
        reward_currency=currency,
    )


def granted(tier: RewardTier, ambassador: Ambassador, *, occurrence: int = 1, days_ago: int = 40) -> RewardGrant:
    """A grant unlocked long enough ago to be past the default 30-day hold."""
    with time_machine.travel(clock.now() - timedelta(days=days_ago), tick=False):
        grant = grant_create(tier=tier, occurrence=occurrence, ambassador=ambassador)
    assert grant is not None
    return grant


def new_run(program: Program) -> PayoutRun:
    today = clock.now().date()
    return payout_run_create(program=program, period_start=today - timedelta(days=90), period_end=today, actor=STAFF)


def key_client(program: Program, *scopes: str) -> APIClient:
    client = APIClient()
    client.credentials(**bearer(api_key_create(actor=STAFF, program=program, scopes=list(scopes))[1]))
    return client


@pytest.fixture
def ana(program):
    return enroll(program, "ana@example.com", display_name="Ana", code="ANA2026")


@pytest.fixture
def bob(program):
    return enroll(program, "bob@example.com", display_name="Bob", code="BOBCODE")


@pytest.fixture
def manage(program):
    return key_client(program, "manage")


# --- GET /api/v1/programs/<slug>/payouts -------------------------------------------------------------


def test_the_list_gives_each_run_its_totals_per_currency_as_exact_strings(program, ana, bob, manage):
    euros = cash_tier(program)
    dollars = cash_tier(program, value="7.50", currency="USD", threshold=2)
    yen = cash_tier(program, value="1500", currency="JPY", threshold=3)
    granted(euros, ana)
    granted(euros, bob)
    granted(dollars, ana)
    granted(yen, bob)
    run = new_run(program)

    response = manage.get(f"/api/v1/programs/{program.slug}/payouts")

    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None and body["previous"] is None
    (listed,) = body["results"]
    assert listed["id"] == run.pk and listed["state"] == "draft" and listed["lines_count"] == 4
    assert listed["totals"] == [
        {"currency": "EUR", "amount": "40.00"},
        {"currency": "JPY", "amount": "1500"},
        {"currency": "USD", "amount": "7.50"},
    ]
    assert listed["paid_at"] is None and listed["period_end"] == clock.now().date().isoformat()


def test_a_paid_run_totals_what_it_paid_not_what_it_skipped(program, ana, bob, manage):
    tier = cash_tier(program)
    granted(tier, ana)
    bobs = granted(tier, bob)
    run = new_run(program)
    grant_withdraw(bobs, reason="The friend's signup was rejected.")  # revoked after the draft: skipped
    payout_run_mark_paid(run=run, actor=STAFF)

    (listed,) = manage.get(f"/api/v1/programs/{program.slug}/payouts").json()["results"]

    assert listed["state"] == "paid" and listed["paid_at"] is not None
    assert listed["lines_count"] == 2
    assert listed["totals"] == [{"currency": "EUR", "amount": "20.00"}]


def test_the_list_pages_newest_first_with_cursors(program, ana, manage):
    tier = tier_create(
        actor=STAFF, program=program, name="Again", kind=RewardTier.Kind.INDIVIDUAL, threshold=Decimal(1),
        repeat_every=Decimal(1), reward_type=RewardTier.RewardType.CASH, reward_value=Decimal("5.00"),
        reward_currency="EUR",
    )  # fmt: skip
    runs = []
    for occurrence in (1, 2, 3):
        granted(tier, ana, occurrence=occurrence)
        run = new_run(program)
        payout_run_mark_paid(run=run, actor=STAFF)
        runs.append(run.pk)

    first = manage.get(f"/api/v1/programs/{program.slug}/payouts?limit=2").json()
    second = manage.get(first["next"]).json()

    assert [r["id"] for r in first["results"]] == [runs[2], runs[1]]
    assert [r["id"] for r in second["results"]] == [runs[0]]
    assert second["next"] is None
    assert all(r["totals"] == [{"currency": "EUR", "amount": "5.00"}] for r in first["results"] + second["results"])


def test_the_list_answers_400_to_a_bad_limit_or_cursor(program, manage):
    assert manage.get(f"/api/v1/programs/{program.slug}/payouts?limit=zero").status_code == 400
    assert manage.get(f"/api/v1/programs/{program.slug}/payouts?cursor=forged").status_code == 400


def _list_queries(program: Program, client: APIClient) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/api/v1/programs/{program.slug}/payouts").status_code == 200
    return len(queries)


def test_the_list_costs_the_same_queries_for_one_run_or_many(program, ana, bob, manage):
    euros, dollars = cash_tier(program), cash_tier(program, value="3.00", currency="USD", threshold=2)
    granted(euros, ana)
    new_run(program)
    _list_queries(program, manage)  # the key's first use records when it was last used (one UPDATE, once)
    few = _list_queries(program, manage)

    for ambassador in [bob, *(enroll(program, f"amb{i}@example.com") for i in range(5))]:
        granted(euros, ambassador)
        granted(dollars, ambassador)
    for _ in range(6):
        new_run(program)
    many = _list_queries(program, manage)

    # The key with its program (1), the program by its slug (1), the page of runs (1), their line counts and
    # totals grouped by run, status and currency (1).
    assert few == many == 4


# --- GET /api/v1/programs/<slug>/payouts/<id> --------------------------------------------------------


def test_the_detail_lists_each_line_with_its_amount_and_outcome(program, ana, bob, manage):
    tier = cash_tier(program, value="12.30")
    anas = granted(tier, ana)
    bobs = granted(tier, bob)
    first = new_run(program)
    payout_run_mark_paid(run=first, actor=STAFF)
    grant_withdraw(bobs, reason="Refunded.")  # paid, then revoked: taken back in the next run
    second = new_run(program)
    outcome = payout_run_mark_paid(run=second, actor=STAFF)  # Bob's balance is below zero: carried
    assert [line.grant_id for line in outcome.skipped] == [bobs.pk]

    response = manage.get(f"/api/v1/programs/{program.slug}/payouts/{first.pk}")
    carried = manage.get(f"/api/v1/programs/{program.slug}/payouts/{second.pk}").json()

    assert response.status_code == 200
    body = response.json()
    assert body["totals"] == [{"currency": "EUR", "amount": "24.60"}]
    assert [
        (line["ambassador"], line["grant"], line["kind"], line["amount"], line["status"]) for line in body["lines"]
    ] == [
        ("ANA2026", anas.pk, "payment", "12.30", "paid"),
        ("BOBCODE", bobs.pk, "payment", "12.30", "paid"),
    ]
    assert body["lines"][0]["tier"] == tier.name and body["lines"][0]["currency"] == "EUR"
    (reversal,) = carried["lines"]
    assert (reversal["kind"], reversal["amount"], reversal["status"]) == ("reversal", "-12.30", "skipped")
    assert "carried to the next payout" in reversal["skip_reason"]
    assert carried["totals"] == []


def test_the_detail_never_carries_bank_details(program, ana, manage):
    from rewards.services.payouts import payout_details_set

    payout_details_set(ambassador=ana, actor=STAFF, account_holder="Ana Example", iban="DE89370400440532013000")
    granted(cash_tier(program), ana)
    run = new_run(program)

    text = manage.get(f"/api/v1/programs/{program.slug}/payouts/{run.pk}").content.decode()

    assert "DE89370400440532013000" not in text and "iban" not in text.lower() and "Ana Example" not in text


def test_another_programs_run_or_an_unknown_id_answers_404(program, ana, manage):
    other = ProgramFactory(slug="other-launch")
    theirs = new_run_for(other)

    for run_id in (theirs.pk, 999_999_999):
        response = manage.get(f"/api/v1/programs/{program.slug}/payouts/{run_id}")
        assert response.status_code == 404
        assert response.json() == {"detail": "No payout with this id in this program."}


def new_run_for(program: Program) -> PayoutRun:
    ambassador = enroll(program, "someone@example.com")
    granted(cash_tier(program), ambassador)
    return new_run(program)


# --- Who may read them -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("manage", 200),
        ("read", 403),
        ("track", 403),
        ("other_manage", 403),
        ("marketer", 200),
        ("auditor", 403),
        ("ambassador", 403),
        ("anonymous", 401),
    ],
)
def test_only_marketing_and_a_manage_key_of_the_program_read_payouts(program, ana, who, expected):
    granted(cash_tier(program), ana)
    run = new_run(program)
    if who in ("manage", "read", "track"):
        client = key_client(program, who)
    elif who == "other_manage":
        client = key_client(ProgramFactory(slug="other-launch"), "manage")
    else:
        client = APIClient()
        if who == "marketer":
            client.force_login(staff_user("marketer", group="marketing"))
        elif who == "auditor":
            client.force_login(staff_user("auditor", group="auditors"))
        elif who == "ambassador":
            client.force_login(ana.user)

    listed = client.get(f"/api/v1/programs/{program.slug}/payouts")
    detail = client.get(f"/api/v1/programs/{program.slug}/payouts/{run.pk}")

    assert (listed.status_code, detail.status_code) == (expected, expected)
    if expected != 200:
        assert set(listed.json()) == {"detail"}


def test_the_payout_policies_live_in_core_policies():
    from rewards.services import payouts

    # The old import path keeps working for whoever imported the policies from the service module.
    assert payouts.may_manage_payouts is policies.may_manage_payouts
    assert payouts.may_set_payout_details is policies.may_set_payout_details
    key = policies.Principal.for_api_key(program_id=1, scopes=["manage"])
    program = type("P", (), {"pk": 1})()
    assert policies.may_read_payouts(key, program)
    assert not policies.may_manage_payouts(key, program)  # money moves from a person's session only
    assert not policies.may_read_payouts(policies.Principal.for_api_key(program_id=2, scopes=["manage"]), program)
    assert not policies.may_read_payouts(policies.Principal.for_api_key(program_id=1, scopes=["read"]), program)
    marketer = policies.Principal.for_user(staff_user("mkt", group="marketing"))
    assert policies.may_read_payouts(marketer, program) and policies.may_manage_payouts(marketer, program)
    assert (
        policies.may_read_payouts(policies.Principal.anonymous(), program).outcome is policies.Outcome.UNAUTHENTICATED
    )


# --- A cash reward's code is not a voucher -----------------------------------------------------------


@pytest.fixture
def cash_grant(program, ana):
    return granted(cash_tier(program), ana, days_ago=1)


def test_looking_up_a_cash_code_answers_as_an_unknown_code(program, cash_grant):
    shop = key_client(program, "track", "read", "manage")

    cash = shop.get(f"/api/v1/programs/{program.slug}/vouchers/{cash_grant.voucher_code}")
    unknown = shop.get(f"/api/v1/programs/{program.slug}/vouchers/ZZZZ-ZZZZ-ZZZZ-ZZZZ")

    assert cash.status_code == unknown.status_code == 404
    assert cash.json() == unknown.json() == {"detail": "No voucher with this code in this program."}


def test_redeeming_a_cash_code_is_refused_with_409_and_changes_nothing(program, cash_grant):
    shop = key_client(program, "track")
    events = AuditEvent.objects.count()

    response = shop.post(
        f"/api/v1/programs/{program.slug}/vouchers/{cash_grant.voucher_code.lower()}/redeem",
        {"order_reference": "order-1001"},
        format="json",
    )

    assert response.status_code == 409
    assert response.json() == {"detail": CASH_NOT_REDEEMABLE}
    cash_grant.refresh_from_db()
    assert cash_grant.status == RewardGrant.Status.UNLOCKED and cash_grant.redeemed_order == ""
    assert AuditEvent.objects.count() == events


def test_staff_cannot_mark_a_cash_reward_redeemed(cash_grant):
    with pytest.raises(Conflict, match="cash reward"):
        grant_redeem(grant=cash_grant, actor=STAFF)

    cash_grant.refresh_from_db()
    assert cash_grant.status == RewardGrant.Status.UNLOCKED


def test_the_admin_action_warns_and_leaves_a_cash_reward_unredeemed(client, cash_grant):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    response = client.post(
        "/admin/rewards/rewardgrant/",
        {"action": "mark_redeemed", "_selected_action": [cash_grant.pk]},
        follow=True,
    )

    cash_grant.refresh_from_db()
    assert cash_grant.status == RewardGrant.Status.UNLOCKED
    assert "not a voucher" in response.content.decode()


def test_a_voucher_of_the_same_program_is_still_redeemed(program, ana, cash_grant):
    voucher_tier = tier_create(
        actor=STAFF, program=program, name="Voucher", kind=RewardTier.Kind.INDIVIDUAL, threshold=Decimal(2),
        reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("10"),
    )  # fmt: skip
    voucher = grant_create(tier=voucher_tier, occurrence=1, ambassador=ana)
    assert voucher is not None
    shop = key_client(program, "track")

    response = shop.post(
        f"/api/v1/programs/{program.slug}/vouchers/{voucher.voucher_code}/redeem",
        {"order_reference": "order-1002"},
        format="json",
    )

    assert response.status_code == 200 and response.json()["status"] == "redeemed"


# --- What ambassadors read about a cash reward -------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "currency", "value", "shown"),
    [("en", "EUR", "20.00", "€20.00"), ("en", "JPY", "1500", "¥1,500"), ("fr", "EUR", "20.00", "20,00\xa0€")],
)
def test_a_cash_offer_says_how_much_is_paid_to_the_bank_account(language, currency, value, shown):
    reward = {"type": "cash", "value": Decimal(value), "text": "", "currency": currency}

    with translation.override(language):
        text = render_to_string("console/_reward.html", {"reward": reward, "currency": "EUR"}).strip()

    assert shown in text
    assert "voucher" not in text.lower()
    if language == "en":
        assert text == f"{shown} paid to your bank account"


def test_a_cash_offer_without_its_own_currency_falls_back_to_the_programs():
    text = render_to_string(
        "console/_reward.html", {"reward": {"type": "cash", "value": Decimal("5.00"), "text": ""}, "currency": "USD"}
    )
    assert text.strip() == "$5.00 paid to your bank account"


def _sent_to(address: str) -> list[Any]:
    return [m for m in mail.outbox if address in m.to]


def test_the_unlock_email_of_a_cash_reward_names_the_amount_and_no_voucher_code(program, ana, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    grant = granted(cash_tier(program, value="20.00"), ana, days_ago=0)

    assert grant_email_send(grant_id=grant.pk, event="unlocked")

    (message,) = _sent_to(ana.email)
    assert "€20.00 will be paid to your bank account" in message.body
    assert grant.voucher_code not in message.body
    assert "voucher" not in message.body.lower()


def test_the_revoked_email_of_a_cash_reward_names_no_voucher(program, ana, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    grant = granted(cash_tier(program), ana, days_ago=0)
    grant_withdraw(grant, reason="Refunded.")

    assert grant_email_send(grant_id=grant.pk, event="revoked")

    (message,) = _sent_to(ana.email)
    assert "cash reward" in message.body and "next payout" in message.body
    assert grant.voucher_code not in message.body and "voucher" not in message.body.lower()


def test_a_voucher_email_still_gives_its_code(program, ana, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    tier = tier_create(
        actor=STAFF, program=program, name="Voucher", kind=RewardTier.Kind.INDIVIDUAL, threshold=Decimal(1),
        reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("10"),
    )  # fmt: skip
    grant = grant_create(tier=tier, occurrence=1, ambassador=ana)
    assert grant is not None

    assert grant_email_send(grant_id=grant.pk, event="unlocked")

    (message,) = _sent_to(ana.email)
    assert f"Your voucher code is {grant.voucher_code}." in message.body
