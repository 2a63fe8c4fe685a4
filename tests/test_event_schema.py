"""The event JSON Schema and the validator."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamguard.events import (
    DETAILS_FIELD,
    EVENT_SCHEMA,
    EVENT_TYPES,
    STATUSES,
    geo_location,
    validate_event,
)
from streamguard.synth.invalid import INVALID_KINDS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"

EVENT = {
    "event_id": "evt_0123456789abcdef0123456789abcdef",
    "timestamp": 1767340800000,
    "event_type": "auth_attempt",
    "user": "alice",
    "source_ip": "10.1.2.3",
    "destination_ip": "10.0.0.10",
    "threat_score": 0.12,
    "status": "failed",
    "metadata": {
        "hostname": "ws-alice-01", "geo_location": "Berlin, DE", "user_agent": None, "session_id": None,
    },
    "auth_details": {"auth_type": "password", "failure_reason": "invalid_password", "attempts_count": 2},
}


def event(**changes: object) -> dict:
    out = copy.deepcopy(EVENT)
    out.update(changes)
    return out


def valid_lines() -> list[str]:
    return (FIXTURES / "valid_sample.jsonl").read_text(encoding="utf-8").splitlines()


def test_schema_is_draft_2020_12_with_an_id_and_the_same_enums_as_the_constants():
    assert EVENT_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert EVENT_SCHEMA["$id"].endswith("event.schema.json")
    assert tuple(EVENT_SCHEMA["$defs"]["event_type"]["enum"]) == EVENT_TYPES
    assert tuple(EVENT_SCHEMA["properties"]["status"]["enum"]) == STATUSES
    own_details = {
        branch["if"]["properties"]["event_type"]["const"]: branch["then"]["required"]
        for branch in EVENT_SCHEMA["allOf"] if "event_type" in branch["if"].get("properties", {})
    }
    assert own_details == {kind: [details] for kind, details in DETAILS_FIELD.items()}


def test_schema_constants_match_the_contracts_and_the_parser():
    from streamguard.contracts import columns
    from streamguard.events import parse

    assert EVENT_TYPES == columns.EVENT_TYPES
    assert STATUSES == columns.STATUSES
    assert DETAILS_FIELD == parse.DETAILS_FIELD


def test_a_complete_event_is_valid():
    assert validate_event(EVENT) == []


def test_valid_fixture_lines_all_validate_and_cover_every_type_and_variant():
    lines = valid_lines()
    events = [json.loads(line) for line in lines]
    for line, parsed in zip(lines, events, strict=True):
        assert validate_event(parsed) == [], line
    assert {e["event_type"] for e in events} == set(EVENT_TYPES)
    assert any(line.startswith('{"location"') for line in lines)
    assert any(line.count('"status":') == 2 for line in lines)


def test_invalid_fixture_values_are_not_json_or_fail_validation_and_cover_every_kind():
    rows = [json.loads(line) for line in (FIXTURES / "invalid_sample.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in rows} == set(INVALID_KINDS)
    for row in rows:
        try:
            parsed = json.loads(row["value"])
        except json.JSONDecodeError:
            continue
        assert validate_event(parsed), row["kind"]


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"threat_score": 1.7}, "threat_score"),
        ({"threat_score": -0.1}, "threat_score"),
        ({"threat_score": "high"}, "threat_score"),
        ({"timestamp": "abc"}, "timestamp"),
        ({"timestamp": 1.5}, "timestamp"),
        ({"event_type": "unknown_type"}, "event_type"),
        ({"status": "ok"}, "status"),
        ({"event_id": "evt_XYZ"}, "event_id"),
        ({"auth_details": {"auth_type": "password", "failure_reason": None, "attempts_count": -1}},
         "auth_details.attempts_count"),
    ],
)
def test_out_of_range_or_mistyped_fields_are_reported_with_their_path(changes, path):
    errors = validate_event(event(**changes))
    assert errors
    assert any(e.startswith(f"{path}: ") for e in errors), errors


def test_ports_must_fit_in_16_bits():
    net = event(event_type="network_connection", network_details={
        "protocol": "TCP", "source_port": 50000, "destination_port": 70000,
        "bytes_sent": 1, "bytes_received": 2, "duration_ms": 3,
    })
    del net["auth_details"]
    assert [e for e in validate_event(net) if e.startswith("network_details.destination_port")]
    net["network_details"]["destination_port"] = 443
    assert validate_event(net) == []


def test_missing_required_fields_are_reported():
    broken = event()
    del broken["user"]
    assert validate_event(broken) == ["<root>: 'user' is a required property"]


def test_event_type_requires_its_own_details_and_ignores_the_others():
    assert validate_event(event(event_type="dns_query"))  # carries auth_details, lacks dns_details
    # Other types' details are ignored like unknown fields: null (Jackson), zero-valued (Go), or anything.
    for other in ({"query_name": "a.example", "query_type": "A", "response_code": "NOERROR"}, None,
                  {"query_name": "", "query_type": "", "response_code": ""}, 7):
        assert validate_event(event(dns_details=other)) == []
    no_details = event()
    del no_details["auth_details"]
    assert any("auth_details" in e for e in validate_event(no_details))


def test_flat_top_level_location_replaces_metadata_geo_location():
    flat = event(location="Lagos, NG")
    del flat["metadata"]["geo_location"]
    assert validate_event(flat) == []
    assert geo_location(flat) == "Lagos, NG"


def test_location_is_required_somewhere():
    nowhere = event()
    del nowhere["metadata"]["geo_location"]
    assert any("geo_location" in e for e in validate_event(nowhere))


def test_metadata_stays_required_even_with_a_flat_location():
    bare = event(location="Lagos, NG")
    del bare["metadata"]
    assert "<root>: 'metadata' is a required property" in validate_event(bare)


def test_geo_location_prefers_metadata_and_is_none_when_absent():
    assert geo_location(event(location="Lagos, NG")) == "Berlin, DE"
    assert geo_location({"metadata": {}}) is None
    assert geo_location({"metadata": None, "location": 3}) is None


def test_a_repeated_key_is_accepted_and_the_last_occurrence_wins():
    text = json.dumps(EVENT)
    stale_first = '{"threat_score": 1.7, ' + text[1:]
    assert validate_event(json.loads(stale_first)) == []
    bad_last = text[:-1] + ', "threat_score": 1.7}'
    assert validate_event(json.loads(bad_last))


def test_validate_event_rejects_non_objects():
    assert validate_event([1, 2]) == ["<root>: [1, 2] is not of type 'object'"]


def test_importing_the_schema_module_does_not_import_pyspark_or_jsonschema():
    root = Path(__file__).resolve().parent.parent
    # A bare package object keeps the package's own __init__ (and whatever it imports) out of the picture.
    code = (
        "import sys, types\n"
        f"pkg = types.ModuleType('streamguard'); pkg.__path__ = [{str(root / 'streamguard')!r}]\n"
        "sys.modules['streamguard'] = pkg\n"
        "import streamguard.events.schema\n"
        "print('pyspark' in sys.modules, 'jsonschema' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.split() == ["False", "False"]
