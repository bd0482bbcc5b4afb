"""Forms of the fraud review queue and of the audit trail: filters (GET) and the decision (POST)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from ambassadors.models import Program

# The most signups one decision may carry: a page of the queue, with room to spare.
MAX_DECIDED = 500


def cursor_encode(created_at: datetime, pk: int) -> str:
    """A keyset position: the (created_at, id) of the last row shown, as an opaque query parameter."""
    return f"{created_at.isoformat()}_{pk}"


def cursor_decode(value: str) -> tuple[datetime, int] | None:
    stamp, _sep, pk = value.rpartition("_")
    try:
        moment = parse_datetime(stamp)
        number = int(pk)
    except ValueError:
        return None
    if moment is None or timezone.is_naive(moment):
        return None
    return moment, number


class CursorField(forms.CharField):
    """The keyset position of a page; anything else than one written by cursor_encode is an error."""

    def to_python(self, value: Any) -> tuple[datetime, int] | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        decoded = cursor_decode(text)
        if decoded is None:
            raise ValidationError(_("This page position is not valid."), code="invalid")
        return decoded


def _program_field() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=Program.objects.order_by("name", "pk"),
        required=False,
        label=_("Program"),
        empty_label=_("All programs"),
        to_field_name="slug",
    )


class ReviewFilterForm(forms.Form):
    """What the queue shows: one program or all, from a position (oldest first)."""

    program = _program_field()
    after = CursorField(required=False, widget=forms.HiddenInput)


class SignupIdsField(forms.Field):
    """The checked signups: one or more ids (the checkboxes of the queue render themselves)."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "required": _("Select at least one signup."),
        "invalid": _("A selected signup is not valid."),
        "too_many": _("Select at most %(limit)s signups at once."),
    }

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        if not isinstance(value, (list, tuple)):
            value = [value]
        try:
            ids = sorted({int(item) for item in value})
        except (TypeError, ValueError):
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        if any(pk <= 0 for pk in ids):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        if len(ids) > MAX_DECIDED:
            raise ValidationError(self.error_messages["too_many"], code="too_many", params={"limit": MAX_DECIDED})
        return ids


class ReviewDecisionForm(forms.Form):
    """Approve or reject the checked signups, with the reason the audit trail keeps for each."""

    APPROVE = "approve"
    REJECT = "reject"

    signups = SignupIdsField(label=_("Signups"))
    decision = forms.ChoiceField(
        label=_("Decision"),
        choices=[(APPROVE, _("Approve: the signup counts for its ambassador")), (REJECT, _("Reject: it never counts"))],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Recorded in the audit trail with each decision."),
    )


class TrailFilterForm(forms.Form):
    """What the trail shows: every filter narrows it; the period's days are whole days in the site's zone."""

    program = _program_field()
    object_type = forms.CharField(label=_("Object type"), required=False, max_length=64)
    object_id = forms.CharField(label=_("Object id"), required=False, max_length=64)
    actor = forms.CharField(
        label=_("Actor"), required=False, max_length=255, help_text=_("A username, API key prefix or task name.")
    )
    action = forms.CharField(
        label=_("Action"), required=False, max_length=64, help_text=_("The beginning is enough: signup.")
    )
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    before = CursorField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", _("The end of the period comes before its start."))
        return data

    def period(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) of the chosen days, aware, in the current time zone."""
        since, until = self.cleaned_data.get("since"), self.cleaned_data.get("until")
        zone = timezone.get_current_timezone()
        start = datetime.combine(since, time.min, tzinfo=zone) if since else None
        end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone) if until else None
        return start, end
