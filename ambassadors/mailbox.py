"""The canonical mailbox of an e-mail address, and whether its domain is a throw-away one.

Self-referral and duplicate-signup checks compare this form (stored, indexed, never used for sending).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import idna
from disposable_email_domains import blocklist


@dataclass(frozen=True, slots=True)
class Rule:
    """How one provider routes local-part variants to the same mailbox."""

    # Where the mailbox name stops: everything from the first separator on is a free-form tag.
    separators: str = "+"
    # Characters the provider ignores in the mailbox name (Gmail: dots; Proton: dots, dashes, underscores).
    ignored: str = ""
    # The provider's other domains are aliases of this one (googlemail.com is gmail.com).
    domain: str | None = None
    # `anything@user.fastmail.com` is delivered to `user@fastmail.com`.
    subdomain_addressing: bool = False


# RFC 5233 sub-addressing (`a+tag@`) is supported by most providers and by the usual self-hosted servers
# (Postfix, Exim, Dovecot). For a fraud check a false merge only costs a manual review, while a missed
# one pays out a reward twice, so every domain not listed below loses its `+tag` too.
DEFAULT_RULE = Rule()

_GMAIL = Rule(ignored=".", domain="gmail.com")
_FASTMAIL = Rule(subdomain_addressing=True)
_OUTLOOK = Rule()  # `+tag` only: dots are significant, and hotmail/outlook/live are separate namespaces.
_ICLOUD = Rule(domain="icloud.com")  # Apple gives every me.com/mac.com name the same icloud.com name.
# Proton's own clients drop `+tag` and `. - _` when they compare addresses (WebClients removeEmailAlias).
_PROTON = Rule(ignored="._-", domain="proton.me")
# Yahoo disposable addresses are `base-keyword@`; Yahoo names cannot contain `-` or `+` themselves.
_YAHOO = Rule(separators="-+")

PROVIDERS: dict[str, Rule] = {
    "gmail.com": _GMAIL,
    "googlemail.com": _GMAIL,
    "fastmail.com": _FASTMAIL,
    "fastmail.fm": _FASTMAIL,
    "outlook.com": _OUTLOOK,
    "hotmail.com": _OUTLOOK,
    "live.com": _OUTLOOK,
    "msn.com": _OUTLOOK,
    "outlook.fr": _OUTLOOK,
    "hotmail.fr": _OUTLOOK,
    "live.fr": _OUTLOOK,
    "hotmail.co.uk": _OUTLOOK,
    "icloud.com": _ICLOUD,
    "me.com": _ICLOUD,
    "mac.com": _ICLOUD,
    "proton.me": _PROTON,
    "protonmail.com": _PROTON,
    "protonmail.ch": _PROTON,
    "pm.me": _PROTON,
    "yahoo.com": _YAHOO,
    "yahoo.fr": _YAHOO,
    "yahoo.co.uk": _YAHOO,
    "yahoo.de": _YAHOO,
    "ymail.com": _YAHOO,
    "rocketmail.com": _YAHOO,
}

# RFC 5322 dot-atom: what a quoted local part may contain and still mean the same unquoted.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
# A local part that is one quoted-string from end to end (with backslash quoted-pairs inside).
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
# What the idna package raises on a label it cannot encode (too long, disallowed code point, lone surrogate).
_IDNA_ERRORS = (idna.IDNAError, UnicodeError, ValueError)


def canonical_domain(domain: str) -> str:
    """Lower-case ASCII (IDNA) form of a domain, trailing dot removed; garbage comes back lower-cased."""
    domain = _trim(domain.lower())
    if domain.isascii():
        return domain
    # UTS #46 maps what browsers map (full-width dots, case, compatibility forms). STD3 rules make it
    # refuse to map look-alikes of `@` or spaces into the domain, which would change how it splits.
    with contextlib.suppress(*_IDNA_ERRORS):
        domain = idna.uts46_remap(domain, std3_rules=True, transitional=False)
    labels = []
    for label in domain.split("."):
        if label.isascii():
            labels.append(label)
            continue
        try:
            labels.append(idna.alabel(label).decode("ascii"))
        except _IDNA_ERRORS:
            labels.append(label)  # Not a valid IDN label: keep it, still comparable once lower-cased.
    return _trim(".".join(labels))


def _trim(domain: str) -> str:
    # Strip whitespace and trailing dots until neither is left: `b . .` must not need a second pass.
    while domain != (trimmed := domain.strip().rstrip(".")):
        domain = trimmed
    return domain


def _apply_rule(local: str, rule: Rule) -> str:
    name = local
    for index, char in enumerate(name):
        if char in rule.separators:
            name = name[:index]
            break
    for char in rule.ignored:
        name = name.replace(char, "")
    name = name.strip()  # `a +x@` must not leave `a ` behind, which the next pass would trim.
    # `+tag@x` or `...@gmail.com` would lose its whole name: keep it as typed rather than an empty mailbox.
    return name or local


def canonical_mailbox(address: str) -> str:
    """The form two addresses are compared in: equal forms mean the mail lands in the same mailbox.

    Never raises: whatever is not an address comes back trimmed and lower-cased.
    """
    address = address.strip()
    local, at, domain = address.rpartition("@")  # The domain has no `@`; a quoted local part may.
    if not at:
        return address.lower()
    # RFC 5321 makes local parts case-sensitive, but no provider we know of delivers `Ana@` and `ana@`
    # to different people, and Django's EmailValidator only lets ASCII through, so lower() is exact here.
    local = local.strip().lower()
    domain = canonical_domain(domain)

    if _QUOTED.fullmatch(local):
        inner = local[1:-1]
        if not _DOT_ATOM.fullmatch(inner):
            # `"ana b"@x` only exists quoted: keep it whole, no provider rule applies to it.
            return f"{local}@{domain}"
        local = inner  # `"ana"@x` is `ana@x`.
    elif '"' in local:
        # Half-quoted garbage: rules could turn it into a quoted string and change the result on re-run.
        return f"{local}@{domain}"

    rule = PROVIDERS.get(domain)
    if rule is None:
        head, _, parent = domain.partition(".")
        parent_rule = PROVIDERS.get(parent)
        # Only a plain name becomes a local part: `"a".fastmail.com` would read as quoted on the next pass.
        if parent_rule is not None and parent_rule.subdomain_addressing and _DOT_ATOM.fullmatch(head):
            local, domain, rule = head, parent, parent_rule
        else:
            rule = DEFAULT_RULE
    return f"{_apply_rule(local, rule)}@{rule.domain or domain}"


def is_disposable(address_or_domain: str) -> bool:
    """True when the domain, or any domain it is a subdomain of, is on the disposable-domains list."""
    _, _, domain = address_or_domain.rpartition("@")
    labels = canonical_domain(domain).split(".")
    # `mail.mailinator.com` is as throw-away as `mailinator.com`: test every parent, down to two labels.
    return any(".".join(labels[start:]) in blocklist for start in range(len(labels) - 1))
