from django.apps import AppConfig


class AmbassadorsConfig(AppConfig):
    name = "ambassadors"
    verbose_name = "Programs and ambassadors"

    def ready(self) -> None:
        from allauth.account.signals import email_confirmed

        from ambassadors.accounts import claim_on_email_confirmed

        email_confirmed.connect(claim_on_email_confirmed, dispatch_uid="ambassadors.claim_on_email_confirmed")

        from ambassadors.webhooks import outbox_announced
        from core.outbox import outbox_committed

        outbox_committed.connect(outbox_announced, dispatch_uid="ambassadors.webhooks.outbox_announced")
