"""Contests (LaFraise's monthly prize): configured by staff, ranked on what happened inside their period,
frozen exactly once when they end, their winners recorded with an audit event and told by e-mail once.

The ranking (`contest_ranking`) is the one rule both the live standing (console) and the freeze use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max
from django.urls import reverse

from ambassadors.models import Program
from core import clock
from core.actors import Actor
from core.audit import audit_record
from core.constraints import constraint_errors_as_invalid_input
from core.errors import Conflict, InvalidInput, NotFound
from core.notifications import email_render, recipient_language, send_once
from core.text import plain_text
from referrals.models import Conversion, Signup
from rewards.models import Contest, ContestWinner

logger = logging.getLogger(__name__)

CONTEST_FIELDS = ("name", "prize_text", "starts_at", "ends_at", "winners_count", "metric")
# A prize is for a few people; a bigger number is a typo, and the freeze writes one row per winner.
MAX_WINNERS = 100


# --- The ranking -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankedAmbassador:
    rank: int
    ambassador_id: int
    display_name: str  # "" when the ambassador chose to stay anonymous
    score: int
    reached_at: datetime  # their last counted event: who got to the score first ranks first


def contest_ranking(contest: Contest, *, limit: int) -> list[RankedAmbassador]:
    """The best `limit` ambassadors of the contest, one query whatever the number of events.

    Only what happened inside [starts_at, ends_at) counts: qualified signups credited to the ambassador
    and created in the period, or approved conversions of their qualified signups that occurred in it.
    Real, active ambassadors of the program only; ties go to who reached the score first, then to who
    enrolled first.
    """
    if contest.metric == Contest.Metric.APPROVED_CONVERSIONS:
        rows: Any = (
            Conversion.objects.filter(
                program_id=contest.program_id,
                status=Conversion.Status.APPROVED,
                occurred_at__gte=contest.starts_at,
                occurred_at__lt=contest.ends_at,
                signup__status=Signup.Status.QUALIFIED,
                signup__ambassador__program_id=contest.program_id,
                signup__ambassador__is_active=True,
            )
            .values(
                ambassador_id=F("signup__ambassador_id"),
                display_name=F("signup__ambassador__display_name"),
                enrolled_at=F("signup__ambassador__created_at"),
            )
            .annotate(score=Count("id"), reached_at=Max("occurred_at"))
        )
    else:
        rows = (
            Signup.objects.filter(
                program_id=contest.program_id,
                status=Signup.Status.QUALIFIED,
                created_at__gte=contest.starts_at,
                created_at__lt=contest.ends_at,
                ambassador__program_id=contest.program_id,
                ambassador__is_active=True,
            )
            .values(
                "ambassador_id",
                display_name=F("ambassador__display_name"),
                enrolled_at=F("ambassador__created_at"),
            )
            .annotate(score=Count("id"), reached_at=Max("created_at"))
        )
    rows = rows.order_by("-score", "reached_at", "enrolled_at", "ambassador_id")[:limit]
    return [
        RankedAmbassador(
            rank=rank,
            ambassador_id=row["ambassador_id"],
            display_name=row["display_name"],
            score=row["score"],
            reached_at=row["reached_at"],
        )
        for rank, row in enumerate(rows, 1)
    ]


# --- Configuration -----------------------------------------------------------------------------------


def contest_check(*, fields: dict[str, Any], now: datetime, changed: set[str]) -> dict[str, Any]:
    """Refuse a contest that cannot work, with the field to fix; the names cleaned. API and admin alike."""
    cleaned = dict(fields)
    cleaned["name"] = plain_text(fields.get("name"), field="name", max_length=120, required=True)
    cleaned["prize_text"] = plain_text(fields.get("prize_text"), field="prize_text", max_length=255, required=True)
    starts_at, ends_at = fields.get("starts_at"), fields.get("ends_at")
    if starts_at is None:
        raise InvalidInput("When the contest starts is required.", field="starts_at")
    if ends_at is None:
        raise InvalidInput("When the contest ends is required.", field="ends_at")
    if ends_at <= starts_at:
        raise InvalidInput("The contest must end after it starts.", field="ends_at")
    if "ends_at" in changed and ends_at <= now:
        raise InvalidInput("The contest must end in the future.", field="ends_at")
    winners = fields.get("winners_count")
    if winners is None or not 1 <= winners <= MAX_WINNERS:
        raise InvalidInput(f"A contest has between 1 and {MAX_WINNERS} winners.", field="winners_count")
    if fields.get("metric") not in Contest.Metric.values:
        raise InvalidInput("Rank by qualified referrals or by approved conversions.", field="metric")
    return cleaned


def contest_snapshot(contest: Contest) -> dict[str, Any]:
    return {
        "name": contest.name,
        "prize_text": contest.prize_text,
        "starts_at": contest.starts_at.isoformat(),
        "ends_at": contest.ends_at.isoformat(),
        "winners_count": contest.winners_count,
        "metric": contest.metric,
    }


def contest_create(*, program: Program, actor: Actor, **fields: Any) -> Contest:
    unknown = sorted(set(fields) - set(CONTEST_FIELDS))
    if unknown:
        raise InvalidInput("This field cannot be set.", field=unknown[0])
    values = {"winners_count": 1, "metric": Contest.Metric.QUALIFIED_SIGNUPS} | fields
    values = contest_check(fields=values, now=clock.now(), changed=set(CONTEST_FIELDS))
    with constraint_errors_as_invalid_input(Contest), transaction.atomic():
        contest = Contest.objects.create(program=program, **values)
        audit_record(
            actor=actor,
            action="contest.created",
            object_type="contest",
            object_id=contest.pk,
            program_id=program.pk,
            after=contest_snapshot(contest),
        )
    return contest


def contest_update(*, contest: Contest, actor: Actor, **fields: Any) -> Contest:
    """Change a contest that has not ended; an ended one's ranking is final, so it is refused."""
    unknown = sorted(set(fields) - set(CONTEST_FIELDS))
    if unknown:
        # `program` above all: the ranking counts that program's events.
        raise InvalidInput("This field cannot be changed.", field=unknown[0])
    with constraint_errors_as_invalid_input(Contest), transaction.atomic():
        # Lock the row: the freeze's conditional update waits for this edit, then sees its `ends_at`; without
        # the lock a freeze could record winners of the period this edit is moving.
        locked = Contest.objects.select_for_update().get(pk=contest.pk)
        now = clock.now()
        if locked.frozen_at is not None or locked.ends_at <= now:
            raise Conflict("This contest has ended: its ranking is final and it can no longer be changed.")
        before = contest_snapshot(locked)
        merged = {name: getattr(locked, name) for name in CONTEST_FIELDS} | fields
        changed = {name for name, value in fields.items() if value != getattr(locked, name)}
        merged = contest_check(fields=merged, now=now, changed=changed)
        for name in fields:
            setattr(locked, name, merged[name])
        after = contest_snapshot(locked)
        if after == before:
            return locked
        locked.save()
        audit_record(
            actor=actor,
            action="contest.updated",
            object_type="contest",
            object_id=locked.pk,
            program_id=locked.program_id,
            before=before,
            after=after,
        )
    return locked


