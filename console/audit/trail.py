"""The audit trail for admins: core.models.AuditEvent filtered, paged newest first (keyset on
(created_at, id)), and the same filters exported as a streamed CSV."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.db.models import F, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from ambassadors.models import Program
from console.audit.review_forms import TrailFilterForm, cursor_encode
from console.exports import csv_response
from console.pages import refused as _refused
from core import policies
from core.models import AuditEvent

PAGE_SIZE = 50
# A value of before/after longer than this is cut on the page (the CSV keeps it whole).
VALUE_CHARS = 60

CSV_HEADER = [
    "id", "created_at", "program_id", "actor_type", "actor_id", "actor_label", "action", "object_type",
    "object_id", "reason", "before", "after",
]  # fmt: skip


@dataclass(frozen=True)
class Change:
    """One key of a before/after pair: `before` is None when the key is new (a creation)."""

    key: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class TrailRow:
    id: int
    created_at: datetime
    actor_type: str
    actor: str
    action: str
    object_type: str
    object_id: str
    signup_id: int | None  # the signup the event is about, for a link to its page
    program_name: str
    reason: str
    changes: list[Change]


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def changes(before: Any, after: Any) -> list[Change]:
    """What changed, compactly: the keys whose value differs (all of `after` for a creation)."""
    if before is None and isinstance(after, dict):
        before = {}  # a creation: every key is new
    if after is None and isinstance(before, dict):
        after = {}  # a removal: every key is gone
    if not isinstance(before, dict) or not isinstance(after, dict):
        if before is None and after is None:
            return []
        return [
            Change(
                "",
                None if before is None else _text(before),
                None if after is None else _text(after),
            )
        ]
    keys = [k for k in after if k not in before or before[k] != after[k]]
    keys += [k for k in before if k not in after]
    return [
        Change(
            str(key),
            _text(before[key]) if key in before else None,
            _text(after[key]) if key in after else None,
        )
        for key in keys
    ]


def filtered_events(form: TrailFilterForm) -> QuerySet[AuditEvent]:
    """The events the (valid) filters select, newest first. The keyset position is applied by the page."""
    data = form.cleaned_data
    events = AuditEvent.objects.all()
    if data.get("program") is not None:
        events = events.filter(program_id=data["program"].pk)
    if data.get("object_type"):
        events = events.filter(object_type=data["object_type"].strip())
    if data.get("object_id"):
        events = events.filter(object_id=data["object_id"].strip())
    if data.get("actor"):
        actor = data["actor"].strip()
        events = events.filter(Q(actor_label=actor) | Q(actor_id=actor))
    if data.get("action"):
        events = events.filter(action__startswith=data["action"].strip())
    start, end = form.period()
    if start is not None:
        events = events.filter(created_at__gte=start)
    if end is not None:
        events = events.filter(created_at__lt=end)
    return events.order_by("-created_at", "-id")


def trail_page(events: QuerySet[AuditEvent], before: tuple[datetime, int] | None) -> tuple[list[TrailRow], str]:
    """A page of the trail from a position, and the cursor of the next page ("" on the last)."""
    if before is not None:
        events = events.filter(TupleLessThan(Tuple(F("created_at"), F("id")), before))
    found = list(events[: PAGE_SIZE + 1])
    following = ""
    if len(found) > PAGE_SIZE:
        found = found[:PAGE_SIZE]
        following = cursor_encode(found[-1].created_at, found[-1].pk)
    names = dict(Program.objects.filter(pk__in={e.program_id for e in found if e.program_id}).values_list("pk", "name"))
    rows = [
        TrailRow(
            id=event.pk,
            created_at=event.created_at,
            actor_type=event.actor_type,
            actor=event.actor_label or event.actor_id or event.get_actor_type_display(),
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            signup_id=int(event.object_id) if event.object_type == "signup" and event.object_id.isdigit() else None,
            program_name=names.get(event.program_id, "") if event.program_id else "",
            reason=event.reason,
            changes=changes(event.before, event.after),
        )
        for event in found
    ]
    return rows, following


def _may_read(request: HttpRequest) -> HttpResponse | None:
    return _refused(request, policies.may_read_audit(policies.Principal.from_request(request)))


def _filters(request: HttpRequest) -> TrailFilterForm:
    form = TrailFilterForm(request.GET)
    form.is_valid()
    return form


def _kept(form: TrailFilterForm) -> dict[str, str]:
    """The filters of the page as query parameters (its position left out), for the next page and the CSV."""
    return {k: v for k, v in form.data.items() if k != "before" and v and k in form.fields and k not in form.errors}


@require_http_methods(["GET", "HEAD"])
def trail(request: HttpRequest) -> HttpResponse:
    if refused := _may_read(request):
        return refused
    form = _filters(request)
    if form.is_valid():
        rows, following = trail_page(filtered_events(form), form.cleaned_data["before"])
        status = 200
    else:
        rows, following, status = [], "", 400
    kept = _kept(form) if form.is_valid() else {}
    context = {
        "console_section": "trail",
        "form": form,
        "rows": rows,
        "next_query": urlencode({**kept, "before": following}) if following else "",
        "first_query": urlencode(kept) if form.is_valid() and form.cleaned_data["before"] else None,
        "csv_query": urlencode(kept),
    }
    return render(request, "audit/trail.html", context, status=status)


def _csv_rows(events: QuerySet[AuditEvent]) -> Iterator[list[Any]]:
    for values in events.values_list(*CSV_HEADER).iterator(chunk_size=2000):
        *head, before, after = values
        yield [
            *head,
            "" if before is None else json.dumps(before, ensure_ascii=False, sort_keys=True),
            "" if after is None else json.dumps(after, ensure_ascii=False, sort_keys=True),
        ]


@require_http_methods(["GET", "HEAD"])
def trail_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """Every event the filters select (no paging), streamed as the cursor yields them."""
    if refused := _may_read(request):
        return refused
    form = _filters(request)
    if not form.is_valid():
        return render(request, "audit/trail.html", {"console_section": "trail", "form": form, "rows": []}, status=400)
    return csv_response("audit-trail.csv", CSV_HEADER, _csv_rows(filtered_events(form)))
