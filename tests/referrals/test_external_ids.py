"""Any external id a conversion can be created with can be addressed: fetched and refunded by its URL,
percent-encoded (`order/1001`, `?`, `#`, `%`, spaces, line breaks, any script)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase
from rest_framework.test import APIClient

from ambassadors.services import api_key_create
from core.actors import Actor
from referrals.models import Conversion
from referrals.services import signup_record
from tests.conftest import bearer
from tests.factories import ProgramFactory, enroll


def url(slug: str, external_id: str, suffix: str = "") -> str:
    return f"/api/v1/programs/{slug}/conversions/{quote(external_id, safe='')}{suffix}"


@pytest.fixture
def shop(program, ambassador, friend_email, track_key):
    signup_record(program=program, email=friend_email, referral_code=ambassador.code, actor=Actor.system("test"))
    client = APIClient()
    client.credentials(**bearer(track_key))
    return client


def create(client, slug: str, external_id: str):
    body = {"external_id": external_id, "email": "friend@example.org", "amount": "19.90", "currency": "EUR"}
    return client.post(f"/api/v1/programs/{slug}/conversions", body, format="json")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "external_id",
    ["order/1001", "order/1001/refund", "a?b=c", "a#b", "100%", "order 7", "commande-été", "注文/42", "ends/"],
)
def test_an_external_id_with_url_characters_is_fetched_and_refunded(program, shop, external_id):
    created = create(shop, program.slug, external_id)
    assert created.status_code == 201, created.content

    fetched = shop.get(url(program.slug, external_id))
    refunded = shop.post(url(program.slug, external_id, "/refund"), {}, format="json")

    assert fetched.status_code == 200, fetched.content
    assert (fetched.json()["external_id"], fetched.json()["status"]) == (external_id, "pending")
    assert refunded.status_code == 200, refunded.content
    assert refunded.json()["external_id"] == external_id
    assert Conversion.objects.get(external_id=external_id).status == "reversed"


@pytest.mark.django_db
def test_fetching_an_unknown_external_id_is_a_404(program, shop):
    assert shop.get(url(program.slug, "never/seen")).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(("who", "status"), [("read key", 200), ("auditor", 200), ("outsider", 403), ("nobody", 401)])
def test_a_conversion_is_fetched_by_its_shop_readers_and_staff(
    program, shop, api, read_key, auditor, outsider, who, status
):
    create(shop, program.slug, "order-1")
    if who == "read key":
        api.credentials(**bearer(read_key))
    elif who != "nobody":
        api.force_login(auditor if who == "auditor" else outsider)

    assert api.get(url(program.slug, "order-1")).status_code == status


@pytest.mark.django_db
def test_another_programs_key_cannot_fetch_a_conversion(program, shop, api):
    other = ProgramFactory(slug="other")
    create(shop, program.slug, "order-1")
    api.credentials(**bearer(api_key_create(program=other, scopes=["track", "read"], actor=Actor.system("t"))[1]))

    assert api.get(url(program.slug, "order-1")).status_code == 403
    assert api.get(url(other.slug, "order-1")).status_code == 404


# What the API accepts as an external id: up to 128 characters, surrounding spaces trimmed, no control or
# invisible format character (core.text.plain_text; tests/referrals/test_strict_input.py).
external_ids = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp")), min_size=1, max_size=128
).filter(lambda s: s.strip() == s and s)


class TestEveryCreatableExternalIdIsAddressable(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.program = ProgramFactory(slug="prop")
        ambassador = enroll(cls.program, "ana@example.com")
        signup_record(program=cls.program, email="friend@example.org", referral_code=ambassador.code,
                      actor=Actor.system("test"))  # fmt: skip
        cls.key = api_key_create(program=cls.program, scopes=["track"], actor=Actor.system("test"))[1]

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(external_id=external_ids)
    def test_create_then_fetch_then_refund(self, external_id: str) -> None:
        client = APIClient()
        client.credentials(**bearer(self.key))

        created = create(client, self.program.slug, external_id)
        assert created.status_code == 201, created.content
        fetched = client.get(url(self.program.slug, external_id))
        assert fetched.status_code == 200, (external_id, fetched.content)
        assert fetched.json()["external_id"] == external_id
        refunded = client.post(url(self.program.slug, external_id, "/refund"), {}, format="json")
        assert refunded.status_code == 200, (external_id, refunded.content)
        assert refunded.json()["status"] == "reversed"
