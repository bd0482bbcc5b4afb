"""`manage.py ensure_click_partitions`: the click table's monthly partitions ahead (beat does it daily too).

PostgreSQL only (SQLite keeps a plain table: it says so and does nothing). Idempotent. `--since 2025-01`
also makes the partitions of past months, from that one: before loading history, or to move rows the default
partition caught (they are moved to their month's partition whatever `--since` says).
"""

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from referrals.services.partitions import click_partitions_ensure


def _month(value: str) -> date:
    try:
        year, month = value.split("-")[:2]
        return date(int(year), int(month), 1)
    except ValueError as exc:
        raise CommandError(f"--since takes a month as YYYY-MM, not {value!r}.") from exc


class Command(BaseCommand):
    help = "Create the click table's monthly partitions ahead (PostgreSQL); idempotent."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--ahead", type=int, help="Months ahead of this one (default CLICK_PARTITIONS_AHEAD)")
        parser.add_argument("--since", help="Also every month from this one (YYYY-MM)")

    def handle(self, *args: Any, ahead: int | None, since: str | None, **options: Any) -> None:
        if ahead is not None and ahead < 0:
            raise CommandError("--ahead takes 0 or more months.")
        result = click_partitions_ensure(ahead=ahead, since=_month(since) if since else None)
        if not result.partitioned:
            self.stdout.write("the click table is not partitioned (SQLite, or before migration referrals 0011)")
            return
        self.stdout.write(
            f"created {len(result.created)} partition(s){': ' + ', '.join(result.created) if result.created else ''}"
            f"; moved {result.moved} row(s) out of the default partition"
        )
