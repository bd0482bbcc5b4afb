"""The canonical mailbox: per-provider cases, disposable domains, and properties over arbitrary input."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from ambassadors.mailbox import PROVIDERS, canonical_mailbox, is_disposable

# (typed, canonical) per provider: each row is a variant that must land on the same mailbox.
SAME_MAILBOX = [
    # Gmail: dots and +tag ignored, googlemail.com is gmail.com.
    ("ana@gmail.com", "ana@gmail.com"),
    ("a+x@gmail.com", "a@gmail.com"),
    ("a.n.a@gmail.com", "ana@gmail.com"),
    ("A.N.A+promo@GoogleMail.com", "ana@gmail.com"),
    ("ana@googlemail.com", "ana@gmail.com"),
    ('"ana"@gmail.com', "ana@gmail.com"),
    ('"a.n.a+x"@gmail.com', "ana@gmail.com"),
    ("  Ana@GMAIL.COM.  ", "ana@gmail.com"),
    # Fastmail: +tag, and subdomain addressing.
    ("ana+shop@fastmail.com", "ana@fastmail.com"),
    ("shop@ana.fastmail.com", "ana@fastmail.com"),
    ("Ana.B+x@FastMail.fm", "ana.b@fastmail.fm"),
    # Outlook / Hotmail / Live: +tag only, dots kept, domains kept apart.
    ("ana+x@outlook.com", "ana@outlook.com"),
    ("Ana.B+x@Hotmail.com", "ana.b@hotmail.com"),
    ("ana+x@live.com", "ana@live.com"),
    # iCloud: +tag, me.com and mac.com are icloud.com.
    ("ana+x@icloud.com", "ana@icloud.com"),
    ("ana@me.com", "ana@icloud.com"),
    ("Ana+x@Mac.com", "ana@icloud.com"),
    # Proton: +tag, `. - _` ignored, every Proton domain is proton.me.
    ("ana+x@proton.me", "ana@proton.me"),
    ("a.n-a_@protonmail.com", "ana@proton.me"),
    ("ana@pm.me", "ana@proton.me"),
    ("ana@protonmail.ch", "ana@proton.me"),
    # Yahoo: `-` is the disposable-address separator.
    ("ana-shop@yahoo.com", "ana@yahoo.com"),
    ("Ana.B-x@YMail.com", "ana.b@ymail.com"),
    ("ana+x@yahoo.fr", "ana@yahoo.fr"),
    # Every other domain: +tag removed, case folded, dots and dashes kept.
    ("ana+promo@example.org", "ana@example.org"),
    ("ANA@Example.ORG", "ana@example.org"),
    ("ana-b@example.org", "ana-b@example.org"),
    ("ana@example.org.", "ana@example.org"),
    ("\tana@example.org\n", "ana@example.org"),
    ('"ana"@example.org', "ana@example.org"),
    ('"Ana+x"@example.org', "ana@example.org"),
    # Quoted local parts with special characters only exist quoted: kept whole, lower-cased.
    ('"Ana B"@example.org', '"ana b"@example.org'),
    ('"a@b"@example.org', '"a@b"@example.org'),
    ('"a..b"@example.org', '"a..b"@example.org'),
    # IDN domains in their ASCII form, whatever form they were typed in.
    ("ana@münchen.de", "ana@xn--mnchen-3ya.de"),
    ("ana@MÜNCHEN.DE", "ana@xn--mnchen-3ya.de"),
    ("ana@xn--mnchen-3ya.de", "ana@xn--mnchen-3ya.de"),
    ("ana@例え。テスト", "ana@xn--r8jz45g.xn--zckzah"),
    # A separator that would leave no name keeps the name as typed.
    ("+x@example.org", "+x@example.org"),
    ("...@gmail.com", "...@gmail.com"),
]

# Pairs that must stay different mailboxes.
DIFFERENT_MAILBOXES = [
    ("ana@example.org", "ana.b@example.org"),
    ("a.na@example.org", "ana@example.org"),  # Dots only fold on Gmail and Proton.
    ("a.na@outlook.com", "ana@outlook.com"),
    ("ana@hotmail.com", "ana@outlook.com"),
    ("ana-x@example.org", "ana@example.org"),  # `-` only separates on Yahoo.
    ("ana-x@gmail.com", "ana@gmail.com"),
    ("ana@gmail.com", "ana@gmail.co"),
    ("ana@yahoo.com", "ana@ymail.com"),
    ('"ana b"@example.org', "anab@example.org"),
    ("ana@mail.example.org", "ana@example.org"),  # Subdomain addressing is Fastmail's only.
]


@pytest.mark.parametrize(("typed", "expected"), SAME_MAILBOX)
def test_canonical_mailbox(typed: str, expected: str) -> None:
    assert canonical_mailbox(typed) == expected


@pytest.mark.parametrize(("left", "right"), DIFFERENT_MAILBOXES)
def test_different_mailboxes_stay_different(left: str, right: str) -> None:
    assert canonical_mailbox(left) != canonical_mailbox(right)


@pytest.mark.parametrize("garbage", ["", "   ", "not an address", "@", "ANA@", "@Example.ORG", "a@b@C.com", '"ana'])
def test_garbage_comes_back_trimmed_and_lower_cased(garbage: str) -> None:
    assert canonical_mailbox(garbage) == canonical_mailbox(garbage.lower())
    assert canonical_mailbox(garbage) == canonical_mailbox(garbage).strip().lower()


def test_provider_table_is_lower_case_ascii() -> None:
    for domain, rule in PROVIDERS.items():
        assert domain == domain.lower() and domain.isascii()
        assert rule.domain is None or rule.domain in PROVIDERS


@pytest.mark.parametrize(
    "value",
    [
        "mailinator.com",
        "MAILINATOR.COM",
        "mailinator.com.",
        "x@mailinator.com",
        "x@mail.mailinator.com",
        "X@Deep.Mail.Mailinator.COM.",
        " x@mailinator.com ",
        "mail.mailinator.com",
    ],
)
def test_disposable_domains_and_their_subdomains(value: str) -> None:
    assert is_disposable(value)


def test_disposable_idn_is_matched_in_ascii_form() -> None:
    # The list stores IDNs in punycode: `yahóo.com` is on it as `xn--yaho-sqa.com`.
    assert is_disposable("xn--yaho-sqa.com")
    assert is_disposable("ana@yah\u00f3o.com")
    assert is_disposable("ana@sub.YAH\u00d3O.com.")


@pytest.mark.parametrize(
    "value",
    [
        "gmail.com",
        "ana@gmail.com",
        "example.org",
        "proton.me",
        "outlook.com",
        "münchen.de",
        "ana@mailinator.com.example.org",
        "",
        "com",
    ],
)
def test_not_disposable(value: str) -> None:
    assert not is_disposable(value)


# Strings that exercise quotes, separators, IDN mapping and whitespace more than plain text would.
tricky_text = st.text(
    alphabet=st.sampled_from(list('@."+-_ \\\t') + ["a", "B", "é", "Ü", "。", "＠", "ß", "İ", "x", "\u3000", "ﬀ"]),
    max_size=20,
)
any_text = st.one_of(st.text(), tricky_text)


@settings(max_examples=500)
@given(any_text)
@example('"a"+x@gmail.com')
@example('x@"a".fastmail.com')
@example("a +x@example.org")
@example("a@b . .")
@example("a@b＠c.com")
def test_canonical_mailbox_never_raises_and_is_idempotent(text: str) -> None:
    once = canonical_mailbox(text)
    assert isinstance(once, str)
    assert canonical_mailbox(once) == once


@settings(max_examples=300)
@given(any_text)
def test_is_disposable_never_raises(text: str) -> None:
    assert is_disposable(text) in (True, False)


@settings(max_examples=300)
@given(st.emails())
def test_case_does_not_matter_for_real_addresses(address: str) -> None:
    assert canonical_mailbox(address.upper()) == canonical_mailbox(address.lower()) == canonical_mailbox(address)


@settings(max_examples=300)
@given(st.text(alphabet=string.printable))
def test_case_does_not_matter_for_any_ascii_text(text: str) -> None:
    # ASCII only: Unicode upper()/lower() are not inverses (`ß`.upper() is `SS`), and local parts are ASCII.
    assert canonical_mailbox(text.upper()) == canonical_mailbox(text.lower())


def _ats_outside_quotes(address: str) -> int:
    count, quoted, escaped = 0, False, False
    for char in address:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "@" and not quoted:
            count += 1
    return count


@settings(max_examples=300)
@given(st.emails())
def test_real_addresses_keep_one_at_outside_quotes(address: str) -> None:
    canonical = canonical_mailbox(address)
    assert _ats_outside_quotes(canonical) == 1
    assert canonical.rpartition("@")[2] == canonical.rpartition("@")[2].lower()


@settings(max_examples=200)
@given(
    st.emails(), st.sampled_from(sorted(PROVIDERS)), st.text(alphabet=string.ascii_letters + string.digits, max_size=8)
)
def test_plus_tag_never_makes_a_new_mailbox(address: str, provider: str, tag: str) -> None:
    local = address.rpartition("@")[0].split("+")[0].split("-")[0]
    assume(any(char.isalnum() for char in local))  # A name made only of ignored characters is kept as typed.
    for domain in (provider, address.rpartition("@")[2]):
        assert canonical_mailbox(f"{local}+{tag}@{domain}") == canonical_mailbox(f"{local}@{domain}")
