"""/dashboard/ for a program paying cash rewards: the next reward and each cash reward say what is paid
and to where, never a voucher code to use, and the ambassador finds the page for their bank details."""

from __future__ import annotations

import pytest

from rewards.models import RewardTier
from rewards.services.grants import grant_create
from tests.console.test_dashboard import section_html, signed_in, text_of
from tests.factories import ProgramFactory, enroll
from tests.rewards.conftest import voucher_tier
from tests.rewards.test_payouts import cash_tier

pytestmark = pytest.mark.django_db


def test_a_cash_reward_reached_and_the_next_one_say_what_is_paid_and_link_to_the_bank_details(program, ambassador):
    cash_tier(program, threshold=1, value="20.00")  # no friend yet: the next reward
    granted = cash_tier(program, threshold=3, value="50.00")  # granted by hand, as staff may
    grant = grant_create(tier=granted, occurrence=1, ambassador=ambassador)
    assert grant is not None

    page = signed_in(ambassador.user).get("/dashboard/")

    assert page.status_code == 200
    section = section_html(page, program.slug)
    text = text_of(section)
    assert "1 more qualified friend: €20.00 paid to your bank account" in text
    assert "50.00 EUR at 3 €50.00 paid to your bank account Unlocked" in text  # the reward row
    assert grant.voucher_code not in section  # a cash reward's reference is not a voucher to use
    assert f'href="/dashboard/{program.slug}/payout-details"' in section


def test_a_program_paying_no_cash_asks_for_no_bank_details(ambassador):
    voucher_only = ProgramFactory(slug="vouchers-only")
    mine = enroll(voucher_only, ambassador.email)
    RewardTier.objects.filter(program=voucher_only).delete()

    page = signed_in(mine.user).get("/dashboard/")

    assert "payout-details" not in section_html(page, voucher_only.slug)
    assert "payout-details" not in section_html(page, ambassador.program.slug)


def test_the_rewards_column_names_a_payment_only_when_a_cash_reward_is_listed(program, ambassador):
    assert grant_create(tier=voucher_tier(program, threshold=3), occurrence=1, ambassador=ambassador) is not None
    vouchers_only = text_of(section_html(signed_in(ambassador.user).get("/dashboard/"), program.slug))
    assert "Reward Voucher code State" in vouchers_only

    assert grant_create(tier=cash_tier(program, threshold=5, value="30.00"), occurrence=1, ambassador=ambassador)
    both = text_of(section_html(signed_in(ambassador.user).get("/dashboard/"), program.slug))
    assert "Reward Voucher or payment State" in both
    assert "€30.00 paid to your bank account" in both
