"""The one text type at the API edge: what any string field, query value or header may hold.

Refused everywhere (422 with the field's name), so SQLite and PostgreSQL see the same input:
- control characters (Unicode Cc: NUL, which PostgreSQL cannot store, ESC, DEL, ...); free
  text (`multiline=True`) may hold tab, LF and CR;
- surrogates, private-use and unassigned code points, and noncharacters (U+FFFE, ...);
- bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069), which make a name
  display as something else ("\u202egnp.exe");
- values with nothing visible in them (only spaces, format characters such as U+200B,
  combining marks).
Edge whitespace is stripped before the length bounds are checked.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from annotated_types import GroupedMetadata
from pydantic import AfterValidator, StringConstraints

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MULTILINE_ALLOWED = frozenset("\t\n\r")
# Categories that draw nothing on their own: a value made only of these is invisible.
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cf", "Mn", "Me", "Cc"})


def _is_noncharacter(char: str) -> bool:
    code = ord(char)
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why `value` is not acceptable text, or None when it is."""
    visible = False
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc" and not (multiline and char in _MULTILINE_ALLOWED):
            return f"must not contain control characters (found U+{ord(char):04X})"
        if category in ("Cs", "Co", "Cn") or _is_noncharacter(char):
            return f"must not contain unassigned, private-use or surrogate code points (U+{ord(char):04X})"
        if char in _BIDI_CONTROLS:
            return f"must not contain bidirectional override characters (U+{ord(char):04X})"
        visible = visible or category not in _INVISIBLE_CATEGORIES
    if value and not visible:
        return "must contain visible characters"
    return None


@dataclass(frozen=True)
class SafeText(GroupedMetadata):
    """Metadata for one API string field: `name: Annotated[str, SafeText(max_length=100)]`.

    Edge whitespace is stripped (unless strip=False, e.g. passwords) before the bounds apply.
    """

    max_length: int
    min_length: int | None = None
    multiline: bool = False
    strip: bool = True

    def __iter__(self) -> Iterator[object]:
        yield StringConstraints(
            strip_whitespace=self.strip, min_length=self.min_length, max_length=self.max_length
        )
        yield AfterValidator(self._check)

    def _check(self, value: str) -> str:
        problem = text_problem(value, multiline=self.multiline)
        if problem is not None:
            raise ValueError(problem)
        return value
