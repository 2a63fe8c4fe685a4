"""The open vocabulary inside the ``*_details`` objects, and the report's count of the words it does not know.

``network_details.protocol``, ``file_details.operation`` and ``process_details.user_privileges`` hold words that
real producers spell their own way (``tcp``, ``Admin``, ``MODIFY``, ``SCTP``). The contract does not quarantine
them: ``event.schema.json`` lists the known words as ``examples``, the parser accepts any string, and every word
that is not a known one in some letter case is counted per field in the run report (``unknown_detail_words``).

    >>> unknown_word("network_connection", "Tcp")     # known, in another letter case
    >>> unknown_word("network_connection", "SCTP")
    'SCTP'

Both engines count with :func:`unknown_words_sql` over the parser's output, so they give the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from streamguard.events.schema import EVENT_SCHEMA

TOP_WORDS = 20
"""The report lists at most this many unknown words per field (the most frequent; ties by word)."""

WORD_FIELDS: dict[str, tuple[str, str]] = {
    "network_connection": ("network_details", "protocol"),
    "file_access": ("file_details", "operation"),
    "process_execution": ("process_details", "user_privileges"),
}
"""Event type -> (details object, field) holding an open-vocabulary word."""

FIELD_NAMES: tuple[str, ...] = tuple(f"{details}.{name}" for details, name in WORD_FIELDS.values())

KNOWN_WORDS: dict[str, frozenset[str]] = {
    event_type: frozenset(word.casefold() for word in EVENT_SCHEMA["$defs"][details]["properties"][name]["examples"])
    for event_type, (details, name) in WORD_FIELDS.items()
}
"""Event type -> the known words of its vocabulary field, case-folded (from the schema's ``examples``)."""
_SPELLED_AS_DOCUMENTED: dict[str, frozenset[str]] = {
    event_type: frozenset(EVENT_SCHEMA["$defs"][details]["properties"][name]["examples"])
    for event_type, (details, name) in WORD_FIELDS.items()
}


def unknown_word(event_type: str, word: str) -> str | None:
    """``word`` as written when it is not a known word of ``event_type``'s vocabulary field (in any letter case)."""
    if word in _SPELLED_AS_DOCUMENTED.get(event_type, ()):  # the common case, without case-folding
        return None
    known = KNOWN_WORDS.get(event_type)
    if known is None or word.casefold() in known:
        return None
    return word


def unknown_words_sql(table: str, top: int = TOP_WORDS) -> str:
    """SQL (DuckDB and Spark) over the parser's output: per event type, the ``top`` most frequent unknown words.

    Rows: event_type, word, records (of that word), field_records and field_distinct (of every unknown word of
    the type). Ordered by count, then by word (UTF-8 byte order in both engines).
    """
    return f"""
        WITH words AS (
            SELECT event_type, unknown_detail_word AS word, COUNT(*) AS records
            FROM {table} WHERE unknown_detail_word IS NOT NULL GROUP BY event_type, unknown_detail_word
        ), ranked AS (
            SELECT event_type, word, records,
                   ROW_NUMBER() OVER (PARTITION BY event_type ORDER BY records DESC, word ASC) AS rank,
                   SUM(records) OVER (PARTITION BY event_type) AS field_records,
                   COUNT(*) OVER (PARTITION BY event_type) AS field_distinct
            FROM words
        )
        SELECT event_type, word, records, field_records, field_distinct FROM ranked WHERE rank <= {int(top)}
    """


def unknown_words_summary(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The report's ``unknown_detail_words`` from :func:`unknown_words_sql`'s rows: every field, unknown or not.

    ``{"network_details.protocol": {"records": 3, "distinct": 2, "top": {"SCTP": 2, "gre": 1}}, ...}``
    """
    summary: dict[str, dict[str, Any]] = {name: {"records": 0, "distinct": 0, "top": {}} for name in FIELD_NAMES}
    ordered = sorted(rows, key=lambda row: (row["event_type"], -int(row["records"]), row["word"].encode("utf-8")))
    for row in ordered:
        details, name = WORD_FIELDS[row["event_type"]]
        entry = summary[f"{details}.{name}"]
        entry["records"] = int(row["field_records"])
        entry["distinct"] = int(row["field_distinct"])
        entry["top"][row["word"]] = int(row["records"])
    return summary
