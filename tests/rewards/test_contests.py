"""Contests (LaFraise's monthly prize): staff configure them, the ranking counts only what happened inside
the period, and when a contest ends its ranking freezes once: winners recorded with an audit event and
e-mailed once each, whatever the number of runs, deliveries or threads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from ambassadors.models import Program
from ambassadors.services import ambassador_update
from core.actors import Actor
from core.models import AuditEvent
from referrals.services import conversion_record, conversions_approve_due
from rewards import tasks
from rewards.models import Contest, ContestWinner
from rewards.services import contest_create, contest_freeze, contest_ranking, contest_winner_notify
from tests.conftest import bearer
from tests.factories import ProgramFactory, UserFactory, enroll
from tests.rewards.conftest import subscribe

STAFF = Actor.system("tests")
MARCH_1 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
STARTS = datetime(2026, 3, 10, tzinfo=UTC)
ENDS = datetime(2026, 4, 10, tzinfo=UTC)
MONTHLY = {
    "name": "March prize",
    "prize_text": "A crate of strawberries",
    "starts_at": "2026-03-10T00:00:00Z",
    "ends_at": "2026-04-10T00:00:00Z",
    "winners_count": 2,
    "metric": "qualified_signups",
}


def contests_url(program: Program) -> str:
    return f"/api/v1/programs/{program.slug}/contests/"


def contest_url(contest: Any) -> str:
    return f"/api/v1/programs/{contest.program.slug}/contests/{contest.pk}/"


@pytest.fixture
def manager(api, manage_key):
    api.credentials(**bearer(manage_key))
    return api


def prize_emails() -> list[Any]:
    """The winners' e-mails (other notifications, a friend subscribing, go out too)."""
    return [m for m in mail.outbox if "you won" in m.subject]


def at(moment: datetime) -> Any:
    return time_machine.travel(moment, tick=False)


def ended_contest(program: Program, **fields: Any) -> Contest:
    """A contest that ran from March 10 to April 10, created before it started (through the service)."""
    with at(MARCH_1):
        return contest_create(
            program=program,
            actor=STAFF,
            **{"name": "March prize", "prize_text": "Strawberries", "starts_at": STARTS, "ends_at": ENDS} | fields,
        )


# --- From creation to frozen winners -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_contest_from_creation_to_frozen_winners(program, manager, committed):
    program.leaderboard_public = True
    program.save()
    with at(MARCH_1) as clock:
        created = manager.post(contests_url(program), MONTHLY, format="json")
        assert created.status_code == 201, created.json()
        assert created.json()["status"] == "scheduled"
        contest = Contest.objects.get(pk=created.json()["id"])
        ana = enroll(program, "ana@example.com", display_name="Ana")
        clock.shift(timedelta(minutes=1))
        bob = enroll(program, "bob@example.com", display_name="Bob")
        carl = enroll(program, "carl@example.com", display_name="Carl")
        dan = enroll(program, "dan@example.com")  # no display name: anonymous

        # Before the period: Ana's three friends do not count.
        clock.move_to(datetime(2026, 3, 5, tzinfo=UTC))
        for _ in range(3):
            subscribe(program, ana)

        # Inside it: Bob reaches 2 on March 13, Ana on March 14 (a tie, which Bob reached first, though
        # Ana enrolled first); Carl scores 3 but is deactivated; Dan scores 1; a disposable address held
        # for review does not count.
        clock.move_to(datetime(2026, 3, 12, tzinfo=UTC))
        subscribe(program, bob)
        subscribe(program, ana)
        clock.move_to(datetime(2026, 3, 13, tzinfo=UTC))
        subscribe(program, bob)
        for _ in range(3):
            subscribe(program, carl)
        subscribe(program, dan)
        held = subscribe(program, dan, email="someone@mailinator.com")
        assert held.status == "pending_review"
        clock.move_to(datetime(2026, 3, 14, tzinfo=UTC))
        subscribe(program, ana)
        ambassador_update(ambassador=carl, actor=STAFF, is_active=False)

        # While it runs: the standing, and the time left.
        clock.move_to(datetime(2026, 3, 20, tzinfo=UTC))
        standing = manager.get(f"{contest_url(contest)}standing").json()
        assert standing["status"] == "running"
        assert standing["seconds_left"] == (ENDS - datetime(2026, 3, 20, tzinfo=UTC)).total_seconds()
        assert [(r["rank"], r["display_name"], r["score"], r["is_winner"]) for r in standing["results"]] == [
            (1, "Bob", 2, True),
            (2, "Ana", 2, True),
            (3, "Anonymous ambassador", 1, False),
        ]
        assert contest_freeze(contest_id=contest.pk) is None, "a running contest is not frozen"

        # After the end: a late friend does not count; the periodic task freezes the ranking.
        clock.move_to(ENDS + timedelta(seconds=30))
        subscribe(program, ana)
        subscribe(program, ana)
        with committed():
            assert tasks.freeze_ended_contests.delay().get() == 1

    winners = list(ContestWinner.objects.filter(contest=contest).values_list("rank", "ambassador", "score"))
    assert winners == [(1, bob.pk, 2), (2, ana.pk, 2)]
    contest.refresh_from_db()
    assert contest.frozen_at == ENDS + timedelta(seconds=30)
    (ended,) = AuditEvent.objects.filter(action="contest.ended", object_id=str(contest.pk))
    assert ended.after["winners"] == [
        {"rank": 1, "ambassador": bob.pk, "score": 2},
        {"rank": 2, "ambassador": ana.pk, "score": 2},
    ]
    assert sorted(m.to[0] for m in prize_emails()) == ["ana@example.com", "bob@example.com"]
    assert "A crate of strawberries" in prize_emails()[0].body
    assert AuditEvent.objects.filter(action="contest.created", object_id=str(contest.pk)).count() == 1

    # Run again, and again later: nothing more is recorded or sent; the frozen standing is the winners'.
    with at(ENDS + timedelta(hours=1)), committed():
        assert tasks.freeze_ended_contests.delay().get() == 0
        subscribe(program, dan)
        frozen = manager.get(f"{contest_url(contest)}standing").json()
    assert ContestWinner.objects.filter(contest=contest).count() == 2
    assert AuditEvent.objects.filter(action="contest.ended").count() == 1
    assert len(prize_emails()) == 2
    assert frozen["frozen"] is True and frozen["status"] == "ended" and frozen["seconds_left"] == 0
    assert [(r["rank"], r["display_name"]) for r in frozen["results"]] == [(1, "Bob"), (2, "Ana")]


