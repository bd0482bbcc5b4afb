"""The staff console's webhooks pages in a real browser: a marketer adds an endpoint with the event
checkboxes, sees its secret and a delivery with its attempt, resends it; each page passes axe-core with no
console error or CSP violation (the `page` fixture of tests/pages)."""

from __future__ import annotations

from typing import Any

import pytest

from ambassadors.models import WebhookEndpoint
from ambassadors.webhooks import delivery_attempt, outbox_dispatch
from tests.ambassadors.test_webhooks import an_event, receiver  # noqa: F401 (a fixture)
from tests.factories import ProgramFactory, staff_user
from tests.pages.conftest import assert_accessible, browser, page, screenshot  # noqa: F401 (fixtures)
from tests.pages.test_staff_console import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_marketer_adds_an_endpoint_sees_its_deliveries_and_resends_one(
    live_server: Any,
    browser: Any,  # noqa: F811
    page: Any,  # noqa: F811
    receiver: Any,  # noqa: F811
) -> None:
    program = ProgramFactory(slug="spring-box", name="Spring Box")
    sign_in(browser, live_server, staff_user("marketer", group="marketing"))
    page.goto(f"{live_server.url}/staff/p/{program.slug}/")
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_role("heading", name="Webhooks of Spring Box", level=1).wait_for()
    assert_accessible(page)

    page.get_by_label("URL:").fill(receiver.url("/fail"))
    page.get_by_label("reward.unlocked").check()
    page.get_by_role("button", name="Add the endpoint").click()

    endpoint = WebhookEndpoint.objects.get()
    page.get_by_role("heading", name=f"Webhook endpoint {endpoint.url}", level=1).wait_for()
    assert endpoint.secret in page.content()
    assert_accessible(page)

    an_event(program)
    for delivery_id in outbox_dispatch():
        delivery_attempt(delivery_id=delivery_id)
    page.reload()
    table = page.get_by_role("table", name="Recent deliveries")
    assert "500" in table.inner_text()
    assert_accessible(page)
    screenshot(page, "staff-webhook")

    page.get_by_role("button", name="Resend").click()
    assert "is sent again" in page.get_by_role("status").inner_text()
