"""Django admin for the tracking core: read-only views of the rows the services write.

Attributions change only through overrides and reviews (the API, and here the review actions), which
recount and audit.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from core import policies
from core.actors import Actor
from core.admin import ReadOnlyAdmin
from core.errors import ParrainError
from referrals.models import Click, Conversion, ReferralLink, Signup
from referrals.services import signup_review


@admin.register(ReferralLink)
class ReferralLinkAdmin(ReadOnlyAdmin):
    list_display = ["code", "channel", "ambassador", "created_at"]
    search_fields = ["code", "ambassador__email"]
    list_select_related = ["ambassador"]


@admin.register(Click)
class ClickAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "ambassador", "link", "user_agent_family", "referer_host", "is_bot"]
    list_filter = ["is_bot"]
    list_select_related = ["ambassador", "link"]
    show_full_result_count = False  # counting a large click table on each page view is slow


class ReviewReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded in the audit trail with each decision.",
    )


def _review(modeladmin: Any, request: Any, queryset: Any, *, action: str, status: str, label: str, verb: str) -> Any:
    """Ask for the reason on a confirmation page, then decide each selected signup through the service."""
    form = ReviewReasonForm(request.POST if "apply" in request.POST else None)
    signups = list(queryset.select_related("program", "ambassador").order_by("pk"))
    if form.is_bound and form.is_valid():
        actor, decided = Actor.for_user(request.user), 0
        for signup in signups:
            try:
                signup_review(signup=signup, status=status, reason=form.cleaned_data["reason"], actor=actor)
                decided += 1
            except ParrainError as exc:
                # Not waiting for review (any more): someone decided it, or it never was held.
                messages.warning(request, f"{signup.email}: {exc.message}")
        messages.success(request, f"{decided} signup(s) {verb}.")
        return None  # back to the change list, with the messages
    waiting = [s for s in signups if s.status == Signup.Status.PENDING_REVIEW]
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"{label} the selected signups",
        "explanation": (
            f"Each signup waiting for review will be {verb}, with this reason, in the audit trail; "
            "its ambassador's rewards are recalculated."
        ),
        "opts": modeladmin.model._meta,
        "queryset": signups,
        "waiting": waiting,
        "skipped": [s for s in signups if s not in waiting],
        "form": form,
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "submit_label": f"{label} them",
        "media": modeladmin.media,
    }
    return TemplateResponse(request, "admin/referrals/signup/review_confirmation.html", context)


@admin.action(description="Approve selected (pending review)", permissions=["review"])
def approve_selected(modeladmin: Any, request: Any, queryset: Any) -> Any:
    return _review(modeladmin, request, queryset, action="approve_selected", status=Signup.Status.QUALIFIED,
                   label="Approve", verb="approved")  # fmt: skip


@admin.action(description="Reject selected (pending review)", permissions=["review"])
def reject_selected(modeladmin: Any, request: Any, queryset: Any) -> Any:
    return _review(modeladmin, request, queryset, action="reject_selected", status=Signup.Status.REJECTED,
                   label="Reject", verb="rejected")  # fmt: skip


@admin.register(Signup)
class SignupAdmin(ReadOnlyAdmin):
    list_display = ["email", "program", "ambassador", "method", "status", "reason", "created_at"]
    list_filter = ["program", "status", "method", "reason"]
    search_fields = ["email", "external_id", "ambassador__code"]
    list_select_related = ["program", "ambassador"]
    actions = [approve_selected, reject_selected]

    def has_review_permission(self, request: Any) -> bool:
        # Fraud review is for admins (design 5), through the review service: never by editing the row.
        return bool(policies.may_review(policies.Principal.from_request(request)))


@admin.register(Conversion)
class ConversionAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "program", "amount", "currency", "status", "occurred_at", "approve_after"]
    list_filter = ["program", "status"]
    search_fields = ["external_id", "signup__email"]
    list_select_related = ["program"]
