"""A person's data under the GDPR: found from one e-mail address or one account, exported as JSON, erased.

Erasure pseudonymises rather than deletes: every signup, conversion, grant and milestone stays, so every
count, every price a program reached and every reward keeps its value, while nothing left names the
person. E-mails become `erased-<token>@erased.invalid` (one token per erasure, so the person's rows still
belong together and unique constraints hold), names and display names are emptied, external ids and order
numbers become `erased-<token>-<kind><id>`, the accounts lose their password, addresses and roles and are
deactivated. The audit trail is redacted the one way its trigger permits (core migration 0005): the
`person.erased` event, written first, lists the events whose e-mails, names and order numbers are
replaced, and never holds the erased values itself.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Q

from ambassadors.mailbox import canonical_mailbox
from ambassadors.models import Ambassador, Program
from ambassadors.normalise import normalise_email
from ambassadors.services import placeholder_username
from core import clock
from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidInput, NotFound
from core.models import ActorPseudonym, AuditEvent, EmailOptOut, Notification, UserPreference
from core.notifications import mailbox_digest
from referrals.models import Conversion, ReferralLink, Signup
from rewards.models import RewardGrant

User = get_user_model()

ERASED_DOMAIN = "erased.invalid"  # RFC 2606: never resolves, so no mail can reach an erased address
PSEUDONYM_PREFIX = "erased-"
EXPORT_FORMAT = "parrain.person-export/1"
# What replaces a name inside the audit trail's before/after (a display name has no pseudonym of its own).
ERASED_VALUE = "[erased]"
# The setting the audit trigger reads to permit the redaction the named `person.erased` event declares.
REDACTION_SETTING = "parrain.audit_erasure_event"
# External ids shorter than this are not searched for inside free text ("12" would match too much).
MIN_TEXT_MATCH = 4
MAX_EMAIL_LENGTH = 254  # what every e-mail column of Parrain holds (RFC 5321's limit)


@dataclass(frozen=True)
class Person:
    """Whom a request is about: the accounts, ambassador profiles and signups one address or account leads
    to. Ids only: the rows are re-read (and locked) by whatever acts on them."""

    user_ids: tuple[int, ...] = ()
    mailboxes: tuple[str, ...] = ()  # canonical forms (ambassadors.mailbox)
    ambassador_ids: tuple[int, ...] = ()
    signup_ids: tuple[int, ...] = ()
    # Every account carries a pseudonym and is deactivated already (True when there is no account).
    accounts_erased: bool = True

    @property
    def found(self) -> bool:
        return bool(self.user_ids or self.ambassador_ids or self.signup_ids)

    @property
    def is_erased(self) -> bool:
        """Everything it leads to carries a pseudonym already: a second erasure has nothing to do."""
        return self.found and self.accounts_erased and all(m.endswith("@" + ERASED_DOMAIN) for m in self.mailboxes)


@dataclass(frozen=True)
class PersonSummary:
    """What the audit console shows before anyone exports or erases: counts, never the data."""

    accounts: int
    ambassador_profiles: int
    signups: int
    conversions: int
    grants: int
    is_erased: bool
    account_ids: tuple[int, ...] = ()
    is_superuser: bool = False


@dataclass(frozen=True)
class ErasureResult:
    pseudonym: str
    already_erased: bool = False
    event_id: int | None = None
    counts: dict[str, int] = field(default_factory=dict)


def _is_pseudonym_address(address: str) -> bool:
    return address.endswith("@" + ERASED_DOMAIN)


# --- Finding the person --------------------------------------------------------------------------------


def email_check(raw: str) -> str:
    """The address a staff request names, normalised, or InvalidInput."""
    email = normalise_email(raw or "")
    try:
        if len(email) > MAX_EMAIL_LENGTH:
            raise ValidationError("too long")
        validate_email(email)
    except ValidationError:
        raise InvalidInput("Enter a valid e-mail address.", field="email") from None
    return email


def person_find(*, email: str) -> Person:
    """Everything an admin's request for `email` covers: the accounts that hold the address for real (a
    verified address, the placeholder of profiles enrolled with it, an account an admin made with it),
    the profiles enrolled with it and those accounts' other profiles, and every signup of one of those
    mailboxes, in every program."""
    email = email_check(email)
    mailbox = canonical_mailbox(email)
    typed_in = EmailAddress.objects.filter(email__iexact=email).values("user_id")
    user_ids = set(EmailAddress.objects.filter(email__iexact=email, verified=True).values_list("user_id", flat=True))
    user_ids |= set(User.objects.filter(username=placeholder_username(email)).values_list("pk", flat=True))
    # An account an admin made with this address (nobody typed it into the signup form unverified).
    user_ids |= set(User.objects.filter(email__iexact=email).exclude(pk__in=typed_in).values_list("pk", flat=True))
    user_ids |= set(Ambassador.objects.filter(email_canonical=mailbox).values_list("user_id", flat=True))
    return _person(user_ids, {mailbox}, include_all_addresses=True)


def person_of_user(*, user: Any) -> Person:
    """The signed-in person's own data: their account, their profiles, and the signups of the addresses
    they proved (a verified address, or a profile's address, which signing in to it proved). An address
    merely typed in and never verified leads to nobody's signups: anyone can type anyone's address."""
    return _person({user.pk}, set(), include_all_addresses=False)


def _person(user_ids: set[int], mailboxes: set[str], *, include_all_addresses: bool) -> Person:
    addresses = EmailAddress.objects.filter(user_id__in=user_ids)
    if not include_all_addresses:
        addresses = addresses.filter(verified=True)
    mailboxes |= {canonical_mailbox(a) for a in addresses.values_list("email", flat=True)}
    # Accounts an admin made carry their address on the user alone.
    with_rows = EmailAddress.objects.filter(user_id__in=user_ids).values("user_id")
    mailboxes |= {
        canonical_mailbox(e)
        for e in User.objects.filter(pk__in=user_ids).exclude(pk__in=with_rows).values_list("email", flat=True)
        if e
    }
    profiles = list(
        Ambassador.objects.filter(Q(user_id__in=user_ids) | Q(email_canonical__in=mailboxes)).values_list(
            "pk", "email_canonical"
        )
    )
    mailboxes |= {m for _, m in profiles}
    signup_ids = Signup.objects.filter(email_canonical__in=mailboxes).values_list("pk", flat=True)
    accounts = User.objects.filter(pk__in=user_ids)
    return Person(
        accounts_erased=not accounts.exclude(username__startswith=PSEUDONYM_PREFIX, is_active=False).exists(),
        user_ids=tuple(sorted(user_ids)),
        mailboxes=tuple(sorted(mailboxes)),
        ambassador_ids=tuple(sorted(pk for pk, _ in profiles)),
        signup_ids=tuple(sorted(signup_ids)),
    )


def person_summary(person: Person) -> PersonSummary:
    return PersonSummary(
        accounts=len(person.user_ids),
        ambassador_profiles=len(person.ambassador_ids),
        signups=len(person.signup_ids),
        conversions=Conversion.objects.filter(signup_id__in=person.signup_ids).count(),
        grants=_grants(person).count(),
        is_erased=person.is_erased,
        account_ids=person.user_ids,
        is_superuser=User.objects.filter(pk__in=person.user_ids, is_superuser=True).exists(),
    )


def _grants(person: Person) -> Any:
    return RewardGrant.objects.filter(
        Q(ambassador_id__in=person.ambassador_ids) | Q(referee_signup_id__in=person.signup_ids)
    )


def _person_ref(person: Person) -> tuple[str, str]:
    """The audit object a request about a person is filed under: an account, else a signup (ids only)."""
    if person.user_ids:
        return "user", str(person.user_ids[0])
    return "signup", str(person.signup_ids[0]) if person.signup_ids else ""


def _ids(person: Person) -> dict[str, list[int]]:
    return {
        "users": list(person.user_ids),
        "ambassadors": list(person.ambassador_ids),
        "signups": list(person.signup_ids),
    }


# --- Export --------------------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def person_export(*, person: Person, actor: Actor, reason: str = "") -> dict[str, Any]:
    """Everything Parrain holds about the person, as one JSON-ready dict; the export is audited (who asked,
    for which ids, why), never its content. Only this person's rows: the people they referred appear as
    counts, never by address."""
    if not person.found:
        raise NotFound("Nothing is held under this address.")
    users = list(User.objects.filter(pk__in=person.user_ids).order_by("pk"))
    addresses: dict[int, list[dict[str, Any]]] = {}
    for address in EmailAddress.objects.filter(user_id__in=person.user_ids).order_by("pk"):
        addresses.setdefault(address.user_id, []).append(
            {"email": address.email, "verified": address.verified, "primary": address.primary}
        )
    languages = dict(UserPreference.objects.filter(user_id__in=person.user_ids).values_list("user_id", "language"))
    profiles = list(
        Ambassador.objects.filter(pk__in=person.ambassador_ids).select_related("program", "counters").order_by("pk")
    )
    links: dict[int, list[dict[str, str]]] = {}
    for link in ReferralLink.objects.filter(ambassador_id__in=person.ambassador_ids).order_by("pk"):
        links.setdefault(link.ambassador_id, []).append({"channel": link.channel, "code": link.code})
    grants: dict[int, list[dict[str, Any]]] = {}
    welcome: dict[int, list[dict[str, Any]]] = {}
    for grant in _grants(person).select_related("tier").order_by("pk"):
        row = {
            "tier": grant.tier.name,
            "occurrence": grant.occurrence,
            "status": grant.status,
            "voucher_code": grant.voucher_code,
            "unlocked_at": _when(grant.created_at),
            "expires_at": _when(grant.expires_at),
            "redeemed_at": _when(grant.redeemed_at),
            "redeemed_order": grant.redeemed_order,
        }
        if grant.ambassador_id in person.ambassador_ids:
            grants.setdefault(grant.ambassador_id, []).append(row)
        if grant.referee_signup_id in person.signup_ids:
            welcome.setdefault(grant.referee_signup_id, []).append(row)  # type: ignore[arg-type]
    conversions: dict[int, list[dict[str, Any]]] = {}
    for conversion in Conversion.objects.filter(signup_id__in=person.signup_ids).order_by("occurred_at", "pk"):
        conversions.setdefault(conversion.signup_id, []).append(
            {
                "external_id": conversion.external_id,
                "amount": str(conversion.amount),
                "currency": conversion.currency,
                "occurred_at": _when(conversion.occurred_at),
                "status": conversion.status,
            }
        )
    signups = Signup.objects.filter(pk__in=person.signup_ids).select_related("program", "ambassador").order_by("pk")
    digests = {mailbox_digest(m): m for m in person.mailboxes}
    opt_outs = EmailOptOut.objects.filter(mailbox_digest__in=digests).order_by("pk")
    program_slugs = _program_slugs({o.program_id for o in opt_outs})
    data: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": _when(clock.now()),
        "accounts": [
            {
                "id": user.pk,
                "username": user.get_username(),
                "email": user.email,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "date_joined": _when(user.date_joined),
                "last_login": _when(user.last_login),
                "is_active": user.is_active,
                "email_addresses": addresses.get(user.pk, []),
                "language": languages.get(user.pk, ""),
            }
            for user in users
        ],
        "ambassador_profiles": [
            {
                "program": profile.program.slug,
                "program_name": profile.program.name,
                "email": profile.email,
                "display_name": profile.display_name,
                "code": profile.code,
                "link": f"/r/{profile.code}",
                "channel_links": links.get(profile.pk, []),
                "is_active": profile.is_active,
                "created_at": _when(profile.created_at),
                "claimed_at": _when(profile.claimed_at),
                "counts": _counts(profile),
                "rewards": grants.get(profile.pk, []),
            }
            for profile in profiles
        ],
        "signups": [
            {
                "program": signup.program.slug,
                "email": signup.email,
                "external_id": signup.external_id,
                "status": signup.status,
                "reason": signup.reason,
                "method": signup.method,
                "referred_by": signup.ambassador.code if signup.ambassador else None,
                "created_at": _when(signup.created_at),
                "wants_price_news": signup.wants_price_news,
                "conversions": conversions.get(signup.pk, []),
                "welcome_rewards": welcome.get(signup.pk, []),
            }
            for signup in signups
        ],
        "email_opt_outs": [
            {"program": program_slugs.get(o.program_id, ""), "kind": o.kind, "since": _when(o.created_at)}
            for o in opt_outs
        ],
        "emails_sent": [
            {"event": n.event_key, "sent_at": _when(n.sent_at)}
            for n in Notification.objects.filter(recipient__in=person.mailboxes, sent_at__isnull=False).order_by("pk")
        ],
    }
    object_type, object_id = _person_ref(person)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="person.exported",
            object_type=object_type,
            object_id=object_id,
            program_id=None,
            after=_ids(person),
            reason=reason.strip(),
        )
    return data


def _counts(profile: Ambassador) -> dict[str, Any]:
    counters = getattr(profile, "counters", None)
    if counters is None:
        return {"signups": 0, "qualified": 0, "conversions": 0, "converted_amount": "0"}
    return {
        "signups": counters.signups,
        "qualified": counters.qualified,
        "conversions": counters.conversions,
        "converted_amount": str(counters.converted_amount),
    }


def _program_slugs(ids: Iterable[int]) -> dict[int, str]:
    return dict(Program.objects.filter(pk__in=list(ids)).values_list("pk", "slug"))


# --- Erasure -------------------------------------------------------------------------------------------


class _Redactor:
    """Replaces the erased values wherever the trail's before/after, reason or actor label hold them."""

    def __init__(self, whole: dict[str, str], text: dict[str, str]) -> None:
        # Whole values, compared case-insensitively (e-mails, names, ids); substrings of free text.
        self.whole = {k.casefold(): v for k, v in whole.items() if k}
        self.text = sorted(((k, v) for k, v in text.items() if len(k) >= MIN_TEXT_MATCH), key=lambda kv: -len(kv[0]))

    def string(self, value: str) -> str:
        if value.casefold() in self.whole:
            return self.whole[value.casefold()]
        folded = value.casefold()
        for old, new in self.text:
            start = folded.find(old.casefold())
            while start != -1:
                value = value[:start] + new + value[start + len(old) :]
                folded = value.casefold()
                start = folded.find(old.casefold(), start + len(new))
        return value

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.json(v) for k, v in value.items()}
        return value


