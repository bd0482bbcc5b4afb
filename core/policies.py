"""Who may do what (design section 5): one function per action, asked alike by the API, the admin, pages
and commands.

A caller is a `Principal`, built once per request: a signed-in user, an API key of one program with its
scopes, the operator running a management command, or nobody. Each `may_*` function returns a
`Decision`; the HTTP layer turns a refusal into 401 (nobody identified), 403 (identified, not allowed)
or 404 (not theirs to see, nor to know it exists). Roles come from core.roles. This module imports no
app: programs, ambassadors and keys are read by their attributes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from core import roles


class Outcome(enum.Enum):
    ALLOW = "allow"
    UNAUTHENTICATED = "unauthenticated"  # 401: nobody identified
    FORBIDDEN = "forbidden"  # 403: identified, without the right
    HIDDEN = "hidden"  # 404: not theirs, and not theirs to know it exists


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str = ""

    def __bool__(self) -> bool:
        return self.outcome is Outcome.ALLOW


ALLOW = Decision(Outcome.ALLOW)
UNAUTHENTICATED = Decision(Outcome.UNAUTHENTICATED, "Authentication credentials were not provided.")


def _forbidden(reason: str = "You do not have the right to do this.") -> Decision:
    return Decision(Outcome.FORBIDDEN, reason)


class ProgramLike(Protocol):
    @property
    def pk(self) -> Any: ...


class AmbassadorLike(Protocol):
    @property
    def program_id(self) -> Any: ...

    @property
    def user_id(self) -> Any: ...


@dataclass(frozen=True)
class Principal:
    """Who is asking: at most one of a user and a key; the operator is the shell running a command."""

    user: Any = None
    key_program_id: int | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    is_api_key: bool = False
    is_operator: bool = False

    @classmethod
    def anonymous(cls) -> Principal:
        return cls()

    @classmethod
    def operator(cls) -> Principal:
        """Whoever runs manage.py has the database already: every action is theirs."""
        return cls(is_operator=True)

    @classmethod
    def for_user(cls, user: Any) -> Principal:
        if user is None or not getattr(user, "is_authenticated", False):
            return cls.anonymous()
        return cls(user=user)

    @classmethod
    def for_api_key(cls, *, program_id: int, scopes: Iterable[str]) -> Principal:
        return cls(key_program_id=program_id, scopes=frozenset(scopes), is_api_key=True)

    @classmethod
    def from_request(cls, request: Any) -> Principal:
        # request.auth is the bearer ApiKey (ambassadors.auth) or None: sessions leave it None, and a
        # plain Django request (pages, admin) has no such attribute. Read by its attributes, as core
        # imports no app.
        key = getattr(request, "auth", None)
        if key is not None and hasattr(key, "program_id") and hasattr(key, "scopes"):
            # Authentication refuses revoked keys already; a revoked one reaching here carries no right.
            scopes = () if getattr(key, "revoked_at", None) is not None else key.scopes
            return cls.for_api_key(program_id=key.program_id, scopes=scopes)
        return cls.for_user(getattr(request, "user", None))

    @property
    def is_authenticated(self) -> bool:
        return self.user is not None

    @property
    def is_marketing(self) -> bool:
        return self.user is not None and roles.is_marketing(self.user)

    @property
    def is_auditor(self) -> bool:
        return self.user is not None and roles.is_auditor(self.user)

    @property
    def is_staff_member(self) -> bool:
        return self.user is not None and roles.is_staff_member(self.user)

    @property
    def is_superuser(self) -> bool:
        return self.user is not None and bool(getattr(self.user, "is_superuser", False))


def _key_or_role(
    principal: Principal, program: ProgramLike, *, scopes: tuple[str, ...], role: Callable[[Principal], bool]
) -> Decision:
    """A key of this program carrying one of `scopes`, or a signed-in user for whom `role` holds."""
    if principal.is_operator:
        return ALLOW
    if principal.is_api_key:
        if principal.key_program_id != program.pk:
            return _forbidden("This API key belongs to another program.")
        if not principal.scopes.intersection(scopes):
            return _forbidden(f"This API key needs the scope {' or '.join(scopes)}.")
        return ALLOW
    if not principal.is_authenticated:
        return UNAUTHENTICATED
    return ALLOW if role(principal) else _forbidden()


def _role(principal: Principal, role: Callable[[Principal], bool], reason: str) -> Decision:
    """A signed-in user with `role`; keys never, whatever their scopes."""
    if principal.is_operator:
        return ALLOW
    if principal.is_api_key:
        return _forbidden(reason)
    if not principal.is_authenticated:
        return UNAUTHENTICATED
    return ALLOW if role(principal) else _forbidden(reason)


def _marketing(p: Principal) -> bool:
    return p.is_marketing


def _auditor(p: Principal) -> bool:
    return p.is_auditor


def _staff(p: Principal) -> bool:
    return p.is_staff_member


def _superuser(p: Principal) -> bool:
    return p.is_superuser


# --- Programs and tiers: marketing staff, or a `manage` key of the program ---------------------------


def may_list_programs(principal: Principal) -> Decision:
    """Marketing sees every program; a `manage` key sees its own (program_scope says which)."""
    if principal.is_api_key:
        return ALLOW if "manage" in principal.scopes else _forbidden("This API key needs the scope manage.")
    return _role(principal, _marketing, "Only marketing staff manage programs.")


def program_scope(principal: Principal) -> int | None:
    """The one program a key is confined to, or None when the principal's rights span programs."""
    return principal.key_program_id if principal.is_api_key else None


