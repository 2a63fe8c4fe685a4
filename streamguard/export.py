"""Atomic output: a run is written into a fresh folder and published by swapping one symlink.

``<output>`` is a symlink to ``<output>.runs/<run id>/``. Readers that open paths through ``<output>`` see either the
previous run or the new one, never a half-written one; a failed run deletes only its own folder, so the previous
good output stays. The last ``KEEP_RUNS`` runs are kept.

    >>> publisher = RunPublisher(Path("out/latest"))
    >>> staging = publisher.prepare("20260105T000000Z-1a2b")
    >>> ... write into staging ...
    >>> publisher.commit(staging)
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from streamguard.errors import OutputError

log = logging.getLogger(__name__)

KEEP_RUNS = 3
TRAINING_DATA = "training_data"
QUARANTINE = "quarantine"
_INCOMPLETE = ".incomplete"


class RunPublisher:
    """Prepares a run folder beside the output path and publishes it atomically."""

    def __init__(self, output: Path) -> None:
        self.output = Path(output).absolute()
        self.runs_dir = self.output.parent / f"{self.output.name}.runs"

    def prepare(self, run_id: str) -> Path:
        """Create this run's folder; raise OutputError when the output location cannot be written."""
        foreign = self.output.exists() and not self.output.is_symlink()
        if foreign and (not self.output.is_dir() or any(self.output.iterdir())):
            raise OutputError(f"{self.output} exists and was not written by StreamGuard; choose another --output")
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            staging = self.runs_dir / run_id
            staging.mkdir()
            (staging / _INCOMPLETE).touch()
        except OSError as exc:
            raise OutputError(f"output {self.output} is not writable: {exc.strerror or exc}") from exc
        return staging

    def commit(self, staging: Path) -> Path:
        """Point ``output`` at ``staging`` in one rename, then prune old runs."""
        (staging / _INCOMPLETE).unlink(missing_ok=True)
        link_tmp = self.output.parent / f".{self.output.name}.link-{staging.name}"
        try:
            if self.output.exists() and not self.output.is_symlink():
                self.output.rmdir()  # an empty folder left by hand; prepare() refused anything else
            link_tmp.unlink(missing_ok=True)
            link_tmp.symlink_to(os.path.relpath(staging, self.output.parent))
            os.replace(link_tmp, self.output)
        except OSError as exc:
            raise OutputError(f"could not publish {staging} as {self.output}: {exc}") from exc
        self._prune(keep=staging)
        log.info("published run %s at %s", staging.name, self.output)
        return staging

    def abort(self, staging: Path) -> None:
        """Delete a run folder that will not be published."""
        shutil.rmtree(staging, ignore_errors=True)

    def current(self) -> Path | None:
        """The published run folder, if any."""
        return self.output.resolve() if self.output.is_symlink() and self.output.exists() else None

    def _prune(self, keep: Path) -> None:
        runs = sorted((p for p in self.runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        stale = [p for p in runs if p != keep and (p / _INCOMPLETE).exists()]
        finished = [p for p in runs if p != keep and p not in stale]
        for old in stale + finished[: max(0, len(finished) - (KEEP_RUNS - 1))]:
            shutil.rmtree(old, ignore_errors=True)
