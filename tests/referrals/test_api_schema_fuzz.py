"""Every operation of the published OpenAPI schema, fed generated input: never a 5xx (design 4)."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from core.actors import Actor
from referrals.services import conversion_record, signup_record

pytestmark = pytest.mark.django_db

# Reading the schema touches no table, so it can be loaded while the tests are collected.
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def full_key(program) -> str:
    from ambassadors.services import api_key_create

    return api_key_create(actor=Actor.system("tests"), program=program, scopes=["track", "read", "manage"])[1]


@pytest.fixture
def scene(program, ambassador, friend_email):
    """Something to find: a signup with a conversion, so generated calls reach past the 404s."""
    system = Actor.system("test")
    signup_record(program=program, email=friend_email, referral_code=ambassador.code, actor=system)
    conversion_record(program=program, actor=system, external_id="o-1", amount="9.00", currency="EUR",
                      email=friend_email)  # fmt: skip


@pytest.fixture
def wsgi_inside_the_test_transaction():
    # Requests go through the bare WSGI app inside the test's transaction: like Django's test client,
    # keep the end of each request from closing the connection that holds that transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_operation_ever_answers_a_server_error(case, program, full_key, scene, wsgi_inside_the_test_transaction):
    if "slug" in (case.path_parameters or {}):
        # Random slugs would only meet the 404 of an unknown program: aim at the real one.
        case.path_parameters["slug"] = program.slug
    case.call_and_validate(headers={"Authorization": f"Bearer {full_key}"}, checks=[not_a_server_error])


def test_the_schema_documents_each_operation_once_at_its_contract_path(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    assert set(paths["/api/v1/programs/{slug}/signups"]) == {"post"}
    assert set(paths["/api/v1/programs/{slug}/signups/"]) == {"get"}
    assert "post" in paths["/api/v1/programs/{slug}/conversions"]
    assert "post" in paths["/api/v1/programs/{slug}/conversions/{external_id}/refund"]
