"""URL patterns spliced into config/urls.py: `urlpatterns` at the site's root (pages and endpoints the
permission table enumerates), `api_urlpatterns` under /api/v1/."""

from django.urls import URLPattern, path

from commerce import api_embed

urlpatterns: list[URLPattern] = []
api_urlpatterns: list[URLPattern] = [
    path("programs/<slug:slug>/embed-tokens", api_embed.EmbedTokensApi.as_view(), name="api-embed-tokens"),
]
