"""The operator's commands: export_person and erase_person."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core.models import AuditEvent
from referrals.models import Signup
from tests.privacy.conftest import ZOE

pytestmark = pytest.mark.django_db


def test_export_person_prints_the_json(world):
    out = StringIO()

    call_command("export_person", ZOE, "--reason", "Request #5", stdout=out)

    data = json.loads(out.getvalue())
    assert {s["program"] for s in data["signups"]} == {"book-launch", "second-book"}
    assert AuditEvent.objects.get(action="person.exported").actor_label == "manage.py export_person"


def test_export_person_writes_a_file(world, tmp_path):
    target = tmp_path / "zoe.json"

    call_command("export_person", ZOE, "--output", str(target), stdout=StringIO(), stderr=StringIO())

    assert json.loads(target.read_text())["signups"]


def test_erase_person_erases_once_then_finds_nothing(world):
    out = StringIO()

    call_command("erase_person", ZOE, "--reason", "Request #6", stdout=out)
    call_command("erase_person", ZOE, "--reason", "Request #6", stdout=out)

    assert "Erased: the person is now erased-" in out.getvalue()
    assert "Nothing is held under this address" in out.getvalue()
    assert AuditEvent.objects.filter(action="person.erased").count() == 1
    assert not Signup.objects.filter(email=ZOE).exists()


@pytest.mark.parametrize(
    "args", [["not-an-address", "--reason", "x"], [ZOE, "--reason", "   "], [ZOE]], ids=["bad-address", "blank", "none"]
)
def test_erase_person_refuses_bad_input(world, args):
    with pytest.raises(CommandError):
        call_command("erase_person", *args, stdout=StringIO())

    assert Signup.objects.filter(email=ZOE).count() == 2


def test_export_person_refuses_an_unknown_or_bad_address(world):
    for address in ("nobody@example.com", "bad"):
        with pytest.raises(CommandError):
            call_command("export_person", address, stdout=StringIO())
