"""JSON API of what the community sees and marketing configures: the live price, the leaderboard, and the
tiers. An ambassador's stats and rewards span apps: they are console read models (console/api.py)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from ambassadors.auth import KeyOrAuthenticated, require
from ambassadors.selectors import program_by_slug
from config.api import json_object
from config.filters import ListApi
from config.schema import access
from core import policies
from core.actors import Actor
from core.errors import NotFound
from rewards.filters import TierFilter
from rewards.models import RewardTier
from rewards.selectors import leaderboard, program_price
from rewards.services import tier_create, tier_update
from rewards.services.tiers import VOUCHER_VALID_DAYS_MAX


class PriceApi(APIView):
    """Public: the collective price and the progress to the next drop."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [AnonRateThrottle]

    @access(public=True)
    @extend_schema(
        responses=inline_serializer(
            "Price",
            {
                "currency": serializers.CharField(),
                "base_price": serializers.CharField(allow_null=True),
                "current_price": serializers.CharField(allow_null=True),
                "floor_price": serializers.CharField(allow_null=True),
                "subscribers": serializers.IntegerField(),
                "step": serializers.IntegerField(allow_null=True),
                "next_drop_at": serializers.IntegerField(allow_null=True),
                "milestones_reached": serializers.IntegerField(),
            },
        )
    )
    def get(self, request: Request, slug: str) -> Response:
        return Response(program_price(program_by_slug(slug)))


class LeaderboardApi(APIView):
    """Ranked display names and qualified referral counts, when the program makes it public."""

    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]

    @access(scopes=("read",), roles=("marketing", "auditors"), public="when the program's leaderboard is public")
    @extend_schema(responses=inline_serializer("Leaderboard", {"results": serializers.ListField()}))
    def get(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_read_leaderboard(policies.Principal.from_request(request), program))
        return Response({"results": leaderboard(program)})


class TierSerializer(serializers.ModelSerializer):
    # The range is checked here for a field message; that only a voucher tier has one is the service's rule.
    voucher_valid_days = serializers.IntegerField(
        min_value=1,
        max_value=VOUCHER_VALID_DAYS_MAX,
        allow_null=True,
        required=False,
        help_text="How many days each voucher of the tier stays valid once unlocked (1 to 3650), for a tier that "
        "gives a percent or fixed-amount voucher (to the ambassador or the friend); null: never expires. A change "
        "applies to vouchers unlocked from then on.",
    )

    reward_currency = serializers.CharField(
        max_length=3,
        allow_blank=True,
        required=False,
        help_text="A cash reward's currency, ISO 4217 (EUR, USD...): required when reward_type is cash, the amount "
        "being reward_value; empty for any other reward.",
    )

    class Meta:
        model = RewardTier
        fields = [
            "id", "name", "kind", "metric", "threshold", "repeat_every", "reward_type", "reward_value",
            "reward_text", "reward_currency", "referee_reward_type", "referee_reward_value", "step", "drop_type",
            "drop_value", "voucher_valid_days", "is_active", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at"]

    def validate_reward_currency(self, value: str) -> str:
        return value.strip().upper()


class TiersApi(ListApi):
    permission_classes = [KeyOrAuthenticated]
    # GET: filtered and paged with cursors, oldest first (config.filters); the queryset is the schema's.
    queryset = RewardTier.objects.none()
    filterset_class = TierFilter
    serializer_class = TierSerializer
    cursor_ordering = ("id",)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(responses=TierSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_manage_program(policies.Principal.from_request(request), program))
        return self.paged(RewardTier.objects.filter(program=program), TierSerializer)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(request=TierSerializer, responses={201: TierSerializer})
    def post(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_manage_program(policies.Principal.from_request(request), program))
        serializer = TierSerializer(data=json_object(request))
        serializer.is_valid(raise_exception=True)
        tier = tier_create(program=program, actor=Actor.for_request(request), **serializer.validated_data)
        return Response(TierSerializer(tier).data, status=status.HTTP_201_CREATED)


class TierDetailApi(APIView):
    permission_classes = [KeyOrAuthenticated]

    def _tier(self, request: Request, slug: str, tier_id: int) -> RewardTier:
        program = program_by_slug(slug)
        require(policies.may_manage_program(policies.Principal.from_request(request), program))
        tier = RewardTier.objects.filter(program=program, pk=tier_id).select_related("program").first()
        if tier is None:
            raise NotFound("No tier with this id in this program.")
        return tier

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(responses=TierSerializer)
    def get(self, request: Request, slug: str, tier_id: int) -> Response:
        return Response(TierSerializer(self._tier(request, slug, tier_id)).data)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(request=TierSerializer, responses=TierSerializer)
    def patch(self, request: Request, slug: str, tier_id: int) -> Response:
        tier = self._tier(request, slug, tier_id)
        serializer = TierSerializer(tier, data=json_object(request), partial=True)
        serializer.is_valid(raise_exception=True)
        tier = tier_update(tier=tier, actor=Actor.for_request(request), **serializer.validated_data)
        return Response(TierSerializer(tier).data)
