"""Every console page and action, as a superuser (who passes every policy), with hostile query strings and
bodies: a clear 4xx or the page again, never a 500, and nothing recorded by a refused write."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse

from core import clock
from core.actors import Actor
from referrals.services import signup_record
from rewards.models import RewardTier
from rewards.services import contest_create, tier_create
from tests.factories import ProgramFactory, UserFactory, enroll
from tests.referrals.helpers import row_counts

pytestmark = pytest.mark.django_db

HOSTILE = ["\x00", "%00", "'; DROP TABLE x;--", "9" * 40, "-1", "2026-13-45", "<script>", "ÿ" * 300, "[]", "{}"]
PARAMS = ["after", "before", "cursor", "program", "status", "method", "email", "code", "ambassador", "start",
          "end", "from", "to", "period", "days", "object_type", "object_id", "actor", "action", "limit",
          "q"]  # fmt: skip


@pytest.fixture
def scene():
    program = ProgramFactory(slug="book-launch", name="The Book Launch")
    ana = enroll(program, "ana@example.com", display_name="Ana")
    system = Actor.system("test")
    tier = tier_create(
        program=program, name="One friend", kind=RewardTier.Kind.INDIVIDUAL,
        metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal("1"),
        reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("20"), actor=system,
    )  # fmt: skip
    signup = signup_record(program=program, email="friend@example.org", referral_code=ana.code, actor=system)[0]
    contest = contest_create(
        program=program, actor=system, name="Monthly", prize_text="Jam",
        starts_at=clock.now() - timedelta(days=1), ends_at=clock.now() + timedelta(days=3),
    )  # fmt: skip
    kwargs = {"slug": program.slug, "tier_id": tier.pk, "contest_id": contest.pk, "signup_id": signup.pk,
              "table": "funnel"}  # fmt: skip
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client, kwargs


def console_urls(kwargs):
    for p in get_resolver().url_patterns:
        if isinstance(p, URLPattern) and p.name and p.name.startswith(("staff-", "audit-")):
            wanted = p.pattern.regex.groupindex
            if set(wanted) <= set(kwargs):
                yield p.name, reverse(p.name, kwargs={k: kwargs[k] for k in wanted})


def test_hostile_query_strings_never_make_a_console_page_fail(scene):
    client, kwargs = scene
    urls = list(console_urls(kwargs))
    assert len(urls) >= 22  # every console route but the webhook endpoint's own pages (tested beside them)
    failures = []
    for name, url in urls:
        for value in HOSTILE:
            query = {param: value for param in PARAMS}
            response = client.get(url, query)
            if response.status_code >= 500:
                failures.append((name, value, response.status_code))
    assert failures == []


def test_hostile_bodies_never_make_a_console_action_fail_and_record_nothing_when_refused(scene):
    client, kwargs = scene
    failures = []
    for name, url in console_urls(kwargs):
        for value in HOSTILE:
            before = row_counts()
            body = {field: value for field in PARAMS + ["name", "slug", "reason", "decision", "signups",
                    "ambassador_code", "action", "threshold", "step", "drop_value", "currency", "base_price",
                    "url", "events", "starts_at", "ends_at", "winners_count", "share_message", "kind"]}  # fmt: skip
            response = client.post(url, body)
            if response.status_code >= 500:
                failures.append((name, repr(value), response.status_code))
            elif response.status_code >= 400:
                assert row_counts() == before, (name, value)
    assert failures == []
