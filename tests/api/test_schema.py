"""The OpenAPI schema documents every operation the URL map serves, and who may call each one.

The URL map is read, not copied: an endpoint added later is checked without touching this file. Who may
call an operation is stated in its `x-parrain-access` extension (API-key scopes, signed-in roles, public
or not) and in its description; the behaviour tests below hold each statement against the code.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from config.schema import ROLES, SCOPES, UNDOCUMENTED_SPELLINGS
from tests.conftest import bearer

pytestmark = pytest.mark.django_db

# Django's automatic HEAD and DRF's metadata OPTIONS exist on every view: they are not operations.
GENERIC_METHODS = {"head", "options"}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict[str, Any]:
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def api_routes() -> list[tuple[str, str, str]]:
    """(OpenAPI path, HTTP method, view name) for every pattern under /api/v1/ and each method its view has."""
    routes = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/v1/"):
                view = pattern.callback.view_class
                path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
                for method in view.http_method_names:
                    if method not in GENERIC_METHODS and hasattr(view, method):
                        routes.append((path, method, view.__name__))

    walk(get_resolver().url_patterns, "")
    return routes


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]
    # DELETEs last: one removes the row the scene names, which the other operations of its path still need.
    return sorted(found, key=lambda operation: operation[1] == "delete")


def test_the_url_map_is_read():
    routes = api_routes()
    assert ("/api/v1/programs/{slug}/signups", "post", "SignupsApi") in routes
    assert len({view for _, _, view in routes}) >= 10


def test_every_route_and_method_of_the_url_map_is_an_operation(schema):
    missing = []
    for path, method, view in api_routes():
        documented_at = path
        if (path, method.upper()) in UNDOCUMENTED_SPELLINGS:
            # The other spelling of the same route, with or without the trailing slash, documents it.
            documented_at = path[:-1] if path.endswith("/") else path + "/"
        if method not in schema["paths"].get(documented_at, {}):
            missing.append(f"{method.upper()} {path} ({view})")

    assert not missing, "operations missing from the schema: " + ", ".join(missing)


def test_every_operation_is_served_by_the_url_map(schema):
    served = {(path, method) for path, method, _ in api_routes()}

    assert {(path, method) for path, method, _ in operations(schema)} <= served


def test_undocumented_spellings_are_aliases_named_in_the_documented_operation(schema):
    for path, method in UNDOCUMENTED_SPELLINGS:
        other = path[:-1] if path.endswith("/") else path + "/"
        assert f"`{path}`" in schema["paths"][other][method.lower()]["description"]


def test_every_operation_states_who_may_call_it(schema):
    for path, method, op in operations(schema):
        access = op.get("x-parrain-access")
        assert access, f"{method.upper()} {path} does not state its access (use config.schema.access)"
        assert set(access["scopes"]) <= set(SCOPES), (path, method)
        assert set(access["roles"]) <= set(ROLES), (path, method)
        assert access["scopes"] or access["roles"] or access["public"], (path, method)
        assert "Access:" in op.get("description", ""), (path, method)


def test_operations_that_refuse_keys_do_not_offer_bearer_auth(schema):
    schemes = schema["components"]["securitySchemes"]
    bearer_schemes = {name for name, s in schemes.items() if s.get("scheme") == "bearer"}
    assert bearer_schemes == {"apiKey"}
    for path, method, op in operations(schema):
        offered = {name for requirement in op.get("security", []) for name in requirement}
        if op["x-parrain-access"]["scopes"]:
            assert "apiKey" in offered, (path, method)
        else:
            assert not offered & bearer_schemes, f"{method.upper()} {path} refuses keys but offers bearer auth"


def test_the_error_shape_is_documented(schema):
    description = schema["info"]["description"]
    assert '{"detail":' in description and '{"<field>": [' in description


# --- The statements hold against the code -----------------------------------------------------------


@pytest.fixture
def scene(program, ambassador, friend_email):
    """One row of everything a path can name, so that calls reach the access checks of the views."""
    from core.actors import Actor
    from referrals.services import conversion_record, signup_record
    from rewards.services import tier_create

    system = Actor.system("test")
    signup, _ = signup_record(program=program, email=friend_email, referral_code=ambassador.code, actor=system)
    conversion_record(program=program, actor=system, external_id="o-1", amount="9.00", currency="EUR",
                      email=friend_email)  # fmt: skip
    tier = tier_create(
        program=program, actor=system, name="Price drop", kind="collective", step=5, drop_type="amount", drop_value=1
    )
    contest = _running_contest(program, system)
    values = {"slug": program.slug, "code": ambassador.code, "signup_id": signup.pk, "tier_id": tier.pk,
              "external_id": "o-1", "contest_id": contest.pk}  # fmt: skip
    # --- Vouchers at checkout: an unlocked voucher of Ana's to check and redeem.
    from decimal import Decimal

    from rewards.models import RewardTier
    from rewards.services.grants import grant_create

    voucher_tier = tier_create(
        program=program, actor=system, name="Voucher", kind="individual", threshold=Decimal("1"),
        reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("20"),
    )  # fmt: skip
    values["voucher_code"] = grant_create(tier=voucher_tier, occurrence=1, ambassador=ambassador).voucher_code
    # --- end vouchers
    # --- Webhooks: an endpoint of the program and a delivery to it.
    from tests.core.permission_rows_api_webhooks import scene_kwargs as webhook_kwargs

    values.update(webhook_kwargs({"program": program}))
    # --- end webhooks
    from tests.core.permission_rows_payouts_api import scene_kwargs as payout_kwargs

    values.update(payout_kwargs({"program": program}))
    return values


def _running_contest(program: Any, actor: Any) -> Any:
    from datetime import timedelta

    from core import clock
    from rewards.services import contest_create

    now = clock.now()
    return contest_create(program=program, actor=actor, name="Monthly prize", prize_text="Strawberries",
                          starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30))  # fmt: skip


def call(client: APIClient, path: str, method: str, values: dict[str, Any], **headers: str) -> int:
    names = re.findall(r"{(\w+)}", path)
    unknown = set(names) - set(values)
    assert not unknown, f"give the `scene` fixture a value for {unknown} of {path}"
    url = path.format(**values)
    if method == "get":
        return client.get(url, **headers).status_code
    # An empty body: access is checked before the input, so an allowed caller gets past 401/403.
    return getattr(client, method)(url, {}, format="json", **headers).status_code


REFUSED = {401, 403}


def test_keys_get_exactly_the_documented_scopes(schema, program, scene):
    from ambassadors.services import api_key_create
    from core.actors import Actor

    for path, method, op in operations(schema):
        access = op["x-parrain-access"]
        if access["public"] is True:
            continue
        for scope in SCOPES:
            key = api_key_create(program=program, scopes=[scope], actor=Actor.system("test"))[1]
            status = call(APIClient(), path, method, scene, **bearer(key))
            if scope in access["scopes"]:
                assert status not in REFUSED, f"{method.upper()} {path} documents {scope} but refuses it"
            else:
                assert status in REFUSED, f"{method.upper()} {path} lets {scope} through ({status}) undocumented"


def test_signed_in_people_get_exactly_the_documented_roles(schema, program, ambassador, scene, marketer, auditor,
                                                           outsider):  # fmt: skip
    people = {
        "marketing": marketer,
        "auditors": auditor,
        "ambassador": ambassador.user,
        "signed-in": outsider,
    }
    for path, method, op in operations(schema):
        access = op["x-parrain-access"]
        if access["public"] is True:
            continue
        for role, person in people.items():
            client = APIClient()
            client.force_login(person)
            allowed = role in access["roles"] or "signed-in" in access["roles"]
            status = call(client, path, method, scene)
            if allowed:
                assert status not in REFUSED | {404}, f"{method.upper()} {path} documents {role} but refuses ({status})"
            else:
                assert status in REFUSED | {404}, f"{method.upper()} {path} lets {role} through ({status})"
        anonymous = call(APIClient(), path, method, scene)
        assert anonymous in REFUSED, f"{method.upper()} {path} is not documented public but answers {anonymous}"


def test_public_operations_answer_anonymous_callers(schema, scene):
    public = [(path, method) for path, method, op in operations(schema) if op["x-parrain-access"]["public"] is True]
    assert public
    for path, method in public:
        assert call(APIClient(), path, method, scene) not in REFUSED
