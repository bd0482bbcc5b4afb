from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "commerce"
    verbose_name = "Commerce: payment providers, the embedded dashboard, waitlists and payouts"
