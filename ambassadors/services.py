"""Writes for programs, ambassadors, API keys and counters. Views, API, admin and tasks call these."""

from __future__ import annotations

import hashlib
import secrets
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ambassadors.models import Ambassador, AmbassadorCounters, ApiKey, Program, ProgramCounters
from ambassadors.normalise import (
    VANITY_CODE_RE,
    code_key,
    display_code,
    generate_code,
    normalise_email,
)
from config.errors import InvalidInput

User = get_user_model()

API_KEY_PREFIX = "prn_"


def program_counters_ensure(*, program: Program) -> ProgramCounters:
    counters, _ = ProgramCounters.objects.get_or_create(program=program)
    return counters


def _user_for_email(email: str) -> Any:
    existing = User.objects.filter(email__iexact=email).order_by("id").first()
    if existing is not None:
        return existing
    # The username is the e-mail: unique, so two concurrent enrolments resolve to one user.
    user, created = User.objects.get_or_create(username=_username_for(email), defaults={"email": email})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _username_for(email: str) -> str:
    # Usernames stop at 150 characters, addresses at 254: cutting a long one would give two people one
    # account, so a long address keeps its head and gains a digest of the whole.
    if len(email) <= 150:
        return email
    return f"{email[:85]}+{hashlib.sha256(email.encode()).hexdigest()}"


def _code_is_taken(key: str) -> bool:
    from django.apps import apps

    if Ambassador.objects.filter(code_key=key).exists():
        return True
    # Channel links share the /r/<code> namespace; referrals registers the model, we only read it.
    link_model = apps.get_model("referrals", "ReferralLink")
    return link_model.objects.filter(code_key=key).exists()


def ambassador_enroll(
    *,
    program: Program,
    email: str,
    display_name: str = "",
    code: str | None = None,
    user: Any = None,
) -> tuple[Ambassador, bool]:
    """Make a customer an ambassador of a program; enrolling the same e-mail again returns the first.

    Returns (ambassador, created).
    """
    email = normalise_email(email)
    existing = Ambassador.objects.filter(program=program, email=email).first()
    if existing is None and user is not None:
        existing = Ambassador.objects.filter(program=program, user=user).first()
    if existing is not None:
        return existing, False

    if code:
        if not VANITY_CODE_RE.match(code.strip()):
            raise InvalidInput(
                "A code has 3 to 32 letters, digits or inner hyphens.",
                field="code",
            )
        if _code_is_taken(code_key(code)):
            raise InvalidInput("This code is already taken.", field="code")

    owner = user or _user_for_email(email)
    for _attempt in range(8):
        chosen = display_code(code) if code else generate_code()
        try:
            with transaction.atomic():
                ambassador = Ambassador.objects.create(
                    program=program,
                    user=owner,
                    code=chosen,
                    code_key=code_key(chosen),
                    email=email,
                    display_name=display_name.strip(),
                )
                AmbassadorCounters.objects.create(ambassador=ambassador)
            return ambassador, True
        except IntegrityError:
            # Either the same e-mail enrolled concurrently (return it) or the code collided (retry).
            existing = Ambassador.objects.filter(program=program, email=email).first()
            if existing is None:
                # The account with this address already takes part under another address: that is them.
                existing = Ambassador.objects.filter(program=program, user=owner).first()
            if existing is not None:
                return existing, False
            if code:
                raise InvalidInput("This code is already taken.", field="code") from None
    raise RuntimeError("could not find a free referral code after 8 attempts")


def api_key_create(*, program: Program, scopes: list[str], name: str = "") -> tuple[ApiKey, str]:
    """Create a key; the raw token is returned once and never stored."""
    valid = set(ApiKey.Scope.values)
    unknown = [s for s in scopes if s not in valid]
    if not scopes or unknown:
        raise InvalidInput(
            f"Scopes must be a non-empty list of {', '.join(sorted(valid))}; unknown: {', '.join(unknown)}",
            field="scopes",
        )
    raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        program=program,
        name=name,
        prefix=raw[:10],
        key_hash=api_key_hash(raw),
        scopes=sorted(set(scopes)),
    )
    return key, raw


def api_key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_touch(*, key: ApiKey) -> None:
    # At most once a minute: the hot API path should not write the key row on every call.
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)


def counters_add(
    *,
    program_id: int,
    ambassador_id: int | None,
    signups: int = 0,
    qualified: int = 0,
    conversions: int = 0,
    amount: Decimal = Decimal("0"),
) -> None:
    """Move the counters with an event, inside the event's own transaction (conditional F updates)."""
    if signups or qualified:
        changed = ProgramCounters.objects.filter(program_id=program_id).update(
            signups=F("signups") + signups, qualified=F("qualified") + qualified
        )
        if not changed:
            ProgramCounters.objects.get_or_create(program_id=program_id)
            ProgramCounters.objects.filter(program_id=program_id).update(
                signups=F("signups") + signups, qualified=F("qualified") + qualified
            )
    if ambassador_id is not None and (signups or qualified or conversions or amount):
        fields = {
            "signups": F("signups") + signups,
            "qualified": F("qualified") + qualified,
            "conversions": F("conversions") + conversions,
            "converted_amount": F("converted_amount") + amount,
        }
        if not AmbassadorCounters.objects.filter(ambassador_id=ambassador_id).update(**fields):
            AmbassadorCounters.objects.get_or_create(ambassador_id=ambassador_id)
            AmbassadorCounters.objects.filter(ambassador_id=ambassador_id).update(**fields)


def program_check(
    *, currency: str, base_price: Decimal | None, floor_price: Decimal | None, allowed_redirect_hosts: Any
) -> None:
    """The rules a program's configuration must follow, for the admin and the API alike."""
    from babel.numbers import list_currencies

    if currency not in list_currencies():
        raise InvalidInput("Unknown currency: use an ISO 4217 code such as EUR.", field="currency")
    if (base_price is None) != (floor_price is None):
        raise InvalidInput("Give both a base price and a floor price, or neither.", field="floor_price")
    if base_price is not None and floor_price is not None:
        if floor_price < 0:
            raise InvalidInput("The floor price cannot be negative.", field="floor_price")
        if floor_price > base_price:
            raise InvalidInput("The floor price cannot be above the base price.", field="floor_price")
    if not isinstance(allowed_redirect_hosts, list) or not all(
        isinstance(h, str) and h and "/" not in h and " " not in h for h in allowed_redirect_hosts
    ):
        raise InvalidInput("A list of host names such as shop.example.com.", field="allowed_redirect_hosts")


def program_create(**fields: Any) -> Program:
    program_check(
        currency=fields.get("currency", "EUR"),
        base_price=fields.get("base_price"),
        floor_price=fields.get("floor_price"),
        allowed_redirect_hosts=fields.get("allowed_redirect_hosts", []),
    )
    with transaction.atomic():
        program = Program.objects.create(**fields)
        ProgramCounters.objects.create(program=program)
    return program


def program_update(*, program: Program, **fields: Any) -> Program:
    merged = {
        "currency": fields.get("currency", program.currency),
        "base_price": fields.get("base_price", program.base_price),
        "floor_price": fields.get("floor_price", program.floor_price),
        "allowed_redirect_hosts": fields.get("allowed_redirect_hosts", program.allowed_redirect_hosts),
    }
    program_check(**merged)
    for name, value in fields.items():
        setattr(program, name, value)
    program.save(update_fields=list(fields) or None)
    return program
