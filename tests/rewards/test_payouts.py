"""Paying cash rewards (rewards.services.payouts): what is owed, runs marked paid exactly once (two drafts
holding the same grant, two staff members pressing "Mark paid" at the same moment), refunds after payment
taken back in the next run, and files whose totals are the ledger's."""

from __future__ import annotations

import csv
import io
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from ambassadors.models import Ambassador, Program
from ambassadors.services import api_key_create
from console.exports import csv_lines
from core import clock
from core.actors import Actor
from core.errors import Conflict, InvalidInput
from core.models import AuditEvent
from referrals.services import conversion_record, conversion_refund, signup_record
from rewards.models import PayoutLine, PayoutRun, RewardGrant, RewardTier
from rewards.services import tier_create, tier_update
from rewards.services.grants import grant_create, grant_withdraw
from rewards.services.payouts import (
    CSV_HEADER,
    balances_owed,
    iban_normalize,
    owed_lines,
    paid_ledger_minor,
    payout_configure,
    payout_details_set,
    payout_run_create,
    payout_run_mark_paid,
    run_csv_rows,
    run_sepa_xml,
)
from tests.conftest import bearer
from tests.factories import ProgramFactory, enroll

pytestmark = pytest.mark.django_db

STAFF = Actor.system("tests")
IBAN_ANA = "DE89370400440532013000"
IBAN_BOB = "FR1420041010050500013M02606"
IBAN_SHOP = "GB82WEST12345698765432"
SEPA_NS = {"s": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}


def cash_tier(
    program: Program,
    threshold: int = 1,
    value: str = "25.00",
    currency: str = "EUR",
    metric: str = RewardTier.Metric.QUALIFIED_SIGNUPS,
    **fields: Any,
) -> RewardTier:
    return tier_create(
        actor=STAFF,
        program=program,
        name=f"{value} {currency} at {threshold}",
        kind=RewardTier.Kind.INDIVIDUAL,
        metric=metric,
        threshold=Decimal(threshold),
        reward_type=RewardTier.RewardType.CASH,
        reward_value=Decimal(value),
        reward_currency=currency,
        **fields,
    )


def granted(tier: RewardTier, ambassador: Ambassador, *, days_ago: int = 40, occurrence: int = 1) -> RewardGrant:
    """A grant unlocked `days_ago` days ago, through the engine's own grant_create."""
    with time_machine.travel(clock.now() - timedelta(days=days_ago), tick=False):
        grant = grant_create(tier=tier, occurrence=occurrence, ambassador=ambassador)
    assert grant is not None
    return grant


def today() -> date:
    return clock.now().date()


def new_run(program: Program, *, days: int = 60) -> PayoutRun:
    return payout_run_create(
        program=program, period_start=today() - timedelta(days=days), period_end=today(), actor=STAFF
    )


def paid_payments(grant: RewardGrant) -> int:
    return PayoutLine.objects.filter(grant=grant, kind="payment", status="paid").count()


@pytest.fixture
def ana(program):
    return enroll(program, "ana@example.com", display_name="Ana")


@pytest.fixture
def bob(program):
    return enroll(program, "bob@example.com", display_name="Bob")


# --- Tiers that pay cash -----------------------------------------------------------------------------


def test_a_cash_tier_keeps_its_amount_and_currency(program):
    tier = cash_tier(program, value="12.50", currency="EUR")

    assert (tier.reward_type, tier.reward_value, tier.reward_currency) == ("cash", Decimal("12.50"), "EUR")


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"reward_currency": ""}, "reward_currency", "Say in which currency"),
        ({"reward_currency": "EURO"}, "reward_currency", "Unknown currency"),
        ({"reward_currency": "ZZZ"}, "reward_currency", "Unknown currency"),
        ({"reward_currency": "JPY", "reward_value": Decimal("10.50")}, "reward_value", "JPY has 0 decimal places"),
        ({"reward_value": Decimal("0")}, "reward_value", "above 0"),
        ({"reward_type": "percent_voucher", "reward_value": Decimal("10")}, "reward_currency", "Only a tier that pays"),
    ],
    ids=["no-currency", "not-a-code", "unknown-code", "too-many-decimals", "zero", "currency-on-voucher"],
)
def test_a_cash_tier_that_cannot_be_paid_is_refused(program, fields, field, message):
    values: dict[str, Any] = {
        "name": "Cash", "kind": "individual", "metric": "qualified_signups", "threshold": Decimal(1),
        "reward_type": "cash", "reward_value": Decimal("25.00"), "reward_currency": "EUR",
    }  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        tier_create(actor=STAFF, program=program, **(values | fields))
    assert refused.value.field == field
    assert message in refused.value.message
    assert not RewardTier.objects.exists()


