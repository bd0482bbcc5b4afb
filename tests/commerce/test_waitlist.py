"""Waitlists: places computed from the signups at read time (signup order minus places x qualified referrals,
ties by signup time then id), the staff list, its CSV, admitting the first N, and the subscriber's own page
and e-mail."""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from commerce.models import WaitlistAdmission, WaitlistSettings
from commerce.waitlist import (
    waitlist_admit,
    waitlist_configure,
    waitlist_lines,
    waitlist_notify_due,
    waitlist_position,
    waitlist_status_token,
)
from core.actors import Actor
from core.errors import Conflict, InvalidInput
from core.models import AuditEvent
from referrals.models import Signup
from referrals.services import signup_record, signup_review
from tests.commerce import support_embed_waitlist as support
from tests.factories import enroll, staff_user

manage_key = support.manage_key
other_program = support.other_program

pytestmark = pytest.mark.django_db

STAFF = Actor.system("test")


def subscribe(program: Any, email: str, code: str | None = None) -> Signup:
    return signup_record(program=program, email=email, referral_code=code, actor=Actor.system("test"))[0]


def line_of(program: Any) -> list[str]:
    return [line.email for line in waitlist_lines(program, limit=10_000)]


@pytest.fixture
def waitlist(program) -> WaitlistSettings:
    return waitlist_configure(program=program, actor=STAFF, enabled=True, places_per_referral=2)


@pytest.fixture
def five(program, waitlist) -> list[Signup]:
    """Five subscribers, in this order: s0 .. s4."""
    return [subscribe(program, f"s{i}@example.org") for i in range(5)]


def test_subscribers_wait_in_signup_order_numbered_from_one(program, five):
    lines = waitlist_lines(program)

    assert [line.email for line in lines] == [s.email for s in five]
    assert [line.position for line in lines] == [1, 2, 3, 4, 5]
    assert [line.ahead for line in lines] == [0, 1, 2, 3, 4]
    assert {line.total for line in lines} == {5}


def test_each_qualified_referral_moves_the_referrer_up_by_the_programs_places(program, five):
    s4 = five[4]
    code = enroll(program, s4.email).code

    subscribe(program, "friend@example.org", code)  # qualified: s4's score 5 - 2 = 3, tied with s2, later

    assert line_of(program)[:6] == ["s0@example.org", "s1@example.org", "s2@example.org", "s4@example.org",
                                    "s3@example.org", "friend@example.org"]  # fmt: skip
    assert waitlist_position(s4).position == 4
    assert waitlist_position(s4).referrals == 1


def test_a_rejected_or_held_referral_moves_nobody(program, five):
    s4 = five[4]
    code = enroll(program, s4.email).code
    before = waitlist_position(s4)

    rejected = subscribe(program, "cousin@mailinator.com", code)  # disposable address: held for review
    held = subscribe(program, "aunt@mailinator.com", code)
    assert (rejected.status, held.status) == (Signup.Status.PENDING_REVIEW, Signup.Status.PENDING_REVIEW)
    signup_review(signup=rejected, status=Signup.Status.REJECTED, reason="a throwaway address", actor=STAFF)

    after = waitlist_position(s4)
    assert (after.position, after.referrals, after.score) == (before.position, 0, before.score)
    assert line_of(program) == [s.email for s in five] + ["aunt@mailinator.com"]  # the rejected one is not in line


def test_a_held_subscriber_waits_but_moves_nobody_until_approved(program, five):
    s0 = five[0]
    code = enroll(program, s0.email).code
    held = subscribe(program, "cousin@mailinator.com", code)

    assert waitlist_position(held).position == 6
    assert waitlist_position(s0).referrals == 0

    signup_review(signup=held, status=Signup.Status.QUALIFIED, reason="a real reader", actor=STAFF)

    assert waitlist_position(s0).referrals == 1


