from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = "Rewards: tiers, grants, milestones"

    def ready(self) -> None:
        from rewards import receivers  # noqa: F401  (connects to referrals.signals.counts_changed)
