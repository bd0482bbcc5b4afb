"""A revoked, expired or replaced voucher's Stripe promotion code is set inactive once, however often the task
runs or Stripe fails, through the local stand-in for the Stripe API (never the network)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from commerce.models import StripeAccount, StripePromotionCode
from commerce.stripe_promotions import promotion_code_deactivate, promotion_codes_sweep, promotion_codes_to_deactivate
from commerce.tasks import stripe_promotion_code_deactivate
from core import clock
from core.actors import Actor
from core.models import AuditEvent
from referrals.services import signup_record
from rewards.models import RewardGrant, RewardTier
from rewards.services import tier_create
from rewards.services.grants import grant_reinstate, grant_withdraw
from rewards.signals import grant_revoked
from tests.commerce.stripe_support import API_KEY, SECRET, StripeStub, stripe_stub

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def _with_promotion_code_updates(stub: StripeStub) -> None:
    """Teach the stand-in POST /v1/promotion_codes/<id> (an update) the way Stripe answers it, idempotency
    keys and injected failures included; everything else is answered as before."""
    answer = stub.answer

    def answer_with_updates(method: str, path: str, headers: Any, body: str) -> tuple[int, dict[str, Any]]:
        if not path.startswith("/v1/promotion_codes/"):
            return answer(method, path, headers, body)
        from urllib.parse import parse_qsl

        params = dict(parse_qsl(body, keep_blank_values=True))
        key = headers.get("Idempotency-Key") or ""
        with stub.lock:
            stub.requests.append({"method": method, "path": path, "params": params, "idempotency_key": key,
                                  "authorization": headers.get("Authorization", "")})  # fmt: skip
            if stub.fail.get("update", 0) > 0:
                stub.fail["update"] -= 1
                return 500, {"error": {"type": "api_error", "message": "Stripe is having a bad day."}}
            if key and key in stub.answers:
                return stub.answers[key]
            code_id = path.rsplit("/", 1)[1]
            result = (200, {"id": code_id, "object": "promotion_code", "active": params.get("active") != "false"})
            if key:
                stub.answers[key] = result
            return result

    stub.answer = answer_with_updates  # type: ignore[method-assign]


@pytest.fixture
def stub(settings):
    with stripe_stub() as stub:
        _with_promotion_code_updates(stub)
        settings.STRIPE_API_BASE = stub.url
        yield stub


@pytest.fixture
def as_a_worker(monkeypatch):
    """Tasks run eagerly but fail as in a worker (their retries stay their own)."""
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_eager_propagates", False)


def _updates(stub: StripeStub) -> list[dict[str, Any]]:
    return [r for r in stub.requests if r["path"].startswith("/v1/promotion_codes/")]


def _granted(program, ambassador, capture, *, valid_days: int | None = None) -> RewardGrant:
    """Ana's tier gives a 20% voucher at one friend; her friend subscribes; the code is made in Stripe."""
    StripeAccount.objects.create(program=program, webhook_secret=SECRET, api_key=API_KEY, promotion_codes_enabled=True)
    tier = tier_create(program=program, name="One friend", kind=RewardTier.Kind.INDIVIDUAL,
                       metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal("1"),
                       reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("20"),
                       actor=SYSTEM)  # fmt: skip
    if valid_days is not None:
        RewardTier.objects.filter(pk=tier.pk).update(voucher_valid_days=valid_days)
    with capture(execute=True):
        signup_record(program=program, email="friend@example.org", referral_code=ambassador.code, actor=SYSTEM)
    grant = RewardGrant.objects.get(tier__program=program)
    assert StripePromotionCode.objects.get(grant=grant).promotion_code_id.startswith("promo_")
    return grant


def _revoke(grant: RewardGrant, capture) -> None:
    with capture(execute=True), transaction.atomic():
        assert grant_withdraw(grant, reason="The friend's purchase was refunded.") == "revoked"