def test_a_friend_welcome_reward_is_never_cash(program):
    with pytest.raises(InvalidInput) as refused:
        cash_tier(program, referee_reward_type="cash", referee_reward_value=Decimal("5"))
    assert refused.value.field == "referee_reward_type"


def test_the_api_answers_400_for_cash_without_currency(program):
    key = api_key_create(actor=STAFF, program=program, scopes=["manage"])[1]
    api = APIClient()
    api.credentials(**bearer(key))
    body = {"name": "Cash", "kind": "individual", "metric": "qualified_signups", "threshold": "3",
            "reward_type": "cash", "reward_value": "20.00"}  # fmt: skip

    missing = api.post(f"/api/v1/programs/{program.slug}/tiers/", body, format="json")
    too_long = api.post(f"/api/v1/programs/{program.slug}/tiers/", body | {"reward_currency": "EUROS"}, format="json")
    created = api.post(f"/api/v1/programs/{program.slug}/tiers/", body | {"reward_currency": "eur"}, format="json")

    assert missing.status_code == 400
    assert "currency" in missing.json()["reward_currency"][0]
    assert too_long.status_code == 400
    assert "reward_currency" in too_long.json()
    assert created.status_code == 201, created.json()
    assert created.json()["reward_currency"] == "EUR"


def test_a_granted_cash_tier_keeps_its_promise(program, ana):
    tier = cash_tier(program)
    granted(tier, ana)

    with pytest.raises(InvalidInput) as refused:
        tier_update(tier=tier, actor=STAFF, reward_value=Decimal("5.00"))

    assert refused.value.field == "reward_value"
    tier.refresh_from_db()
    assert tier.reward_value == Decimal("25.00")
    tier_update(tier=tier, actor=STAFF, name="Renamed")  # anything else still changes


# --- Bank details ------------------------------------------------------------------------------------


@pytest.mark.parametrize("iban", [IBAN_ANA, "de89 3704 0044 0532 0130 00", IBAN_BOB, IBAN_SHOP])
def test_a_valid_iban_is_stored_compact(iban):
    assert iban_normalize(iban) == iban.replace(" ", "").upper()


@pytest.mark.parametrize("iban", ["DE89370400440532013001", "DE00370400440532013000", "12345", "DE89 3704!", ""])
def test_a_wrong_iban_is_refused_on_its_field(iban):
    with pytest.raises(InvalidInput) as refused:
        iban_normalize(iban)
    assert refused.value.field == "iban"


def test_bank_details_are_audited_masked(ana):
    details = payout_details_set(ambassador=ana, actor=STAFF, account_holder="Ana Example", iban=IBAN_ANA)

    assert details.iban == IBAN_ANA
    assert details.iban_masked == "DE** **** 3000"
    event = AuditEvent.objects.get(action="payout.details_set")
    assert IBAN_ANA not in str(event.after)


# --- What is owed ------------------------------------------------------------------------------------


def test_owed_is_what_stands_past_the_hold_and_unpaid(program, ana, bob):
    tier = cash_tier(program)
    old = granted(tier, ana, days_ago=40)
    recent = granted(tier, bob, days_ago=5)  # inside the 30-day hold
    revoked = granted(cash_tier(program, threshold=2, value="7.00"), ana, days_ago=40)
    grant_withdraw(revoked, reason="The friend's purchase was refunded.")
    already = granted(cash_tier(program, threshold=3, value="3.00"), bob, days_ago=50)
    payout_run_mark_paid(run=new_run(program), actor=STAFF)  # pays `old` and `already`
    late = granted(cash_tier(program, threshold=4, value="4.00"), ana, days_ago=35)

    owed = owed_lines(program, until=clock.now())

    assert [(line.grant_id, line.kind, line.amount_minor) for line in owed] == [(late.pk, "payment", 400)]
    assert paid_payments(old) == paid_payments(already) == 1
    assert paid_payments(recent) == paid_payments(revoked) == 0


