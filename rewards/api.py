"""JSON API of what ambassadors and the community see: stats and rewards, the live price, the
leaderboard, and the tiers marketing configures."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from ambassadors import roles
from ambassadors.auth import KeyOrAuthenticated, request_api_key, require_key_or_role
from ambassadors.models import Ambassador
from ambassadors.selectors import ambassador_by_code, ambassadorships_of, program_by_slug
from config.api import json_object
from config.errors import NotFound
from referrals.selectors import ambassador_stats, channel_stats
from rewards.models import RewardTier
from rewards.selectors import ambassador_progress, ambassador_rewards, leaderboard, program_price
from rewards.services import tier_create, tier_update


def ambassador_payload(ambassador: Ambassador, request: Request) -> dict[str, Any]:
    return {
        "email": ambassador.email,
        "code": ambassador.code,
        "display_name": ambassador.display_name,
        "link": request.build_absolute_uri(f"/r/{ambassador.code}"),
        "stats": ambassador_stats(ambassador),
        "rewards": ambassador_rewards(ambassador),
    }


class AmbassadorDetailApi(APIView):
    """An ambassador's stats and rewards: a `read` key of the program, or the ambassador."""

    permission_classes = [KeyOrAuthenticated]

    @extend_schema(
        responses=inline_serializer(
            "AmbassadorDetail",
            {
                "email": serializers.EmailField(),
                "code": serializers.CharField(),
                "display_name": serializers.CharField(),
                "link": serializers.URLField(),
                "stats": serializers.DictField(child=serializers.IntegerField()),
                "rewards": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    def get(self, request: Request, slug: str, code: str) -> Response:
        program = program_by_slug(slug)
        ambassador = ambassador_by_code(program, code)
        if request_api_key(request) is not None or not (
            request.user.is_authenticated and request.user.pk == ambassador.user_id
        ):
            if request_api_key(request) is None and not roles.is_staff_member(request.user):
                # Another customer's data: not theirs to see, and not theirs to know it exists.
                raise NotFound("No ambassador with this code in this program.")
            require_key_or_role(request, program, scopes=("read",), role=roles.is_staff_member)
        return Response(ambassador_payload(ambassador, request))


class MeApi(APIView):
    """The signed-in ambassador: programs, codes, links, stats, progress to the next tier, rewards."""

    @extend_schema(
        responses=inline_serializer("Me", {"programs": serializers.ListField(child=serializers.DictField())})
    )
    def get(self, request: Request) -> Response:
        if request_api_key(request) is not None:
            raise PermissionDenied("/me is for a signed-in person, not an API key.")
        if not request.user.is_authenticated:
            raise NotAuthenticated()
        programs = []
        for ambassador in ambassadorships_of(request.user):
            payload = ambassador_payload(ambassador, request)
            payload["program"] = {"slug": ambassador.program.slug, "name": ambassador.program.name}
            payload["progress"] = ambassador_progress(ambassador)
            payload["channels"] = channel_stats(ambassador)
            programs.append(payload)
        return Response({"username": request.user.get_username(), "programs": programs})


class PriceApi(APIView):
    """Public: the collective price and the progress to the next drop."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [AnonRateThrottle]

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

    @extend_schema(responses=inline_serializer("Leaderboard", {"results": serializers.ListField()}))
    def get(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        if not program.leaderboard_public:
            require_key_or_role(request, program, scopes=("read",), role=roles.is_staff_member)
        return Response({"results": leaderboard(program)})


class TierSerializer(serializers.ModelSerializer):
    class Meta:
        model = RewardTier
        fields = [
            "id", "name", "kind", "metric", "threshold", "repeat_every", "reward_type", "reward_value",
            "reward_text", "referee_reward_type", "referee_reward_value", "step", "drop_type", "drop_value",
            "is_active", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at"]


class TiersApi(APIView):
    permission_classes = [KeyOrAuthenticated]

    @extend_schema(responses=TierSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require_key_or_role(request, program, scopes=("manage",), role=roles.is_marketing)
        return Response(TierSerializer(RewardTier.objects.filter(program=program).order_by("id"), many=True).data)

    @extend_schema(request=TierSerializer, responses={201: TierSerializer})
    def post(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require_key_or_role(request, program, scopes=("manage",), role=roles.is_marketing)
        serializer = TierSerializer(data=json_object(request))
        serializer.is_valid(raise_exception=True)
        tier = tier_create(program=program, **serializer.validated_data)
        return Response(TierSerializer(tier).data, status=status.HTTP_201_CREATED)


class TierDetailApi(APIView):
    permission_classes = [KeyOrAuthenticated]

    def _tier(self, request: Request, slug: str, tier_id: int) -> RewardTier:
        program = program_by_slug(slug)
        require_key_or_role(request, program, scopes=("manage",), role=roles.is_marketing)
        tier = RewardTier.objects.filter(program=program, pk=tier_id).select_related("program").first()
        if tier is None:
            raise NotFound("No tier with this id in this program.")
        return tier

    @extend_schema(responses=TierSerializer)
    def get(self, request: Request, slug: str, tier_id: int) -> Response:
        return Response(TierSerializer(self._tier(request, slug, tier_id)).data)

    @extend_schema(request=TierSerializer, responses=TierSerializer)
    def patch(self, request: Request, slug: str, tier_id: int) -> Response:
        tier = self._tier(request, slug, tier_id)
        serializer = TierSerializer(tier, data=json_object(request), partial=True)
        serializer.is_valid(raise_exception=True)
        return Response(TierSerializer(tier_update(tier=tier, **serializer.validated_data)).data)
