"""The audit trail is append-only, enforced by PostgreSQL itself, whatever path tries to change it."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from core.actors import Actor
from core.audit import audit_record
from core.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def event(program):
    return audit_record(
        actor=Actor.system("test"),
        action="signup.recorded",
        object_type="signup",
        object_id=1,
        program_id=program.pk,
        after={"status": "qualified"},
        reason="original reason",
    )


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE core_auditevent SET reason = 'rewritten' WHERE id = %s",
        "DELETE FROM core_auditevent WHERE id = %s",
    ],
)
def test_raw_sql_update_and_delete_are_refused(event, sql):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [event.pk])

    assert AuditEvent.objects.get(pk=event.pk).reason == "original reason"


def test_orm_queryset_update_is_refused(event):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")

    assert AuditEvent.objects.get(pk=event.pk).reason == "original reason"


def test_orm_delete_is_refused(event):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()

    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_saving_a_changed_instance_is_refused(event):
    event.reason = "rewritten"

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.save()

    assert AuditEvent.objects.get(pk=event.pk).reason == "original reason"


def test_appending_stays_possible(event):
    audit_record(actor=Actor.system(), action="x", object_type="signup", object_id=2, program_id=None)

    assert AuditEvent.objects.count() == 2
