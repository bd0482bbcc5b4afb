"""Exactly once comes from the database: unique constraints refuse a second grant or milestone, whatever
the code does, and recalculating again (redelivery) changes nothing."""

from __future__ import annotations

import contextlib
import threading
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ambassadors.models import Ambassador
from core.models import AuditEvent
from rewards import services
from rewards.models import Milestone, RewardGrant, RewardTier
from rewards.services import ambassador_recalculate
from rewards.tasks import recalculate
from tests.factories import ProgramFactory, enroll
from tests.rewards.conftest import price_ladder, subscribe, voucher_tier


def grant_row(tier: RewardTier, **fields: Any) -> RewardGrant:
    return RewardGrant.objects.create(
        tier=tier, voucher_code=services.voucher_code_generate(), created_at=timezone.now(), **fields
    )


@pytest.mark.django_db
def test_the_database_refuses_a_second_grant_of_the_same_occurrence(program, ambassador):
    tier = voucher_tier(program, threshold=1)
    grant_row(tier, ambassador=ambassador, occurrence=1)

    with pytest.raises(IntegrityError), transaction.atomic():
        grant_row(tier, ambassador=ambassador, occurrence=1)
    grant_row(tier, ambassador=ambassador, occurrence=2)  # the next occurrence is another grant


@pytest.mark.django_db
def test_the_database_refuses_a_second_welcome_voucher_for_a_referee(program, ambassador):
    tier = voucher_tier(program, threshold=1, referee_reward_type="fixed_voucher", referee_reward_value=Decimal(5))
    friend = subscribe(program, ambassador)
    grant_row(tier, referee_signup=friend)

    with pytest.raises(IntegrityError), transaction.atomic():
        grant_row(tier, referee_signup=friend)


@pytest.mark.django_db
def test_the_database_refuses_a_second_milestone_of_the_same_step(program):
    ladder = price_ladder(program)
    fields = {"tier": ladder, "program": program, "count_at": 5, "reached_at": timezone.now()}
    Milestone.objects.create(occurrence=1, **fields)

    with pytest.raises(IntegrityError), transaction.atomic():
        Milestone.objects.create(occurrence=1, **fields)


@pytest.mark.django_db
def test_the_database_refuses_a_voucher_code_twice(program, ambassador):
    tier = voucher_tier(program, threshold=1)
    first = grant_row(tier, ambassador=ambassador, occurrence=1)

    with pytest.raises(IntegrityError), transaction.atomic():
        RewardGrant.objects.create(
            tier=tier, ambassador=ambassador, occurrence=2, voucher_code=first.voucher_code, created_at=timezone.now()
        )


@pytest.mark.django_db
def test_the_same_recalculation_run_twenty_times_changes_nothing_after_the_first(
    program, ambassador, committed, mailoutbox
):
    tier = voucher_tier(program, threshold=2, repeat_every=Decimal(2))
    ladder = price_ladder(program, step=2)
    with committed():
        for _ in range(5):
            subscribe(program, ambassador)
    grants = set(tier.grants.values_list("id", "occurrence", "status", "voucher_code"))
    milestones = set(ladder.milestones.values_list("id", "occurrence"))
    events, mails = AuditEvent.objects.count(), len(mailoutbox)
    assert len(grants) == 2 and len(milestones) == 2

    with committed():
        for _ in range(20):
            recalculate(program.pk, [ambassador.pk])
            recalculate.delay(program.pk, None)

    assert set(tier.grants.values_list("id", "occurrence", "status", "voucher_code")) == grants
    assert set(ladder.milestones.values_list("id", "occurrence")) == milestones
    assert (AuditEvent.objects.count(), len(mailoutbox)) == (events, mails)


def in_threads(count: int, call) -> list[Any]:
    """Run `call` in `count` threads released together, each with its own database connection."""
    start = threading.Barrier(count, timeout=10)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            results.append(call())
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_without_the_row_lock_racing_inserts_still_make_one_grant():
    """The race the lock prevents: every thread checked, found no grant, and inserts. The constraint says no."""
    program = ProgramFactory(slug="race-insert")
    ana = enroll(program, "ana@example.com")
    tier = voucher_tier(program, threshold=50)
    gate = threading.Barrier(8, timeout=5)
    real_create = RewardGrant.objects.create

    def create_after_everyone_checked(**kwargs: Any) -> RewardGrant:
        with contextlib.suppress(threading.BrokenBarrierError):
            gate.wait()
        return real_create(**kwargs)

    with mock.patch.object(RewardGrant.objects, "create", side_effect=create_after_everyone_checked):
        results = in_threads(8, lambda: services.grant_create(tier=tier, ambassador=ana, occurrence=1))

    assert sum(r is not None for r in results) == 1
    assert tier.grants.count() == 1
    assert AuditEvent.objects.filter(action="reward.unlocked").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_recalculations_of_one_ambassador_grant_each_occurrence_once():
    program = ProgramFactory(slug="race-recalc")
    ana = enroll(program, "ana@example.com")
    with mock.patch("rewards.services.recalculation_enqueue"):  # the threads below all find three missing
        tier = voucher_tier(program, threshold=3, repeat_every=Decimal(3))
        ladder = price_ladder(program, step=3)
        for _ in range(9):
            subscribe(program, ana)
    assert not RewardGrant.objects.exists() and not Milestone.objects.exists()

    in_threads(
        8, lambda: (ambassador_recalculate(ambassador_id=ana.pk), services.program_recalculate(program_id=program.pk))
    )

    assert sorted(tier.grants.values_list("occurrence", flat=True)) == [1, 2, 3]
    assert sorted(ladder.milestones.values_list("occurrence", flat=True)) == [1, 2, 3]
    assert Ambassador.objects.count() == 1
