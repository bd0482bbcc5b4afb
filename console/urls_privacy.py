"""URL patterns spliced into config/urls.py: `urlpatterns` at the site's root (pages and endpoints the
permission table enumerates), `api_urlpatterns` under /api/v1/."""

from django.urls import URLPattern

from console import privacy

urlpatterns: list[URLPattern] = [*privacy.urlpatterns]
api_urlpatterns: list[URLPattern] = []
