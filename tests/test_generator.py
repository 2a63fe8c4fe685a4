"""The synthetic stream: determinism, distributions, validity, anomalies, ground truth, keys, time order."""

from __future__ import annotations

import functools
import json
import operator
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from streamguard.errors import DataError
from streamguard.events import EVENT_TYPES, geo_location, validate_event
from streamguard.synth import (
    BEHAVIOURS,
    INVALID_KINDS,
    REFERENCE_END_MS,
    GroundTruth,
    SynthConfig,
    generate_messages,
    ground_truth,
    load_truth,
)
from streamguard.synth.chunks import pack, unpack
from streamguard.synth.generator import build_chunk, build_packed_chunk, iter_chunks
from streamguard.synth.parallel import parallel_chunks
from streamguard.synth.users import NAMED_USERS

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def stream() -> list[tuple[bytes, bytes, int]]:
    """20k clean messages with the default population (one chunk, built in-process)."""
    return list(generate_messages(20_000, seed=42, workers=0))


@pytest.fixture(scope="module")
def events(stream) -> list[dict]:
    return [json.loads(value) for _, value, _ in stream]


@pytest.fixture(scope="module")
def by_user(events) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        out[e["user"]].append(e)
    return out


@pytest.fixture(scope="module")
def truth() -> GroundTruth:
    return ground_truth(20_000, seed=42)


def test_same_parameters_give_identical_bytes_and_a_different_seed_does_not(stream):
    again = list(generate_messages(20_000, seed=42, workers=0))
    assert again == stream
    other = list(generate_messages(20_000, seed=43, workers=0))
    assert [v for _, v, _ in other] != [v for _, v, _ in stream]


def test_chunks_built_by_worker_processes_are_identical_to_serial_ones(tmp_path: Path):
    config = SynthConfig(events=7_000, seed=5, invalid_rate=0.02, key="event_id")
    serial = list(iter_chunks(config, workers=0, chunk_size=1_000))
    parallel = list(parallel_chunks(
        functools.partial(build_chunk, config, chunk_size=1_000),
        remote=functools.partial(build_packed_chunk, config, tmp_path, chunk_size=1_000), receive=unpack,
        count=7, workers=2, method="spawn", caller_builds=False,
    ))
    assert [c.index for c in parallel] == list(range(7))
    assert [list(c.messages()) for c in parallel] == [list(c.messages()) for c in serial]
    assert sum(len(c.values) for c in parallel) == 7_000
    assert list(tmp_path.iterdir()) == []  # every packed chunk file was consumed


def test_iter_chunks_with_workers_matches_in_process_output():
    config = SynthConfig(events=5_000, seed=6)
    serial = [m for chunk in iter_chunks(config, workers=0, chunk_size=500) for m in chunk.messages()]
    shared = [m for chunk in iter_chunks(config, workers=2, chunk_size=500) for m in chunk.messages()]
    assert shared == serial


def test_pack_and_unpack_round_trip_a_chunk(tmp_path: Path):
    chunk = build_chunk(SynthConfig(events=300, seed=2, invalid_rate=0.1), 0)
    back = unpack(pack(chunk, tmp_path))
    assert back.keys == chunk.keys and back.values == chunk.values
    assert back.timestamps.tolist() == chunk.timestamps.tolist()
    assert b"" in back.values


def test_every_valid_event_validates_against_the_schema():
    messages = list(generate_messages(6_000, seed=9, invalid_rate=0.05, workers=0))
    valid = 0
    for _, value, _ in messages:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            continue
        if "user" in parsed and isinstance(parsed["timestamp"], int) and parsed["threat_score"] != 1.7 \
                and parsed["event_type"] in EVENT_TYPES and isinstance(parsed["threat_score"], float):
            assert validate_event(parsed) == [], value
            valid += 1
    assert valid == ground_truth(6_000, seed=9, invalid_rate=0.05).valid_events


