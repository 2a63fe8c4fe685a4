"""Synthetic StreamGuard event streams with known anomalies, and seeding them into Kafka.

    from streamguard.synth import generate_messages, ground_truth

    for key, value, timestamp_ms in generate_messages(10_000, seed=7, invalid_rate=0.01):
        ...
    truth = ground_truth(10_000, seed=7, invalid_rate=0.01)

``seed_topic`` (in ``streamguard.synth.seed``, which needs confluent-kafka) writes the same stream to a topic.
"""

from streamguard.synth.anomalies import BEHAVIOURS
from streamguard.synth.generator import CHUNK_SIZE, SynthConfig, generate_messages, ground_truth
from streamguard.synth.invalid import INVALID_KINDS
from streamguard.synth.timeline import REFERENCE_END_MS
from streamguard.synth.truth import AnomalousUser, GroundTruth, load_truth

__all__ = [
    "BEHAVIOURS", "CHUNK_SIZE", "INVALID_KINDS", "REFERENCE_END_MS", "AnomalousUser", "GroundTruth",
    "SynthConfig", "generate_messages", "ground_truth", "load_truth",
]
