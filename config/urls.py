"""Parrain's URL map: pages, the referral redirect, the JSON API and its documentation."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from ambassadors import api as ambassadors_api
from ambassadors import api_webhooks as ambassadors_api_webhooks
from commerce import urls as commerce_urls
from commerce import urls_stripe as commerce_stripe_urls
from config import health, i18n, metrics
from config.schema import SwaggerDocsView
from console import api as console_api
from console import api_contests as console_api_contests
from console import program_views
from console import urls as console_urls
from console import urls_commerce as console_commerce_urls
from console import urls_privacy as console_privacy_urls
from console import views_unsubscribe as console_unsubscribe
from console.audit import urls as audit_urls
from console.staff import urls as staff_urls
from referrals import api as referrals_api
from referrals import views as referrals_views
from rewards import api as rewards_api
from rewards import api_contests as rewards_api_contests
from rewards import api_vouchers as rewards_api_vouchers
from rewards import views as rewards_views

api_v1 = [
    path("programs/", ambassadors_api.ProgramsApi.as_view(), name="api-programs"),
    path("programs/<slug:slug>/", ambassadors_api.ProgramDetailApi.as_view(), name="api-program"),
    path("programs/<slug:slug>/ambassadors", ambassadors_api.AmbassadorsApi.as_view(), name="api-ambassadors"),
    path(
        "programs/<slug:slug>/ambassadors/<str:code>",
        console_api.AmbassadorDetailApi.as_view(),
        name="api-ambassador",
    ),
    path("programs/<slug:slug>/signups", referrals_api.SignupsApi.as_view(), name="api-signups"),
    path("programs/<slug:slug>/signups/", referrals_api.SignupsApi.as_view(), name="api-signups-list"),
    path(
        "programs/<slug:slug>/signups/<int:signup_id>/override",
        referrals_api.SignupOverrideApi.as_view(),
        name="api-signup-override",
    ),
    path(
        "programs/<slug:slug>/signups/<int:signup_id>/review",
        referrals_api.SignupReviewApi.as_view(),
        name="api-signup-review",
    ),
    path("programs/<slug:slug>/conversions", referrals_api.ConversionsApi.as_view(), name="api-conversions"),
    # `path`: an external id may hold slashes (`order/1001`). The refund route comes first, so that
    # `.../order/1001/refund` refunds `order/1001`; the detail route takes every other path.
    path(
        "programs/<slug:slug>/conversions/<path:external_id>/refund",
        referrals_api.ConversionRefundApi.as_view(),
        name="api-conversion-refund",
    ),
    path(
        "programs/<slug:slug>/conversions/<path:external_id>",
        referrals_api.ConversionDetailApi.as_view(),
        name="api-conversion",
    ),
    path("programs/<slug:slug>/price", rewards_api.PriceApi.as_view(), name="api-price"),
    path("programs/<slug:slug>/leaderboard", rewards_api.LeaderboardApi.as_view(), name="api-leaderboard"),
    path("programs/<slug:slug>/tiers/", rewards_api.TiersApi.as_view(), name="api-tiers"),
    path("programs/<slug:slug>/tiers/<int:tier_id>/", rewards_api.TierDetailApi.as_view(), name="api-tier"),
    path("programs/<slug:slug>/contests/", rewards_api_contests.ContestsApi.as_view(), name="api-contests"),
    path(
        "programs/<slug:slug>/contests/<int:contest_id>/",
        rewards_api_contests.ContestDetailApi.as_view(),
        name="api-contest",
    ),
    path(
        "programs/<slug:slug>/contests/<int:contest_id>/standing",
        console_api_contests.ContestStandingApi.as_view(),
        name="api-contest-standing",
    ),
    # --- Vouchers at checkout ---
    path(
        "programs/<slug:slug>/vouchers/<str:voucher_code>",
        rewards_api_vouchers.VoucherApi.as_view(),
        name="api-voucher",
    ),
    path(
        "programs/<slug:slug>/vouchers/<str:voucher_code>/redeem",
        rewards_api_vouchers.VoucherRedeemApi.as_view(),
        name="api-voucher-redeem",
    ),
    # --- end vouchers ---
    # Webhooks (ambassadors.api_webhooks)
    path(
        "programs/<slug:slug>/webhooks/",
        ambassadors_api_webhooks.WebhookEndpointsApi.as_view(),
        name="api-webhooks",
    ),
    path(
        "programs/<slug:slug>/webhooks/<int:endpoint_id>/",
        ambassadors_api_webhooks.WebhookEndpointDetailApi.as_view(),
        name="api-webhook",
    ),
    path(
        "programs/<slug:slug>/webhooks/<int:endpoint_id>/deliveries/",
        ambassadors_api_webhooks.WebhookDeliveriesApi.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        "programs/<slug:slug>/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/resend",
        ambassadors_api_webhooks.WebhookDeliveryResendApi.as_view(),
        name="api-webhook-delivery-resend",
    ),
    path("me", console_api.MeApi.as_view(), name="api-me"),
    path("audit-events/", referrals_api.AuditEventsApi.as_view(), name="api-audit-events"),
    *console_privacy_urls.api_urlpatterns,
    *commerce_stripe_urls.api_urlpatterns,
    *commerce_urls.api_urlpatterns,
    *console_commerce_urls.api_urlpatterns,
]

urlpatterns = [
    path("", rewards_views.home, name="home"),
    path("p/<slug:slug>/", program_views.program_page, name="program-page"),
    path("p/<slug:slug>/widget", program_views.program_widget, name="program-widget"),
    path("parrain.js", program_views.parrain_js, name="parrain-js"),
    path("p/<slug:slug>/subscribe", referrals_views.subscribe, name="program-subscribe"),
    path("r/<str:code>", referrals_views.referral_redirect, name="referral-redirect"),
    path("u/<str:unsubscribe_token>", console_unsubscribe.unsubscribe, name="unsubscribe"),
    *console_urls.urlpatterns,  # spliced, not include()d: the permission table enumerates top-level pages
    *staff_urls.urlpatterns,
    *audit_urls.urlpatterns,
    *console_privacy_urls.urlpatterns,
    *commerce_stripe_urls.urlpatterns,
    *commerce_urls.urlpatterns,
    *console_commerce_urls.urlpatterns,
    path("health/", health.health, name="health"),
    path("metrics", metrics.metrics_view, name="metrics"),  # the scraper only (config/metrics.py)
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SwaggerDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("accounts/", include("allauth.urls")),
    path("i18n/setlang/", i18n.set_language, name="set_language"),
    path("admin/", admin.site.urls),
]

# JSON in the API's error shape under /api/, the HTML pages elsewhere.
handler400 = "config.health.bad_request"
handler403 = "config.health.permission_denied"
handler404 = "config.health.not_found"
handler500 = "config.health.server_error"
