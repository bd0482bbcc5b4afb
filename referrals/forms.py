"""The hosted subscription form for referees."""

from django import forms
from django.utils.translation import gettext_lazy as _


class SubscribeForm(forms.Form):
    email = forms.EmailField(max_length=254, label=_("Your e-mail"))
    referral_code = forms.CharField(
        max_length=64,
        required=False,
        label=_("Referral code (optional)"),
        help_text=_("If a friend gave you one."),
    )
    wants_price_news = forms.BooleanField(
        required=False, label=_("E-mail me when the price drops"), help_text=_("One click in each e-mail stops them.")
    )
    click_id = forms.CharField(max_length=64, required=False, widget=forms.HiddenInput)
