"""Vouchers at checkout: the shop checks a code (valid? what does it give, to whom?) and redeems it for an
order, at most once, idempotently on the order."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ambassadors.auth import ApiKeyRateThrottle, KeyOrAuthenticated, require
from ambassadors.models import Program
from ambassadors.selectors import program_by_slug
from config.api import json_object
from config.schema import access
from core import clock, policies
from core.actors import Actor
from core.errors import NotFound
from rewards.models import RewardGrant
from rewards.services.grants import (
    CASH_NOT_REDEEMABLE,
    grant_is_cash,
    grant_redeem_for_order,
    grant_revocation_reason,
    voucher_key,
)

UNKNOWN = "No voucher with this code in this program."
REDEEMABLE = (RewardGrant.Status.UNLOCKED, RewardGrant.Status.ISSUED)


class VoucherRewardOutput(serializers.Serializer):
    tier = serializers.CharField(help_text="The name of the reward tier that unlocked the voucher.")
    type = serializers.ChoiceField(
        choices=["percent_voucher", "fixed_voucher", "account_credit", "custom"],
        help_text="percent_voucher: `value` percent off; fixed_voucher and account_credit: `value` in `currency`; "
        "custom: described by `text`.",
    )
    value = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True, coerce_to_string=True)
    text = serializers.CharField(allow_blank=True)
    currency = serializers.CharField()


class VoucherRecipientOutput(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["ambassador", "referee"],
        help_text="ambassador: a reward the ambassador earned; referee: a welcome voucher of a referred subscriber.",
    )
    ambassador_code = serializers.CharField(allow_null=True)
    display_name = serializers.CharField(allow_blank=True, allow_null=True)
    signup_id = serializers.IntegerField(allow_null=True, help_text="The referee's signup (referee vouchers).")
    external_id = serializers.CharField(
        allow_blank=True, allow_null=True, help_text="The shop's own id of the referee, if it sent one."
    )


class VoucherOutput(serializers.Serializer):
    code = serializers.CharField()
    valid = serializers.BooleanField(help_text="Whether the voucher can be redeemed now.")
    status = serializers.ChoiceField(
        choices=["unlocked", "issued", "redeemed", "revoked", "expired"],
        help_text="unlocked or issued: it can be redeemed; redeemed: used (see `order_reference`); revoked: "
        "withdrawn (see `revoked_reason`); expired: never used, and past `expires_at`.",
    )
    reward = VoucherRewardOutput()
    recipient = VoucherRecipientOutput()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When it stops being redeemable (the tier's validity after it was unlocked); null: never.",
    )
    redeemed_at = serializers.DateTimeField(allow_null=True)
    order_reference = serializers.CharField(
        allow_null=True, help_text="The order it was redeemed for (empty when staff marked it redeemed)."
    )
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_reason = serializers.CharField(allow_null=True, help_text="Why it was revoked, when known.")


class RedeemInput(serializers.Serializer):
    order_reference = serializers.CharField(
        max_length=128, help_text="The shop's order the voucher pays for: one line of text, 1 to 128 characters."
    )


ERROR = OpenApiResponse(
    response={"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]},
    description='`{"detail": "<message>"}`',
)
INVALID = OpenApiResponse(
    response={
        "type": "object",
        "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    },
    description='Bad input: `{"<field>": ["<message>", ...]}`, or `{"detail": "<message>"}` for a body that is '
    "not a JSON object.",
)

_EXAMPLE_VOUCHER = {
    "code": "7KQ2-M9XH-C4TR-PW3N",
    "valid": True,
    "status": "unlocked",
    "reward": {"tier": "Three friends", "type": "percent_voucher", "value": "20.00", "text": "", "currency": "EUR"},
    "recipient": {
        "kind": "ambassador",
        "ambassador_code": "ANA7K2",
        "display_name": "Ana",
        "signup_id": None,
        "external_id": None,
    },
    "created_at": "2026-12-01T09:30:00Z",
    "expires_at": "2026-12-31T09:30:00Z",
    "redeemed_at": None,
    "order_reference": None,
    "revoked_at": None,
    "revoked_reason": None,
}
_EXAMPLE_REDEEMED = {
    **_EXAMPLE_VOUCHER,
    "valid": False,
    "status": "redeemed",
    "redeemed_at": "2026-12-04T14:02:11Z",
    "order_reference": "order-1001",
}
_EXAMPLE_EXPIRED = {**_EXAMPLE_VOUCHER, "valid": False, "status": "expired"}
EXAMPLES = [
    OpenApiExample("Valid voucher", value=_EXAMPLE_VOUCHER, response_only=True, status_codes=["200"]),
    OpenApiExample("Redeemed voucher", value=_EXAMPLE_REDEEMED, response_only=True, status_codes=["200"]),
    OpenApiExample("Expired voucher", value=_EXAMPLE_EXPIRED, response_only=True, status_codes=["200"]),
    OpenApiExample("Unknown voucher", value={"detail": UNKNOWN}, response_only=True, status_codes=["404"]),
]
REDEEM_EXAMPLES = [
    OpenApiExample("Redeem for an order", value={"order_reference": "order-1001"}, request_only=True),
    OpenApiExample("Redeemed", value=_EXAMPLE_REDEEMED, response_only=True, status_codes=["200"]),
    OpenApiExample(
        "Redeemed by another order",
        value={
            "detail": "This voucher was already redeemed on 2026-12-04T14:02:11+00:00 by another order "
            "(order-1001); a voucher is redeemed once."
        },
        response_only=True,
        status_codes=["409"],
    ),
    OpenApiExample(
        "Revoked",
        value={
            "detail": "This voucher was revoked on 2026-12-03T08:00:00+00:00 and can no longer be redeemed. "
            "Reason: The referee's signup no longer qualifies."
        },
        response_only=True,
        status_codes=["409"],
    ),
    OpenApiExample(
        "Expired",
        value={"detail": "This voucher expired on 2026-12-31T09:30:00+00:00."},
        response_only=True,
        status_codes=["409"],
    ),
    OpenApiExample("Cash reward", value={"detail": CASH_NOT_REDEEMABLE}, response_only=True, status_codes=["409"]),
    OpenApiExample(
        "Invalid order reference",
        value={"order_reference": ["Ensure this field has no more than 128 characters."]},
        response_only=True,
        status_codes=["400"],
    ),
]


def _voucher(program: Program, code: str, *, cash: bool = False) -> RewardGrant:
    """The program's grant with this voucher code (trimmed, any case), or 404: an unknown code and another
    program's voucher answer alike. A cash reward's code is no voucher: 404 as well, unless `cash` (redeeming
    it is refused by grant_redeem_for_order with its own 409)."""
    key = voucher_key(code)
    grant = None
    if key is not None:
        grant = (
            RewardGrant.objects.filter(tier__program=program, voucher_code=key)
            .select_related("tier__program", "ambassador", "referee_signup")
            .first()
        )
    if grant is None or (not cash and grant_is_cash(grant)):
        raise NotFound(UNKNOWN)
    return grant


def voucher_data(grant: RewardGrant) -> dict[str, Any]:
    tier = grant.tier
    referee = grant.referee_signup
    if grant.ambassador is not None:
        reward_type, value, text = tier.reward_type, tier.reward_value, tier.reward_text
        recipient: dict[str, Any] = {
            "kind": "ambassador",
            "ambassador_code": grant.ambassador.code,
            "display_name": grant.ambassador.display_name,
            "signup_id": None,
            "external_id": None,
        }
    else:
        # A referee's welcome voucher: the shop's own id of them, never their e-mail.
        reward_type, value, text = tier.referee_reward_type, tier.referee_reward_value, ""
        recipient = {
            "kind": "referee",
            "ambassador_code": None,
            "display_name": None,
            "signup_id": referee.pk if referee else None,
            "external_id": referee.external_id if referee else None,
        }
    revoked = grant.status == RewardGrant.Status.REVOKED
    # Expired by the clock as it reads now, never a stored status: exact to the second, no task to run.
    expired = grant.is_expired_at(clock.now())
    return {
        "code": grant.voucher_code,
        "valid": grant.status in REDEEMABLE and not expired,
        "status": "expired" if expired else grant.status,
        "reward": {
            "tier": tier.name,
            "type": reward_type or "custom",
            "value": value,
            "text": text,
            "currency": tier.program.currency,
        },
        "recipient": recipient,
        "created_at": grant.created_at,
        "expires_at": grant.expires_at,
        "redeemed_at": grant.redeemed_at if grant.status == RewardGrant.Status.REDEEMED else None,
        "order_reference": grant.redeemed_order if grant.status == RewardGrant.Status.REDEEMED else None,
        "revoked_at": grant.revoked_at if revoked else None,
        "revoked_reason": (grant_revocation_reason(grant) or None) if revoked else None,
    }


class VoucherApi(APIView):
    """One voucher, looked up by its code at checkout."""

    permission_classes = [KeyOrAuthenticated]
    throttle_classes = [ApiKeyRateThrottle]

    @access(scopes=("track", "read", "manage"), roles=("marketing",))
    @extend_schema(
        responses={200: VoucherOutput, 404: ERROR},
        examples=EXAMPLES,
        description=(
            "Whether the voucher is valid (`valid`: it can be redeemed now), what it gives, to whom, and until "
            "when (`expires_at`; past it, `status` is `expired`). The code is matched ignoring case and "
            "surrounding spaces. An unknown code, another program's voucher, or the code of a cash reward (paid to "
            "the ambassador's bank account, never a voucher) answers 404."
        ),
    )
    def get(self, request: Request, slug: str, voucher_code: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_check_voucher(policies.Principal.from_request(request), program))
        return Response(VoucherOutput(voucher_data(_voucher(program, voucher_code))).data)


class VoucherRedeemApi(APIView):
    """The shop redeems a voucher for an order."""

    permission_classes = [KeyOrAuthenticated]
    throttle_classes = [ApiKeyRateThrottle]

    @access(scopes=("track", "manage"), roles=("marketing",))
    @extend_schema(
        request=RedeemInput,
        responses={200: VoucherOutput, 400: INVALID, 404: ERROR, 409: ERROR},
        examples=REDEEM_EXAMPLES,
        description=(
            "Redeem the voucher for `order_reference`. Idempotent: the same order again answers 200 with the "
            "same redemption. A voucher is redeemed at most once, even under concurrent calls: another order "
            "answers 409 saying when and by which order it was redeemed; a revoked voucher answers 409 with "
            "its reason, and an expired one 409 with its expiry date (the order that redeemed it before it "
            "expired still answers 200). The code of a cash reward is never redeemed: 409."
        ),
    )
    def post(self, request: Request, slug: str, voucher_code: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_redeem_voucher(policies.Principal.from_request(request), program))
        grant = _voucher(program, voucher_code, cash=True)
        serializer = RedeemInput(data=json_object(request))
        serializer.is_valid(raise_exception=True)
        grant, _ = grant_redeem_for_order(
            grant=grant, order_reference=serializer.validated_data["order_reference"], actor=Actor.for_request(request)
        )
        grant = _voucher(program, grant.voucher_code)  # as the GET shows it, with its relations
        return Response(VoucherOutput(voucher_data(grant)).data)
