"""Who gets what at every entry point: each API operation, admin action and page, for every kind of caller.

The entry points are enumerated from the running site (the URL resolver under /api/v1/ with every method
each view implements, the actions of every ModelAdmin of our apps, the named pages of config/urls.py),
so adding one without its row in TABLE fails `test_every_entry_point_has_a_row`. Each row says the status
each role gets; a refused call must leave the data as it was, and a 401 must say how to authenticate.
"""

from __future__ import annotations

import importlib
import pkgutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from ambassadors.services import api_key_create
from core import clock
from core.actors import Actor
from core.notifications import PRICE_DROPPED, unsubscribe_token
from referrals.services import conversion_record, signup_record
from rewards.models import RewardGrant, RewardTier
from rewards.services import contest_create, tier_create
from tests.conftest import bearer
from tests.factories import ProgramFactory, UserFactory, enroll, staff_user
from tests.referrals.helpers import row_counts

pytestmark = pytest.mark.django_db

OUR_APPS = {"core", "ambassadors", "referrals", "rewards", "commerce", "console"}
ROLES = ("anon", "owner", "other_amb", "marketer", "auditor", "superuser", "track", "read", "manage", "other_key")
FRIEND = "friend@example.org"
TIER_BODY = {"name": "Five friends", "kind": "individual", "metric": "qualified_signups", "threshold": "5",
             "reward_type": "custom", "reward_text": "A signed copy"}  # fmt: skip

