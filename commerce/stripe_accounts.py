"""A program's Stripe settings: the webhook signing secret and the API key (write-only, shown masked,
rotatable) and vouchers as promotion codes. Each change is one transaction with its audit event, which
says what changed and never the secret itself."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from ambassadors.models import Program
from commerce.models import StripeAccount
from core import clock
from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidInput

# What Stripe gives: `whsec_` then letters and digits (the Dashboard's, or the Stripe CLI's).
WEBHOOK_SECRET_FORMAT = re.compile(r"whsec_[A-Za-z0-9+/=]{16,190}", re.ASCII)
# A restricted key (`rk_`) is what a program should give; a secret key (`sk_`) works too.
API_KEY_FORMAT = re.compile(r"(rk|sk)_(live|test)_[A-Za-z0-9]{16,240}", re.ASCII)
MASK = "••••"


def masked(secret: str) -> str:
    """How a stored secret is shown: its kind and last 4 characters, never more; "" when there is none."""
    if not secret:
        return ""
    prefix = secret.split("_", 1)[0] + "_" if "_" in secret else ""
    if secret.startswith(("rk_", "sk_")):
        prefix = "_".join(secret.split("_", 2)[:2]) + "_"
    return f"{prefix}{MASK}{secret[-4:]}"


def stripe_account_of(program: Program) -> StripeAccount | None:
    return StripeAccount.objects.filter(program=program).first()


def _snapshot(account: StripeAccount) -> dict[str, Any]:
    # Never a secret: the audit trail is read by people who must not sign or call Stripe. The last 4
    # characters tell a rotation from a re-save of the same value.
    return {
        "webhook_secret": masked(account.webhook_secret) or None,
        "api_key": masked(account.api_key) or None,
        "promotion_codes_enabled": account.promotion_codes_enabled,
    }


def _clean(raw: Any, pattern: re.Pattern[str], *, field: str, message: str) -> str:
    value = raw.strip() if isinstance(raw, str) else ""
    if not pattern.fullmatch(value):
        raise InvalidInput(message, field=field)
    return value


@transaction.atomic
def stripe_account_update(
    *,
    program: Program,
    actor: Actor,
    webhook_secret: str | None = None,
    api_key: str | None = None,
    promotion_codes_enabled: bool | None = None,
) -> StripeAccount:
    """Set (or rotate) the webhook secret and the API key, and switch promotion codes on or off. A value left
    None is kept; an empty API key removes it. Audited once when something changed, without the secrets."""
    if webhook_secret is not None:
        webhook_secret = _clean(
            webhook_secret,
            WEBHOOK_SECRET_FORMAT,
            field="webhook_secret",
            message="Paste the signing secret Stripe shows for this endpoint: it starts with whsec_.",
        )
    if api_key is not None and api_key.strip():
        api_key = _clean(
            api_key,
            API_KEY_FORMAT,
            field="api_key",
            message="Paste a Stripe restricted key (rk_live_… or rk_test_…) or secret key (sk_…).",
        )
    # The program's row, locked: two staff saving at once write one after the other, each audited.
    account, _ = StripeAccount.objects.select_for_update().get_or_create(program=program)
    before = _snapshot(account)
    now = clock.now()
    changed: list[str] = []
    if webhook_secret is not None and webhook_secret != account.webhook_secret:
        account.webhook_secret, account.webhook_secret_set_at = webhook_secret, now
        changed.append("webhook_secret")
    if api_key is not None and api_key.strip() != account.api_key:
        account.api_key, account.api_key_set_at = api_key.strip(), (now if api_key.strip() else None)
        changed.append("api_key")
    if promotion_codes_enabled is not None and promotion_codes_enabled != account.promotion_codes_enabled:
        if promotion_codes_enabled and not account.api_key:
            raise InvalidInput(
                "Vouchers become promotion codes through the Stripe API: give an API key first.",
                field="promotion_codes_enabled",
            )
        account.promotion_codes_enabled = promotion_codes_enabled
        changed.append("promotion_codes_enabled")
    if not account.api_key and account.promotion_codes_enabled:
        # Removing the key switches promotion codes off: nothing could create them any more.
        account.promotion_codes_enabled = False
        changed.append("promotion_codes_enabled")
    if not changed:
        return account
    account.save()
    audit_record(
        actor=actor,
        action="stripe_account.updated",
        object_type="stripe_account",
        object_id=program.pk,
        program_id=program.pk,
        before=before,
        after=_snapshot(account),
        reason="Changed: " + ", ".join(dict.fromkeys(changed)),
    )
    return account


def stripe_event_seen(*, program: Program, event_type: str) -> None:
    """Note the last verified event (shown to staff: Stripe reaches Parrain). One conditional UPDATE, no lock."""
    StripeAccount.objects.filter(program=program).update(last_event_at=clock.now(), last_event_type=event_type[:100])
