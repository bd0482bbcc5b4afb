"""OpenAPI schema hooks: each operation documented once, at the path the design names."""

from __future__ import annotations

from typing import Any

# The contract is POST .../signups and GET .../signups/; the same view also answers the other spelling,
# which would otherwise appear twice in the schema with colliding operation ids.
UNDOCUMENTED_SPELLINGS = {
    ("/api/v1/programs/{slug}/signups", "GET"),
    ("/api/v1/programs/{slug}/signups/", "POST"),
}


def drop_duplicate_spellings(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    return [e for e in endpoints if (e[0], e[2]) not in UNDOCUMENTED_SPELLINGS]