def test_ties_go_to_the_earlier_subscriber(program, waitlist):
    waitlist_configure(program=program, actor=STAFF, enabled=True, places_per_referral=1)
    first, second, third = (subscribe(program, f"t{i}@example.org") for i in range(3))
    code = enroll(program, third.email).code
    subscribe(program, "f1@example.org", code)  # third: 3 - 1 = 2, tied with second (2): second first

    assert line_of(program)[:3] == [first.email, second.email, third.email]

    subscribe(program, "f2@example.org", code)  # third: 3 - 2 = 1, tied with first (1): first first

    assert line_of(program)[:3] == [first.email, third.email, second.email]


def test_admitting_the_top_n_twice_admits_nobody_twice(program, five):
    first = waitlist_admit(program=program, count=2, actor=STAFF)
    second = waitlist_admit(program=program, count=2, actor=STAFF)

    assert [a.signup_id for a in first] == [five[0].pk, five[1].pk]
    assert [a.signup_id for a in second] == [five[2].pk, five[3].pk]
    assert WaitlistAdmission.objects.count() == 4
    assert line_of(program) == [five[4].email]
    assert waitlist_position(five[4]).position == 1
    assert waitlist_position(five[0]) is None  # admitted: out of the line
    events = AuditEvent.objects.filter(action="waitlist.admitted").order_by("id")
    assert [e.after["signup_ids"] for e in events] == [[five[0].pk, five[1].pk], [five[2].pk, five[3].pk]]


def test_a_form_posted_twice_admits_once(program, five):
    shown_first = waitlist_lines(program)[0].signup_id

    waitlist_admit(program=program, count=2, actor=STAFF, expected_first=shown_first)
    with pytest.raises(Conflict):
        waitlist_admit(program=program, count=2, actor=STAFF, expected_first=shown_first)

    assert WaitlistAdmission.objects.count() == 2


def test_admitting_asks_for_a_sensible_count_and_a_running_waitlist(program, five):
    for count in (0, -1, 1001):
        with pytest.raises(InvalidInput):
            waitlist_admit(program=program, count=count, actor=STAFF)
    waitlist_configure(program=program, actor=STAFF, enabled=False, places_per_referral=2)
    with pytest.raises(InvalidInput):
        waitlist_admit(program=program, count=1, actor=STAFF)
    assert not WaitlistAdmission.objects.exists()


# --- The staff pages -----------------------------------------------------------------------------------


@pytest.fixture
def marketer_client(db) -> Client:
    client = Client()
    client.force_login(staff_user("marketer", group="marketing"))
    return client


def _page_rows(html: str) -> list[tuple[int, str]]:
    return [
        (int(position), email)
        for position, email in re.findall(r'<th scope="row" class="num">(\d+)</th>\s*<td>([^<]+)</td>', html)
    ]


def test_the_csv_says_what_the_pages_say(program, waitlist, marketer_client):
    signups = [subscribe(program, f"p{i:03d}@example.org") for i in range(120)]
    for referrer in (signups[100], signups[60]):
        code = enroll(program, referrer.email).code
        for n in range(3):
            subscribe(program, f"friend-{referrer.pk}-{n}@example.org", code)
    base = f"/staff/p/{program.slug}/waitlist/"

    shown: list[tuple[int, str]] = []
    page = 1
    while True:
        html = marketer_client.get(base, {"page": page}).content.decode()
        rows = _page_rows(html)
        shown += rows
        if 'rel="next"' not in html:
            break
        page += 1
    export = marketer_client.get(f"/staff/p/{program.slug}/waitlist.csv")
    table = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))

    assert page == 3
    assert export["Content-Type"].startswith("text/csv")
    assert table[0][:3] == ["position", "ahead", "email"]
    assert [(int(row[0]), row[2]) for row in table[1:]] == shown
    assert [p for p, _ in shown] == list(range(1, 127))
    assert shown[0][1] == signups[0].email


