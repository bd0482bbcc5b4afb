"""JSON API of the tracking core: signups, conversions, refunds, attribution review and the audit trail."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ambassadors.auth import (
    ApiKeyRateThrottle,
    CountedThrottles,
    KeyOrAuthenticated,
    ScopedIpThrottle,
    ScopedKeyThrottle,
    request_api_key,
    require,
)
from ambassadors.models import Program
from ambassadors.selectors import program_by_slug
from config.api import json_object
from config.api_fast_path import error_response, fast_call, json_response, key_call
from config.filters import ListApi
from config.schema import access
from core import policies
from core.actors import Actor
from core.errors import InvalidInput, NotFound
from core.models import AuditEvent
from referrals.filters import AuditEventFilter, SignupFilter
from referrals.models import Conversion, Signup
from referrals.selectors import ambassador_for_code, conversion_for, signups_for_program
from referrals.services import conversion_record, conversion_refund, signup_override, signup_record, signup_review


class SignupOutput(serializers.ModelSerializer):
    ambassador = serializers.SerializerMethodField()

    class Meta:
        model = Signup
        fields = ["id", "email", "external_id", "status", "reason", "ambassador", "method", "created_at"]

    def get_ambassador(self, signup: Signup) -> str | None:
        return signup.ambassador.code if signup.ambassador else None


def _signup_output(signup: Signup) -> dict[str, Any]:
    """SignupOutput(signup).data, field for field, without building a serializer (the API's busiest answer):
    tests/referrals/test_signup_fast_path.py holds the two to the same output."""
    created_at = serializers.DateTimeField().to_representation(signup.created_at)
    return {
        "id": signup.pk,
        "email": signup.email,
        "external_id": signup.external_id,
        "status": signup.status,
        "reason": signup.reason,
        "ambassador": signup.ambassador.code if signup.ambassador_id and signup.ambassador else None,
        "method": signup.method,
        "created_at": created_at,
    }


def _program_of_request(request: Request, slug: str) -> Program:
    """The program of the URL. A key's own program was read with the key, a moment ago, by the
    authentication (ambassadors.auth): used as it is rather than read again. Anything else is looked up;
    a key of another program is then refused by the policy as before."""
    key = request_api_key(request)
    if key is not None and key.program.slug == slug:
        return key.program
    return program_by_slug(slug)


class SignupsApi(CountedThrottles, ListApi):
    """POST records a subscriber (`track` key); GET lists attributions (`read` key or an admin)."""

    permission_classes = [KeyOrAuthenticated]
    # Per key and per client IP (THROTTLE_SIGNUPS_KEY, THROTTLE_SIGNUPS_IP), on top of the key's own rate.
    throttle_classes = [ApiKeyRateThrottle, ScopedKeyThrottle, ScopedIpThrottle]
    throttle_scope = "signups"
    # GET: filtered and paged with cursors, newest first (config.filters); the queryset is the schema's.
    queryset = Signup.objects.none()
    filterset_class = SignupFilter
    serializer_class = SignupOutput
    cursor_ordering = ("-id",)

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        external_id = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
        referral_code = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)
        click_id = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)
        referee_ip = serializers.IPAddressField(required=False, allow_null=True, help_text="The referee's own IP.")
        visitor_id = serializers.CharField(max_length=36, required=False, allow_blank=True, default="")
        wants_price_news = serializers.BooleanField(
            required=False, default=False, help_text="The subscriber asked to be e-mailed when the price drops."
        )

        class Meta:
            # Every view's nested serializer is called InputSerializer: name each component apart.
            ref_name = "SignupInput"

    @access(scopes=("track",), roles=("marketing", "auditors"))
    @extend_schema(request=InputSerializer, responses={200: SignupOutput, 201: SignupOutput})
    def post(self, request: Request, slug: str) -> Response:
        program = _program_of_request(request, slug)
        require(policies.may_track(policies.Principal.from_request(request), program))
        data = _validated(self.InputSerializer, request)
        signup, created = _signup_record(data, program=program, actor=Actor.for_request(request))
        return Response(_signup_output(signup), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @access(scopes=("read",), roles=("auditors",))
    @extend_schema(responses=SignupOutput(many=True), filters=True)
    def get(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_read_attributions(policies.Principal.from_request(request), program))
        return self.paged(signups_for_program(program), SignupOutput)


def _signup_record(data: dict[str, Any], *, program: Program, actor: Actor) -> tuple[Signup, bool]:
    """Record the validated input of SignupsApi.InputSerializer (both paths of POST .../signups)."""
    return signup_record(
        program=program,
        email=data["email"],
        external_id=data["external_id"],
        referral_code=data.get("referral_code") or None,
        click_id=data.get("click_id") or None,
        referee_ip=data.get("referee_ip"),
        visitor_id=data["visitor_id"],
        actor=actor,
        wants_price_news=data["wants_price_news"],
    )


def signup_fast(request: HttpRequest, slug: str) -> HttpResponse:
    """SignupsApi.post for an ordinary call of a `track` key, which config.api_fast_path has already checked
    (URL, key, program, scope, body): the view's throttles, then the same service and the same answer."""
    allow = fast_call(request).route.allow_header
    try:
        call = key_call(request)
        signup, created = _signup_record(call.data, program=call.key.program, actor=Actor.for_api_key(call.key))
    except Exception as exc:
        return error_response(exc, request, allow)
    return json_response(
        _signup_output(signup),
        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        headers={"Allow": allow},
    )


class SignupOverrideApi(APIView):
    """An admin credits a signup to another ambassador, or to nobody, with a mandatory reason."""

    class InputSerializer(serializers.Serializer):
        ambassador_code = serializers.CharField(max_length=64, allow_null=True)
        reason = serializers.CharField(max_length=2000)

        class Meta:
            # Every view's nested serializer is called InputSerializer: name each component apart.
            ref_name = "SignupOverrideInput"

    @access(roles=("auditors",))
    @extend_schema(request=InputSerializer, responses=SignupOutput)
    def post(self, request: Request, slug: str, signup_id: int) -> Response:
        program = program_by_slug(slug)
        require(policies.may_override(policies.Principal.from_request(request), program))
        data = _validated(self.InputSerializer, request)
        signup = Signup.objects.filter(program=program, pk=signup_id).first()
        if signup is None:
            raise NotFound("No signup with this id in this program.")
        ambassador = None
        if data["ambassador_code"]:
            ambassador = ambassador_for_code(program, data["ambassador_code"])
            if ambassador is None:
                raise InvalidInput("No ambassador with this code in this program.", field="ambassador_code")
        signup = signup_override(
            signup=signup, ambassador=ambassador, reason=data["reason"], actor=Actor.for_request(request)
        )
        return Response(SignupOutput(signup).data)


class SignupReviewApi(APIView):
    """Fraud review: approve or reject a signup held in `pending_review`, with a reason (audited)."""

    permission_classes = [KeyOrAuthenticated]

    class InputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(choices=["approve", "reject"])
        reason = serializers.CharField(max_length=2000)

        class Meta:
            # Every view's nested serializer is called InputSerializer: name each component apart.
            ref_name = "SignupReviewInput"

    DECISIONS = {"approve": Signup.Status.QUALIFIED, "reject": Signup.Status.REJECTED}

    @access(scopes=("manage",), roles=("auditors",))
    @extend_schema(
        request=InputSerializer,
        responses={200: SignupOutput},
        description=(
            "Approve (the signup qualifies and counts) or reject a signup held in `pending_review`, with a "
            "reason. The decision is audited and the ambassador's rewards are recalculated. A signup that is "
            'not waiting for review answers 409 `{"status": ["This signup is not waiting for review."]}`.'
        ),
    )
    def post(self, request: Request, slug: str, signup_id: int) -> Response:
        program = program_by_slug(slug)
        require(policies.may_review(policies.Principal.from_request(request), program))
        data = _validated(self.InputSerializer, request)
        signup = Signup.objects.filter(program=program, pk=signup_id).first()
        if signup is None:
            raise NotFound("No signup with this id in this program.")
        signup = signup_review(
            signup=signup,
            status=self.DECISIONS[data["decision"]],
            reason=data["reason"],
            actor=Actor.for_request(request),
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


@extend_schema_field(OpenApiTypes.STR)
class AmountField(serializers.Field):
    """Passed on as sent, for the service (parse_amount) to read exactly or refuse: a string such as
    "19.90", a whole JSON number, or a JSON number with a fraction (refused: decoded as a binary float, it
    is no longer the exact value the client meant)."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return str(value)


class ConversionsApi(CountedThrottles, APIView):
    permission_classes = [KeyOrAuthenticated]
    # Per key and per client IP (THROTTLE_CONVERSIONS_KEY, THROTTLE_CONVERSIONS_IP).
    throttle_classes = [ApiKeyRateThrottle, ScopedKeyThrottle, ScopedIpThrottle]
    throttle_scope = "conversions"

    class InputSerializer(serializers.Serializer):
        external_id = serializers.CharField(max_length=128)
        email = serializers.EmailField(max_length=254, required=False, allow_null=True)
        referee_external_id = serializers.CharField(max_length=128, required=False, allow_null=True)
        # Strings like "19.90" keep the exact value; the service refuses anything that is not a decimal.
        amount = AmountField(help_text='A decimal string such as "19.90" (or a whole number).')
        currency = serializers.CharField(max_length=8)
        occurred_at = serializers.DateTimeField(required=False, allow_null=True)

        class Meta:
            # Every view's nested serializer is called InputSerializer: name each component apart.
            ref_name = "ConversionInput"

    @access(scopes=("track",), roles=("marketing", "auditors"))
    @extend_schema(request=InputSerializer, responses={200: ConversionOutput, 201: ConversionOutput})
    def post(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_track(policies.Principal.from_request(request), program))
        data = _validated(self.InputSerializer, request)
        conversion, created = _conversion_record(data, program=program, actor=Actor.for_request(request))
        return Response(
            ConversionOutput(conversion).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


def _conversion_record(data: dict[str, Any], *, program: Program, actor: Actor) -> tuple[Conversion, bool]:
    """Record the validated input of ConversionsApi.InputSerializer (both paths of POST .../conversions);
    the conversion as ConversionOutput reads it (its signup and ambassador loaded)."""
    conversion, created = conversion_record(
        program=program,
        actor=actor,
        external_id=data["external_id"],
        email=data.get("email"),
        referee_external_id=data.get("referee_external_id"),
        amount=data["amount"],
        currency=data["currency"],
        occurred_at=data.get("occurred_at"),
    )
    return conversion_for(program, conversion.external_id) or conversion, created


def conversion_fast(request: HttpRequest, slug: str) -> HttpResponse:
    """ConversionsApi.post for an ordinary call of a `track` key, which config.api_fast_path has already
    checked (URL, key, program, scope, body): the view's throttles, then the same service and answer."""
    allow = fast_call(request).route.allow_header
    try:
        call = key_call(request)
        conversion, created = _conversion_record(call.data, program=call.key.program, actor=Actor.for_api_key(call.key))
        output = ConversionOutput(conversion).data
    except Exception as exc:
        return error_response(exc, request, allow)
    return json_response(
        output, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK, headers={"Allow": allow}
    )


class ConversionRefundApi(APIView):
    permission_classes = [KeyOrAuthenticated]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

        class Meta:
            # Every view's nested serializer is called InputSerializer: name each component apart.
            ref_name = "ConversionRefundInput"

    @access(scopes=("track",), roles=("auditors",))
    @extend_schema(request=InputSerializer, responses=ConversionOutput)
    def post(self, request: Request, slug: str, external_id: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_refund(policies.Principal.from_request(request), program))
        data = _validated(self.InputSerializer, request, allow_empty=True)
        conversion = conversion_refund(
            program=program, external_id=external_id, actor=Actor.for_request(request), reason=data["reason"]
        )
        conversion = conversion_for(program, conversion.external_id) or conversion
        return Response(ConversionOutput(conversion).data)

    def http_method_not_allowed(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # An external id may itself end in "/refund" (`order/refund`). Django routes by path before
        # method, so fetching it (GET .../conversions/order/refund) lands on this route: it is a fetch.
        if request.method == "GET":
            return _conversion_detail(request, kwargs["slug"], kwargs["external_id"] + "/refund")
        return super().http_method_not_allowed(request, *args, **kwargs)


class ConversionDetailApi(APIView):
    """One conversion by the shop's external id (percent-encoded in the URL: `order%2F1001`)."""

    permission_classes = [KeyOrAuthenticated]

    @access(scopes=("track", "read"), roles=("marketing", "auditors"))
    @extend_schema(
        responses=ConversionOutput,
        description=(
            "The conversion recorded with this `external_id`. Percent-encode the id in the URL: any id a "
            "conversion can be created with is addressed this way, slashes included (`order%2F1001`)."
        ),
    )
    def get(self, request: Request, slug: str, external_id: str) -> Response:
        return _conversion_detail(request, slug, external_id)


def _conversion_detail(request: Request, slug: str, external_id: str) -> Response:
    program = program_by_slug(slug)
    require(policies.may_read_conversion(policies.Principal.from_request(request), program))
    conversion = conversion_for(program, external_id)
    if conversion is None:
        raise NotFound("No conversion with this external_id in this program.")
    return Response(ConversionOutput(conversion).data)


class AuditEventOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id", "created_at", "program_id", "actor_type", "actor_id", "actor_label", "action",
            "object_type", "object_id", "before", "after", "reason",
        ]  # fmt: skip


class AuditEventsApi(ListApi):
    """The audit trail, for admins, newest first."""

    queryset = AuditEvent.objects.none()  # the schema's; filtered and paged with cursors (config.filters)
    filterset_class = AuditEventFilter
    serializer_class = AuditEventOutput
    cursor_ordering = ("-id",)

    @access(roles=("auditors",))
    @extend_schema(responses=AuditEventOutput(many=True), filters=True)
    def get(self, request: Request) -> Response:
        require(policies.may_read_audit(policies.Principal.from_request(request)))
        return self.paged(AuditEvent.objects.all(), AuditEventOutput)


def _validated(serializer_class: type[serializers.Serializer], request: Request, *, allow_empty: bool = False) -> Any:
    """Validated input, or a 400 with field messages; a body that is not a JSON object is refused too."""
    serializer = serializer_class(data=json_object(request, allow_empty=allow_empty))
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
