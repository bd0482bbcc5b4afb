"""Sign-in and the claim of ambassador profiles: an account gets a profile only by proving its address.

A profile enrolled by e-mail (API, admin, join form) waits on a placeholder account (ambassadors.services).
Its owner proves the address with allauth, either way ending in `email_confirmed`, which claims it:
- a log-in code asked for at /accounts/login/code/ reaches the placeholder, and entering it verifies the
  address and signs them in;
- signing up at /accounts/signup/ with the address, then following the confirmation link.
Typing someone's address into the signup form proves nothing, so it neither claims a profile nor blocks
the address's owner from signing up after it (allauth, left alone, would say "already registered").
"""

from __future__ import annotations

from typing import Any

from allauth.account import forms as allauth_forms
from allauth.account.adapter import get_adapter
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model

from ambassadors.services import PLACEHOLDER_PREFIX, ambassador_claim

User = get_user_model()


def address_taken(email: str) -> bool:
    """Whether an account holds `email` for real: verified, or set by an admin outside the signup form.

    Placeholders and accounts that only typed the address in (unverified) do not hold it: the first to
    prove it gets it, and allauth's unique verified address constraint makes that one account.
    """
    address = email.strip().lower()
    if EmailAddress.objects.filter(email=address, verified=True).exists():
        return True
    typed_in = EmailAddress.objects.filter(email=address).values("user_id")
    return User.objects.filter(email__iexact=address, is_active=True).exclude(pk__in=typed_in).exists()


def account_for_login_code(email: str) -> Any:
    """The account a log-in code for `email` signs in to, or None (allauth then mails "no account").

    Never an account whose address is unverified and not a placeholder: whoever typed the address into
    the signup form also knows its password, and the owner entering the code would verify the address
    for them, handing them every profile enrolled with it.
    """
    address = email.strip().lower()
    active = User.objects.filter(is_active=True)
    proof = EmailAddress.objects.filter(email=address, verified=True, user__in=active).select_related("user")
    if (verified := proof.first()) is not None:
        return verified.user
    typed_in = EmailAddress.objects.filter(email=address).values("user_id")
    placeholder = active.filter(pk__in=typed_in, username__startswith=PLACEHOLDER_PREFIX).order_by("pk").first()
    if placeholder is not None:
        return placeholder
    # An account an admin made with this address: nobody typed it into the signup form.
    return active.filter(email__iexact=address).exclude(pk__in=typed_in).order_by("pk").first()


class SignupForm(allauth_forms.SignupForm):
    """allauth's signup form, where only an account that holds the address for real makes it "taken"."""

    def validate_unique_email(self, value: str) -> str:
        if address_taken(value):
            return super().validate_unique_email(value)
        self.account_already_exists = False
        return str(get_adapter().validate_unique_email(value))


class RequestLoginCodeForm(allauth_forms.RequestLoginCodeForm):
    """allauth's "e-mail me a code" form, sending the code for the account account_for_login_code picks."""

    def clean_email(self) -> str:
        email = str(super().clean_email())  # allauth's rate limit and enumeration rules
        if email:
            self._user = account_for_login_code(email)
        return email


def claim_on_email_confirmed(sender: Any, request: Any, email_address: EmailAddress, **kwargs: Any) -> None:
    """allauth verified an address (a confirmation link, a log-in code, a code at signup): claim its profiles."""
    ambassador_claim(user=email_address.user, email=email_address.email)
