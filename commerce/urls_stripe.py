"""URL patterns spliced into config/urls.py: `urlpatterns` at the site's root (pages and endpoints the
permission table enumerates), `api_urlpatterns` under /api/v1/."""

from django.urls import URLPattern, path

from commerce.stripe_webhook import stripe_webhook

urlpatterns: list[URLPattern] = [
    path("integrations/stripe/<slug:slug>/webhook", stripe_webhook, name="stripe-webhook"),
]
api_urlpatterns: list[URLPattern] = []
