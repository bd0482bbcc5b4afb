"""`manage.py rotate_ip_pepper [--force]`: a new secret for the IP hashes, and the old ones forgotten.

The new pepper hashes new clicks and signups a couple of minutes later (once every process has loaded
it); the velocity checks keep matching an address under every pepper still inside their window. Peppers
that stopped hashing longer ago than that window and a day are deleted: the hashes they made can no
longer be linked to any address. One transaction: interrupted, it leaves nothing half done, and run again
it does only what is left (a pepper younger than a day is not replaced unless --force).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core.actors import Actor
from core.progress import progress
from referrals.services.peppers import ip_pepper_rotate


class Command(BaseCommand):
    help = "Rotate the pepper of the IP hashes and delete the peppers no velocity check needs any more."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--force", action="store_true", help="Rotate even if the newest pepper is recent")

    def handle(self, *args: Any, force: bool, **options: Any) -> None:
        with progress("rotate IP pepper", total=1, stdout=self.stdout) as bar:
            rotation = ip_pepper_rotate(actor=Actor.system("rotate_ip_pepper"), force=force)
            bar.details["created"] = int(rotation.created is not None)
            bar.details["purged"] = rotation.purged
            bar.advance()
