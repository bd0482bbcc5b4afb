"""core.policies: one answer per action to "may this caller do this to this object", for every entry point.

The HTTP answers these decisions become are pinned end to end by tests/core/test_permission_table.py;
these tests pin the decisions themselves, the reasons, and how a principal is built from a request.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.utils import timezone

from core import policies
from core.policies import Outcome, Principal
from tests.factories import UserFactory, staff_user

pytestmark = pytest.mark.django_db

ALLOW, UNAUTHENTICATED, FORBIDDEN, HIDDEN = Outcome.ALLOW, Outcome.UNAUTHENTICATED, Outcome.FORBIDDEN, Outcome.HIDDEN

PROGRAM = SimpleNamespace(pk=7, leaderboard_public=False)
OTHER_PROGRAM = SimpleNamespace(pk=8, leaderboard_public=False)


@pytest.fixture
def owner(db):
    return UserFactory(username="ana@example.com")


@pytest.fixture
def ambassador_of(owner):
    return SimpleNamespace(pk=3, program_id=PROGRAM.pk, user_id=owner.pk)


@pytest.fixture
def principals(owner) -> dict[str, Principal]:
    return {
        "anonymous": Principal.anonymous(),
        "owner": Principal.for_user(owner),
        "customer": Principal.for_user(UserFactory(username="someone")),
        "marketer": Principal.for_user(staff_user("marketer", group="marketing")),
        "auditor": Principal.for_user(staff_user("auditor", group="auditors")),
        "superuser": Principal.for_user(UserFactory(username="root", is_staff=True, is_superuser=True)),
        "track": Principal.for_api_key(program_id=PROGRAM.pk, scopes=["track"]),
        "read": Principal.for_api_key(program_id=PROGRAM.pk, scopes=["read"]),
        "manage": Principal.for_api_key(program_id=PROGRAM.pk, scopes=["manage"]),
        "other_key": Principal.for_api_key(program_id=OTHER_PROGRAM.pk, scopes=["track", "read", "manage"]),
        "operator": Principal.operator(),
    }


ROLES = ("anonymous", "owner", "customer", "marketer", "auditor", "superuser", "track", "read", "manage", "other_key")
A, U, F, H = ALLOW, UNAUTHENTICATED, FORBIDDEN, HIDDEN

# Each action, asked of a program (or an ambassador of it), by each role in the order of ROLES.
#            anon own cust mkt aud su  trk rd  mng other
DECISIONS = {
    "may_manage_payouts": (U, F, F, A, F, A, F, F, F, F),
    "may_read_payouts": (U, F, F, A, F, A, F, F, A, F),
    "may_set_payout_details": (U, A, A, A, A, A, F, F, F, F),
    "may_list_programs": (U, F, F, A, F, A, F, F, A, A),
    "may_create_program": (U, F, F, A, F, A, F, F, F, F),
    "may_use_staff_console": (U, F, F, A, F, A, F, F, F, F),
    "may_manage_program": (U, F, F, A, F, A, F, F, A, F),
    "may_manage_contests": (U, F, F, A, F, A, F, F, A, F),
    "may_manage_webhooks": (U, F, F, A, F, A, F, F, A, F),
    "may_enroll_ambassador": (U, F, F, A, F, A, A, F, A, F),
    "may_see_ambassador": (U, A, H, A, A, A, F, A, F, F),
    "may_track": (U, F, F, A, A, A, A, F, F, F),
    "may_read_attributions": (U, F, F, F, A, A, F, A, F, F),
    "may_override": (U, F, F, F, A, A, F, F, F, F),
    "may_review": (U, F, F, F, A, A, F, F, A, F),
    "may_refund": (U, F, F, F, A, A, A, F, F, F),
    "may_read_stats": (U, F, F, A, A, A, F, A, F, F),
    "may_read_leaderboard": (U, F, F, A, A, A, F, A, F, F),
    "may_read_conversion": (U, F, F, A, A, A, A, A, F, F),
    "may_use_dashboard": (U, A, A, A, A, A, F, F, F, F),
    "may_read_audit": (U, F, F, F, A, A, F, F, F, F),
    "may_redeem_grant": (U, F, F, A, F, A, F, F, F, F),
    "may_manage_api_keys": (U, F, F, F, F, A, F, F, F, F),
    "may_check_voucher": (U, F, F, A, F, A, A, A, A, F),
    "may_redeem_voucher": (U, F, F, A, F, A, A, F, A, F),
    "may_issue_embed_token": (U, F, F, A, F, A, F, F, A, F),
    "may_manage_waitlist": (U, F, F, A, F, A, F, F, F, F),
    "may_manage_stripe": (U, F, F, A, F, A, F, F, F, F),
    # Asked about the owner's account (tests/privacy pins the staff, superuser and no-account cases).
    "may_export_person": (U, A, F, F, A, A, F, F, F, F),
    "may_erase_person": (U, A, F, F, A, A, F, F, F, F),
}  # fmt: skip

NO_OBJECT = {
    "may_list_programs",
    "may_create_program",
    "may_use_staff_console",
    "may_use_dashboard",
    "may_read_audit",
    "may_set_payout_details",
}


def _ask(action: str, principal: Principal, ambassador) -> policies.Decision:
    function = getattr(policies, action)
    if action in NO_OBJECT:
        return function(principal)
    if action == "may_see_ambassador":
        return function(principal, ambassador)
    if action in ("may_export_person", "may_erase_person"):
        return function(principal, SimpleNamespace(pk=ambassador.user_id, is_superuser=False))
    if action == "may_redeem_grant":
        return function(principal, SimpleNamespace(program_id=PROGRAM.pk))
    return function(principal, PROGRAM)


@pytest.mark.parametrize(
    ("action", "role", "expected"),
    [
        pytest.param(action, role, outcome, id=f"{action}-{role}")
        for action, outcomes in DECISIONS.items()
        for role, outcome in zip(ROLES, outcomes, strict=True)
    ],
)
def test_each_role_gets_the_decision_of_the_table(principals, ambassador_of, action, role, expected):
    decision = _ask(action, principals[role], ambassador_of)

    assert decision.outcome is expected, decision
    assert bool(decision) is (expected is ALLOW)


def test_every_policy_function_of_the_module_is_in_the_table():
    public = {name for name in dir(policies) if name.startswith("may_")}

    assert public == set(DECISIONS), "a new may_* needs its row in DECISIONS"


@pytest.mark.parametrize("action", sorted(DECISIONS))
def test_the_operator_running_a_command_may_do_everything(principals, ambassador_of, action):
    assert _ask(action, principals["operator"], ambassador_of).outcome is ALLOW


def test_a_public_leaderboard_is_open_to_anyone(principals):
    public = SimpleNamespace(pk=PROGRAM.pk, leaderboard_public=True)

    assert all(policies.may_read_leaderboard(p, public) for p in principals.values())


def test_a_key_of_another_program_is_told_so():
    decision = policies.may_track(Principal.for_api_key(program_id=OTHER_PROGRAM.pk, scopes=["track"]), PROGRAM)

    assert decision.reason == "This API key belongs to another program."


def test_a_key_lacking_the_scope_is_told_which_scopes_would_do():
    decision = policies.may_enroll_ambassador(Principal.for_api_key(program_id=PROGRAM.pk, scopes=["read"]), PROGRAM)

    assert decision.reason == "This API key needs the scope track or manage."


def test_another_customer_is_not_told_the_ambassador_exists(principals, ambassador_of):
    decision = policies.may_see_ambassador(principals["customer"], ambassador_of)

    assert decision.outcome is HIDDEN
    assert decision.reason == "No ambassador with this code in this program."


def test_an_ambassador_of_another_program_with_the_same_user_is_not_theirs(principals, owner):
    # The same person, ambassador in two programs: owning one does not open the other.
    elsewhere = SimpleNamespace(pk=4, program_id=OTHER_PROGRAM.pk, user_id=owner.pk)

    assert policies.may_see_ambassador(principals["owner"], elsewhere).outcome is ALLOW
    assert policies.may_see_ambassador(principals["read"], elsewhere).outcome is FORBIDDEN


def test_a_key_sees_only_its_own_program_and_staff_see_all(principals):
    assert policies.program_scope(principals["manage"]) == PROGRAM.pk
    assert policies.program_scope(principals["marketer"]) is None


def test_a_revoked_key_carries_no_scope():
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    request.auth = SimpleNamespace(pk=1, program_id=PROGRAM.pk, scopes=["track"], revoked_at=timezone.now())

    principal = Principal.from_request(request)

    assert principal.scopes == frozenset()
    assert policies.may_track(principal, PROGRAM).outcome is FORBIDDEN


class TestFromRequest:
    def test_a_bearer_key_on_the_request_makes_a_key_principal(self):
        request = RequestFactory().get("/")
        request.user = AnonymousUser()
        request.auth = SimpleNamespace(pk=1, program_id=PROGRAM.pk, scopes=["read", "track"], revoked_at=None)

        principal = Principal.from_request(request)

        assert principal.is_api_key
        assert (principal.key_program_id, principal.scopes) == (PROGRAM.pk, frozenset({"read", "track"}))
        assert principal.user is None

    def test_a_session_user_makes_a_user_principal(self, owner):
        request = RequestFactory().get("/")
        request.user = owner

        principal = Principal.from_request(request)

        assert principal.user == owner
        assert not principal.is_api_key
        assert principal.is_authenticated

    def test_nobody_makes_the_anonymous_principal(self):
        request = RequestFactory().get("/")
        request.user = AnonymousUser()

        assert Principal.from_request(request) == Principal.anonymous()
        assert not Principal.anonymous().is_authenticated

    def test_a_principal_is_frozen(self, owner):
        principal = Principal.for_user(owner)

        with pytest.raises(AttributeError):
            principal.user = None  # type: ignore[misc]


def test_reviewing_at_all_is_for_admins_only(principals):
    # The admin asks before offering its review actions: no program, so no key passes.
    allowed = {role for role, p in principals.items() if policies.may_review(p)}

    assert allowed == {"auditor", "superuser", "operator"}
    assert policies.may_review(principals["anonymous"]).outcome is UNAUTHENTICATED
