"""`manage.py approve_conversions`: batches, a second run that does nothing, and a clean interrupted run."""

from __future__ import annotations

import datetime as dt
import io
from unittest import mock

import pytest
from django.core.management import call_command

from core.actors import Actor
from core.models import AuditEvent
from core.progress import INTERRUPTED_EXIT_STATUS
from referrals.models import Conversion
from referrals.services import conversion_approve, conversion_record, signup_record
from tests.referrals.helpers import counters_of

pytestmark = pytest.mark.django_db

START = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC)
SHOP = Actor.system("shop integration")


@pytest.fixture
def five_due(program, ambassador, time_machine):
    """Five sales of Ana's friends, recorded on START; their hold period is over a fortnight later."""
    time_machine.move_to(START, tick=False)
    for i in range(5):
        email = f"friend{i}@example.org"
        signup_record(program=program, email=email, referral_code=ambassador.code, actor=SHOP)
        conversion_record(program=program, actor=SHOP, external_id=f"order-{i}", amount="10.00", currency="EUR",
                          email=email)  # fmt: skip
    time_machine.move_to(START + dt.timedelta(days=program.hold_period_days, seconds=1), tick=False)


def approve_conversions(*args: str) -> str:
    out = io.StringIO()
    call_command("approve_conversions", *args, stdout=out)
    return out.getvalue()


def test_due_conversions_are_approved_in_batches_and_a_second_run_does_nothing(five_due, ambassador):
    output = approve_conversions("--batch-size", "2")

    assert output.startswith("approve conversions: 5/5 in ")
    assert "approved=5" in output
    assert set(Conversion.objects.values_list("status", flat=True)) == {"approved"}
    assert counters_of(ambassador).conversions == 5

    again = approve_conversions("--batch-size", "2")

    assert again.startswith("approve conversions: 0/0 in ")
    assert "approved=0" in again
    assert counters_of(ambassador).conversions == 5
    assert AuditEvent.objects.filter(action="conversion.approved").count() == 5


def test_an_interrupted_run_leaves_consistent_data_and_the_rerun_completes(five_due, ambassador):
    calls = {"n": 0}

    def approve_then_ctrl_c(**kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # Ctrl-C while the second batch of two is being approved
            raise KeyboardInterrupt
        return conversion_approve(**kwargs)

    out = io.StringIO()
    with (
        mock.patch("referrals.services.conversions.conversion_approve", side_effect=approve_then_ctrl_c),
        pytest.raises(SystemExit) as exit_info,
    ):
        call_command("approve_conversions", "--batch-size", "2", stdout=out)

    assert exit_info.value.code == INTERRUPTED_EXIT_STATUS
    assert "interrupted" in out.getvalue() and "run the command again to resume" in out.getvalue()
    approved = Conversion.objects.filter(status="approved").count()
    assert approved == 3  # the first batch and one of the second: each approval is its own transaction
    # What the counters say is what the rows say, and every approval is audited exactly once.
    assert counters_of(ambassador).conversions == approved
    assert AuditEvent.objects.filter(action="conversion.approved").count() == approved

    output = approve_conversions("--batch-size", "2")

    assert output.startswith("approve conversions: 2/2 in ")
    assert set(Conversion.objects.values_list("status", flat=True)) == {"approved"}
    assert counters_of(ambassador).conversions == 5
    assert AuditEvent.objects.filter(action="conversion.approved").count() == 5
