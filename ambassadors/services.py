"""Writes for programs, ambassadors, API keys and counters. Views, API, admin and tasks call these."""

from __future__ import annotations

import hashlib
import secrets
from decimal import Decimal
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F
from django.utils import timezone

from ambassadors.mailbox import canonical_mailbox
from ambassadors.models import Ambassador, AmbassadorCounters, ApiKey, Program, ProgramCounterDelta, ProgramCounters
from ambassadors.normalise import (
    VANITY_CODE_RE,
    code_key,
    display_code,
    generate_code,
    normalise_email,
)
from ambassadors.signals import ambassador_changed
from core import clock
from core.actors import Actor
from core.audit import audit_record
from core.constraints import constraint_errors_as_invalid_input
from core.errors import InvalidInput
from core.text import plain_text

User = get_user_model()

API_KEY_PREFIX = "prn_"


def program_counters_ensure(*, program: Program) -> ProgramCounters:
    counters, _ = ProgramCounters.objects.get_or_create(program=program)
    return counters


# Placeholder accounts hold profiles enrolled by e-mail until their owner proves the address. `~` is refused
# by Django's username validator, which every signup and admin form applies: nobody can register a name here.
PLACEHOLDER_PREFIX = "~"


def placeholder_username(email: str) -> str:
    # Usernames stop at 150 characters, addresses at 254: cutting a long one would give two people one
    # account, so a long address keeps its head and gains a digest of the whole.
    name = f"{PLACEHOLDER_PREFIX}{email}"
    if len(name) <= 150:
        return name
    return f"{PLACEHOLDER_PREFIX}{email[:84]}+{hashlib.sha256(email.encode()).hexdigest()}"


def is_placeholder(user: Any) -> bool:
    return bool(user.username.startswith(PLACEHOLDER_PREFIX))


def _placeholder_for(email: str) -> Any:
    """The account that holds `email`'s profiles until its owner proves the address.

    It carries the address unverified, so that a log-in code asked for at /accounts/login/code/ reaches it;
    entering the code proves the address and claims the profiles (ambassadors.accounts).
    """
    # The username is unique, so two concurrent enrolments of one address resolve to one placeholder.
    user, _ = User.objects.get_or_create(
        username=placeholder_username(email), defaults={"email": email, "password": make_password(None)}
    )
    if not user.is_active:  # Emptied by an earlier claim, then the address was freed again.
        User.objects.filter(pk=user.pk).update(is_active=True)
        user.is_active = True
    EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": False, "primary": True})
    return user


def _owner_for_address(email: str) -> tuple[Any, bool]:
    """Who a profile enrolled with `email` belongs to: (account, whether it proved the address).

    Only an account that verified this exact address gets it; an account that merely typed it into the
    signup form (anyone can) does not, nor does a username that reads like it.
    """
    # allauth stores addresses lower-cased, as normalise_email does: an exact match is case-insensitive.
    proof = (
        EmailAddress.objects.filter(email=email, verified=True, user__is_active=True)
        .select_related("user")
        .order_by("pk")
        .first()
    )
    if proof is not None:
        return proof.user, True
    return _placeholder_for(email), False


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
    """Make a customer an ambassador of a program; enrolling the same mailbox again returns the first.

    The profile belongs to the account that verified `email`, or waits on a placeholder account until
    someone proves the address (ambassador_claim). `user` is for a caller that already knows who the
    person is: the signed-in account joining under its own address.
    Returns (ambassador, created).
    """
    email = normalise_email(email)
    display_name = plain_text(display_name, field="display_name", max_length=100)
    canonical = canonical_mailbox(email)
    existing = Ambassador.objects.filter(program=program, email_canonical=canonical).first()
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

    owner, proven = (user, True) if user is not None else _owner_for_address(email)
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
                    email_canonical=canonical,
                    display_name=display_name,
                    claimed_at=timezone.now() if proven else None,
                )
                AmbassadorCounters.objects.create(ambassador=ambassador)
                if proven and user is None:
                    _audit_claim(ambassador, owner, "The address was verified before the enrolment.")
            return ambassador, True
        except IntegrityError:
            # Either the same mailbox enrolled concurrently (return it) or the code collided (retry).
            existing = Ambassador.objects.filter(program=program, email_canonical=canonical).first()
            if existing is None:
                # The account with this address already takes part under another address: that is them.
                existing = Ambassador.objects.filter(program=program, user=owner).first()
            if existing is not None:
                return existing, False
            if code:
                raise InvalidInput("This code is already taken.", field="code") from None
    raise RuntimeError("could not find a free referral code after 8 attempts")