# --- The end: freezing the ranking once, telling the winners once --------------------------------------


def contest_freeze(*, contest_id: int, actor: Actor | None = None) -> list[ContestWinner] | None:
    """Record the final ranking of an ended contest: the winners, once, with the `contest.ended` event.

    Returns the winners, or None when there is nothing to do (not ended yet, or frozen already).
    """
    actor = actor or Actor.task("rewards.freeze_ended_contests")
    with transaction.atomic(durable=True):
        now = clock.now()
        # The gate: one conditional update, true for one caller only. A second freeze (a redelivered task,
        # a second beat, the admin) waits on the row lock this takes, then finds frozen_at set and stops;
        # the unique constraints on the winners are the backstop.
        if not Contest.objects.filter(pk=contest_id, frozen_at__isnull=True, ends_at__lte=now).update(frozen_at=now):
            if not Contest.objects.filter(pk=contest_id).exists():
                raise NotFound("No contest with this id.")
            return None
        contest = Contest.objects.get(pk=contest_id)
        winners = ContestWinner.objects.bulk_create(
            ContestWinner(
                contest=contest,
                rank=line.rank,
                ambassador_id=line.ambassador_id,
                score=line.score,
                reached_at=line.reached_at,
            )
            for line in contest_ranking(contest, limit=contest.winners_count)
        )
        audit_record(
            actor=actor,
            action="contest.ended",
            object_type="contest",
            object_id=contest.pk,
            program_id=contest.program_id,
            after={
                "frozen_at": now.isoformat(),
                "winners": [{"rank": w.rank, "ambassador": w.ambassador_id, "score": w.score} for w in winners],
            },
        )
        for winner in winners:
            _notify_on_commit(winner.pk)
    return winners


def contests_freeze_ended() -> int:
    """Freeze every contest that has ended and is not frozen yet (the periodic task): how many were."""
    due = Contest.objects.filter(frozen_at__isnull=True, ends_at__lte=clock.now()).values_list("pk", flat=True)
    return sum(contest_freeze(contest_id=pk) is not None for pk in list(due))


def contest_winners_unnotified(*, frozen_after: datetime, frozen_before: datetime) -> list[int]:
    """Winners of contests frozen in the window whose e-mail has not gone, so a lost message is asked for
    again; the window's end leaves the freeze's own messages the time to be delivered first."""
    return list(
        ContestWinner.objects.filter(
            notified_at__isnull=True, contest__frozen_at__gte=frozen_after, contest__frozen_at__lt=frozen_before
        ).values_list("pk", flat=True)
    )


def _notify_on_commit(winner_id: int) -> None:
    def send() -> None:
        from rewards.tasks import contest_winner_notify

        try:
            contest_winner_notify.delay(winner_id)
        except Exception:
            # The periodic freeze sends the e-mails of winners not told yet again (contest_winners_unnotified).
            logger.warning("e-mail for contest winner %s not enqueued", winner_id, exc_info=True)

    transaction.on_commit(send)


def contest_winner_notify(*, winner_id: int) -> bool:
    """E-mail a winner, at most once however often the task is delivered: True if this call sent it.

    The marker is core.notifications' (one claim per event and mailbox, given back if the send fails, so
    the retry sends it); `notified_at` records on the winner that it went, for the admin and the catch-up.
    """
    winner = ContestWinner.objects.select_related("contest__program", "ambassador__user").filter(pk=winner_id).first()
    if winner is None:
        return False
    contest, ambassador = winner.contest, winner.ambassador
    message = email_render(
        "contest_won",
        {
            "program": contest.program,
            "contest": contest,
            "winner": winner,
            "dashboard_url": settings.PARRAIN_BASE_URL.rstrip("/") + reverse("dashboard"),
        },
        to=ambassador.email,
        language=recipient_language(ambassador.user),
    )
    sent = send_once(event_key=f"contest.won:winner:{winner.pk}", recipient=ambassador.email_canonical, message=message)
    if sent:
        ContestWinner.objects.filter(pk=winner.pk, notified_at__isnull=True).update(notified_at=clock.now())
    return sent
