"""JSON API of contests: staff (or a `manage` key) create, read and change them. Their standing is a
console read model (console/api_contests.py)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ambassadors.auth import KeyOrAuthenticated, require
from ambassadors.models import Program
from ambassadors.selectors import program_by_slug
from config.api import json_object
from config.filters import ListApi
from config.schema import access
from core import clock, policies
from core.actors import Actor
from core.errors import NotFound
from rewards.filters import ContestFilter
from rewards.models import Contest
from rewards.services import contest_create, contest_update


class ContestSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    winners = serializers.SerializerMethodField()

    class Meta:
        model = Contest
        fields = [
            "id", "name", "prize_text", "starts_at", "ends_at", "winners_count", "metric", "status", "frozen_at",
            "winners", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "status", "frozen_at", "winners", "created_at"]
        # The rules (and their messages, naming the field) are the service's: contest_check.
        extra_kwargs = {"winners_count": {"min_value": None, "max_value": None}}

    def get_status(self, contest: Contest) -> str:
        return contest.status_at(clock.now())

    def get_winners(self, contest: Contest) -> list[dict[str, Any]]:
        # Read by the views with prefetch_related("winners__ambassador"): no query per contest.
        return [
            {"rank": w.rank, "display_name": w.ambassador.display_name or "Anonymous ambassador", "score": w.score}
            for w in contest.winners.all()
        ]


def _contests(program: Program) -> Any:
    return Contest.objects.filter(program=program).prefetch_related("winners__ambassador").order_by("-starts_at", "-id")


class ContestsApi(ListApi):
    permission_classes = [KeyOrAuthenticated]
    # GET: filtered and paged with cursors, newest first (config.filters); the queryset is the schema's.
    queryset = Contest.objects.none()
    filterset_class = ContestFilter
    serializer_class = ContestSerializer
    cursor_ordering = ("-id",)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(responses=ContestSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_manage_contests(policies.Principal.from_request(request), program))
        return self.paged(_contests(program), ContestSerializer)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(request=ContestSerializer, responses={201: ContestSerializer})
    def post(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_manage_contests(policies.Principal.from_request(request), program))
        serializer = ContestSerializer(data=json_object(request))
        serializer.is_valid(raise_exception=True)
        contest = contest_create(program=program, actor=Actor.for_request(request), **serializer.validated_data)
        return Response(ContestSerializer(contest).data, status=status.HTTP_201_CREATED)


class ContestDetailApi(APIView):
    permission_classes = [KeyOrAuthenticated]

    def _contest(self, request: Request, slug: str, contest_id: int) -> Contest:
        program = program_by_slug(slug)
        require(policies.may_manage_contests(policies.Principal.from_request(request), program))
        contest = _contests(program).filter(pk=contest_id).first()
        if contest is None:
            raise NotFound("No contest with this id in this program.")
        return contest

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(responses=ContestSerializer)
    def get(self, request: Request, slug: str, contest_id: int) -> Response:
        return Response(ContestSerializer(self._contest(request, slug, contest_id)).data)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(request=ContestSerializer, responses=ContestSerializer)
    def patch(self, request: Request, slug: str, contest_id: int) -> Response:
        contest = self._contest(request, slug, contest_id)
        serializer = ContestSerializer(contest, data=json_object(request), partial=True)
        serializer.is_valid(raise_exception=True)
        contest = contest_update(contest=contest, actor=Actor.for_request(request), **serializer.validated_data)
        return Response(ContestSerializer(_contests(contest.program).get(pk=contest.pk)).data)
