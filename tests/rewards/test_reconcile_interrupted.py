"""`manage.py reconcile_rewards` stopped with Ctrl-C: what it did is consistent, and running it again resumes."""

from __future__ import annotations

import io
from unittest import mock

import pytest
from django.core.management import call_command

from core.progress import INTERRUPTED_EXIT_STATUS
from rewards.models import RewardGrant
from rewards.services import recalculation
from tests.factories import enroll
from tests.rewards.conftest import subscribe, voucher_tier

pytestmark = pytest.mark.django_db

NOTHING_TO_DO = (
    "ambassadors_repaired=0, programs_repaired=0, ambassadors_recalculated=0, unlocked=0, revoked=0, milestones=0"
)


def reconcile_rewards(*args: str) -> str:
    out = io.StringIO()
    call_command("reconcile_rewards", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def three_owed(program, committed):
    """Three ambassadors each owed a voucher that a lost message never granted."""
    voucher_tier(program, threshold=1)
    ambassadors = [enroll(program, f"amb{i}@example.com") for i in range(3)]
    with mock.patch("rewards.services.recalculation_enqueue"), committed():
        for ambassador in ambassadors:
            subscribe(program, ambassador)
    assert not RewardGrant.objects.exists()
    return ambassadors


def test_a_run_after_a_complete_run_does_nothing(three_owed):
    output = reconcile_rewards()

    assert output.startswith("reconcile rewards: 1/1 in ")
    assert "ambassadors_recalculated=3, unlocked=3" in output
    assert NOTHING_TO_DO in reconcile_rewards()
    assert RewardGrant.objects.count() == 3


def test_an_interrupted_run_keeps_what_it_granted_and_the_rerun_grants_the_rest(three_owed):
    real = recalculation.ambassador_recalculate
    calls = {"n": 0}

    def recalculate_then_ctrl_c(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # Ctrl-C in the middle of the second ambassador's recalculation
            raise KeyboardInterrupt
        return real(**kwargs)

    out = io.StringIO()
    with (
        mock.patch("rewards.services.reconciliation.ambassador_recalculate", side_effect=recalculate_then_ctrl_c),
        pytest.raises(SystemExit) as exit_info,
    ):
        call_command("reconcile_rewards", stdout=out)

    assert exit_info.value.code == INTERRUPTED_EXIT_STATUS
    assert "reconcile rewards: 0/1" in out.getvalue()
    assert "run the command again to resume" in out.getvalue()
    # The first ambassador's recalculation committed whole; nothing of the second one was written.
    assert RewardGrant.objects.count() == 1

    output = reconcile_rewards()

    assert "ambassadors_recalculated=2, unlocked=2" in output
    assert sorted(RewardGrant.objects.values_list("ambassador_id", flat=True)) == sorted(a.pk for a in three_owed)
    assert NOTHING_TO_DO in reconcile_rewards()


def test_a_stop_asked_for_lands_between_two_ambassadors(three_owed):
    """SIGTERM (docker stop) during the first recalculation: it completes, the run stops before the next."""
    import os
    import signal

    real = recalculation.ambassador_recalculate
    calls = {"n": 0}

    def recalculate_with_sigterm(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(**kwargs)

    with (
        mock.patch("rewards.services.reconciliation.ambassador_recalculate", side_effect=recalculate_with_sigterm),
        pytest.raises(SystemExit),
    ):
        call_command("reconcile_rewards", stdout=io.StringIO())

    assert calls["n"] == 1
    assert RewardGrant.objects.count() == 1
    assert "unlocked=2" in reconcile_rewards()
