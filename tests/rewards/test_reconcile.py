"""`manage.py reconcile_rewards` and the beat task `rewards.reconcile`: recount from the source rows,
repair drifted counters, grant (and revoke) what lost messages missed; a second run changes nothing."""

from __future__ import annotations

import io
from decimal import Decimal
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from ambassadors.models import AmbassadorCounters, ProgramCounters
from core.actors import Actor
from core.models import AuditEvent
from referrals.services import signup_status_change
from rewards.models import Milestone, RewardGrant
from rewards.services import ReconcileReport, reconcile
from rewards.tasks import reconcile as reconcile_task
from tests.factories import ProgramFactory, enroll
from tests.rewards.conftest import price_ladder, subscribe, voucher_tier
from tests.rewards.interleaving import Threads, around_statement

pytestmark = pytest.mark.django_db

NOTHING_TO_DO = (
    "ambassadors_repaired=0, programs_repaired=0, ambassadors_recalculated=0, unlocked=0, revoked=0, milestones=0"
)


def reconcile_rewards(*args: str) -> str:
    out = io.StringIO()
    call_command("reconcile_rewards", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def messages_lost():
    """Every recalculation message is lost, as when the broker restarts or a process dies after commit."""
    with mock.patch("rewards.services.recalculation_enqueue") as enqueue:
        yield enqueue


def test_rewards_missed_by_lost_messages_are_granted_by_the_next_reconciliation(
    program, ambassador, committed, messages_lost
):
    tier = voucher_tier(program, threshold=2, repeat_every=Decimal(2))
    ladder = price_ladder(program, step=3)
    messages_lost.reset_mock()
    with committed():
        for i in range(7):
            subscribe(program, ambassador if i < 5 else None)
    assert messages_lost.call_count == 7
    assert not RewardGrant.objects.exists() and not Milestone.objects.exists()

    output = reconcile_rewards()

    assert "ambassadors_recalculated=1, unlocked=2, revoked=0, milestones=2" in output
    assert sorted(tier.grants.values_list("occurrence", flat=True)) == [1, 2]
    assert sorted(ladder.milestones.values_list("occurrence", flat=True)) == [1, 2]
    assert NOTHING_TO_DO in reconcile_rewards()


def test_a_revocation_missed_by_a_lost_message_is_made_by_the_reconciliation(program, ambassador, committed):
    voucher_tier(program, threshold=2)
    with committed():
        friends = [subscribe(program, ambassador) for _ in range(2)]
    grant = RewardGrant.objects.get()

    with mock.patch("rewards.services.recalculation_enqueue"), committed():
        signup_status_change(signup=friends[0], status="rejected", reason="fake", actor=Actor.system("review"))
    grant.refresh_from_db()
    assert grant.status == "unlocked"

    assert "unlocked=0, revoked=1" in reconcile_rewards()
    grant.refresh_from_db()
    assert grant.status == "revoked"
    assert NOTHING_TO_DO in reconcile_rewards()


def test_drifted_counters_are_recounted_from_the_source_rows(program, ambassador, committed):
    voucher_tier(program, threshold=3)
    with committed():
        subscribe(program, ambassador)
        subscribe(program, None)
    AmbassadorCounters.objects.filter(ambassador=ambassador).update(qualified=99, signups=99)
    ProgramCounters.objects.filter(program=program).update(qualified=0, signups=0)

    output = reconcile_rewards()

    assert "ambassadors_repaired=1, programs_repaired=1" in output
    counters = AmbassadorCounters.objects.get(ambassador=ambassador)
    assert (counters.signups, counters.qualified) == (1, 1)
    program_counters = ProgramCounters.objects.get(program=program)
    assert (program_counters.signups, program_counters.qualified) == (2, 2)
    # The inflated count granted nothing: the repair comes before the grants.
    assert not RewardGrant.objects.exists()
    assert AuditEvent.objects.filter(action="counters.repaired").count() == 2
    assert NOTHING_TO_DO in reconcile_rewards()


def test_a_missing_grant_is_granted_again_and_a_missing_welcome_voucher_too(program, ambassador, committed):
    tier = voucher_tier(program, threshold=1, referee_reward_type="fixed_voucher", referee_reward_value=Decimal("5"))
    with committed():
        friend = subscribe(program, ambassador)
    RewardGrant.objects.all().delete()

    assert "unlocked=2" in reconcile_rewards()
    assert tier.grants.filter(ambassador=ambassador, occurrence=1).count() == 1
    assert tier.grants.filter(referee_signup=friend).count() == 1
    assert NOTHING_TO_DO in reconcile_rewards()


def test_the_program_option_reconciles_only_that_program(program, ambassador, committed, messages_lost):
    other = ProgramFactory(slug="other")
    bob = enroll(other, "bob@example.com")
    voucher_tier(program, threshold=1)
    voucher_tier(other, threshold=1)
    with committed():
        subscribe(program, ambassador)
        subscribe(other, bob)

    reconcile_rewards("--program", other.slug)

    assert list(RewardGrant.objects.values_list("ambassador", flat=True)) == [bob.pk]
    with pytest.raises(CommandError, match="No program with slug 'nope'"):
        reconcile_rewards("--program", "nope")


def test_the_beat_task_reconciles_and_reports(program, ambassador, committed, messages_lost):
    voucher_tier(program, threshold=1)
    with committed():
        subscribe(program, ambassador)

    report = reconcile_task.delay().get()

    assert report == ReconcileReport(ambassadors_recalculated=1, unlocked=1).as_dict()
    assert RewardGrant.objects.filter(ambassador=ambassador).count() == 1
    assert reconcile_task.delay().get() == ReconcileReport().as_dict()
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "rewards.reconcile" in schedule


# --- A signup committed while the reconciliation recounts -------------------------------------------------


def signup_committed_meanwhile(program, ambassador) -> None:
    """Another request records a signup and commits, on its own connection, while this thread waits."""
    threads = Threads()
    threads.start("signup", lambda: subscribe(program, ambassador))
    threads.join()
    assert threads.errors == {}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_signup_committed_between_the_recount_and_the_repair_is_not_lost(program, ambassador, messages_lost):
    subscribe(program, ambassador)

    # Right after the recount of the ambassadors' signups, before the counters are compared and written.
    with around_statement(
        r'FROM "referrals_signup" .*GROUP BY', after=lambda: signup_committed_meanwhile(program, ambassador)
    ):
        report = reconcile(program=program)

    counters = AmbassadorCounters.objects.get(ambassador=ambassador)
    assert (counters.signups, counters.qualified) == (2, 2)
    assert report.ambassadors_repaired == 0
    assert not AuditEvent.objects.filter(action="counters.repaired").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_signup_committed_between_the_program_recount_and_its_repair_is_not_lost(program, ambassador, messages_lost):
    subscribe(program, None)

    # Right before the program's counters are read, after its signups were recounted.
    with around_statement(
        r'FROM "ambassadors_programcounters"', before=lambda: signup_committed_meanwhile(program, None)
    ):
        report = reconcile(program=program)

    counters = ProgramCounters.objects.get(program=program)
    assert (counters.signups, counters.qualified) == (2, 2)
    assert report.programs_repaired == 0
    assert not AuditEvent.objects.filter(action="counters.repaired").exists()