def may_use_staff_console(principal: Principal) -> Decision:
    """/staff/: marketing staff (programs, tiers, contests, analytics). Keys never: pages use the session."""
    return _role(principal, _marketing, "Only marketing staff use the staff console.")


def may_create_program(principal: Principal) -> Decision:
    return _role(principal, _marketing, "Only marketing staff create programs.")


def may_manage_program(principal: Principal, program: ProgramLike) -> Decision:
    """Read and change a program's settings and its reward tiers."""
    return _key_or_role(principal, program, scopes=("manage",), role=_marketing)


def may_manage_contests(principal: Principal, program: ProgramLike) -> Decision:
    """Create, read and change a program's contests (their standing is read as its leaderboard is)."""
    return _key_or_role(principal, program, scopes=("manage",), role=_marketing)


def may_manage_webhooks(principal: Principal, program: ProgramLike) -> Decision:
    """Configure a program's webhook endpoints, see their secrets and deliveries, resend one: marketing
    staff, or a `manage` key of the program (the integration that receives them)."""
    return _key_or_role(principal, program, scopes=("manage",), role=_marketing)


def may_manage_stripe(principal: Principal, program: ProgramLike) -> Decision:
    """Connect a program to Stripe: set or rotate its webhook signing secret and API key, switch vouchers as
    promotion codes on or off. Marketing staff only; keys never (a key must not reroute payments' events)."""
    return _role(principal, _marketing, "Only marketing staff connect a program to Stripe.")


def may_manage_api_keys(principal: Principal, program: ProgramLike) -> Decision:
    """Create or revoke a program's keys: a key opens the program to an integration, so only a superuser
    or the operator (`manage.py create_api_key`)."""
    return _role(principal, _superuser, "Only a superuser manages API keys.")


# --- Ambassadors -------------------------------------------------------------------------------------


def may_enroll_ambassador(principal: Principal, program: ProgramLike) -> Decision:
    """A shop enrols its customers with a `track` or `manage` key; marketing may too."""
    return _key_or_role(principal, program, scopes=("track", "manage"), role=_marketing)


