"""The API's JSON parser: DRF's, with bodies nested too deep for Python's decoder refused as bad input."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # `[[[[...]]]]` a few thousand deep exhausts the decoder's stack: the client's fault, not a 500.
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
