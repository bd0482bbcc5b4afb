"""The staff console's webhooks page (console/staff/webhooks.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from ambassadors.models import WebhookDelivery, WebhookEndpoint
from ambassadors.webhooks import delivery_attempt, endpoint_create, outbox_dispatch
from core.actors import Actor
from tests.ambassadors.test_webhooks import an_event, receiver  # noqa: F401 (a fixture)
from tests.factories import ProgramFactory

PUBLIC = "https://93.184.215.14/hook"


@pytest.fixture
def staff(marketer) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(marketer)
    return client


@pytest.mark.django_db
def test_a_marketer_adds_an_endpoint_with_checkboxes_and_sees_its_secret(staff, program):
    page = staff.get(f"/staff/p/{program.slug}/webhooks/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'type="checkbox" name="event_types" value="reward.unlocked"' in html
    assert 'aria-current="page">Webhooks<' in html

    response = staff.post(
        f"/staff/p/{program.slug}/webhooks/", {"url": PUBLIC, "event_types": ["reward.unlocked", "contest.ended"]}
    )

    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/staff/p/{program.slug}/webhooks/{endpoint.pk}/"
    assert endpoint.event_types == ["reward.unlocked", "contest.ended"]
    detail = staff.get(response["Location"]).content.decode()
    assert endpoint.secret in detail
    assert PUBLIC in staff.get(f"/staff/p/{program.slug}/webhooks/").content.decode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "http://127.0.0.1/hook", "event_types": ["reward.unlocked"]}, "public addresses"),
        ({"url": PUBLIC}, "This field is required"),
        ({"url": "ftp://93.184.215.14/", "event_types": ["reward.unlocked"]}, "valid http or https URL"),
    ],
)
@pytest.mark.django_db
def test_a_bad_endpoint_shows_the_form_again_with_its_error(staff, program, body, message, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    response = staff.post(f"/staff/p/{program.slug}/webhooks/", body)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_switching_an_endpoint_off_and_on(staff, program):
    endpoint = endpoint_create(program=program, actor=Actor.system("t"), url=PUBLIC, event_types=["contest.ended"])
    url = f"/staff/p/{program.slug}/webhooks/{endpoint.pk}/"
    assert staff.post(url, {"is_active": "false"}).status_code == 302
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_reason
    assert "Switch the endpoint on" in staff.get(url).content.decode()
    staff.post(url, {"is_active": "true"})
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.disabled_reason == ""


@pytest.mark.django_db
def test_an_endpoint_of_another_program_is_not_found(staff, program):
    other = ProgramFactory(slug="elsewhere")
    endpoint = endpoint_create(program=other, actor=Actor.system("t"), url=PUBLIC, event_types=["contest.ended"])
    assert staff.get(f"/staff/p/{program.slug}/webhooks/{endpoint.pk}/").status_code == 404


@pytest.mark.django_db
def test_deliveries_with_attempts_in_constant_queries_and_resend(
    staff,
    program,
    receiver,  # noqa: F811
    django_assert_num_queries,
):
    endpoint = endpoint_create(
        program=program, actor=Actor.system("t"), url=receiver.url("/fail"), event_types=["reward.unlocked"]
    )
    url = f"/staff/p/{program.slug}/webhooks/{endpoint.pk}/"

    def deliveries(count: int) -> None:
        for _ in range(count):
            an_event(program)
        for delivery_id in outbox_dispatch():
            delivery_attempt(delivery_id=delivery_id)

    deliveries(1)
    staff.get(url)
    with django_assert_num_queries(7) as few:
        staff.get(url)
    deliveries(5)
    with django_assert_num_queries(len(few.captured_queries)):
        page = staff.get(url)
    html = page.content.decode()
    assert html.count("<li><time") == 6  # one attempt each
    assert "500" in html

    delivery = WebhookDelivery.objects.filter(endpoint=endpoint).first()
    assert delivery is not None
    response = staff.post(f"{url}deliveries/{delivery.pk}/resend")
    assert response.status_code == 302 and response["Location"].endswith("#deliveries")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
