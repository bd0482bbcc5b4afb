"""Every list of the API: filtered (django-filter), paged with opaque cursors over a stable ordering, bad
paging or filter values a 400 in the error shape, and all of it in the schema (config.filters)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from rest_framework.test import APIClient

from ambassadors.models import Program, WebhookDelivery, WebhookEndpoint
from core import clock
from core.actors import Actor
from core.models import AuditEvent, OutboxMessage
from referrals.services import signup_record
from rewards.models import Contest, RewardTier
from tests.conftest import bearer
from tests.factories import ProgramFactory, enroll

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def signed_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def keyed(key: str) -> APIClient:
    client = APIClient()
    client.credentials(**bearer(key))
    return client


def an_endpoint(program: Program, i: int = 0, **kwargs: Any) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        program=program, url=f"https://hooks.example.org/{i}", event_types=["reward.unlocked"],
        secret="whsec_test", created_at=clock.now(), **kwargs,
    )  # fmt: skip


def a_delivery(endpoint: WebhookEndpoint, status: str = "pending") -> WebhookDelivery:
    message = OutboxMessage.objects.create(
        event="reward.unlocked", program_id=endpoint.program_id, payload={"type": "reward.unlocked"},
        created_at=clock.now(),
    )  # fmt: skip
    return WebhookDelivery.objects.create(
        endpoint=endpoint, message=message, event_id=f"msg_{uuid.uuid4().hex}", status=status, created_at=clock.now()
    )


def a_tier(program: Program, i: int = 0, **kwargs: Any) -> RewardTier:
    return RewardTier.objects.create(
        program=program, name=f"Tier {i}", kind=kwargs.pop("kind", "individual"), metric="qualified_signups",
        threshold=i + 1, reward_type="custom", reward_text="A signed copy", **kwargs,
    )  # fmt: skip


def a_contest(program: Program, i: int = 0, *, starts_in_days: int = -1, lasts_days: int = 7) -> Contest:
    starts = clock.now() + timedelta(days=starts_in_days)
    return Contest.objects.create(
        program=program, name=f"Contest {i}", prize_text="A book", starts_at=starts,
        ends_at=starts + timedelta(days=lasts_days),
    )  # fmt: skip


def an_audit_event(i: int = 0, **kwargs: Any) -> AuditEvent:
    fields: dict[str, Any] = {"actor_type": "system", "actor_label": "test", "action": "test.listed",
                              "object_type": "thing", "object_id": str(i)}  # fmt: skip
    fields.update(kwargs)
    return AuditEvent.objects.create(created_at=clock.now(), **fields)


@dataclass
class List:
    """One list of the API: who reads it, where, how a row is made, and which way it is ordered."""

    client: Callable[[dict[str, Any]], APIClient]
    url: Callable[[dict[str, Any]], str]
    make: Callable[[dict[str, Any], int], int]
    newest_first: bool
    schema_path: str
    filters: tuple[str, ...]
    row_id: Callable[[dict[str, Any]], int] = lambda row: row["id"]


@pytest.fixture
def world(program, marketer, auditor, read_key) -> dict[str, Any]:
    endpoint = an_endpoint(program)
    return {"program": program, "marketer": marketer, "auditor": auditor, "read_key": read_key, "endpoint": endpoint}


P = "/api/v1/programs/{slug}"
LISTS = {
    "programs": List(
        client=lambda w: signed_in(w["marketer"]),
        url=lambda w: "/api/v1/programs/",
        make=lambda w, i: ProgramFactory(slug=f"listed-{i}-{uuid.uuid4().hex[:6]}").pk,
        newest_first=False,
        schema_path="/api/v1/programs/",
        filters=("status",),
        row_id=lambda row: Program.objects.get(slug=row["slug"]).pk,  # a program's id is its slug
    ),
    "tiers": List(
        client=lambda w: signed_in(w["marketer"]),
        url=lambda w: P.format(slug=w["program"].slug) + "/tiers/",
        make=lambda w, i: a_tier(w["program"], i).pk,
        newest_first=False,
        schema_path="/api/v1/programs/{slug}/tiers/",
        filters=("kind", "is_active"),
    ),
    "contests": List(
        client=lambda w: signed_in(w["marketer"]),
        url=lambda w: P.format(slug=w["program"].slug) + "/contests/",
        make=lambda w, i: a_contest(w["program"], i).pk,
        newest_first=True,
        schema_path="/api/v1/programs/{slug}/contests/",
        filters=("status", "running"),
    ),
    "signups": List(
        client=lambda w: keyed(w["read_key"]),
        url=lambda w: P.format(slug=w["program"].slug) + "/signups/",
        make=lambda w, i: (
            signup_record(program=w["program"], email=f"friend-{uuid.uuid4().hex[:8]}@example.org", actor=SYSTEM)[0].pk
        ),
        newest_first=True,
        schema_path="/api/v1/programs/{slug}/signups/",
        filters=("status", "method", "ambassador", "email", "created_after", "created_before"),
    ),
    "audit-events": List(
        client=lambda w: signed_in(w["auditor"]),
        url=lambda w: "/api/v1/audit-events/",
        make=lambda w, i: an_audit_event(i).pk,
        newest_first=True,
        schema_path="/api/v1/audit-events/",
        filters=(
            "object_type",
            "object_id",
            "actor",
            "action",
            "program",
            "program_id",
            "actor_type",
            "after",
            "before",
        ),
    ),  # fmt: skip
    "webhooks": List(
        client=lambda w: signed_in(w["marketer"]),
        url=lambda w: P.format(slug=w["program"].slug) + "/webhooks/",
        make=lambda w, i: an_endpoint(w["program"], i).pk,
        newest_first=False,
        schema_path="/api/v1/programs/{slug}/webhooks/",
        filters=("is_active",),
    ),
    "deliveries": List(
        client=lambda w: signed_in(w["marketer"]),
        url=lambda w: P.format(slug=w["program"].slug) + f"/webhooks/{w['endpoint'].pk}/deliveries/",
        make=lambda w, i: a_delivery(w["endpoint"]).pk,
        newest_first=True,
        schema_path="/api/v1/programs/{slug}/webhooks/{endpoint_id}/deliveries/",
        filters=("status",),
    ),
}


def walk(spec: List, client: APIClient, url: str, *, between: Callable[[], Any] = lambda: None) -> list[int]:
    """Every id of the list, page by page with limit=2, calling `between` after the first page."""
    ids: list[int] = []
    next_url: str | None = url + "?limit=2"
    pages = 0
    while next_url:
        response = client.get(next_url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        assert len(body["results"]) <= 2
        ids += [spec.row_id(row) for row in body["results"]]
        next_url = body["next"]
        pages += 1
        if pages == 1:
            between()
        assert pages < 50
    return ids


@pytest.mark.parametrize("name", LISTS)
def test_cursor_paging_walks_every_row_once_in_order_even_with_a_row_written_between_pages(name, world):
    spec = LISTS[name]
    for i in range(5):
        spec.make(world, i)
    client, url = spec.client(world), spec.url(world)
    before = [spec.row_id(row) for row in client.get(url + "?limit=500").json()["results"]]
    assert len(before) >= 5

    walked = walk(spec, client, url, between=lambda: spec.make(world, 99))

    assert len(walked) == len(set(walked)), "a row was seen twice"
    assert set(before) <= set(walked), "a row was skipped"
    assert walked == sorted(walked, reverse=spec.newest_first)


@pytest.mark.parametrize("name", LISTS)
def test_a_tampered_cursor_is_a_400_in_the_error_shape(name, world):
    spec = LISTS[name]
    for i in range(3):
        spec.make(world, i)
    client, url = spec.client(world), spec.url(world)
    next_url = client.get(url + "?limit=1").json()["next"]
    cursor = parse_qs(urlparse(next_url).query)["cursor"][0]
    forged = [
        cursor[:-2] + "zz",
        "not a cursor",
        base64.b64encode(b"p=abc").decode(),
        base64.b64encode(b"p=99999999999999999999").decode(),
        base64.b64encode(b"p=2026-01-01").decode(),
        base64.b64encode(b"r=x&p=%00").decode(),
    ]
    for value in forged:
        response = client.get(url, {"cursor": value})
        assert response.status_code == 400, (value, response.content)
        assert list(response.json()) == ["cursor"]
    # An offset past DRF's cutoff is cut to it (an empty page), not sent to SQL.
    assert client.get(url, {"cursor": base64.b64encode(b"o=99999999999999999999").decode()}).status_code == 200


@pytest.mark.parametrize("name", LISTS)
@pytest.mark.parametrize("limit", ["0", "-5", "abc", "1e9", "2.5", "١"])
def test_a_limit_that_is_not_a_positive_whole_number_is_a_400(name, limit, world):
    spec = LISTS[name]
    response = spec.client(world).get(spec.url(world), {"limit": limit})
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["limit"]


@pytest.mark.parametrize("name", LISTS)
def test_a_limit_past_the_maximum_is_cut_to_it(name, world, monkeypatch):
    from config.pagination import CursorPagination

    monkeypatch.setattr(CursorPagination, "max_page_size", 2)
    spec = LISTS[name]
    for i in range(3):
        spec.make(world, i)
    response = spec.client(world).get(spec.url(world), {"limit": "99999999999999999999"})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 2


@pytest.mark.parametrize("name", LISTS)
def test_the_schema_lists_the_filters_the_cursor_and_the_limit(name):
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    spec = LISTS[name]
    parameters = {p["name"] for p in schema["paths"][spec.schema_path]["get"].get("parameters", [])}
    assert {"cursor", "limit", *spec.filters} <= parameters
    answer = schema["paths"][spec.schema_path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    component = schema["components"]["schemas"][answer["$ref"].rsplit("/", 1)[1]]
    assert {"next", "previous", "results"} <= set(component["properties"])


# --- Each list's filters narrow it, and a value that does not parse is a 400 naming the field ----------


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [
        row["id"] if "id" in row else Program.objects.get(slug=row["slug"]).pk for row in response.json()["results"]
    ]


def refused(response, field: str) -> None:
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_programs_filter_by_status(world):
    paused = ProgramFactory(slug="paused-one", status="paused")
    client = signed_in(world["marketer"])
    assert ids(client.get("/api/v1/programs/", {"status": "paused"})) == [paused.pk]
    assert paused.pk not in ids(client.get("/api/v1/programs/", {"status": "open"}))
    refused(client.get("/api/v1/programs/", {"status": "sleeping"}), "status")


def test_a_key_of_one_program_still_lists_only_its_program(world, manage_key):
    ProgramFactory(slug="someone-else")
    assert ids(keyed(manage_key).get("/api/v1/programs/")) == [world["program"].pk]


def test_tiers_filter_by_kind_and_activity(world):
    program = world["program"]
    solo, group, off = a_tier(program, 1), a_tier(program, 2, kind="collective"), a_tier(program, 3, is_active=False)
    client, url = signed_in(world["marketer"]), LISTS["tiers"].url(world)
    assert ids(client.get(url, {"kind": "collective"})) == [group.pk]
    assert ids(client.get(url, {"is_active": "false"})) == [off.pk]
    assert ids(client.get(url, {"is_active": "true", "kind": "individual"})) == [solo.pk]
    refused(client.get(url, {"kind": "solo"}), "kind")
    refused(client.get(url, {"is_active": "maybe"}), "is_active")


def test_contests_filter_by_status_now(world):
    program = world["program"]
    ended = a_contest(program, 1, starts_in_days=-30, lasts_days=7)
    running = a_contest(program, 2, starts_in_days=-1, lasts_days=7)
    scheduled = a_contest(program, 3, starts_in_days=5, lasts_days=7)
    client, url = signed_in(world["marketer"]), LISTS["contests"].url(world)
    assert ids(client.get(url, {"status": "running"})) == [running.pk]
    assert ids(client.get(url, {"status": "scheduled"})) == [scheduled.pk]
    assert ids(client.get(url, {"status": "ended"})) == [ended.pk]
    assert ids(client.get(url, {"running": "true"})) == [running.pk]
    assert ids(client.get(url, {"running": "false"})) == [scheduled.pk, ended.pk]
    assert {r["status"] for r in client.get(url, {"status": "running"}).json()["results"]} == {"running"}
    refused(client.get(url, {"status": "paused"}), "status")
    refused(client.get(url, {"running": "yes"}), "running")


def test_signups_filter_by_status_method_ambassador_email_and_date(world, ambassador):
    program = world["program"]
    referred = signup_record(program=program, email="Ref@Example.org", referral_code=ambassador.code, actor=SYSTEM)[0]
    direct = signup_record(program=program, email="direct@example.org", actor=SYSTEM)[0]
    other = enroll(program, "other-amb@example.org")
    by_other = signup_record(program=program, email="third@example.org", referral_code=other.code, actor=SYSTEM)[0]
    client, url = keyed(world["read_key"]), LISTS["signups"].url(world)

    assert ids(client.get(url, {"ambassador": ambassador.code})) == [referred.pk]
    assert ids(client.get(url, {"ambassador": "none"})) == [direct.pk]
    assert ids(client.get(url, {"email": "ref@example.org"})) == [referred.pk]
    assert ids(client.get(url, {"email": "example.org"})) == []  # exact, not a substring
    assert ids(client.get(url, {"method": referred.method})) == [
        s.pk for s in sorted([referred, direct, by_other], key=lambda s: -s.pk) if s.method == referred.method
    ]
    assert ids(client.get(url, {"status": direct.status})) == [
        s.pk for s in sorted([referred, direct, by_other], key=lambda s: -s.pk) if s.status == direct.status
    ]
    later = (clock.now() + timedelta(hours=1)).isoformat()
    earlier = (clock.now() - timedelta(hours=1)).isoformat()
    assert ids(client.get(url, {"created_after": later})) == []
    assert ids(client.get(url, {"created_before": earlier})) == []
    assert len(ids(client.get(url, {"created_after": earlier, "created_before": later}))) == 3
    refused(client.get(url, {"status": "lost"}), "status")
    refused(client.get(url, {"method": "carrier-pigeon"}), "method")
    refused(client.get(url, {"created_after": "yesterday"}), "created_after")
    # PostgreSQL refuses a UTC offset past 15:59: the value is sent in UTC; year 1 minus five hours does not
    # exist: a 400. Never a 500.
    assert len(ids(client.get(url, {"created_after": "2026-02-22T02:52:50-17:03"}))) == 3
    refused(client.get(url, {"created_before": "0001-01-01T00:00:00+05:00"}), "created_before")
    assert len(ids(client.get(url, {"created_after": "2000-01-01T10:00:00+15:30"}))) == 3


def test_audit_events_keep_their_filters_and_add_actor_and_program(world):
    program = world["program"]
    mine = an_audit_event(1, program_id=program.pk, actor_label="ana@example.org", actor_id="7", action="tier.created",
                          object_type="tier", object_id="12")  # fmt: skip
    theirs = an_audit_event(2, program_id=program.pk + 1000, actor_type="user", actor_id="8", action="tier.updated")
    client, url = signed_in(world["auditor"]), "/api/v1/audit-events/"

    assert ids(client.get(url, {"object_type": "tier", "object_id": "12"})) == [mine.pk]
    assert ids(client.get(url, {"actor": "ana@example.org"})) == [mine.pk]
    assert ids(client.get(url, {"actor": "8"})) == [theirs.pk]
    assert ids(client.get(url, {"actor_type": "user", "actor_id": "8"})) == [theirs.pk]
    assert ids(client.get(url, {"action": "tier.", "program": program.slug})) == [mine.pk]
    assert ids(client.get(url, {"action": "tier.", "program_id": program.pk})) == [mine.pk]
    assert ids(client.get(url, {"program": "no-such-program"})) == []
    assert mine.pk in ids(client.get(url, {"after": (clock.now() - timedelta(minutes=5)).isoformat()}))
    assert ids(client.get(url, {"before": (clock.now() - timedelta(minutes=5)).isoformat()})) == []
    refused(client.get(url, {"after": "last week"}), "after")
    refused(client.get(url, {"program_id": "abc"}), "program_id")
    refused(client.get(url, {"program_id": "Infinity"}), "program_id")
    assert ids(client.get(url, {"program_id": "1" + "0" * 30})) == []
    refused(client.get(url, {"actor_type": "robot"}), "actor_type")


def test_webhook_endpoints_filter_by_activity(world):
    off = an_endpoint(world["program"], 1, is_active=False)
    client, url = signed_in(world["marketer"]), LISTS["webhooks"].url(world)
    assert ids(client.get(url, {"is_active": "false"})) == [off.pk]
    assert ids(client.get(url, {"is_active": "true"})) == [world["endpoint"].pk]
    refused(client.get(url, {"is_active": "2"}), "is_active")


def test_deliveries_filter_by_status(world):
    pending, abandoned = a_delivery(world["endpoint"]), a_delivery(world["endpoint"], "abandoned")
    client, url = signed_in(world["marketer"]), LISTS["deliveries"].url(world)
    assert ids(client.get(url, {"status": "abandoned"})) == [abandoned.pk]
    assert ids(client.get(url, {"status": "pending"})) == [pending.pk]
    refused(client.get(url, {"status": "lost"}), "status")


# --- Query counts: constant in the number of rows ------------------------------------------------------


@pytest.mark.parametrize("name", LISTS)
def test_a_page_costs_the_same_queries_for_one_row_or_many(name, world, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    spec = LISTS[name]
    client, url = spec.client(world), spec.url(world)
    spec.make(world, 0)
    client.get(url)  # warm: a key's last use is written once in a while, not on each call
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    for i in range(1, 12):
        spec.make(world, i)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert len(client.get(url).json()["results"]) >= 12
