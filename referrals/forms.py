"""The hosted subscription form for referees."""

from django import forms


class SubscribeForm(forms.Form):
    email = forms.EmailField(max_length=254, label="Your e-mail")
    referral_code = forms.CharField(
        max_length=64, required=False, label="Referral code (optional)", help_text="If a friend gave you one."
    )
    click_id = forms.CharField(max_length=64, required=False, widget=forms.HiddenInput)
