"""`/p/<slug>/widget`: the live price for an iframe, framed only by the program's declared hosts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from ambassadors.models import Program
from core.actors import Actor
from rewards.models import RewardTier
from rewards.services import tier_create
from tests.factories import ProgramFactory

pytestmark = pytest.mark.django_db


def ladder(program: Program) -> None:
    tier_create(
        program=program, actor=Actor.system("test"), name="Price drop", kind=RewardTier.Kind.COLLECTIVE, step=5,
        drop_type=RewardTier.DropType.AMOUNT, drop_value=Decimal("1.00"),
    )  # fmt: skip


def directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else "" for part in header.split("; ")}


def test_the_widget_may_be_framed_by_the_programs_declared_hosts_only(program, settings):
    settings.DEBUG = False
    ladder(program)

    response = Client().get(f"/p/{program.slug}/widget")

    assert response.status_code == 200
    assert "X-Frame-Options" not in response  # lifted for this view only
    assert directives(response)["frame-ancestors"] == (
        "https://shop.example.com https://blog.example.com"
    )  # the destination's host, then the allowed redirect hosts; https only
    assert directives(response)["script-src"].startswith("'self'")  # the rest of the policy stands
    html = response.content.decode()
    assert '<strong id="current-price">€20.00</strong>' in html
    assert 'id="program-link" href="/p/book-launch/"' in html


def test_in_development_the_hosts_may_frame_it_over_http_too(program, settings):
    settings.DEBUG = True

    response = Client().get(f"/p/{program.slug}/widget")

    assert directives(response)["frame-ancestors"] == (
        "https://shop.example.com http://shop.example.com https://blog.example.com http://blog.example.com"
    )


def test_a_program_without_declared_hosts_lets_nobody_frame_it(db):
    program = ProgramFactory(slug="hostless", destination_url="", allowed_redirect_hosts=[])

    response = Client().get(f"/p/{program.slug}/widget")

    assert directives(response)["frame-ancestors"] == "'none'"


def test_a_host_that_is_not_a_plain_name_never_reaches_the_header(db):
    program = ProgramFactory(slug="odd", allowed_redirect_hosts=["evil.example; script-src *", "ok.example"])

    response = Client().get(f"/p/{program.slug}/widget")

    assert directives(response)["frame-ancestors"] == "https://shop.example.com https://ok.example"
    assert "script-src *" not in response["Content-Security-Policy"]


def test_the_rest_of_the_site_still_refuses_to_be_framed(program):
    response = Client().get(f"/p/{program.slug}/")

    assert response["X-Frame-Options"] == "DENY"
    assert directives(response)["frame-ancestors"] == "'none'"


@pytest.mark.parametrize("slug", ["nope", "closed"])
def test_an_unknown_or_closed_program_has_no_widget(db, slug):
    ProgramFactory(slug="closed", status=Program.Status.CLOSED)

    assert Client().get(f"/p/{slug}/widget").status_code == 404


def test_the_widget_speaks_the_visitors_language(program):
    ladder(program)

    html = Client(HTTP_ACCEPT_LANGUAGE="fr").get(f"/p/{program.slug}/widget").content.decode()

    assert '<html lang="fr">' in html
    assert "20,00\xa0€" in html
    assert html.count("<h1") == 1
