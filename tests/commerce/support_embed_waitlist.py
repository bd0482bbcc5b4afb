"""The scene of the embed and waitlist tests (imported by them, not a conftest: other commerce tests have
their own): another program beside tests/conftest.py's book-launch, Ana and Bob, keys of the program.

A test module takes the fixtures it uses by assignment (`ana = support.ana`): pytest finds them by name."""

from __future__ import annotations

from typing import Any

import pytest

from ambassadors.services import api_key_create
from core.actors import Actor
from tests.factories import ProgramFactory, enroll


@pytest.fixture
def other_program(db) -> Any:
    return ProgramFactory(
        slug="other-launch",
        name="Other launch",
        destination_url="https://elsewhere.example.net/",
        allowed_redirect_hosts=["elsewhere.example.net"],
    )


@pytest.fixture
def ana(program) -> Any:
    return enroll(program, "ana@example.com", display_name="Ana")


@pytest.fixture
def bob(program) -> Any:
    return enroll(program, "bob@example.com", display_name="Bob")


def key(program: Any, *scopes: str) -> str:
    return api_key_create(actor=Actor.system("test"), program=program, scopes=list(scopes))[1]


@pytest.fixture
def manage_key(program) -> str:
    return key(program, "manage")
