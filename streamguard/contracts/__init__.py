"""The ground floor: names and plain-data definitions every stage agrees on. Imports no engine.

``columns`` names the columns that cross stage boundaries; ``features`` is the feature registry (each feature's
definition, unit, type and its one SQL expression, run by every engine). The report and API models live in
``streamguard.report`` and ``streamguard.serve.models``, which build on these and import no engine either.
"""

from streamguard.contracts.columns import (
    FLAG_COLUMN,
    QUARANTINE_COLUMNS,
    QUARANTINE_REASONS,
    SCORE_COLUMN,
    USER_COLUMN,
)
from streamguard.contracts.features import (
    FEATURE_COLUMNS,
    FEATURES,
    MODEL_FEATURE_COLUMNS,
    Feature,
)

__all__ = [
    "FEATURES",
    "FEATURE_COLUMNS",
    "FLAG_COLUMN",
    "MODEL_FEATURE_COLUMNS",
    "QUARANTINE_COLUMNS",
    "QUARANTINE_REASONS",
    "SCORE_COLUMN",
    "USER_COLUMN",
    "Feature",
]