def test_the_staff_page_reads_the_line_in_fixed_queries(program, waitlist, marketer_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert marketer_client.get(f"/staff/p/{program.slug}/waitlist/").status_code == 200
        return len(captured)

    for i in range(3):
        subscribe(program, f"few{i}@example.org")
    few = queries()
    for i in range(80):
        subscribe(program, f"many{i}@example.org")

    assert queries() == few


def test_staff_save_the_settings_and_admit_from_the_page(program, five, marketer_client):
    base = f"/staff/p/{program.slug}/waitlist/"

    saved = marketer_client.post(base, {"enabled": "on", "places_per_referral": "3"})
    admitted = marketer_client.post(
        f"/staff/p/{program.slug}/waitlist/admit", {"count": "2", "expected_first": str(five[0].pk)}
    )
    twice = marketer_client.post(
        f"/staff/p/{program.slug}/waitlist/admit", {"count": "2", "expected_first": str(five[0].pk)}
    )

    assert (saved.status_code, admitted.status_code, twice.status_code) == (302, 302, 302)
    assert WaitlistSettings.objects.get(program=program).places_per_referral == 3
    assert sorted(WaitlistAdmission.objects.values_list("signup_id", flat=True)) == [five[0].pk, five[1].pk]
    page = marketer_client.get(base).content.decode()
    assert "The line changed since you saw it" in page
    assert AuditEvent.objects.filter(action="waitlist.configured").count() == 2  # the fixture's and the page's


def test_a_bad_settings_form_is_shown_again_with_its_errors(program, waitlist, marketer_client):
    answer = marketer_client.post(f"/staff/p/{program.slug}/waitlist/", {"places_per_referral": "-4"})

    assert answer.status_code == 400
    assert 'aria-invalid="true"' in answer.content.decode()


# --- The subscriber's page and e-mail ------------------------------------------------------------------


def test_the_status_link_shows_the_subscribers_place(program, five):
    url = f"/p/{program.slug}/waitlist/{waitlist_status_token(five[3])}"

    answer = Client().get(url)

    assert answer.status_code == 200
    html = answer.content.decode()
    assert 'data-position="4"' in html
    assert "3 people are ahead of you." in html
    assert answer["Referrer-Policy"] == "no-referrer"


def test_a_status_link_of_another_program_or_altered_is_unknown(program, other_program, five):
    token = waitlist_status_token(five[0])

    assert Client().get(f"/p/{other_program.slug}/waitlist/{token}").status_code == 404
    assert Client().get(f"/p/{program.slug}/waitlist/{token[:-3]}abc").status_code == 404


def test_the_place_in_line_email_goes_once_with_the_status_link(program, five, time_machine):
    from datetime import timedelta

    from django.utils import timezone

    time_machine.move_to(timezone.now() + timedelta(minutes=5), tick=False)

    assert waitlist_notify_due() == 5
    assert waitlist_notify_due() == 0

    assert len(mail.outbox) == 5
    message = next(m for m in mail.outbox if m.to == [five[2].email])
    assert "your place in line is 3" in message.subject
    assert "2 people are ahead of you." in message.body
    link = urlsplit(re.search(r"http\S+/p/book-launch/waitlist/\S+", message.body).group(0))
    assert 'data-position="3"' in Client().get(link.path).content.decode()


def test_a_signup_too_recent_waits_for_the_next_sweep(program, five):
    assert waitlist_notify_due() == 0  # all five are younger than the grace period
    assert WaitlistSettings.objects.get(program=program).notified_through_signup_id == 0


def test_the_embedded_dashboard_shows_the_ambassadors_place(program, five, manage_key):
    import json

    from tests.conftest import bearer

    enroll(program, five[2].email)
    answer = Client().post(
        f"/api/v1/programs/{program.slug}/embed-tokens",
        json.dumps({"email": five[2].email}),
        content_type="application/json",
        **bearer(manage_key),
    )
    url = answer.json()["url"]

    html = Client().get(url[url.index("/embed/") :]).content.decode()

    assert 'data-position="3"' in html
