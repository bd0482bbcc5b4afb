"""The staff payout pages and the ambassador's bank details page: drafting a run, reading it, downloading its
CSV and SEPA files, marking it paid (audited), the settings, form errors, masked IBANs, fixed query counts,
the tier form's cash fields, and a browser journey with axe."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from ambassadors.models import Ambassador, Program
from core import clock
from core.actors import Actor
from core.models import AuditEvent
from rewards.models import PayoutDetails, PayoutLine, PayoutRun, PayoutSettings, RewardGrant, RewardTier
from rewards.services import tier_create
from rewards.services.grants import grant_create
from rewards.services.payouts import payout_configure, payout_details_set, payout_run_create
from tests.factories import ProgramFactory, enroll, staff_user
from tests.pages.conftest import assert_accessible, screenshot
from tests.pages.test_staff_console import sign_in

pytestmark = pytest.mark.django_db

STAFF = Actor.system("tests")
IBAN_ANA = "DE89370400440532013000"
IBAN_SHOP = "GB82WEST12345698765432"
SEPA_NS = {"s": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}


def cash_tier(program: Program, threshold: int = 1, value: str = "25.00") -> RewardTier:
    return tier_create(
        actor=STAFF, program=program, name=f"Cash {value}", kind="individual", metric="qualified_signups",
        threshold=Decimal(threshold), reward_type="cash", reward_value=Decimal(value), reward_currency="EUR",
    )  # fmt: skip


def granted(tier: RewardTier, ambassador: Ambassador, *, days_ago: int = 40, occurrence: int = 1) -> RewardGrant:
    with time_machine.travel(clock.now() - timedelta(days=days_ago), tick=False):
        grant = grant_create(tier=tier, occurrence=occurrence, ambassador=ambassador)
    assert grant is not None
    return grant


@pytest.fixture
def marketer_client(db) -> Client:
    client = Client()
    client.force_login(staff_user("marketer", group="marketing"))
    return client


@pytest.fixture
def ana(program):
    return enroll(program, "ana@example.com", display_name="Ana")


def new_run(program: Program) -> PayoutRun:
    today = clock.now().date()
    return payout_run_create(program=program, actor=STAFF, period_start=today - timedelta(days=60), period_end=today)


def period() -> dict[str, str]:
    today = clock.now().date()
    return {"period_start": (today - timedelta(days=60)).isoformat(), "period_end": today.isoformat()}


def test_staff_draft_read_download_and_mark_a_payout_paid(program, ana, marketer_client):
    payout_details_set(ambassador=ana, actor=STAFF, account_holder="Ana Example", iban=IBAN_ANA)
    granted(cash_tier(program), ana)
    base = f"/staff/p/{program.slug}/payouts/"

    listing = marketer_client.get(base).content.decode()
    drafted = marketer_client.post(base, period())
    run = PayoutRun.objects.get()
    page = marketer_client.get(drafted["Location"]).content.decode()
    export = marketer_client.get(f"{base}{run.pk}.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    unconfirmed = marketer_client.post(f"{base}{run.pk}/", {"reason": "x"})
    paid = marketer_client.post(f"{base}{run.pk}/", {"confirm": "on", "reason": "June transfer"})
    after = marketer_client.get(paid["Location"]).content.decode()

    assert 'aria-current="page">Payouts<' in listing
    assert "DE** **** 3000" in listing and IBAN_ANA not in listing
    assert drafted.status_code == 302 and drafted["Location"] == f"{base}{run.pk}/"
    assert "Mark paid" in page and "Download CSV" in page and "Download SEPA XML" not in page
    assert "€25.00" in page or "25.00" in page
    assert export["Content-Type"].startswith("text/csv")
    assert [(r["ambassador_code"], r["amount"], r["iban"]) for r in rows] == [(ana.code, "25.00", "DE** **** 3000")]
    assert unconfirmed.status_code == 400
    assert 'aria-invalid="true"' in unconfirmed.content.decode()
    assert paid.status_code == 302
    assert "1 line is marked paid." in after and "Download SEPA XML" in after
    assert PayoutLine.objects.get().status == "paid"
    event = AuditEvent.objects.get(action="payout.run_paid")
    assert (event.actor_label, event.reason, event.object_id) == ("marketer", "June transfer", str(run.pk))


def test_the_sepa_download_needs_the_business_account_then_holds_the_transfers(program, ana, marketer_client):
    payout_details_set(ambassador=ana, actor=STAFF, account_holder="Ana Example", iban=IBAN_ANA)
    granted(cash_tier(program), ana)
    granted(cash_tier(program, threshold=2, value="4.50"), ana)
    run = new_run(program)
    marketer_client.post(f"/staff/p/{program.slug}/payouts/{run.pk}/", {"confirm": "on"})
    url = f"/staff/p/{program.slug}/payouts/{run.pk}-sepa.xml"

    without = marketer_client.get(url, follow=True)
    saved = marketer_client.post(
        f"/staff/p/{program.slug}/payouts/settings",
        {"hold_days": "30", "debtor_name": "Book Launch SARL", "debtor_iban": "gb82 west 1234 5698 7654 32"},
    )
    sepa = marketer_client.get(url)

    assert "Set the program&#x27;s bank account" in without.content.decode()
    assert saved.status_code == 302
    assert PayoutSettings.objects.get(program=program).debtor_iban == IBAN_SHOP
    assert sepa["Content-Type"] == "application/xml"
    root = ET.fromstring(sepa.content)  # noqa: S314 (our own file)
    assert root.findtext("s:CstmrCdtTrfInitn/s:GrpHdr/s:NbOfTxs", namespaces=SEPA_NS) == "1"
    assert root.findtext("s:CstmrCdtTrfInitn/s:GrpHdr/s:CtrlSum", namespaces=SEPA_NS) == "29.50"
    assert [e.text for e in root.iterfind(".//s:CdtTrfTxInf/s:CdtrAcct/s:Id/s:IBAN", SEPA_NS)] == [IBAN_ANA]


def test_an_ambassador_without_iban_is_named_with_the_reason(program, ana, marketer_client):
    granted(cash_tier(program), ana)
    run = new_run(program)

    page = marketer_client.get(f"/staff/p/{program.slug}/payouts/{run.pk}/").content.decode()

    assert "No bank details: the ambassador has not given an IBAN yet." in page


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"period_start": "2026-05-10", "period_end": "2026-05-01"}, "id_run_period_end"),
        ({"period_start": "not a date", "period_end": "2026-05-01"}, "id_run_period_start"),
    ],
)
def test_a_bad_period_is_a_form_error(program, ana, marketer_client, body, field):
    granted(cash_tier(program), ana)

    answer = marketer_client.post(f"/staff/p/{program.slug}/payouts/", body)

    html = answer.content.decode()
    assert answer.status_code == 400
    assert f'href="#{field}"' in html and 'aria-invalid="true"' in html
    assert not PayoutRun.objects.exists()


def test_nothing_owed_is_said_on_the_form(program, marketer_client):
    answer = marketer_client.post(f"/staff/p/{program.slug}/payouts/", period())

    assert answer.status_code == 400
    assert "Nothing is owed for this period" in answer.content.decode()


def test_a_bad_business_iban_is_a_form_error(program, marketer_client):
    answer = marketer_client.post(
        f"/staff/p/{program.slug}/payouts/settings", {"hold_days": "30", "debtor_iban": "GB82WEST12345698765433"}
    )

    assert answer.status_code == 400
    assert "check digits are wrong" in answer.content.decode()
    assert not PayoutSettings.objects.exists()


def test_the_payouts_page_reads_in_fixed_queries(program, marketer_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert marketer_client.get(f"/staff/p/{program.slug}/payouts/").status_code == 200
        return len(captured)

    tier = cash_tier(program)
    for i in range(2):
        granted(tier, enroll(program, f"few{i}@example.com"))
    new_run(program)
    few = queries()
    for i in range(15):
        ambassador = enroll(program, f"many{i}@example.com")
        granted(tier, ambassador)
        if i % 2:
            payout_details_set(ambassador=ambassador, actor=STAFF, account_holder="M", iban=IBAN_ANA)
    for _ in range(3):
        new_run(program)

    assert queries() == few


def test_the_run_page_reads_in_fixed_queries(program, marketer_client):
    tier = cash_tier(program)
    granted(tier, enroll(program, "few@example.com"))
    today = clock.now().date()
    small = payout_run_create(program=program, actor=STAFF, period_start=today - timedelta(days=60), period_end=today)
    for i in range(12):
        ambassador = enroll(program, f"many{i}@example.com")
        granted(tier, ambassador)
        payout_details_set(ambassador=ambassador, actor=STAFF, account_holder="M", iban=IBAN_ANA)
    big = payout_run_create(program=program, actor=STAFF, period_start=today - timedelta(days=60), period_end=today)

    def queries(run: PayoutRun) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert marketer_client.get(f"/staff/p/{program.slug}/payouts/{run.pk}/").status_code == 200
        return len(captured)

    assert queries(big) == queries(small)


def test_the_pages_render_in_french(program, ana, marketer_client):
    granted(cash_tier(program), ana)
    marketer_client.cookies["django_language"] = "fr"

    listing = marketer_client.get(f"/staff/p/{program.slug}/payouts/", HTTP_ACCEPT_LANGUAGE="fr")

    assert listing.status_code == 200
    assert '<html lang="fr"' in listing.content.decode()


def test_the_tier_form_offers_cash_with_a_currency(program, marketer_client):
    url = f"/staff/p/{program.slug}/tiers/new"
    body = {"name": "Cash back", "kind": "individual", "is_active": "on", "metric": "qualified_signups",
            "threshold": "3", "reward_type": "cash", "reward_value": "20.00"}  # fmt: skip

    form = marketer_client.get(url).content.decode()
    missing = marketer_client.post(url, body)
    saved = marketer_client.post(url, body | {"reward_currency": "eur"})

    assert 'value="cash"' in form and 'name="reward_currency"' in form
    assert missing.status_code == 400
    assert "Say in which currency" in missing.content.decode()
    assert saved.status_code == 302
    tier = RewardTier.objects.get()
    assert (tier.reward_type, tier.reward_value, tier.reward_currency) == ("cash", Decimal("20.00"), "EUR")


# --- The ambassador's bank details -------------------------------------------------------------------


def test_an_ambassador_saves_bank_details_and_sees_them_masked(program, ana):
    client = Client(enforce_csrf_checks=False)
    client.force_login(ana.user)
    url = f"/dashboard/{program.slug}/payout-details"

    bad = client.post(url, {"account_holder": "Ana Example", "iban": "DE89370400440532013001"})
    good = client.post(
        url, {"account_holder": "Ana Example", "iban": "de89 3704 0044 0532 0130 00", "bic": "cobadeffxxx"}
    )
    page = client.get(url).content.decode()

    assert bad.status_code == 400
    assert "check digits are wrong" in bad.content.decode() and 'aria-invalid="true"' in bad.content.decode()
    assert good.status_code == 302
    details = PayoutDetails.objects.get(ambassador=ana)
    assert (details.iban, details.bic) == (IBAN_ANA, "COBADEFFXXX")
    assert "DE** **** 3000" in page and IBAN_ANA not in page
    assert AuditEvent.objects.filter(action="payout.details_set", object_id=str(ana.pk)).count() == 1


def test_the_bank_details_page_uses_csrf(program, ana):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ana.user)

    answer = client.post(f"/dashboard/{program.slug}/payout-details", {"account_holder": "A", "iban": IBAN_ANA})

    assert answer.status_code == 403
    assert not PayoutDetails.objects.exists()


def test_someone_without_an_ambassadorship_gets_404(program, ana):
    other_program = ProgramFactory(slug="other-launch")
    client = Client()
    client.force_login(ana.user)

    assert client.get(f"/dashboard/{other_program.slug}/payout-details").status_code == 404


# --- In a browser ------------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_pay_a_run_in_the_browser(live_server, browser, page, program):
    ana = enroll(program, "ana@example.com", display_name="Ana")
    payout_details_set(ambassador=ana, actor=STAFF, account_holder="Ana Example", iban=IBAN_ANA)
    payout_configure(program=program, actor=STAFF, hold_days=30, debtor_name="Shop", debtor_iban=IBAN_SHOP)
    granted(cash_tier(program), ana)
    sign_in(browser, live_server, staff_user("marketer", group="marketing"))

    # Given the payouts page, when a period is drafted
    page.goto(f"{live_server.url}/staff/p/{program.slug}/payouts/")
    assert_accessible(page)
    today = clock.now().date()
    page.get_by_label("From").fill((today - timedelta(days=60)).isoformat())
    page.get_by_label("To (included)").fill(today.isoformat())
    page.get_by_role("button", name="Draft the payout").click()

    # Then its page shows Ana's line; when it is marked paid, the SEPA file is offered
    page.get_by_role("button", name="Mark paid").wait_for()
    assert "Ana" in page.locator("#payout-lines").inner_text()
    assert_accessible(page)
    page.get_by_label("I have checked the lines: mark them paid").check()
    page.get_by_role("button", name="Mark paid").click()
    page.get_by_role("link", name="Download SEPA XML").wait_for()
    assert PayoutLine.objects.get().status == "paid"
    assert_accessible(page)
    screenshot(page, "staff-payout-run")


def test_the_tier_preview_of_a_cash_tier_renders(program, marketer_client):
    body = {"name": "Cash back", "kind": "individual", "is_active": "on", "metric": "qualified_signups",
            "threshold": "3", "reward_type": "cash", "reward_value": "20.00", "reward_currency": "EUR"}  # fmt: skip

    answer = marketer_client.post(f"/staff/p/{program.slug}/tiers/preview", body)

    assert answer.status_code == 200
    assert not RewardTier.objects.exists()
