"""The dashboard inside the business's product: a token its back end asks for (a `manage` key), which frames
one ambassador's dashboard once, for a few minutes, on the program's declared hosts only.

A token is signed (django.core.signing, its own salt: no other signed value of Parrain passes for one) and
names a row of EmbedToken, which makes it single-use. It grants nothing but that one rendering: no session,
no log-in, no other page.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction

from ambassadors.mailbox import canonical_mailbox
from ambassadors.models import Ambassador, Program
from ambassadors.normalise import normalise_email
from ambassadors.services import ambassador_enroll
from commerce.models import EmbedToken
from core import clock
from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidInput, NotFound
from referrals.models import Signup

EMBED_SALT = "parrain.embed.dashboard"


class Refusal(enum.Enum):
    """Why a token shows no dashboard; the page explains each in the reader's language."""

    TAMPERED = "tampered"  # not a token Parrain signed, or altered
    EXPIRED = "expired"
    USED = "used"  # single-use: loaded once already
    OTHER_PROGRAM = "other_program"  # the page was asked for another program than the token's
    GONE = "gone"  # the ambassador left, or the program closed, since it was issued


class EmbedRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime
    ambassador: Ambassador


def embed_token_ttl() -> timedelta:
    return timedelta(seconds=settings.EMBED_TOKEN_TTL_SECONDS)


def embed_ambassador_find(
    *, program: Program, email: str | None = None, external_id: str | None = None, enrol: bool = False
) -> Ambassador:
    """The active ambassador of `program` with this e-mail, or the one whose subscription carries this
    `external_id` (the business's own customer id, as passed with POST .../signups).

    Not an ambassador yet: NotFound, unless `enrol` asks to make them one (the same rule as
    POST .../ambassadors). Never an ambassador of another program.
    """
    if program.status == Program.Status.CLOSED:
        raise InvalidInput("This program is closed.")
    if external_id:
        signup = Signup.objects.filter(program=program, external_id=external_id).only("email").first()
        if signup is None:
            raise NotFound("No subscriber with this external_id in this program.")
        email = signup.email
    if not email:
        raise InvalidInput("Give the customer's email or external_id.", field="email")
    email = normalise_email(email)
    ambassador = Ambassador.objects.filter(program=program, email_canonical=canonical_mailbox(email)).first()
    if ambassador is None and enrol:
        ambassador, _created = ambassador_enroll(program=program, email=email)
    if ambassador is None:
        raise NotFound(
            "This customer is not an ambassador of this program. Enrol them first "
            '(POST /api/v1/programs/<slug>/ambassadors), or pass "enrol": true.'
        )
    if not ambassador.is_active:
        raise NotFound("This ambassador no longer takes part in this program.")
    return ambassador


def embed_token_issue(*, program: Program, ambassador: Ambassador, actor: Actor) -> IssuedToken:
    """A signed, single-use token that shows `ambassador`'s dashboard of `program` for EMBED_TOKEN_TTL_SECONDS."""
    if ambassador.program_id != program.pk:
        raise NotFound("No such ambassador in this program.")
    if program.status == Program.Status.CLOSED:
        raise InvalidInput("This program is closed.")
    moment = clock.now()
    jti = secrets.token_hex(16)
    expires_at = moment + embed_token_ttl()
    with transaction.atomic():
        EmbedToken.objects.create(
            jti=jti, ambassador=ambassador, program=program, created_at=moment, expires_at=expires_at
        )
        # Who opened whose dashboard to a third party's page: the key (or staff member) that asked.
        audit_record(
            actor=actor,
            action="embed_token.issued",
            object_type="ambassador",
            object_id=ambassador.pk,
            program_id=program.pk,
            after={"token": jti[:8], "expires_at": expires_at.isoformat()},
        )
    token = signing.dumps({"j": jti, "p": program.pk, "a": ambassador.pk}, salt=EMBED_SALT)
    return IssuedToken(token=token, expires_at=expires_at, ambassador=ambassador)


def embed_token_use(*, token: str, program_slug: str | None = None) -> EmbedToken:
    """Spend `token`: its row (with ambassador, user and program), or EmbedRefused saying why not.

    `program_slug`, when the page names one, must be the token's program. The row is marked used by one
    conditional UPDATE: of two loads racing, exactly one gets the dashboard.
    """
    try:
        payload: Any = signing.loads(token, salt=EMBED_SALT, max_age=embed_token_ttl())
    except signing.SignatureExpired as exc:
        raise EmbedRefused(Refusal.EXPIRED) from exc
    except signing.BadSignature as exc:
        raise EmbedRefused(Refusal.TAMPERED) from exc
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("j"), str)
        and isinstance(payload.get("p"), int)
        and isinstance(payload.get("a"), int)
    ):
        raise EmbedRefused(Refusal.TAMPERED)
    row = (
        EmbedToken.objects.select_related("ambassador__user", "program")
        .filter(jti=payload["j"], program_id=payload["p"], ambassador_id=payload["a"])
        .first()
    )
    if row is None:
        raise EmbedRefused(Refusal.TAMPERED)
    if program_slug is not None and row.program.slug != program_slug:
        raise EmbedRefused(Refusal.OTHER_PROGRAM)
    moment = clock.now()
    if row.expires_at <= moment:
        raise EmbedRefused(Refusal.EXPIRED)
    if row.used_at is not None:
        raise EmbedRefused(Refusal.USED)
    spent = EmbedToken.objects.filter(pk=row.pk, used_at__isnull=True, expires_at__gt=moment).update(used_at=moment)
    if spent != 1:
        raise EmbedRefused(Refusal.USED)
    row.used_at = moment
    if not row.ambassador.is_active or row.program.status == Program.Status.CLOSED:
        raise EmbedRefused(Refusal.GONE)
    return row


def embed_tokens_purge(*, older_than: timedelta = timedelta(days=7)) -> int:
    """Delete the rows of tokens expired for a while: they can only be refused, by their signature's age."""
    deleted, _by_model = EmbedToken.objects.filter(expires_at__lt=clock.now() - older_than).delete()
    return deleted
