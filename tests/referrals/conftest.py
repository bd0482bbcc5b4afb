"""Fixtures of the tracking-core tests, on top of the personas of tests/conftest.py."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.conftest import bearer
from tests.factories import ProgramFactory, enroll


@pytest.fixture
def bob(program):
    """Bob, a second ambassador of the same program, competing with Ana for the same friends."""
    return enroll(program, "bob@example.com", display_name="Bob")


@pytest.fixture
def other_program(db):
    return ProgramFactory(slug="other-launch", name="Another Launch")


@pytest.fixture
def other_key(other_program) -> str:
    """A key carrying every scope, but for another program."""
    from ambassadors.services import api_key_create

    return api_key_create(program=other_program, scopes=["track", "read", "manage"])[1]


@pytest.fixture
def tracker(track_key) -> APIClient:
    """The shop's server, calling the API with its track key."""
    client = APIClient()
    client.credentials(**bearer(track_key))
    return client


@pytest.fixture
def reader(read_key) -> APIClient:
    client = APIClient()
    client.credentials(**bearer(read_key))
    return client
