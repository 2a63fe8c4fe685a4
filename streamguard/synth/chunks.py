"""A built chunk of messages, its counts, and how it travels from a worker process to the consumer.

A worker writes a chunk's keys and values into one file of a per-run scratch directory (in ``/dev/shm`` when
there is one) and sends back only the file name and the lengths; the consumer reads the file in one go and
slices it. Pickling tens of megabytes of messages through a pipe costs more than building them (measured: a
pipe moves ~450 MB/s here, i.e. ~70 ms per 50k-event chunk).

    with scratch_directory() as directory:
        packed = pack(chunk, directory)      # in the worker
        chunk = unpack(packed)               # in the consumer; removes the file
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_SHM = Path("/dev/shm")


@dataclass(slots=True)
class ChunkStats:
    """Counts over the messages of one or more chunks; add them up with ``+``."""

    valid_per_user: np.ndarray
    anomalous_per_source: np.ndarray
    invalid_per_kind: np.ndarray
    variants: np.ndarray

    def __add__(self, other: ChunkStats) -> ChunkStats:
        return ChunkStats(*(a + b for a, b in zip(self._arrays(), other._arrays(), strict=True)))

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return self.valid_per_user, self.anomalous_per_source, self.invalid_per_kind, self.variants


@dataclass(slots=True)
class Chunk:
    """Messages ``[index·chunk_size, …)`` of a stream, in order, with their counts."""

    index: int
    keys: list[bytes]
    values: list[bytes]
    timestamps: np.ndarray
    stats: ChunkStats

    def messages(self) -> Iterator[tuple[bytes, bytes, int]]:
        """``(key, value, timestamp_ms)`` per message."""
        return zip(self.keys, self.values, self.timestamps.tolist(), strict=True)


@dataclass(frozen=True, slots=True)
class PackedChunk:
    """A chunk whose keys and values wait in ``path``: keys back to back, then values back to back."""

    index: int
    path: str
    key_lengths: np.ndarray
    value_lengths: np.ndarray
    timestamps: np.ndarray
    stats: ChunkStats


@contextmanager
def scratch_directory() -> Iterator[Path]:
    """A private directory for packed chunks (in memory when /dev/shm is usable), removed with its content."""
    parent = _SHM if _SHM.is_dir() and os.access(_SHM, os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix="streamguard-synth-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _lengths(items: list[bytes]) -> np.ndarray:
    return np.fromiter(map(len, items), dtype=np.int64, count=len(items))


def pack(chunk: Chunk, directory: Path) -> PackedChunk:
    path = directory / f"chunk-{chunk.index}.bin"
    with open(path, "wb") as out:
        out.write(b"".join(chunk.keys))
        out.write(b"".join(chunk.values))
    return PackedChunk(chunk.index, str(path), _lengths(chunk.keys), _lengths(chunk.values), chunk.timestamps,
                       chunk.stats)


def _split(data: bytes, start: int, lengths: np.ndarray) -> list[bytes]:
    if lengths.size == 0:
        return []
    ends = (np.cumsum(lengths) + start).tolist()
    return [data[a:b] for a, b in zip([start, *ends[:-1]], ends, strict=True)]


def unpack(packed: PackedChunk) -> Chunk:
    """The chunk back from its file, which is removed."""
    path = Path(packed.path)
    data = path.read_bytes()
    path.unlink()
    keys_size = int(packed.key_lengths.sum())
    keys = _split(data, 0, packed.key_lengths)
    values = _split(data, keys_size, packed.value_lengths)
    return Chunk(packed.index, keys, values, packed.timestamps, packed.stats)
