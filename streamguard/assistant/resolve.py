"""Which user a question is about, checked against the users the data actually holds.

    >>> resolve_user("Is user manager anomalous?", lookup=source.user)
    Resolved(name='manager', row=UserRow(...))

Candidates are tried in order: the explicit ``user_id``; quoted names (``'svc_backup'``); the word after
"user" or "account"; then the remaining words that are not common English, each as written and lower-cased.
The first one the data holds wins. When none does, the answer is about the name the question most plainly gave
(so it can say "unknown user"), or about nobody when no word stands out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydantic import BaseModel

from streamguard.serve.models import USER_MAX_LENGTH

MAX_LOOKUPS = 16
_NAME = r"[A-Za-z0-9._@-]+"
_QUOTED = re.compile(rf"""['"`‘’“”]({_NAME})['"`‘’“”]""")
_AFTER_KEYWORD = re.compile(rf"""\b(?:user|account|username|login)\s+['"`‘“]?({_NAME})""", re.IGNORECASE)
_WORD = re.compile(_NAME)
COMMON_WORDS = frozenset({
    "a", "about", "account", "activity", "all", "an", "and", "anomalies", "anomalous", "anomaly", "any",
    "are", "as", "at", "be", "been", "behavior", "behaviour", "by", "can", "compromised", "considered",
    "detected", "did", "do", "does", "doing", "explain", "flag", "flagged", "for", "from", "has", "have",
    "how", "i", "in", "is", "it", "its", "like", "login", "look", "looks", "marked", "me", "my", "normal",
    "not", "of", "on", "or", "our", "please", "risky", "score", "should", "show", "status", "suspicious",
    "tell", "that", "the", "there", "this", "to", "user", "username", "users", "was", "we", "were", "what",
    "which", "who", "why", "with", "you",
})


@dataclass(frozen=True)
class Resolved:
    """``name`` the question is about (None: no user named); ``row`` None when the data has no such user."""

    name: str | None
    row: BaseModel | None


def candidates(question: str, user_id: str | None = None) -> tuple[list[str], list[str]]:
    """``(strong, weak)`` names to try: plainly given ones, then other uncommon words."""
    strong = [user_id] if user_id else []
    strong += _QUOTED.findall(question)
    strong += [word for word in map(_clean, _AFTER_KEYWORD.findall(question)) if word.lower() not in COMMON_WORDS]
    weak = [word for word in (_clean(w) for w in _WORD.findall(question))
            if word and word.lower() not in COMMON_WORDS and word not in strong]
    return _unique(strong), _unique(weak)


def resolve_user(question: str, *, lookup: Callable[[str], BaseModel | None],
                 user_id: str | None = None) -> Resolved:
    """The user ``question`` (or ``user_id``, which wins) is about; MAX_LOOKUPS ``lookup`` calls at most."""
    strong, weak = candidates(question, user_id)
    spellings = (v for name in strong + weak for v in (name, name.lower()))
    tries = strong[:1] if user_id else _unique(spellings)
    for name in tries[:MAX_LOOKUPS]:
        if 0 < len(name) <= USER_MAX_LENGTH:
            row = lookup(name)
            if row is not None:
                return Resolved(name=name, row=row)
    if strong:
        return Resolved(name=strong[0], row=None)
    if len(weak) == 1:
        return Resolved(name=weak[0], row=None)
    return Resolved(name=None, row=None)


def _clean(word: str) -> str:
    return word.rstrip(".")


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))
