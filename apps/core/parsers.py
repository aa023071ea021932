"""The API's only parser: JSON whose text can be stored and hashed, at a bounded depth.

Its own module because DRF reads DEFAULT_PARSER_CLASSES while rest_framework.views is imported,
which apps.core.api itself imports.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.parsers import JSONParser

# Deeper than any body of the API; a deeper one costs every recursive walk (serializers, the
# idempotency fingerprint, the event payload) and ends in a RecursionError, i.e. a 500.
MAX_JSON_DEPTH = 32


def _refuse_unstorable_text(data: Any) -> None:
    """Refuse what the client sent that cannot be stored or hashed: a lone surrogate ("\\ud800"
    has no UTF-8 encoding), a NUL (PostgreSQL text and jsonb cannot hold it), nesting deeper
    than MAX_JSON_DEPTH. Iterative, so that the walk itself cannot overflow the stack."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise exceptions.ParseError("Text may not contain a NUL character.")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise exceptions.ParseError("Text may not contain a lone surrogate.") from None
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise exceptions.ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            pending.extend((item, depth + 1) for item in items)


class ApiJSONParser(JSONParser):
    """The only parser of the API: JSON whose text can be stored, at a bounded depth."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # json's decoder on a body nested thousands deep
            raise exceptions.ParseError(
                f"JSON nested deeper than {MAX_JSON_DEPTH} levels."
            ) from None
        _refuse_unstorable_text(data)
        return data
