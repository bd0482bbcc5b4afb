"""JSON API of the screens that span apps: `/api/v1/me` and an ambassador's detail, from console read models."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ambassadors.auth import KeyOrAuthenticated, require
from ambassadors.selectors import program_by_slug
from config.schema import access
from console.selectors import AmbassadorCard, ambassador_card, my_programs
from core import policies
from core.errors import NotFound
from referrals.selectors import ambassador_for_code


def card_payload(card: AmbassadorCard, request: Request) -> dict[str, Any]:
    return {
        "email": card.email,
        "code": card.code,
        "display_name": card.display_name,
        "link": request.build_absolute_uri(card.link_path),
        "stats": asdict(card.stats),
        "rewards": [asdict(line) for line in card.rewards],
    }


class AmbassadorDetailApi(APIView):
    """An ambassador's stats and rewards: a `read` key of the program, or the ambassador."""

    permission_classes = [KeyOrAuthenticated]

    @access(scopes=("read",), roles=("ambassador", "marketing", "auditors"))
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
        ambassador = ambassador_for_code(program, code)
        if ambassador is None:
            raise NotFound("No ambassador with this code in this program.")
        require(policies.may_see_ambassador(policies.Principal.from_request(request), ambassador))
        return Response(card_payload(ambassador_card(ambassador), request))


class MeApi(APIView):
    """The signed-in ambassador: programs, codes, links, stats, progress to the next tier, rewards."""

    @access(roles=("signed-in",))
    @extend_schema(
        responses=inline_serializer("Me", {"programs": serializers.ListField(child=serializers.DictField())})
    )
    def get(self, request: Request) -> Response:
        require(policies.may_use_dashboard(policies.Principal.from_request(request)))
        programs = [
            {
                **card_payload(card, request),
                "program": asdict(card.program),
                "progress": asdict(card.progress) if card.progress is not None else None,
                "channels": [asdict(line) for line in card.channels],
            }
            for card in my_programs(request.user)
        ]
        return Response({"username": request.user.get_username(), "programs": programs})
