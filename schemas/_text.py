"""Shared constraints for identifiers and short labels on the wire."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# Control characters (C0, DEL, C1) are refused in ids: they break logs, keys and terminals.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

ID_MAX_LEN = 128
LABEL_MAX_LEN = 64


def _no_control_chars(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


Identifier = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=ID_MAX_LEN),
    AfterValidator(_no_control_chars),
]
"""An id such as user_id, track_id or event_id: 1 to 128 characters, no control characters."""

IDENTIFIER_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\s](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s])?$"
"""What an `Identifier` is once validated (no control characters, nothing to strip): for ids that
arrive outside a model, such as a path parameter or a token's `sub`, which must be taken as is."""
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


def is_identifier(value: str) -> bool:
    """True when `value` is an `Identifier` exactly as given.

    >>> is_identifier("ana"), is_identifier(" ana"), is_identifier("a\x85"), is_identifier("x" * 129)
    (True, False, False, False)
    >>> is_identifier("ana\\n")  # Python's `$` would match before a final newline: fullmatch
    False
    """
    return len(value) <= ID_MAX_LEN and _IDENTIFIER.fullmatch(value) is not None


Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=LABEL_MAX_LEN),
    AfterValidator(_no_control_chars),
]
"""A short free-text label (genre, device, mood)."""
