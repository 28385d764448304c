"""Password policy after NIST SP 800-63B (5.1.1.2): length and a blocklist, no composition rules.

- The password is normalised with NFKC (what is hashed, too), and its length is counted in
  code points after that: "e" + U+0301 is one character, not two.
- 12 to 128 characters; not only whitespace; no control characters.
- Not a common or breached password (common_passwords.txt, shipped with the service), also not
  one padded with digits or punctuation ("Password123!"), and not a short unit repeated
  ("abcabcabcabc", "passwordpassword") or a run of few distinct characters.
- Not context-specific: the email address or its local part, the user's name, the service.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources

from app.kernel.errors import InvalidInputError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128  # bounds the hashing cost an attacker can ask for
MIN_DISTINCT_CHARACTERS = 5
_CONTEXT_WORDS = ("reference-service", "referenceservice", "reference service")
# Digits, punctuation and symbols people pad a common word with.
_PADDING = re.compile(r"^[\W\d_]*(?P<core>.*?)[\W\d_]*$")
_REPEATED_UNIT = re.compile(r"^(?P<unit>.{1,16}?)(?P=unit)+$", re.DOTALL)


def normalize_password(password: str) -> str:
    """The form that is checked and hashed: NFKC (NIST 800-63B 5.1.1.2)."""
    return unicodedata.normalize("NFKC", password)


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        _comparable(line) for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def _comparable(value: str) -> str:
    return unicodedata.normalize("NFKC", value).casefold()


def password_problems(password: str, *, email: str, name: str | None = None) -> list[str]:
    """What is wrong with `password` for this user, in words ([] when it is acceptable)."""
    normalized = normalize_password(password)
    if len(normalized) < MIN_PASSWORD_LENGTH:
        return [f"must be at least {MIN_PASSWORD_LENGTH} characters long"]
    if len(normalized) > MAX_PASSWORD_LENGTH:
        return [f"must be at most {MAX_PASSWORD_LENGTH} characters long"]
    if not normalized.strip():
        return ["must not be only whitespace"]
    if any(unicodedata.category(char) == "Cc" for char in normalized):
        return ["must not contain control characters"]
    problems: list[str] = []
    folded = _comparable(normalized).strip()
    core = _PADDING.match(folded)
    core_text = core.group("core") if core else folded
    blocked = common_passwords()
    if folded in blocked or core_text in blocked or _REPEATED_UNIT.match(core_text or folded):
        problems.append("is too common: choose a longer passphrase that is not a known password")
    elif len(set(folded)) < MIN_DISTINCT_CHARACTERS:
        problems.append(f"must use at least {MIN_DISTINCT_CHARACTERS} different characters")
    local_part = email.split("@", 1)[0].casefold()
    context = {email.casefold(), local_part, *_CONTEXT_WORDS}
    if name and len(name.strip()) >= 4:
        context.add(_comparable(name).strip())
    if folded in context or core_text in context:
        problems.append("must not be the email address, the user's name or the service's name")
    return problems


def check_password_policy(password: str, *, email: str, name: str | None = None) -> None:
    problems = password_problems(password, email=email, name=name)
    if problems:
        raise InvalidInputError("Password does not meet the policy", {"password": problems})
