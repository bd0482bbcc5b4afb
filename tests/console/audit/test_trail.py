"""The audit trail (/audit/trail/): filters, keyset pages newest first, the streamed CSV with the same
filters and neutralised formula cells, the index plans, and the query count."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from console.audit import trail as trail_module
from console.audit.review_forms import TrailFilterForm, cursor_encode
from core.models import AuditEvent
from tests.factories import ProgramFactory
from tests.referrals.helpers import row_counts

pytestmark = pytest.mark.django_db

TRAIL = "/audit/trail/"
CSV = "/audit/trail.csv"
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def event(minutes: int = 0, **fields: Any) -> AuditEvent:
    values = {
        "created_at": T0 + timedelta(minutes=minutes), "program_id": None, "actor_type": "user", "actor_id": "u_1",
        "actor_label": "auditor", "action": "signup.reviewed", "object_type": "signup", "object_id": "1",
        "before": None, "after": None, "reason": "",
    }  # fmt: skip
    values.update(fields)
    return AuditEvent.objects.create(**values)


@pytest.fixture
def events(program) -> dict[str, Any]:
    other = ProgramFactory(slug="summer-club", name="Summer Club")
    return {
        "other": other,
        "reviewed": event(
            0, program_id=program.pk, object_id="7", reason="Real reader",
            before={"status": "pending_review", "ambassador": "ANA"},
            after={"status": "qualified", "ambassador": "ANA"},
        ),
        "overridden": event(
            60, program_id=program.pk, action="signup.overridden", actor_label="root", actor_id="u_2",
            object_id="8", reason='=HYPERLINK("http://evil")', before={"ambassador": "ANA"},
            after={"ambassador": None},
        ),
        "tier": event(
            60 * 24 * 3, program_id=other.pk, action="tier.created", actor_type="system", actor_id="",
            actor_label="seed", object_type="tier", object_id="3", after={"name": "Five friends"},
        ),
    }  # fmt: skip


@pytest.fixture
def client(auditor) -> Client:
    client = Client()
    client.force_login(auditor)
    return client


def shown(response: Any) -> list[int]:
    return [row.id for row in response.context["rows"]]


def test_the_urls_are_named():
    assert reverse("audit-trail") == TRAIL
    assert reverse("audit-trail-csv") == CSV


def test_the_trail_lists_events_newest_first_with_their_details(client, events):
    response = client.get(TRAIL)

    assert response.status_code == 200
    assert shown(response) == [events["tier"].pk, events["overridden"].pk, events["reviewed"].pk]
    body = response.content.decode()
    assert 'href="/audit/signups/7/"' in body and 'href="/audit/signups/8/"' in body
    assert "Real reader" in body
    assert "=HYPERLINK(&quot;http://evil&quot;)" in body  # the reason, escaped
    assert "pending_review" in body and "qualified" in body  # before -> after
    assert "Summer Club" in body and "tier 3" in body
    row = next(r for r in response.context["rows"] if r.id == events["reviewed"].pk)
    assert row.changes == [trail_module.Change("status", "pending_review", "qualified")]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"program": "book-launch"}, ["overridden", "reviewed"]),
        ({"program": "summer-club"}, ["tier"]),
        ({"object_type": "signup"}, ["overridden", "reviewed"]),
        ({"object_type": "signup", "object_id": "7"}, ["reviewed"]),
        ({"actor": "root"}, ["overridden"]),
        ({"actor": "u_1"}, ["reviewed"]),
        ({"action": "signup."}, ["overridden", "reviewed"]),
        ({"action": "tier.created"}, ["tier"]),
        ({"since": "2026-03-10", "until": "2026-03-10"}, ["overridden", "reviewed"]),
        ({"since": "2026-03-11"}, ["tier"]),
        ({"until": "2026-03-12"}, ["overridden", "reviewed"]),
        ({"program": "book-launch", "actor": "auditor", "action": "signup"}, ["reviewed"]),
    ],
)
def test_the_filters(client, events, query, expected):
    response = client.get(TRAIL, query)

    assert response.status_code == 200
    assert shown(response) == [events[name].pk for name in expected]


@pytest.mark.parametrize(
    "query",
    [{"since": "2026-03-12", "until": "2026-03-10"}, {"since": "yesterday"}, {"before": "nonsense"},
     {"program": "no-such-program"}],
)  # fmt: skip
def test_bad_filters_are_form_errors_not_a_500(client, events, query):
    response = client.get(TRAIL, query)

    assert response.status_code == 400
    assert response.context["form"].errors
    assert client.get(CSV, query).status_code == 400


def test_the_trail_pages_by_keyset_without_repeating_or_losing_rows(client, events, monkeypatch):
    monkeypatch.setattr(trail_module, "PAGE_SIZE", 2)
    same_time = [event(60, object_id=str(100 + n)) for n in range(3)]  # ties on created_at: the id decides
    expected = sorted(
        [*events.values(), *same_time][1:], key=lambda e: (e.created_at, e.pk), reverse=True
    )  # events["other"] is a program, not an event

    seen, url = [], TRAIL + "?action=&object_type="
    for _page in range(5):
        response = client.get(url)
        seen += shown(response)
        if not response.context["next_query"]:
            break
        url = f"{TRAIL}?{response.context['next_query']}"

    assert seen == [e.pk for e in expected]


def test_the_next_page_keeps_the_filters(client, events, monkeypatch):
    monkeypatch.setattr(trail_module, "PAGE_SIZE", 1)

    response = client.get(TRAIL, {"object_type": "signup"})
    following = client.get(f"{TRAIL}?{response.context['next_query']}")

    assert "object_type=signup" in response.context["next_query"]
    assert shown(following) == [events["reviewed"].pk]
    assert following.context["next_query"] == ""


def read_csv(response: Any) -> list[dict[str, str]]:
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_is_streamed_with_the_filters(client, events):
    response = client.get(CSV, {"program": "book-launch", "action": "signup"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="audit-trail.csv"' in response["Content-Disposition"]
    rows = read_csv(response)
    assert [r["id"] for r in rows] == [str(events["overridden"].pk), str(events["reviewed"].pk)]
    reviewed = rows[1]
    assert reviewed["actor_label"] == "auditor" and reviewed["reason"] == "Real reader"
    assert reviewed["after"] == '{"ambassador": "ANA", "status": "qualified"}'


def test_the_csv_neutralises_formula_cells(client, events):
    event(120, actor_label="@SUM(A1)", object_id="-1", reason="+cmd")

    rows = read_csv(client.get(CSV, {"object_type": "signup"}))

    assert rows[0]["actor_label"] == "'@SUM(A1)" and rows[0]["object_id"] == "'-1" and rows[0]["reason"] == "'+cmd"
    assert rows[1]["reason"] == '\'=HYPERLINK("http://evil")'


def test_the_csv_reads_the_rows_through_an_iterator(client, events, monkeypatch):
    """The export never materialises the queryset: rows come from .iterator() as the response streams."""
    from django.db.models.query import QuerySet

    used: list[int] = []
    real = QuerySet.iterator

    def spy(self: Any, chunk_size: int | None = None) -> Any:
        used.append(chunk_size or 0)
        return real(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    response = client.get(CSV)
    assert used == []  # nothing read before the body is streamed
    assert len(read_csv(response)) == 3
    assert used == [2000]


@pytest.mark.parametrize("url", [TRAIL, CSV])
def test_marketing_and_ambassadors_get_403_anonymous_logs_in(marketer, ambassador, events, url):
    before = row_counts()
    for user in (marketer, ambassador.user):
        other = Client()
        other.force_login(user)
        assert other.get(url).status_code == 403
    assert "/accounts/login/" in Client().get(url)["Location"]
    assert row_counts() == before


def test_the_query_count_of_the_trail_is_constant_in_rows(client, events, django_assert_num_queries):
    client.get(TRAIL)  # warm the session and the user's groups
    with django_assert_num_queries(6):  # session, user, groups, the page of events, their programs, the program filter
        first = client.get(TRAIL)
    for n in range(20):
        event(n, program_id=events["other"].pk, object_id=str(200 + n), before={"a": 1}, after={"a": n})
    with django_assert_num_queries(6):
        second = client.get(TRAIL)
    assert len(first.context["rows"]) == 3 and len(second.context["rows"]) == 23


# --- The plans: the default page and the object filter use an index -----------------------------------


@pytest.fixture
def many_events(db) -> None:
    """~20k events (the trigger refuses UPDATE and DELETE only: inserting is what the trail is for)."""
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                created_at=T0 - timedelta(seconds=n),
                program_id=n % 7,
                actor_type="user",
                actor_id=f"u_{n % 50}",
                actor_label=f"staff{n % 50}",
                action=("signup.reviewed", "tier.updated")[n % 2],
                object_type=("signup", "tier", "program")[n % 3],
                object_id=str(n % 5000),
                reason="r",
            )
            for n in range(20_000)
        ],
        batch_size=5_000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE core_auditevent")


def plan(query: dict[str, str], before: tuple[datetime, int] | None = None) -> str:
    form = TrailFilterForm(query)
    assert form.is_valid(), form.errors
    events = trail_module.filtered_events(form)
    if before is not None:
        from django.db.models import F
        from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan

        events = events.filter(TupleLessThan(Tuple(F("created_at"), F("id")), before))
    return events[: trail_module.PAGE_SIZE + 1].explain()


def test_the_default_page_and_a_later_page_use_the_keyset_index(many_events):
    first = plan({})
    later = plan({}, before=(T0 - timedelta(seconds=10_000), 10**9))

    # The planner may walk the (created_at, id) index or the older created_at one with an incremental sort
    # on id: both read one page of an index, newest first, and neither scans the table.
    for found in (first, later):
        assert "Seq Scan" not in found, found
        assert re.search(r"Index Scan Backward using (audit_created_id|\w*auditevent_created_at\w*)", found), found
    assert "Index Cond" in later, later


def test_the_object_filter_uses_the_object_index(many_events):
    found = plan({"object_type": "signup", "object_id": "42"})

    assert "Seq Scan" not in found and "audit_object" in found, found


def test_a_cursor_is_the_last_row_shown():
    moment = datetime(2026, 3, 10, 12, 0, 0, 123456, tzinfo=UTC)
    form = TrailFilterForm({"before": cursor_encode(moment, 42)})

    assert form.is_valid()
    assert form.cleaned_data["before"] == (moment, 42)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, None, []),
        (None, {"name": "Five"}, [("name", None, "Five")]),
        ({"name": "Five"}, None, [("name", "Five", None)]),
        ({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": None}, [("b", "2", "3"), ("c", None, "null")]),
        ("old", "new", [("", "old", "new")]),
        (None, {"long": "x" * 100}, [("long", None, "x" * 59 + "…")]),
    ],
)
def test_before_and_after_are_shown_compactly(before, after, expected):
    assert [(c.key, c.before, c.after) for c in trail_module.changes(before, after)] == expected