def _new_pseudonym() -> str:
    return PSEUDONYM_PREFIX + secrets.token_hex(8)


def person_erase(*, person: Person, actor: Actor, reason: str) -> ErasureResult:
    """Pseudonymise everything that identifies the person, in one transaction with its `person.erased`
    event. Idempotent: a person already erased is left as they are and nothing more is recorded."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why this person is erased (the request it answers).", field="reason")
    if not person.found:
        raise NotFound("Nothing is held under this address.")
    if person.is_erased:
        username = User.objects.filter(pk__in=person.user_ids).values_list("username", flat=True).first()
        pseudo = username or person.mailboxes[0].split("@", 1)[0]
        return ErasureResult(pseudonym=pseudo, already_erased=True)
    pseudonym = _new_pseudonym()
    with transaction.atomic():
        # The person's rows, locked in the order of core.locking (signups, then their conversions), so that
        # a review or refund racing the erasure waits, then acts on the pseudonymised rows.
        signups = list(
            Signup.objects.select_for_update(no_key=True, of=("self",)).filter(pk__in=person.signup_ids).order_by("pk")
        )
        conversions = list(
            Conversion.objects.select_for_update(no_key=True, of=("self",))
            .filter(signup_id__in=person.signup_ids)
            .order_by("pk")
        )
        users = list(User.objects.select_for_update().filter(pk__in=person.user_ids).order_by("pk"))
        profiles = list(Ambassador.objects.filter(pk__in=person.ambassador_ids).order_by("pk"))
        grants = list(_grants(person).exclude(redeemed_order="").order_by("pk"))
        addresses = list(EmailAddress.objects.filter(user_id__in=person.user_ids))
        tokens = list(ActorPseudonym.objects.filter(user_id__in=person.user_ids).values_list("token", flat=True))

        # One pseudonymous address per mailbox: the person's rows keep belonging together (a self-referral
        # stays one), and two mailboxes of one person in one program stay two.
        new_address = {
            mailbox: f"{pseudonym}{'' if n == 0 else f'.{n + 1}'}@{ERASED_DOMAIN}"
            for n, mailbox in enumerate(sorted(person.mailboxes))
        }
        base_address = new_address[sorted(person.mailboxes)[0]] if person.mailboxes else f"{pseudonym}@{ERASED_DOMAIN}"

        def address_for(email: str) -> str:
            return new_address.get(canonical_mailbox(email), base_address) if email else ""

        whole: dict[str, str] = {}
        text: dict[str, str] = {}
        for mailbox, new in new_address.items():
            whole[mailbox] = text[mailbox] = new
        for email in (
            [s.email for s in signups]
            + [a.email for a in profiles]
            + [u.email for u in users]
            + [a.email for a in addresses]
        ):
            if email:
                whole[email] = text[email] = address_for(email)
        for profile in profiles:
            whole[profile.display_name] = ERASED_VALUE
        new_usernames: dict[int, str] = {}
        for n, user in enumerate(users):
            new_usernames[user.pk] = pseudonym if n == 0 else f"{pseudonym}.{n + 1}"
            whole[user.get_username()] = text[user.get_username()] = new_usernames[user.pk]
            whole[user.first_name] = whole[user.last_name] = ERASED_VALUE
            full = f"{user.first_name} {user.last_name}".strip()
            if " " in full:
                text[full] = ERASED_VALUE
        new_external: dict[int, str] = {}
        for signup in signups:
            if signup.external_id:
                new_external[signup.pk] = f"{pseudonym}-s{signup.pk}"
                whole[signup.external_id] = text[signup.external_id] = new_external[signup.pk]
        for conversion in conversions:
            new = f"{pseudonym}-c{conversion.pk}"
            whole[conversion.external_id] = text[conversion.external_id] = new
        for grant in grants:
            new = f"{pseudonym}-g{grant.pk}"
            whole[grant.redeemed_order] = text[grant.redeemed_order] = new
        redactor = _Redactor(whole, text)

        redactions = _redactions(person, conversions, tokens, redactor)
        event = audit_record(
            actor=actor,
            action="person.erased",
            object_type="user" if person.user_ids else "signup",
            object_id=person.user_ids[0] if person.user_ids else person.signup_ids[0],
            program_id=None,
            after={
                "pseudonym": pseudonym,
                **_ids(person),
                "conversions": [c.pk for c in conversions],
                "redacted_events": sorted(redactions),
            },
            # The reason is the staff's words about the request: kept, but never with the erased values in it.
            reason=redactor.string(reason),
        )
        if redactions:
            _redact(event.pk, redactions)

        for signup in signups:
            Signup.objects.filter(pk=signup.pk).update(
                email=address_for(signup.email),
                email_canonical=new_address[signup.email_canonical],
                external_id=new_external.get(signup.pk, ""),
                ip_hash="",
                visitor_id="",
            )
        for conversion in conversions:
            # The request hash was taken over a body holding the address: a retry cannot match it any more.
            Conversion.objects.filter(pk=conversion.pk).update(
                external_id=f"{pseudonym}-c{conversion.pk}", request_hash=""
            )
        for grant in grants:
            RewardGrant.objects.filter(pk=grant.pk).update(redeemed_order=f"{pseudonym}-g{grant.pk}")
        for profile in profiles:
            # Inactive: the link stops crediting anyone, the profile leaves leaderboards and contests. Its
            # counters and grants stay as they are, as do the signups it brought.
            Ambassador.objects.filter(pk=profile.pk).update(
                email=address_for(profile.email),
                email_canonical=new_address[profile.email_canonical],
                display_name="",
                is_active=False,
            )
        for user in users:
            user.username = new_usernames[user.pk]
            user.email = address_for(user.email) or base_address
            user.first_name = user.last_name = ""
            # Every session of the account ends at its next request: Django checks each session against a
            # hash of the password, which is gone, and an inactive account is never loaded. (Finding the
            # session rows would mean decoding every session of the site; they expire on their own.)
            user.set_unusable_password()
            user.is_active = user.is_staff = user.is_superuser = False
            user.save()
            user.groups.clear()
            user.user_permissions.clear()
        EmailAddress.objects.filter(user_id__in=person.user_ids).delete()
        UserPreference.objects.filter(user_id__in=person.user_ids).delete()
        # The trail's tokens stop leading back to the account (core.models.ActorPseudonym).
        ActorPseudonym.objects.filter(user_id__in=person.user_ids).delete()
        for mailbox, new in new_address.items():
            Notification.objects.filter(recipient=mailbox).update(recipient=new)
        EmailOptOut.objects.filter(mailbox_digest__in=[mailbox_digest(m) for m in person.mailboxes]).delete()
        # The admin's history names each object it changed by its str(), which for these is an address.
        for model, ids in (
            (User, person.user_ids),
            (Ambassador, person.ambassador_ids),
            (Signup, person.signup_ids),
            (Conversion, [c.pk for c in conversions]),
        ):
            LogEntry.objects.filter(
                content_type=ContentType.objects.get_for_model(model), object_id__in=[str(pk) for pk in ids]
            ).update(object_repr=pseudonym)
    return ErasureResult(
        pseudonym=pseudonym,
        event_id=event.pk,
        counts={
            "accounts": len(users),
            "ambassador_profiles": len(profiles),
            "signups": len(signups),
            "conversions": len(conversions),
            "audit_events_redacted": len(redactions),
        },
    )


def _redactions(
    person: Person, conversions: list[Conversion], tokens: list[str], redactor: _Redactor
) -> dict[int, dict[str, Any]]:
    """The person's audit events (about their rows, or done by them) that hold an erased value, each with
    the columns to rewrite. Events about other people are not read: free text there is not searched."""
    about = (
        Q(object_type="ambassador", object_id__in=[str(pk) for pk in person.ambassador_ids])
        | Q(object_type="signup", object_id__in=[str(pk) for pk in person.signup_ids])
        | Q(object_type="conversion", object_id__in=[str(c.pk) for c in conversions])
        | Q(object_type="reward_grant", object_id__in=[str(pk) for pk in _grants(person).values_list("pk", flat=True)])
        | Q(object_type="user", object_id__in=[str(pk) for pk in person.user_ids])
    )
    if tokens:
        about |= Q(actor_type=AuditEvent.ActorType.USER, actor_id__in=tokens)
    changes: dict[int, dict[str, Any]] = {}
    events = AuditEvent.objects.filter(about).exclude(action="person.erased")
    for event in events.only("pk", "before", "after", "reason", "actor_label", "actor_id"):
        new = {
            "before": redactor.json(event.before),
            "after": redactor.json(event.after),
            "reason": redactor.string(event.reason),
            "actor_label": redactor.string(event.actor_label),
        }
        if event.actor_id in tokens and event.actor_label:
            new["actor_label"] = redactor.whole.get(event.actor_label.casefold(), ERASED_VALUE)
        changed = {k: v for k, v in new.items() if v != getattr(event, k)}
        if changed:
            changes[event.pk] = changed
    return changes


def _redact(erasure_event_id: int, changes: dict[int, dict[str, Any]]) -> None:
    """The one UPDATE the audit trigger permits: of the events `person.erased` lists, in its transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, true)", [REDACTION_SETTING, str(erasure_event_id)])
    for pk, columns in changes.items():
        AuditEvent.objects.filter(pk=pk).update(**columns)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, '', true)", [REDACTION_SETTING])
