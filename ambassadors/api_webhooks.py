"""JSON API of a program's webhook endpoints and their deliveries (ambassadors.webhooks): marketing staff,
or a `manage` key of the program."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ambassadors.auth import KeyOrAuthenticated, require
from ambassadors.filters import WebhookDeliveryFilter, WebhookEndpointFilter
from ambassadors.models import Program, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from ambassadors.selectors import program_by_slug
from ambassadors.webhooks import delivery_resend, endpoint_create, endpoint_delete, endpoint_update
from config.api import json_object
from config.filters import ListApi
from config.schema import access
from core import policies
from core.actors import Actor
from core.errors import NotFound
from core.webhook_events import WEBHOOK_EVENTS


class WebhookEndpointSerializer(serializers.ModelSerializer):
    """A URL that receives the program's events it subscribed to, signed per Standard Webhooks with
    `secret` (verify with the `standardwebhooks` library; see the README)."""

    url = serializers.CharField(
        max_length=500, help_text="An http(s) URL on a public address; redirects are not followed."
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=list(WEBHOOK_EVENTS)),
        allow_empty=False,
        help_text="The events sent to this endpoint.",
    )
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret (`whsec_...`), generated when the endpoint is created."
    )
    disabled_reason = serializers.CharField(
        read_only=True, help_text="Why it is off: the receiver answered 410 Gone, or a person disabled it."
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "event_types", "secret", "is_active", "disabled_reason", "created_at"]
        read_only_fields = ["id", "secret", "disabled_reason", "created_at"]


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["at", "status_code", "error", "duration_ms", "response_excerpt"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event = serializers.CharField(source="message.event", read_only=True, help_text="The event's type.")
    payload = serializers.JSONField(source="message.payload", read_only=True, help_text="The body sent.")
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True, help_text="Every attempt, oldest first.")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "event_id", "event", "status", "attempts", "next_attempt_at", "last_status_code", "last_response",
            "created_at", "payload", "attempt_log",
        ]  # fmt: skip
        read_only_fields = fields
        extra_kwargs = {
            "event_id": {"help_text": "The `webhook-id` header: the same for every attempt and resend."},
            "attempts": {"help_text": "Attempts since the delivery was created or last resent."},
            "next_attempt_at": {"help_text": "When the next attempt is due, while pending."},
        }


def _endpoint(request: Request, slug: str, endpoint_id: int) -> tuple[Program, WebhookEndpoint]:
    program = program_by_slug(slug)
    require(policies.may_manage_webhooks(policies.Principal.from_request(request), program))
    endpoint = WebhookEndpoint.objects.filter(program=program, pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No webhook endpoint with this id in this program.")
    return program, endpoint


class WebhookEndpointsApi(ListApi):
    permission_classes = [KeyOrAuthenticated]
    # GET: filtered and paged with cursors, oldest first (config.filters); the queryset is the schema's.
    queryset = WebhookEndpoint.objects.none()
    filterset_class = WebhookEndpointFilter
    serializer_class = WebhookEndpointSerializer
    cursor_ordering = ("id",)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(responses=WebhookEndpointSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_manage_webhooks(policies.Principal.from_request(request), program))
        return self.paged(WebhookEndpoint.objects.filter(program=program), WebhookEndpointSerializer)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(request=WebhookEndpointSerializer, responses={201: WebhookEndpointSerializer})
    def post(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_manage_webhooks(policies.Principal.from_request(request), program))
        serializer = WebhookEndpointSerializer(data=json_object(request))
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        data.pop("is_active", None)
        endpoint = endpoint_create(program=program, actor=Actor.for_request(request), **data)
        return Response(WebhookEndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(APIView):
    permission_classes = [KeyOrAuthenticated]

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(responses=WebhookEndpointSerializer)
    def get(self, request: Request, slug: str, endpoint_id: int) -> Response:
        return Response(WebhookEndpointSerializer(_endpoint(request, slug, endpoint_id)[1]).data)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(request=WebhookEndpointSerializer, responses=WebhookEndpointSerializer)
    def patch(self, request: Request, slug: str, endpoint_id: int) -> Response:
        _, endpoint = _endpoint(request, slug, endpoint_id)
        serializer = WebhookEndpointSerializer(endpoint, data=json_object(request), partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = endpoint_update(endpoint=endpoint, actor=Actor.for_request(request), **serializer.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(responses={204: None})
    def delete(self, request: Request, slug: str, endpoint_id: int) -> Response:
        _, endpoint = _endpoint(request, slug, endpoint_id)
        endpoint_delete(endpoint=endpoint, actor=Actor.for_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveriesApi(ListApi):
    """An endpoint's deliveries, newest first, each with its attempts."""

    permission_classes = [KeyOrAuthenticated]
    # Filtered and paged with cursors (config.filters); the queryset is the schema's.
    queryset = WebhookDelivery.objects.none()
    filterset_class = WebhookDeliveryFilter
    serializer_class = WebhookDeliverySerializer
    cursor_ordering = ("-id",)

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    def get(self, request: Request, slug: str, endpoint_id: int) -> Response:
        _, endpoint = _endpoint(request, slug, endpoint_id)
        deliveries = (
            WebhookDelivery.objects.filter(endpoint=endpoint).select_related("message").prefetch_related("attempt_log")
        )
        return self.paged(deliveries, WebhookDeliverySerializer)


class WebhookDeliveryResendApi(APIView):
    """Send a delivery again, from the start of the retry schedule (409 while its endpoint is disabled)."""

    permission_classes = [KeyOrAuthenticated]

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    def post(self, request: Request, slug: str, endpoint_id: int, delivery_id: int) -> Response:
        _, endpoint = _endpoint(request, slug, endpoint_id)
        delivery = WebhookDelivery.objects.filter(endpoint=endpoint, pk=delivery_id).select_related("endpoint").first()
        if delivery is None:
            raise NotFound("No delivery with this id for this endpoint.")
        delivery = delivery_resend(delivery=delivery, actor=Actor.for_request(request))
        fresh = WebhookDelivery.objects.select_related("message").prefetch_related("attempt_log").get(pk=delivery.pk)
        return Response(WebhookDeliverySerializer(fresh).data, status=status.HTTP_202_ACCEPTED)
