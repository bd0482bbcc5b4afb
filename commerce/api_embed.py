"""`POST /api/v1/programs/<slug>/embed-tokens`: the business's back end asks for a token that frames one
ambassador's dashboard inside its own product (commerce.embed holds the rules)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ambassadors.auth import ApiKeyRateThrottle, KeyOrAuthenticated, ScopedKeyThrottle, require
from ambassadors.selectors import program_by_slug
from commerce.embed import embed_ambassador_find, embed_token_issue
from config.api import json_object
from config.schema import access
from core import policies
from core.actors import Actor


class EmbedTokenOutput(serializers.Serializer):
    token = serializers.CharField(help_text="Signed, single-use; pass it on unchanged.")
    url = serializers.URLField(help_text="The page to put in your iframe's src.")
    expires_at = serializers.DateTimeField()


class EmbedTokensApi(APIView):
    """A short-lived, single-use token showing one ambassador's dashboard, for an iframe on the program's
    declared hosts. Ask for one each time your page renders the iframe; it is spent on first load."""

    permission_classes = [KeyOrAuthenticated]
    throttle_classes = [ApiKeyRateThrottle, ScopedKeyThrottle]
    throttle_scope = "embed_tokens"

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254, required=False)
        external_id = serializers.CharField(max_length=128, required=False)
        enrol = serializers.BooleanField(
            required=False,
            default=False,
            help_text="Enrol the customer as an ambassador first if they are not one yet (else 404).",
        )

        class Meta:
            ref_name = "EmbedTokenInput"

        def validate(self, attrs: dict[str, object]) -> dict[str, object]:
            if bool(attrs.get("email")) == bool(attrs.get("external_id")):
                raise serializers.ValidationError({"email": ["Give either email or external_id."]})
            return attrs

    @access(scopes=("manage",), roles=("marketing",))
    @extend_schema(request=InputSerializer, responses={201: EmbedTokenOutput})
    def post(self, request: Request, slug: str) -> Response:
        program = program_by_slug(slug)
        require(policies.may_issue_embed_token(policies.Principal.from_request(request), program))
        serializer = self.InputSerializer(data=json_object(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        ambassador = embed_ambassador_find(
            program=program, email=data.get("email"), external_id=data.get("external_id"), enrol=data["enrol"]
        )
        issued = embed_token_issue(program=program, ambassador=ambassador, actor=Actor.for_request(request))
        query = urlencode({"program": program.slug, "token": issued.token})
        url = request.build_absolute_uri(f"{reverse('embed-dashboard')}?{query}")
        return Response(
            EmbedTokenOutput({"token": issued.token, "url": url, "expires_at": issued.expires_at}).data,
            status=status.HTTP_201_CREATED,
        )
