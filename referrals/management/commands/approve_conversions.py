"""`manage.py approve_conversions`: approve conversions whose hold period has passed (beat does it too).

Works in batches, each conversion in its own transaction: stopped with Ctrl-C, it finishes the batch it
is in; run again, it approves only what is still pending.
"""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from core.progress import progress
from referrals.models import Conversion
from referrals.services import conversions_approve_due


class Command(BaseCommand):
    help = "Approve pending conversions whose hold period has passed."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="Conversions per batch (default 500)")

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        # One instant for the whole run: a conversion falling due while it runs waits for the next run,
        # so the total below stays true and the loop ends.
        now = timezone.now()
        due = Conversion.objects.filter(status=Conversion.Status.PENDING, approve_after__lte=now).count()
        with progress("approve conversions", total=due, stdout=self.stdout) as bar:
            approved = 0
            while True:
                # Each call approves up to batch_size of the conversions still pending and due; the ones
                # another worker approved meanwhile are skipped, so the loop ends when none is left.
                done = conversions_approve_due(now=now, limit=batch_size)
                if done == 0:
                    break
                approved += done
                bar.details["approved"] = approved
                bar.advance(done)
            bar.details["approved"] = approved