# (kind, name, method) -> the status of each role, in the order of ROLES. `owner` is Ana, the ambassador
# whose code the URLs name; `other_amb` is Bob, another ambassador of the program; `other_key` carries
# every scope but belongs to another program. Admin and pages use the session: a bearer key is ignored
# there, so a key is treated as the anonymous visitor it is to them.
#                                                     anon own  othr mkt  aud  su   trk  read mng  othk
TABLE: dict[tuple[str, str, str], tuple[int, ...]] = {
    ("api", "api-programs", "GET"):                 (401, 403, 403, 200, 403, 200, 403, 403, 200, 200),
    ("api", "api-programs", "POST"):                (401, 403, 403, 201, 403, 201, 403, 403, 403, 403),
    ("api", "api-program", "GET"):                  (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
    ("api", "api-program", "PATCH"):                (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
    ("api", "api-ambassadors", "POST"):             (401, 403, 403, 201, 403, 201, 201, 403, 201, 403),
    ("api", "api-ambassador", "GET"):               (401, 200, 404, 200, 200, 200, 403, 200, 403, 403),
    ("api", "api-signups", "POST"):                 (401, 403, 403, 201, 201, 201, 201, 403, 403, 403),
    ("api", "api-signups", "GET"):                  (401, 403, 403, 403, 200, 200, 403, 200, 403, 403),
    ("api", "api-signups-list", "POST"):            (401, 403, 403, 201, 201, 201, 201, 403, 403, 403),
    ("api", "api-signups-list", "GET"):             (401, 403, 403, 403, 200, 200, 403, 200, 403, 403),
    ("api", "api-signup-override", "POST"):         (401, 403, 403, 403, 200, 200, 403, 403, 403, 403),
    ("api", "api-signup-review", "POST"):           (401, 403, 403, 403, 200, 200, 403, 403, 200, 403),
    ("api", "api-conversions", "POST"):             (401, 403, 403, 201, 201, 201, 201, 403, 403, 403),
    ("api", "api-conversion", "GET"):               (401, 403, 403, 200, 200, 200, 200, 200, 403, 403),
    ("api", "api-conversion-refund", "POST"):       (401, 403, 403, 403, 200, 200, 200, 403, 403, 403),
    ("api", "api-price", "GET"):                    (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("api", "api-leaderboard", "GET"):              (401, 403, 403, 200, 200, 200, 403, 200, 403, 403),
    ("api", "api-tiers", "GET"):                    (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
    ("api", "api-tiers", "POST"):                   (401, 403, 403, 201, 403, 201, 403, 403, 201, 403),
    ("api", "api-tier", "GET"):                     (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
    ("api", "api-tier", "PATCH"):                   (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
    ("api", "api-contests", "GET"):                 (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
    ("api", "api-contests", "POST"):                (401, 403, 403, 201, 403, 201, 403, 403, 201, 403),
    ("api", "api-contest", "GET"):                  (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
    ("api", "api-contest", "PATCH"):                (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
    ("api", "api-contest-standing", "GET"):         (401, 403, 403, 200, 200, 200, 403, 200, 403, 403),
    ("api", "api-me", "GET"):                       (401, 200, 200, 200, 200, 200, 403, 403, 403, 403),
    ("api", "api-audit-events", "GET"):             (401, 403, 403, 403, 200, 200, 403, 403, 403, 403),
    # Admin actions: outside staff go to the login page (302); staff without the right get 403; a superuser
    # gets the deletion's confirmation page (200) or the action done and the list again (302).
    ("admin", "ambassadors.program", "delete_selected"):           (302, 302, 302, 403, 403, 200, 302, 302, 302, 302),
    ("admin", "ambassadors.ambassador", "delete_selected"):        (302, 302, 302, 403, 403, 200, 302, 302, 302, 302),
    ("admin", "ambassadors.apikey", "delete_selected"):            (302, 302, 302, 403, 403, 200, 302, 302, 302, 302),
    ("admin", "ambassadors.apikey", "revoke_keys"):                (302, 302, 302, 403, 403, 302, 302, 302, 302, 302),
    ("admin", "ambassadors.ambassadorcounters", "delete_selected"): (302, 302, 302, 403, 403, 200, 302, 302, 302, 302),
    ("admin", "ambassadors.programcounters", "delete_selected"):   (302, 302, 302, 403, 403, 200, 302, 302, 302, 302),
    ("admin", "rewards.rewardtier", "delete_selected"):            (302, 302, 302, 403, 403, 200, 302, 302, 302, 302),
    # Review first asks for a reason on a confirmation page (200).
    ("admin", "referrals.signup", "approve_selected"):             (302, 302, 302, 403, 403, 200, 302, 302, 302, 302),
    ("admin", "referrals.signup", "reject_selected"):              (302, 302, 302, 403, 403, 200, 302, 302, 302, 302),
    ("admin", "rewards.rewardgrant", "mark_redeemed"):             (302, 302, 302, 403, 403, 302, 302, 302, 302, 302),
    # Public pages answer everyone alike; the referral link answers with its redirect.
    ("page", "home", "GET"):                        (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("page", "program-page", "GET"):                (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("page", "program-widget", "GET"):              (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("page", "parrain-js", "GET"):                  (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("page", "program-subscribe", "GET"):           (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("page", "program-subscribe", "POST"):          (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("page", "referral-redirect", "GET"):           (302, 302, 302, 302, 302, 302, 302, 302, 302, 302),
    # The one-click unsubscribe: the signed token is the permission (GET asks, POST unsubscribes, RFC 8058).
    ("page", "unsubscribe", "GET"):                 (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("page", "unsubscribe", "POST"):                (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("page", "health", "GET"):                      (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("page", "api-schema", "GET"):                  (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("page", "api-docs", "GET"):                    (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    # The language switch: anyone; it changes the language cookie only, and sends back to the page.
    ("page", "set_language", "GET"):                (302, 302, 302, 302, 302, 302, 302, 302, 302, 302),
    ("page", "set_language", "POST"):               (302, 302, 302, 302, 302, 302, 302, 302, 302, 302),
    # The ambassador's pages: anonymous (and keys, anonymous here) log in first; each signed-in person acts on
    # their own ambassadorship in the program (Bob has his), and someone who has none gets a 404.
    ("page", "program-join", "GET"):                (302, 200, 200, 200, 200, 200, 302, 302, 302, 302),
    # Nobody in the scene has a verified address of their own: joining asks them to verify it first.
    ("page", "program-join", "POST"):               (302, 302, 302, 302, 302, 302, 302, 302, 302, 302),
    # Without having just subscribed in this browser there is nothing to share: back to the program page.
    ("page", "program-share", "GET"):               (302, 302, 302, 302, 302, 302, 302, 302, 302, 302),
    ("page", "program-share", "POST"):              (302, 302, 302, 302, 302, 302, 302, 302, 302, 302),
    ("page", "dashboard", "GET"):                   (302, 200, 200, 200, 200, 200, 302, 302, 302, 302),
    ("page", "dashboard-login", "GET"):             (400, 400, 400, 400, 400, 400, 400, 400, 400, 400),
    ("page", "dashboard-link-create", "GET"):       (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "dashboard-link-create", "POST"):      (302, 302, 302, 404, 404, 404, 302, 302, 302, 302),
    ("page", "dashboard-display-name", "GET"):      (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "dashboard-display-name", "POST"):     (302, 302, 302, 404, 404, 404, 302, 302, 302, 302),
    ("page", "dashboard-qr", "GET"):                (302, 200, 200, 404, 404, 404, 302, 302, 302, 302),
}  # fmt: skip

# The rows of the consoles and of later parts live in their own modules, tests/core/permission_rows_*.py, in
# the same shape as TABLE: every such module is read, so a new part adds a file rather than editing this one.
CONSOLE_ROW_MODULES = tuple(
    importlib.import_module(f"tests.core.{module.name}")
    for module in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name)
    if module.name.startswith("permission_rows_")
)
for _module in CONSOLE_ROW_MODULES:
    assert not set(_module.ROWS) & set(TABLE), f"{_module.__name__} repeats a row"
    TABLE.update(_module.ROWS)

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("set_language", "POST"): {"language": "fr", "next": "/"},
    ("api-programs", "POST"): {"slug": "new-one", "name": "New", "currency": "EUR"},
    ("api-program", "PATCH"): {"name": "Renamed"},
    ("api-ambassadors", "POST"): {"email": "new@example.com"},
    ("api-signups", "POST"): {"email": "new@example.org"},
    ("api-signups-list", "POST"): {"email": "new@example.org"},
    ("api-signup-override", "POST"): {"ambassador_code": None, "reason": "audit"},
    ("api-signup-review", "POST"): {"decision": "approve", "reason": "A real reader"},
    ("api-conversions", "POST"): {"external_id": "o-2", "email": FRIEND, "amount": "1.00", "currency": "EUR"},
    ("api-conversion-refund", "POST"): {},
    ("api-tiers", "POST"): TIER_BODY,
    ("api-tier", "PATCH"): {"name": "New"},
    ("api-contests", "POST"): {
        "name": "June prize",
        "prize_text": "Jam",
        "starts_at": "2099-06-01T00:00:00Z",
        "ends_at": "2099-07-01T00:00:00Z",
    },
    ("api-contest", "PATCH"): {"prize_text": "Two jars"},
    ("program-subscribe", "POST"): {"email": "newcomer@example.org"},
    ("dashboard-link-create", "POST"): {"channel": "instagram"},
    ("dashboard-display-name", "POST"): {"display_name": "Renamed"},
}
for _module in CONSOLE_ROW_MODULES:
    BODIES.update(_module.BODIES)


# --- Enumerating the entry points of the running site ------------------------------------------------


def _api_patterns() -> list[URLPattern]:
    (api,) = [p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and str(p.pattern) == "api/v1/"]
    return [p for p in api.url_patterns if isinstance(p, URLPattern)]


def api_entry_points() -> set[tuple[str, str, str]]:
    found = set()
    for pattern in _api_patterns():
        view_class = pattern.callback.view_class  # type: ignore[attr-defined]
        for method in view_class.http_method_names:
            if method not in ("options", "head") and hasattr(view_class, method):
                found.add(("api", pattern.name, method.upper()))
    return found


def _registered_admins() -> list[tuple[Any, admin.ModelAdmin]]:
    return [(m, a) for m, a in admin.site._registry.items() if m._meta.app_label in OUR_APPS]


def admin_entry_points() -> set[tuple[str, str, str]]:
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(username="enumerator", is_staff=True, is_superuser=True)
    return {
        ("admin", model._meta.label_lower, action)
        for model, model_admin in _registered_admins()
        for action in model_admin.get_actions(request)
    }


def page_entry_points() -> set[tuple[str, str, str]]:
    return {
        ("page", p.name, "GET")
        for p in get_resolver().url_patterns
        if isinstance(p, URLPattern) and p.name and p.name != "admin"
    }


def test_every_entry_point_has_a_row():
    enumerated = api_entry_points() | admin_entry_points() | page_entry_points()

    missing = sorted(enumerated - set(TABLE))
    assert not missing, f"entry points without a row in TABLE: {missing}"


def test_every_row_names_an_entry_point_that_exists():
    enumerated = api_entry_points() | admin_entry_points() | page_entry_points()
    extra_methods = {key for key in TABLE if key[0] == "page" and key[2] != "GET"}

    assert set(TABLE) - extra_methods <= enumerated
    assert {(kind, name, "GET") for kind, name, _ in extra_methods} <= enumerated


# --- The scene and the callers -----------------------------------------------------------------------


@pytest.fixture
def scene(db, django_capture_on_commit_callbacks) -> dict[str, Any]:
    """One of each object the entry points act on: a program with Ana and Bob, a signup of Ana's friend and
    its conversion, a signup held for review, a tier Ana has reached (so a grant to redeem), and another
    program for `other_key`."""
    program = ProgramFactory(slug="book-launch", name="The Book Launch")
    ana = enroll(program, "ana@example.com", display_name="Ana")
    bob = enroll(program, "bob@example.com", display_name="Bob", code="BOBCODE")
    system = Actor.system("test")
    tier = tier_create(
        program=program, name="One friend", kind=RewardTier.Kind.INDIVIDUAL,
        metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal("1"),
        reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("20"), actor=system,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):  # the grant is made by the recalculation after commit
        signup = signup_record(program=program, email=FRIEND, referral_code=ana.code, actor=system)[0]
        conversion_record(program=program, actor=system, external_id="o-1", amount="9.00", currency="EUR", email=FRIEND)
    assert RewardGrant.objects.filter(ambassador=ana).exists()
    held = signup_record(program=program, email="held@mailinator.com", referral_code=bob.code, actor=system)[0]
    assert held.status == "pending_review"
    other = ProgramFactory(slug="other-launch", name="Another Launch")
    contest = contest_create(
        program=program, actor=system, name="Monthly prize", prize_text="Strawberries",
        starts_at=clock.now() - timedelta(days=1), ends_at=clock.now() + timedelta(days=30),
    )  # fmt: skip
    scene = {
        "program": program,
        "ana": ana,
        "bob": bob,
        "keys": {
            "track": api_key_create(actor=system, program=program, scopes=["track"])[1],
            "read": api_key_create(actor=system, program=program, scopes=["read"])[1],
            "manage": api_key_create(actor=system, program=program, scopes=["manage"])[1],
            "other_key": api_key_create(actor=system, program=other, scopes=["track", "read", "manage"])[1],
        },
        "kwargs": {
            "slug": program.slug,
            "code": ana.code,
            "signup_id": signup.pk,
            "tier_id": tier.pk,
            "external_id": "o-1",
            "unsubscribe_token": unsubscribe_token(
                recipient=ana.email_canonical, program_id=program.pk, kind=PRICE_DROPPED
            ),
            "token": "not-a-valid-login-link",
            "contest_id": contest.pk,
        },
        # What an entry point acts on when it is not the first of its kind: review needs a held signup.
        "kwargs_of": {"api-signup-review": {"signup_id": held.pk}, "audit-signup-review": {"signup_id": held.pk}},
    }
    # A rows module that needs objects of its own in the scene says so with scene_kwargs(scene) -> URL kwargs.
    for module in CONSOLE_ROW_MODULES:
        if hasattr(module, "scene_kwargs"):
            scene["kwargs"].update(module.scene_kwargs(scene))
    return scene


def client_for(role: str, scene: dict[str, Any]) -> APIClient:
    client = APIClient()
    if role in scene["keys"]:
        client.credentials(**bearer(scene["keys"][role]))
    elif role == "owner":
        client.force_login(scene["ana"].user)
    elif role == "other_amb":
        client.force_login(scene["bob"].user)
    elif role == "marketer":
        client.force_login(staff_user("marketer", group="marketing"))
    elif role == "auditor":
        client.force_login(staff_user("auditor", group="auditors"))
    elif role == "superuser":
        client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def _url(name: str, scene: dict[str, Any]) -> str:
    pattern = next(p for p in get_resolver().url_patterns + _api_patterns() if getattr(p, "name", None) == name)
    wanted = pattern.pattern.regex.groupindex
    kwargs = {**scene["kwargs"], **scene["kwargs_of"].get(name, {})}
    return reverse(name, kwargs={k: v for k, v in kwargs.items() if k in wanted})


def _call(client: APIClient, kind: str, name: str, method: str, scene: dict[str, Any]) -> Any:
    if kind == "admin":
        model = next(m for m, _ in _registered_admins() if m._meta.label_lower == name)
        target = model.objects.order_by("pk").first()
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        return client.post(url, {"action": method, "_selected_action": [target.pk]})
    url = _url(name, scene)
    body = BODIES.get((name, method))
    if kind == "page":
        return client.generic(method, url) if body is None else client.post(url, body)
    return client.generic(method, url) if body is None else getattr(client, method.lower())(url, body, format="json")


def _state() -> dict[str, Any]:
    return {**row_counts(), "grants": sorted(RewardGrant.objects.values_list("pk", "status"))}


@pytest.mark.parametrize(
    ("kind", "name", "method", "role", "expected"),
    [
        pytest.param(*key, role, status, id=f"{key[1]}-{key[2]}-{role}")
        for key, statuses in TABLE.items()
        for role, status in zip(ROLES, statuses, strict=True)
    ],
)
def test_each_role_gets_the_answer_of_the_table(scene, kind, name, method, role, expected):
    client = client_for(role, scene)
    before = _state()

    response = _call(client, kind, name, method, scene)

    assert response.status_code == expected, response.content[:500]
    if expected >= 400 or (kind == "admin" and expected == 302 and role != "superuser"):
        assert _state() == before, "a refused call changed data"
    if expected == 401:
        assert response.has_header("WWW-Authenticate")
    if kind == "admin" and expected == 302 and role != "superuser":
        assert "/admin/login/" in response["Location"]


# --- Admin actions ask the policy, whatever Django's model permissions let a staff member see ---------


def _staff_seeing_grants(username: str, group: str) -> Any:
    from django.contrib.auth.models import Permission

    user = staff_user(username, group=group)
    user.user_permissions.add(Permission.objects.get(codename="view_rewardgrant"))
    return user


@pytest.mark.parametrize(("group", "redeemed"), [("marketing", True), ("auditors", False)])
def test_the_redeem_action_is_offered_and_done_only_as_the_policy_says(scene, group, redeemed):
    from core.policies import Principal, may_redeem_grant

    user = _staff_seeing_grants(f"staff-{group}", group)
    client = APIClient()
    client.force_login(user)
    grant = RewardGrant.objects.get()
    url = reverse("admin:rewards_rewardgrant_changelist")
    assert client.get(url).status_code == 200  # both see the grants

    client.post(url, {"action": "mark_redeemed", "_selected_action": [grant.pk]})

    grant.refresh_from_db()
    assert bool(may_redeem_grant(Principal.for_user(user), grant)) is redeemed
    assert (grant.status == RewardGrant.Status.REDEEMED) is redeemed
    request = RequestFactory().get(url)
    request.user = user
    assert ("mark_redeemed" in admin.site._registry[RewardGrant].get_actions(request)) is redeemed
