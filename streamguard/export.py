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
from collections.abc import Callable
from pathlib import Path

from streamguard._proc import pid_alive
from streamguard.errors import OutputError

log = logging.getLogger(__name__)

KEEP_RUNS = 3
TRAINING_DATA = "training_data"
QUARANTINE = "quarantine"
_INCOMPLETE = ".incomplete"


def _owner_alive(marker: Path) -> bool:
    """Whether the process that wrote an ``.incomplete`` marker still runs (an unreadable marker counts as alive)."""
    try:
        pid = int(marker.read_text().strip() or "0")
    except (OSError, ValueError):
        return True
    return pid_alive(pid)


class RunPublisher:
    """Prepares a run folder beside the output path and publishes it atomically."""

    def __init__(self, output: Path) -> None:
        self.output = Path(output).absolute()
        self.runs_dir = self.output.parent / f"{self.output.name}.runs"
        # Called with a step's name between the steps of commit and prune: a seam for tests that interleave runs.
        self.on_step: Callable[[str], None] = lambda step: None

    def prepare(self, run_id: str) -> Path:
        """Create this run's folder; raise OutputError when the output location cannot be written."""
        foreign = self.output.exists() and not self.output.is_symlink()
        if foreign and (not self.output.is_dir() or any(self.output.iterdir())):
            raise OutputError(f"{self.output} exists and was not written by StreamGuard; choose another --output")
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            staging = self.runs_dir / run_id
            staging.mkdir()
            (staging / _INCOMPLETE).write_text(f"{os.getpid()}\n")
        except OSError as exc:
            raise OutputError(f"output {self.output} is not writable: {exc.strerror or exc}") from exc
        return staging

    def commit(self, staging: Path) -> Path:
        """Point ``output`` at ``staging`` in one rename, then prune old runs (best effort).

        The in-progress marker goes only after the rename: until the link points at ``staging``, another run's
        clean-up must see it as in progress, or it could delete the run being published.
        """
        if not staging.is_dir():
            raise OutputError(f"run folder {staging} vanished before it could be published")
        link_tmp = self.output.parent / f".{self.output.name}.link-{staging.name}"
        try:
            if self.output.exists() and not self.output.is_symlink():
                self.output.rmdir()  # an empty folder left by hand; prepare() refused anything else
            link_tmp.unlink(missing_ok=True)
            link_tmp.symlink_to(os.path.relpath(staging, self.output.parent))
            self.on_step("before_link_swap")
            os.replace(link_tmp, self.output)
            self.on_step("after_link_swap")
            (staging / _INCOMPLETE).unlink(missing_ok=True)
        except OSError as exc:
            link_tmp.unlink(missing_ok=True)
            raise OutputError(f"could not publish {staging} as {self.output}: {exc}") from exc
        self.on_step("published")
        log.info("published run %s at %s", staging.name, self.output)
        try:
            self._prune(keep=staging)
        except Exception as exc:  # noqa: BLE001 - the run is published; a failed clean-up must not undo that
            log.warning("could not prune old runs in %s: %s", self.runs_dir, exc)
        return staging

    def abort(self, staging: Path) -> None:
        """Delete a run folder that will not be published (never the published one)."""
        current = self.current()
        if current is not None and current == staging.resolve():
            return
        shutil.rmtree(staging, ignore_errors=True)

    def current(self) -> Path | None:
        """The published run folder, if any."""
        return self.output.resolve() if self.output.is_symlink() and self.output.exists() else None

    def _prune(self, keep: Path) -> None:
        # Run ids start with a UTC timestamp to the millisecond, so names sort oldest first.
        runs = sorted((p for p in self.runs_dir.iterdir() if p.is_dir() and p != keep), key=lambda p: p.name)
        in_progress = {p for p in runs if (p / _INCOMPLETE).exists()}
        abandoned = [p for p in runs if p in in_progress and not _owner_alive(p / _INCOMPLETE)]
        finished = [p for p in runs if p not in in_progress]
        self.on_step("markers_read")
        # Read after the markers (see the module docstring): a run that lost its marker since is the linked one.
        published = self.current()
        for old in abandoned + finished[: max(0, len(finished) - (KEEP_RUNS - 1))]:
            if old.resolve() != published:
                shutil.rmtree(old, ignore_errors=True)
