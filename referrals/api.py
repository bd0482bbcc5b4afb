"""JSON API of the tracking core: signups, conversions, refunds, attribution review and the audit trail."""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ambassadors import roles
from ambassadors.auth import ApiKeyRateThrottle, KeyOrAuthenticated, request_api_key, require_key_or_role
from ambassadors.models import Ambassador
from ambassadors.normalise import code_key, is_well_formed_code
from ambassadors.selectors import program_by_slug
from config.api import json_object
from config.errors import InvalidInput, NotFound
from referrals.audit import Actor
from referrals.models import AuditEvent, Conversion, Signup
from referrals.selectors import conversion_for, signups_for_program
from referrals.services import conversion_record, conversion_refund, signup_override, signup_record


class SignupOutput(serializers.ModelSerializer):
    ambassador = serializers.SerializerMethodField()

    class Meta:
        model = Signup
        fields = ["id", "email", "external_id", "status", "reason", "ambassador", "method", "created_at"]

    def get_ambassador(self, signup: Signup) -> str | None:
        return signup.ambassador.code if signup.ambassador else None


class SignupFilter(django_filters.FilterSet):
    ambassador = django_filters.CharFilter(method="filter_ambassador", label="Ambassador code")
    email = django_filters.CharFilter(lookup_expr="icontains")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Signup
        fields = ["status", "method", "reason"]

    def filter_ambassador(self, queryset: Any, name: str, value: str) -> Any:
        if value.lower() == "none":
            return queryset.filter(ambassador__isnull=True)
        return queryset.filter(ambassador__code_key=code_key(value))


