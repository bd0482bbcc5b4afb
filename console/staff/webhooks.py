"""The staff console's webhooks of a program: its endpoints (add one, see its secret, switch it off and on)
and each endpoint's recent deliveries with their attempts (resend one).

Every view asks core.policies.may_manage_webhooks first; every write is a service's
(ambassadors.webhooks: endpoint_create, endpoint_update, delivery_resend), which checks and audits it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from ambassadors.models import Program, WebhookDelivery, WebhookEndpoint
from ambassadors.webhooks import delivery_resend, endpoint_create, endpoint_update
from console.pages import staff_program
from core import policies
from core.actors import Actor
from core.errors import ParrainError
from core.webhook_events import WEBHOOK_EVENTS

# Deliveries shown on an endpoint's page, newest first (the API pages through all of them).
DELIVERIES_SHOWN = 20


class EndpointForm(forms.Form):
    url = forms.CharField(
        label=gettext_lazy("URL"),
        max_length=500,
        help_text=gettext_lazy("An http or https address on the public internet. Redirects are not followed."),
    )
    description = forms.CharField(label=gettext_lazy("Description"), max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label=gettext_lazy("Events"),
        choices=[(name, name) for name in WEBHOOK_EVENTS],
        widget=forms.CheckboxSelectMultiple,
    )

    def add_service_error(self, exc: ParrainError) -> None:
        self.add_error(exc.field if exc.field in self.fields else None, exc.message)


def _program_for(request: HttpRequest, slug: str) -> Program | HttpResponse:
    return staff_program(request, slug, policies.may_manage_webhooks)


def _endpoint_for(program: Program, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(program=program, pk=endpoint_id).first()
    if endpoint is None:
        raise Http404("No webhook endpoint with this id in this program.")
    return endpoint


def endpoints_for_console(program: Program) -> QuerySet[WebhookEndpoint]:
    """A program's endpoints with their pending and abandoned deliveries counted: one query."""
    return (
        WebhookEndpoint.objects.filter(program=program)
        .annotate(
            pending_count=Count("deliveries", filter=Q(deliveries__status="pending")),
            abandoned_count=Count("deliveries", filter=Q(deliveries__status="abandoned")),
        )
        .order_by("id")
    )


def _endpoint_url(program: Program, endpoint: WebhookEndpoint) -> str:
    return reverse("staff-webhook", kwargs={"slug": program.slug, "endpoint_id": endpoint.pk})


@require_http_methods(["GET", "HEAD", "POST"])
def staff_webhooks(request: HttpRequest, slug: str) -> HttpResponse:
    """A program's endpoints, and the form that adds one."""
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    status = 200
    if request.method == "POST":
        form = EndpointForm(request.POST)
        if form.is_valid():
            try:
                endpoint = endpoint_create(program=program, actor=Actor.for_request(request), **form.cleaned_data)
            except ParrainError as exc:
                form.add_service_error(exc)
            else:
                messages.success(request, _("The endpoint is added. Give its secret to the receiver."))
                return HttpResponseRedirect(_endpoint_url(program, endpoint))
        status = 400
    else:
        form = EndpointForm()
    context: dict[str, Any] = {
        "program": program,
        "endpoints": list(endpoints_for_console(program)),
        "form": form,
        "console_section": "programs",
        "tab": "webhooks",
    }
    return render(request, "staff/webhooks.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
def staff_webhook(request: HttpRequest, slug: str, endpoint_id: int) -> HttpResponse:
    """One endpoint: its settings and secret, its recent deliveries with their attempts; a POST with
    `is_active` switches it on or off."""
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    endpoint = _endpoint_for(program, endpoint_id)
    if request.method == "POST":
        active = request.POST.get("is_active")
        if active not in ("true", "false"):
            messages.error(request, _("Choose whether the endpoint is on or off."))
        else:
            endpoint = endpoint_update(endpoint=endpoint, actor=Actor.for_request(request), is_active=active == "true")
            if endpoint.is_active:
                messages.success(request, _("The endpoint is on: the deliveries that waited are sent."))
            else:
                messages.success(request, _("The endpoint is off: nothing is sent to it until it is on again."))
        return HttpResponseRedirect(_endpoint_url(program, endpoint))
    deliveries = list(
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("message")
        .prefetch_related("attempt_log")
        .order_by("-id")[:DELIVERIES_SHOWN]
    )
    context: dict[str, Any] = {
        "program": program,
        "endpoint": endpoint,
        "deliveries": deliveries,
        "console_section": "programs",
        "tab": "webhooks",
    }
    return render(request, "staff/webhook.html", context)


@require_POST
def staff_webhook_resend(request: HttpRequest, slug: str, endpoint_id: int, delivery_id: int) -> HttpResponse:
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    endpoint = _endpoint_for(program, endpoint_id)
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint, pk=delivery_id).select_related("endpoint").first()
    if delivery is None:
        raise Http404("No delivery with this id for this endpoint.")
    try:
        delivery_resend(delivery=delivery, actor=Actor.for_request(request))
    except ParrainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The delivery %(id)s is sent again.") % {"id": delivery.event_id})
    return HttpResponseRedirect(_endpoint_url(program, endpoint) + "#deliveries")


urlpatterns = [
    path("staff/p/<slug:slug>/webhooks/", staff_webhooks, name="staff-webhooks"),
    path("staff/p/<slug:slug>/webhooks/<int:endpoint_id>/", staff_webhook, name="staff-webhook"),
    path(
        "staff/p/<slug:slug>/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/resend",
        staff_webhook_resend,
        name="staff-webhook-resend",
    ),
]
