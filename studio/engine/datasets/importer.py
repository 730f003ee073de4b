"""The dataset import job: scan, decode in parallel, de-duplicate, stage, commit.

Decoding runs in a pool of worker processes, so an import uses every core; small imports decode
in-process to skip the start-up.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# decode_chunk lives in `decode` so spawned workers import only Pillow and numpy, not this module.
from studio.engine.datasets.decode import (
    Decoded,
    DecodeTask,
    ImportLimits,
    decode_chunk,
    run_task,
    worker_init,
)
from studio.engine.datasets.near_duplicates import MAX_IMAGES as NEAR_DUPLICATE_LIMIT
from studio.engine.datasets.near_duplicates import NearDuplicates, find_pairs, signatures, skipped_check
from studio.engine.datasets.sources import Candidate, Skipped, SourceScanner
from studio.engine.datasets.storage import (
    DatasetSummary,
    DatasetWriter,
    ensure_name_free,
    validate_geometry,
    validate_name,
)
from studio.engine.jobs import CancelToken, Finished, Job, Progress
from studio.errors import StudioError
from studio.store.database import Store

SIGNATURE_BATCH_BYTES = 32 * 1024 * 1024  # decoded pixels held before they become thumbnails
PARALLEL_THRESHOLD = 96  # below this, starting worker processes costs more than it saves
MAX_WORKERS = 8


@dataclass
class ImportResult:
    """What an import did: the dataset made, duplicates dropped, every skipped input and the
    near-duplicate pairs found (reported only: the user decides)."""

    dataset: DatasetSummary
    imported: int
    duplicates: int
    skipped: list[Skipped] = field(default_factory=list)
    near_duplicates: list[dict[str, Any]] = field(default_factory=list)
    near_duplicate_count: int | None = 0  # None when the check was skipped
    near_duplicate_check: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form the CLI prints."""
        return {
            "dataset": self.dataset.name,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "skipped": [s.as_dict() for s in self.skipped],
            "size": self.dataset.size,
            "channels": self.dataset.channels,
            "classes": self.dataset.class_counts,
            "near_duplicates": self.near_duplicates,
            "near_duplicate_count": self.near_duplicate_count,
            "near_duplicate_check": self.near_duplicate_check,
        }


class _Signatures:
    """Perceptual thumbnails of the accepted images, computed in batches as they are decoded."""

    def __init__(self, size: int, channels: int) -> None:
        self.shape = (size, size, channels)
        self.pending: list[bytes] = []
        self.parts: list[np.ndarray] = []
        self.count = 0
        self.too_many = False

    def add(self, pixels: bytes) -> None:
        """One accepted image's pixels (dropped once the dataset is too large to check)."""
        self.count += 1
        if self.count > NEAR_DUPLICATE_LIMIT:
            self.too_many, self.pending, self.parts = True, [], []
            return
        self.pending.append(pixels)
        if len(self.pending) * len(pixels) >= SIGNATURE_BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Turn the pending pixels into thumbnails."""
        if self.pending:
            images = np.frombuffer(b"".join(self.pending), np.uint8).reshape(-1, *self.shape)
            self.parts.append(signatures(images))
            self.pending = []

    def check(self, cancel: CancelToken) -> NearDuplicates:
        """All pairs closer than the threshold, or a note that the dataset was too large."""
        if self.too_many:
            return skipped_check(self.count)
        self.flush()
        vectors = np.concatenate(self.parts) if self.parts else np.zeros((0, 1), np.float32)
        return find_pairs(vectors, check=cancel.check)


def default_workers() -> int:
    """One decoding process per core, within reason."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


_host_is_threaded = False


def host_is_threaded() -> None:
    """Say that this process runs threads `threading` cannot see (the desktop app's Qt engine thread),
    so imports never fork from it: forking with such a thread alive can deadlock the child."""
    global _host_is_threaded
    _host_is_threaded = True


def _process_context() -> multiprocessing.context.BaseContext:
    """The cheapest safe way to start decoding workers here.

    fork is instant but only safe from a single-threaded process on Linux (the CLI); a process
    with threads (the desktop app) uses a fork server that has preloaded the decoder, so every
    import after the first starts its workers in milliseconds; Windows has only spawn.
    """
    methods = multiprocessing.get_all_start_methods()
    single_threaded = threading.active_count() == 1 and not _host_is_threaded
    if "fork" in methods and sys.platform.startswith("linux") and single_threaded:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["studio.engine.datasets.decode"])
        return context
    return multiprocessing.get_context("spawn")


