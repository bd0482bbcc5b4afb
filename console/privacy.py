""" "Your data": the signed-in person downloads everything Parrain holds about them, or erases their account.

Both are POSTs (an export is audited, an erasure cannot be undone); the erasure asks the person to type
their e-mail address, so that a stray click or a forged form cannot erase anyone. The rule lives in
rewards.services.privacy; who may is core.policies.may_export_person / may_erase_person.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from console.pages import refused as _refused
from core import policies
from core.actors import Actor
from core.errors import ParrainError
from rewards.services import person_erase, person_export, person_of_user, person_summary

SELF_ERASURE_REASON = 'Erased by the person, from their account\'s "Your data" page.'


class EraseConfirmForm(forms.Form):
    confirm = forms.CharField(
        max_length=254,
        label=gettext_lazy("Type your e-mail address to confirm"),
        help_text=gettext_lazy("This cannot be undone."),
    )

    def __init__(self, *args: Any, expected: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_confirm(self) -> str:
        typed = self.cleaned_data["confirm"].strip()
        if typed.casefold() != self.expected.casefold():
            raise forms.ValidationError(_("This is not the e-mail address of your account."))
        return typed


def confirmation_word(user: Any) -> str:
    """What the person types to confirm: the address they sign in with (the username when there is none)."""
    return str(user.email or user.get_username())


def data_download(data: dict[str, Any], filename: str) -> HttpResponse:
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _render(request: HttpRequest, form: EraseConfirmForm | None = None) -> HttpResponse:
    principal = policies.Principal.from_request(request)
    user: Any = request.user
    context = {
        "summary": person_summary(person_of_user(user=user)),
        "may_erase": bool(policies.may_erase_person(principal, user)),
        "form": form or EraseConfirmForm(expected=confirmation_word(user)),
    }
    return render(request, "privacy/your_data.html", context)


@require_http_methods(["GET", "HEAD"])
def your_data(request: HttpRequest) -> HttpResponse:
    if refused := _refused(request, policies.may_export_person(policies.Principal.from_request(request), request.user)):
        return refused
    return _render(request)


@require_POST
def your_data_export(request: HttpRequest) -> HttpResponse:
    if refused := _refused(request, policies.may_export_person(policies.Principal.from_request(request), request.user)):
        return refused
    data = person_export(person=person_of_user(user=request.user), actor=Actor.for_user(request.user))
    return data_download(data, "parrain-my-data.json")


@require_POST
def your_data_erase(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if refused := _refused(request, policies.may_erase_person(policies.Principal.from_request(request), user)):
        return refused
    form = EraseConfirmForm(request.POST, expected=confirmation_word(user))
    if not form.is_valid():
        return _render(request, form)
    actor = Actor.for_user(user)  # before the erasure, which deletes the account's audit pseudonym
    try:
        person_erase(person=person_of_user(user=user), actor=actor, reason=SELF_ERASURE_REASON)
    except ParrainError as exc:
        form.add_error(None, exc.message)
        return _render(request, form)
    logout(request)
    messages.success(request, _("Your account is erased. Thank you for having been part of it."))
    return HttpResponseRedirect(reverse("home"))


urlpatterns = [
    path("account/data/", your_data, name="privacy"),
    path("account/data/export", your_data_export, name="privacy-export"),
    path("account/data/erase", your_data_erase, name="privacy-erase"),
]
