"""Migration referrals 0015 fills each existing signup's link from its click, in the one statement it runs;
`manage.py fill_signup_links` fills those the previous release records while an upgrade is under way."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from core.actors import Actor
from referrals.models import Signup
from referrals.services import link_create, signup_record
from tests.referrals.helpers import browser, visit

BEFORE = [("referrals", "0014_weekly_rollups")]


@pytest.mark.django_db(transaction=True)
def test_existing_signups_get_the_link_of_their_click():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    program = old.get_model("ambassadors", "Program").objects.create(slug="old", name="Old")
    user = old.get_model("auth", "User").objects.create(username="ana", email="ana@example.com")
    ana = old.get_model("ambassadors", "Ambassador").objects.create(
        program=program,
        user=user,
        email="ana@example.com",
        email_canonical="ana@example.com",
        code="ANA",
        code_key="ana",
    )
    newsletter = old.get_model("referrals", "ReferralLink").objects.create(
        ambassador=ana, channel="newsletter", code="ANA-NEWS", code_key="ana-news"
    )
    clicks, signups = old.get_model("referrals", "Click"), old.get_model("referrals", "Signup")
    now = timezone.now()

    def click(link) -> uuid.UUID:
        return clicks.objects.create(id=uuid.uuid4(), program=program, ambassador=ana, link=link, created_at=now).id

    through_link = signups.objects.create(
        program=program, email="a@example.org", email_canonical="a@example.org", ambassador=ana,
        click_id=click(newsletter), created_at=now,
    )  # fmt: skip
    through_main = signups.objects.create(
        program=program, email="b@example.org", email_canonical="b@example.org", ambassador=ana,
        click_id=click(None), created_at=now,
    )  # fmt: skip
    typed = signups.objects.create(
        program=program, email="c@example.org", email_canonical="c@example.org", ambassador=ana, created_at=now
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert dict(Signup.objects.values_list("pk", "link_id")) == {
        through_link.pk: newsletter.pk,
        through_main.pk: None,
        typed.pk: None,
    }


@pytest.fixture
def upgrade_window(program, ambassador):
    """Three friends of Ana's subscribe while an upgrade across 0015 is under way: the previous release records
    their signups without the link of their click. Returns them (through a channel link, through Ana's main
    link, code typed) and the channel link."""
    newsletter = link_create(ambassador=ambassador, channel="newsletter")
    _response, through_link = visit(browser("198.51.100.31"), newsletter.code)
    _response, through_main = visit(browser("198.51.100.32"), ambassador.code)
    shop = Actor.system("shop")
    signups = [
        signup_record(program=program, email="a@example.org", actor=shop, click_id=through_link)[0],
        signup_record(program=program, email="b@example.org", actor=shop, click_id=through_main)[0],
        signup_record(program=program, email="c@example.org", actor=shop, referral_code=ambassador.code)[0],
    ]
    assert [s.link_id for s in signups] == [newsletter.pk, None, None]
    Signup.objects.filter(pk=signups[0].pk).update(link_id=None)  # what the previous release wrote
    return signups, newsletter


@pytest.mark.django_db
def test_fill_signup_links_gives_the_signups_of_an_upgrade_their_click_link_once(upgrade_window):
    (through_link, through_main, typed), newsletter = upgrade_window
    out = io.StringIO()

    call_command("fill_signup_links", stdout=out)
    again = io.StringIO()
    call_command("fill_signup_links", stdout=again)

    assert dict(Signup.objects.values_list("pk", "link_id")) == {
        through_link.pk: newsletter.pk,
        through_main.pk: None,
        typed.pk: None,
    }
    assert "filled=1" in out.getvalue()
    assert "filled=0" in again.getvalue()


@pytest.mark.django_db
def test_fill_signup_links_reads_only_the_days_asked(upgrade_window, program):
    (through_link, _main, _typed), _newsletter = upgrade_window
    tomorrow = (timezone.now() + timedelta(days=1)).date()

    with pytest.raises(CommandError, match="after today"):
        call_command("fill_signup_links", "--since", tomorrow.isoformat(), stdout=io.StringIO())
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("fill_signup_links", "--since", "yesterday", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No program"):
        call_command("fill_signup_links", "--program", "nope", stdout=io.StringIO())
    call_command("fill_signup_links", "--program", program.slug, "--since", timezone.now().date().isoformat(),
                 stdout=io.StringIO())  # fmt: skip

    through_link.refresh_from_db()
    assert through_link.link_id is not None
