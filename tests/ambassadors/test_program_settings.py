"""The program settings added for sharing and for the analytics' labels: validated alike by the API, the
admin and the service, and kept as given."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from ambassadors.models import Program
from ambassadors.services import program_update
from core.actors import Actor
from core.errors import InvalidInput

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_api(marketer) -> APIClient:
    client = APIClient()
    client.force_login(marketer)
    return client


def test_a_program_keeps_its_share_message_and_label_thresholds(staff_api):
    response = staff_api.post(
        "/api/v1/programs/",
        {
            "slug": "jam", "name": "Jam Club", "currency": "EUR", "share_message": "Our jam is the best 🍓",
            "influencer_min_clicks": 100, "influencer_max_rate": "1.5", "ambassador_min_qualified": 5,
            "ambassador_min_rate": "12.5",
        },
        format="json",
    )  # fmt: skip

    assert response.status_code == 201, response.json()
    program = Program.objects.get(slug="jam")
    assert program.share_message == "Our jam is the best 🍓"
    assert (program.influencer_min_clicks, program.ambassador_min_qualified) == (100, 5)
    assert (program.influencer_max_rate, program.ambassador_min_rate) == (Decimal("1.50"), Decimal("12.50"))
    assert response.json()["influencer_max_rate"] == "1.50"


def test_the_defaults_are_the_ones_the_analytics_document(program):
    assert program.share_message == ""
    assert (program.influencer_min_clicks, program.influencer_max_rate) == (50, Decimal("2"))
    assert (program.ambassador_min_qualified, program.ambassador_min_rate) == (3, Decimal("10"))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"share_message": "Join\nme"}, "share_message"),
        ({"share_message": "Join\u202eme"}, "share_message"),
        ({"share_message": "x" * 281}, "share_message"),
        ({"influencer_max_rate": "100.01"}, "influencer_max_rate"),
        ({"ambassador_min_rate": "-1"}, "ambassador_min_rate"),
        ({"influencer_min_clicks": -3}, "influencer_min_clicks"),
        ({"ambassador_min_qualified": "many"}, "ambassador_min_qualified"),
        ({"click_retention_months": 0}, "click_retention_months"),
        ({"click_retention_months": 121}, "click_retention_months"),
        ({"click_retention_months": "forever"}, "click_retention_months"),
    ],
)
def test_bad_settings_are_a_400_naming_the_field_and_change_nothing(staff_api, program, body, field):
    response = staff_api.patch(f"/api/v1/programs/{program.slug}/", body, format="json")

    assert response.status_code == 400, response.content
    assert field in str(response.json())
    program.refresh_from_db()
    assert program.share_message == ""
    assert program.influencer_max_rate == Decimal("2")


@pytest.mark.parametrize(("field", "value"), [("influencer_max_rate", Decimal("101")), ("share_message", "a\x00b")])
def test_the_service_refuses_them_too(program, field, value):
    with pytest.raises(InvalidInput) as refused:
        program_update(program=program, actor=Actor.system("tests"), **{field: value})

    assert refused.value.field == field


def test_the_click_retention_is_a_setting_of_the_program(staff_api, program):
    assert program.click_retention_months == 13

    response = staff_api.patch(f"/api/v1/programs/{program.slug}/", {"click_retention_months": 6}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["click_retention_months"] == 6
    program.refresh_from_db()
    assert program.click_retention_months == 6
