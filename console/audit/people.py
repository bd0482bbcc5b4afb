"""People: an admin answers a privacy request (GDPR) for an e-mail address, by exporting or erasing.

Every step is a POST, so that the address never lands in a URL, a browser history or an access log.
Looking a person up shows counts only; the export (a JSON download) and the erasure each need the
request's reason and leave an audit event (rewards.services.privacy). Who may: may_export_person and
may_erase_person (core.policies); a superuser's account is erased by a superuser only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from console.pages import refused as _refused
from console.privacy import data_download
from core import policies
from core.actors import Actor
from core.errors import ParrainError
from rewards.services import Person, email_check, person_erase, person_export, person_find, person_summary


class PersonLookupForm(forms.Form):
    email = forms.CharField(
        max_length=254,
        label=gettext_lazy("E-mail address"),
        help_text=gettext_lazy("The address the request is about: accounts, ambassador profiles and signups."),
    )

    def clean_email(self) -> str:
        try:
            return email_check(self.cleaned_data["email"])
        except ParrainError as exc:
            raise forms.ValidationError(_("Enter a valid e-mail address.")) from exc


class PersonRequestForm(PersonLookupForm):
    """An export or an erasure: the address looked up (carried along), and the reason, mandatory."""

    reason = forms.CharField(
        max_length=500,
        label=gettext_lazy("Reason"),
        help_text=gettext_lazy(
            "The request this answers (its date, how it came, its reference). Kept in the audit trail."
        ),
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].widget = forms.HiddenInput()

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Say why."))
        return reason


def _may_look_up(request: HttpRequest) -> HttpResponse | None:
    return _refused(request, policies.may_export_person(policies.Principal.from_request(request)))


def _render(
    request: HttpRequest,
    *,
    lookup: PersonLookupForm | None = None,
    action_form: PersonRequestForm | None = None,
    action: str = "",
) -> HttpResponse:
    lookup = lookup or PersonLookupForm()
    context: dict[str, Any] = {"console_section": "people", "lookup": lookup, "action": action, "errors_of": None}
    email = ""
    if action_form is not None:
        context["errors_of"] = action_form
        email = action_form.cleaned_data.get("email", "")
    elif lookup.is_bound and lookup.is_valid():
        email = lookup.cleaned_data["email"]
    if email:
        person = person_find(email=email)
        summary = person_summary(person)
        context.update(
            email=email,
            found=person.found,
            summary=summary,
            may_erase=bool(policies.may_erase_person(policies.Principal.from_request(request), _subject(person))),
            export_form=action_form
            if action == "export"
            else PersonRequestForm(initial={"email": email}, prefix="export"),
            erase_form=action_form
            if action == "erase"
            else PersonRequestForm(initial={"email": email}, prefix="erase"),
        )
    return render(request, "audit/people.html", context)


def _subject(person: Person) -> Any:
    """The account the policy weighs: a superuser's if the person has one (the strictest), else any."""
    users = get_user_model().objects.filter(pk__in=person.user_ids)
    return users.order_by("-is_superuser", "pk").first()


@require_http_methods(["GET", "HEAD", "POST"])
def people(request: HttpRequest) -> HttpResponse:
    """GET: the lookup form. POST: what is held under the address (counts), with the export and erasure."""
    if refused := _may_look_up(request):
        return refused
    lookup = PersonLookupForm(request.POST) if request.method == "POST" else None
    return _render(request, lookup=lookup)


@require_POST
def people_export(request: HttpRequest) -> HttpResponse:
    if refused := _may_look_up(request):
        return refused
    form = PersonRequestForm(request.POST, prefix="export")
    if not form.is_valid():
        return _render(request, action_form=form, action="export")
    person = person_find(email=form.cleaned_data["email"])
    if not person.found:
        messages.warning(request, _("Nothing is held under this address."))
        return HttpResponseRedirect(reverse("audit-people"))
    data = person_export(person=person, actor=Actor.for_request(request), reason=form.cleaned_data["reason"])
    return data_download(data, "parrain-person-data.json")


@require_POST
def people_erase(request: HttpRequest) -> HttpResponse:
    principal = policies.Principal.from_request(request)
    if refused := _refused(request, policies.may_erase_person(principal)):
        return refused
    form = PersonRequestForm(request.POST, prefix="erase")
    if not form.is_valid():
        return _render(request, action_form=form, action="erase")
    person = person_find(email=form.cleaned_data["email"])
    if refused := _refused(request, policies.may_erase_person(principal, _subject(person))):
        return refused
    if not person.found:
        messages.warning(request, _("Nothing is held under this address: nothing to erase."))
        return HttpResponseRedirect(reverse("audit-people"))
    result = person_erase(person=person, actor=Actor.for_request(request), reason=form.cleaned_data["reason"])
    if result.already_erased:
        messages.info(request, _("This person was erased already (%(pseudonym)s).") % {"pseudonym": result.pseudonym})
    else:
        messages.success(request, _("Erased: the person is now %(pseudonym)s.") % {"pseudonym": result.pseudonym})
    return HttpResponseRedirect(reverse("audit-people"))


urlpatterns = [
    path("audit/people/", people, name="audit-people"),
    path("audit/people/export", people_export, name="audit-people-export"),
    path("audit/people/erase", people_erase, name="audit-people-erase"),
]
