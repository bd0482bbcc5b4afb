"""Migration referrals 0015 fills each existing signup's link from its click, in the one statement it runs."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

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

    from referrals.models import Signup

    assert dict(Signup.objects.values_list("pk", "link_id")) == {
        through_link.pk: newsletter.pk,
        through_main.pk: None,
        typed.pk: None,
    }
