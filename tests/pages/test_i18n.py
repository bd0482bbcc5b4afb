"""French and English: the browser's language picks one, the switch changes it, every string of the French
catalogue is translated and compiled, and money is written the way each language writes it."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from django.conf import settings
from django.template import Context, Template
from django.test import Client
from django.utils import translation

from tests.factories import ProgramFactory

PO = Path(settings.BASE_DIR) / "locale" / "fr" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
NBSP = "\N{NO-BREAK SPACE}"


def _french_catalogue():
    with PO.open("rb") as handle:
        return read_po(handle, locale="fr")


def test_every_french_entry_is_translated_and_none_is_fuzzy_or_obsolete():
    catalogue = _french_catalogue()
    untranslated, fuzzy = [], []
    for message in catalogue:
        if not message.id:
            continue  # the header
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        if not all(strings):
            untranslated.append(message.id)
        if message.fuzzy:
            fuzzy.append(message.id)

    assert untranslated == []
    assert fuzzy == []
    assert list(catalogue.obsolete) == []


def test_the_compiled_catalogue_says_what_the_po_says():
    """The .mo is committed (no gettext needed to run Parrain): it must be compiled from this .po."""

    def entries(catalogue):
        # Babel's .mo reader gives the context as bytes, its .po reader as text.
        return {
            (
                m.context.decode() if isinstance(m.context, bytes) else m.context,
                m.id if isinstance(m.id, str) else m.id[0],
            ): m.string if isinstance(m.string, str) else list(m.string)
            for m in catalogue
            if m.id
        }

    with MO.open("rb") as handle:
        compiled = entries(read_mo(handle))

    assert compiled == entries(_french_catalogue())


@pytest.mark.parametrize(
    ("language", "expected"), [("fr", f"20,00{NBSP}€"), ("en", "€20.00"), ("fr-ca", f"20,00{NBSP}€")]
)
def test_money_is_written_the_way_the_language_writes_it(language, expected):
    template = Template("{% load parrain %}{{ amount|money:currency }}")

    with translation.override(language):
        assert template.render(Context({"amount": Decimal("20"), "currency": "EUR"})) == expected


def test_money_of_nothing_is_nothing_not_zero():
    template = Template("{% load parrain %}[{{ amount|money }}]")

    assert template.render(Context({"amount": None})) == "[]"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accept", "lang", "heading"),
    [("fr-FR,fr;q=0.9,en;q=0.5", "fr", "Programmes"), ("en-GB,en;q=0.9", "en", "Programs"), ("de", "en", "Programs")],
)
def test_the_browser_language_picks_the_page_language(accept, lang, heading):
    response = Client(HTTP_ACCEPT_LANGUAGE=accept).get("/")

    html = response.content.decode()
    assert f'<html lang="{lang}">' in html
    assert re.search(rf"<h1>\s*{heading}\s*</h1>", html)
    assert response.headers["Content-Language"] == lang


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "french"),
    [
        ("/", "Passer au contenu principal"),
        ("/accounts/login/", "Envoyez-moi un code de connexion"),
        ("/accounts/signup/", "Création de compte"),
        ("/accounts/login/code/", "Envoyez-moi un code de connexion"),
        ("/accounts/password/reset/", "Mot de passe oublié"),
        ("/p/launch/subscribe", "Votre adresse e-mail"),
        ("/r/NOSUCHCODE", "Ce lien de parrainage ne fonctionne pas"),
        ("/no-such-page/", "Nous n’avons pas trouvé cette page"),
    ],
)
def test_pages_render_in_french_and_in_english(path, french):
    ProgramFactory(slug="launch", name="Book Launch", destination_url="", allowed_redirect_hosts=[])

    in_french = Client(HTTP_ACCEPT_LANGUAGE="fr").get(path).content.decode()
    in_english = Client(HTTP_ACCEPT_LANGUAGE="en").get(path).content.decode()

    assert '<html lang="fr">' in in_french and french in in_french
    assert '<html lang="en">' in in_english and french not in in_english


@pytest.mark.django_db
def test_the_language_switch_posts_a_labelled_choice_and_comes_back_to_the_page():
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert '<label for="language-select">Language</label>' in page
    assert '<select id="language-select" name="language"' in page

    response = client.post(
        "/i18n/setlang/", {"language": "fr", "next": "/accounts/login/", "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302 and response.headers["Location"] == "/accounts/login/"
    again = client.get("/accounts/login/").content.decode()
    assert '<html lang="fr">' in again
    assert '<label for="language-select">Langue</label>' in again