def test_a_shorter_hold_makes_a_recent_grant_payable(program, ana):
    grant = granted(cash_tier(program), ana, days_ago=5)
    assert owed_lines(program, until=clock.now()) == []

    payout_configure(program=program, actor=STAFF, hold_days=3)

    assert [line.grant_id for line in owed_lines(program, until=clock.now())] == [grant.pk]


def test_a_period_holds_grants_unlocked_up_to_its_end(program, ana):
    tier = cash_tier(program)
    early = granted(tier, ana, days_ago=90)
    inside = granted(tier, ana, days_ago=40, occurrence=2)
    run = payout_run_create(
        program=program,
        period_start=today() - timedelta(days=100),
        period_end=today() - timedelta(days=60),
        actor=STAFF,
    )

    assert list(run.lines.values_list("grant_id", flat=True)) == [early.pk]
    assert inside.pk in [line.grant_id for line in owed_lines(program, until=clock.now())]


def test_a_period_that_ends_before_it_starts_is_refused(program, ana):
    granted(cash_tier(program), ana)

    with pytest.raises(InvalidInput) as refused:
        payout_run_create(program=program, period_start=today(), period_end=today() - timedelta(days=1), actor=STAFF)

    assert refused.value.field == "period_end"
    assert not PayoutRun.objects.exists()


def test_nothing_owed_makes_no_run(program, ana):
    with pytest.raises(InvalidInput):
        new_run(program)
    assert not PayoutRun.objects.exists()


# --- Exactly once ------------------------------------------------------------------------------------


def test_two_overlapping_drafts_pay_each_grant_once(program, ana, bob):
    tier = cash_tier(program)
    first_grants = [granted(tier, ana), granted(tier, bob)]
    first = new_run(program)
    later = granted(tier, ana, occurrence=2, days_ago=35)
    second = new_run(program)  # holds the first run's grants too: neither is paid yet

    paid_first = payout_run_mark_paid(run=first, actor=STAFF)
    paid_second = payout_run_mark_paid(run=second, actor=STAFF)

    assert {line.grant_id for line in paid_first.paid} == {g.pk for g in first_grants}
    assert [line.grant_id for line in paid_second.paid] == [later.pk]
    assert {line.grant_id for line in paid_second.skipped} == {g.pk for g in first_grants}
    assert all(f"payout #{first.pk}" in line.skip_reason for line in paid_second.skipped)
    for grant in [*first_grants, later]:
        assert paid_payments(grant) == 1
    assert paid_ledger_minor(program) == {"EUR": 3 * 2500}


def test_a_run_is_marked_paid_once(program, ana):
    granted(cash_tier(program), ana)
    run = new_run(program)
    payout_run_mark_paid(run=run, actor=STAFF)

    with pytest.raises(Conflict):
        payout_run_mark_paid(run=run, actor=STAFF)

    assert AuditEvent.objects.filter(action="payout.run_paid").count() == 1


def test_the_database_refuses_a_second_paid_line_for_a_grant(program, ana):
    """The constraint behind the lock: even a path that forgot it cannot pay a grant twice."""
    grant = granted(cash_tier(program), ana)
    first, second = new_run(program), new_run(program)
    PayoutLine.objects.filter(run=first).update(status="paid")

    with pytest.raises(IntegrityError), transaction.atomic():
        PayoutLine.objects.filter(run=second, grant=grant).update(status="paid")


def test_marking_paid_writes_one_audit_event_with_every_line(program, ana, bob):
    tier = cash_tier(program)
    granted(tier, ana)
    granted(tier, bob, days_ago=45)
    run = new_run(program)

    payout_run_mark_paid(run=run, actor=STAFF, reason="June transfer")

    event = AuditEvent.objects.get(action="payout.run_paid", object_id=str(run.pk))
    assert event.reason == "June transfer"
    assert event.after["totals_minor"] == {"EUR": 5000}
    assert len(event.after["paid"]) == 2
    assert event.after["skipped"] == []
    run.refresh_from_db()
    assert (run.state, run.paid_by) == ("paid", "tests")


