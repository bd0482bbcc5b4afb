"""The ambassador's bank details for cash rewards (account holder, IBAN, optional BIC): their own page per
program, /dashboard/<slug>/payout-details. The IBAN is shown back masked; the rules are
rewards.services.payouts' (payout_details_set checks the IBAN's check digits)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from ambassadors.models import Ambassador
from console.pages import refused
from core import policies
from core.actors import Actor
from core.errors import ParrainError
from rewards.models import PayoutDetails
from rewards.services.payouts import payout_details_set


class PayoutDetailsForm(forms.Form):
    account_holder = forms.CharField(
        label=gettext_lazy("Account holder"),
        max_length=70,
        help_text=gettext_lazy("The name on the bank account, as your bank spells it."),
    )
    iban = forms.CharField(label=gettext_lazy("IBAN"), max_length=42)
    bic = forms.CharField(label=gettext_lazy("BIC (optional)"), max_length=11, required=False)


def _ambassador_for(request: HttpRequest, slug: str) -> Ambassador:
    """The signed-in person's own ambassadorship in this program; anybody else's, or none, is a 404."""
    ambassador = (
        Ambassador.objects.filter(program__slug=slug, user=request.user, is_active=True)  # type: ignore[misc]
        .select_related("program")
        .first()
    )
    if ambassador is None:
        raise Http404("You are not an ambassador of this program.")
    return ambassador


@require_http_methods(["GET", "HEAD", "POST"])
def dashboard_payout_details(request: HttpRequest, slug: str) -> HttpResponse:
    if answer := refused(request, policies.may_set_payout_details(policies.Principal.from_request(request))):
        return answer
    ambassador = _ambassador_for(request, slug)
    current = PayoutDetails.objects.filter(ambassador=ambassador).first()
    status = 200
    if request.method == "POST":
        form = PayoutDetailsForm(request.POST)
        if form.is_valid():
            try:
                payout_details_set(ambassador=ambassador, actor=Actor.for_user(request.user), **form.cleaned_data)
            except ParrainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, _("Your bank details are saved: your cash rewards will be paid there."))
                return HttpResponseRedirect(reverse("dashboard-payout-details", kwargs={"slug": slug}))
        status = 400
    else:
        # The IBAN is never sent back whole: the ambassador types it again to change it.
        form = PayoutDetailsForm(
            initial={"account_holder": current.account_holder, "bic": current.bic} if current else None
        )
    context: dict[str, Any] = {
        "ambassador": ambassador,
        "program": ambassador.program,
        "current": current,
        "form": form,
    }
    return render(request, "console/payout_details.html", context, status=status)


urlpatterns = [
    path("dashboard/<slug:slug>/payout-details", dashboard_payout_details, name="dashboard-payout-details"),
]
