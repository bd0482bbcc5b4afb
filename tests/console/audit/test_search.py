"""The audit console's searches: signups and conversions across programs by e-mail (whole, mailbox or
beginning), ambassador (code or e-mail), status, method, order number and period; keyset pages; streamed
CSV; who may see them; a query count that does not grow with the rows; and index-served plans."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ambassadors.mailbox import canonical_mailbox
from console.audit import queries
from console.audit.queries import Cursor, Filters
from core import clock
from core.actors import Actor
from referrals.models import Conversion, Signup
from referrals.services import conversion_record, signup_record
from tests.factories import ProgramFactory, enroll

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def _signup(program, email, code=None, *, days_ago=0):
    signup = signup_record(program=program, email=email, referral_code=code, actor=SYSTEM)[0]
    if days_ago:
        Signup.objects.filter(pk=signup.pk).update(created_at=clock.now() - timedelta(days=days_ago))
    return signup


@pytest.fixture
def world(program, ambassador):
    """Ana and Bob in the book launch, Carl in another program; signups by code, walk-ins, a held one."""
    bob = enroll(program, "bob@example.com", display_name="Bob")
    summer = ProgramFactory(slug="summer", name="Summer Club")
    carl = enroll(summer, "carl@example.com", display_name="Carl")
    _signup(program, "jane.doe@gmail.com", ambassador.code, days_ago=10)
    _signup(program, "zoe@example.org", bob.code, days_ago=5)
    _signup(program, "walkin@example.org", days_ago=3)
    _signup(program, "held@mailinator.com", ambassador.code, days_ago=1)
    _signup(summer, "jane.doe@gmail.com", carl.code)
    return {"book": program, "summer": summer, "ana": ambassador, "bob": bob, "carl": carl}


@pytest.fixture
def admin_client(auditor):
    client = Client()
    client.force_login(auditor)
    return client


def emails(page):
    return [row.email for row in page.rows]


def test_an_address_finds_its_signups_in_every_program_written_any_way(world):
    exact = queries.signups_page(Filters(email="Jane.Doe@gmail.com"))
    mailbox = queries.signups_page(Filters(email="janedoe+news@googlemail.com"))

    assert [(r.email, r.program_name) for r in exact.rows] == [
        ("jane.doe@gmail.com", "Summer Club"),
        ("jane.doe@gmail.com", "The Book Launch"),
    ]
    assert [r.id for r in mailbox.rows] == [r.id for r in exact.rows]


def test_the_beginning_of_an_address_finds_all_that_begin_so(world):
    assert emails(queries.signups_page(Filters(email="z"))) == ["zoe@example.org"]
    assert emails(queries.signups_page(Filters(email="walkin@*"))) == ["walkin@example.org"]
    assert emails(queries.signups_page(Filters(email="nobody"))) == []


def test_an_ambassador_is_found_by_code_or_e_mail_and_the_program_narrows(world):
    by_code = queries.signups_page(Filters(ambassador=world["ana"].code.lower()))
    by_email = queries.signups_page(Filters(ambassador="ANA@example.com"))
    in_summer = queries.signups_page(Filters(email="jane.doe@gmail.com", program=world["summer"]))

    assert emails(by_code) == ["held@mailinator.com", "jane.doe@gmail.com"]
    assert emails(by_email) == emails(by_code)
    assert [r.ambassador_code for r in in_summer.rows] == [world["carl"].code]
    assert emails(queries.signups_page(Filters(ambassador="NOSUCHCODE"))) == []


def test_status_method_and_period_filter(world):
    today = clock.now().date()

    held = queries.signups_page(Filters(status="pending_review"))
    walk_ins = queries.signups_page(Filters(method="none"))
    week = queries.signups_page(Filters(program=world["book"], since=today - timedelta(days=6), until=today))

    assert [(r.email, r.reason) for r in held.rows] == [("held@mailinator.com", "disposable_email")]
    assert emails(walk_ins) == ["walkin@example.org"]
    assert emails(week) == ["held@mailinator.com", "walkin@example.org", "zoe@example.org"]


def test_keyset_pages_walk_every_row_once_forward_and_back(program, ambassador):
    now = clock.now()
    for n in range(7):
        _signup(program, f"f{n}@example.org", ambassador.code)
    # Two signups at the very same instant: the id breaks the tie.
    Signup.objects.filter(email__in=["f2@example.org", "f3@example.org"]).update(created_at=now)
    expected = list(Signup.objects.order_by("-created_at", "-id").values_list("email", flat=True))

    seen, pages, page = [], [], queries.signups_page(Filters(), size=3)
    while True:
        pages.append(page)
        seen += emails(page)
        if page.next is None:
            break
        page = queries.signups_page(Filters(), after=Cursor.decode(page.next), size=3)
    back = queries.signups_page(Filters(), before=Cursor.decode(pages[-1].previous), size=3)

    assert seen == expected
    assert [len(p.rows) for p in pages] == [3, 3, 1]
    assert pages[0].is_first and pages[0].previous is None and not pages[1].is_first
    assert emails(back) == emails(pages[1])


def test_a_mangled_cursor_starts_over():
    assert Cursor.decode("nonsense") is None
    assert Cursor.decode("12.x") is None
    assert Cursor.decode(None) is None
    cursor = Cursor(clock.now(), 42)
    assert Cursor.decode(cursor.encode()) == cursor


# --- The pages -----------------------------------------------------------------------------------------


def test_an_admin_finds_a_signup_by_e_mail_on_the_page_with_the_whole_address(world, admin_client):
    response = admin_client.get(reverse("audit-home"), {"email": "janedoe@gmail.com", "program": world["book"].pk})

    assert response.status_code == 200
    body = response.content.decode()
    signup = Signup.objects.get(program=world["book"], email="jane.doe@gmail.com")
    assert "jane.doe@gmail.com" in body
    assert reverse("audit-signup", args=[signup.pk]) in body
    assert world["ana"].code in body
    assert "zoe@example.org" not in body


def test_the_page_pages_by_keyset(world, admin_client, monkeypatch):
    monkeypatch.setattr(queries, "PAGE_SIZE", 2)

    first = admin_client.get(reverse("audit-home"), {"program": world["book"].pk})
    next_url = first.context["pager"]["next_url"]
    second = admin_client.get(next_url)

    assert [r.email for r in first.context["page"].rows] == ["held@mailinator.com", "walkin@example.org"]
    assert [r.email for r in second.context["page"].rows] == ["zoe@example.org", "jane.doe@gmail.com"]
    assert f"program={world['book'].pk}" in next_url
    assert second.context["pager"]["first_url"] is not None


def test_a_period_ending_before_it_starts_is_a_form_error(admin_client, db):
    response = admin_client.get(reverse("audit-home"), {"since": "2026-05-02", "until": "2026-05-01"})

    assert response.status_code == 400
    assert "The end of the period comes before its start." in response.content.decode()


@pytest.mark.parametrize("name", ["audit-home", "audit-conversions", "audit-signups-csv", "audit-conversions-csv"])
def test_who_may_search(name, world, marketer, auditor):
    url = reverse(name)
    ambassador_client, marketing_client, admin = Client(), Client(), Client()
    ambassador_client.force_login(world["ana"].user)
    marketing_client.force_login(marketer)
    admin.force_login(auditor)

    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert ambassador_client.get(url).status_code == 403
    assert marketing_client.get(url).status_code == 403
    assert admin.get(url).status_code == 200


def _page_queries(client, url, params):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    ("name", "params"),
    [("audit-home", {}), ("audit-home", {"ambassador": "ana@example.com"}), ("audit-conversions", {})],
)
def test_the_query_count_does_not_grow_with_the_rows(name, params, program, ambassador, admin_client,
                                                     django_assert_num_queries):  # fmt: skip
    def add(n, start):
        for i in range(start, start + n):
            _signup(program, f"r{i}@example.org", ambassador.code)
            conversion_record(program=program, actor=SYSTEM, external_id=f"o-{i}", amount="5.00", currency="EUR",
                              email=f"r{i}@example.org")  # fmt: skip

    add(2, 0)
    url = reverse(name)
    few = _page_queries(admin_client, url, params)
    add(25, 2)
    # session, user, groups (the policy), the program choices, the page (+1 naming an ambassador)
    expected = 5 + (1 if params else 0)
    with django_assert_num_queries(expected):
        admin_client.get(url, params)
    assert few == expected


# --- Conversions ---------------------------------------------------------------------------------------


@pytest.fixture
def bought(world):
    book, summer = world["book"], world["summer"]
    conversion_record(program=book, actor=SYSTEM, external_id="A-1", amount="19.90", currency="EUR",
                      email="jane.doe@gmail.com")  # fmt: skip
    conversion_record(program=book, actor=SYSTEM, external_id="A-2", amount="5.00", currency="EUR",
                      email="zoe@example.org")  # fmt: skip
    conversion_record(program=summer, actor=SYSTEM, external_id="A-1", amount="7.00", currency="EUR",
                      email="jane.doe@gmail.com")  # fmt: skip
    Conversion.objects.filter(external_id="A-2").update(occurred_at=clock.now() - timedelta(days=20))
    return world


def test_conversions_are_found_by_order_number_subscriber_ambassador_status_and_period(bought):
    def ids(**kw):
        return [(r.external_id, r.program_name) for r in queries.conversions_page(Filters(**kw)).rows]

    today = clock.now().date()
    assert ids(external_id="A-1") == [("A-1", "Summer Club"), ("A-1", "The Book Launch")]
    assert ids(email="janedoe@googlemail.com", program=bought["book"]) == [("A-1", "The Book Launch")]
    assert ids(ambassador=bought["bob"].code) == [("A-2", "The Book Launch")]
    assert ids(status="pending", since=today - timedelta(days=2)) == [
        ("A-1", "Summer Club"), ("A-1", "The Book Launch"),
    ]  # fmt: skip
    assert ids(status="approved") == []
    row = queries.conversions_page(Filters(external_id="A-2")).rows[0]
    assert (row.amount, row.currency, row.email) == (Decimal("5.00"), "EUR", "zoe@example.org")


def test_the_conversions_page_shows_amounts_and_links_to_the_signup(bought, admin_client):
    response = admin_client.get(reverse("audit-conversions"), {"external_id": "A-2"})

    body = response.content.decode()
    signup = Signup.objects.get(email="zoe@example.org")
    assert response.status_code == 200
    assert "zoe@example.org" in body and "A-2" in body and "5.00" in body
    assert reverse("audit-signup", args=[signup.pk]) in body


# --- CSV -----------------------------------------------------------------------------------------------


def _csv(response):
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_signup_export_streams_what_the_search_finds(world, admin_client):
    _signup(world["book"], "=cmd@example.org")

    response = admin_client.get(reverse("audit-signups-csv"), {"program": world["book"].pk, "email": "="})
    rows = _csv(response)
    everything = _csv(admin_client.get(reverse("audit-signups-csv")))

    assert response["Content-Type"].startswith("text/csv")
    assert rows[0] == list(queries.SIGNUP_CSV_HEADER)
    assert [r[3] for r in rows[1:]] == ["'=cmd@example.org"]  # a formula is written as text
    assert len(everything) == 1 + Signup.objects.count()


def test_the_conversion_export_streams_what_the_search_finds(bought, admin_client):
    rows = _csv(admin_client.get(reverse("audit-conversions-csv"), {"external_id": "A-1"}))

    assert rows[0] == list(queries.CONVERSION_CSV_HEADER)
    assert sorted((r[3], r[7]) for r in rows[1:]) == [("A-1", "19.90"), ("A-1", "7.00")]


# --- Plans: each search reads an index, however many rows -------------------------------------------------


@pytest.fixture
def many(program, ambassador):
    """20,000 signups (a third credited to Ana) and 5,000 conversions, then ANALYZE: the planner knows."""
    if connection.vendor != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    other = ProgramFactory(slug="other", name="Other")
    now = clock.now()
    signups = [
        Signup(
            program=program if n % 2 else other,
            email=f"person{n}@example.org",
            email_canonical=canonical_mailbox(f"person{n}@example.org"),
            ambassador=ambassador if n % 3 == 0 and n % 2 else None,
            method="code" if n % 3 == 0 and n % 2 else "none",
            status="pending_review" if n % 500 == 0 else "qualified",
            created_at=now - timedelta(minutes=n),
        )
        for n in range(20_000)
    ]
    Signup.objects.bulk_create(signups, batch_size=5000)
    created = Signup.objects.order_by("id")[:5000]
    Conversion.objects.bulk_create(
        [
            Conversion(
                program_id=s.program_id,
                signup=s,
                external_id=f"o-{s.pk}",
                amount=Decimal("9.90"),
                currency="EUR",
                occurred_at=s.created_at,
                approve_after=s.created_at,
                created_at=s.created_at,
                request_hash="x",
            )  # fmt: skip
            for s in created
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE referrals_signup")
        cursor.execute("ANALYZE referrals_conversion")
        cursor.execute("ANALYZE ambassadors_ambassador")
    return {"program": program, "ambassador": ambassador}


def _plan(read):
    """EXPLAIN of the query that reads the page (the last query `read` runs)."""
    with CaptureQueriesContext(connection) as captured:
        read()
    sql = captured.captured_queries[-1]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres
def test_each_search_reads_an_index_not_the_whole_table(many):
    program, ana = many["program"], many["ambassador"]
    last = queries.signups_page(Filters(program=program), size=50)
    searches = {
        "default page": lambda: queries.signups_page(Filters()),
        "a deep page": lambda: queries.signups_page(Filters(), after=Cursor.decode(last.next)),
        "one program": lambda: queries.signups_page(Filters(program=program)),
        "an address": lambda: queries.signups_page(Filters(email="person123@example.org")),
        "a mailbox": lambda: queries.signups_page(Filters(email="Person123+x@example.org")),
        "an address's beginning": lambda: queries.signups_page(Filters(email="person1234")),
        "an ambassador": lambda: queries.signups_page(Filters(ambassador=ana.code)),
        "held for review": lambda: queries.signups_page(Filters(status="pending_review")),
        "conversions": lambda: queries.conversions_page(Filters()),
        "an order number": lambda: queries.conversions_page(Filters(external_id="o-5")),
        "a buyer's address": lambda: queries.conversions_page(Filters(email="person7@example.org")),
        "conversions of one program": lambda: queries.conversions_page(Filters(program=program)),
    }
    plans = {name: _plan(read) for name, read in searches.items()}

    for name, plan in plans.items():
        assert "Index" in plan, f"{name}:\n{plan}"
        assert "Seq Scan on referrals_signup" not in plan, f"{name}:\n{plan}"
        assert "Seq Scan on referrals_conversion" not in plan, f"{name}:\n{plan}"
    assert "signup_email_pattern" in plans["an address's beginning"]
    assert "signup_email_canonical" in plans["a mailbox"]
    assert "signup_recent" in plans["default page"]
    assert "signup_ambassador_recent" in plans["an ambassador"]
    assert "conversion_external_id" in plans["an order number"]
