"""The audit console's forms: the two searches, and the override and review of one signup."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from ambassadors.models import Program
from console.audit.labels import CONVERSION_STATUSES, SIGNUP_METHODS, SIGNUP_STATUSES
from console.audit.queries import Filters

REASON_MAX_LENGTH = 2000


def _choices(labels: dict[str, Any]) -> list[tuple[str, Any]]:
    return [("", _("Any")), *labels.items()]


class _SearchForm(forms.Form):
    program = forms.ModelChoiceField(
        queryset=Program.objects.order_by("name"), required=False, empty_label=_("All programs"), label=_("Program")
    )
    email = forms.CharField(
        label=_("Subscriber's e-mail"),
        required=False,
        max_length=254,
        help_text=_("The whole address finds it however it was written (dots, +tags); its beginning finds all."),
    )
    ambassador = forms.CharField(
        label=_("Ambassador"), required=False, max_length=254, help_text=_("Their code or their e-mail address.")
    )
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end of the period comes before its start."))
        return data

    def filters(self) -> Filters:
        data = self.cleaned_data
        return Filters(
            program=data.get("program"),
            email=data.get("email") or "",
            ambassador=data.get("ambassador") or "",
            status=data.get("status") or "",
            method=data.get("method") or "",
            external_id=data.get("external_id") or "",
            since=data.get("since"),
            until=data.get("until"),
        )


class SignupSearchForm(_SearchForm):
    status = forms.ChoiceField(label=_("Status"), required=False, choices=_choices(SIGNUP_STATUSES))
    method = forms.ChoiceField(label=_("Credited by"), required=False, choices=_choices(SIGNUP_METHODS))

    field_order = ["email", "ambassador", "program", "status", "method", "since", "until"]


class ConversionSearchForm(_SearchForm):
    external_id = forms.CharField(label=_("Order number (external id)"), required=False, max_length=128)
    status = forms.ChoiceField(label=_("Status"), required=False, choices=_choices(CONVERSION_STATUSES))

    field_order = ["external_id", "email", "ambassador", "program", "status", "since", "until"]


class _ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Kept in the audit trail with your name."),
        error_messages={"required": _("Say why: the reason is kept in the audit trail.")},
    )


class ReassignForm(_ReasonForm):
    action = forms.CharField(widget=forms.HiddenInput, initial="reassign")
    ambassador_code = forms.CharField(label=_("New ambassador's code"), max_length=64)

    field_order = ["action", "ambassador_code", "reason"]


class UnassignForm(_ReasonForm):
    action = forms.CharField(widget=forms.HiddenInput, initial="unassign")


class ReviewForm(_ReasonForm):
    decision = forms.ChoiceField(
        label=_("Decision"),
        choices=[("approve", _("Approve: it counts")), ("reject", _("Reject: it never counts"))],
        widget=forms.RadioSelect,
    )

    field_order = ["decision", "reason"]
