"""The pages: "Your data" for the signed-in person, and the audit console's people page for admins.

Who gets what status is pinned by tests/core/permission_rows_privacy.py; these tests pin what each page
does, and that hostile input (bad addresses, missing reasons, wrong methods) gets an answer, never a 500.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from core.models import AuditEvent
from referrals.models import Signup
from tests.factories import UserFactory, staff_user
from tests.privacy.conftest import ANA, ZOE

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def ana_client(world) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(world.ana_user)
    return client


@pytest.fixture
def auditor_client(db) -> Client:
    client = Client()
    client.force_login(staff_user("auditor", group="auditors"))
    return client


# --- "Your data" -----------------------------------------------------------------------------------------


def test_the_header_links_to_your_data_and_the_page_offers_both(ana_client):
    response = ana_client.get(reverse("dashboard"))
    assert f'href="{reverse("privacy")}"' in response.content.decode()

    page = ana_client.get(reverse("privacy")).content.decode()

    assert reverse("privacy-export") in page and reverse("privacy-erase") in page


def test_download_my_data_is_a_json_attachment_of_my_own_data(ana_client):
    response = ana_client.post(reverse("privacy-export"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="parrain-my-data.json"'
    data = json.loads(response.content)
    assert data["accounts"][0]["email"] == ANA
    assert ZOE not in response.content.decode()


def test_a_wrong_confirmation_erases_nothing(ana_client, world):
    response = ana_client.post(reverse("privacy-erase"), {"confirm": "someone@example.com"})

    assert response.status_code == 200
    assert "This is not the e-mail address of your account." in response.content.decode()
    assert User.objects.get(pk=world.ana_user.pk).is_active


def test_typing_my_address_erases_me_signs_me_out_and_keeps_me_out(ana_client, world):
    response = ana_client.post(reverse("privacy-erase"), {"confirm": "  Ana.Martin@Example.com "})

    assert response.status_code == 302 and response["Location"] == reverse("home")
    user = User.objects.get(pk=world.ana_user.pk)
    assert not user.is_active and user.email.endswith("@erased.invalid")
    assert ana_client.get(reverse("privacy")).status_code == 302  # the session ended
    assert not Client().login(username=ANA, password="pw-for-tests")
    event = AuditEvent.objects.get(action="person.erased")
    assert event.object_type == "user" and event.object_id == str(user.pk)


def test_a_session_in_another_browser_ends_too(world):
    elsewhere = Client()
    elsewhere.force_login(world.ana_user)
    here = Client()
    here.force_login(world.ana_user)

    here.post(reverse("privacy-erase"), {"confirm": ANA})

    assert elsewhere.get(reverse("privacy")).status_code == 302


def test_a_staff_account_is_not_erased_from_its_own_page(world):
    client = Client()
    root = UserFactory(username="root", email="root@example.com", is_staff=True, is_superuser=True)
    client.force_login(root)

    assert "A staff account is erased by another admin" in client.get(reverse("privacy")).content.decode()
    assert client.post(reverse("privacy-erase"), {"confirm": "root@example.com"}).status_code == 403
    assert User.objects.get(pk=root.pk).is_superuser


@pytest.mark.parametrize("name", ["privacy-export", "privacy-erase", "audit-people-export", "audit-people-erase"])
def test_the_actions_answer_get_with_405(ana_client, auditor_client, name):
    assert ana_client.get(reverse(name)).status_code == 405
    assert auditor_client.get(reverse(name)).status_code == 405


def test_the_erasure_form_needs_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.ana_user)

    assert client.post(reverse("privacy-erase"), {"confirm": ANA}).status_code == 403
    assert User.objects.get(pk=world.ana_user.pk).is_active


# --- The audit console's people page -------------------------------------------------------------------


def test_looking_a_person_up_shows_counts_and_both_forms(auditor_client, world):
    page = auditor_client.post(reverse("audit-people"), {"email": ZOE}).content.decode()

    assert "2 signups" in page and "1 conversion" in page
    assert reverse("audit-people-export") in page and reverse("audit-people-erase") in page
    assert "cust-4242" not in page  # counts, never the data


@pytest.mark.parametrize("email", ["", "not an address", "a@", "<script>@x.y", "x" * 300 + "@example.com"])
def test_a_bad_address_gets_the_form_again_with_its_error(auditor_client, world, email):
    response = auditor_client.post(reverse("audit-people"), {"email": email})

    assert response.status_code == 200
    assert "error-summary" in response.content.decode()


def test_the_export_needs_a_reason_and_then_downloads_and_is_audited(auditor_client, world):
    refused = auditor_client.post(reverse("audit-people-export"), {"export-email": ZOE, "export-reason": "  "})
    assert refused.status_code == 200 and "error-summary" in refused.content.decode()
    assert not AuditEvent.objects.filter(action="person.exported").exists()

    response = auditor_client.post(reverse("audit-people-export"), {"export-email": ZOE, "export-reason": "Request #3"})

    assert response.status_code == 200
    assert {s["email"] for s in json.loads(response.content)["signups"]} == {ZOE}
    assert AuditEvent.objects.get(action="person.exported").reason == "Request #3"


def test_the_erasure_needs_a_reason(auditor_client, world):
    for body in ({"erase-email": ZOE}, {"erase-email": ZOE, "erase-reason": "   "}):
        response = auditor_client.post(reverse("audit-people-erase"), body)
        assert response.status_code == 200 and "error-summary" in response.content.decode()
    assert Signup.objects.filter(email=ZOE).count() == 2


def test_erasing_from_the_console_keeps_the_address_out_of_the_url_and_says_the_pseudonym(auditor_client, world):
    response = auditor_client.post(
        reverse("audit-people-erase"), {"erase-email": ZOE, "erase-reason": "Request #4"}, follow=True
    )

    assert response.redirect_chain == [(reverse("audit-people"), 302)]
    assert "Erased: the person is now erased-" in response.content.decode()
    assert not Signup.objects.filter(email=ZOE).exists()
    again = auditor_client.post(reverse("audit-people-erase"), {"erase-email": ZOE, "erase-reason": "Request #4"})
    assert again.status_code == 302  # nothing held any more: said so, nothing done


def test_a_bad_address_on_the_actions_gets_an_error_not_a_500(auditor_client, world):
    for name, prefix in (("audit-people-export", "export"), ("audit-people-erase", "erase")):
        response = auditor_client.post(reverse(name), {f"{prefix}-email": "nope", f"{prefix}-reason": "Because"})
        assert response.status_code == 200 and "error-summary" in response.content.decode()


def test_an_auditor_does_not_erase_a_superuser_and_a_superuser_does(auditor_client, world):
    UserFactory(username="root", email="root@example.com", is_staff=True, is_superuser=True)
    body = {"erase-email": "root@example.com", "erase-reason": "Leaving the company"}

    assert auditor_client.post(reverse("audit-people-erase"), body).status_code == 403
    assert User.objects.get(username="root").is_superuser

    other_root = Client()
    other_root.force_login(UserFactory(username="root2", is_staff=True, is_superuser=True))
    assert other_root.post(reverse("audit-people-erase"), body).status_code == 302
    assert not User.objects.filter(username="root").exists()


HOSTILE = [
    "\x00",
    "%00",
    "'; DROP TABLE x;--",
    "9" * 400,
    "<script>",
    "ÿ" * 300,
    "[]",
    "a@b\x00.c",
    "zoe@example.org\x00",
    "zoe@example.org, olivier@example.net",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_bodies_get_an_answer_never_a_500(ana_client, auditor_client, world, value):
    signups = list(Signup.objects.order_by("pk").values())
    answers = [
        ana_client.post(reverse("privacy-erase"), {"confirm": value}).status_code,
        auditor_client.post(reverse("audit-people"), {"email": value}).status_code,
        auditor_client.post(
            reverse("audit-people-export"), {"export-email": value, "export-reason": value}
        ).status_code,
        auditor_client.post(reverse("audit-people-erase"), {"erase-email": value, "erase-reason": value}).status_code,
    ]

    assert answers == [200, 200, 200, 200]  # the form again, with its error
    assert list(Signup.objects.order_by("pk").values()) == signups  # nobody erased
    # A real address with a hostile reason: a NUL is refused, anything else is a reason like any other.
    status = auditor_client.post(reverse("audit-people-erase"), {"erase-email": ZOE, "erase-reason": value}).status_code
    assert status == (200 if "\x00" in value else 302)
