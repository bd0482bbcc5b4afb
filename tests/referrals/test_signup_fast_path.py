"""The signup API's fast path (bench/signups.py): the same rows, answers and refusals as the ORM path.

POST /api/v1/programs/<slug>/signups looks its key and program up in one statement (ambassadors.auth),
records an unattributed signup, its audit event and its counter delta in one statement
(referrals.services.signups._record_unattributed), lets the unique constraint find a mailbox already
recorded, and answers without building a serializer. Each test holds one of those to what the ORM path
wrote or answered before.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from ambassadors.models import AmbassadorCounters, ApiKey, Program, ProgramCounterDelta
from ambassadors.services import api_key_revoke
from core.actors import Actor
from core.models import AuditEvent, OutboxMessage
from referrals.api import SignupOutput
from referrals.models import Signup
from referrals.services import signups as signups_service
from referrals.services.signups import signup_record
from tests.conftest import bearer

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def url(program: Program) -> str:
    return f"/api/v1/programs/{program.slug}/signups"


def post(client: APIClient, program: Program, **body: Any) -> Any:
    return client.post(url(program), body, format="json")


def serialized(signup: Signup) -> Any:
    """What SignupOutput answered, as the client reads it."""
    return json.loads(JSONRenderer().render(SignupOutput(signup).data))


def written(program: Program, email: str) -> dict[str, Any]:
    """Every row one signup left, with what differs between two signups (ids, times, e-mail) left out."""
    signup = Signup.objects.get(program=program, email=email)
    event = AuditEvent.objects.get(object_type="signup", object_id=str(signup.pk))
    return {
        "signup": {
            f.attname: getattr(signup, f.attname)
            for f in Signup._meta.concrete_fields
            if f.attname not in {"id", "email", "email_canonical", "created_at", "external_id"}
        },
        "event": {
            f.attname: getattr(event, f.attname)
            for f in AuditEvent._meta.concrete_fields
            if f.attname not in {"id", "created_at", "object_id"}
        },
        "signup_created_before_event": signup.created_at <= event.created_at,
    }


def test_an_unattributed_signup_writes_the_rows_the_orm_path_writes(program, track_key, monkeypatch):
    client = APIClient()
    client.credentials(**bearer(track_key))
    assert post(client, program, email="fast@example.org", external_id="crm-1").status_code == 201
    fast = written(program, "fast@example.org")
    # The ORM path, as for a signup that announces a webhook (audit_record then writes no outbox row: it
    # asks core.webhook_events itself).
    monkeypatch.setattr(signups_service, "webhook_events", lambda **_: ["forced"])
    assert post(client, program, email="orm@example.org", external_id="crm-2").status_code == 201
    orm = written(program, "orm@example.org")
    assert fast == orm
    key = ApiKey.objects.get(program=program)
    assert fast["event"]["actor_id"] == str(key.pk) and fast["event"]["action"] == "signup.recorded"
    assert fast["event"]["after"] == {
        "ambassador": None,
        "method": "none",
        "status": "qualified",
        "reason": "",
        "click": None,
    }
    # One delta row each (the worker folds them into the program's counters), nothing for an ambassador.
    assert list(ProgramCounterDelta.objects.filter(program=program).values_list("signups", "qualified")) == [
        (1, 1),
        (1, 1),
    ]
    assert not AmbassadorCounters.objects.filter(ambassador__program=program, signups__gt=0).exists()


def test_the_answer_is_the_serializers_for_new_repeated_and_attributed_signups(program, ambassador, track_key):
    client = APIClient()
    client.credentials(**bearer(track_key))
    created = post(client, program, email="Nina.Friend@Example.org", external_id="crm-9")
    assert created.status_code == 201
    signup = Signup.objects.get(pk=created.json()["id"])
    assert created.json() == serialized(signup)
    again = post(client, program, email="nina.friend+shop@example.org")
    assert again.status_code == 200 and again.json() == serialized(signup)
    attributed = post(client, program, email="zoe@example.org", referral_code=ambassador.code)
    assert attributed.status_code == 201
    assert attributed.json() == serialized(Signup.objects.get(pk=attributed.json()["id"]))
    assert attributed.json()["ambassador"] == ambassador.code


def test_a_mailbox_already_recorded_writes_nothing_more(
    program, ambassador, track_key, django_capture_on_commit_callbacks
):
    client = APIClient()
    client.credentials(**bearer(track_key))
    first = post(client, program, email="friend@example.org", referral_code=ambassador.code).json()
    events, deltas = AuditEvent.objects.count(), ProgramCounterDelta.objects.count()
    counters = AmbassadorCounters.objects.get(ambassador=ambassador).signups
    with django_capture_on_commit_callbacks() as callbacks:
        again = post(client, program, email="FRIEND@example.org")
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert again.json()["ambassador"] == ambassador.code  # the first attribution stands
    assert (AuditEvent.objects.count(), ProgramCounterDelta.objects.count()) == (events, deltas)
    assert AmbassadorCounters.objects.get(ambassador=ambassador).signups == counters
    assert callbacks == []  # no recalculation, no e-mail for the repeat
    assert Signup.objects.filter(program=program).count() == 1


def test_a_repeat_whose_referral_code_no_longer_attributes_still_gets_its_signup(program, ambassador, track_key):
    client = APIClient()
    client.credentials(**bearer(track_key))
    first = post(client, program, email="friend@example.org", referral_code=ambassador.code).json()
    ambassador.is_active = False
    ambassador.save(update_fields=["is_active"])
    again = post(client, program, email="friend@example.org", referral_code=ambassador.code)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    refused = post(client, program, email="new@example.org", referral_code=ambassador.code)
    assert refused.status_code == 400 and "referral_code" in refused.json()


def test_a_closed_program_answers_its_signups_and_refuses_new_ones(program, track_key):
    client = APIClient()
    client.credentials(**bearer(track_key))
    first = post(client, program, email="friend@example.org").json()
    Program.objects.filter(pk=program.pk).update(status=Program.Status.CLOSED)
    assert post(client, program, email="friend@example.org").json()["id"] == first["id"]
    refused = post(client, program, email="late@example.org")
    assert refused.status_code == 400
    assert not Signup.objects.filter(email="late@example.org").exists()


def test_an_external_id_of_another_mailbox_is_a_field_error_and_writes_nothing(program, track_key):
    client = APIClient()
    client.credentials(**bearer(track_key))
    assert post(client, program, email="a@example.org", external_id="crm-1").status_code == 201
    events = AuditEvent.objects.count()
    refused = post(client, program, email="b@example.org", external_id="crm-1")
    assert refused.status_code == 400 and "external_id" in refused.json()
    assert AuditEvent.objects.count() == events
    assert ProgramCounterDelta.objects.filter(program=program).count() == 1
    # The same mailbox with the same external id is the same signup.
    assert post(client, program, email="a@example.org", external_id="crm-1").status_code == 200


def test_validation_errors_are_field_messages(program, track_key):
    client = APIClient()
    client.credentials(**bearer(track_key))
    refused = post(client, program, email="not an address", referee_ip="300.1.1.1")
    assert refused.status_code == 400
    assert set(refused.json()) == {"email", "referee_ip"}
    assert not Signup.objects.exists()


def test_the_key_lookup_refuses_revoked_and_foreign_keys(program, track_key, other_program, other_key):
    client = APIClient()
    client.credentials(**bearer(track_key))
    assert post(client, program, email="a@example.org").status_code == 201
    # Another program's key, on this program's URL: its own program is not used for this one.
    foreign = APIClient()
    foreign.credentials(**bearer(other_key))
    assert post(foreign, program, email="b@example.org").status_code in (403, 404)
    assert not Signup.objects.filter(email="b@example.org").exists()
    # With its own program's slug, it records there.
    assert post(foreign, other_program, email="b@example.org").status_code == 201
    assert Signup.objects.get(email="b@example.org").program_id == other_program.pk
    api_key_revoke(key=ApiKey.objects.get(program=program), actor=Actor.system("tests"))
    assert post(client, program, email="c@example.org").status_code == 401
    assert post(APIClient(), program, email="c@example.org").status_code == 401
    wrong = APIClient()
    wrong.credentials(**bearer("prn_not-a-key"))
    assert post(wrong, program, email="c@example.org").status_code == 401


def test_the_key_is_loaded_with_its_program_as_the_orm_loads_them(program, track_key):
    from ambassadors.auth import api_key_with_program
    from ambassadors.services import api_key_hash

    key = api_key_with_program(api_key_hash(track_key))
    assert key is not None
    orm = ApiKey.objects.select_related("program").get(pk=key.pk)
    fields = [f.attname for f in ApiKey._meta.concrete_fields]
    assert [getattr(key, f) for f in fields] == [getattr(orm, f) for f in fields]
    assert key.scopes == ["track"]
    program_fields = [f.attname for f in Program._meta.concrete_fields]
    assert [getattr(key.program, f) for f in program_fields] == [getattr(orm.program, f) for f in program_fields]
    assert api_key_with_program(api_key_hash("prn_unknown")) is None


def statements(context: CaptureQueriesContext) -> list[str]:
    """The statements sent, without the savepoints the test's own transaction turns `atomic` into."""
    return [q["sql"] for q in context.captured_queries if "SAVEPOINT" not in q["sql"]]


