"""Under first click, a signup passing a click_id looks up the visitor's earliest click: an index serves it,
so the lookup does not scan the click table (the largest table, growing with every visit)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ambassadors.models import Program
from referrals.models import Click
from referrals.services import attribution_decide

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

VISITORS = 2000
CLICKS_PER_VISITOR = 3


@pytest.fixture
def busy_program(program, ambassador):
    """A first-click program with thousands of clicks, of many visitors, some anonymous (no visitor id)."""
    program.attribution_model = Program.AttributionModel.FIRST_CLICK
    program.save()
    now = timezone.now()
    Click.objects.bulk_create(
        Click(
            id=uuid.uuid4(),
            program=program,
            ambassador=ambassador,
            created_at=now - dt.timedelta(minutes=n * CLICKS_PER_VISITOR + i),
            visitor_id=f"visitor-{n}" if n % 10 else "",
            is_bot=False,
        )
        for n in range(VISITORS)
        for i in range(CLICKS_PER_VISITOR)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Click._meta.db_table}")
    return program


def test_the_first_click_lookup_of_a_visitor_uses_the_visitor_index(busy_program):
    last = Click.objects.filter(visitor_id="visitor-7").order_by("-created_at").first()

    with CaptureQueriesContext(connection) as queries:
        attribution = attribution_decide(
            program=busy_program, referral_code=None, cookie_click_id=None, click_id=str(last.pk), now=timezone.now()
        )
    lookup = [q["sql"] for q in queries.captured_queries if '"visitor_id" =' in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + lookup[0])
        plan = "\n".join(row[0] for row in cursor.fetchall())

    first = Click.objects.filter(visitor_id="visitor-7").order_by("created_at").first()
    assert attribution.click == first, "the earliest click of the visitor wins under first click"
    assert len(lookup) == 1
    assert "click_visitor_first_click" in plan, plan
    assert "Seq Scan on referrals_click" not in plan, plan
