"""The audit console's searches over signups and conversions: filters, keyset pages and CSV rows.

Fast on a million rows (referrals/migrations/0007_audit_search_indexes): a page is newest first, ordered
by (time, id) and continued by keyset (`time < t OR (time = t AND id < i)`, with `time <= t` beside it so
the index bounds the scan), so page 1 and page 10,000 each read about one page of index entries, and
nothing counts the whole result. Every filter is one an index serves: the program, the ambassador, the
status, an exact address (as typed or its mailbox), or the beginning of one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.db.models import Q, QuerySet
from django.utils import timezone

from ambassadors.mailbox import canonical_mailbox
from ambassadors.models import Ambassador, Program
from ambassadors.normalise import code_key, is_well_formed_code, normalise_email
from console.audit.labels import CONVERSION_STATUSES, SIGNUP_METHODS, SIGNUP_REASONS, SIGNUP_STATUSES, label
from referrals.models import Conversion, Signup

PAGE_SIZE = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Filters:
    """What an admin searches by; empty strings and None mean "any"."""

    program: Program | None = None
    email: str = ""  # an address (as typed or its mailbox), or its beginning ("ana", "ana@exa", "ana*")
    ambassador: str = ""  # an ambassador's code (or one of their links'), or their e-mail address
    status: str = ""
    method: str = ""  # signups only
    external_id: str = ""  # conversions only
    since: date | None = None  # inclusive days, in the site's time zone
    until: date | None = None


# --- The keyset cursor ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    at: datetime
    id: int

    def encode(self) -> str:
        delta = self.at - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return f"{micros}.{self.id}"

    @classmethod
    def decode(cls, raw: str | None) -> Cursor | None:
        """A cursor from the URL, or None for what is not one (a stale or edited link starts over)."""
        if not raw:
            return None
        micros, _, pk = raw.partition(".")
        try:
            return cls(at=_EPOCH + timedelta(microseconds=int(micros)), id=int(pk))
        except (ValueError, OverflowError):
            return None


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: tuple[T, ...]
    next: str | None  # the cursor of the following (older) page
    previous: str | None  # the cursor of the preceding (newer) page
    is_first: bool


def _keyset_page(
    queryset: QuerySet[Any], field: str, *, after: Cursor | None, before: Cursor | None, size: int
) -> tuple[list[dict[str, Any]], bool, bool]:
    """Rows of one page of `queryset` (already .values()), newest first by (field, id). Returns the rows,
    whether older rows follow and whether newer rows precede. One query."""
    if before is not None:
        # Going back: the `size` rows just newer than the cursor, read oldest first, then turned round.
        queryset = queryset.filter(
            Q(**{f"{field}__gte": before.at}) & (Q(**{f"{field}__gt": before.at}) | Q(id__gt=before.id))
        ).order_by(field, "id")
        rows = list(queryset[: size + 1])
        newer = len(rows) > size
        rows = rows[:size][::-1]
        return rows, True, newer
    if after is not None:
        queryset = queryset.filter(
            Q(**{f"{field}__lte": after.at}) & (Q(**{f"{field}__lt": after.at}) | Q(id__lt=after.id))
        )
    rows = list(queryset.order_by(f"-{field}", "-id")[: size + 1])
    older = len(rows) > size
    return rows[:size], older, after is not None


def _page(rows: list[dict[str, Any]], field: str, older: bool, newer: bool, make: Any) -> Page[Any]:
    return Page(
        rows=tuple(make(row) for row in rows),
        next=Cursor(rows[-1][field], rows[-1]["id"]).encode() if rows and older else None,
        previous=Cursor(rows[0][field], rows[0]["id"]).encode() if rows and newer else None,
        is_first=not newer,
    )


# --- Filters -------------------------------------------------------------------------------------------


def _email_q(raw: str, prefix: str = "") -> Q:
    """An address whole: as typed, or any address landing in the same mailbox (`a.n.a+x@gmail.com` finds
    `ana@gmail.com`). Without a domain, or ending in `*`: the addresses beginning so."""
    text = normalise_email(raw)
    if text.endswith("*") or "@" not in text or text.endswith("@"):
        return Q(**{f"{prefix}email__startswith": text.rstrip("*")})
    return Q(**{f"{prefix}email": text}) | Q(**{f"{prefix}email_canonical": canonical_mailbox(text)})


def ambassador_ids(raw: str) -> list[int]:
    """The ambassadors an admin names by code (their own or one of their links') or by e-mail address, in
    every program: one query."""
    text = raw.strip()
    if "@" in text:
        email = normalise_email(text)
        wanted = Q(email=email) | Q(email_canonical=canonical_mailbox(email))
    elif is_well_formed_code(text):
        key = code_key(text)
        wanted = Q(code_key=key) | Q(links__code_key=key)
    else:
        return []
    return sorted(set(Ambassador.objects.filter(wanted).values_list("pk", flat=True)))


def _period_q(field: str, since: date | None, until: date | None) -> Q:
    q = Q()
    if since is not None:
        q &= Q(**{f"{field}__gte": timezone.make_aware(datetime.combine(since, time.min))})
    if until is not None:
        q &= Q(**{f"{field}__lt": timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min))})
    return q


def signups_matching(filters: Filters) -> QuerySet[Signup]:
    """The signups a search names, unordered. Naming an ambassador costs one query first."""
    queryset = Signup.objects.all()
    if filters.program is not None:
        queryset = queryset.filter(program=filters.program)
    if filters.email.strip():
        queryset = queryset.filter(_email_q(filters.email))
    if filters.ambassador.strip():
        queryset = queryset.filter(ambassador_id__in=ambassador_ids(filters.ambassador))
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.method:
        queryset = queryset.filter(method=filters.method)
    return queryset.filter(_period_q("created_at", filters.since, filters.until))


def conversions_matching(filters: Filters) -> QuerySet[Conversion]:
    """The conversions a search names, unordered: e-mail and ambassador are the subscriber's signup's."""
    queryset = Conversion.objects.all()
    if filters.program is not None:
        queryset = queryset.filter(program=filters.program)
    if filters.external_id.strip():
        queryset = queryset.filter(external_id=filters.external_id.strip())
    if filters.email.strip():
        queryset = queryset.filter(_email_q(filters.email, prefix="signup__"))
    if filters.ambassador.strip():
        queryset = queryset.filter(signup__ambassador_id__in=ambassador_ids(filters.ambassador))
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    return queryset.filter(_period_q("occurred_at", filters.since, filters.until))


# --- Signups -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignupRow:
    id: int
    created_at: datetime
    program_name: str
    email: str  # whole: admins see the address
    status: str
    method: str
    ambassador_code: str | None
    reason: str
    reason_detail: str

    @property
    def status_label(self) -> str:
        return label(SIGNUP_STATUSES, self.status)

    @property
    def method_label(self) -> str:
        return label(SIGNUP_METHODS, self.method)

    @property
    def reason_label(self) -> str:
        return label(SIGNUP_REASONS, self.reason)


SIGNUP_COLUMNS = (
    "id", "created_at", "program__name", "email", "status", "method", "ambassador__code", "reason", "reason_detail",
)  # fmt: skip


def _signup_row(row: dict[str, Any]) -> SignupRow:
    return SignupRow(
        id=row["id"],
        created_at=row["created_at"],
        program_name=row["program__name"],
        email=row["email"],
        status=row["status"],
        method=row["method"],
        ambassador_code=row["ambassador__code"],
        reason=row["reason"],
        reason_detail=row["reason_detail"],
    )


def signups_page(
    filters: Filters, *, after: Cursor | None = None, before: Cursor | None = None, size: int | None = None
) -> Page[SignupRow]:
    """One page of matching signups, newest first: one query (two when an ambassador is named)."""
    queryset = signups_matching(filters).values(*SIGNUP_COLUMNS)
    rows, older, newer = _keyset_page(queryset, "created_at", after=after, before=before, size=size or PAGE_SIZE)
    return _page(rows, "created_at", older, newer, _signup_row)


SIGNUP_CSV_HEADER = (
    "id", "created_at", "program", "email", "status", "method", "ambassador_code", "reason", "reason_detail",
    "external_id",
)  # fmt: skip


def signups_csv_rows(filters: Filters) -> Iterator[tuple[Any, ...]]:
    """Every matching signup, newest first, streamed from the database cursor (never all in memory)."""
    return (
        signups_matching(filters)
        .order_by("-created_at", "-id")
        .values_list(*SIGNUP_COLUMNS, "external_id")
        .iterator(chunk_size=2000)
    )


# --- Conversions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversionRow:
    id: int
    occurred_at: datetime
    program_name: str
    external_id: str
    email: str
    signup_id: int
    ambassador_code: str | None
    amount: Decimal
    currency: str
    status: str

    @property
    def status_label(self) -> str:
        return label(CONVERSION_STATUSES, self.status)


CONVERSION_COLUMNS = (
    "id", "occurred_at", "program__name", "external_id", "signup__email", "signup_id", "signup__ambassador__code",
    "amount", "currency", "status",
)  # fmt: skip


def _conversion_row(row: dict[str, Any]) -> ConversionRow:
    return ConversionRow(
        id=row["id"],
        occurred_at=row["occurred_at"],
        program_name=row["program__name"],
        external_id=row["external_id"],
        email=row["signup__email"],
        signup_id=row["signup_id"],
        ambassador_code=row["signup__ambassador__code"],
        amount=row["amount"],
        currency=row["currency"],
        status=row["status"],
    )


def conversions_page(
    filters: Filters, *, after: Cursor | None = None, before: Cursor | None = None, size: int | None = None
) -> Page[ConversionRow]:
    """One page of matching conversions, latest purchase first: one query (two when an ambassador is named)."""
    queryset = conversions_matching(filters).values(*CONVERSION_COLUMNS)
    rows, older, newer = _keyset_page(queryset, "occurred_at", after=after, before=before, size=size or PAGE_SIZE)
    return _page(rows, "occurred_at", older, newer, _conversion_row)


CONVERSION_CSV_HEADER = (
    "id", "occurred_at", "program", "external_id", "email", "signup_id", "ambassador_code", "amount", "currency",
    "status",
)  # fmt: skip


def conversions_csv_rows(filters: Filters) -> Iterator[tuple[Any, ...]]:
    return (
        conversions_matching(filters)
        .order_by("-occurred_at", "-id")
        .values_list(*CONVERSION_COLUMNS)
        .iterator(chunk_size=2000)
    )
