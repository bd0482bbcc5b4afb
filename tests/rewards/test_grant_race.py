"""A withdrawal (a recalculation after a referral stopped counting) racing the shop redeeming the voucher.

Whichever commits first, the outcome is one of the two the design allows: redeemed and flagged for staff,
or revoked and never redeemed. Never a revoked grant the shop redeemed, nor a redeemed one still revoked.
PostgreSQL, real threads, the interleaving pinned on the SQL each side sends.
"""

from __future__ import annotations

import threading
from unittest import mock

import pytest

from core.actors import Actor
from core.errors import InvalidInput
from core.models import AuditEvent
from referrals.services import signup_status_change
from rewards.models import RewardGrant
from rewards.services import ambassador_recalculate, grant_redeem
from tests.rewards.conftest import subscribe, voucher_tier
from tests.rewards.interleaving import Threads, around_statement, wait_blocked

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CHECKOUT = Actor.system("shop checkout")


@pytest.fixture
def withdrawal_due(program, ambassador, mailoutbox):
    """Ana's voucher for one friend, whose signup was then rejected; the message that would have withdrawn
    the voucher was lost, so the next recalculation withdraws it."""
    voucher_tier(program, threshold=1)
    friend = subscribe(program, ambassador)
    grant = RewardGrant.objects.get()
    with mock.patch("rewards.services.recalculation_enqueue"):
        signup_status_change(signup=friend, status="rejected", reason="fake address", actor=Actor.system("review"))
    grant.refresh_from_db()
    assert grant.status == "unlocked"
    mailoutbox.clear()  # the e-mail of the unlock
    return grant


def test_a_voucher_redeemed_while_the_recalculation_decides_is_flagged_not_revoked(
    ambassador, withdrawal_due, mailoutbox
):
    grant = withdrawal_due
    read, redeemed = threading.Event(), threading.Event()
    threads = Threads()

    def recalculate():
        def pause() -> None:
            read.set()
            assert redeemed.wait(20)

        # Paused after reading the grants: it has seen the voucher unlocked.
        with around_statement(r'FROM "rewards_rewardgrant"', after=pause):
            return ambassador_recalculate(ambassador_id=ambassador.pk)

    threads.start("recalculation", recalculate)
    assert read.wait(20)
    grant_redeem(grant=grant, actor=CHECKOUT)  # the shop's checkout commits meanwhile
    redeemed.set()
    threads.join()

    assert threads.errors == {}
    grant.refresh_from_db()
    assert (grant.status, grant.flagged, grant.revoked_at) == ("redeemed", True, None)
    assert AuditEvent.objects.filter(action="reward.flagged", object_id=str(grant.pk)).count() == 1
    assert not AuditEvent.objects.filter(action="reward.revoked").exists()
    assert mailoutbox == []
    assert threads.results["recalculation"].flagged == 1


def test_a_voucher_revoked_while_the_shop_redeems_it_cannot_be_redeemed(ambassador, withdrawal_due):
    grant = withdrawal_due
    revoked, release = threading.Event(), threading.Event()
    threads = Threads()

    def recalculate():
        def pause() -> None:
            revoked.set()
            assert release.wait(20)

        # Paused after writing the revocation, before its commit.
        with around_statement(r'^UPDATE "rewards_rewardgrant"', after=pause):
            return ambassador_recalculate(ambassador_id=ambassador.pk)

    threads.start("recalculation", recalculate)
    assert revoked.wait(20)
    threads.start("redeem", lambda: grant_redeem(grant=grant, actor=CHECKOUT))
    wait_blocked(threads.pid("redeem"), "the redemption to wait for the revocation")
    release.set()
    threads.join()

    assert set(threads.errors) == {"redeem"}
    assert isinstance(threads.errors["redeem"], InvalidInput)
    grant.refresh_from_db()
    assert (grant.status, grant.flagged) == ("revoked", False)
    assert AuditEvent.objects.filter(action="reward.revoked", object_id=str(grant.pk)).count() == 1
    assert not AuditEvent.objects.filter(action="reward.redeemed").exists()
