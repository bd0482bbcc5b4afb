"""Vouchers as Stripe promotion codes: one coupon and one promotion code per voucher, however often the
task runs or fails, through a local stand-in for the Stripe API (never the network)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ambassadors.models import Program
from commerce.models import StripeAccount, StripePromotionCode
from commerce.stripe_promotions import promotion_code_create, promotion_codes_missing, promotion_codes_sweep
from commerce.tasks import stripe_promotion_code_create
from core.actors import Actor
from core.models import AuditEvent
from referrals.services import signup_record
from rewards.models import RewardGrant, RewardTier
from rewards.services import tier_create
from tests.commerce.stripe_support import API_KEY, SECRET, stripe_stub
from tests.factories import ProgramFactory, enroll

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


@pytest.fixture
def stub(settings):
    with stripe_stub() as stub:
        settings.STRIPE_API_BASE = stub.url
        yield stub


@pytest.fixture
def as_a_worker(monkeypatch):
    """Tasks run eagerly but fail as in a worker: a task's error (and its retries) stays its own, instead of
    propagating to the caller as the test settings make it."""
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_eager_propagates", False)


def _connect(program: Program, *, promotion_codes: bool = True) -> StripeAccount:
    return StripeAccount.objects.create(
        program=program, webhook_secret=SECRET, api_key=API_KEY, promotion_codes_enabled=promotion_codes
    )


def _tier(program: Program, reward_type: str = RewardTier.RewardType.PERCENT_VOUCHER, value: str = "20") -> RewardTier:
    return tier_create(program=program, name="One friend", kind=RewardTier.Kind.INDIVIDUAL,
                       metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal("1"),
                       reward_type=reward_type, reward_value=Decimal(value), actor=SYSTEM)  # fmt: skip


def _friend_subscribes(program: Program, code: str, capture) -> RewardGrant:
    """Ana's friend subscribes: the recalculation after commit grants Ana her voucher."""
    with capture(execute=True):
        signup_record(program=program, email="friend@example.org", referral_code=code, actor=SYSTEM)
    return RewardGrant.objects.get(tier__program=program)


def test_a_granted_voucher_becomes_one_coupon_and_one_promotion_code(
    program, ambassador, stub, django_capture_on_commit_callbacks
):
    _connect(program)
    _tier(program)

    grant = _friend_subscribes(program, ambassador.code, django_capture_on_commit_callbacks)

    (coupon,) = stub.paths("/v1/coupons")
    (promotion,) = stub.paths("/v1/promotion_codes")
    assert coupon["params"]["percent_off"] == "20"
    assert (coupon["params"]["duration"], coupon["params"]["max_redemptions"]) == ("once", "1")
    assert coupon["authorization"] == f"Bearer {API_KEY}"
    assert promotion["params"]["code"] == grant.voucher_code
    assert promotion["params"]["promotion[type]"] == "coupon"
    assert promotion["params"]["promotion[coupon]"] == "coupon_1"
    assert str(grant.pk) in coupon["idempotency_key"] and str(grant.pk) in promotion["idempotency_key"]
    row = StripePromotionCode.objects.get(grant=grant)
    assert (row.coupon_id, row.promotion_code_id) == ("coupon_1", "promo_2")
    assert row.completed_at is not None
    grant.refresh_from_db()
    assert grant.status == RewardGrant.Status.UNLOCKED  # Stripe's code changes nothing of the grant
    event = AuditEvent.objects.get(action="reward.promotion_code_created")
    assert event.after == {"stripe_coupon": "coupon_1", "stripe_promotion_code": "promo_2"}


def test_a_redelivered_task_creates_one_code(program, ambassador, stub, django_capture_on_commit_callbacks):
    _connect(program)
    _tier(program)
    grant = _friend_subscribes(program, ambassador.code, django_capture_on_commit_callbacks)

    again = stripe_promotion_code_create.delay(grant.pk).get()
    once_more = promotion_code_create(grant_id=grant.pk)

    assert (again, once_more) == ("exists", "exists")
    assert len(stub.paths("/v1/coupons")) == 1 and len(stub.paths("/v1/promotion_codes")) == 1
    assert StripePromotionCode.objects.filter(grant=grant).count() == 1
    assert AuditEvent.objects.filter(action="reward.promotion_code_created").count() == 1