def may_see_ambassador(principal: Principal, ambassador: AmbassadorLike) -> Decision:
    """An ambassador sees their own stats and rewards; a `read` key of the program and staff see anyone's."""
    if principal.is_authenticated and principal.user.pk == ambassador.user_id:
        return ALLOW
    if principal.is_authenticated and not principal.is_staff_member:
        # Another customer's data: not theirs to see, and not theirs to know it exists.
        return Decision(Outcome.HIDDEN, "No ambassador with this code in this program.")
    return may_read_stats(principal, _Program(ambassador.program_id))


def may_read_stats(principal: Principal, program: ProgramLike) -> Decision:
    """Analytics of a program: a `read` key of it, or staff."""
    return _key_or_role(principal, program, scopes=("read",), role=_staff)


def may_read_leaderboard(principal: Principal, program: Any) -> Decision:
    """Public when the program says so; otherwise as its stats."""
    if program.leaderboard_public:
        return ALLOW
    return may_read_stats(principal, program)


def may_use_dashboard(principal: Principal) -> Decision:
    """The signed-in person's own ambassadorships (/api/v1/me, /dashboard/)."""
    if principal.is_api_key:
        return _forbidden("/me is for a signed-in person, not an API key.")
    if principal.is_operator or principal.is_authenticated:
        return ALLOW
    return UNAUTHENTICATED


# --- Tracking, attribution and fraud review ----------------------------------------------------------


def may_track(principal: Principal, program: ProgramLike) -> Decision:
    """Record signups and conversions: a `track` key of the program, or staff."""
    return _key_or_role(principal, program, scopes=("track",), role=_staff)


def may_refund(principal: Principal, program: ProgramLike) -> Decision:
    """Reverse a conversion: the shop's `track` key, or an admin."""
    return _key_or_role(principal, program, scopes=("track",), role=_auditor)


def may_read_conversion(principal: Principal, program: ProgramLike) -> Decision:
    """One recorded conversion: the shop's `track` or `read` key, or staff."""
    return _key_or_role(principal, program, scopes=("track", "read"), role=_staff)


def may_read_attributions(principal: Principal, program: ProgramLike) -> Decision:
    """Filter and page a program's signups and how each was credited: a `read` key, or an admin."""
    return _key_or_role(principal, program, scopes=("read",), role=_auditor)


def may_override(principal: Principal, program: ProgramLike) -> Decision:
    """Reassign or unassign a signup: admins only, never a key, never marketing (design 5)."""
    return _role(principal, _auditor, "Only admins (auditors) override attributions.")


def may_review(principal: Principal, program: ProgramLike | None = None) -> Decision:
    """Approve or reject a signup held for review: an admin, or a `manage` key of the program.

    Without a program it asks about reviewing at all, as the admin does before offering its actions.
    """
    if program is None:
        return _role(principal, _auditor, "Only admins (auditors) review signups.")
    return _key_or_role(principal, program, scopes=("manage",), role=_auditor)


def may_read_audit(principal: Principal) -> Decision:
    """The audit trail: admins only."""
    return _role(principal, _auditor, "Only admins (auditors) read the audit trail.")


# --- Rewards -----------------------------------------------------------------------------------------


def may_redeem_grant(principal: Principal, grant: Any = None) -> Decision:
    """Mark a voucher used: marketing staff, who run the rewards. `grant` None asks about grants at all."""
    return _role(principal, _marketing, "Only marketing staff mark vouchers redeemed.")


def may_check_voucher(principal: Principal, program: ProgramLike) -> Decision:
    """Look a voucher up at checkout (valid? what does it give?): the shop's `track` key, a `read` or
    `manage` key of the program, or marketing staff."""
    return _key_or_role(principal, program, scopes=("track", "read", "manage"), role=_marketing)


def may_redeem_voucher(principal: Principal, program: ProgramLike) -> Decision:
    """Redeem a voucher for an order: the shop's `track` key at checkout, a `manage` key, or marketing staff
    (who mark vouchers redeemed from the admin too)."""
    return _key_or_role(principal, program, scopes=("track", "manage"), role=_marketing)