def test_a_signup_is_two_statements_once_the_key_was_touched(program, track_key):
    client = APIClient()
    client.credentials(**bearer(track_key))
    assert post(client, program, email="warm@example.org").status_code == 201  # marks the key used
    # 1. the key with its program; 2. the signup, its audit event and its counter delta (one statement)
    with CaptureQueriesContext(connection) as new:
        assert post(client, program, email="friend@example.org").status_code == 201
    assert len(statements(new)) == 2, statements(new)
    # A repeat: the INSERT that finds the mailbox, then the signup it found.
    with CaptureQueriesContext(connection) as repeat:
        assert post(client, program, email="friend@example.org").status_code == 200
    assert len(statements(repeat)) == 3, statements(repeat)


def test_the_service_called_inside_a_transaction_still_records_once(program):
    from django.db import transaction

    system = Actor.system("tests")
    with transaction.atomic():
        signup, created = signup_record(program=program, email="inner@example.org", actor=system)
        again, created_again = signup_record(program=program, email="inner@example.org", actor=system)
    assert created and not created_again and again.pk == signup.pk
    assert AuditEvent.objects.filter(object_type="signup", object_id=str(signup.pk)).count() == 1
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_key_lookup_stands_for_the_connection_health_check(program, track_key, monkeypatch):
    """CONN_HEALTH_CHECKS pings a reused connection with `SELECT 1` before its first transaction of a
    request; the key lookup has just used it, so the signup's transaction does not ping it again."""
    client = APIClient()
    client.credentials(**bearer(track_key))
    pings: list[bool] = []
    wrapper = connections[DEFAULT_DB_ALIAS]
    wrapper.ensure_connection()
    monkeypatch.setattr(wrapper, "is_usable", lambda: pings.append(True) or True)
    monkeypatch.setattr(wrapper, "health_check_enabled", True, raising=False)
    wrapper.health_check_done = False  # what request_started does to a reused connection
    assert post(client, program, email="friend@example.org").status_code == 201
    assert pings == []
    # Without the key lookup, the first transaction pings (the check this test relies on is live).
    wrapper.health_check_done = False
    signup_record(program=program, email="other@example.org", actor=Actor.system("tests"))
    assert pings == [True]
