"""What a reason may show of a wrong value: its JSON type and size, or the value itself.

Reasons travel to logs and dead-letter headers, which are not patient data stores: a field
kind's `display` says whether a wrong value may be quoted. Identifying fields and free text
(`Display.HIDDEN`, the default) are described by JSON type and size only ("a string of 14
characters", "a number of 13 digits"); closed vocabularies quote a short code-like value
and timestamps quote a short date-like string, since a typo there is what a person needs
to see.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

import orjson


class Display(Enum):
    """What a reason may show of a wrong value of a field."""

    HIDDEN = "hidden"  # may identify a patient or a stay, or is free text: type and size only
    VOCABULARY = "vocabulary"  # a closed vocabulary: a short code-like string or small integer
    TIMESTAMP = "timestamp"  # a short string of digits and date/time separators


# A vocabulary value worth quoting: short, word characters and a few separators, no '@',
# and no run of more than MAX_DIGIT_RUN digits (INS, RPPS, phone numbers, dates of birth).
MAX_SHOWN_LENGTH = 40
MAX_DIGIT_RUN = 5
_VOCABULARY_RE = re.compile(r"[\w.:/+ -]+")
_LONG_DIGIT_RUN_RE = re.compile(rf"[0-9]{{{MAX_DIGIT_RUN + 1},}}")
# A date typo worth quoting: digits, separators and punctuation, no letter but T and Z.
_DATE_LIKE_RE = re.compile(r"[0-9TtZz:/.,;_+ -]*[0-9][0-9TtZz:/.,;_+ -]*")
_DATE_SEPARATOR_RE = re.compile(r"[-:/]")


def shown(value: Any) -> str:
    """The value as the producer sent it, shortened. Only for values `displayable` allows."""
    text = orjson.dumps(value).decode() if _jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def described(value: Any) -> str:
    """What was found by JSON type and size, never the value: 'a string of 14 characters',
    'a number of 13 digits', 'an object with 2 keys', 'an array of 1 item'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean true" if value else "a boolean false"
    if isinstance(value, int):
        return f"a number of {_count(len(str(abs(value))), 'digit')}"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        if not value:
            return "an empty string"
        blank = "" if value.strip() else "blank "
        return f"a {blank}string of {_count(len(value), 'character')}"
    if isinstance(value, list):
        return f"an array of {_count(len(value), 'item')}" if value else "an empty array"
    if isinstance(value, dict):
        return f"an object with {_count(len(value), 'key')}" if value else "an empty object"
    return f"a value of type {type(value).__name__}"


def displayable(value: Any, display: Display) -> bool:
    """Whether a reason may quote `value` found in a field shown as `display`."""
    if display is Display.VOCABULARY:
        if isinstance(value, int) and not isinstance(value, bool):
            return len(str(abs(value))) <= MAX_DIGIT_RUN
        return (
            isinstance(value, str)
            and len(value) <= MAX_SHOWN_LENGTH
            and _VOCABULARY_RE.fullmatch(value) is not None
            and _LONG_DIGIT_RUN_RE.search(value) is None
        )
    if display is Display.TIMESTAMP:
        return (
            isinstance(value, str)
            and len(value) <= MAX_SHOWN_LENGTH
            and _DATE_LIKE_RE.fullmatch(value) is not None
            and _DATE_SEPARATOR_RE.search(value) is not None
        )
    return False


def found(value: Any, display: Display = Display.HIDDEN) -> str:
    """'a string "abc"' when `display` allows quoting it, else 'a string of 3 characters'."""
    if value is None or isinstance(value, bool) or not displayable(value, display):
        return described(value)
    return f"{json_type_name(value)} {shown(value)}"


def quoted_or_described(value: Any, display: Display) -> str:
    """'"2023-01-12"' or '(a string of 50 characters)': to name a value inside a sentence."""
    return shown(value) if displayable(value, display) else f"({described(value)})"


def typo(value: str, display: Display) -> str:
    """'"12/01/2023"' or 'a string of 50 characters': a string found instead of a format."""
    return shown(value) if displayable(value, display) else described(value)