@dataclass(frozen=True)
class _Program:
    pk: Any


# --- Commerce: the embedded dashboard, waitlists --------------------------------------------------------


def may_issue_embed_token(principal: Principal, program: ProgramLike) -> Decision:
    """Mint a token that frames one ambassador's dashboard inside the business's product: the business's
    back end with a `manage` key of the program, or marketing staff."""
    return _key_or_role(principal, program, scopes=("manage",), role=_marketing)


def may_manage_waitlist(principal: Principal, program: ProgramLike | None = None) -> Decision:
    """See a program's waitlist with every subscriber's place, export it, change its settings, admit the
    first in line: marketing staff, from the staff console (keys never: pages use the session)."""
    return _role(principal, _marketing, "Only marketing staff manage waitlists.")


# --- Paying cash rewards (rewards.services.payouts) --------------------------------------------------


def may_manage_payouts(principal: Principal, program: ProgramLike | None = None) -> Decision:
    """See a program's payouts and balances, download their files, create a run, mark it paid, change the
    payout settings: marketing staff, from the staff console. Keys never: money moves from a person's session."""
    if principal.is_api_key:
        return _forbidden("Payouts are made from the staff console only.")
    return may_use_staff_console(principal)


def may_read_payouts(principal: Principal, program: ProgramLike) -> Decision:
    """Read a program's payout runs and their lines (the API, for the business's accounting): marketing
    staff, or a `manage` key of the program. Reading only: creating a run and marking it paid stay
    may_manage_payouts', from a person's session."""
    return _key_or_role(principal, program, scopes=("manage",), role=_marketing)


def may_set_payout_details(principal: Principal) -> Decision:
    """An ambassador sets their own bank details (their page finds only their own ambassadorship)."""
    return may_use_dashboard(principal)


# --- Privacy (GDPR): a person's data exported or erased (rewards.services.privacy) -----------------


def _is_self(principal: Principal, subject: Any) -> bool:
    return principal.is_authenticated and subject is not None and principal.user.pk == getattr(subject, "pk", None)


def may_export_person(principal: Principal, subject: Any = None) -> Decision:
    """A copy of everything Parrain holds about a person: the person themselves (`subject` is their
    account), or an admin answering a request. `subject` None asks about looking people up at all."""
    if principal.is_operator:
        return ALLOW
    if principal.is_api_key:
        return _forbidden("A person's data is exported from a signed-in session, never with an API key.")
    if not principal.is_authenticated:
        return UNAUTHENTICATED
    if _is_self(principal, subject) or principal.is_auditor:
        return ALLOW
    return _forbidden("Only admins (auditors) export another person's data.")


def may_erase_person(principal: Principal, subject: Any = None) -> Decision:
    """Erase a person (pseudonymise what identifies them): the person themselves, or an admin.

    A staff account never erases itself from the self-service page: it would lock its holder out of the
    consoles it runs (possibly the last superuser), so another admin decides it. Only a superuser (or the
    operator) erases a superuser's account. `subject` None is a person without an account (a referee
    known by e-mail only) or the question whether to offer erasure at all.
    """
    if principal.is_operator:
        return ALLOW
    if principal.is_api_key:
        return _forbidden("A person is erased from a signed-in session, never with an API key.")
    if not principal.is_authenticated:
        return UNAUTHENTICATED
    if _is_self(principal, subject):
        if principal.is_staff_member or principal.is_superuser or getattr(principal.user, "is_staff", False):
            return _forbidden("A staff account is erased by another admin, from the audit console.")
        return ALLOW
    if not principal.is_auditor:
        return _forbidden("Only admins (auditors) erase another person.")
    if subject is not None and getattr(subject, "is_superuser", False) and not principal.is_superuser:
        return _forbidden("Only a superuser erases a superuser's account.")
    return ALLOW
