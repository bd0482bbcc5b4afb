"""The site header offers each console only to those its policy lets in."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory, staff_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("who", "staff", "audit"),
    [("anonymous", False, False), ("customer", False, False), ("marketer", True, False),
     ("auditor", False, True), ("superuser", True, True)],
)  # fmt: skip
def test_the_header_links_to_the_consoles_one_may_open(program, who, staff, audit):
    client = Client()
    users = {
        "customer": lambda: UserFactory(username="someone"),
        "marketer": lambda: staff_user("marketer", group="marketing"),
        "auditor": lambda: staff_user("auditor", group="auditors"),
        "superuser": lambda: UserFactory(username="root", is_staff=True, is_superuser=True),
    }
    if who in users:
        client.force_login(users[who]())

    html = client.get("/").content.decode()

    assert ('href="/staff/"' in html) is staff
    assert ('href="/audit/"' in html) is audit