def test_a_revoked_signal_deactivates_the_code_once(program, ambassador, stub, django_capture_on_commit_callbacks):
    grant = _granted(program, ambassador, django_capture_on_commit_callbacks)
    RewardGrant.objects.filter(pk=grant.pk).update(status=RewardGrant.Status.REVOKED, revoked_at=clock.now())

    grant_revoked.send_robust(sender=RewardGrant, grant_id=grant.pk)

    (update,) = _updates(stub)
    row = StripePromotionCode.objects.get(grant=grant)
    assert update["path"] == f"/v1/promotion_codes/{row.promotion_code_id}"
    assert update["params"] == {"active": "false"}
    assert update["idempotency_key"] == f"parrain-grant-{grant.pk}-{grant.voucher_code}-revoke"
    assert row.deactivated_at is not None and row.deactivation_attempts == 1
    event = AuditEvent.objects.get(action="reward.promotion_code_deactivated")
    assert event.after == {"stripe_promotion_code": row.promotion_code_id, "active": False}
    assert event.reason == "The grant was revoked."


def test_revoking_a_grant_deactivates_its_promotion_code(program, ambassador, stub, django_capture_on_commit_callbacks):
    # Needs rewards.services.grants to send grant_revoked after a revocation commits.
    grant = _granted(program, ambassador, django_capture_on_commit_callbacks)

    _revoke(grant, django_capture_on_commit_callbacks)

    assert len(_updates(stub)) == 1
    assert StripePromotionCode.objects.get(grant=grant).deactivated_at is not None


def test_a_redelivered_task_deactivates_once(program, ambassador, stub, django_capture_on_commit_callbacks):
    grant = _granted(program, ambassador, django_capture_on_commit_callbacks)
    RewardGrant.objects.filter(pk=grant.pk).update(status=RewardGrant.Status.REVOKED, revoked_at=clock.now())

    first = stripe_promotion_code_deactivate.delay(grant.pk).get()
    again = stripe_promotion_code_deactivate.delay(grant.pk).get()
    once_more = promotion_code_deactivate(grant_id=grant.pk)

    assert (first, again, once_more) == ("deactivated", "nothing to deactivate", "nothing to deactivate")
    assert len(_updates(stub)) == 1
    assert AuditEvent.objects.filter(action="reward.promotion_code_deactivated").count() == 1


def test_a_delivery_racing_the_first_sends_the_same_request_and_records_once(
    program, ambassador, stub, django_capture_on_commit_callbacks
):
    grant = _granted(program, ambassador, django_capture_on_commit_callbacks)
    RewardGrant.objects.filter(pk=grant.pk).update(status=RewardGrant.Status.REVOKED, revoked_at=clock.now())
    promotion_code_deactivate(grant_id=grant.pk)
    # The second delivery read the row before the first recorded it: it asks Stripe again.
    StripePromotionCode.objects.filter(grant=grant).update(deactivated_at=None)
    promotion_code_deactivate(grant_id=grant.pk)

    first, second = _updates(stub)
    assert first["idempotency_key"] == second["idempotency_key"]  # Stripe answers it once


def test_stripe_failing_twice_then_answering_ends_deactivated(
    program, ambassador, stub, django_capture_on_commit_callbacks, as_a_worker
):
    grant = _granted(program, ambassador, django_capture_on_commit_callbacks)
    RewardGrant.objects.filter(pk=grant.pk).update(status=RewardGrant.Status.REVOKED, revoked_at=clock.now())
    stub.fail["update"] = 2

    stripe_promotion_code_deactivate.delay(grant.pk)

    attempts = _updates(stub)
    assert len(attempts) == 3  # two 500s, then the task's retry succeeds
    assert len({a["idempotency_key"] for a in attempts}) == 1
    row = StripePromotionCode.objects.get(grant=grant)
    assert row.deactivated_at is not None
    assert (row.deactivation_attempts, row.last_error) == (3, "")


