"""The consoles benchmark measures valid data: its COPY loader, at the --small sizes, leaves rows the app
itself could have written (foreign keys that hold, the app's canonical e-mails and code keys, counters
that agree with the rows, every index back in place)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import F

from ambassadors.mailbox import canonical_mailbox
from ambassadors.models import Ambassador, AmbassadorCounters, Program, ProgramCounters
from ambassadors.normalise import code_key, normalise_email
from bench.consoles import BULK_TABLES, SMALL, load
from referrals.models import Click, Conversion, Signup
from rewards.models import Milestone
from rewards.services.recalculation import program_recalculate
from rewards.services.reconciliation import _repair_ambassador_counters, _repair_program_counters

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def scalar(sql: str, params: object = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def indexes_and_constraints() -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indrelid::regclass::text, indexrelid::regclass::text FROM pg_index "
            "WHERE indrelid = ANY(%s::regclass[])",
            [BULK_TABLES],
        )
        found = set(cursor.fetchall())
        cursor.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE contype IN ('f', 'p', 'u') "
            "AND (conrelid = ANY(%(t)s::regclass[]) OR confrelid = ANY(%(t)s::regclass[]))",
            {"t": BULK_TABLES},
        )
        return found | set(cursor.fetchall())


def test_the_small_load_is_data_the_app_could_have_written():
    schema = indexes_and_constraints()

    loaded = load(SMALL)

    # Every index and constraint is back; the foreign keys were validated when added back, and any
    # deferred check left runs now.
    assert indexes_and_constraints() == schema
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    signups = Signup.objects.filter(program_id__in=[loaded.program_id, loaded.small_program_id])
    assert signups.count() == SMALL.signups == loaded.counts["signups"]
    ambassadors = Ambassador.objects.filter(program_id__in=[loaded.program_id, loaded.small_program_id])
    assert ambassadors.count() == loaded.counts["ambassadors"] > SMALL.ambassadors
    assert (
        Click.objects.filter(program_id__in=[loaded.program_id, loaded.small_program_id]).count()
        == (loaded.counts["clicks"])
    )
    assert Conversion.objects.count() == SMALL.conversions
    assert Milestone.objects.filter(program_id=loaded.program_id).count() == loaded.counts["milestones"] > 0

    # As the app stores them: the address trimmed and lower-cased, its mailbox from ambassadors.mailbox,
    # the code's key with look-alikes folded; one subscription per mailbox and program.
    for email, canonical in signups.values_list("email", "email_canonical"):
        assert email == normalise_email(email)
        assert canonical == canonical_mailbox(email)
    for code, key, email, canonical in ambassadors.values_list("code", "code_key", "email", "email_canonical"):
        assert key == code_key(code)
        assert canonical == canonical_mailbox(email)
    assert signups.exclude(email_canonical__in=signups.values("email")).exists()  # dots and +tags do occur

    # Relations that hold beyond the foreign keys: one program per row, and a click credits its signup's ambassador.
    assert not signups.exclude(ambassador__isnull=True).exclude(ambassador__program_id=F("program_id")).exists()
    assert not signups.filter(click__isnull=False).exclude(click__ambassador_id=F("ambassador_id")).exists()
    assert not signups.filter(click__isnull=False, click__created_at__gt=F("created_at")).exists()
    assert not Conversion.objects.exclude(signup__program_id=F("program_id")).exists()
    assert not Click.objects.exclude(ambassador__program_id=F("program_id")).exists()
    assert not signups.filter(ambassador__isnull=True).exclude(method="none").exists()
    assert scalar("SELECT count(*) FROM ambassadors_ambassador a WHERE NOT EXISTS ("
                  "SELECT 1 FROM referrals_signup s WHERE s.program_id = a.program_id "
                  "AND s.email_canonical = a.email_canonical)") == 0  # fmt: skip

    # The signup the bench opens has competing clicks of the same visitor.
    shown = Signup.objects.get(pk=loaded.competing_signup_id)
    competing = Click.objects.filter(visitor_id=shown.visitor_id).exclude(pk=shown.click_id)
    assert competing.exists()
    assert not competing.filter(ambassador_id=shown.ambassador_id).exists()
    assert not competing.filter(created_at__gte=shown.click.created_at).exists()
    assert not Click.objects.filter(created_at__lt=F("ambassador__created_at")).exists()
    assert Signup.objects.filter(
        email=loaded.sample_email, email_canonical=canonical_mailbox(loaded.sample_email_variant)
    ).exists()

    # Counters and the ladder's milestones are what the reconciliation computes from the rows: it repairs nothing.
    for program_id in (loaded.program_id, loaded.small_program_id):
        program_obj = Program.objects.get(pk=program_id)
        assert _repair_ambassador_counters(program_obj) == 0
        assert _repair_program_counters(program_obj) == 0
        assert program_recalculate(program_id=program_id) == 0
    referred = signups.filter(ambassador__isnull=False)
    assert sum(AmbassadorCounters.objects.values_list("signups", flat=True)) == referred.count()
    assert (
        sum(AmbassadorCounters.objects.values_list("qualified", flat=True))
        == referred.filter(status="qualified").count()
    )
    program = ProgramCounters.objects.get(program_id=loaded.program_id)
    assert program.signups == signups.filter(program_id=loaded.program_id).count()

    # New rows made by the app after the load get ids of their own.
    assert scalar("SELECT nextval(pg_get_serial_sequence('referrals_signup', 'id'))") > signups.order_by("-id")[0].id
