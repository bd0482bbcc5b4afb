"""URL patterns spliced into config/urls.py: `urlpatterns` at the site's root (pages and endpoints the
permission table enumerates), `api_urlpatterns` under /api/v1/."""

from django.urls import URLPattern, path

from console import embed, waitlist_views
from console.staff import payouts as staff_payouts
from console.staff import stripe as staff_stripe
from console.staff import waitlist as staff_waitlist
from rewards import api_payouts

urlpatterns: list[URLPattern] = [
    path("embed/dashboard", embed.embed_dashboard, name="embed-dashboard"),
    path("p/<slug:slug>/waitlist/<str:waitlist_token>", waitlist_views.waitlist_status, name="waitlist-status"),
    *staff_waitlist.urlpatterns,
    *staff_stripe.urlpatterns,
    *staff_payouts.urlpatterns,
]
api_urlpatterns: list[URLPattern] = [
    path("programs/<slug:slug>/payouts", api_payouts.PayoutsApi.as_view(), name="api-payouts"),
    path("programs/<slug:slug>/payouts/<int:run_id>", api_payouts.PayoutDetailApi.as_view(), name="api-payout"),
]