@pytest.mark.django_db
def test_a_frozen_contest_cannot_be_edited(program, manager):
    contest = ended_contest(program)
    with at(ENDS + timedelta(minutes=1)):
        contest_freeze(contest_id=contest.pk)
        response = manager.patch(contest_url(contest), {"prize_text": "Two crates"}, format="json")

    assert response.status_code == 409
    contest.refresh_from_db()
    assert contest.prize_text == "Strawberries"
    assert not AuditEvent.objects.filter(action="contest.updated").exists()


@pytest.mark.django_db
def test_a_running_contest_is_edited_with_an_audit_event(program, manager):
    contest = ended_contest(program)
    with at(datetime(2026, 3, 15, tzinfo=UTC)):
        response = manager.patch(contest_url(contest), {"winners_count": 3}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["winners_count"] == 3
    (updated,) = AuditEvent.objects.filter(action="contest.updated", object_id=str(contest.pk))
    assert (updated.before["winners_count"], updated.after["winners_count"]) == (1, 3)


@pytest.mark.django_db
def test_conversions_count_when_approved_and_occurred_inside_the_period(committed):
    program = ProgramFactory(slug="fraise", name="La Fraise", hold_period_days=0)
    with at(MARCH_1):
        contest = contest_create(
            program=program, actor=STAFF, name="Best sellers", prize_text="A basket", starts_at=STARTS,
            ends_at=ENDS, metric=Contest.Metric.APPROVED_CONVERSIONS,
        )  # fmt: skip
        ana = enroll(program, "ana@example.com", display_name="Ana")
        bob = enroll(program, "bob@example.com", display_name="Bob")
        ana_friend = subscribe(program, ana).email
        bob_friend = subscribe(program, bob).email

    def buy(email: str, external_id: str, when: datetime) -> None:
        with at(when + timedelta(hours=1)):
            conversion_record(
                program=program, actor=STAFF, external_id=external_id, amount=Decimal("9.90"), currency="EUR",
                email=email, occurred_at=when,
            )  # fmt: skip
            conversions_approve_due()

    buy(ana_friend, "a-before", datetime(2026, 3, 9, 23, tzinfo=UTC))  # before the period
    buy(ana_friend, "a-1", datetime(2026, 3, 20, tzinfo=UTC))
    buy(bob_friend, "b-1", datetime(2026, 3, 11, tzinfo=UTC))
    buy(bob_friend, "b-2", datetime(2026, 3, 12, tzinfo=UTC))
    buy(ana_friend, "a-after", datetime(2026, 4, 10, 0, 0, 1, tzinfo=UTC))  # after it

    ranking = contest_ranking(contest, limit=10)

    assert [(r.ambassador_id, r.score) for r in ranking] == [(bob.pk, 2), (ana.pk, 1)]


# --- Exactly once ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_database_refuses_a_second_winner_at_the_same_rank_or_twice_the_same_ambassador(program):
    contest = ended_contest(program, winners_count=2)
    ana, bob = enroll(program, "ana@example.com"), enroll(program, "bob@example.com")
    ContestWinner.objects.create(contest=contest, rank=1, ambassador=ana, score=2, reached_at=STARTS)

    with pytest.raises(IntegrityError), transaction.atomic():
        ContestWinner.objects.create(contest=contest, rank=1, ambassador=bob, score=2, reached_at=STARTS)
    with pytest.raises(IntegrityError), transaction.atomic():
        ContestWinner.objects.create(contest=contest, rank=2, ambassador=ana, score=2, reached_at=STARTS)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_threads_freezing_at_once_record_the_winners_once_and_mail_once():
    program = ProgramFactory(slug="fraise", name="La Fraise")
    contest = ended_contest(program, winners_count=2)
    with at(datetime(2026, 3, 12, tzinfo=UTC)):
        ana, bob = enroll(program, "ana@example.com", display_name="Ana"), enroll(program, "bob@example.com")
        subscribe(program, ana)
        subscribe(program, bob)
    barrier = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def freeze() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(contest_freeze(contest_id=contest.pk))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    with at(ENDS + timedelta(minutes=1)):
        threads = [threading.Thread(target=freeze) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert not errors, errors
    assert sorted(r is None for r in results) == [False, True], "exactly one of the two froze it"
    assert list(ContestWinner.objects.values_list("rank", "ambassador")) == [(1, ana.pk), (2, bob.pk)]
    assert AuditEvent.objects.filter(action="contest.ended").count() == 1
    assert sorted(m.to[0] for m in prize_emails()) == ["ana@example.com", "bob@example.com"]
    assert ContestWinner.objects.filter(notified_at__isnull=True).count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_redelivered_winner_email_is_sent_once_even_by_two_threads():
    program = ProgramFactory(slug="fraise", name="La Fraise")
    contest = ended_contest(program)
    ana = enroll(program, "ana@example.com", display_name="Ana")
    winner = ContestWinner.objects.create(contest=contest, rank=1, ambassador=ana, score=3, reached_at=STARTS)
    barrier = threading.Barrier(2)
    sent: list[bool] = []

    def deliver() -> None:
        try:
            barrier.wait(timeout=10)
            sent.append(contest_winner_notify(winner_id=winner.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    sent.append(contest_winner_notify(winner_id=winner.pk))  # and once more, later

    assert sorted(sent) == [False, False, True]
    assert [m.to for m in prize_emails()] == [["ana@example.com"]]


@pytest.mark.django_db
def test_a_failed_email_is_sent_by_the_retry(program, monkeypatch):
    contest = ended_contest(program)
    ana = enroll(program, "ana@example.com")
    winner = ContestWinner.objects.create(contest=contest, rank=1, ambassador=ana, score=3, reached_at=STARTS)

    class SmtpDown:
        def send_messages(self, messages: Any) -> None:
            raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("core.notifications.get_connection", SmtpDown)  # the SMTP server is an edge
    with pytest.raises(OSError):
        contest_winner_notify(winner_id=winner.pk)
    monkeypatch.undo()

    assert contest_winner_notify(winner_id=winner.pk) is True
    assert len(prize_emails()) == 1


def test_the_freeze_runs_every_minute_from_the_beat_schedule(settings):
    (entry,) = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "rewards.freeze_ended_contests"]

    assert entry["schedule"] == 60.0


# --- API: validation and permissions -----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ends_at": "2026-03-09T00:00:00Z"}, "ends_at"),  # ends before it starts
        ({"ends_at": "2026-03-10T00:00:00Z"}, "ends_at"),  # ends as it starts
        ({"starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-02-01T00:00:00Z"}, "ends_at"),  # over already
        ({"name": "March\nprize"}, "name"),
        ({"name": "March \u202eezirp"}, "name"),
        ({"name": "   "}, "name"),
        ({"prize_text": "Straw\rberries"}, "prize_text"),
        ({"prize_text": "Straw\x1bberries"}, "prize_text"),
        ({"winners_count": 0}, "winners_count"),
        ({"winners_count": 100000}, "winners_count"),
        ({"winners_count": "many"}, "winners_count"),
        ({"metric": "converted_amount"}, "metric"),
        ({"starts_at": "not a date"}, "starts_at"),
    ],
)
def test_a_contest_that_cannot_work_is_refused_naming_the_field(program, manager, change, field):
    with at(MARCH_1):
        response = manager.post(contests_url(program), MONTHLY | change, format="json")

    assert response.status_code == 400, response.json()
    assert list(response.json()) == [field]
    assert not Contest.objects.exists()


@pytest.mark.django_db
def test_a_nul_character_is_refused_at_the_edge(program, manager):
    with at(MARCH_1):
        response = manager.post(contests_url(program), MONTHLY | {"prize_text": "Straw\x00berries"}, format="json")

    assert response.status_code == 400
    assert not Contest.objects.exists()


@pytest.mark.django_db
def test_a_patch_moving_the_end_before_the_start_is_refused(program, manager):
    contest = ended_contest(program)
    with at(MARCH_1):
        response = manager.patch(contest_url(contest), {"ends_at": "2026-03-01T00:00:00Z"}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["ends_at"]
    contest.refresh_from_db()
    assert contest.ends_at == ENDS


@pytest.mark.django_db
def test_the_program_of_a_contest_cannot_be_changed(program, manager):
    contest = ended_contest(program)
    other = ProgramFactory(slug="other")
    with at(MARCH_1):
        response = manager.patch(contest_url(contest), {"program": other.pk, "name": "Moved"}, format="json")

    contest.refresh_from_db()
    assert contest.program_id == program.pk
    assert response.status_code == 200 and contest.name == "Moved"


@pytest.mark.django_db
def test_who_may_configure_contests(program, api, read_key, marketer, outsider):
    other_manage_key = _key(ProgramFactory(slug="other"), "manage")
    with at(MARCH_1):
        assert api.post(contests_url(program), MONTHLY, format="json").status_code == 401
        api.credentials(**bearer(read_key))
        assert api.post(contests_url(program), MONTHLY, format="json").status_code == 403
        api.credentials(**bearer(other_manage_key))
        assert api.get(contests_url(program)).status_code == 403
        api.credentials()
        api.force_login(outsider)
        assert api.post(contests_url(program), MONTHLY, format="json").status_code == 403
        api.force_login(marketer)
        assert api.post(contests_url(program), MONTHLY, format="json").status_code == 201
        assert len(api.get(contests_url(program)).json()["results"]) == 1
    (created,) = AuditEvent.objects.filter(action="contest.created")
    assert created.actor_label == "marketer"


@pytest.mark.django_db
def test_the_standing_is_public_only_when_the_leaderboard_is(program, api):
    contest = ended_contest(program)
    url = f"{contest_url(contest)}standing"

    assert api.get(url).status_code == 401
    program.leaderboard_public = True
    program.save()
    assert api.get(url).status_code == 200
    assert api.get(f"/api/v1/programs/{program.slug}/contests/999999/standing").status_code == 404


def _key(program: Program, scope: str) -> str:
    from ambassadors.services import api_key_create

    return api_key_create(actor=STAFF, program=program, scopes=[scope])[1]


# --- Django admin ------------------------------------------------------------------------------------


@pytest.fixture
def admin_client_of_superuser(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def _admin_form(program: Program, **fields: Any) -> dict[str, Any]:
    return {
        "program": program.pk,
        "name": "April prize",
        "prize_text": "Jam",
        "starts_at_0": "2026-04-01",
        "starts_at_1": "00:00:00",
        "ends_at_0": "2026-05-01",
        "ends_at_1": "00:00:00",
        "winners_count": 1,
        "metric": "qualified_signups",
        "winners-TOTAL_FORMS": 0,
        "winners-INITIAL_FORMS": 0,
    } | fields


@pytest.mark.django_db
def test_the_admin_creates_and_edits_through_the_services_with_audit_events(program, admin_client_of_superuser):
    client = admin_client_of_superuser
    with at(MARCH_1):
        created = client.post(reverse("admin:rewards_contest_add"), _admin_form(program))
        assert created.status_code == 302, created.context["adminform"].form.errors
        contest = Contest.objects.get()
        changed = client.post(
            reverse("admin:rewards_contest_change", args=[contest.pk]), _admin_form(program, prize_text="Two jars")
        )
        assert changed.status_code == 302
        refused = client.post(
            reverse("admin:rewards_contest_add"),
            _admin_form(program, ends_at_0="2026-03-31", name="Backwards"),
        )

    assert refused.status_code == 200
    assert "ends_at" in refused.context["adminform"].form.errors
    assert [e.action for e in AuditEvent.objects.filter(object_type="contest").order_by("id")] == [
        "contest.created",
        "contest.updated",
    ]
    contest.refresh_from_db()
    assert contest.prize_text == "Two jars"


@pytest.mark.django_db
def test_the_admin_shows_an_ended_contest_and_its_winners_read_only(program, admin_client_of_superuser):
    contest = ended_contest(program)
    ana = enroll(program, "ana@example.com", display_name="Ana")
    ContestWinner.objects.create(contest=contest, rank=1, ambassador=ana, score=3, reached_at=STARTS)
    Contest.objects.filter(pk=contest.pk).update(frozen_at=ENDS)
    client = admin_client_of_superuser
    url = reverse("admin:rewards_contest_change", args=[contest.pk])

    with at(ENDS + timedelta(days=1)):
        page = client.get(url)
        client.post(url, _admin_form(program, prize_text="Changed"))

    assert page.status_code == 200
    assert 'name="prize_text"' not in page.content.decode()
    contest.refresh_from_db()
    assert contest.prize_text == "Strawberries"
    assert not AuditEvent.objects.filter(action="contest.updated").exists()
    assert client.get(reverse("admin:rewards_contestwinner_changelist")).status_code == 200


@pytest.mark.django_db
def test_the_list_of_contests_costs_the_same_queries_however_many_contests_and_winners(program, manager):
    from django.db import connection as default_connection
    from django.test.utils import CaptureQueriesContext

    def queries_for_list() -> int:
        with at(ENDS + timedelta(days=1)), CaptureQueriesContext(default_connection) as captured:
            response = manager.get(contests_url(program))
        assert response.status_code == 200
        return len(captured.captured_queries)

    def frozen_with_a_winner(n: int) -> None:
        frozen = ended_contest(program, name=f"Prize {n}", winners_count=2)
        with at(datetime(2026, 3, 12, tzinfo=UTC)):
            subscribe(program, enroll(program, f"winner{n}@example.com"))
        with at(ENDS + timedelta(minutes=1)):
            contest_freeze(contest_id=frozen.pk)

    frozen_with_a_winner(0)
    queries_for_list()  # the key's first use records it (at most once a minute: api_key_touch)
    few = queries_for_list()
    for n in range(1, 4):
        frozen_with_a_winner(n)

    assert ContestWinner.objects.count() == 4 + 3  # each contest counts the earlier winners' friends too
    assert queries_for_list() == few


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_workers_running_the_freeze_many_times_record_and_mail_each_winner_once(start_worker):
    import redis
    from django.conf import settings

    from core.models import Notification
    from tests.rewards.conftest import publishing_to, queue_drained, wait_until

    broker = settings.CELERY_BROKER_URL
    client = redis.Redis.from_url(broker)
    client.delete("celery", "unacked", "unacked_index", "unacked_mutex")
    client.close()
    program = ProgramFactory(slug="fraise", name="La Fraise")
    # A contest that really ended (the workers read the real clock): March 2020.
    contest = Contest.objects.create(
        program=program, name="March prize", prize_text="Strawberries", winners_count=2,
        starts_at=datetime(2020, 3, 1, tzinfo=UTC), ends_at=datetime(2020, 4, 1, tzinfo=UTC),
    )  # fmt: skip
    with at(datetime(2020, 3, 12, tzinfo=UTC)):
        ana, bob = enroll(program, "ana@example.com", display_name="Ana"), enroll(program, "bob@example.com")
        subscribe(program, ana)
        subscribe(program, bob)
    for _ in range(2):
        start_worker(broker)

    with publishing_to(broker):
        for _ in range(6):  # beats of two schedulers, redeliveries: the same task many times at once
            tasks.freeze_ended_contests.delay()

    def settled() -> bool:
        done = ContestWinner.objects.filter(notified_at__isnull=False).count() == 2
        return done and queue_drained(broker)

    wait_until(settled, timeout=60, what="the freeze and the e-mails to be done")
    assert list(ContestWinner.objects.values_list("rank", "ambassador")) == [(1, ana.pk), (2, bob.pk)]
    assert AuditEvent.objects.filter(action="contest.ended", object_id=str(contest.pk)).count() == 1
    sent = Notification.objects.filter(event_key__startswith="contest.won:")
    assert sorted(sent.values_list("recipient", "attempts")) == [("ana@example.com", 1), ("bob@example.com", 1)]
    assert all(n.sent_at is not None for n in sent)
