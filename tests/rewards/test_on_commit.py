"""Events enqueue their recalculation with transaction.on_commit: nothing is sent, nothing recalculated,
before the data that justifies it is committed; nothing at all when it rolls back."""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.db import connection, transaction

from referrals.models import Signup
from rewards.models import RewardGrant
from rewards.tasks import recalculate
from tests.factories import ProgramFactory, enroll
from tests.rewards.conftest import subscribe, voucher_tier


@pytest.fixture
def sent():
    """Every recalculation message sent, still delivered (eagerly, in these tests).

    Request it after the tiers are created: creating one sends a recalculation of its own.
    """
    with mock.patch.object(recalculate, "delay", wraps=recalculate.delay) as delay:
        yield delay


@pytest.mark.django_db
def test_the_recalculation_waits_for_the_commit(program, ambassador, request, django_capture_on_commit_callbacks):
    voucher_tier(program, threshold=1)
    sent = request.getfixturevalue("sent")
    pending_before = len(connection.run_on_commit)

    with django_capture_on_commit_callbacks(execute=True):
        subscribe(program, ambassador)
        assert sent.call_count == 0
        assert not RewardGrant.objects.exists()
        # The recalculation, the ambassador's "a friend subscribed" e-mail and the webhooks' dispatch
        # (core.outbox), waiting for the commit.
        assert len(connection.run_on_commit) == pending_before + 3

    sent.assert_called_once_with(program.pk, [ambassador.pk])
    assert RewardGrant.objects.filter(ambassador=ambassador).count() == 1


@pytest.mark.django_db
def test_a_new_tier_rewards_what_ambassadors_already_reached_once_it_commits(program, ambassador, committed, sent):
    with committed():
        subscribe(program, ambassador)
        subscribe(program, ambassador)
    sent.reset_mock()

    with committed():
        voucher_tier(program, threshold=2)
        assert not RewardGrant.objects.exists()

    sent.assert_called_once_with(program.pk, None)
    assert RewardGrant.objects.get().ambassador == ambassador


def grants_seen_by_another_connection() -> int:
    seen: list[int] = []

    def look() -> None:
        try:
            seen.append(RewardGrant.objects.count())
        finally:
            connection.close()

    thread = threading.Thread(target=look)
    thread.start()
    thread.join(timeout=10)
    return seen[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_inside_an_atomic_block_nothing_is_sent_until_it_commits(request):
    program = ProgramFactory(slug="atomic")
    ana = enroll(program, "ana@example.com")
    voucher_tier(program, threshold=2)
    sent = request.getfixturevalue("sent")

    with transaction.atomic():
        subscribe(program, ana)
        subscribe(program, ana)
        assert sent.call_count == 0
        assert not RewardGrant.objects.exists()

    assert sent.call_count == 2
    assert RewardGrant.objects.filter(ambassador=ana).count() == 1
    assert grants_seen_by_another_connection() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_signup_sends_nothing(request):
    program = ProgramFactory(slug="rollback")
    ana = enroll(program, "ana@example.com")
    voucher_tier(program, threshold=1)
    sent = request.getfixturevalue("sent")

    with pytest.raises(RuntimeError), transaction.atomic():
        subscribe(program, ana)
        raise RuntimeError("the request failed after the signup")

    assert sent.call_count == 0
    assert not Signup.objects.exists()
    assert not RewardGrant.objects.exists()
