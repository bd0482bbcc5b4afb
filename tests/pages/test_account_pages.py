"""Accounts by e-mail only: signing up needs no password, logging in is by e-mail address (with a password
or a code e-mailed), and every allauth page is rendered in Parrain's layout with its form fields labelled."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "correct horse battery staple 42"


def _link_in(message) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^/\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_signing_up_asks_for_an_address_and_no_password_and_the_e_mailed_link_signs_in():
    client = Client()
    form = client.get("/accounts/signup/").content.decode()
    assert 'name="email"' in form and 'name="username"' not in form
    assert re.search(r'<input type="password" name="password1"(?![^>]*required)', form)

    response = client.post("/accounts/signup/", {"email": "Nina@Example.org"})

    assert response.status_code == 302
    user = User.objects.get(emailaddress__email="nina@example.org")
    assert not user.has_usable_password()
    (message,) = mail.outbox
    client.post(_link_in(message))
    assert EmailAddress.objects.get(user=user).verified
    assert client.get("/api/v1/me").status_code == 200


def test_logging_in_is_by_e_mail_address_not_by_username():
    user = User.objects.create_user("ambassador", email="ambassador@demo.parrain.test", password=PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)

    by_username = Client().post("/accounts/login/", {"login": "ambassador", "password": PASSWORD})
    by_email = Client().post("/accounts/login/", {"login": "ambassador@demo.parrain.test", "password": PASSWORD})

    assert by_username.status_code == 200  # the form again, with its error
    assert by_email.status_code == 302


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/login/",
        "/accounts/signup/",
        "/accounts/login/code/",
        "/accounts/password/reset/",
    ],
)
def test_account_pages_use_the_site_layout_with_labelled_fields(path):
    html = Client().get(path).content.decode()

    assert '<main id="main"' in html and 'class="skip-link"' in html
    assert html.count("<h1>") == 1
    for field_id in re.findall(r'<input[^>]*\sid="(id_[^"]+)"', html):
        assert f'<label for="{field_id}"' in html, field_id


def test_an_invalid_login_marks_the_field_and_describes_the_error():
    html = Client().post("/accounts/login/", {"login": "not-an-address", "password": ""}).content.decode()

    assert 'aria-invalid="true"' in html
    assert re.search(r'aria-describedby="[^"]*id_password_error', html)
    assert 'id="id_password_error"' in html
