"""One place for the normal forms of what people type: e-mail addresses and referral codes."""

from __future__ import annotations

import re
import secrets

# Referral codes are read aloud, typed from a screenshot or a printed flyer: no 0/O, 1/I/L.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
GENERATED_CODE_LENGTH = 7
VANITY_CODE_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{1,30})[A-Za-z0-9]$")
CODE_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# Folding the look-alikes makes "SETH0" and "SETHO" the same code, so nobody can squat the other.
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def normalise_email(raw: str) -> str:
    """Trim and lower-case: the same mailbox typed twice must be the same signup."""
    return raw.strip().lower()


def generate_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(GENERATED_CODE_LENGTH))


def display_code(raw: str) -> str:
    return raw.strip().upper()


def code_key(raw: str) -> str:
    """The form codes are compared in: case-insensitive, look-alike characters folded."""
    return display_code(raw).translate(_LOOKALIKES)


def is_well_formed_code(raw: str) -> bool:
    return bool(CODE_RE.match(raw.strip()))