def test_event_type_mix_is_near_the_target(events):
    counts = Counter(e["event_type"] for e in events)
    shares = {t: counts[t] / len(events) for t in EVENT_TYPES}
    # Anomalous users add a few auth/file/process-heavy events on top of the 40/25/20/10/5 mix.
    target = dict(zip(EVENT_TYPES, (0.40, 0.25, 0.20, 0.10, 0.05), strict=True))
    for t in EVENT_TYPES:
        assert abs(shares[t] - target[t]) < 0.04, (t, shares)


def test_status_is_mostly_success_and_threat_scores_are_mostly_low(events, by_user, truth):
    normal = [e for u, es in by_user.items() if truth.behaviour_of(u) is None for e in es]
    status = Counter(e["status"] for e in normal)
    assert 0.90 < status["success"] / len(normal) < 0.96
    assert status["failed"] > status["blocked"] > 0
    scores = np.array([e["threat_score"] for e in normal])
    assert 0.07 < scores.mean() < 0.13
    assert np.quantile(scores, 0.99) < 0.45
    assert min(e["threat_score"] for e in events) >= 0.0
    assert max(e["threat_score"] for e in events) <= 1.0


def test_timestamps_lie_in_the_span_never_decrease_and_are_the_kafka_timestamps(stream, events):
    kafka_ts = [ts for _, _, ts in stream]
    assert kafka_ts == [e["timestamp"] for e in events]
    assert all(a <= b for a, b in zip(kafka_ts, kafka_ts[1:], strict=False))
    assert kafka_ts[0] >= REFERENCE_END_MS - 7 * DAY_MS
    assert kafka_ts[-1] < REFERENCE_END_MS


def test_chunks_cover_consecutive_time_windows():
    config = SynthConfig(events=6_000, seed=3, days=3)
    chunks = list(iter_chunks(config, workers=0, chunk_size=1_000))
    stamps = np.concatenate([c.timestamps for c in chunks])
    assert np.all(np.diff(stamps) >= 0)
    assert stamps[0] >= REFERENCE_END_MS - 3 * DAY_MS
    assert stamps[-1] < REFERENCE_END_MS
    assert chunks[0].timestamps[-1] < REFERENCE_END_MS - 2 * DAY_MS  # the first sixth lies in the first day