def _decode_all(tasks: Sequence[DecodeTask], workers: int) -> Iterator[Decoded | str]:
    """Decode every task, yielding outcomes in input order (so de-duplication is deterministic)."""
    if workers <= 1 or len(tasks) < PARALLEL_THRESHOLD:
        yield from map(run_task, tasks)
        return
    size = max(4, min(64, len(tasks) // (workers * 8)))
    chunks = [tasks[i : i + size] for i in range(0, len(tasks), size)]
    window = workers * 3  # chunks in flight: keeps workers busy, bounds memory held out of order
    context = _process_context()
    # Workers end themselves when this process dies (worker_init); they never hold its staging lock,
    # whose inherited descriptor studio.files closes in every forked child.
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=worker_init,
        initargs=(os.getpid(), context.get_start_method() != "forkserver"),
    )
    futures: dict[int, Future[list[Decoded | str]]] = {}
    finished: dict[int, list[Decoded | str]] = {}
    submitted = 0
    # Spawned workers take a moment to start: meanwhile this process decodes chunks from the back
    # of the queue that no worker has picked up yet. Forked workers start at once: no need.
    warm = context.get_start_method() != "spawn"
    try:
        for index in range(len(chunks)):
            while index not in finished:
                while submitted < len(chunks) and submitted - index < window:
                    futures[submitted] = executor.submit(decode_chunk, chunks[submitted])
                    submitted += 1
                if futures[index].done():
                    warm = True
                elif not warm:
                    victim = max((i for i in futures if i > index), default=None)
                    if victim is not None and futures[victim].cancel():
                        del futures[victim]
                        finished[victim] = decode_chunk(chunks[victim])
                        continue
                finished[index] = futures.pop(index).result()
                warm = True
            yield from finished.pop(index)
    finally:
        # Runs on cancel too (GeneratorExit): queued work is dropped, running chunks finish.
        executor.shutdown(wait=True, cancel_futures=True)


def import_dataset(
    store: Store,
    sources: Iterable[str | os.PathLike[str]],
    name: str,
    size: int = 32,
    channels: int = 3,
    labels: bool = True,
    limits: ImportLimits | None = None,
    workers: int | None = None,
    cancel: CancelToken | None = None,
) -> Job:
    """Import folders, zips and image files as a new dataset; yields Progress, then Finished(ImportResult).

    All or nothing: cancelling, an error or a killed process leaves no trace of the dataset.
    """
    validate_name(name)
    validate_geometry(size, channels)
    ensure_name_free(store, name)
    if store.read_only:
        raise StudioError(f"the database is read-only: {store.read_only_reason}")
    limits = limits or ImportLimits()
    cancel = cancel or CancelToken()
    sources = list(sources)
    if not sources:
        raise StudioError("nothing to import: give at least one folder, zip or image file")

    scanner = SourceScanner(limits, labels=labels, exclude=store.home.root)
    yield Progress("scanning", 0, 0, "looking for images")
    for found in scanner.scan(sources):
        cancel.check()
        yield Progress("scanning", found, 0, f"found {found} files")
    candidates: list[Candidate] = scanner.candidates
    skipped: list[Skipped] = list(scanner.skipped)
    if not candidates:
        detail = f": {skipped[0].path}: {skipped[0].reason}" if len(skipped) == 1 else ""
        raise StudioError(f"nothing to import: no image files found ({len(skipped)} skipped){detail}")

    tasks = [DecodeTask(c.path, c.member, size, channels, limits) for c in candidates]
    writer = DatasetWriter(store, name, size, channels, origin="import")
    perceptual = _Signatures(size, channels)
    try:
        total = len(tasks)
        every = max(1, total // 200)
        yield Progress("decoding", 0, total, f"decoding {total} images")
        for index, outcome in enumerate(_decode_all(tasks, workers or default_workers())):
            cancel.check()
            candidate = candidates[index]
            if isinstance(outcome, str):
                skipped.append(Skipped(candidate.display, outcome))
            elif writer.add(outcome.pixels, outcome.digest, candidate.display, candidate.label, outcome.thumbnail):
                perceptual.add(outcome.pixels)
            if (index + 1) % every == 0 or index + 1 == total:
                yield Progress("decoding", index + 1, total, f"{writer.count} images, {len(skipped)} skipped")
        cancel.check()
        if writer.count == 0:
            first = f"; first: {skipped[0].path}: {skipped[0].reason}" if skipped else ""
            raise StudioError(f"nothing to import: all {len(candidates)} files were skipped{first}")
        yield Progress("near-duplicates", 0, 1, f"looking for near-duplicates among {writer.count} images")
        near = perceptual.check(cancel)
        listed = near.listed(writer.sources)
        count = near.count if near.checked else None
        yield Progress("near-duplicates", 1, 1, f"{near.count} near-duplicate pairs" if near.checked else near.note)
        yield Progress("writing", 0, 1, "saving the dataset")
        report = {
            "sources": [str(s) for s in sources][:50],
            "skipped": len(skipped),
            "duplicates": writer.duplicates,
            "near_duplicates": listed,
            "near_duplicate_count": count,
            "near_duplicate_check": near.summary(),
        }
        summary = writer.commit(report)
    except BaseException:
        writer.discard()
        raise
    yield Progress("writing", 1, 1, "saved")
    yield Finished(ImportResult(summary, summary.count, writer.duplicates, skipped, listed, count, near.summary()))