def test_a_grant_revoked_after_the_draft_is_skipped(program, ana):
    grant = granted(cash_tier(program), ana)
    run = new_run(program)
    grant_withdraw(grant, reason="Refunded.")

    outcome = payout_run_mark_paid(run=run, actor=STAFF)

    assert outcome.paid == []
    assert "revoked" in outcome.skipped[0].skip_reason
    assert paid_payments(grant) == 0


# --- Refunds after payment ---------------------------------------------------------------------------


def test_a_refund_after_payment_is_taken_back_and_carried(program, ana):
    tier = cash_tier(program)
    paid = granted(tier, ana)
    payout_run_mark_paid(run=new_run(program), actor=STAFF)
    grant_withdraw(paid, reason="The friend's purchase was refunded.")

    carried = new_run(program)
    outcome = payout_run_mark_paid(run=carried, actor=STAFF)

    assert [(line.kind, line.amount_minor) for line in carried.lines.all()] == [("reversal", -2500)]
    assert outcome.paid == []
    assert "not above zero" in outcome.skipped[0].skip_reason
    # Still owed back: the next run holds the reversal again, with what was earned since.
    assert [b.amount_minor for b in balances_owed(program)] == [-2500]
    earned = granted(cash_tier(program, threshold=2, value="40.00"), ana, days_ago=31)
    final = new_run(program)
    settled = payout_run_mark_paid(run=final, actor=STAFF)

    assert sorted((line.grant_id, line.amount_minor) for line in settled.paid) == [(paid.pk, -2500), (earned.pk, 4000)]
    assert paid_ledger_minor(program) == {"EUR": 2500 - 2500 + 4000}
    assert balances_owed(program) == []
    assert PayoutLine.objects.filter(grant=paid, kind="reversal", status="paid").count() == 1


def test_a_refunded_conversion_after_payment_makes_a_negative_line(program, ana, django_capture_on_commit_callbacks):
    """The whole way through the engine: a cash tier at one approved purchase, paid, then the purchase refunded."""
    program.hold_period_days = 0  # the purchase is approved at once, and its reward unlocked
    program.save(update_fields=["hold_period_days"])
    cash_tier(program, metric=RewardTier.Metric.APPROVED_CONVERSIONS, value="15.00")
    payout_configure(program=program, actor=STAFF, hold_days=0)
    with django_capture_on_commit_callbacks(execute=True):
        signup_record(program=program, email="friend@example.org", referral_code=ana.code, actor=STAFF)
        conversion_record(program=program, actor=STAFF, external_id="o-1", amount="30.00", currency="EUR",
                          email="friend@example.org")  # fmt: skip
    grant = RewardGrant.objects.get(ambassador=ana)
    payout_run_mark_paid(run=new_run(program), actor=STAFF)

    with django_capture_on_commit_callbacks(execute=True):
        conversion_refund(program=program, external_id="o-1", actor=STAFF)

    grant.refresh_from_db()
    assert grant.status == RewardGrant.Status.REVOKED
    assert [(line.kind, line.amount_minor) for line in new_run(program).lines.all()] == [("reversal", -1500)]


# --- Files -------------------------------------------------------------------------------------------


