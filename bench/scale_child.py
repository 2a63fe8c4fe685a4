"""``streamguard`` CLI with a note of when each pipeline stage ends, for the scale benchmark.

    python -m bench.scale_child STAGES.jsonl run --topic T --max-events N ...

Appends one JSON line ``[stage, unix time at its end, seconds]`` to ``STAGES.jsonl`` as the pipeline logs each
stage (``streamguard.pipeline``'s "stage NAME SECONDS s" record), then behaves exactly as ``python -m streamguard``:
same arguments, output and exit status. bench/scale.py lines these up with the memory timeline of
``bench/proctree.py --timeline`` to split the peak memory by stage.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path


class StageEnds(logging.Handler):
    """Writes each stage-end record of the pipeline's logger to a file, at once (a failed run keeps what ended)."""

    def __init__(self, path: Path) -> None:
        super().__init__(level=logging.INFO)
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("stage ") and isinstance(record.args, tuple) and len(record.args) == 2:
            name, seconds = record.args
            with self.path.open("a") as out:
                out.write(json.dumps([name, record.created, seconds]) + "\n")


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m bench.scale_child STAGES.jsonl STREAMGUARD-ARGS...")
    pipeline = logging.getLogger("streamguard.pipeline")
    pipeline.setLevel(logging.INFO)
    pipeline.addHandler(StageEnds(Path(argv[0])))
    from streamguard.cli import main as streamguard_main  # noqa: PLC0415

    streamguard_main(argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
