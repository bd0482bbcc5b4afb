"""Names people type (programs, tiers, links, display names): one line of visible text, checked once.

Such names end up in e-mail subjects, HTTP headers, CSV exports and log lines, where a line break or an
invisible control character does harm (a CRLF in a subject raises BadHeaderError; a bidi override makes a
name read backwards). The services refuse them with a field message, for the admin, the API and the pages.
"""

from __future__ import annotations

import unicodedata

from core.errors import InvalidInput

# Cc: controls (CR, LF, TAB, NUL, ...); Cf: invisible format characters (bidi overrides, soft hyphens);
# Zl/Zp: the Unicode line and paragraph separators; Cs: lone surrogates.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# Two format characters that real names need: the zero-width joiner builds emoji sequences (a family, a
# flag with a sign), and the non-joiner is part of Persian and other scripts' spelling.
ALLOWED_FORMAT = frozenset({"\u200d", "\u200c"})


def _refused(char: str) -> bool:
    return char not in ALLOWED_FORMAT and unicodedata.category(char) in REFUSED_CATEGORIES


def plain_text(value: str | None, *, field: str, max_length: int | None = None, required: bool = False) -> str:
    """The name stripped of surrounding spaces; InvalidInput on `field` if it holds a control character."""
    text = (value or "").strip()
    for char in text:
        if _refused(char):
            raise InvalidInput(
                f"Line breaks and invisible control characters are not allowed (found U+{ord(char):04X}).",
                field=field,
            )
    if required and not text:
        raise InvalidInput("This field may not be blank.", field=field)
    if max_length is not None and len(text) > max_length:
        raise InvalidInput(f"At most {max_length} characters.", field=field)
    return text


def one_line(value: str) -> str:
    """For output built from stored names (an e-mail subject): control characters become spaces.

    Rows written before `plain_text` guarded the inputs may still hold them.
    """
    cleaned = "".join(" " if _refused(c) else c for c in value)
    return " ".join(cleaned.split())
