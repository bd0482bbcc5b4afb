"""Forms of the ambassador's pages: a channel link to create, the name others see."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class ChannelLinkForm(forms.Form):
    channel = forms.CharField(
        max_length=32,
        label=_("Channel name"),
        help_text=_("Where you will share this link, such as newsletter or instagram."),
    )


class DisplayNameForm(forms.Form):
    display_name = forms.CharField(
        max_length=100,
        required=False,
        label=_("Display name"),
        help_text=_("The only thing others see of you, on the leaderboard. Leave it empty to stay anonymous."),
    )
