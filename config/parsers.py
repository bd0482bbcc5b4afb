"""The API's JSON parser: DRF's, refusing as bad input what would otherwise fail deeper as a 500."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # `[[[[...]]]]` a few thousand deep exhausts the decoder's stack: the client's fault, not a 500.
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
        if _holds_nul(data):
            # PostgreSQL refuses NUL in text, so a `\u0000` reaching a query or a row fails there as a 500;
            # no field of ours has a use for one. Keys count too: they end up in filters and JSON columns.
            raise ParseError("JSON parse error - a string holds a NUL character (\\u0000), which is not accepted.")
        return data


def _holds_nul(data: Any) -> bool:
    # A loop, not recursion: the body may be nested as deep as the decoder allowed.
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
