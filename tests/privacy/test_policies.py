"""The privacy policies beyond the table's rows (tests/core/test_policies.py asks about the owner's account)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.policies import Outcome, Principal, may_erase_person, may_export_person
from tests.factories import UserFactory, staff_user

pytestmark = pytest.mark.django_db


def test_no_staff_account_erases_itself_from_the_self_service_page(db):
    for user in (
        UserFactory(username="root", is_staff=True, is_superuser=True),
        staff_user("auditor", group="auditors"),
        staff_user("marketer", group="marketing"),
    ):
        assert may_erase_person(Principal.for_user(user), user).outcome is Outcome.FORBIDDEN
        assert may_export_person(Principal.for_user(user), user)  # their own data they may read


def test_only_a_superuser_erases_a_superuser(db):
    root = SimpleNamespace(pk=10_000, is_superuser=True)

    assert not may_erase_person(Principal.for_user(staff_user("auditor", group="auditors")), root)
    assert may_erase_person(Principal.for_user(UserFactory(username="root2", is_superuser=True)), root)
    assert may_erase_person(Principal.operator(), root)


def test_a_person_without_an_account_is_exported_and_erased_by_admins_only(db):
    assert may_export_person(Principal.for_user(staff_user("auditor", group="auditors")))
    assert may_erase_person(Principal.for_user(staff_user("auditor2", group="auditors")))
    customer = Principal.for_user(UserFactory(username="customer"))
    assert may_export_person(customer).outcome is Outcome.FORBIDDEN
    assert may_erase_person(customer).outcome is Outcome.FORBIDDEN
    assert may_erase_person(Principal.anonymous()).outcome is Outcome.UNAUTHENTICATED
    assert may_erase_person(Principal.for_api_key(program_id=1, scopes=["manage"])).outcome is Outcome.FORBIDDEN
