"""The Django admin changes programs, tiers, API keys and ambassadors through the services, never straight
through the ORM: the same checks as the API, and an audit event naming the admin, with before and after.
Driven through the admin's real HTTP views, signed in as a superuser."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ambassadors.models import Ambassador, ApiKey, Program, ProgramCounters
from ambassadors.services import api_key_create
from core.actors import Actor
from core.models import AuditEvent
from rewards.models import RewardTier
from tests.factories import ProgramFactory, UserFactory
from tests.rewards.conftest import voucher_tier

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def program_form(program: Program | None = None, **fields: Any) -> dict[str, Any]:
    data = {
        "slug": "spring-sale", "name": "Spring Sale", "description": "", "destination_url": "https://shop.example.com/",
        "allowed_redirect_hosts": '["shop.example.com"]', "attribution_window_days": 30,
        "attribution_model": "last_click", "hold_period_days": 14, "currency": "EUR", "base_price": "20.00",
        "floor_price": "10.00", "velocity_limit": 5, "status": "open", "share_message": "",
        # The admin form shows the label thresholds' and the click retention's defaults and sends them back.
        "influencer_min_clicks": 50, "influencer_max_rate": "2.00", "ambassador_min_qualified": 3,
        "ambassador_min_rate": "10.00", "click_retention_months": 13,
    }  # fmt: skip
    if program is not None:
        data.update(slug=program.slug, name=program.name, destination_url=program.destination_url)
    data.update(fields)
    return data


def only_event(action: str) -> AuditEvent:
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, [e.action for e in AuditEvent.objects.all()]
    return events[0]


# --- Programs ----------------------------------------------------------------------------------------


def test_adding_a_program_in_the_admin_goes_through_the_service_and_is_audited(root):
    response = root.post("/admin/ambassadors/program/add/", program_form())

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    program = Program.objects.get(slug="spring-sale")
    assert ProgramCounters.objects.filter(program=program).exists()
    event = only_event("program.created")
    assert (event.object_type, event.object_id, event.program_id) == ("program", str(program.pk), program.pk)
    assert (event.actor_type, event.actor_label) == ("user", "root")
    assert event.before is None
    assert event.after["name"] == "Spring Sale" and event.after["base_price"] == "20.00"


def test_changing_a_program_in_the_admin_is_audited_with_before_and_after(root, program):
    form = program_form(program, name="Renamed", hold_period_days=7)

    response = root.post(f"/admin/ambassadors/program/{program.pk}/change/", form)

    assert response.status_code == 302
    program.refresh_from_db()
    assert (program.name, program.hold_period_days) == ("Renamed", 7)
    event = only_event("program.updated")
    assert (event.before["name"], event.after["name"]) == ("The Book Launch", "Renamed")
    assert (event.before["hold_period_days"], event.after["hold_period_days"]) == (14, 7)
    assert event.actor_label == "root"


def test_a_program_name_with_a_line_break_is_a_form_error_in_the_admin(root, program):
    response = root.post(f"/admin/ambassadors/program/{program.pk}/change/", program_form(program, name="A\r\nB"))

    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors
    program.refresh_from_db()
    assert program.name == "The Book Launch"
    assert not AuditEvent.objects.filter(action="program.updated").exists()


def test_a_currency_with_three_decimal_places_is_a_form_error_in_the_admin(root):
    response = root.post("/admin/ambassadors/program/add/", program_form(currency="KWD"))

    assert response.status_code == 200
    assert "currency" in response.context["adminform"].form.errors


# --- Tiers -------------------------------------------------------------------------------------------


def tier_form(program: Program, **fields: Any) -> dict[str, Any]:
    data = {
        "program": program.pk, "name": "3 friends", "kind": "individual", "metric": "qualified_signups",
        "threshold": "3", "repeat_every": "", "reward_type": "percent_voucher", "reward_value": "20",
        "reward_text": "", "referee_reward_type": "", "referee_reward_value": "", "step": "", "drop_type": "",
        "drop_value": "", "is_active": "on",
    }  # fmt: skip
    data.update(fields)
    return data


def test_adding_a_tier_in_the_admin_is_audited_and_recalculates(root, program, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = root.post("/admin/rewards/rewardtier/add/", tier_form(program))

    assert response.status_code == 302
    tier = RewardTier.objects.get()
    event = only_event("tier.created")
    assert (event.object_id, event.program_id, event.actor_label) == (str(tier.pk), program.pk, "root")
    assert event.after["threshold"] == "3.00"
    assert any("recalculation_enqueue" in c.__qualname__ for c in callbacks)


def test_changing_a_tier_in_the_admin_is_audited_with_before_and_after(root, program):
    tier = voucher_tier(program, threshold=3)

    response = root.post(f"/admin/rewards/rewardtier/{tier.pk}/change/", tier_form(program, threshold="5"))

    assert response.status_code == 302
    tier.refresh_from_db()
    assert tier.threshold == Decimal("5")
    event = only_event("tier.updated")
    assert (event.before["threshold"], event.after["threshold"]) == ("3.00", "5.00")
    assert event.actor_label == "root"


def test_a_tier_cannot_be_moved_to_another_program_in_the_admin(root, program):
    tier = voucher_tier(program, threshold=3)
    other = ProgramFactory(slug="other")

    root.post(f"/admin/rewards/rewardtier/{tier.pk}/change/", tier_form(other, threshold="3"))

    tier.refresh_from_db()
    assert tier.program == program


def test_a_tier_name_with_a_line_break_is_a_form_error_in_the_admin(root, program):
    response = root.post("/admin/rewards/rewardtier/add/", tier_form(program, name="One\r\nfriend"))

    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors
    assert not RewardTier.objects.exists()


# --- API keys ----------------------------------------------------------------------------------------


@pytest.fixture
def key(program) -> ApiKey:
    return api_key_create(program=program, scopes=["track"], name="shop", actor=Actor.system("test"))[0]


def key_form(key: ApiKey, **fields: Any) -> dict[str, Any]:
    return {"name": key.name, **fields}


def test_creating_a_key_is_audited_without_the_key_or_its_hash(program):
    key, raw = api_key_create(program=program, scopes=["read", "track"], name="shop", actor=Actor.system("cli"))

    event = only_event("api_key.created")
    assert (event.object_type, event.object_id, event.program_id) == ("api_key", str(key.pk), program.pk)
    assert event.after == {"prefix": key.prefix, "name": "shop", "scopes": ["read", "track"], "revoked_at": None}
    assert raw not in str(event.after) and key.key_hash not in str(event.after)


def test_the_create_api_key_command_is_audited(program, capsys):
    from django.core.management import call_command

    call_command("create_api_key", program.slug, "--scopes", "track,read")

    event = only_event("api_key.created")
    assert (event.actor_type, event.actor_label) == ("system", "manage.py create_api_key")
    assert capsys.readouterr().out.strip() not in str(event.after)


def test_revoking_a_key_in_the_admin_goes_through_the_service_and_is_audited(root, key):
    response = root.post(f"/admin/ambassadors/apikey/{key.pk}/change/", key_form(key, revoke="on"))

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    event = only_event("api_key.revoked")
    assert (event.before["revoked_at"], event.after["revoked_at"]) == (None, key.revoked_at.isoformat())
    assert event.actor_label == "root"


def test_the_revoke_action_revokes_the_selected_keys_once(root, key, program):
    other, _ = api_key_create(program=program, scopes=["read"], actor=Actor.system("test"))

    root.post("/admin/ambassadors/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk, other.pk]})
    root.post("/admin/ambassadors/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]})

    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 0
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 2


def test_renaming_a_key_in_the_admin_is_audited_and_cannot_move_it(root, key, program):
    other = ProgramFactory(slug="other")

    response = root.post(f"/admin/ambassadors/apikey/{key.pk}/change/", key_form(key, name="till", program=other.pk))

    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.program, key.revoked_at) == ("till", program, None)
    event = only_event("api_key.updated")
    assert (event.before["name"], event.after["name"]) == ("shop", "till")


# --- Ambassadors -------------------------------------------------------------------------------------


def ambassador_form(ambassador: Ambassador, **fields: Any) -> dict[str, Any]:
    # Every field the change form ever had: read-only ones are ignored, as a browser would not send them.
    data = {"display_name": ambassador.display_name, "is_active": "on" if ambassador.is_active else "",
            "program": ambassador.program_id, "user": ambassador.user_id, "email": ambassador.email}  # fmt: skip
    data.update(fields)
    return {k: v for k, v in data.items() if v != ""}


def test_an_ambassador_cannot_be_moved_to_another_program_in_the_admin(root, ambassador, program):
    other = ProgramFactory(slug="other")

    root.post(f"/admin/ambassadors/ambassador/{ambassador.pk}/change/",
              ambassador_form(ambassador, program=other.pk))  # fmt: skip

    ambassador.refresh_from_db()
    assert ambassador.program == program


def test_renaming_an_ambassador_in_the_admin_is_audited(root, ambassador):
    response = root.post(f"/admin/ambassadors/ambassador/{ambassador.pk}/change/",
                         ambassador_form(ambassador, display_name="Ana B."))  # fmt: skip

    assert response.status_code == 302
    ambassador.refresh_from_db()
    assert ambassador.display_name == "Ana B."
    event = only_event("ambassador.updated")
    assert (event.before["display_name"], event.after["display_name"]) == ("Ana", "Ana B.")


def test_deactivating_an_ambassador_in_the_admin_is_audited_and_recalculates(
    root, ambassador, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = root.post(f"/admin/ambassadors/ambassador/{ambassador.pk}/change/",
                             ambassador_form(ambassador, is_active=""))  # fmt: skip

    assert response.status_code == 302
    ambassador.refresh_from_db()
    assert ambassador.is_active is False
    event = only_event("ambassador.updated")
    assert (event.before["is_active"], event.after["is_active"]) == (True, False)
    assert any("recalculation_enqueue" in c.__qualname__ for c in callbacks)


def test_the_service_refuses_to_move_an_ambassador(ambassador):
    from ambassadors.services import ambassador_update
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        ambassador_update(ambassador=ambassador, actor=Actor.system("test"), program=ProgramFactory(slug="x"))

    assert refused.value.field == "program"