def ambassador_claim(*, user: Any, email: str) -> list[Ambassador]:
    """Give `user` the profiles enrolled with `email`, an address `user` has just verified.

    Only that exact address claims (case-insensitive, as allauth and every provider we know compare it):
    not another variant of the mailbox. `ana+x@gmail.com` reaches Ana's inbox, but so does any `+tag`
    someone else invents, and the profile was promised to whoever holds the address it was enrolled with.
    Returns the profiles claimed.
    """
    address = normalise_email(email)
    if not EmailAddress.objects.filter(user=user, email=address, verified=True).exists():
        return []  # Not proven: nothing to claim, whoever calls.
    claimed: list[Ambassador] = []
    previous_owners: set[int] = set()
    with transaction.atomic():
        # Locks the waiting profiles (by id): a code and a link proving one address at once claim them once.
        # FOR UPDATE, not NO KEY: moving `user` changes a unique key, which takes FOR UPDATE anyway.
        waiting = (
            Ambassador.objects.select_for_update(no_key=True)
            .filter(email=address, claimed_at__isnull=True)
            .order_by("pk")
        )
        for ambassador in waiting:
            if (
                ambassador.user_id != user.pk
                and Ambassador.objects.filter(program_id=ambassador.program_id, user=user).exists()
            ):
                audit_record(
                    actor=Actor.for_user(user),
                    action="ambassador.claim_refused",
                    object_type="ambassador",
                    object_id=ambassador.pk,
                    program_id=ambassador.program_id,
                    reason="The account is already an ambassador of this program under another address.",
                )
                continue
            previous_owners.add(ambassador.user_id)
            ambassador.user = user
            ambassador.claimed_at = timezone.now()
            ambassador.save(update_fields=["user", "claimed_at"])
            _audit_claim(ambassador, user, "The account verified the address the profile was enrolled with.")
            claimed.append(ambassador)
        previous_owners.discard(user.pk)
        for emptied in User.objects.filter(pk__in=previous_owners).exclude(ambassadorships__isnull=False):
            if is_placeholder(emptied):
                # Nothing left to hold: a log-in code for the address must reach the owner, not this.
                EmailAddress.objects.filter(user=emptied).delete()
                User.objects.filter(pk=emptied.pk).update(is_active=False)
    return claimed


def _audit_claim(ambassador: Ambassador, user: Any, reason: str) -> None:
    audit_record(
        actor=Actor.for_user(user),
        action="ambassador.claimed",
        object_type="ambassador",
        object_id=ambassador.pk,
        program_id=ambassador.program_id,
        before={"claimed": False},
        after={"claimed": True},
        reason=reason,
    )


def api_key_create(*, program: Program, scopes: list[str], actor: Actor, name: str = "") -> tuple[ApiKey, str]:
    """Create a key; the raw token is returned once and never stored (nor audited: only its prefix)."""
    valid = set(ApiKey.Scope.values)
    unknown = [s for s in scopes if s not in valid]
    if not scopes or unknown:
        raise InvalidInput(
            f"Scopes must be a non-empty list of {', '.join(sorted(valid))}; unknown: {', '.join(unknown)}",
            field="scopes",
        )
    name = plain_text(name, field="name", max_length=100)
    raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        key = ApiKey.objects.create(
            program=program,
            name=name,
            prefix=raw[:10],
            key_hash=api_key_hash(raw),
            scopes=sorted(set(scopes)),
        )
        _api_key_audit(key, actor, "api_key.created", before=None)
    return key, raw


def api_key_update(*, key: ApiKey, actor: Actor, name: str) -> ApiKey:
    """Rename a key (the only thing about a key that changes besides its revocation)."""
    name = plain_text(name, field="name", max_length=100)
    with transaction.atomic():
        # Lock: the audit's `before` is the name this update replaces.
        locked = ApiKey.objects.select_for_update(no_key=True).get(pk=key.pk)
        if locked.name == name:
            return locked
        before = _api_key_snapshot(locked)
        locked.name = name
        locked.save(update_fields=["name"])
        _api_key_audit(locked, actor, "api_key.updated", before=before)
    return locked


def api_key_revoke(*, key: ApiKey, actor: Actor) -> ApiKey:
    """Revoke a key for good; revoking it again changes nothing and records nothing."""
    with transaction.atomic():
        # Conditional update: of two admins revoking at once, one revokes and audits, the other sees it done.
        changed = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=clock.now())
        revoked = ApiKey.objects.get(pk=key.pk)
        if changed:
            _api_key_audit(revoked, actor, "api_key.revoked", before=_api_key_snapshot(revoked) | {"revoked_at": None})
    return revoked