class SignupsApi(APIView):
    """POST records a subscriber (`track` key); GET lists attributions (`read` key or an admin)."""

    permission_classes = [KeyOrAuthenticated]
    throttle_classes = [ApiKeyRateThrottle]

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        external_id = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
        referral_code = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)
        click_id = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)
        referee_ip = serializers.IPAddressField(required=False, allow_null=True, help_text="The referee's own IP.")
        visitor_id = serializers.CharField(max_length=36, required=False, allow_blank=True, default="")

        class Meta:
            # Every view's nested serializer is called InputSerializer: name each component apart.
            ref_name = "SignupInput"

    @extend_schema(request=InputSerializer, responses={200: SignupOutput, 201: SignupOutput})
    def post(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require_key_or_role(request, program, scopes=("track",), role=roles.is_staff_member)
        data = _validated(self.InputSerializer, request)
        signup, created = signup_record(
            program=program,
            email=data["email"],
            external_id=data["external_id"],
            referral_code=data.get("referral_code") or None,
            click_id=data.get("click_id") or None,
            referee_ip=data.get("referee_ip"),
            visitor_id=data["visitor_id"],
            actor=Actor.for_request(request),
        )
        return Response(SignupOutput(signup).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(responses=SignupOutput(many=True), filters=True)
    def get(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require_key_or_role(request, program, scopes=("read",), role=roles.is_auditor)
        filterset = SignupFilter(request.query_params, queryset=signups_for_program(program))
        if not filterset.is_valid():
            return Response(filterset.errors, status=status.HTTP_400_BAD_REQUEST)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(filterset.qs, request, view=self)
        return paginator.get_paginated_response(SignupOutput(page, many=True).data)


class SignupOverrideApi(APIView):
    """An admin credits a signup to another ambassador, or to nobody, with a mandatory reason."""

    class InputSerializer(serializers.Serializer):
        ambassador_code = serializers.CharField(max_length=64, allow_null=True)
        reason = serializers.CharField(max_length=2000)

        class Meta:
            # Every view's nested serializer is called InputSerializer: name each component apart.
            ref_name = "SignupOverrideInput"

    @extend_schema(request=InputSerializer, responses=SignupOutput)
    def post(self, request: Request, slug: str, signup_id: int) -> Response:
        program = program_by_slug(slug)
        if request_api_key(request) is not None or not roles.is_auditor(request.user):
            raise PermissionDenied("Only admins (auditors) override attributions.")
        data = _validated(self.InputSerializer, request)
        signup = Signup.objects.filter(program=program, pk=signup_id).first()
        if signup is None:
            raise NotFound("No signup with this id in this program.")
        ambassador = None
        if data["ambassador_code"]:
            raw = data["ambassador_code"]
            ambassador = (
                Ambassador.objects.filter(program=program, code_key=code_key(raw)).first()
                if is_well_formed_code(raw)
                else None
            )
            if ambassador is None:
                raise InvalidInput("No ambassador with this code in this program.", field="ambassador_code")
        signup = signup_override(
            signup=signup, ambassador=ambassador, reason=data["reason"], actor=Actor.for_request(request)
        )
        return Response(SignupOutput(signup).data)


class ConversionOutput(serializers.ModelSerializer):
    email = serializers.CharField(source="signup.email")
    ambassador = serializers.SerializerMethodField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = Conversion
        fields = [
            "id", "external_id", "email", "ambassador", "amount", "currency", "status",
            "occurred_at", "approve_after", "created_at",
        ]  # fmt: skip

    def get_ambassador(self, conversion: Conversion) -> str | None:
        ambassador = conversion.signup.ambassador
        return ambassador.code if ambassador else None


class ConversionsApi(APIView):
    permission_classes = [KeyOrAuthenticated]
    throttle_classes = [ApiKeyRateThrottle]

    class InputSerializer(serializers.Serializer):
        external_id = serializers.CharField(max_length=128)
        email = serializers.EmailField(max_length=254, required=False, allow_null=True)
        referee_external_id = serializers.CharField(max_length=128, required=False, allow_null=True)
        # Strings like "19.90" keep the exact value; the service refuses anything that is not a decimal.
        amount = serializers.CharField(max_length=32)
        currency = serializers.CharField(max_length=8)
        occurred_at = serializers.DateTimeField(required=False, allow_null=True)

        class Meta:
            # Every view's nested serializer is called InputSerializer: name each component apart.
            ref_name = "ConversionInput"

    @extend_schema(request=InputSerializer, responses={200: ConversionOutput, 201: ConversionOutput})
    def post(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require_key_or_role(request, program, scopes=("track",), role=roles.is_staff_member)
        data = _validated(self.InputSerializer, request)
        conversion, created = conversion_record(
            program=program,
            actor=Actor.for_request(request),
            external_id=data["external_id"],
            email=data.get("email"),
            referee_external_id=data.get("referee_external_id"),
            amount=data["amount"],
            currency=data["currency"],
            occurred_at=data.get("occurred_at"),
        )
        conversion = conversion_for(program, conversion.external_id) or conversion
        return Response(
            ConversionOutput(conversion).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ConversionRefundApi(APIView):
    permission_classes = [KeyOrAuthenticated]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

        class Meta:
            # Every view's nested serializer is called InputSerializer: name each component apart.
            ref_name = "ConversionRefundInput"

    @extend_schema(request=InputSerializer, responses=ConversionOutput)
    def post(self, request: Request, slug: str, external_id: str) -> Response:
        program = program_by_slug(slug)
        require_key_or_role(request, program, scopes=("track",), role=roles.is_auditor)
        data = _validated(self.InputSerializer, request, allow_empty=True)
        conversion = conversion_refund(
            program=program, external_id=external_id, actor=Actor.for_request(request), reason=data["reason"]
        )
        conversion = conversion_for(program, conversion.external_id) or conversion
        return Response(ConversionOutput(conversion).data)


class AuditEventOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id", "created_at", "program_id", "actor_type", "actor_id", "actor_label", "action",
            "object_type", "object_id", "before", "after", "reason",
        ]  # fmt: skip


class AuditEventFilter(django_filters.FilterSet):
    after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    action = django_filters.CharFilter(lookup_expr="startswith")

    class Meta:
        model = AuditEvent
        fields = ["program_id", "actor_type", "actor_id", "object_type", "object_id"]


class AuditEventsApi(APIView):
    """The audit trail, for admins."""

    @extend_schema(responses=AuditEventOutput(many=True), filters=True)
    def get(self, request: Request) -> Response:
        if request_api_key(request) is not None or not roles.is_auditor(request.user):
            raise PermissionDenied("Only admins (auditors) read the audit trail.")
        filterset = AuditEventFilter(request.query_params, queryset=AuditEvent.objects.all())
        if not filterset.is_valid():
            return Response(filterset.errors, status=status.HTTP_400_BAD_REQUEST)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(filterset.qs, request, view=self)
        return paginator.get_paginated_response(AuditEventOutput(page, many=True).data)


def _validated(serializer_class: type[serializers.Serializer], request: Request, *, allow_empty: bool = False) -> Any:
    """Validated input, or a 400 with field messages; a body that is not a JSON object is refused too."""
    serializer = serializer_class(data=json_object(request, allow_empty=allow_empty))
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
