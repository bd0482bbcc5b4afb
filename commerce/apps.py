from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "commerce"
    verbose_name = "Commerce: payment providers, the embedded dashboard, waitlists and payouts"

    def ready(self) -> None:
        from commerce.stripe_promotions import grant_issued_received, grant_revoked_received
        from rewards.signals import grant_issued, grant_revoked

        grant_issued.connect(grant_issued_received, dispatch_uid="commerce.stripe_promotions.grant_issued")
        grant_revoked.connect(grant_revoked_received, dispatch_uid="commerce.stripe_promotions.grant_revoked")
