"""The language switch: Django's set_language (the language cookie), and the choice saved on the user.

The saved choice is what e-mails are written in (core.notifications.recipient_language), since an e-mail
has no browser to ask.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.i18n import set_language as django_set_language

from core.models import UserPreference


def set_language(request: HttpRequest) -> HttpResponse:
    response = django_set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        UserPreference.objects.update_or_create(user=request.user, defaults={"language": language})
    return response
