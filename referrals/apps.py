from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _click_partitions_after_migrate(sender: Any, using: str = "default", plan: Any = None, **kwargs: Any) -> None:
    """Every `migrate` makes sure the click table's months ahead exist (PostgreSQL; nothing on SQLite)."""
    from referrals.services.partitions import click_partitions_ensure

    click_partitions_ensure(using=using)


class ReferralsConfig(AppConfig):
    name = "referrals"
    verbose_name = "Referrals: links, clicks, signups, conversions"

    def ready(self) -> None:
        post_migrate.connect(
            _click_partitions_after_migrate, sender=self, dispatch_uid="referrals.click_partitions_after_migrate"
        )
