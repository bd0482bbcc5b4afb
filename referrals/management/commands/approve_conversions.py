"""`manage.py approve_conversions`: approve conversions whose hold period has passed (beat does it too)."""

from typing import Any

from django.core.management.base import BaseCommand

from referrals.services import conversions_approve_due


class Command(BaseCommand):
    help = "Approve pending conversions whose hold period has passed."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"approved {conversions_approve_due()} conversion(s)")
