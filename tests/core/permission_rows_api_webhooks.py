"""Rows of the permission table (tests/core/test_permission_table.py) for one part of the site.

Same shape as TABLE there: (kind, url name, method) -> the status for each role, in the order of ROLES
("anon", "owner", "other_amb", "marketer", "auditor", "superuser", "track", "read", "manage", "other_key");
keys are anonymous to pages. BODIES gives the body sent for a (url name, method) that needs one.

Webhooks (ambassadors/api_webhooks.py): marketing staff or a `manage` key of the program
(core.policies.may_manage_webhooks).
"""

from typing import Any

from ambassadors.models import WebhookDelivery
from ambassadors.webhooks import endpoint_create
from core import clock
from core.actors import Actor
from core.models import OutboxMessage

# A public address written as an IP: saving it resolves nothing over the network.
URL = "https://93.184.215.14/parrain-hook"

# fmt: off
ROWS: dict[tuple[str, str, str], tuple[int, ...]] = {
    #                                                     anon own  oth  mkt  aud  su   trk  rd   mng  other
    ("api", "api-webhooks", "GET"):                      (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
    ("api", "api-webhooks", "POST"):                     (401, 403, 403, 201, 403, 201, 403, 403, 201, 403),
    ("api", "api-webhook", "GET"):                       (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
    ("api", "api-webhook", "PATCH"):                     (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
    ("api", "api-webhook", "DELETE"):                    (401, 403, 403, 204, 403, 204, 403, 403, 204, 403),
    ("api", "api-webhook-deliveries", "GET"):            (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
    ("api", "api-webhook-delivery-resend", "POST"):      (401, 403, 403, 202, 403, 202, 403, 403, 202, 403),
}
# fmt: on
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("api-webhooks", "POST"): {"url": URL, "event_types": ["reward.unlocked", "signup.attributed"]},
    ("api-webhook", "PATCH"): {"description": "The shop's CRM"},
}


def scene_kwargs(scene: dict[str, Any]) -> dict[str, Any]:
    """An endpoint of the scene's program, and a delivery of one of its events to it."""
    program = scene["program"]
    endpoint = endpoint_create(program=program, actor=Actor.system("test"), url=URL, event_types=["reward.unlocked"])
    message = OutboxMessage.objects.filter(program_id=program.pk).order_by("id").first()
    assert message is not None, "the scene's signup writes its events to the outbox"
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        message=message,
        event_id=f"msg_{message.pk}",
        status=WebhookDelivery.Status.SUCCEEDED,
        attempts=1,
        last_status_code=200,
        created_at=clock.now(),
    )
    return {"endpoint_id": endpoint.pk, "delivery_id": delivery.pk}
