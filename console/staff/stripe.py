"""The staff console's Stripe page of a program: the endpoint URL to register in Stripe, the signing secret
Stripe gives for it and the API key (both write-only: shown masked, replaced to rotate), vouchers as
promotion codes, and the last event received.

The view asks core.policies.may_manage_stripe; every write is commerce.stripe_accounts.stripe_account_update,
which validates and audits it without the secrets.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from ambassadors.models import Program
from commerce.models import StripePromotionCode
from commerce.stripe_accounts import masked, stripe_account_of, stripe_account_update
from commerce.stripe_events import REF_METADATA_KEY, STRIPE_EVENTS
from console.pages import staff_program
from core import policies
from core.actors import Actor
from core.errors import ParrainError


class StripeSettingsForm(forms.Form):
    # Write-only: a stored secret is never sent back to the browser (render_value=False); empty keeps it.
    webhook_secret = forms.CharField(
        label=gettext_lazy("Webhook signing secret"),
        required=False,
        max_length=200,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=gettext_lazy(
            "The whsec_… secret Stripe shows for this endpoint. Leave empty to keep the current one; paste a "
            "new one to replace it."
        ),
    )
    api_key = forms.CharField(
        label=gettext_lazy("Stripe API key"),
        required=False,
        max_length=255,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=gettext_lazy(
            "Optional: a restricted key (rk_…) allowed to write Coupons and Promotion codes, needed only for "
            "vouchers as promotion codes. Leave empty to keep the current one."
        ),
    )
    remove_api_key = forms.BooleanField(label=gettext_lazy("Remove the API key"), required=False)
    promotion_codes_enabled = forms.BooleanField(
        label=gettext_lazy("Create each voucher as a Stripe promotion code"),
        required=False,
        help_text=gettext_lazy(
            "Percent and fixed-amount vouchers become promotion codes with the same code, usable once; a "
            "checkout that uses one redeems the voucher."
        ),
    )


def _program_for(request: HttpRequest, slug: str) -> Program | HttpResponse:
    return staff_program(request, slug, policies.may_manage_stripe)


@require_http_methods(["GET", "HEAD", "POST"])
def staff_stripe(request: HttpRequest, slug: str) -> HttpResponse:
    """The program's Stripe settings; a POST saves them."""
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    account = stripe_account_of(program)
    status = 200
    if request.method == "POST":
        form = StripeSettingsForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                stripe_account_update(
                    program=program,
                    actor=Actor.for_request(request),
                    webhook_secret=data["webhook_secret"] or None,
                    api_key="" if data["remove_api_key"] else (data["api_key"] or None),
                    promotion_codes_enabled=data["promotion_codes_enabled"],
                )
            except ParrainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, _("The Stripe settings are saved."))
                return HttpResponseRedirect(reverse("staff-stripe", kwargs={"slug": program.slug}))
        status = 400
    else:
        form = StripeSettingsForm(
            initial={"promotion_codes_enabled": account.promotion_codes_enabled if account else False}
        )
    context: dict[str, Any] = {
        "program": program,
        "account": account,
        "webhook_secret_masked": masked(account.webhook_secret) if account else "",
        "api_key_masked": masked(account.api_key) if account else "",
        "endpoint_url": request.build_absolute_uri(reverse("stripe-webhook", kwargs={"slug": program.slug})),
        "events": STRIPE_EVENTS,
        "ref_key": REF_METADATA_KEY,
        "promotion_codes_failing": StripePromotionCode.objects.filter(program=program, completed_at__isnull=True)
        .exclude(last_error="")
        .count(),
        "form": form,
        "console_section": "programs",
        "tab": "stripe",
    }
    return render(request, "staff/stripe.html", context, status=status)


urlpatterns = [
    path("staff/p/<slug:slug>/stripe/", staff_stripe, name="staff-stripe"),
]
