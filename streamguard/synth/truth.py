"""Ground truth of a generated stream: the parameters, who is anomalous and how, and exact message counts.

Written by the seeder into the state dir (``$STREAMGUARD_STATE_DIR/truth/<topic>.json`` by default) so that
evaluations and tests can compare detections and quarantine counts against it::

    truth = load_truth(default_truth_path("events"))   # streamguard.synth.seed
    truth.behaviour_of("erin")        # "credential_stuffing", or None for a normal user
    truth.invalid_counts["not_json"]  # exact number of such messages in the topic
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from streamguard.errors import DataError

TRUTH_FORMAT = 1


@dataclass(frozen=True, slots=True)
class AnomalousUser:
    """An anomalous user: its behaviour, its valid events, and how many of those the behaviour produced."""

    user: str
    behaviour: str
    events: int
    anomalous_events: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GroundTruth:
    """What the generator put in a stream; counts are of messages emitted (after malformed replacement)."""

    seed: int
    events: int
    users: int
    anomalous_users: int
    days: int
    invalid_rate: float
    key: str
    start_ms: int
    end_ms: int
    valid_events: int
    invalid_events: int
    anomalies: tuple[AnomalousUser, ...]
    invalid_counts: dict[str, int]
    variant_counts: dict[str, int]
    """Valid events using a wire variant: ``flat_location`` and ``repeated_key``."""
    topic: str | None = None
    quiet_users: tuple[str, ...] = ()
    """Normal users made quieter than everyone (see ``SynthConfig.quiet_users``): a detector must not flag them."""
    spread_anomalies: bool = False
    spread_anomalous_events: int = 0
    """With ``spread_anomalies``, the anomalous events spread over all users; ``anomalies`` is then empty."""
    format: int = field(default=TRUTH_FORMAT)

    @property
    def anomalous_user_names(self) -> list[str]:
        return [a.user for a in self.anomalies]

    def behaviour_of(self, user: str) -> str | None:
        """The behaviour of ``user`` if it is anomalous, else None."""
        return next((a.behaviour for a in self.anomalies if a.user == user), None)

    def with_topic(self, topic: str) -> GroundTruth:
        return GroundTruth(**{**self._fields(), "topic": topic})

    def to_dict(self) -> dict[str, Any]:
        return {**self._fields(), "anomalies": [asdict(a) for a in self.anomalies],
                "quiet_users": list(self.quiet_users)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def write(self, path: Path) -> Path:
        """Write :meth:`to_json` to ``path`` (creating parent directories) and return the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroundTruth:
        try:
            anomalies = tuple(AnomalousUser(**a) for a in data["anomalies"])
            return cls(**{**data, "anomalies": anomalies, "quiet_users": tuple(data.get("quiet_users", ()))})
        except (KeyError, TypeError) as exc:
            raise DataError(f"not a StreamGuard ground-truth document: {exc}") from exc

    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def load_truth(path: Path | str) -> GroundTruth:
    """Read a ground-truth file written by :meth:`GroundTruth.write` (or the seeder)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read ground truth {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(f"ground truth {path} is not a JSON object")
    return GroundTruth.from_dict(data)
