"""JSON API of a contest's standing: the live ranking and the time left, or the frozen winners."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from ambassadors.auth import require
from ambassadors.selectors import program_by_slug
from config.schema import access
from console.contests import contest_standing
from core import policies
from core.errors import NotFound
from rewards.models import Contest


class ContestStandingApi(APIView):
    """The ranking of a contest: live while it runs, the recorded winners once it is frozen."""

    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]

    @access(scopes=("read",), roles=("marketing", "auditors"), public="when the program's leaderboard is public")
    @extend_schema(
        responses=inline_serializer(
            "ContestStanding",
            {
                "id": serializers.IntegerField(),
                "name": serializers.CharField(),
                "prize_text": serializers.CharField(),
                "metric": serializers.CharField(),
                "status": serializers.CharField(),
                "starts_at": serializers.DateTimeField(),
                "ends_at": serializers.DateTimeField(),
                "seconds_left": serializers.IntegerField(),
                "winners_count": serializers.IntegerField(),
                "frozen": serializers.BooleanField(),
                "results": inline_serializer(
                    "ContestStandingLine",
                    {
                        "rank": serializers.IntegerField(),
                        "display_name": serializers.CharField(),
                        "score": serializers.IntegerField(),
                        "is_winner": serializers.BooleanField(),
                    },
                    many=True,
                ),
            },
        )
    )
    def get(self, request: Request, slug: str, contest_id: int) -> Response:
        program = program_by_slug(slug)
        require(policies.may_read_leaderboard(policies.Principal.from_request(request), program))
        contest = Contest.objects.filter(program=program, pk=contest_id).first()
        if contest is None:
            raise NotFound("No contest with this id in this program.")
        standing = contest_standing(contest)
        as_time = serializers.DateTimeField().to_representation
        return Response(
            {
                "id": standing.id,
                "name": standing.name,
                "prize_text": standing.prize_text,
                "metric": standing.metric,
                "status": standing.status,
                "starts_at": as_time(standing.starts_at),
                "ends_at": as_time(standing.ends_at),
                "seconds_left": standing.seconds_left,
                "winners_count": standing.winners_count,
                "frozen": standing.frozen,
                "results": [{k: v for k, v in asdict(line).items() if k != "anonymous"} for line in standing.lines],
            }
        )
