"""JSON API for programs (staff or a `manage` key) and ambassador enrolment (`track` or `manage` key)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ambassadors.auth import ApiKeyRateThrottle, KeyOrAuthenticated, require
from ambassadors.filters import ProgramFilter
from ambassadors.models import Ambassador, Program
from ambassadors.selectors import program_by_slug
from ambassadors.services import ambassador_enroll, program_create, program_update
from config.api import json_object
from config.filters import ListApi
from config.schema import access
from core import policies
from core.actors import Actor
from core.errors import InvalidInput


class ProgramSerializer(serializers.ModelSerializer):
    class Meta:
        model = Program
        fields = [
            "slug", "name", "description", "destination_url", "allowed_redirect_hosts",
            "attribution_window_days", "attribution_model", "attribution_cookie", "hold_period_days", "currency",
            "base_price", "floor_price", "velocity_limit", "leaderboard_public", "status", "share_message",
            "influencer_min_clicks", "influencer_max_rate", "ambassador_min_qualified", "ambassador_min_rate",
            "click_retention_months", "created_at",
        ]  # fmt: skip
        read_only_fields = ["created_at"]
        extra_kwargs = {
            "attribution_window_days": {"min_value": 1, "max_value": 3650},
            "hold_period_days": {"min_value": 0, "max_value": 3650},
            "click_retention_months": {"min_value": 1, "max_value": 120},
            "velocity_limit": {"min_value": 1, "max_value": 1_000_000},
            "base_price": {"min_value": 0},
            "floor_price": {"min_value": 0},
            "influencer_min_clicks": {"max_value": 1_000_000_000},
            "ambassador_min_qualified": {"max_value": 1_000_000_000},
            "influencer_max_rate": {"min_value": 0, "max_value": 100},
            "ambassador_min_rate": {"min_value": 0, "max_value": 100},
        }


class ProgramsApi(ListApi):
    permission_classes = [KeyOrAuthenticated]
    # GET: filtered and paged with cursors, oldest first (config.filters); the queryset is the schema's.
    queryset = Program.objects.none()
    filterset_class = ProgramFilter
    serializer_class = ProgramSerializer
    cursor_ordering = ("id",)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(responses=ProgramSerializer(many=True))
    def get(self, request: Request) -> Response:
        principal = policies.Principal.from_request(request)
        require(policies.may_list_programs(principal))
        confined_to = policies.program_scope(principal)
        programs = Program.objects.all() if confined_to is None else Program.objects.filter(pk=confined_to)
        return self.paged(programs, ProgramSerializer)

    @access(roles=("marketing",))
    @extend_schema(request=ProgramSerializer, responses={201: ProgramSerializer})
    def post(self, request: Request) -> Response:
        require(policies.may_create_program(policies.Principal.from_request(request)))
        serializer = ProgramSerializer(data=json_object(request))
        serializer.is_valid(raise_exception=True)
        program = program_create(actor=Actor.for_request(request), **serializer.validated_data)
        return Response(ProgramSerializer(program).data, status=status.HTTP_201_CREATED)


class ProgramDetailApi(APIView):
    permission_classes = [KeyOrAuthenticated]

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(responses=ProgramSerializer)
    def get(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_manage_program(policies.Principal.from_request(request), program))
        return Response(ProgramSerializer(program).data)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(request=ProgramSerializer, responses=ProgramSerializer)
    def patch(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        principal = policies.Principal.from_request(request)
        require(policies.may_manage_program(principal, program))
        serializer = ProgramSerializer(program, data=json_object(request), partial=True)
        serializer.is_valid(raise_exception=True)
        if "slug" in serializer.validated_data and principal.is_api_key:
            raise InvalidInput("A key cannot rename its program's slug.", field="slug")
        program = program_update(program=program, actor=Actor.for_request(request), **serializer.validated_data)
        return Response(ProgramSerializer(program).data)


class AmbassadorOutput(serializers.ModelSerializer):
    link = serializers.SerializerMethodField()

    class Meta:
        model = Ambassador
        fields = ["email", "code", "link", "display_name"]

    def get_link(self, ambassador: Ambassador) -> str:
        request = self.context.get("request")
        path = f"/r/{ambassador.code}"
        return request.build_absolute_uri(path) if request is not None else path


class AmbassadorsApi(APIView):
    """Enrol a customer as an ambassador; the same e-mail again answers 200 with the first."""

    permission_classes = [KeyOrAuthenticated]
    throttle_classes = [ApiKeyRateThrottle]

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        display_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        code = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)

        class Meta:
            # Every view's nested serializer is called InputSerializer: name each component apart.
            ref_name = "AmbassadorEnrolInput"

    @access(scopes=("track", "manage"), roles=("marketing",))
    @extend_schema(request=InputSerializer, responses={200: AmbassadorOutput, 201: AmbassadorOutput})
    def post(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_enroll_ambassador(policies.Principal.from_request(request), program))
        serializer = self.InputSerializer(data=json_object(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        ambassador, created = ambassador_enroll(
            program=program,
            email=data["email"],
            display_name=data["display_name"],
            code=data.get("code") or None,
        )
        return Response(
            AmbassadorOutput(ambassador, context={"request": request}).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