def test_a_failing_stripe_never_blocks_the_revocation_and_the_sweep_repairs_it(
    program, ambassador, stub, django_capture_on_commit_callbacks, as_a_worker
):
    grant = _granted(program, ambassador, django_capture_on_commit_callbacks)
    stub.fail["update"] = 100
    RewardGrant.objects.filter(pk=grant.pk).update(status=RewardGrant.Status.REVOKED, revoked_at=clock.now())

    stripe_promotion_code_deactivate.delay(grant.pk)

    grant.refresh_from_db()
    assert grant.status == RewardGrant.Status.REVOKED
    row = StripePromotionCode.objects.get(grant=grant)
    assert row.deactivated_at is None and "APIError" in row.last_error
    assert promotion_codes_to_deactivate() == [grant.pk]

    stub.fail.clear()
    assert promotion_codes_sweep() == 1
    row.refresh_from_db()
    assert row.deactivated_at is not None
    assert promotion_codes_to_deactivate() == []


def test_the_sweep_deactivates_a_revoked_grant_whose_message_was_lost(
    program, ambassador, stub, django_capture_on_commit_callbacks
):
    grant = _granted(program, ambassador, django_capture_on_commit_callbacks)
    # Revoked, but no task ever ran (the broker lost it, or it was never sent).
    RewardGrant.objects.filter(pk=grant.pk).update(status=RewardGrant.Status.REVOKED, revoked_at=clock.now())
    assert _updates(stub) == []

    assert promotion_codes_to_deactivate() == [grant.pk]
    assert promotion_codes_sweep() == 1

    assert len(_updates(stub)) == 1
    assert promotion_codes_to_deactivate() == []
    assert promotion_codes_sweep() == 0


def test_an_expired_voucher_is_deactivated_by_the_sweep(
    program, ambassador, stub, django_capture_on_commit_callbacks, time_machine
):
    grant = _granted(program, ambassador, django_capture_on_commit_callbacks, valid_days=30)
    assert grant.expires_at is not None
    assert promotion_codes_to_deactivate() == []  # still valid: nothing to do

    time_machine.move_to(grant.expires_at + timedelta(minutes=1), tick=False)
    assert promotion_codes_sweep() == 1

    (update,) = _updates(stub)
    assert update["params"] == {"active": "false"}
    assert AuditEvent.objects.get(action="reward.promotion_code_deactivated").reason == "The voucher expired."


def test_a_reinstated_grant_deactivates_its_old_code_and_keeps_the_new(
    program, ambassador, stub, django_capture_on_commit_callbacks
):
    grant = _granted(program, ambassador, django_capture_on_commit_callbacks)
    old = StripePromotionCode.objects.get(grant=grant)
    RewardGrant.objects.filter(pk=grant.pk).update(status=RewardGrant.Status.REVOKED, revoked_at=clock.now())
    grant.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        assert grant_reinstate(grant)  # a fresh code: created in Stripe after commit

    assert promotion_codes_sweep() == 1

    old.refresh_from_db()
    new = StripePromotionCode.objects.exclude(pk=old.pk).get(grant=grant)
    assert old.deactivated_at is not None and new.deactivated_at is None
    (update,) = _updates(stub)
    assert update["path"] == f"/v1/promotion_codes/{old.promotion_code_id}"


def test_a_redeemed_or_live_voucher_is_left_alone(program, ambassador, stub, django_capture_on_commit_callbacks):
    grant = _granted(program, ambassador, django_capture_on_commit_callbacks)

    assert promotion_code_deactivate(grant_id=grant.pk) == "nothing to deactivate"
    RewardGrant.objects.filter(pk=grant.pk).update(status=RewardGrant.Status.REDEEMED, redeemed_at=clock.now())
    assert promotion_code_deactivate(grant_id=grant.pk) == "nothing to deactivate"
    assert promotion_codes_to_deactivate() == []
    assert _updates(stub) == []