def test_stripe_failing_three_times_then_answering_ends_with_one_code(
    program, ambassador, stub, django_capture_on_commit_callbacks, as_a_worker
):
    _connect(program)
    _tier(program)
    stub.fail["/v1/promotion_codes"] = 3

    grant = _friend_subscribes(program, ambassador.code, django_capture_on_commit_callbacks)

    attempts = stub.paths("/v1/promotion_codes")
    assert len(attempts) == 4  # three 500s, then the task's retry succeeds
    assert len({a["idempotency_key"] for a in attempts}) == 1
    assert len(stub.paths("/v1/coupons")) == 1  # the coupon was kept, not made again
    row = StripePromotionCode.objects.get(grant=grant)
    assert (row.promotion_code_id, row.attempts, row.last_error) == ("promo_5", 4, "")
    grant.refresh_from_db()
    assert grant.status == RewardGrant.Status.UNLOCKED


def test_a_failing_stripe_never_blocks_the_grant(
    program, ambassador, stub, django_capture_on_commit_callbacks, as_a_worker
):
    _connect(program)
    _tier(program)
    stub.fail["/v1/coupons"] = 100

    grant = _friend_subscribes(program, ambassador.code, django_capture_on_commit_callbacks)

    assert grant.status == RewardGrant.Status.UNLOCKED
    row = StripePromotionCode.objects.get(grant=grant)
    assert row.promotion_code_id == "" and "APIError" in row.last_error
    assert promotion_codes_missing() == [grant.pk]  # the sweep will try again

    stub.fail.clear()
    assert promotion_codes_sweep() == 1
    row.refresh_from_db()
    assert row.promotion_code_id.startswith("promo_")
    assert promotion_codes_missing() == []


def test_a_fixed_amount_voucher_is_an_amount_off_in_stripes_minor_units(db, stub, django_capture_on_commit_callbacks):
    yen = ProgramFactory(slug="tokyo-launch", currency="JPY", base_price=Decimal("2000"), floor_price=Decimal("1000"))
    ana = enroll(yen, "ana@example.com", display_name="Ana")
    _connect(yen)
    _tier(yen, RewardTier.RewardType.FIXED_VOUCHER, "500")

    _friend_subscribes(yen, ana.code, django_capture_on_commit_callbacks)

    (coupon,) = stub.paths("/v1/coupons")
    assert (coupon["params"]["amount_off"], coupon["params"]["currency"]) == ("500", "jpy")
    assert "percent_off" not in coupon["params"]


def test_a_program_without_promotion_codes_calls_nobody(program, ambassador, stub, django_capture_on_commit_callbacks):
    _connect(program, promotion_codes=False)
    _tier(program)

    _friend_subscribes(program, ambassador.code, django_capture_on_commit_callbacks)

    assert stub.requests == []
    assert StripePromotionCode.objects.count() == 0
    assert promotion_codes_missing() == []


def test_a_reward_that_is_no_voucher_calls_nobody(program, ambassador, stub, django_capture_on_commit_callbacks):
    _connect(program)
    tier_create(program=program, name="Signed copy", kind=RewardTier.Kind.INDIVIDUAL,
                metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal("1"),
                reward_type=RewardTier.RewardType.CUSTOM, reward_text="A signed copy", actor=SYSTEM)  # fmt: skip

    _friend_subscribes(program, ambassador.code, django_capture_on_commit_callbacks)

    assert stub.requests == []


def test_a_code_stripe_refuses_is_recorded_and_not_retried(
    program, ambassador, stub, django_capture_on_commit_callbacks
):
    _connect(program)
    _tier(program)

    def refuse(method, path, headers, body):
        stub.requests.append({"path": path})
        return 400, {"error": {"type": "invalid_request_error", "message": "This code is already in use."}}

    stub.answer = refuse  # type: ignore[method-assign]

    grant = _friend_subscribes(program, ambassador.code, django_capture_on_commit_callbacks)

    assert len(stub.requests) == 1
    row = StripePromotionCode.objects.get(grant=grant)
    assert "InvalidRequestError" in row.last_error and row.promotion_code_id == ""


def test_staff_read_the_promotion_codes_in_the_admin_and_change_nothing(program, ambassador, stub, client):
    from django.urls import reverse

    from tests.factories import UserFactory

    _connect(program)
    grant = RewardGrant.objects.create(
        tier=_tier(program),
        ambassador=ambassador,
        occurrence=1,
        voucher_code="TEST-CODE-0001",
        created_at=program.created_at,
    )
    StripePromotionCode.objects.create(grant=grant, program=program, voucher_code=grant.voucher_code,
                                       last_error="InvalidRequestError: This code is already in use.",
                                       created_at=program.created_at)  # fmt: skip
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    listed = client.get(reverse("admin:commerce_stripepromotioncode_changelist"))
    adding = client.get(reverse("admin:commerce_stripepromotioncode_add"))

    assert listed.status_code == 200 and "already in use" in listed.content.decode()
    assert API_KEY not in listed.content.decode()
    assert adding.status_code == 403