def _api_key_snapshot(key: ApiKey) -> dict[str, Any]:
    # Never the key nor its hash: the prefix is what people recognise a key by.
    return {
        "prefix": key.prefix,
        "name": key.name,
        "scopes": list(key.scopes),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def _api_key_audit(key: ApiKey, actor: Actor, action: str, *, before: dict[str, Any] | None) -> None:
    audit_record(
        actor=actor,
        action=action,
        object_type="api_key",
        object_id=key.pk,
        program_id=key.program_id,
        before=before,
        after=_api_key_snapshot(key),
    )


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
    """Move the counters with an event, inside the event's own transaction.

    The program's part is a ProgramCounterDelta row (an INSERT: no lock that another signup waits for),
    folded into the program's counters by a worker (rewards program_recalculate). The ambassador's part is a
    conditional F update, which locks that ambassador's row until the event commits (step 4 of
    core.locking's order). A caller moving two ambassadors calls this once per ambassador, by ascending id.
    """
    if signups or qualified:
        ProgramCounterDelta.objects.create(program_id=program_id, signups=signups, qualified=qualified)
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


def program_counts_take(*, program_id: int) -> tuple[int, int]:
    """Delete the program's committed ProgramCounterDelta rows; the (signups, qualified) they add up to.

    Call it inside a transaction holding the program's counters row (select_for_update): that
    transaction adds what this returns to the row, or rolls back and leaves the rows for the next fold.
    One DELETE ... RETURNING: exactly the rows deleted are summed, whatever commits meanwhile.
    """
    table = connection.ops.quote_name(ProgramCounterDelta._meta.db_table)
    with connection.cursor() as cursor:
        sql = f"DELETE FROM {table} WHERE program_id = %s RETURNING signups, qualified"  # noqa: S608 (table name)
        cursor.execute(sql, [program_id])
        rows = cursor.fetchall()
    return sum(row[0] for row in rows), sum(row[1] for row in rows)


def program_counts_pending(*, program_id: int) -> tuple[int, int]:
    """What the program's counters do not show yet: (signups, qualified) of its unfolded deltas."""
    totals = ProgramCounterDelta.objects.filter(program_id=program_id).aggregate(
        signups=models.Sum("signups"), qualified=models.Sum("qualified")
    )
    return totals["signups"] or 0, totals["qualified"] or 0


PROGRAM_FIELDS = (
    "slug", "name", "description", "destination_url", "allowed_redirect_hosts", "attribution_window_days",
    "attribution_model", "hold_period_days", "currency", "base_price", "floor_price", "velocity_limit",
    "leaderboard_public", "status", "share_message", "influencer_min_clicks", "influencer_max_rate",
    "ambassador_min_qualified", "ambassador_min_rate", "attribution_cookie", "click_retention_months",
)  # fmt: skip

RATE_FIELDS = ("influencer_max_rate", "ambassador_min_rate")

# Amounts are stored with 2 decimal places: a currency with more minor units (BHD, KWD, ...) would have its
# amounts rounded silently, so such a program is refused rather than kept inexactly.
MAX_CURRENCY_PLACES = 2


def program_check(
    *,
    currency: str,
    base_price: Decimal | None,
    floor_price: Decimal | None,
    allowed_redirect_hosts: Any,
    name: str | None = None,
    share_message: str | None = None,
    rates: dict[str, Decimal] | None = None,
    attribution_model: str | None = None,
    attribution_cookie: bool | None = None,
) -> None:
    """The rules a program's configuration must follow, for the admin and the API alike."""
    from babel.numbers import get_currency_precision, list_currencies

    if attribution_cookie is False and attribution_model == Program.AttributionModel.FIRST_CLICK:
        # First click is told apart by the browser's earlier clicks, which only a cookie links together.
        raise InvalidInput(
            "First-click attribution needs the attribution cookie: turn the cookie on, or use last click.",
            field="attribution_cookie",
        )

    if name is not None:
        plain_text(name, field="name", required=True)
    if share_message is not None:
        plain_text(share_message, field="share_message", max_length=280)
    for field_name, rate in (rates or {}).items():
        if rate is not None and not Decimal(0) <= Decimal(rate) <= Decimal(100):
            raise InvalidInput("A percentage between 0 and 100.", field=field_name)
    if currency not in list_currencies():
        raise InvalidInput("Unknown currency: use an ISO 4217 code such as EUR.", field="currency")
    if get_currency_precision(currency) > MAX_CURRENCY_PLACES:
        raise InvalidInput(
            f"{currency} has {get_currency_precision(currency)} decimal places; Parrain stores amounts with at "
            f"most {MAX_CURRENCY_PLACES}, so it cannot count in {currency} exactly.",
            field="currency",
        )
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


def program_snapshot(program: Program) -> dict[str, Any]:
    """The configuration of a program as the audit trail keeps it (decimals as exact strings)."""
    snapshot = {}
    for name in PROGRAM_FIELDS:
        value, field = getattr(program, name), Program._meta.get_field(name)
        if isinstance(field, models.DecimalField) and value is not None:
            value = str(Decimal(value).quantize(Decimal(1).scaleb(-field.decimal_places)))
        snapshot[name] = value
    return snapshot


def program_create(*, actor: Actor, **fields: Any) -> Program:
    unknown = sorted(set(fields) - set(PROGRAM_FIELDS))
    if unknown:
        raise InvalidInput("This field cannot be set.", field=unknown[0])
    program_check(
        currency=fields.get("currency", "EUR"),
        base_price=fields.get("base_price"),
        floor_price=fields.get("floor_price"),
        allowed_redirect_hosts=fields.get("allowed_redirect_hosts", []),
        name=fields.get("name", ""),
        share_message=fields.get("share_message"),
        rates={name: fields[name] for name in RATE_FIELDS if name in fields},
        attribution_model=fields.get("attribution_model"),
        attribution_cookie=fields.get("attribution_cookie"),
    )
    with constraint_errors_as_invalid_input(Program), transaction.atomic():
        program = Program.objects.create(**fields)
        ProgramCounters.objects.create(program=program)
        audit_record(
            actor=actor,
            action="program.created",
            object_type="program",
            object_id=program.pk,
            program_id=program.pk,
            after=program_snapshot(program),
        )
    return program


def program_update(*, program: Program, actor: Actor, **fields: Any) -> Program:
    """Change a program's configuration; the merged values pass the same check as a new program's."""
    unknown = sorted(set(fields) - set(PROGRAM_FIELDS))
    if unknown:
        raise InvalidInput("This field cannot be changed.", field=unknown[0])
    with constraint_errors_as_invalid_input(Program), transaction.atomic():
        # Lock the row: the check and the audit's `before` must see the program this update replaces,
        # not one another editor is changing at the same moment.
        locked = Program.objects.select_for_update(no_key=True).get(pk=program.pk)
        before = program_snapshot(locked)
        merged = {name: getattr(locked, name) for name in PROGRAM_FIELDS} | fields
        program_check(
            currency=merged["currency"],
            base_price=merged["base_price"],
            floor_price=merged["floor_price"],
            allowed_redirect_hosts=merged["allowed_redirect_hosts"],
            name=merged["name"],
            share_message=merged["share_message"],
            rates={name: merged[name] for name in RATE_FIELDS},
            attribution_model=merged["attribution_model"],
            attribution_cookie=merged["attribution_cookie"],
        )
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save()
        after = program_snapshot(locked)
        if after != before:
            audit_record(
                actor=actor,
                action="program.updated",
                object_type="program",
                object_id=locked.pk,
                program_id=locked.pk,
                before=before,
                after=after,
            )
    return locked


def ambassador_update(*, ambassador: Ambassador, actor: Actor, **fields: Any) -> Ambassador:
    """Change what staff may change about an ambassador: the display name, and whether they are active.

    Never the program: the ambassador's signups, counters and grants belong to it. Deactivating (or
    reactivating) changes what counts, so the program is recalculated once the change is committed.
    """
    allowed = {"display_name", "is_active"}
    if "program" in fields or "program_id" in fields:
        raise InvalidInput(
            "An ambassador cannot move to another program: enrol them in that program instead.", field="program"
        )
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InvalidInput("This field cannot be changed.", field=unknown[0])
    if "display_name" in fields:
        fields["display_name"] = plain_text(fields["display_name"], field="display_name", max_length=100)
    with transaction.atomic():
        # Lock: the audit's `before` is what this update replaces.
        locked = Ambassador.objects.select_for_update(no_key=True).get(pk=ambassador.pk)
        before = {name: getattr(locked, name) for name in sorted(allowed)}
        for name, value in fields.items():
            setattr(locked, name, value)
        after = {name: getattr(locked, name) for name in sorted(allowed)}
        if after == before:
            return locked
        locked.save(update_fields=sorted(fields))
        audit_record(
            actor=actor,
            action="ambassador.updated",
            object_type="ambassador",
            object_id=locked.pk,
            program_id=locked.program_id,
            before=before,
            after=after,
        )
        if before["is_active"] != after["is_active"]:
            ambassador_changed.send(sender=Ambassador, program_id=locked.program_id, ambassador_ids=[locked.pk])
    return locked