def parse_csv(run: PayoutRun) -> list[dict[str, str]]:
    text = "".join(csv_lines(CSV_HEADER, run_csv_rows(run)))
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_totals_equal_the_ledger(program, ana, bob):
    eur, usd = cash_tier(program), cash_tier(program, threshold=2, value="9.99", currency="USD")
    paid_then_refunded = granted(eur, ana, days_ago=90)
    payout_run_mark_paid(run=new_run(program, days=120), actor=STAFF)
    grant_withdraw(paid_then_refunded, reason="Refunded.")
    granted(eur, ana, occurrence=2)
    granted(eur, ana, occurrence=3)
    granted(eur, bob)
    granted(usd, bob)
    run = new_run(program)
    payout_run_mark_paid(run=run, actor=STAFF)

    rows = parse_csv(run)

    totals: dict[str, Decimal] = {}
    for row in rows:
        if row["status"] == "paid":
            totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + Decimal(row["amount"])
    # The ledger from the grants themselves: each grant paid at its tier's amount, less what was taken back.
    expected: dict[str, Decimal] = {}
    for line in PayoutLine.objects.filter(run=run, status="paid").select_related("grant__tier"):
        value = line.grant.tier.reward_value if line.kind == "payment" else -line.grant.tier.reward_value
        expected[line.currency] = expected.get(line.currency, Decimal(0)) + value
    assert totals == expected == {"EUR": Decimal("50.00"), "USD": Decimal("9.99")}
    ledger = paid_ledger_minor(program)
    assert sum(Decimal(r["amount"]) for r in rows + parse_csv(PayoutRun.objects.earliest("created_at"))
               if r["status"] == "paid" and r["currency"] == "EUR") * 100 == ledger["EUR"]  # fmt: skip
    assert {row["kind"] for row in rows} == {"payment", "reversal"}
    assert any(row["amount"] == "-25.00" for row in rows)


def test_the_csv_masks_the_iban_and_defuses_formulas(program, ana):
    ana.display_name = "=HYPERLINK()"
    ana.save(update_fields=["display_name"])
    payout_details_set(ambassador=ana, actor=STAFF, account_holder="Ana", iban=IBAN_ANA)
    granted(cash_tier(program), ana)

    (row,) = parse_csv(new_run(program))

    assert row["iban"] == "DE** **** 3000"
    assert row["ambassador_name"] == "'=HYPERLINK()"
    assert (row["amount"], row["currency"], row["status"]) == ("25.00", "EUR", "pending")


def test_the_sepa_file_pays_positive_euro_totals_to_known_ibans(program, ana, bob):
    carol = enroll(program, "carol@example.com", display_name="Carol")  # no IBAN: in the CSV, not in SEPA
    dave = enroll(program, "dave@example.com", display_name="Dave")  # USD only: SEPA pays euros
    payout_configure(program=program, actor=STAFF, hold_days=30, debtor_name="Book Launch SARL",
                     debtor_iban=IBAN_SHOP, debtor_bic="WESTGB2L")  # fmt: skip
    payout_details_set(ambassador=ana, actor=STAFF, account_holder="Ana Example", iban=IBAN_ANA, bic="COBADEFFXXX")
    payout_details_set(ambassador=bob, actor=STAFF, account_holder="Bob Example", iban=IBAN_BOB)
    payout_details_set(ambassador=dave, actor=STAFF, account_holder="Dave", iban=IBAN_SHOP)
    eur, more = cash_tier(program), cash_tier(program, threshold=2, value="10.50")
    granted(eur, ana)
    granted(more, ana)
    granted(eur, bob)
    granted(eur, carol)
    granted(cash_tier(program, threshold=3, value="8.00", currency="USD"), dave)
    run = new_run(program)
    with pytest.raises(InvalidInput):
        run_sepa_xml(run)  # a draft has no SEPA file: it may still skip lines another run pays
    payout_run_mark_paid(run=run, actor=STAFF)

    root = ET.fromstring(run_sepa_xml(run))  # noqa: S314 (our own file, not untrusted input)

    header = root.find("s:CstmrCdtTrfInitn/s:GrpHdr", SEPA_NS)
    assert header is not None
    assert header.findtext("s:NbOfTxs", namespaces=SEPA_NS) == "2"
    assert Decimal(header.findtext("s:CtrlSum", namespaces=SEPA_NS) or "") == Decimal("60.50")
    debtor = root.find("s:CstmrCdtTrfInitn/s:PmtInf/s:DbtrAcct/s:Id/s:IBAN", SEPA_NS)
    assert debtor is not None and debtor.text == IBAN_SHOP
    transfers = {
        tx.findtext("s:CdtrAcct/s:Id/s:IBAN", namespaces=SEPA_NS): Decimal(
            tx.findtext("s:Amt/s:InstdAmt", namespaces=SEPA_NS) or ""
        )
        for tx in root.iterfind(".//s:CdtTrfTxInf", SEPA_NS)
    }
    assert transfers == {IBAN_ANA: Decimal("35.50"), IBAN_BOB: Decimal("25.00")}
    rows = parse_csv(run)
    assert {row["ambassador_code"] for row in rows} >= {carol.code, dave.code}


