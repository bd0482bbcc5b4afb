"""`POST /api/v1/programs/<slug>/ambassadors`: a shop enrols its customers, idempotent per e-mail."""

from __future__ import annotations

import pytest

from ambassadors.models import Ambassador, AmbassadorCounters
from tests.conftest import bearer
from tests.factories import enroll

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(api, track_key):
    api.credentials(**bearer(track_key))
    return api


def enrol(client, program, **body):
    return client.post(f"/api/v1/programs/{program.slug}/ambassadors", body, format="json")


def test_enrolling_answers_201_with_the_code_and_link(program, shop):
    response = enrol(shop, program, email="Carla@Example.com", display_name="Carla")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"email", "code", "link", "display_name"}
    assert body["email"] == "carla@example.com"
    assert body["display_name"] == "Carla"
    assert body["link"] == f"http://testserver/r/{body['code']}"
    ambassador = Ambassador.objects.get(code=body["code"])
    assert ambassador.user.email == "carla@example.com"
    assert AmbassadorCounters.objects.filter(ambassador=ambassador).exists()


def test_enrolling_the_same_normalised_email_again_answers_200_with_the_same_code(program, shop):
    first = enrol(shop, program, email="carla@example.com").json()

    again = enrol(shop, program, email="  CARLA@example.COM ", display_name="Other name", code="CARLA-X")

    assert again.status_code == 200
    assert again.json() == first
    assert Ambassador.objects.count() == 1


def test_manage_key_may_enrol_too(program, api, manage_key):
    api.credentials(**bearer(manage_key))

    assert enrol(api, program, email="dan@example.com").status_code == 201


def test_vanity_code_is_kept_upper_case(program, shop):
    response = enrol(shop, program, email="carla@example.com", code="carla-reads")

    assert response.status_code == 201
    assert response.json()["code"] == "CARLA-READS"
    assert response.json()["link"].endswith("/r/CARLA-READS")


@pytest.mark.parametrize("taken_as", ["CARLA-READS", "carla-reads", "CARLA-READ5", "CAR1A-READS", "CARlA-READS"])
def test_a_taken_code_or_its_look_alike_is_refused_with_a_field_message(program, shop, taken_as):
    enroll(program, "carla@example.com", code="CARLA-READS")

    response = enrol(shop, program, email="eve@example.com", code=taken_as)

    if taken_as == "CARLA-READ5":
        # 5 and S are distinct characters of the alphabet: a different code.
        assert response.status_code == 201
        return
    assert response.status_code == 400
    assert "taken" in response.json()["code"][0]
    assert not Ambassador.objects.filter(email="eve@example.com").exists()


def test_a_code_taken_in_another_program_is_refused_too(program, shop, db):
    """`/r/<code>` names no program, so codes are unique across programs."""
    from tests.factories import ProgramFactory

    enroll(ProgramFactory(slug="elsewhere"), "zed@example.com", code="SHARED")

    response = enrol(shop, program, email="eve@example.com", code="shared")

    assert response.status_code == 400
    assert "code" in response.json()


def test_a_code_taken_by_a_channel_link_is_refused(program, ambassador, shop):
    from referrals.services import link_create

    link = link_create(ambassador=ambassador, channel="insta")

    response = enrol(shop, program, email="eve@example.com", code=link.code)

    assert response.status_code == 400
    assert "code" in response.json()


@pytest.mark.parametrize(
    "code",
    ["ab", "-abc", "abc-", "has space", "ünï", "a" * 33, "abc/def", "abc_def", "<script>", "a.b.c", "x" * 65],
)
def test_a_malformed_code_is_refused_with_a_field_message(program, shop, code):
    response = enrol(shop, program, email="eve@example.com", code=code)

    assert response.status_code == 400
    assert "code" in response.json()
    assert not Ambassador.objects.exists()


@pytest.mark.parametrize(
    "body",
    [{}, {"email": "not-an-email"}, {"email": ["a@b.c"]}, {"email": "a@b.c", "display_name": "x" * 101}],
)
def test_bad_enrolment_input_is_a_400_with_field_messages(program, shop, body):
    response = enrol(shop, program, **body)

    assert response.status_code == 400
    assert set(response.json()) <= {"email", "display_name", "code"}
    assert not Ambassador.objects.exists()


def test_two_long_addresses_with_the_same_beginning_are_two_ambassadors(program, shop):
    head = "a" * 150
    first = enrol(shop, program, email=f"{head}1@example.com")
    second = enrol(shop, program, email=f"{head}2@example.com")

    assert (first.status_code, second.status_code) == (201, 201)
    ambassadors = Ambassador.objects.all()
    assert len({a.user_id for a in ambassadors}) == 2
    assert first.json()["code"] != second.json()["code"]


def test_an_account_already_enrolled_under_another_address_gets_its_ambassadorship_back(program, shop):
    from allauth.account.models import EmailAddress

    from tests.factories import UserFactory

    carla = UserFactory(username="carla", email="carla@example.com")
    # The account proved the address the shop enrols (an unproven one would get nothing: test_accounts).
    EmailAddress.objects.create(user=carla, email="carla@example.com", verified=True, primary=True)
    existing = enroll(program, "carla.work@example.com", user=carla)

    response = enrol(shop, program, email="carla@example.com")

    assert response.status_code == 200
    assert response.json()["code"] == existing.code
    assert Ambassador.objects.count() == 1
