"""Whether a model's wording of an answer says what the facts say; the template answer stands when it does not.

    rejection = check_reply(text, facts, grounding=[draft, question], known_user=lambda name: ...)
    # None, or Rejection(reason, detail) with reason missing_score | wrong_verdict | wrong_figure | other_user

Checks, in order:

* ``missing_score``: the user's anomaly score, with three decimals as the draft writes it, is quoted.
* ``wrong_verdict``: a flagged user is not called normal ("is not anomalous", "looks benign", "nothing
  unusual", "does not exceed the threshold", "below the threshold"), nor a normal user anomalous ("is
  flagged", "was compromised", "exceeds the threshold").
* ``wrong_figure``: every number in the text is one of the facts' numbers or the draft's, written with any
  precision (0.6 and 0.600; 2 for 2.1 standard deviations) or as a percentage (52.3% for 0.523). A score
  of another user, a made-up feature value, an off-by-ten count all fail.
* ``other_user``: no word of the text that is not in the draft or the question is a user of the run, as
  written or lower-cased (``known_user`` answers that; at most :data:`MAX_NAME_LOOKUPS` look-ups).

These are heuristics on free text, tuned to err on the side of the template: a reply they wrongly refuse
costs only the wording, a reply they wrongly let through would tell an analyst something false.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from streamguard.assistant.llm import Rejection
from streamguard.assistant.resolve import COMMON_WORDS

MAX_NAME_LOOKUPS = 48
_GAP = r"(?:\s+[\w.,'’-]+){0,3}?"  # up to three words between a verb and what it says
_NEGATION = re.compile(r"\b(?:not|never|no longer|hardly)\b|n[’']t\b", re.IGNORECASE)
_FLAGGED_WORD = r"anomalous|flagged|suspicious|compromised|malicious|an?\s+anomaly|an?\s+outlier|risky"
_CLEAR_WORD = r"normal|benign|clean|unremarkable|harmless|legitimate|fine|safe"
_CLAIM = re.compile(
    rf"\b(?P<verb>is|was|isn[’']t|wasn[’']t|looks|appears|seems|remains|considered|deemed)(?P<gap>{_GAP})\s+"
    rf"(?P<word>{_FLAGGED_WORD}|{_CLEAR_WORD})\b", re.IGNORECASE)
_PLAIN_DENIAL = re.compile(
    rf"\b(?:not|never)\s+(?:{_FLAGGED_WORD})\b"
    r"|\b(?:nothing|no\s+(?:signs?|evidence|indications?)\s+of)(?:\s+[\w-]+){0,2}?\s+"
    r"(?:anomal\w*|suspicious|unusual|wrong|concern\w*)\b", re.IGNORECASE)
_BELOW = re.compile(
    r"\b(?:does\s+not|doesn[’']t|did\s+not|didn[’']t|not|never)\s+(?:exceed|surpass|cross|reach|pass|above|over)\w*"
    rf"|\b(?:below|under|beneath|short\s+of)(?:\s+the)?{_GAP}\s+threshold", re.IGNORECASE)
_ABOVE = re.compile(
    rf"(?P<before>\b[\w’']+\s+)?\b(?:exceeds|exceeded|exceeding|surpasses|surpassed|crosses|crossed|above|over)"
    rf"(?:\s+the)?{_GAP}\s+threshold", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(%?)(?![\w])")
_WORD = re.compile(r"[\w@-]+(?:[.'’][\w@-]+)*")


def check_reply(text: str, facts: Mapping[str, Any], *, grounding: Iterable[str] = (),
                known_user: Callable[[str], bool]) -> Rejection | None:
    """Why ``text`` contradicts ``facts`` (the facts sent to the model), or None when it does not.

    ``grounding``: texts whose numbers and words the reply may repeat (the draft answer, the question).
    """
    sources = list(grounding)
    score = f"{facts['anomaly_score']:.3f}"
    if score not in text:
        return Rejection("missing_score", f"the anomaly score {score} is not quoted")
    verdict = _verdict_problem(text, flagged=bool(facts["is_anomalous"]))
    if verdict is not None:
        return Rejection("wrong_verdict", verdict)
    allowed = set(_numbers_in_facts(facts))
    for source in sources:
        allowed.update(value for value, _tolerance in _numbers_in_text(source))
    for (value, tolerance), written in zip(_numbers_in_text(text), _NUMBER.finditer(text), strict=True):
        if not any(abs(value - fact) <= tolerance for fact in allowed):
            return Rejection("wrong_figure", f"{written.group(0)!r} is none of the facts' figures")
    other = _other_user(text, str(facts["user"]), sources, known_user)
    if other is not None:
        return Rejection("other_user", f"names user {other!r}, the question is about {facts['user']!r}")
    return None


def _verdict_problem(text: str, *, flagged: bool) -> str | None:
    """A phrase of ``text`` that says the opposite of ``flagged``, quoted, or None."""
    for phrase, says_flagged in _verdicts(text):
        if says_flagged != flagged:
            return f"{phrase!r} for a user the detector {'flagged' if flagged else 'did not flag'}"
    return None


def _verdicts(text: str) -> Iterator[tuple[str, bool]]:
    """``(phrase, says the user is flagged)`` for each verdict ``text`` states."""
    for claim in _CLAIM.finditer(text):
        negated = bool(_NEGATION.search(claim.group("verb") + claim.group("gap")))
        flagged_word = re.fullmatch(_FLAGGED_WORD, claim.group("word"), re.IGNORECASE) is not None
        yield claim.group(0), flagged_word != negated
    for denial in _PLAIN_DENIAL.finditer(text):
        yield denial.group(0), False
    for below in _BELOW.finditer(text):
        yield below.group(0), False
    for above in _ABOVE.finditer(text):
        if not _NEGATION.search(above.group("before") or ""):
            yield above.group(0).strip(), True


def _numbers_in_text(text: str) -> Iterator[tuple[float, float]]:
    """``(value, tolerance)`` of each number written in ``text``: a percentage as a fraction, the tolerance
    half a unit of its last written digit, so that 0.6 stands for anything that rounds to it."""
    for match in _NUMBER.finditer(text):
        whole, decimals, percent = match.groups()
        value = float(whole.replace(",", "") + (decimals or ""))
        tolerance = 0.5 * 10.0 ** -(len(decimals) - 1 if decimals else 0) + 1e-9
        scale = 100.0 if percent else 1.0
        yield value / scale, tolerance / scale


def _numbers_in_facts(facts: Any) -> Iterator[float]:
    if isinstance(facts, bool):
        return
    if isinstance(facts, int | float):
        if math.isfinite(facts):
            yield abs(float(facts))
    elif isinstance(facts, Mapping):
        for value in facts.values():
            yield from _numbers_in_facts(value)
    elif isinstance(facts, list | tuple):
        for value in facts:
            yield from _numbers_in_facts(value)


def _other_user(text: str, user: str, sources: list[str], known_user: Callable[[str], bool]) -> str | None:
    """A user of the run that ``text`` names besides ``user``, or None."""
    seen = {user, user.lower()} | COMMON_WORDS
    for source in sources:
        seen.update(word.lower() for word in _WORD.findall(source))
    lookups = 0
    for word in dict.fromkeys(_WORD.findall(text)):
        for spelling in dict.fromkeys((word, word.lower())):
            if spelling.lower() in seen or spelling in seen or lookups >= MAX_NAME_LOOKUPS:
                continue
            lookups += 1
            if known_user(spelling):
                return spelling
    return None
