"""The webhooks JSON API: endpoints of a program, their deliveries with attempts, resend."""

from __future__ import annotations

import pytest

from ambassadors.models import WebhookDelivery, WebhookEndpoint
from ambassadors.webhooks import delivery_attempt, endpoint_create, outbox_dispatch
from core.actors import Actor
from core.models import AuditEvent
from tests.ambassadors.test_webhooks import an_event, receiver  # noqa: F401 (a fixture)
from tests.conftest import bearer
from tests.factories import ProgramFactory

PUBLIC = "https://93.184.215.14/hook"


def base(program) -> str:
    return f"/api/v1/programs/{program.slug}/webhooks/"


@pytest.mark.django_db
def test_a_manage_key_creates_an_endpoint_and_gets_its_secret_once_audited(api, program, manage_key):
    api.credentials(**bearer(manage_key))
    response = api.post(
        base(program), {"url": PUBLIC, "event_types": ["contest.ended", "reward.unlocked"], "description": "CRM"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["is_active"] is True
    assert body["event_types"] == ["reward.unlocked", "contest.ended"]  # in the documented order
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert endpoint.secret == body["secret"]
    event = AuditEvent.objects.get(action="webhook_endpoint.created")
    assert body["secret"] not in str(event.after)
    assert api.get(base(program)).json()["results"][0]["id"] == endpoint.pk
    assert api.get(f"{base(program)}{endpoint.pk}/").json()["url"] == PUBLIC


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1/hook", "event_types": ["reward.unlocked"]}, "url"),
        ({"url": "http://[::1]/hook", "event_types": ["reward.unlocked"]}, "url"),
        ({"url": "ftp://93.184.215.14/hook", "event_types": ["reward.unlocked"]}, "url"),
        ({"url": PUBLIC, "event_types": ["signup.created"]}, "event_types"),
        ({"url": PUBLIC, "event_types": []}, "event_types"),
        ({"url": PUBLIC}, "event_types"),
    ],
)
@pytest.mark.django_db
def test_a_bad_endpoint_is_refused_with_the_field(api, program, manage_key, body, field, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    api.credentials(**bearer(manage_key))
    response = api.post(base(program), body, format="json")
    assert response.status_code == 400
    assert field in str(response.json())
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_patch_changes_disables_and_enables_and_refuses_a_private_url(api, program, marketer, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    endpoint = endpoint_create(program=program, actor=Actor.system("t"), url=PUBLIC, event_types=["reward.unlocked"])
    api.force_login(marketer)
    url = f"{base(program)}{endpoint.pk}/"

    assert api.patch(url, {"url": "http://169.254.169.254/"}, format="json").status_code == 400
    off = api.patch(url, {"is_active": False}, format="json").json()
    assert off["is_active"] is False and off["disabled_reason"]
    on = api.patch(url, {"is_active": True, "event_types": ["contest.ended"]}, format="json").json()
    assert (on["is_active"], on["disabled_reason"], on["event_types"]) == (True, "", ["contest.ended"])
    assert api.delete(url).status_code == 204
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_an_endpoint_of_another_program_is_not_found(api, program, manage_key):
    other = ProgramFactory(slug="elsewhere")
    endpoint = endpoint_create(program=other, actor=Actor.system("t"), url=PUBLIC, event_types=["reward.unlocked"])
    api.credentials(**bearer(manage_key))
    assert api.get(f"{base(program)}{endpoint.pk}/").status_code == 404
    assert api.get(f"{base(program)}{endpoint.pk}/deliveries/").status_code == 404


@pytest.mark.django_db
def test_deliveries_list_with_their_attempts_in_constant_queries_and_resend(
    api,
    program,
    manage_key,
    receiver,  # noqa: F811
    django_assert_num_queries,  # noqa: F811
):
    endpoint = endpoint_create(
        program=program, actor=Actor.system("t"), url=receiver.url("/fail"), event_types=["reward.unlocked"]
    )
    api.credentials(**bearer(manage_key))
    url = f"{base(program)}{endpoint.pk}/deliveries/"

    def deliveries(count: int) -> None:
        for _ in range(count):
            an_event(program)
        for delivery_id in outbox_dispatch():
            delivery_attempt(delivery_id=delivery_id)

    deliveries(1)
    api.get(url)  # warm: the key's last use is written once in a while, not on each call
    with django_assert_num_queries(5) as few:
        first = api.get(url)
    deliveries(4)
    with django_assert_num_queries(len(few.captured_queries)):
        many = api.get(url)
    assert first.status_code == many.status_code == 200
    page = many.json()
    assert len(page["results"]) == 5 and page["next"] is None
    newest = page["results"][0]
    assert newest["event"] == "reward.unlocked" and newest["status"] == "pending"
    assert newest["payload"]["type"] == "reward.unlocked"
    [attempt] = newest["attempt_log"]
    assert attempt["status_code"] == 500 and attempt["response_excerpt"].startswith("no no")

    resent = api.post(f"{url}{newest['id']}/resend")
    assert resent.status_code == 202
    assert (resent.json()["status"], resent.json()["attempts"]) == ("pending", 0)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    assert api.post(f"{url}{newest['id']}/resend").status_code == 409
    assert api.post(f"{url}999999/resend").status_code == 404
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 5
