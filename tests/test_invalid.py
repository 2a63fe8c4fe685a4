"""Malformed messages: exact, chunk-independent positions and kinds, and bytes that really are malformed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from streamguard.events import validate_event
from streamguard.synth.invalid import (
    INVALID_KINDS,
    expected_invalid_counts,
    invalid_kind,
    invalid_positions,
    malformed_value,
)

EVENT_JSON = json.dumps({
    "event_id": "evt_0123456789abcdef0123456789abcdef", "timestamp": 1767340800000, "event_type": "dns_query",
    "user": "bob", "source_ip": "10.1.2.3", "destination_ip": "10.0.0.53", "threat_score": 0.05,
    "status": "success",
    "metadata": {
        "hostname": "ws-bob-02", "geo_location": "Paris, FR", "user_agent": None, "session_id": None,
    },
    "dns_details": {"query_name": "github.com", "query_type": "A", "response_code": "NOERROR"},
}, separators=(",", ":"))


@pytest.mark.parametrize(("events", "rate"), [(1000, 0.1), (997, 0.013), (50, 1.0), (12345, 0.5)])
def test_exactly_floor_n_times_rate_positions_are_malformed(events, rate):
    offsets, ordinals = invalid_positions(0, events, rate)
    assert offsets.size == int(np.floor(events * rate))
    assert ordinals.tolist() == list(range(offsets.size))
    assert sum(expected_invalid_counts(events, rate).values()) == offsets.size


def test_zero_rate_means_no_malformed_message():
    offsets, ordinals = invalid_positions(0, 1000, 0.0)
    assert offsets.size == ordinals.size == 0
    assert expected_invalid_counts(1000, 0.0) == dict.fromkeys(INVALID_KINDS, 0)


def test_positions_do_not_depend_on_how_the_stream_is_chunked():
    whole, whole_ordinals = invalid_positions(0, 10_000, 0.037)
    parts, part_ordinals = [], []
    for start in range(0, 10_000, 777):
        offsets, ordinals = invalid_positions(start, min(777, 10_000 - start), 0.037)
        parts.extend((offsets + start).tolist())
        part_ordinals.extend(ordinals.tolist())
    assert parts == whole.tolist()
    assert part_ordinals == whole_ordinals.tolist()


def test_kinds_cycle_so_counts_are_balanced():
    counts = expected_invalid_counts(1000, 0.1)
    assert counts == {"not_json": 17, "truncated_json": 17, "missing_required": 17, "wrong_type": 17,
                      "out_of_range": 16, "empty_value": 16}
    assert [invalid_kind(j) for j in range(7)] == [*INVALID_KINDS, "not_json"]


@pytest.mark.parametrize("kind", ["not_json", "truncated_json", "empty_value"])
def test_unparseable_kinds_are_not_json(kind):
    value = malformed_value(INVALID_KINDS.index(kind), EVENT_JSON)
    with pytest.raises(json.JSONDecodeError):
        json.loads(value)


def test_empty_value_is_empty_bytes():
    assert malformed_value(INVALID_KINDS.index("empty_value"), EVENT_JSON) == b""


@pytest.mark.parametrize(
    ("ordinal", "expected_error"),
    [
        (2, "<root>: 'user' is a required property"),
        (3, "timestamp: 'abc' is not of type 'integer'"),
        (3 + 6, "threat_score: 'high' is not of type 'number'"),
        (4, "threat_score: 1.7 is greater than the maximum of 1"),
        (4 + 6, "event_type: 'unknown_type' is not one of"),
    ],
)
def test_parseable_kinds_fail_validation_for_the_intended_reason(ordinal, expected_error):
    assert validate_event(json.loads(EVENT_JSON)) == []
    errors = validate_event(json.loads(malformed_value(ordinal, EVENT_JSON)))
    assert any(e.startswith(expected_error) for e in errors), errors


def test_not_json_starts_with_a_letter_so_lenient_parsers_cannot_read_a_leading_number():
    assert malformed_value(0, EVENT_JSON)[:1].isalpha()
