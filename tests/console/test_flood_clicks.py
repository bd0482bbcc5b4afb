"""Clicks flagged as a flood (past the per-IP rate, referrals.services.clicks) are recorded but count for
nothing: not in the analytics' reach and funnel, not in the ambassador's link counts, not as a competing
click on the audit page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from console.analytics import Period, ambassadors_overview, funnel
from console.dashboard import dashboard_sections
from core import clock
from referrals.models import Click

pytestmark = pytest.mark.django_db


@pytest.fixture
def clicks(program, ambassador):
    now = clock.now()
    Click.objects.create(program=program, ambassador=ambassador, created_at=now - timedelta(minutes=3))
    for minute in range(5):
        Click.objects.create(
            program=program, ambassador=ambassador, created_at=now - timedelta(minutes=minute), flood=True
        )
    Click.objects.create(program=program, ambassador=ambassador, created_at=now, is_bot=True)
    return now


def test_the_analytics_count_the_human_click_only(program, ambassador, clicks):
    period = Period.last_days(7, today=clicks.date())

    assert funnel(program, period).clicks == 1
    overview = ambassadors_overview(program, period, value_limit=10, reach_limit=10)
    assert overview.clicks == 1
    assert [(row.code, row.clicks) for row in overview.reach.rows] == [(ambassador.code, 1)]


def test_the_dashboard_counts_the_human_click_only(program, ambassador, clicks):
    (section,) = dashboard_sections(ambassador.user)

    assert sum(line.clicks for line in section.links) == 1