def test_activity_is_mostly_in_office_hours_on_weekdays(by_user, truth):
    hours = Counter()
    weekend = 0
    normal = [e for u, es in by_user.items() if truth.behaviour_of(u) is None for e in es]
    for e in normal:
        seconds = e["timestamp"] // 1000
        hours[(seconds // 3600) % 24] += 1
        weekend += ((seconds // 86_400) + 3) % 7 >= 5  # 1970-01-01 was a Thursday (weekday 3)
    office = sum(hours[h] for h in range(8, 18)) / len(normal)
    night = sum(hours[h] for h in range(0, 6)) / len(normal)
    assert office > 0.75
    assert 0.0 < night < 0.05
    assert 0.0 < weekend / len(normal) < 0.15


def test_keys_default_to_the_user_name_and_can_be_the_event_id(stream, events):
    assert all(key == e["user"].encode() for (key, _, _), e in zip(stream, events, strict=True))
    by_id = list(generate_messages(500, seed=42, key="event_id", workers=0))
    assert all(key == json.loads(value)["event_id"].encode() for key, value, _ in by_id)


def test_malformed_messages_are_keyed_by_the_user_they_replaced():
    messages = list(generate_messages(3_000, seed=4, invalid_rate=0.5, workers=0))
    names = set(NAMED_USERS) | {f"user_{i:04d}" for i in range(21, 51)}
    assert all(key.decode() in names for key, _, _ in messages)
    assert b"" in {value for _, value, _ in messages}


def test_per_user_volume_is_uneven(by_user):
    counts = sorted(len(es) for es in by_user.values())
    assert counts[-1] > 3 * counts[len(counts) // 2]


def test_ground_truth_names_k_anomalous_users_with_distinct_behaviours(truth, by_user):
    assert len(truth.anomalies) == 5
    assert sorted(a.behaviour for a in truth.anomalies) == sorted(BEHAVIOURS)
    assert not {"admin", "manager"} & set(truth.anomalous_user_names)
    for anomaly in truth.anomalies:
        assert anomaly.events == len(by_user[anomaly.user])
        assert 0.15 * anomaly.events < anomaly.anomalous_events < 0.6 * anomaly.events


@pytest.mark.parametrize("seed", range(8))
def test_admin_and_manager_are_never_anomalous(seed):
    truth = ground_truth(1_000, seed=seed, users=22, anomalous_users=20)
    assert len(truth.anomalies) == 20
    assert not {"admin", "manager"} & set(truth.anomalous_user_names)


def test_behaviours_cycle_when_there_are_more_than_five_anomalous_users():
    truth = ground_truth(2_000, seed=1, anomalous_users=7)
    assert Counter(a.behaviour for a in truth.anomalies) == Counter([*BEHAVIOURS, *BEHAVIOURS[:2]])


def _features(events: list[dict]) -> dict[str, float]:
    auth = [e for e in events if e["event_type"] == "auth_attempt"]
    stamps = sorted(e["timestamp"] for e in auth)
    return {
        "failed_auth_rate": sum(e["status"] != "success" for e in auth) / max(len(auth), 1),
        "unique_locations": len({geo_location(e) for e in events}),
        "night_rate": sum((e["timestamp"] // 3_600_000) % 24 < 6 for e in events) / len(events),
        "avg_threat": float(np.mean([e["threat_score"] for e in events])),
        "ip_once_rate": sum(c == 1 for c in Counter(e["source_ip"] for e in events).values()) / len(events),
        "sub_second_auth_pairs": sum(b - a < 1000 for a, b in zip(stamps, stamps[1:], strict=False)),
    }


@pytest.mark.parametrize(
    ("behaviour", "feature"),
    [
        ("credential_stuffing", "failed_auth_rate"),
        ("credential_stuffing", "sub_second_auth_pairs"),
        ("impossible_travel", "unique_locations"),
        ("off_hours_bulk_file_access", "night_rate"),
        ("malware_process", "avg_threat"),
        ("ip_hopping", "ip_once_rate"),
    ],
)
def test_each_behaviour_stands_out_on_its_feature(behaviour, feature, by_user, truth):
    anomalous = next(a.user for a in truth.anomalies if a.behaviour == behaviour)
    normal_max = max(_features(es)[feature] for u, es in by_user.items() if truth.behaviour_of(u) is None)
    assert _features(by_user[anomalous])[feature] > 1.5 * normal_max


def test_anomalous_event_details_carry_their_behaviour(by_user, truth):
    user_of = {a.behaviour: a.user for a in truth.anomalies}
    malware = [e for e in by_user[user_of["malware_process"]] if e["threat_score"] >= 0.7]
    assert malware and all(e["event_type"] == "process_execution" for e in malware)
    assert all(not e["process_details"]["is_signed"] for e in malware)
    bulk = [e for e in by_user[user_of["off_hours_bulk_file_access"]]
            if e["event_type"] == "file_access" and e["file_details"]["file_size_bytes"] > 10**7]
    assert bulk and all((e["timestamp"] // 3_600_000) % 24 < 6 for e in bulk)
    stuffing = [e for e in by_user[user_of["credential_stuffing"]] if e.get("auth_details", {}).get(
        "attempts_count", 0) >= 5]
    assert len(stuffing) > 50


def test_invalid_counts_in_the_stream_match_the_ground_truth():
    messages = list(generate_messages(6_000, seed=11, invalid_rate=0.1, workers=0))
    truth = ground_truth(6_000, seed=11, invalid_rate=0.1)
    seen = Counter()
    for _, value, _ in messages:
        if value == b"":
            seen["empty_value"] += 1
            continue
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            seen["truncated_json" if value.startswith(b"{") else "not_json"] += 1
            continue
        if "user" not in parsed:
            seen["missing_required"] += 1
        elif isinstance(parsed["timestamp"], str) or isinstance(parsed["threat_score"], str):
            seen["wrong_type"] += 1
        elif parsed["threat_score"] > 1 or parsed["event_type"] not in EVENT_TYPES:
            seen["out_of_range"] += 1
    assert dict(seen) == truth.invalid_counts == dict.fromkeys(INVALID_KINDS, 100)
    assert truth.invalid_events == 600 and truth.valid_events == 5_400


def test_wire_variants_appear_and_validate(stream, truth):
    flat = [json.loads(v) for _, v, _ in stream if v.startswith(b'{"location"')]
    repeated = [v for _, v, _ in stream if v.startswith(b'{"status"')]
    assert len(flat) == truth.variant_counts["flat_location"] > 0
    assert len(repeated) == truth.variant_counts["repeated_key"] > 0
    assert all("geo_location" not in e["metadata"] and validate_event(e) == [] for e in flat)
    assert all(validate_event(json.loads(v)) == [] for v in repeated)


def test_ground_truth_round_trips_through_a_file(tmp_path: Path, truth):
    path = truth.with_topic("events").write(tmp_path / "nested" / "events.json")
    loaded = load_truth(path)
    assert loaded == truth.with_topic("events")
    assert loaded.behaviour_of(truth.anomalies[0].user) == truth.anomalies[0].behaviour
    assert loaded.behaviour_of("manager") is None
    assert json.loads(path.read_text())["anomalies"][0]["user"] == truth.anomalies[0].user


def test_load_truth_rejects_other_documents(tmp_path: Path):
    path = tmp_path / "x.json"
    path.write_text('{"seed": 1}')
    with pytest.raises(DataError):
        load_truth(path)
    with pytest.raises(DataError):
        load_truth(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "changes",
    [{"invalid_rate": 1.5}, {"anomalous_users": 49}, {"users": 0}, {"key": "partition"}, {"days": 0},
     {"events": -1}],
)
def test_bad_parameters_raise_data_error(changes):
    with pytest.raises(DataError):
        SynthConfig(**{"events": 10, **changes})


def test_small_populations_use_the_named_users_first():
    truth = ground_truth(200, seed=1, users=3, anomalous_users=1)
    assert truth.anomalous_user_names == ["alice"]
    messages = list(generate_messages(200, seed=1, users=3, anomalous_users=1, workers=0))
    assert {json.loads(v)["user"] for _, v, _ in messages} == {"admin", "manager", "alice"}


def test_an_error_in_a_worker_process_reaches_the_caller():
    with pytest.raises(ZeroDivisionError):
        list(parallel_chunks(functools.partial(operator.truediv, 1), count=2, workers=1, method="spawn",
                             caller_builds=False))


def test_a_quiet_users_night_and_weekend_go_to_many_normal_users_by_weight() -> None:
    # Without quiet users the draws are the same, so the users before the move are the quiet-free stream's.
    from streamguard.synth.generator import CHUNK_SIZE, SynthConfig, _core, plan_for

    quiet_config = SynthConfig(events=100_000, seed=7, users=1_000, anomalous_users=30, quiet_users=100)
    plain_config = SynthConfig(events=100_000, seed=7, users=1_000, anomalous_users=30)
    quiet_plan, plain_plan = plan_for(quiet_config), plan_for(plain_config)
    before = np.concatenate([_core(plain_plan, i, CHUNK_SIZE)[1]["user"] for i in range(2)])
    after = np.concatenate([_core(quiet_plan, i, CHUNK_SIZE)[1]["user"] for i in range(2)])
    moved = before != after
    assert moved.any() and quiet_plan.quiet[before[moved]].all() and not quiet_plan.quiet[after[moved]].any()
    receivers = after[moved]
    assert not any(quiet_plan.users[i].behaviour for i in receivers)
    # One receiver per quiet user (at most 100) made receivers nocturnal; by weight, hundreds share the events.
    assert len(np.unique(receivers)) > 200
    assert np.bincount(receivers).max() < 0.05 * moved.sum()