def test_the_sepa_file_leaves_out_a_non_positive_balance(program, ana, bob):
    payout_configure(program=program, actor=STAFF, hold_days=30, debtor_name="Shop", debtor_iban=IBAN_SHOP)
    payout_details_set(ambassador=ana, actor=STAFF, account_holder="Ana", iban=IBAN_ANA)
    payout_details_set(ambassador=bob, actor=STAFF, account_holder="Bob", iban=IBAN_BOB)
    big = granted(cash_tier(program, value="50.00"), ana)
    payout_run_mark_paid(run=new_run(program), actor=STAFF)
    grant_withdraw(big, reason="Refunded.")
    granted(cash_tier(program, threshold=2, value="20.00"), ana, days_ago=35)  # 20 - 50 < 0: carried
    granted(cash_tier(program, threshold=3, value="5.00"), bob, days_ago=35)
    run = new_run(program)
    payout_run_mark_paid(run=run, actor=STAFF)

    root = ET.fromstring(run_sepa_xml(run))  # noqa: S314 (our own file, not untrusted input)

    ibans = [
        tx.findtext("s:CdtrAcct/s:Id/s:IBAN", namespaces=SEPA_NS) for tx in root.iterfind(".//s:CdtTrfTxInf", SEPA_NS)
    ]
    assert ibans == [IBAN_BOB]
    assert [b.amount_minor for b in balances_owed(program)] == [-3000]


def test_the_sepa_file_needs_the_business_account(program, ana):
    payout_details_set(ambassador=ana, actor=STAFF, account_holder="Ana", iban=IBAN_ANA)
    granted(cash_tier(program), ana)
    run = new_run(program)
    payout_run_mark_paid(run=run, actor=STAFF)

    with pytest.raises(InvalidInput) as refused:
        run_sepa_xml(run)

    assert refused.value.field == "debtor_iban"


# --- Concurrency (PostgreSQL, real threads) ----------------------------------------------------------


def _both_at_once(calls: list[Any]) -> Iterator[Any]:
    start = threading.Barrier(len(calls), timeout=10)
    results: list[Any] = [None] * len(calls)

    def worker(i: int) -> None:
        try:
            start.wait()
            results[i] = calls[i]()
        except BaseException as exc:  # the main thread asserts on it
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a payout hung"
    return iter(results)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(3))
def test_two_runs_marked_paid_at_once_pay_each_grant_once(round_):
    program = ProgramFactory(slug=f"race-{round_}")
    tier = cash_tier(program)
    grants = [granted(tier, enroll(program, f"amb{i}@example.com")) for i in range(8)]
    first, second = new_run(program), new_run(program)  # two drafts, the same eight grants

    results = list(
        _both_at_once(
            [
                lambda: payout_run_mark_paid(run=first, actor=Actor.system("alice")),
                lambda: payout_run_mark_paid(run=second, actor=Actor.system("bruno")),
            ]
        )
    )

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(len(r.paid) for r in results) == [0, 8]
    for grant in grants:
        assert paid_payments(grant) == 1
    assert paid_ledger_minor(program) == {"EUR": 8 * 2500}
    loser = next(r for r in results if not r.paid)
    winner = next(r for r in results if r.paid)
    assert all(f"payout #{winner.run.pk}" in line.skip_reason for line in loser.skipped)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_run_marked_paid_twice_at_once_is_paid_once():
    program = ProgramFactory(slug="double-click")
    granted(cash_tier(program), enroll(program, "ana@example.com"))
    run = new_run(program)

    results = list(_both_at_once([lambda: payout_run_mark_paid(run=run, actor=STAFF)] * 2))

    assert sorted(type(r).__name__ for r in results) == ["Conflict", "PaidOutcome"]
    assert PayoutLine.objects.filter(status="paid").count() == 1
    assert AuditEvent.objects.filter(action="payout.run_paid").count() == 1
