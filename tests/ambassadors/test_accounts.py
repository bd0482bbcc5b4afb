"""Who owns an ambassador profile: only an account that proved the address it was enrolled with.

Driven through the real allauth views with Django's test client; codes and links are read from the
e-mails allauth sends. A profile enrolled by e-mail (API, admin, hosted join form) waits for its owner;
whoever merely typed that address into a signup form gets nothing, whichever came first.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from ambassadors.models import Ambassador
from core.actors import Actor
from core.models import AuditEvent
from referrals.services import signup_record
from rewards.models import RewardTier
from rewards.services import ambassador_recalculate, tier_create
from tests.conftest import bearer

pytestmark = pytest.mark.django_db

User = get_user_model()

VICTIM = "victim@example.org"
PASSWORD = "correct horse battery staple 42"


@pytest.fixture(params=["mandatory", "optional"])
def verification(request, settings) -> str:
    """Operators may relax verification (ACCOUNT_EMAIL_VERIFICATION): binding must not depend on it."""
    settings.ACCOUNT_EMAIL_VERIFICATION = request.param
    return request.param


def site_signup(client: Client, email: str, username: str) -> Any:
    """Someone fills in /accounts/signup/ in their browser (e-mail and an optional password).

    Signup asks for no username (accounts are by e-mail only): allauth makes one up. The account made
    is then renamed `username`, the name this scenario calls its person, so that it can be looked up.
    """
    before = set(User.objects.values_list("pk", flat=True))
    response = client.post("/accounts/signup/", {"email": email, "password1": PASSWORD})
    made = User.objects.exclude(pk__in=before).filter(emailaddress__email__iexact=email.strip())
    made.update(username=username)
    return response


def api_enrol(program: Any, key: str, email: str) -> Ambassador:
    """The shop enrols a customer as an ambassador."""
    response = Client().post(
        f"/api/v1/programs/{program.slug}/ambassadors",
        {"email": email},
        content_type="application/json",
        **bearer(key),
    )
    assert response.status_code in (200, 201), response.content
    return Ambassador.objects.get(code=response.json()["code"])


def signed_in_as(user: Any) -> Client:
    """A browser with a session for `user`, however it got one (a relaxed setting, a stolen cookie...)."""
    client = Client()
    client.force_login(user)
    return client


def programs_at_me(client: Client) -> list[str]:
    response = client.get("/api/v1/me")
    assert response.status_code == 200, response.content
    return [p["program"]["slug"] for p in response.json()["programs"]]


def detail_status(client: Client, ambassador: Ambassador) -> int:
    return client.get(f"/api/v1/programs/{ambassador.program.slug}/ambassadors/{ambassador.code}").status_code


def mails_to(address: str) -> list[Any]:
    return [m for m in mail.outbox if address.lower() in [to.lower() for to in m.to]]


def login_code_in(message: Any) -> str:
    # allauth's login code mail has the code alone on its line, e.g. `LKXN-QPTB`.
    match = re.search(r"^\s*([A-Z0-9]{3,}(?:-[A-Z0-9]{3,})*)\s*$", message.body, re.MULTILINE)
    assert match, message.body
    return match.group(1)


def confirmation_link_in(message: Any) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^/\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def sign_in_with_a_code(client: Client, email: str) -> Any:
    """The owner asks for a code at /accounts/login/code/, reads it in their mailbox and types it."""
    mail.outbox.clear()
    response = client.post("/accounts/login/code/", {"email": email})
    assert response.status_code == 302, response.content
    (message,) = mails_to(email)
    return client.post("/accounts/login/code/confirm/", {"code": login_code_in(message)})


# --- Someone typed the address, never proved it -------------------------------------------------------


def test_an_unverified_account_made_before_the_enrolment_never_gets_the_profile(program, track_key, verification):
    site_signup(Client(), VICTIM, "mallory")
    mallory = User.objects.get(username="mallory")
    assert not EmailAddress.objects.filter(user=mallory, verified=True).exists()

    ambassador = api_enrol(program, track_key, VICTIM)

    assert ambassador.user != mallory
    assert programs_at_me(signed_in_as(mallory)) == []
    assert detail_status(signed_in_as(mallory), ambassador) == 404


def test_an_unverified_account_made_after_the_enrolment_with_a_case_variant_gets_nothing(
    program, track_key, verification
):
    ambassador = api_enrol(program, track_key, VICTIM)
    owner_before = ambassador.user_id

    site_signup(Client(), "VICTIM@Example.org", "mallory")

    ambassador.refresh_from_db()
    assert ambassador.user_id == owner_before
    mallory = User.objects.filter(username="mallory").first()
    if mallory is not None:  # allauth may refuse the signup outright: nothing to sign in with then
        assert programs_at_me(signed_in_as(mallory)) == []
        assert detail_status(signed_in_as(mallory), ambassador) == 404


def test_a_username_spelled_like_the_address_gets_nothing(program, track_key):
    """Usernames may contain `@`: one that reads like the address is not that address."""
    site_signup(Client(), "mallory@example.net", VICTIM)
    mallory = User.objects.get(username=VICTIM)

    ambassador = api_enrol(program, track_key, VICTIM)

    assert ambassador.user != mallory
    assert programs_at_me(signed_in_as(mallory)) == []


def test_a_verified_variant_of_the_mailbox_does_not_claim_the_profile(program, track_key):
    """victim+shop@ reaches the same inbox, but the profile was enrolled as victim@: only that address claims it."""
    ambassador = api_enrol(program, track_key, VICTIM)
    client = Client()
    site_signup(client, "victim+shop@example.org", "victim")
    (message,) = mails_to("victim+shop@example.org")
    client.post(confirmation_link_in(message))
    assert EmailAddress.objects.filter(email="victim+shop@example.org", verified=True).exists()

    ambassador.refresh_from_db()
    assert ambassador.user.username != "victim"
    assert ambassador.claimed_at is None
    assert programs_at_me(signed_in_as(User.objects.get(username="victim"))) == []


# --- The owner proves the address ---------------------------------------------------------------------


@pytest.fixture
def voucher(program) -> RewardTier:
    """A 20% voucher at the first qualified referral."""
    return tier_create(
        actor=Actor.system("tests"),
        program=program,
        name="First friend",
        kind=RewardTier.Kind.INDIVIDUAL,
        metric=RewardTier.Metric.QUALIFIED_SIGNUPS,
        threshold=Decimal("1"),
        reward_type=RewardTier.RewardType.PERCENT_VOUCHER,
        reward_value=Decimal("20"),
    )


def test_the_owner_enrolled_by_the_shop_signs_in_with_a_code_and_sees_the_profile_and_vouchers(
    program, track_key, voucher
):
    ambassador = api_enrol(program, track_key, VICTIM)
    signup_record(program=program, email="friend@example.net", referral_code=ambassador.code, actor=Actor.system("t"))
    ambassador_recalculate(ambassador_id=ambassador.pk)

    owner = Client()
    response = sign_in_with_a_code(owner, VICTIM)

    assert response.status_code == 302, response.content
    body = owner.get("/api/v1/me").json()
    assert [p["code"] for p in body["programs"]] == [ambassador.code]
    (reward,) = body["programs"][0]["rewards"]
    assert reward["voucher_code"]
    assert detail_status(owner, ambassador) == 200
    ambassador.refresh_from_db()
    assert ambassador.claimed_at is not None
    assert EmailAddress.objects.get(email=VICTIM, user=ambassador.user).verified


def test_the_login_code_reaches_the_profile_not_an_unverified_account_holding_the_address(program, track_key):
    site_signup(Client(), VICTIM, "mallory")
    ambassador = api_enrol(program, track_key, VICTIM)

    owner = Client()
    sign_in_with_a_code(owner, "Victim@Example.ORG")

    assert programs_at_me(owner) == [program.slug]
    assert owner.get("/api/v1/me").json()["username"] != "mallory"
    assert programs_at_me(signed_in_as(User.objects.get(username="mallory"))) == []
    ambassador.refresh_from_db()
    assert ambassador.user.username != "mallory"


@pytest.mark.parametrize("typed", [VICTIM, "Victim@Example.ORG"])
def test_the_owner_signs_up_follows_the_confirmation_link_and_the_profile_is_theirs(program, track_key, typed):
    ambassador = api_enrol(program, track_key, VICTIM)

    owner = Client()
    response = site_signup(owner, typed, "victim")
    assert response.status_code == 302, response.content  # not "already registered"
    (message,) = mails_to(VICTIM)
    owner.post(confirmation_link_in(message))

    victim = User.objects.get(username="victim")
    ambassador.refresh_from_db()
    assert ambassador.user == victim
    assert programs_at_me(signed_in_as(victim)) == [program.slug]
    assert programs_at_me(owner) == [program.slug]  # signed in by the confirmation, in the same browser


def test_the_owner_can_sign_up_even_when_someone_squats_the_address_unverified(program, track_key):
    site_signup(Client(), VICTIM, "mallory")
    ambassador = api_enrol(program, track_key, VICTIM)
    mail.outbox.clear()

    owner = Client()
    # allauth mails one confirmation link per address per 3 minutes: the owner comes by later than that.
    with time_machine.travel(timezone.now() + timedelta(minutes=4)):
        site_signup(owner, VICTIM, "victim")
        (message,) = mails_to(VICTIM)
        assert "mallory" not in message.body  # the link for the owner's new account, not for mallory's
        owner.post(confirmation_link_in(message))

    ambassador.refresh_from_db()
    assert ambassador.user.username == "victim"
    assert programs_at_me(signed_in_as(User.objects.get(username="mallory"))) == []


def test_an_address_verified_before_the_enrolment_binds_the_profile_at_once(program, track_key):
    """Victim's account is in another name; the shop's address is a second one they verified."""
    victim = User.objects.create_user("victim", email="personal@example.net", password=PASSWORD)
    EmailAddress.objects.create(user=victim, email="personal@example.net", verified=True, primary=True)
    EmailAddress.objects.create(user=victim, email=VICTIM, verified=True, primary=False)

    ambassador = api_enrol(program, track_key, "Victim@Example.org")

    assert ambassador.user == victim
    assert ambassador.claimed_at is not None
    assert programs_at_me(signed_in_as(victim)) == [program.slug]


def test_a_claim_is_audited_with_the_account_as_actor(program, track_key):
    ambassador = api_enrol(program, track_key, VICTIM)
    owner = Client()
    sign_in_with_a_code(owner, VICTIM)

    ambassador.refresh_from_db()
    event = AuditEvent.objects.get(action="ambassador.claimed", object_id=str(ambassador.pk))
    owner_actor = Actor.for_user(ambassador.user)
    assert (event.actor_type, event.actor_id) == (owner_actor.type, owner_actor.id)
    assert event.program_id == program.pk
    assert VICTIM not in str(event.before) + str(event.after) + event.reason  # customers appear by pseudonym only


def test_a_profile_in_each_program_is_claimed_with_the_one_address(program, track_key, db):
    from ambassadors.services import api_key_create
    from tests.factories import ProgramFactory

    other = ProgramFactory(slug="second-launch")
    first = api_enrol(program, track_key, VICTIM)
    second = api_enrol(other, api_key_create(program=other, scopes=["track"], actor=Actor.system("t"))[1], VICTIM)

    owner = Client()
    site_signup(owner, VICTIM, "victim")
    (message,) = mails_to(VICTIM)
    owner.post(confirmation_link_in(message))

    victim = User.objects.get(username="victim")
    assert {a.user for a in Ambassador.objects.filter(pk__in=[first.pk, second.pk])} == {victim}
    assert sorted(programs_at_me(signed_in_as(victim))) == sorted([program.slug, other.slug])


# --- Profiles bound before this release ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_back_profiles_bound_to_accounts_that_never_proved_the_address():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [
        ("ambassadors", "0001_initial"),
        ("referrals", "0003_auditevent_moved_to_core"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    users, addresses = old.get_model("auth", "User"), old.get_model("account", "EmailAddress")
    program = old.get_model("ambassadors", "Program").objects.create(slug="old", name="Old")

    def enrolled(user: Any, email: str, code: str) -> int:
        ambassador = old.get_model("ambassadors", "Ambassador").objects.create(
            program=program, user=user, email=email, code=code, code_key=code
        )
        return ambassador.pk

    mallory = users.objects.create(username="mallory", email=VICTIM, password="pbkdf2$set-by-mallory")
    addresses.objects.create(user=mallory, email=VICTIM, verified=False, primary=True)
    taken = enrolled(mallory, VICTIM, "TAKEN")
    vera = users.objects.create(username="vera", email="vera@example.org", password="pbkdf2$x")
    addresses.objects.create(user=vera, email="vera@example.org", verified=True, primary=True)
    proven = enrolled(vera, "vera@example.org", "PROVEN")
    # What enrolment made before: username = the address, no usable password, never signed in.
    olga = users.objects.create(
        username="olga@example.org", email="olga@example.org", password="!unusable", last_login=None
    )
    waiting = enrolled(olga, "olga@example.org", "WAITING")
    adam = users.objects.create(username="adam", email="adam@example.org", password="pbkdf2$x")
    by_admin = enrolled(adam, "adam@example.org", "ADMIN")
    first_variant = enrolled(vera.__class__.objects.create(username="d1"), "dup@gmail.com", "DUP1")
    second_variant = enrolled(vera.__class__.objects.create(username="d2"), "d.up+x@gmail.com", "DUP2")
    signups = old.get_model("referrals", "Signup")
    for email in ("f@gmail.com", "f+x@gmail.com"):
        signups.objects.create(program=program, email=email, created_at=timezone.now())

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    rows = {a.pk: a for a in Ambassador.objects.select_related("user")}
    assert rows[taken].user.username == f"~{VICTIM}" and rows[taken].claimed_at is None
    assert rows[proven].user.username == "vera" and rows[proven].claimed_at is not None
    assert rows[waiting].user.username == "~olga@example.org" and rows[waiting].claimed_at is None
    assert EmailAddress.objects.filter(user=rows[waiting].user, email="olga@example.org", verified=False).exists()
    assert rows[by_admin].user.username == "adam" and rows[by_admin].claimed_at is not None
    assert rows[first_variant].email_canonical == "dup@gmail.com"
    assert rows[second_variant].email_canonical == f"dup@gmail.com#legacy-{second_variant}"
    from referrals.models import Signup

    assert sorted(Signup.objects.values_list("email", "email_canonical")) == [
        ("f+x@gmail.com", f"f@gmail.com#legacy-{Signup.objects.get(email='f+x@gmail.com').pk}"),
        ("f@gmail.com", "f@gmail.com"),
    ]
    # The owner of the taken address now gets in with a code, to their profile; mallory sees nothing.
    owner = Client()
    sign_in_with_a_code(owner, VICTIM)
    assert [p["code"] for p in owner.get("/api/v1/me").json()["programs"]] == ["TAKEN"]
    assert programs_at_me(signed_in_as(User.objects.get(username="mallory"))) == []
